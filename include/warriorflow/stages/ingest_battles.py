"""Ingest battles: merge the run's battle result files (responses, votes, completed battles) through the
ingest loop; a file with an unsound record is quarantined whole."""

from __future__ import annotations

from collections import defaultdict

from warriorflow.config import Config
from warriorflow.stages.base import Outcome, ingest_outcome, now_utc, stage
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.keys import run_prefix
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore

REQUIRED = {
    "response": ("response_id", "instruction_id", "expert", "text", "sampling", "run_id"),
    "vote": ("vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict", "run_id"),
    "battle": ("battle_id", "attacker_response_id", "defender_response_id"),
}
RESPONSE_COLUMNS = ("response_id", "instruction_id", "expert", "text", "sampling", "seed", "finish_reason",
                    "prompt_tokens", "completion_tokens", "run_id")
VOTE_COLUMNS = ("vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict", "raw_text", "run_id")


def check_battle_records(records: list[dict]) -> list[str]:
    """Structural problems of a battle result file (empty when it is sound)."""
    problems = []
    for n, r in enumerate(records, start=1):
        kind = r.get("type")
        if kind not in REQUIRED:
            problems.append(f"record {n}: unknown type {kind!r}")
            continue
        missing = [k for k in REQUIRED[kind] if r.get(k) is None]
        if missing:
            problems.append(f"record {n} ({kind}): missing {missing}")
        if kind == "vote" and r.get("verdict") not in ("attacker", "defender", "tie", "invalid"):
            problems.append(f"record {n} (vote): verdict {r.get('verdict')!r}")
    vote_ids = [r["vote_id"] for r in records if r.get("type") == "vote" and r.get("vote_id")]
    if len(vote_ids) != len(set(vote_ids)):
        problems.append("duplicate vote_id")
    return problems


@stage("ingest_battles")
def ingest_battles_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    def check(records: list[dict]) -> Rejection | None:
        problems = check_battle_records(records)
        return Rejection("; ".join(problems[:5]), {"problems": problems}) if problems else None

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
