"""Ingest battles: merge the run's battle result files (responses, votes, completed battles) through the
ingest loop. Every record is checked against the plan and the registry first
(:mod:`warriorflow.method.battle_records`); a file with any bad record is quarantined whole, with the
problem of each line in its report, and nothing of it is committed."""

from __future__ import annotations

from collections import defaultdict

from warriorflow.config import Config
from warriorflow.method.battle_records import ArenaFacts, PlannedBattleRef, check_battle_records
from warriorflow.quality.gates import gate_battles, gate_votes, rejection
from warriorflow.stages.base import Outcome, ingest_outcome, now_utc, stage
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.keys import run_prefix
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore

RESPONSE_COLUMNS = ("response_id", "instruction_id", "expert", "text", "sampling", "seed", "finish_reason",
                    "prompt_tokens", "completion_tokens", "run_id")
VOTE_COLUMNS = ("vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict", "raw_text", "run_id")


def arena_facts(config: Config, store: RatingStore, records: list[dict]) -> ArenaFacts:
    """The plan and the registry, as far as ``records`` refer to them: their battles (with the battles of their
    responses' instructions) and the stored responses they name."""
    battle_ids = sorted({r["battle_id"] for r in records if isinstance(r.get("battle_id"), str)})
    instruction_ids = sorted({r["instruction_id"] for r in records if r.get("type") == "response"
                              and isinstance(r.get("instruction_id"), str)})
    rows = store.query("SELECT battle_id, instruction_id, attacker, defender, judges FROM battles "
                       "WHERE battle_id IN (SELECT unnest(?)) OR instruction_id IN (SELECT unnest(?))",
                       [battle_ids, instruction_ids])
    battles = {r["battle_id"]: PlannedBattleRef(r["instruction_id"], r["attacker"], r["defender"],
                                                tuple(r["judges"] or ())) for r in rows}
    rids = sorted({r.get(f"{side}_response_id") for r in records if r.get("type") == "battle"
                   for side in ("attacker", "defender") if isinstance(r.get(f"{side}_response_id"), str)})
    stored = {r["response_id"]: (r["instruction_id"], r["expert"]) for r in store.query(
        "SELECT response_id, instruction_id, expert FROM responses WHERE response_id IN (SELECT unnest(?))", [rids])}
    return ArenaFacts(battles, set(config.registry.names()), {e.name for e in config.registry.with_role("judge")},
                      stored)


@stage("ingest_battles")
def ingest_battles_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    judges = {e.name for e in config.registry.with_role("judge")}

    def check(records: list[dict]) -> Rejection | None:
        problems = check_battle_records(records, arena_facts(config, store, records))
        if problems:
            return Rejection(f"{len(problems)} bad record(s): " + "; ".join(problems[:5]), {"problems": problems})
        for gate in (gate_votes([r for r in records if r["type"] == "vote"], judges=judges),
                     gate_battles([r for r in records if r["type"] == "battle"])):
            if not gate.success:  # the Great Expectations gate, as for mined instructions
                return rejection(gate)
        return None

    def merge(_key: str, records: list[dict]) -> dict[str, int]:
        by_type: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            by_type[r["type"]].append(r)
        store.upsert("responses", [{k: r.get(k) for k in RESPONSE_COLUMNS} for r in by_type["response"]],
                     key=["response_id"])
        store.upsert("votes", [{k: r.get(k) for k in VOTE_COLUMNS} for r in by_type["vote"]], key=["vote_id"])
        store.update("battles", "battle_id", [
            {"battle_id": b["battle_id"], "attacker_response_id": b["attacker_response_id"],
             "defender_response_id": b["defender_response_id"], "status": "done",
             "judge_calls": b.get("judge_calls"), "judge_calls_saved": b.get("judge_calls_saved"),
             "completed_at": now_utc()} for b in by_type["battle"]])
        return {"responses": len(by_type["response"]), "votes": len(by_type["vote"]),
                "battles": len(by_type["battle"]),
                "invalid_votes": sum(v["verdict"] == "invalid" for v in by_type["vote"])}

    keys = [k for k in objects.list(run_prefix(run_id, "battle/out")) if k.endswith(".jsonl")]
    report = ingest_files(store, objects, keys, kind="battles", stage="battle", merge=merge, check=check)
    return ingest_outcome(report)
