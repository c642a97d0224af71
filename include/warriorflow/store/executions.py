"""Read the ``executions`` table (execution evidence, one row per battle and role): the records, the
deterministic execution vote of each battle, and the judges' summary lines. Only the writer's
``ingest_executions`` step writes the table (:mod:`warriorflow.stages.execute`)."""

from __future__ import annotations

from collections.abc import Sequence

from warriorflow.method.execution import ORIGINS, ROLES, execution_vote, summary_lines
from warriorflow.store.rating_store import RatingStore

COLUMNS = ("battle_id", "role", "response_id", "code_task", "has_code", "status", "tests_total", "tests_passed",
           "instruction_total", "instruction_passed", "attacker_total", "attacker_passed", "defender_total",
           "defender_passed", "runs", "seconds", "details", "run_id")


def record_of(row: dict) -> dict:
    """A stored row as an execution record (the shape :func:`~warriorflow.method.execution.execution_vote`
    and :func:`~warriorflow.method.execution.execution_summary` read)."""
    tests = {o: [int(row[f"{o}_total"]), int(row[f"{o}_passed"])] for o in ORIGINS}
    tests["all"] = [int(row["tests_total"]), int(row["tests_passed"])]
    return {"role": row["role"], "code_task": bool(row["code_task"]), "has_code": bool(row["has_code"]),
            "status": row["status"], "tests": tests}


def execution_records(store: RatingStore, battle_ids: Sequence[str] | None = None) -> dict[str, dict[str, dict]]:
    """battle id -> role -> record, for the battles with both roles stored (all, or those of ``battle_ids``)."""
    sql = f"SELECT {', '.join(c for c in COLUMNS if c != 'details')} FROM executions"
    rows = (store.query(sql + " WHERE battle_id IN (SELECT unnest(?))", [list(battle_ids)])
            if battle_ids is not None else store.query(sql))
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        out.setdefault(r["battle_id"], {})[r["role"]] = record_of(r)
    return {b: roles for b, roles in out.items() if set(roles) == set(ROLES)}


def execution_verdicts(store: RatingStore, battle_ids: Sequence[str] | None = None) -> dict[str, str]:
    """battle id -> ``"attacker"`` | ``"defender"``: the battles where the execution evidence decides (the
    rule: :func:`~warriorflow.method.execution.execution_vote`); a battle with no execution vote is absent.
    Whether the vote counts, and with what weight, is ``arena.execution.vote`` / ``vote_weight``."""
    out = {}
    for battle_id, roles in execution_records(store, battle_ids).items():
        winner, _why = execution_vote(roles["attacker"], roles["defender"])
        if winner is not None:
            out[battle_id] = winner
    return out


def execution_summaries(store: RatingStore, battle_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """battle id -> role -> the summary line judges see (battles with nothing to show, or where neither response
    has code, are absent)."""
    out = {}
    for battle_id, roles in execution_records(store, battle_ids).items():
        lines = summary_lines(roles)
        if lines:
            out[battle_id] = lines
    return out
