"""What a vote means. Shared by the battle batch (sequential voting) and the ratings.

A judge sees the two responses as "A" and "B". ``shown_order`` records which competitor was shown
first: ``attacker_first`` (A = attacker) or ``defender_first`` (A = defender). Its raw verdict
(``A`` | ``B`` | ``tie`` | ``invalid``) maps to a competitor verdict: ``attacker`` | ``defender`` |
``tie`` | ``invalid``.

In both-orders mode a judge votes twice, once in each order. Its effective vote is the agreed
verdict. A pair that disagrees counts as a tie; an invalid half makes the effective vote invalid.

Probabilistic votes (``ProbabilisticRule``). A vote whose backend reported log-probabilities also
carries P(A), P(B), P(Tie) over the shown positions. For such a judge:

1. its *first-position prior* ``beta`` is measured over its probabilistic votes as the mean of
   ``log P(A) - log P(B)`` (each clipped to ``PROB_FLOOR``): with both orders shown equally often the
   content cancels out, so what is left is how much the judge likes whatever is shown first
   (:func:`first_position_prior`);
2. each vote is debiased by removing it: ``P'(A) ~ P(A) e^(-beta/2)``, ``P'(B) ~ P(B) e^(beta/2)``,
   ``P'(Tie) ~ P(Tie)``, renormalised (:func:`debias`);
3. its *preference* on a battle is the mean over its shown orders of ``P'(attacker) - P'(defender)``,
   in [-1, 1] (:func:`preference`);
4. the effective vote is ``attacker`` when the preference exceeds ``margin``, ``defender`` below
   ``-margin``, else ``tie`` (:func:`probabilistic_vote`).

A judge whose votes on a battle lack probabilities (a backend without logprobs, free-text output)
keeps the discrete rule above, so both kinds can sit in one log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ATTACKER_FIRST, DEFENDER_FIRST = "attacker_first", "defender_first"
ATTACKER, DEFENDER, TIE, INVALID = "attacker", "defender", "tie", "invalid"
EXECUTION_JUDGE = "execution"
"""The judge name the deterministic execution vote is logged under (a reserved expert name)."""
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


# ------------------------------------------------------------------------------------------ probabilities
PROB_FLOOR = 1e-6
"""Probabilities are clipped to at least this before a log (an alternative the engine did not report)."""


@dataclass(frozen=True)
class CastVote:
    """One stored vote: its competitor verdict, the order it was shown in and, when the backend reported
    them, the positional probabilities ``(P(A), P(B), P(Tie))`` (A = shown first)."""

    verdict: str
    shown_order: str
    probs: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class ProbabilisticRule:
    """How probabilistic votes decide: ``margin`` on the preference, ``debias`` the first-position prior,
    ``enabled=False`` treats every vote as discrete."""

    margin: float = 0.1
    debias: bool = True
    enabled: bool = True


def check_probs(probs) -> tuple[float, float, float]:
    """``probs`` as three finite floats in [0, 1] summing to 1 (within 1e-6); ValueError otherwise."""
    if not isinstance(probs, (list, tuple)) or len(probs) != 3:
        raise ValueError("probabilities must be three numbers [P(A), P(B), P(Tie)]")
    out = []
    for x in probs:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not 0.0 <= x <= 1.0:
            raise ValueError(f"probability {x!r} is not a number in [0, 1]")
        out.append(float(x))
    if abs(sum(out) - 1.0) > 1e-6:
        raise ValueError(f"probabilities {out} do not sum to 1")
    return out[0], out[1], out[2]


def _log_ratio(p_a: float, p_b: float) -> float:
    return math.log(max(p_a, PROB_FLOOR)) - math.log(max(p_b, PROB_FLOOR))


def first_position_prior(probs: Iterable[tuple[float, float, float]]) -> float:
    """A judge's first-position prior ``beta``: the mean ``log P(A) - log P(B)`` over its votes (0 if none)."""
    ratios = [_log_ratio(p[0], p[1]) for p in probs]
    return math.fsum(ratios) / len(ratios) if ratios else 0.0


def debias(probs: tuple[float, float, float], beta: float) -> tuple[float, float, float]:
    """Positional probabilities with the first-position prior ``beta`` removed (module doc, step 2)."""
    a = max(probs[0], PROB_FLOOR) * math.exp(-beta / 2)
    b = max(probs[1], PROB_FLOOR) * math.exp(beta / 2)
    t = probs[2]
    total = a + b + t
    return a / total, b / total, t / total


def competitor_probs(shown_order: str, probs: tuple[float, float, float]) -> tuple[float, float, float]:
    """Positional (A, B, Tie) as (attacker, defender, tie)."""
    if shown_order == ATTACKER_FIRST:
        return probs
    if shown_order == DEFENDER_FIRST:
        return probs[1], probs[0], probs[2]
    raise ValueError(f"shown order must be {ATTACKER_FIRST} or {DEFENDER_FIRST}, not {shown_order!r}")


def preference(votes: Sequence[CastVote], beta: float = 0.0) -> float:
    """Mean over the shown orders of P'(attacker) - P'(defender), after removing ``beta`` (all votes must
    carry probabilities)."""
    diffs = []
    for v in votes:
        att, dfd, _ = competitor_probs(v.shown_order, debias(v.probs, beta))
        diffs.append(att - dfd)
    return math.fsum(diffs) / len(diffs)


def probabilistic_vote(pref: float, margin: float) -> str:
    if pref > margin:
        return ATTACKER
    if pref < -margin:
        return DEFENDER
    return TIE


def judge_vote(votes: Sequence[CastVote], rule: ProbabilisticRule = ProbabilisticRule(),
               beta: float = 0.0) -> str:
    """One judge's effective vote on one battle: the probabilistic rule when every one of its votes carries
    probabilities (and the rule is enabled), else the discrete :func:`effective_vote`."""
    if rule.enabled and votes and all(v.probs is not None for v in votes):
        return probabilistic_vote(preference(votes, beta if rule.debias else 0.0), rule.margin)
    return effective_vote([v.verdict for v in votes])
