"""The instruction pipeline end to end on the real tiny models: mine (SmolLM2 and Qwen by their chat
templates, Gemma by few-shot) -> GX gate -> ingest -> dedup -> judge scoring -> decontamination ->
warm-started compression, twice. Asserts structure, provenance, stop behaviour and drop reasons, not
quality (135M-500M models write what they write)."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from tests.helpers import GEMMA, QWEN, SMOLLM2, write_yaml
from warriorflow.cli import main
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.method import ids
from warriorflow.method.mining import TURN_MARKERS
from warriorflow.stages.compress import compress_stage, plan_embeddings_stage
from warriorflow.stages.cycles import instruction_cycle, run_jobs_here
from warriorflow.stages.decontaminate import decontaminate_stage
from warriorflow.stages.dedup import dedup_stage
from warriorflow.stages.ingest import ingest_stage
from warriorflow.stages.mine import mine_to_files
from warriorflow.stages.score import plan_scores_stage, score_stage
from warriorflow.store.benchmarks import load_humaneval
from warriorflow.store.keys import mine_key
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KNOWN_MINE_DROPS = {"empty", "too_short", "too_long", "truncated", "code_only"}


@pytest.fixture
def cfg(tmp_path):
    settings = write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {CONFIG_DIR / "experts.embedded.yaml"}
paths: {{home: {tmp_path / "home"}}}
inference: {{llamacpp: {{threads: 2, n_parallel: 4, ctx_per_sequence: 1024}}}}
mining: {{temperatures: [1.0, 1.2], top_ps: [0.99], samples_per_config: 2, max_tokens: 96, min_chars: 15}}
difficulty: {{keep_min: 1}}
compression: {{budget: 0.5}}
""")
    return load_config(settings)


def _planted(run_id: str) -> dict:
    text = load_humaneval()[0].text  # a HumanEval problem, as if an expert had mined it verbatim
    return {"instruction_id": ids.instruction_id(text), "text": text[:3900], "expert": SMOLLM2, "temperature": 1.0,
            "top_p": 0.99, "seed": 1, "prefix_sha256": "planted", "mined_at": "2026-11-22 00:00:00",
            "run_id": run_id}


def test_two_runs_of_the_instruction_pipeline(cfg):
    objects = open_objects(cfg)
    counts = mine_to_files(cfg, objects, "run-1")
    assert set(counts) == {SMOLLM2, QWEN, GEMMA} and all(c["generated"] == 4 for c in counts.values())

    mined = {e: [json.loads(x) for x in objects.get_bytes(mine_key("run-1", e)).decode().splitlines()]
             for e in counts}
    dropped = {e: [json.loads(x) for x in objects.get_bytes(mine_key("run-1", e, True)).decode().splitlines()]
               for e in counts}
    for e in counts:
        assert len(mined[e]) + len(dropped[e]) == 4
        assert {d["reason"] for d in dropped[e]} <= KNOWN_MINE_DROPS
        for r in mined[e]:  # provenance and stop behaviour
            assert r["expert"] == e and r["run_id"] == "run-1" and r["temperature"] in (1.0, 1.2)
            assert r["top_p"] == 0.99 and isinstance(r["seed"], int) and len(r["prefix_sha256"]) == 64
            assert r["instruction_id"] == ids.instruction_id(r["text"])
            assert not any(m.strip() in r["text"] for m in TURN_MARKERS if m.strip())
            assert 15 <= len(r["text"]) <= 4000
        if e == GEMMA:
            assert all("\n" not in r["text"] for r in mined[e])  # a run-on base model stops at its line
    # mining again for the same run is a no-op (result files exist)
    assert mine_to_files(cfg, objects, "run-1") == {}

    objects.put_bytes("runs/run-1/mine/planted.jsonl", (json.dumps(_planted("run-1")) + "\n").encode())
    with RatingStore(cfg.duckdb_path) as store:
        ing = ingest_stage(cfg, store, objects, "run-1")
        n_mined = sum(len(v) for v in mined.values()) + 1
        assert ing.counts["ingested"] + ing.counts.get("dropped_exact_duplicate", 0) == n_mined
        snapshot = store.query("SELECT * FROM instructions ORDER BY instruction_id")
        assert ingest_stage(cfg, store, objects, "run-1").counts == {}  # idempotent
        assert store.query("SELECT * FROM instructions ORDER BY instruction_id") == snapshot

        dd = dedup_stage(cfg, store, "run-1")
        assert dd.counts["kept"] + dd.counts["dropped_near_duplicate"] == ing.counts["ingested"]
        run_jobs_here(cfg, plan_scores_stage(cfg, store, objects, "run-1").value)  # one job per judge
        sc = score_stage(cfg, store, objects, "run-1")
        scores = store.query("SELECT * FROM difficulty_scores")
        assert scores and all(s["valid"] and 1 <= s["score"] <= 10 for s in scores)  # constrained output
        # no self-judging: a judge never scores its own miner's instruction
        own = store.query("SELECT count(*) AS n FROM difficulty_scores s JOIN instructions i USING (instruction_id) "
                          "WHERE s.judge = i.expert")
        assert own == [{"n": 0}]
        assert sc.counts["kept"] == dd.counts["kept"]  # keep_min 1: every validly scored one stays

        dc = decontaminate_stage(cfg, store, "run-1")
        assert dc.counts["dropped_contaminated"] >= 1
        planted = store.query("SELECT status, drop_reason FROM instructions WHERE prefix_sha256 = 'planted'")
        assert planted == [{"status": "dropped", "drop_reason": "contaminated"}]
        hit = store.query("SELECT benchmark, task_id FROM contamination c JOIN instructions i USING (instruction_id) "
                          "WHERE i.prefix_sha256 = 'planted' ORDER BY shared_ngrams DESC LIMIT 1")
        assert hit == [{"benchmark": "humaneval", "task_id": "HumanEval/0"}]

        run_jobs_here(cfg, plan_embeddings_stage(cfg, store, objects, "run-1").value)  # the embed job
        cp = compress_stage(cfg, store, objects, "run-1")
        assert cp.counts["selected"] == math.ceil(0.5 * cp.counts["pool"])
        first_picks = {r["instruction_id"] for r in store.query("SELECT instruction_id FROM instruction_selections")}
        emb = store.query("SELECT dim, len(vector) AS n FROM embeddings LIMIT 1")
        assert emb == [{"dim": 384, "n": 384}]

        reasons = {(r["stage"], r["reason"]) for r in store.named("drop_reasons")}
        assert ("decontaminate", "contaminated") in reasons
        assert {r for s, r in reasons if s == "mine"} <= KNOWN_MINE_DROPS

    # run 2: new seeds, warm-started selection; earlier picks stay picked, nothing is redone
    instruction_cycle(cfg, "run-2")
    with RatingStore(cfg.duckdb_path) as store:
        sel = store.query("SELECT instruction_id, run_id FROM instruction_selections")
        assert first_picks <= {r["instruction_id"] for r in sel}
        assert {r["run_id"] for r in sel if r["instruction_id"] in first_picks} == {"run-1"}
        seeds = store.query("SELECT run_id, count(DISTINCT seed) AS n FROM instructions GROUP BY run_id")
        assert {r["run_id"] for r in seeds} >= {"run-1", "run-2"}
        runs = store.query("SELECT DISTINCT stage FROM stage_runs WHERE run_id = 'run-2'")
        assert {r["stage"] for r in runs} == {"ingest", "dedup", "filter", "plan_scores", "score", "decontaminate",
                                              "plan_embeddings", "compress", "plan_tags", "tag"}

    out = CliRunner().invoke(main, ["--config", str(cfg.settings_file), "instructions"])
    assert out.exit_code == 0, out.output
    assert "instruction summary" in out.output and "drop reasons" in out.output and "contaminated" in out.output
