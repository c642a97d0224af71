"""What a vote means. Shared by the battle batch (sequential voting) and the ratings.

A judge sees the two responses as "A" and "B". ``shown_order`` records which competitor was shown
first: ``attacker_first`` (A = attacker) or ``defender_first`` (A = defender). Its raw verdict
(``A`` | ``B`` | ``tie`` | ``invalid``) maps to a competitor verdict: ``attacker`` | ``defender`` |
``tie`` | ``invalid``.

In both-orders mode a judge votes twice, once in each order. Its effective vote is the agreed
verdict. A pair that disagrees counts as a tie; an invalid half makes the effective vote invalid.
"""

from __future__ import annotations

from collections.abc import Sequence

ATTACKER_FIRST, DEFENDER_FIRST = "attacker_first", "defender_first"
ATTACKER, DEFENDER, TIE, INVALID = "attacker", "defender", "tie", "invalid"
VERDICTS = (ATTACKER, DEFENDER, TIE, INVALID)


def to_competitor(raw: str, shown_order: str) -> str:
    """Map a raw verdict on positions (A/B/tie/invalid) to a verdict on competitors."""
    if raw in (TIE, INVALID):
        return raw
    if raw not in ("A", "B"):
        raise ValueError(f"raw verdict must be A, B, tie or invalid, not {raw!r}")
    first = ATTACKER if shown_order == ATTACKER_FIRST else DEFENDER
    second = DEFENDER if first == ATTACKER else ATTACKER
    return first if raw == "A" else second


def effective_vote(verdicts: Sequence[str]) -> str:
    """One judge's vote on one battle from its (one or two) competitor verdicts."""
    if not verdicts:
        raise ValueError("no verdicts")
    if INVALID in verdicts:
        return INVALID
    if len(set(verdicts)) == 1:
        return verdicts[0]
    return TIE  # an inconsistent pair (position bias) is a tie


def majority_decided(effective: Sequence[str], remaining: int) -> bool:
    """True when the remaining judges can no longer change which competitor has more votes (or a tie)."""
    a, d = effective.count(ATTACKER), effective.count(DEFENDER)
    return abs(a - d) > remaining
