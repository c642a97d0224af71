"""A small but real rating store for the status-page tests: rows inserted through RatingStore, ratings and
gold computed by the real rate stage, one snapshot between two gold batches, stage runs and drop reasons."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from warriorflow.method import ids
from warriorflow.stages.cycles import rate_and_select_gold
from warriorflow.store.rating_store import RatingStore

# An expert name with markup in it: the page must escape it.
EXPERTS = ("alpha", "beta", "gamma<&>")
SNAPSHOT_AT = datetime(2026, 11, 20, 12, 0, 0)
SNAPSHOT_ID = "snap-0001"
SNAPSHOT_URI = "file:///tmp/objects/snapshots/snap-0001/"
SNAPSHOT_N = 1
DROP_REASON = "<script>alert('x')</script> near duplicate"
GOLD_BEFORE_SNAPSHOT = 1  # of the 3 gold examples, this many were selected before the snapshot

# winner per (attacker, defender) as the one judge (the third expert) sees it; None = an invalid vote
VERDICTS = {("alpha", "beta"): "attacker", ("alpha", "gamma<&>"): "attacker", ("beta", "alpha"): "defender",
            ("beta", "gamma<&>"): "tie", ("gamma<&>", "alpha"): None, ("gamma<&>", "beta"): "defender"}


def _instruction(text: str, expert: str, status: str, **extra) -> dict:
    return {"instruction_id": ids.instruction_id(text), "text": text, "expert": expert, "temperature": 1.0,
            "top_p": 0.99, "seed": 1, "prefix_sha256": "p", "mined_at": "2026-11-19 00:00:00", "run_id": "r1",
            "status": status, **extra}


def build(config, path: Path | None = None) -> dict:
    """Write the fixture store at ``path`` (default: the config's store); return what was put in it."""
    path = path or config.duckdb_path
    run = "manual__fixture"
    selected = {e: _instruction(f"Write a Python function number {i} for {e}.", e, "selected")
                for i, e in enumerate(EXPERTS)}
    others = [_instruction("Sort a list.", "alpha", "mined"), _instruction("Parse a date string.", "beta", "scored"),
              _instruction("Sort a list, please!", "alpha", "dropped", drop_reason="near_duplicate"),
              _instruction("hi", "beta", "dropped", drop_reason="too_easy")]
    with RatingStore(path) as store:
        store.upsert("instructions", [*selected.values(), *others], key=["instruction_id"])
        store.upsert("dropped_records", [
            {"record_id": ids.record_id("dedup", others[2]["instruction_id"]), "stage": "dedup", "reason": DROP_REASON,
             "expert": "alpha", "instruction_id": others[2]["instruction_id"], "run_id": run},
            {"record_id": ids.record_id("difficulty", others[3]["instruction_id"]), "stage": "difficulty",
             "reason": "too_easy", "expert": "beta", "instruction_id": others[3]["instruction_id"], "run_id": run},
            {"record_id": ids.record_id("mine", "empty-1"), "stage": "mine", "reason": "empty", "run_id": run}],
            key=["record_id"])
        responses, battles, votes, order = [], [], [], 0
        for attacker, ins in selected.items():
            iid = ins["instruction_id"]
            for expert in EXPERTS:
                responses.append({"response_id": ids.response_id(iid, expert, {}, 0), "instruction_id": iid,
                                  "expert": expert, "text": f"def f(): return {expert!r}" + " " * len(expert),
                                  "sampling": {}, "seed": 0, "run_id": run})
            for defender in EXPERTS:
                if defender == attacker:
                    continue
                bid = ids.battle_id(iid, attacker, defender)
                battles.append({"battle_id": bid, "instruction_id": iid, "attacker": attacker, "defender": defender,
                                "attacker_response_id": ids.response_id(iid, attacker, {}, 0),
                                "defender_response_id": ids.response_id(iid, defender, {}, 0),
                                "battle_order": order, "status": "done", "run_id": run})
                order += 1
                judge = next(e for e in EXPERTS if e not in (attacker, defender))
                verdict = VERDICTS[(attacker, defender)] or "invalid"
                raw = {"attacker": "A", "defender": "B"}.get(verdict, verdict)
                votes.append({"vote_id": ids.vote_id(bid, judge, "attacker_first"), "battle_id": bid, "judge": judge,
                              "shown_order": "attacker_first", "raw_verdict": raw, "verdict": verdict,
                              "run_id": run})
        planned = others[1]["instruction_id"]
        battles.append({"battle_id": ids.battle_id(planned, "beta", "alpha"), "instruction_id": planned,
                        "attacker": "beta", "defender": "alpha", "battle_order": order, "status": "planned",
                        "run_id": run})
        store.upsert("responses", responses, key=["response_id"])
        store.upsert("battles", battles, key=["battle_id"])
        store.upsert("votes", votes, key=["vote_id"])
        store.upsert("stage_runs", [
            {"run_id": "manual__old", "stage": "dedup", "attempt": 1, "counts": {"in": 9, "near_duplicate": 9},
             "started_at": "2026-11-18 00:00:00", "finished_at": "2026-11-18 00:01:00"},
            {"run_id": run, "stage": "dedup", "attempt": 1, "counts": {"in": 7, "near_duplicate": 1},
             "started_at": "2026-11-19 00:00:00", "finished_at": "2026-11-19 00:01:00"}],
            key=["run_id", "stage", "attempt"])
        rate_and_select_gold(config, store, run)  # real Elo, BT with CIs, gold
        store.upsert("snapshots", [{"snapshot_id": SNAPSHOT_ID, "uri": SNAPSHOT_URI, "manifest_sha256": "0" * 64,
                                    "n_examples": SNAPSHOT_N, "config_hash": "c", "rating_version": "v0",
                                    "created_at": SNAPSHOT_AT}], key=["snapshot_id"])
        gold = [r["instruction_id"] for r in store.query("SELECT instruction_id FROM gold_selections ORDER BY 1")]
        store.update("gold_selections", "instruction_id", [
            {"instruction_id": iid, "selected_at": SNAPSHOT_AT + (timedelta(hours=-1) if i < GOLD_BEFORE_SNAPSHOT
                                                                 else timedelta(hours=1 + i))}
            for i, iid in enumerate(gold)])
    return {"path": path, "experts": EXPERTS, "gold": len(gold), "new_gold": len(gold) - GOLD_BEFORE_SNAPSHOT,
            "battles_done": len(battles) - 1, "votes": len(votes)}
