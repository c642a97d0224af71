"""Reading the vote log: the completed battles in recorded order, each with one effective vote per judge.

Ratings are a pure function of this log; its hash versions them (``log_version``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence

from warriorflow.method.rating import BattleVotes, battles_from_records, log_record
from warriorflow.method.votes import effective_vote
from warriorflow.store.jsonl import JSONLError, encode_line, iter_jsonl
from warriorflow.store.rating_store import RatingStore


def vote_log(store: RatingStore) -> list[BattleVotes]:
    """The completed battles in recorded order, each with one effective vote per judge."""
    battles = store.query("SELECT battle_id, instruction_id, attacker, defender FROM battles "
                          "WHERE status = 'done' ORDER BY battle_order, battle_id")
    per: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    # a competitor's vote on its own battle never counts, whatever a file once carried (suspicion averting)
    for v in store.query("SELECT v.battle_id, v.judge, v.verdict FROM votes v JOIN battles b USING (battle_id) "
                         "WHERE v.judge NOT IN (b.attacker, b.defender) ORDER BY v.battle_id, v.judge, v.shown_order"):
        per[v["battle_id"]][v["judge"]].append(v["verdict"])
    return [BattleVotes(b["battle_id"], b["instruction_id"], b["attacker"], b["defender"],
                        {j: effective_vote(vs) for j, vs in sorted(per[b["battle_id"]].items())}) for b in battles]


def log_version(log_: Sequence[BattleVotes]) -> str:
    """The rating version: a hash of the log's battles, competitors and effective votes, in order."""
    blob = json.dumps([[b.battle_id, b.attacker, b.defender, dict(b.votes)] for b in log_], sort_keys=True)
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
