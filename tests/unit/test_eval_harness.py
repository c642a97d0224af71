"""Evaluation harness: answer extraction, check programs (real sandbox), MBPP+ ground truth and atol,
CRUXEval, comparison/promotion, results in the store and the CLI (with a scripted backend)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from warriorflow.config import PromotionSettings
from warriorflow.evaluation import answers
from warriorflow.evaluation.compare import decide
from warriorflow.evaluation.harness import HARNESS_VERSION, ground_truth, score_benchmark
from warriorflow.evaluation.problems import load_benchmark
from warriorflow.inference.base import Generation
from warriorflow.sandbox import Sandbox, SandboxLimits

BENCH = Path(os.environ.get("WARRIORFLOW_BENCHMARKS", Path(__file__).resolve().parents[3] / "shared" / "benchmarks"))
MBPP = BENCH / "mbppplus" / "MbppPlus.jsonl"
CRUX = BENCH / "cruxeval" / "cruxeval.jsonl"
SANDBOX = Sandbox(SandboxLimits(cpu_s=10, wall_s=20.0))


def _fenced(code: str) -> str:
    return f"Here you go:\n```python\n{code}\n```\nDone."


# ------------------------------------------------------------------ answers


def test_extract_code_prefers_the_block_defining_the_entry_point():
    reply = "```python\nimport math\n```\ntext\n```python\ndef foo(x):\n    return x\n```"
    assert answers.extract_code(reply, "foo").startswith("def foo")
    assert answers.extract_code("no fences at all", "foo") == "no fences at all"
    assert answers.extract_code("```python\ndef foo():\n    return 1", "foo").strip().endswith("return 1")  # unclosed


def test_humaneval_completion_whole_function_or_body():
    prompt = "def f(x):\n    \"\"\"doc\"\"\"\n"
    whole = answers.humaneval_completion(prompt, _fenced("def f(x):\n    return x + 1"), "f")
    assert whole.startswith("    pass\n") and "def f(x)" in whole
    assert answers.humaneval_completion(prompt, "    return x + 1\n", "f") == "    return x + 1\n"


@pytest.mark.parametrize(("reply", "kind", "expected"), [
    ("[ANSWER]assert f([1, 2], k=3) == [3][/ANSWER]", "cruxeval_input", "[1, 2], k=3"),
    ("[ANSWER]assert f([1, 2]) == {'a': (1, 2)}[/ANSWER]", "cruxeval_output", "{'a': (1, 2)}"),
    ("The answer:\nassert f('ab') == 'ba'\n", "cruxeval_output", "'ba'"),
    ("[ANSWER]\n```python\nassert f(1) == 2\n```\n[/ANSWER]", "cruxeval_input", "1"),
    ("[ANSWER]42", "cruxeval_output", "42"),
])
def test_cruxeval_prediction(reply, kind, expected):
    assert answers.cruxeval_prediction(reply, kind) == expected


# ------------------------------------------------------------------ programs in the sandbox


def test_mbppplus_canonical_passes_and_wrong_fails_with_types_and_atol(tmp_path):
    bench = load_benchmark("mbppplus", "mbppplus", MBPP)
    wanted = {"Mbpp/2", "Mbpp/82"}  # tuple inputs restored; atol 1e-4 (volume of a sphere)
    bench = bench.__class__(bench.name, bench.kind, bench.path, bench.data_sha256,
                            [p for p in bench.problems if p.task_id in wanted], bench.n_total)
    expected = ground_truth(bench, SANDBOX, tmp_path)
    assert all(v["expected"] for v in expected.values())
    assert list(tmp_path.glob("expected-mbpp-*.json"))  # cached
    canonical = [_fenced(p.record["canonical_solution"]) for p in bench.problems]
    assert score_benchmark(bench, canonical, SANDBOX, expected=expected).pass_at_1 == 1.0
    by_id = {p.task_id: p for p in bench.problems}
    sphere = by_id["Mbpp/82"].record["canonical_solution"]
    within_atol = sphere.replace("math.pi", "(math.pi + 1e-9)")
    outside_atol = sphere.replace("math.pi", "3.14")
    wrong_type = "def similar_elements(a, b):\n    return list(set(a) & set(b))"
    for_sphere = [p for p in bench.problems if p.task_id == "Mbpp/82"]
    sub = bench.__class__(bench.name, bench.kind, bench.path, bench.data_sha256, for_sphere, bench.n_total)
    assert score_benchmark(sub, [_fenced(within_atol)], SANDBOX, expected=expected).results[0].passed
    r = score_benchmark(sub, [_fenced(outside_atol)], SANDBOX, expected=expected).results[0]
    assert (r.passed, r.reason) == (False, "failed")
    sub2 = bench.__class__(bench.name, bench.kind, bench.path, bench.data_sha256,
                           [by_id["Mbpp/2"]], bench.n_total)
    r = score_benchmark(sub2, [_fenced(wrong_type)], SANDBOX, expected=expected).results[0]
    assert (r.passed, r.reason) == (False, "failed") and "expected" in r.detail


def test_mbpp_base_uses_base_inputs_only(tmp_path):
    base = load_benchmark("mbpp", "mbpp", MBPP, limit=1)
    plus = load_benchmark("mbppplus", "mbppplus", MBPP, limit=1)
    n_base, n_plus = len(base.problems[0].record["base_input"]), len(plus.problems[0].record["plus_input"])
    # a solution that is right on the base inputs only (their first arguments are short tuples)
    sol = ("def similar_elements(a, b):\n    if len(a) > 4 or len(b) > 4 or not a or not b:\n        return None\n"
           "    return tuple(set(a) & set(b))")
    assert n_plus > 0 and n_base > 0
    exp = ground_truth(base, SANDBOX, tmp_path)
    assert score_benchmark(base, [_fenced(sol)], SANDBOX, expected=exp).pass_at_1 == 1.0
    assert score_benchmark(plus, [_fenced(sol)], SANDBOX, expected=ground_truth(plus, SANDBOX, tmp_path)).pass_at_1 == 0


def test_cruxeval_input_and_output_prediction():
    out_b = load_benchmark("co", "cruxeval_output", CRUX, limit=3)
    in_b = load_benchmark("ci", "cruxeval_input", CRUX, limit=3)
    right = [f"[ANSWER]assert f({p.record['input']}) == {p.record['output']}[/ANSWER]" for p in out_b.problems]
    assert score_benchmark(out_b, right, SANDBOX).pass_at_1 == 1.0
    assert score_benchmark(in_b, right, SANDBOX).pass_at_1 == 1.0
    wrong = ["[ANSWER]assert f(0) == 'nope'[/ANSWER]"] * 3
    assert score_benchmark(out_b, wrong, SANDBOX).pass_at_1 == 0.0
    cheat = [f"[ANSWER]assert f({p.record['input']}) == f({p.record['input']})[/ANSWER]" for p in out_b.problems]
    assert score_benchmark(out_b, cheat, SANDBOX).pass_at_1 == 0.0  # an output prediction may not call f


def test_bad_benchmark_file_is_a_clear_error(tmp_path):
    from warriorflow.errors import ConfigError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    with pytest.raises(ConfigError, match="lacks"):
        load_benchmark("mbppplus", "mbppplus", bad)
    with pytest.raises(ConfigError, match="not found"):
        load_benchmark("mbppplus", "mbppplus", tmp_path / "missing.jsonl")


# ------------------------------------------------------------------ comparison and promotion


def test_decide_rules():
    """The rule in short (tests/unit/test_promotion.py has the rest): a first model is not promoted, a
    significant paired gain is, equal per-problem results never are, a significant guarded drop blocks."""
    rule = PromotionSettings(min_delta=0.01, must_not_regress=["humaneval"], tolerance=0.0)

    def probs(bench, outcomes):
        return {f"{bench}/{i}": float(x) for i, x in enumerate(outcomes)}

    first = decide("run-1", {"humaneval": probs("h", [1] * 6)}, None, None, rule)
    assert not first.promoted and first.previous is None and "nothing to compare with" in first.reasons[0]
    prev = {"humaneval": probs("h", [0] * 6 + [1] * 4), "mbpp": probs("m", [1, 0] * 5)}
    better = decide("run-2", {"humaneval": probs("h", [1] * 10), "mbpp": prev["mbpp"]}, "run-1", prev, rule)
    assert better.promoted and better.deltas == pytest.approx({"humaneval": 0.6, "mbpp": 0.0})
    assert better.test == "mcnemar" and better.p_value == pytest.approx(0.5 ** 6)
    regress = decide("run-3", {"humaneval": probs("h", [0] * 10), "mbpp": probs("m", [1] * 10)}, "run-2",
                     {"humaneval": probs("h", [1] * 10), "mbpp": prev["mbpp"]}, rule)
    assert not regress.promoted and any("humaneval regressed" in r for r in regress.reasons)
    flat = decide("run-4", {"humaneval": probs("h", [1] * 3)}, "run-2", {"humaneval": probs("h", [1] * 3)}, rule)
    assert not flat.promoted and any("equal scores never promote" in r for r in flat.reasons)


# ------------------------------------------------------------------ end to end with a scripted backend


class _Scripted:
    """Answers each problem from its own data: canonical solutions (fake model, unit tests only)."""

    name = "scripted"

    def __init__(self, good: bool):
        self.good = good

    def chat(self, conversations, sampling):
        out = []
        for conv in conversations:
            user = conv[-1]["content"]
            out.append(Generation(self._answer(user) if self.good else "I do not know.", "stop"))
        return out

    def _answer(self, user: str) -> str:
        for line in MBPP.read_text().splitlines():
            r = json.loads(line)
            if f"`{r['entry_point']}`" in user:
                return _fenced(r["canonical_solution"])
        return "no idea"

    def close(self):
        pass


def test_evaluate_compare_and_models_cli(config, monkeypatch):
    from warriorflow.cli import main
    from warriorflow.evaluation import jobs

    backends = {"expert:smollm2-135m-instruct": _Scripted(good=False), "hf:/better": _Scripted(good=True)}
    monkeypatch.setattr(jobs, "open_model", lambda cfg, ref, objects: backends[ref])
    cli = CliRunner()
    # humaneval is guarded by the embedded promotion rule (must_not_regress), so it is evaluated too
    base = cli.invoke(main, ["evaluate", "expert:smollm2-135m-instruct", "-b", "mbpp", "-b", "humaneval", "-n", "5",
                             "--compare", "--json"])
    assert base.exit_code == 0, base.output
    assert json.loads(base.output)["benchmarks"][0]["pass_at_1"] == 0.0
    assert not json.loads(base.output)["decision"]["promoted"]  # nothing to compare the baseline with
    # the configured baseline (base: the training base model) has no results here: compare with the expert
    better = cli.invoke(main, ["evaluate", "hf:/better", "-b", "mbpp", "-b", "humaneval", "-n", "5",
                               "--against", "expert:smollm2-135m-instruct", "--json"])
    assert better.exit_code == 0, better.output
    doc = json.loads(better.output)
    assert doc["benchmarks"][0]["pass_at_1"] == 1.0 and doc["benchmarks"][0]["harness_version"] == HARNESS_VERSION
    assert doc["decision"]["previous"] == "expert:smollm2-135m-instruct"
    assert doc["decision"]["promoted"] and doc["decision"]["deltas"] == {"humaneval": 0.0, "mbpp": 1.0}
    # 5 mbpp problems flipped to pass, none to fail: exact McNemar, one-sided p = 1/32
    assert (doc["decision"]["test"], doc["decision"]["statistic"]) == ("mcnemar", 5.0)
    assert doc["decision"]["p_value"] == pytest.approx(1 / 32) and doc["decision"]["n_paired"] == 10
    assert doc["decision"]["champion_alias"] is None  # an hf: model is recorded, never published as champion
    again = cli.invoke(main, ["evaluate", "hf:/better", "-b", "mbpp", "-b", "humaneval", "-n", "5",
                              "--against", "expert:smollm2-135m-instruct"])
    assert again.exit_code == 0, again.output
    assert "test mcnemar: statistic 5, p-value 0.03125 (one-sided, 10 problems paired)" in again.output
    assert "McNemar exact: candidate-only 5, previous-only 0, p=0.03125 < alpha 0.05" in again.output
    listing = cli.invoke(main, ["models", "--json"])
    rows = {r["model_ref"]: r for r in json.loads(listing.output)}
    assert rows["hf:/better"]["champion"] and rows["hf:/better"]["scores"] == {"humaneval": 0.0, "mbpp": 1.0}
    assert rows["expert:smollm2-135m-instruct"]["scores"] == {"humaneval": 0.0, "mbpp": 0.0}
    from warriorflow.store.rating_store import RatingStore

    with RatingStore(config.duckdb_path, read_only=True) as store:
        n = store.query("SELECT count(*) AS n FROM eval_results WHERE model_ref = 'hf:/better'")[0]["n"]
        sha = store.query("SELECT data_sha256 FROM eval_results WHERE benchmark = 'mbpp' LIMIT 1")
    assert n == 2  # the re-run upserted the same two results
    import hashlib

    assert sha == [{"data_sha256": hashlib.sha256(MBPP.read_bytes()).hexdigest()}]
    text = cli.invoke(main, ["models"])
    assert "champion" in text.output and "mbpp" in text.output


def test_unknown_model_ref_is_a_clear_error(config):
    from warriorflow.cli import main

    result = CliRunner().invoke(main, ["evaluate", "no-such-run", "-b", "mbpp", "-n", "1"])
    assert result.exit_code == 2 and "no-such-run" in result.output and "fix:" in result.output
