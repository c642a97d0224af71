"""A small real arena of the three embedded experts (llama.cpp on CPU): instructions mined and selected
for real, battles planned, fought and judged, then rated. Checks that the fairness rules hold in
the stored data, that re-running plans nothing, and that the interchange commands work."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from click.testing import CliRunner

from tests.helpers import GEMMA, QWEN, SMOLLM2, write_yaml
from warriorflow.cli import main
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.stages.cycles import battle_cycle, instruction_cycle
from warriorflow.store.rating_store import RatingStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def cfg(tmp_path):
    return load_config(write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {CONFIG_DIR / "experts.embedded.yaml"}
paths: {{home: {tmp_path / "home"}}}
inference: {{llamacpp: {{threads: 2, n_parallel: 4, ctx_per_sequence: 1536}}}}
mining: {{temperatures: [1.0], top_ps: [0.99, 1.0], samples_per_config: 2, max_tokens: 64, min_chars: 15}}
difficulty: {{keep_min: 1}}
compression: {{budget: 1.0}}
arena: {{response_max_tokens: 40, both_orders: true}}
rating: {{bootstrap_rounds: 20}}
"""))


def test_small_real_arena_keeps_the_fairness_rules(cfg, tmp_path):
    instruction_cycle(cfg, "mine-1")
    reports = {r.stage: r for r in battle_cycle(cfg, "battle-1")}
    assert reports["plan"].counts["planned"] >= 1
    assert reports["ingest_votes"].counts["battles_done"] == reports["plan"].counts["planned"]
    assert reports["ingest_votes"].counts["battles_open"] == 0
    # every job loaded exactly one model: the receipts say so
    from warriorflow.store.objects import open_objects

    objects = open_objects(cfg)
    receipts = [json.loads(objects.get_bytes(k)) for k in objects.list("runs/") if k.endswith(".receipt.json")]
    assert {r["step"] for r in receipts} >= {"score", "embed", "tag", "respond", "judge"}
    # an execute job loads no model (the sandbox runs the responses' code)
    assert all(r["models_loaded"] == ([] if r["step"] == "execute" else [r["model"]]) for r in receipts)

    with RatingStore(cfg.duckdb_path) as store:
        battles = store.query("SELECT b.*, i.expert AS miner FROM battles b JOIN instructions i USING (instruction_id)")
        votes = store.query("SELECT * FROM votes")
        weights = {e.name: e.weights for e in cfg.registry.experts}
        answerers = {e.name for e in cfg.registry.with_role("answer")}
        assert battles and all(b["status"] == "done" for b in battles)
        for b in battles:
            # attacker = the miner, unless the miner cannot answer (the base model)
            assert b["attacker"] == b["miner"] if b["miner"] in answerers else b["attacker"] in answerers
            assert b["defender"] != b["attacker"] and {b["attacker"], b["defender"]} <= answerers
        by_battle = defaultdict(list)
        for v in votes:
            by_battle[v["battle_id"]].append(v)
        for b in battles:
            vs = by_battle[b["battle_id"]]
            assert vs, "every battle was judged"
            for v in vs:  # suspicion averting
                assert v["judge"] not in (b["attacker"], b["defender"])
                assert weights[v["judge"]] not in (weights[b["attacker"]], weights[b["defender"]])
            per_judge = defaultdict(set)
            for v in vs:
                per_judge[v["judge"]].add(v["shown_order"])
            assert all(o == {"attacker_first", "defender_first"} for o in per_judge.values())  # both orders
            assert all(v["verdict"] in ("attacker", "defender", "tie", "invalid") for v in vs)
        # offensive-defensive balance: with SmolLM2 and Qwen the only answerers, defences alternate
        defences = Counter(b["defender"] for b in battles)
        attacks = Counter(b["attacker"] for b in battles)
        assert abs(defences[SMOLLM2] - defences[QWEN]) <= max(1, abs(attacks[SMOLLM2] - attacks[QWEN]))
        assert GEMMA not in attacks and GEMMA not in defences
        ratings = {r["method"]: r["n"] for r in store.query("SELECT method, count(*) AS n FROM rating_history "
                                                            "GROUP BY method")}
        assert ratings.pop("bt_style_coef", 0) <= 4  # a style feature that never varied has no coefficient
        assert ratings == {"bt": 2, "elo": 2, "bt_style": 2}
        sft = store.query("SELECT * FROM sft")
        assert len(sft) == len({b["instruction_id"] for b in battles})
        assert all(r["response"] and r["battle_ids"] and r["votes"] for r in sft)
        version = store.query("SELECT DISTINCT rating_version FROM gold_selections")

    # missing only: a second cycle plans nothing and leaves the ratings as they were
    again = {r.stage: r for r in battle_cycle(cfg, "battle-2")}
    assert again["plan"].counts["planned"] == 0 and again["plan"].counts["response_jobs"] == 0
    with RatingStore(cfg.duckdb_path) as store:
        assert store.query("SELECT DISTINCT rating_version FROM gold_selections") == version
        assert len(store.query("SELECT * FROM votes")) == len(votes)

    runner = CliRunner()
    args = ["--config", str(cfg.settings_file)]
    board = runner.invoke(main, [*args, "leaderboard"])
    assert board.exit_code == 0 and SMOLLM2 in board.output and "1st-pos wins" in board.output
    exported = tmp_path / "battles.jsonl"
    assert runner.invoke(main, [*args, "export", "battles", "--out", str(exported)]).exit_code == 0
    fast = runner.invoke(main, [*args, "export", "battles", "--format", "fastchat"])
    rows = [json.loads(x) for x in fast.output.splitlines()]
    assert len(rows) == len(battles) and all(r["winner"].startswith(("model_a", "model_b", "tie")) for r in rows)
    rated = runner.invoke(main, [*args, "rate", "--battles", str(exported), "--json"])
    out = json.loads(rated.output)
    assert set(out) == {"elo", "bt", "final", "gold", "invalid_votes"} and set(out["elo"]) == {SMOLLM2, QWEN}
