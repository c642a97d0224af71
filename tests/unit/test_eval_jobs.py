"""Evaluation as jobs: plan -> generate -> check (the real sandbox) -> ingest, with a scripted model.
pass@k against brute force, forged generation and verdict files, benchmark data that differs between
the planner and the check job, benchmark paths from config and environment."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
import yaml

from warriorflow.config import load_config
from warriorflow.errors import ConfigError, StoreError
from warriorflow.evaluation import jobs
from warriorflow.evaluation.pass_at_k import mean_pass_at_k, pass_at_k, reported_ks
from warriorflow.inference.base import Generation
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

BENCH = Path(os.environ.get("WARRIORFLOW_BENCHMARKS", Path(__file__).resolve().parents[3] / "shared" / "benchmarks"))
MBPP = BENCH / "mbppplus" / "MbppPlus.jsonl"
SOLUTIONS = {json.loads(line)["entry_point"]: json.loads(line)["canonical_solution"]
             for line in itertools.islice(MBPP.open(), 6)}


class Scripted:
    """Answers an MBPP problem with its canonical solution when ``good(entry_point, seed)``, else junk."""

    def __init__(self, good):
        self.good = good
        self.calls = 0

    def chat(self, conversations, sampling):
        self.calls += 1
        params = sampling if isinstance(sampling, list) else [sampling] * len(conversations)
        out = []
        for conv, s in zip(conversations, params):
            user = conv[-1]["content"]
            entry = next((e for e in SOLUTIONS if f"`{e}`" in user), None)
            if entry is not None and self.good(entry, s.seed):
                out.append(Generation(f"```python\n{SOLUTIONS[entry]}\n```", "stop"))
            else:
                out.append(Generation("```python\nimport sys\nprint('PASSED')\nsys.exit(0)\n```", "stop"))
        return out

    def close(self):
        pass


def _settings(tmp_path: Path, **evaluation) -> Path:
    base = yaml.safe_load(Path(load_config().settings_file).read_text())
    base["experts_file"] = str(load_config().experts_file)
    base["evaluation"].update({"benchmarks_dir": str(BENCH), "problems_per_benchmark": 4,
                               "benchmarks": [{"name": "mbpp", "kind": "mbpp", "path": "mbppplus/MbppPlus.jsonl"}],
                               **evaluation})
    p = tmp_path / "settings.yaml"
    p.write_text(yaml.safe_dump(base))
    return p


def _run(cfg, backend, ref="hf:/scripted"):
    objects = open_objects(cfg)
    cfg.home.mkdir(parents=True, exist_ok=True)
    req = jobs.plan_evaluation(cfg, objects, ref)
    key = jobs.eval_key(req.eval_id, jobs.REQUEST)
    jobs.generate(cfg, objects, key, backend=backend)
    jobs.check(cfg, objects, key)
    with RatingStore(cfg.duckdb_path) as store:
        scores = jobs.ingest(cfg, store, objects, key)
    return objects, req, key, scores


def test_pass_at_k_is_the_unbiased_estimator():
    for n, c, k in [(5, 2, 1), (5, 2, 3), (10, 0, 5), (10, 10, 1), (7, 3, 7), (6, 1, 2)]:
        combos = list(itertools.combinations([1] * c + [0] * (n - c), k))
        brute = sum(any(x) for x in combos) / len(combos)
        assert pass_at_k(n, c, k) == pytest.approx(brute)
    assert pass_at_k(3, 1, 1) == pytest.approx(1 / 3)
    assert mean_pass_at_k([(2, 1), (2, 2)], 1) == pytest.approx(0.75)
    assert reported_ks(1, [1, 5, 10]) == [1] and reported_ks(5, [1, 5, 10]) == [1, 5]
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_plan_generate_check_ingest_greedy(tmp_path, monkeypatch):
    cfg = load_config(_settings(tmp_path))
    good = {e for e in list(SOLUTIONS)[:2]}
    backend = Scripted(lambda entry, seed: entry in good)
    objects, req, key, scores = _run(cfg, backend)
    [mbpp] = scores
    # the junk answer prints PASSED and exits 0 at import: the check program still fails it
    assert (mbpp.n_problems, mbpp.n_passed, mbpp.pass_at_1) == (4, 2, 0.5)
    assert mbpp.pass_at_k == {"1": 0.5}
    again = jobs.plan_evaluation(cfg, objects, "hf:/scripted")
    assert again.eval_id == req.eval_id  # the same plan is the same evaluation
    calls = backend.calls
    jobs.generate(cfg, objects, key, backend=backend)
    assert backend.calls == calls  # generations exist: nothing is generated again
    with RatingStore(cfg.duckdb_path) as store:
        jobs.ingest(cfg, store, objects, key)  # ingesting again upserts the same row
        rows = store.query("SELECT pass_at_1, n_problems, details FROM eval_results WHERE model_ref = 'hf:/scripted'")
    assert len(rows) == 1 and rows[0]["pass_at_1"] == 0.5
    details = json.loads(rows[0]["details"]) if isinstance(rows[0]["details"], str) else rows[0]["details"]
    assert [p["n_correct"] for p in details["problems"]] == [1, 1, 0, 0]
    assert details["eval_job"] == req.eval_id


def test_samples_give_pass_at_k(tmp_path):
    with pytest.raises(ConfigError, match="promotion.test: bootstrap"):  # fractions per problem: no McNemar
        load_config(_settings(tmp_path, samples=4))
    cfg = load_config(_settings(tmp_path, samples=4, pass_k=[1, 2, 10], promotion={"test": "bootstrap"}))
    entries = list(SOLUTIONS)[:4]
    # problem i passes on seeds < i (0, 1, 2, 3 correct samples of 4)
    backend = Scripted(lambda entry, seed: seed < entries.index(entry))
    _, req, _, [mbpp] = _run(cfg, backend)
    assert req.sampling["samples"] == 4 and req.sampling["temperature"] > 0 and req.pass_k == [1, 2]
    counts = [(4, c) for c in range(4)]
    assert mbpp.pass_at_1 == pytest.approx(mean_pass_at_k(counts, 1)) == pytest.approx(6 / 16)
    assert mbpp.pass_at_k["2"] == pytest.approx(mean_pass_at_k(counts, 2))


def test_forged_verdicts_are_quarantined_whole(tmp_path):
    cfg = load_config(_settings(tmp_path))
    objects, req, key, _ = _run(cfg, Scripted(lambda e, s: False))
    vkey = jobs.eval_key(req.eval_id, jobs.VERDICTS)
    lines = [json.loads(x) for x in objects.get_bytes(vkey).decode().splitlines()]
    forged_cases = {
        "all passed as strings": [lines[0], *[{**x, "results": [{**x["results"][0], "passed": "true"}]}
                                              for x in lines[1:]]],
        "a task twice": [*lines, lines[1]],
        "a task missing": lines[:-1],
        "an unasked task": [*lines, {"benchmark": "mbpp", "task_id": "Mbpp/9999", "results": lines[1]["results"]}],
        "no harness line": lines[1:],
    }
    for why, forged in forged_cases.items():
        objects.put_bytes(vkey, "\n".join(json.dumps(x) for x in forged).encode())
        with RatingStore(cfg.duckdb_path) as store, pytest.raises(StoreError, match="quarantined") as err:
            jobs.ingest(cfg, store, objects, key)
        assert "does not answer its evaluation request" in str(err.value), why
        assert not objects.exists(vkey), why  # moved whole to quarantine/
        assert any(k.startswith("quarantine/evaluate/") for k in objects.list("quarantine/"))
    jobs.check(cfg, objects, key)  # re-running the check job writes a good file again
    with RatingStore(cfg.duckdb_path) as store:
        assert jobs.ingest(cfg, store, objects, key)[0].n_problems == 4


def test_forged_generations_and_request_are_clear_errors(tmp_path):
    cfg = load_config(_settings(tmp_path))
    objects = open_objects(cfg)
    req = jobs.plan_evaluation(cfg, objects, "hf:/scripted")
    key = jobs.eval_key(req.eval_id, jobs.REQUEST)
    objects.put_bytes(jobs.eval_key(req.eval_id, jobs.GENERATIONS),
                      b'{"prompt_id": "p00000", "samples": ["a", "b"]}\n')
    with pytest.raises(StoreError, match="does not answer its request"):
        jobs.check(cfg, objects, key)
    objects.put_bytes(key, b'{"kind": "warriorflow.eval-request", "eval_id": 3}')
    with pytest.raises(StoreError, match="not a valid evaluation request"):
        jobs.read_request(objects, key)


def test_check_job_refuses_other_benchmark_data(tmp_path):
    cfg = load_config(_settings(tmp_path))
    objects = open_objects(cfg)
    req = jobs.plan_evaluation(cfg, objects, "hf:/scripted")
    key = jobs.eval_key(req.eval_id, jobs.REQUEST)
    jobs.generate(cfg, objects, key, backend=Scripted(lambda e, s: True))
    other = tmp_path / "bench" / "mbppplus"
    other.mkdir(parents=True)
    (other / "MbppPlus.jsonl").write_text("".join(itertools.islice(MBPP.open(), 10)))
    cfg2 = load_config(_settings(tmp_path, benchmarks_dir=str(tmp_path / "bench")))
    with pytest.raises(ConfigError, match="is not the planned data"):
        jobs.check(cfg2, objects, key)


def test_benchmark_paths_come_from_config_or_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("WARRIORFLOW_BENCHMARKS", raising=False)
    cfg = load_config(_settings(tmp_path, benchmarks_dir=None))
    with pytest.raises(ConfigError, match="WARRIORFLOW_BENCHMARKS"):
        jobs.load_benchmarks(cfg)
    monkeypatch.setenv("WARRIORFLOW_BENCHMARKS", str(BENCH))
    [b] = jobs.load_benchmarks(cfg)
    assert Path(b.path) == MBPP.resolve() and len(b.problems) == 4


def test_task_ids_pick_a_fixed_subset(tmp_path):
    ids = [json.loads(x)["task_id"] for x in itertools.islice(MBPP.open(), 6)]
    subset = {"name": "mbpp", "kind": "mbpp", "path": "mbppplus/MbppPlus.jsonl", "task_ids": [ids[5], ids[2]]}
    cfg = load_config(_settings(tmp_path, benchmarks=[subset]))
    [b] = jobs.load_benchmarks(cfg)
    assert [p.task_id for p in b.problems] == [ids[5], ids[2]]
    bad = load_config(_settings(tmp_path, benchmarks=[{"name": "mbpp", "kind": "mbpp",
                                                       "path": "mbppplus/MbppPlus.jsonl", "task_ids": ["Nope/1"]}]))
    with pytest.raises(ConfigError, match="task_ids"):
        jobs.load_benchmarks(bad)


def test_baseline_must_be_in_this_registry_and_base_names_the_base_model(tmp_path):
    with pytest.raises(ConfigError, match="not an expert of the registry"):
        load_config(_settings(tmp_path, baseline="expert:deepseek-coder-6.7b"))
    cfg = load_config(_settings(tmp_path, baseline="base"))
    assert jobs.baseline_ref(cfg) == f"base:{cfg.settings.training.base_model}"
    assert jobs.model_identity(cfg, jobs.baseline_ref(cfg)).startswith("base:expert:")
