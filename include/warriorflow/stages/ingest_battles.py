"""Ingest the battle jobs' results: responses, then each judging round's votes; close finished battles.

Every record is checked against the plan and the registry first
(:mod:`warriorflow.method.battle_records`) and against its own job (no record it was not asked for, all
by the job's model); a file with any bad record is quarantined whole, with the problem of each line in
its report, and nothing of it is committed. The Great Expectations vote gate runs as for mined
instructions. Result files of failed jobs simply do not exist: what finished goes in, the rest is
planned again by the next run.

A battle's record (judges asked, calls made and saved, its two responses) is computed here from the
stored votes once its judging is over (:func:`warriorflow.method.battle_jobs.close`); no worker writes
it, so no worker can forge one.
"""

from __future__ import annotations

from warriorflow.config import Config
from warriorflow.method.battle_jobs import PlannedBattle, close
from warriorflow.method.battle_records import ArenaFacts, PlannedBattleRef, check_battle_records
from warriorflow.method.style_control import FEATURES_VERSION, style_features
from warriorflow.method.votes import CastVote
from warriorflow.quality.gates import gate_votes, rejection
from warriorflow.stages.base import Outcome, ingest_outcome, now_utc, stage
from warriorflow.stages.job_plans import answers_its_job, result_keys
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore
from warriorflow.store.vote_log import cast_vote, judge_priors

RESPONSE_COLUMNS = ("response_id", "instruction_id", "expert", "text", "sampling", "seed", "finish_reason",
                    "prompt_tokens", "completion_tokens", "run_id")
VOTE_COLUMNS = ("vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict", "p_a", "p_b", "p_tie",
                "raw_text", "run_id")


def vote_row(r: dict) -> dict:
    """A checked vote record as a votes row (its probabilities, when it has them, in three columns)."""
    probs = r.get("probs") or (None, None, None)
    return {**{k: r.get(k) for k in VOTE_COLUMNS}, "p_a": probs[0], "p_b": probs[1], "p_tie": probs[2]}


def arena_facts(config: Config, store: RatingStore, records: list[dict]) -> ArenaFacts:
    """The plan and the registry, as far as ``records`` refer to them: their battles (with the battles of their
    responses' instructions)."""
    battle_ids = sorted({r["battle_id"] for r in records if isinstance(r.get("battle_id"), str)})
    instruction_ids = sorted({r["instruction_id"] for r in records if r.get("type") == "response"
                              and isinstance(r.get("instruction_id"), str)})
    rows = store.query("SELECT battle_id, instruction_id, attacker, defender, judges FROM battles "
                       "WHERE battle_id IN (SELECT unnest(?)) OR instruction_id IN (SELECT unnest(?))",
                       [battle_ids, instruction_ids])
    battles = {r["battle_id"]: PlannedBattleRef(r["instruction_id"], r["attacker"], r["defender"],
                                                tuple(r["judges"] or ())) for r in rows}
    return ArenaFacts(battles, set(config.registry.names()), {e.name for e in config.registry.with_role("judge")})


def _checked(config: Config, store: RatingStore, kind: str, records: list[dict]) -> Rejection | None:
    if any(r.get("type") != kind for r in records):
        bad = next(n for n, r in enumerate(records, start=1) if r.get("type") != kind)
        return Rejection(f"line {bad}: a {kind} job's result holds only {kind} records")
    problems = check_battle_records(records, arena_facts(config, store, records))
    if problems:
        return Rejection(f"{len(problems)} bad record(s): " + "; ".join(problems[:5]), {"problems": problems})
    return None


@stage("ingest_responses")
def ingest_responses_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Merge the run's response job results."""

    def merge(_key: str, records: list[dict]) -> dict[str, int]:
        store.upsert("responses", [{k: r.get(k) for k in RESPONSE_COLUMNS} for r in records], key=["response_id"])
        # each response's style counts, once, while its text is at hand (the style-controlled ratings read them).
        # Both upserts keep what is stored, and of a batch's rows with one id the first: the counts always describe
        # the stored text (a response generated again keeps its first text); counts of an older algorithm are
        # recomputed from the stored text by the rate step
        store.upsert("response_style", [{"response_id": r["response_id"], "algorithm": FEATURES_VERSION,
                                         **style_features(r["text"])._asdict()} for r in records],
                     key=["response_id"])
        return {"responses": len(records)}

    report = ingest_files(store, objects, result_keys(objects, run_id, "respond"), kind="responses",
                          stage="respond", merge=merge, check=lambda rs: _checked(config, store, "response", rs),
                          check_file=answers_its_job(objects, "respond"))
    return ingest_outcome(report)


@stage("ingest_votes")
def ingest_votes_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Merge the run's judge job results (every round so far), then close the battles whose judging is over."""
    judges = {e.name for e in config.registry.with_role("judge")}

    def check(records: list[dict]) -> Rejection | None:
        bad = _checked(config, store, "vote", records)
        if bad is not None:
            return bad
        gate = gate_votes(records, judges=judges)
        return None if gate.success else rejection(gate)

    def merge(_key: str, records: list[dict]) -> dict[str, int]:
        store.upsert("votes", [vote_row(r) for r in records], key=["vote_id"])
        return {"votes": len(records), "invalid_votes": sum(r["verdict"] == "invalid" for r in records),
                "probabilistic_votes": sum(r.get("probs") is not None for r in records)}

    report = ingest_files(store, objects, result_keys(objects, run_id, "judge"), kind="votes", stage="judge",
                          merge=merge, check=check, check_file=answers_its_job(objects, "judge"))
    out = ingest_outcome(report)
    closed = close_finished(config, store, run_id)
    return Outcome({**out.counts, "battles_done": closed, "battles_open": len(open_battles(store))}, out.notes)


def open_battles(store: RatingStore) -> list[PlannedBattle]:
    """Every planned battle not done yet (any run), in battle order, with its recorded panel."""
    rows = store.query("SELECT b.battle_id, b.instruction_id, i.text, b.attacker, b.defender, b.judges, "
                       "b.battle_order FROM battles b JOIN instructions i USING (instruction_id) "
                       "WHERE b.status = 'planned' ORDER BY b.battle_order, b.battle_id")
    return [PlannedBattle(r["battle_id"], r["instruction_id"], r["text"], r["attacker"], r["defender"],
                          tuple(r["judges"] or ()), r["battle_order"]) for r in rows]


def verdicts_of(store: RatingStore, battle_ids: list[str]) -> dict[str, CastVote]:
    """The stored votes of ``battle_ids``: vote id -> the vote (verdict, shown order, probabilities)."""
    return {r["vote_id"]: cast_vote(r) for r in store.query(
        "SELECT vote_id, verdict, shown_order, p_a, p_b, p_tie FROM votes WHERE battle_id IN (SELECT unnest(?))",
        [battle_ids])}


def close_finished(config: Config, store: RatingStore, run_id: str) -> int:
    """Mark done every open battle whose judging is over (its record computed from the stored votes)."""
    battles = open_battles(store)
    finished = close(battles, config.settings.arena, verdicts_of(store, [b.battle_id for b in battles]), run_id,
                     judge_priors(store))
    rids = sorted({r[f"{side}_response_id"] for r in finished for side in ("attacker", "defender")})
    stored = {r["response_id"] for r in store.query(
        "SELECT response_id FROM responses WHERE response_id IN (SELECT unnest(?))", [rids])}
    records = [r for r in finished if r["attacker_response_id"] in stored and r["defender_response_id"] in stored]
    store.update("battles", "battle_id", [
        {"battle_id": r["battle_id"], "attacker_response_id": r["attacker_response_id"],
         "defender_response_id": r["defender_response_id"], "status": "done", "judge_calls": r["judge_calls"],
         "judge_calls_saved": r["judge_calls_saved"], "completed_at": now_utc()} for r in records])
    return len(records)
