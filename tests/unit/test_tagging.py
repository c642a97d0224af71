"""Task tagging: parsing, judge choice, the batched judge call, and the idempotent store-level stage."""

from __future__ import annotations

import json

import pytest

from tests.helpers import SMOLLM2, write_yaml
from tests.scripted_backend import ScriptedBackend
from warriorflow.config import TASK_CATEGORIES, load_config, load_registry
from warriorflow.errors import ConfigError, StoreError
from warriorflow.method import tagging as tg
from warriorflow.stages.cycles import run_jobs_here
from warriorflow.stages.tag import plan_tags_stage, tag_stage
from warriorflow.store.rating_store import RatingStore

CATS = list(TASK_CATEGORIES)
REGISTRY = """
experts:
  - {name: a, backend: llamacpp, model: {gguf: /a.gguf}, weights_id: wa}
  - {name: a-served, backend: openai, model: {endpoint: "http://h/v1"}, weights_id: wa}
  - {name: b, backend: llamacpp, model: {gguf: /b.gguf}}
  - {name: c, backend: llamacpp, model: {gguf: /c.gguf}, roles: [mine, answer]}
"""
TEMPLATE = "Sort this ({language}) into one of\n{categories}\n:: {instruction}"


def test_parse_category_exact_tolerant_and_ambiguous():
    cases = {"debugging": "debugging", "  Code Generation\n": "code generation", "[[transpile]]": "transpile",
             '"theory".': "theory", "It is optimisation work.": "optimisation",
             "Category: code   generation": "code generation", "debugging or analysis": None, "bug fixing": None,
             "": None, "reasoningly": None, "code generations": None}
    assert {t: tg.parse_category(t, CATS) for t in cases} == cases
    assert tg.parse_category(None, CATS) is None  # type: ignore[arg-type]


def test_render_prompt_fills_once_and_lists_the_categories():
    conv = tg.render_prompt(TEMPLATE, "Use {categories} and {instruction} literally", ["x y", "z"], "Python")
    assert conv == [{"role": "user", "content": "Sort this (Python) into one of\n- x y\n- z\n:: "
                                                 "Use {categories} and {instruction} literally"}]
    with pytest.raises(ConfigError, match=r"\{categories\}"):
        tg.check_template("only {instruction}")


def test_the_shipped_prompt_names_every_default_category(config):
    template = config.prompt_path(config.settings.tagging.prompt).read_text()
    tg.check_template(template)
    assert all(f"- {c}:" in template for c in CATS)


def test_judges_follow_eligibility_and_preference(tmp_path):
    reg = load_registry(write_yaml(tmp_path / "e.yaml", REGISTRY))
    every = tg.tagging_judges(reg, None)
    assert [e.name for e in every] == ["a", "a-served", "b"]
    assert tg.choose_judge("a", reg, every).name == "b"  # not the miner, nor its weights twin
    assert tg.choose_judge("b", reg, every).name == "a"
    assert tg.choose_judge("c", reg, tg.tagging_judges(reg, ["b", "a"])).name == "b"  # preference order
    assert tg.choose_judge("b", reg, tg.tagging_judges(reg, ["b"])) is None
    with pytest.raises(ConfigError, match="nobody"):
        tg.tagging_judges(reg, ["nobody"])
    with pytest.raises(ConfigError, match="'judge' role"):
        tg.tagging_judges(reg, ["c"])


def test_tag_instructions_batches_per_judge_constrains_and_keeps_invalid_raw_text(tmp_path):
    reg = load_registry(write_yaml(tmp_path / "e.yaml", REGISTRY))
    ins = [{"instruction_id": "i1", "text": "Fix my loop", "expert": "a"},
           {"instruction_id": "i2", "text": "Port this to Rust", "expert": "b"},
           {"instruction_id": "i3", "text": "Why O(n log n)?", "expert": "c"}]
    backends = {"a": ScriptedBackend("a", "always:transpile"), "b": ScriptedBackend("b", "always:no idea")}
    rows = tg.tag_instructions(ins, reg, backends, TEMPLATE, CATS, "Python", "r1")
    assert [(r["instruction_id"], r["judge"], r["category"], r["valid"], r["raw_text"]) for r in rows] == [
        ("i1", "b", None, False, "no idea"), ("i2", "a", "transpile", True, "transpile"),
        ("i3", "a", "transpile", True, "transpile")]
    assert all(r["categories"] == CATS and r["run_id"] == "r1" and len(r["prompt_sha256"]) == 64 for r in rows)
    (convs, sampling), = backends["a"].calls  # one batched call for both of a's instructions
    assert len(convs) == 2 and sampling.choices == tuple(CATS) and sampling.temperature == 0.0
    assert convs[0][0]["content"].endswith(":: Port this to Rust")
    assert tg.check_tag_rows(rows, CATS) == []
    bad = [dict(rows[1], category="poetry"), dict(rows[0], category="debugging"), {"instruction_id": "x"}]
    assert len(tg.check_tag_rows(bad + [rows[2], rows[2]], CATS)) == 4


# ------------------------------------------------------------------------------------------ the stage


def _cfg(tmp_path, tagging: str = "{}"):
    write_yaml(tmp_path / "experts.yaml", REGISTRY)
    return load_config(write_yaml(tmp_path / "settings.yaml", f"""
experts_file: experts.yaml
paths: {{home: {tmp_path / "home"}}}
tagging: {tagging}
"""))


def _seed(store, statuses: dict[str, tuple[str, str]]) -> None:
    store.upsert("instructions", [
        {"instruction_id": iid, "text": f"task {iid}", "expert": miner, "mined_at": "2026-11-20 00:00:00",
         "run_id": "m1", "status": status} for iid, (miner, status) in statuses.items()], key=["instruction_id"])


@pytest.fixture
def fake_judges(monkeypatch):
    from warriorflow.inference import factory

    built: list[ScriptedBackend] = []
    styles = {"a": "always:debugging", "a-served": "always:theory", "b": "always:maybe reasoning or analysis"}

    def fake_backend_for(expert, cfg):
        built.append(ScriptedBackend(expert.name, styles[expert.name]))
        return built[-1]

    monkeypatch.setattr(factory, "backend_for", fake_backend_for)
    return built


def tag_step(cfg, store, objects, run_id) -> dict:
    """The tag step as the cycle runs it: plan the tag jobs, run them here, ingest; both reports' counts."""
    plan = plan_tags_stage(cfg, store, objects, run_id)
    run_jobs_here(cfg, plan.value or [])
    return {**plan.counts, **tag_stage(cfg, store, objects, run_id).counts}


def test_tag_stage_tags_selected_once_and_stores_invalid_answers(tmp_path, fake_judges):
    from warriorflow.store.objects import open_objects

    cfg = _cfg(tmp_path)
    objects = open_objects(cfg)
    with RatingStore(cfg.duckdb_path) as store:
        _seed(store, {"i1": ("a", "selected"), "i2": ("b", "selected"), "i3": ("c", "selected"),
                      "i4": ("b", "clean"), "i5": ("a", "dropped")})
        counts = tag_step(cfg, store, objects, "run-1")
        assert counts == {"untagged": 3, "no_eligible_judges": 0, "tag_jobs": 2, "tags_asked": 3, "tagged": 3,
                          "invalid": 1, "category_debugging": 2}
        tags = store.query("SELECT instruction_id, category, valid, judge, raw_text FROM task_tags ORDER BY 1")
        assert [tuple(t.values()) for t in tags] == [
            ("i1", None, False, "b", "maybe reasoning or analysis"), ("i2", "debugging", True, "a", "debugging"),
            ("i3", "debugging", True, "a", "debugging")]
        cats = store.query("SELECT instruction_id, task_category FROM instructions ORDER BY 1")
        assert {r["instruction_id"]: r["task_category"] for r in cats} == {
            "i1": None, "i2": "debugging", "i3": "debugging", "i4": None, "i5": None}
        assert all(b.closed for b in fake_judges) and sorted(b.name for b in fake_judges) == ["a", "b"]
        assert len(list(objects.list("runs/run-1/jobs/tag/in/"))) == 2  # one job per judge

        # idempotent: nothing left to tag, no backend built, the store unchanged
        fake_judges.clear()
        before = store.query("SELECT * FROM task_tags ORDER BY instruction_id")
        again = tag_step(cfg, store, objects, "run-1")
        assert again["untagged"] == 0 and again.get("tagged", 0) == 0 and fake_judges == []
        assert store.query("SELECT * FROM task_tags ORDER BY instruction_id") == before

        # a newly selected instruction is tagged by the next run, alone
        store.update("instructions", "instruction_id", [{"instruction_id": "i4", "status": "selected"}])
        assert tag_step(cfg, store, objects, "run-2")["tagged"] == 1
        assert [b.name for b in fake_judges] == ["a"] and len(fake_judges[0].calls[0][0]) == 1
        runs = store.query("SELECT run_id, stage, attempt, counts->>'tagged' AS tagged FROM stage_runs "
                           "WHERE stage = 'tag' ORDER BY run_id, attempt")
        # the rerun of run-1 is its second attempt: it adds a row and leaves the first attempt's counts alone
        assert [(r["run_id"], r["stage"], r["attempt"], r["tagged"]) for r in runs] == [
            ("run-1", "tag", 1, "3"), ("run-1", "tag", 2, None), ("run-2", "tag", 1, "1")]


def test_tag_stage_scope_preferred_judges_no_judge_and_disabled(tmp_path, fake_judges):
    from warriorflow.store.objects import open_objects

    cfg = _cfg(tmp_path, "{scope: kept, judges: [a-served]}")
    objects = open_objects(cfg)
    with RatingStore(cfg.duckdb_path) as store:
        _seed(store, {"i1": ("a", "clean"), "i2": ("b", "scored"), "i3": ("c", "selected"), "i4": ("c", "unique")})
        counts = tag_step(cfg, store, objects, "r")
        assert counts == {"untagged": 3, "no_eligible_judges": 1, "tag_jobs": 1, "tags_asked": 2, "tagged": 2,
                          "category_theory": 2}
        assert {r["instruction_id"] for r in store.query("SELECT instruction_id FROM task_tags")} == {"i2", "i3"}
        assert [b.name for b in fake_judges] == ["a-served"]
    off = _cfg(tmp_path / "off", "{enabled: false}")
    with RatingStore(off.duckdb_path) as store:
        _seed(store, {"i1": ("a", "selected")})
        assert tag_step(off, store, open_objects(off), "r") == {"disabled": 1}
        assert store.query("SELECT count(*) AS n FROM task_tags")[0]["n"] == 0


def test_tag_stage_quarantines_a_bad_result_file(tmp_path, fake_judges):
    from warriorflow.store.keys import job_out_for
    from warriorflow.store.objects import open_objects

    cfg = _cfg(tmp_path)
    objects = open_objects(cfg)
    with RatingStore(cfg.duckdb_path) as store:
        _seed(store, {"i1": ("a", "selected")})
        job = plan_tags_stage(cfg, store, objects, "r").value[0]
        key = job_out_for(job["key"])  # a worker wrote a category outside the set
        objects.put_bytes(key, (json.dumps({"instruction_id": "i1", "category": "poetry", "valid": True,
                                            "judge": job["model"], "run_id": "r", "prompt_sha256": "x"}) + "\n"
                                ).encode())
        with pytest.raises(StoreError, match="quarantined.*poetry"):
            tag_stage(cfg, store, objects, "r")
        assert not objects.exists(key) and objects.exists(f"quarantine/tag/{key}")
        assert store.query("SELECT stage FROM quarantine") == [{"stage": "tag"}]
        assert store.query("SELECT count(*) AS n FROM task_tags")[0]["n"] == 0
        assert fake_judges == []  # the existing result file was used, no judge was asked
        # a result file answering an instruction its job did not ask about is refused the same way
        objects.put_bytes(key, (json.dumps({"instruction_id": "i9", "category": "theory", "valid": True,
                                            "judge": job["model"], "run_id": "r", "prompt_sha256": "x"}) + "\n"
                                ).encode())
        with pytest.raises(StoreError, match="was not asked"):
            tag_stage(cfg, store, objects, "r")


def test_bad_tagging_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="categories"):
        _cfg(tmp_path, "{categories: [debugging, Debugging]}")
    with pytest.raises(ConfigError, match="scope"):
        _cfg(tmp_path / "x", "{scope: everything}")


@pytest.mark.slow
def test_the_real_tiny_judge_answers_a_category(smollm2_backend, tmp_path, config):
    """SmolLM2 (llama.cpp, grammar-constrained) tags three instructions: every answer is a category."""
    reg = load_registry(write_yaml(tmp_path / "e.yaml", f"""
experts:
  - {{name: {SMOLLM2}, backend: llamacpp, model: {{gguf: /x.gguf}}}}
  - {{name: miner, backend: llamacpp, model: {{gguf: /m.gguf}}, roles: [mine]}}
"""))
    ins = [{"instruction_id": f"i{n}", "text": t, "expert": "miner"} for n, t in enumerate([
        "Write a Python function that returns the n-th Fibonacci number.",
        "My loop `for i in range(len(xs)): xs.remove(xs[i])` raises IndexError. Why, and how do I fix it?",
        "Translate this JavaScript to Python: const sq = xs.map(x => x * x);"])]
    template = config.prompt_path("task_tagging.txt").read_text()
    rows = tg.tag_instructions(ins, reg, {SMOLLM2: smollm2_backend}, template, CATS, "Python", "real")
    assert [r["instruction_id"] for r in rows] == ["i0", "i1", "i2"]
    assert all(r["valid"] and r["category"] in CATS and r["raw_text"].strip() == r["category"] for r in rows), rows
