"""Reading the vote log: the completed battles in recorded order, each with one effective vote per judge.

Ratings are a pure function of this log; its hash versions them (``log_version``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from warriorflow.config import ArenaSettings
from warriorflow.method.battle_jobs import vote_rule
from warriorflow.method.rating import BattleVotes, battle_result, battles_from_records, log_record
from warriorflow.method.votes import EXECUTION_JUDGE, PROB_FLOOR, CastVote, judge_vote
from warriorflow.store.executions import execution_verdicts
from warriorflow.store.jsonl import JSONLError, encode_line, iter_jsonl
from warriorflow.store.rating_store import RatingStore


def cast_vote(row: Mapping) -> CastVote:
    """A votes row (verdict, shown_order, p_a, p_b, p_tie) as a :class:`CastVote`."""
    probs = (row["p_a"], row["p_b"], row["p_tie"])
    return CastVote(row["verdict"], row["shown_order"], None if any(p is None for p in probs) else probs)


def judge_priors(store: RatingStore) -> dict[str, float]:
    """Each judge's first-position prior over all its stored probabilistic votes (``votes.first_position_prior``),
    aggregated in DuckDB."""
    floor = PROB_FLOOR
    rows = store.query(
        "SELECT judge, avg(ln(greatest(p_a, ?)) - ln(greatest(p_b, ?))) AS beta FROM votes "
        "WHERE p_a IS NOT NULL AND p_b IS NOT NULL GROUP BY judge ORDER BY judge", [floor, floor])
    return {r["judge"]: float(r["beta"]) for r in rows}


def calibrated_weights(store: RatingStore) -> dict[str, float]:
    """Each judge's accuracy in its latest calibration (``warriorflow judges calibrate``)."""
    rows = store.query(
        "SELECT judge, accuracy FROM judge_calibrations c WHERE judge <> 'panel' AND accuracy IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY judge ORDER BY created_at DESC, calibration_id) = 1")
    return {r["judge"]: float(r["accuracy"]) for r in rows}


def vote_log(store: RatingStore, arena: ArenaSettings | None = None) -> list[BattleVotes]:
    """The completed battles in recorded order, each with one effective vote per judge.

    A judge's effective vote follows ``arena.votes`` (method/votes.py): probabilistic votes are decided by
    the judge's debiased preference and the margin, discrete ones by agreement. With ``judge_weights:
    calibrated`` each judge's vote carries its calibrated accuracy as weight."""
    arena = arena or ArenaSettings()
    rule = vote_rule(arena)
    priors = judge_priors(store) if rule.enabled and rule.debias else {}
    calibrated = calibrated_weights(store) if arena.votes.judge_weights == "calibrated" else {}
    ex = arena.execution
    executed = execution_verdicts(store) if ex.enabled and ex.vote else {}
    battles = store.query("SELECT battle_id, instruction_id, attacker, defender FROM battles "
                          "WHERE status = 'done' ORDER BY battle_order, battle_id")
    per: dict[str, dict[str, list[CastVote]]] = defaultdict(lambda: defaultdict(list))
    # a competitor's vote on its own battle never counts, whatever a file once carried (suspicion averting)
    for v in store.query("SELECT v.battle_id, v.judge, v.verdict, v.shown_order, v.p_a, v.p_b, v.p_tie "
                         "FROM votes v JOIN battles b USING (battle_id) "
                         "WHERE v.judge NOT IN (b.attacker, b.defender) AND b.status = 'done' "
                         "ORDER BY v.battle_id, v.judge, v.shown_order"):
        per[v["battle_id"]][v["judge"]].append(cast_vote(v))
    out = []
    for b in battles:
        votes = {j: judge_vote(vs, rule, priors.get(j, 0.0)) for j, vs in sorted(per[b["battle_id"]].items())}
        weights = {j: calibrated[j] for j in votes if j in calibrated}
        if b["battle_id"] in executed and EXECUTION_JUDGE not in votes:
            votes[EXECUTION_JUDGE] = executed[b["battle_id"]]
            if ex.vote_weight != 1.0:
                weights[EXECUTION_JUDGE] = ex.vote_weight
        weights = weights or None
        out.append(BattleVotes(b["battle_id"], b["instruction_id"], b["attacker"], b["defender"], votes, weights))
    return out


def vote_counts(store: RatingStore, log_: Sequence[BattleVotes]) -> dict[str, int]:
    """What the rate step and the report say of a log: its battles, the decisive ones, those with an execution
    vote, and the stored votes with and without probabilities."""
    kinds = store.query("SELECT count(*) FILTER (WHERE p_a IS NOT NULL) AS probabilistic, "
                        "count(*) FILTER (WHERE p_a IS NULL) AS discrete FROM votes")[0]
    return {"battles": len(log_), "decisive_battles": sum(battle_result(b) != 0.5 for b in log_),
            "execution_votes": sum(EXECUTION_JUDGE in b.votes for b in log_),
            "probabilistic_votes": int(kinds["probabilistic"] or 0), "discrete_votes": int(kinds["discrete"] or 0)}


def log_version(log_: Sequence[BattleVotes]) -> str:
    """The rating version: a hash of the log's battles, competitors and effective votes, in order."""
    blob = json.dumps([[b.battle_id, b.attacker, b.defender, dict(b.votes)] + ([dict(b.weights)] if b.weights else [])
                       for b in log_], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def export_battles(store: RatingStore) -> list[dict]:
    """The vote log in the interchange format of `warriorflow rate --battles`."""
    return [log_record(b) for b in vote_log(store)]


def battle_log_line(b: BattleVotes) -> str:
    """One interchange JSONL line (no newline) for a battle; :func:`parse_battle_log` reads it back."""
    return encode_line(log_record(b), ascii_only=False).decode("utf-8").removesuffix("\n")


def parse_battle_log(lines: Iterable[str] | bytes | str) -> list[BattleVotes]:
    """Parse the interchange JSONL, one battle per line, in processing order; blank lines are skipped.
    ``ValueError`` names the (1-based) line of anything malformed."""
    try:
        return battles_from_records(list(iter_jsonl(lines)))
    except JSONLError as e:
        what = f"bad JSON ({e.detail})" if e.kind == "json" else f"expected a JSON object, got {e.detail}"
        raise ValueError(f"battle log line {e.line}: {what}") from None
