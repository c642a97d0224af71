"""Judge calibration: how often each judge (and the panel) is right on labeled pairs, pure functions.

A labeled pair is an instruction, two responses and the right verdict (``a``, ``b`` or ``tie``). Each
judge sees every pair in both shown orders through the battle path (response A plays the attacker,
B the defender); its *effective* vote is decided as in battles (:func:`warriorflow.method.votes.judge_vote`).

Per judge (and for the panel) over the pairs:

* ``accuracy``: the effective verdict equals the label (an invalid vote is wrong);
* ``tie_rate``: the effective verdict is a tie;
* ``flip_rate``: the two one-order verdicts (as the judge wrote them) name different responses or one
  is a tie and the other not; pairs with an invalid half are left out;
* ``first_position_share``: of the decisive one-order verdicts, the share that picked whichever
  response was shown first (0.5 is unbiased; 1.0 always picks the first);
* ``decisive_rate``: the effective verdict names a response; ``precision``: accuracy over those;
* ``abstained``: pairs the judge cast no vote on (the execution judge without code or evidence), counted
  as ties, as in the panel;
* for a judge with probabilities, ``probabilistic_share`` and its measured first-position ``prior``.

The panel's effective verdict is the battle result of all judges' effective votes (weighted as in
ratings, the execution vote with its weight); its one-order verdicts are the results of the
judges' one-order verdicts, so its flip rate and first-position share mean the same as a judge's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from warriorflow.method import votes as V

LABELS = ("a", "b", "tie")
PANEL = "panel"
EXECUTION = V.EXECUTION_JUDGE
_TO_LABEL = {V.ATTACKER: "a", V.DEFENDER: "b", V.TIE: "tie", V.INVALID: "invalid"}


@dataclass(frozen=True)
class PairOutcome:
    """What one judge said on one pair: its effective verdict and its one-order verdicts (competitor
    verdicts: attacker = response A), keyed by shown order; ``probabilistic``: decided by probabilities."""

    effective: str
    by_order: Mapping[str, str] = field(default_factory=dict)
    probabilistic: bool = False


def label_of(verdict: str) -> str:
    """A competitor verdict as a label (``a`` | ``b`` | ``tie`` | ``invalid``)."""
    return _TO_LABEL[verdict]


def _first_shown(order: str) -> str:
    return V.ATTACKER if order == V.ATTACKER_FIRST else V.DEFENDER


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def metrics(outcomes: Sequence[PairOutcome | None], labels: Sequence[str]) -> dict:
    """The calibration figures of one judge over the pairs. ``None``: the judge cast no vote on a pair (the
    execution judge on a pair without code or without separating evidence); it counts as a tie, as its
    absence does in the panel, and is counted in ``abstained``."""
    if len(outcomes) != len(labels):
        raise ValueError(f"{len(outcomes)} outcomes for {len(labels)} labels")
    filled = [(o if o is not None else PairOutcome(V.TIE), lab) for o, lab in zip(outcomes, labels)]
    n = len(filled)
    right = sum(label_of(o.effective) == lab for o, lab in filled)
    ties = sum(o.effective == V.TIE for o, _ in filled)
    decisive = [(o, lab) for o, lab in filled if o.effective in (V.ATTACKER, V.DEFENDER)]
    both = [o for o, _ in filled if len(o.by_order) == 2 and V.INVALID not in o.by_order.values()]
    flips = sum(len(set(o.by_order.values())) > 1 for o in both)
    one_order = [(order, v) for o, _ in filled for order, v in o.by_order.items() if v in (V.ATTACKER, V.DEFENDER)]
    first = sum(v == _first_shown(order) for order, v in one_order)
    return {
        "pairs": n,
        "abstained": sum(o is None for o in outcomes),
        "accuracy": _rate(right, n),
        "tie_rate": _rate(ties, n),
        "flip_rate": _rate(flips, len(both)),
        "first_position_share": _rate(first, len(one_order)),
        "decisive_rate": _rate(len(decisive), n),
        "precision": _rate(sum(label_of(o.effective) == lab for o, lab in decisive), len(decisive)),
        "invalid_rate": _rate(sum(o.effective == V.INVALID for o, _ in filled), n),
        "probabilistic_share": _rate(sum(o.probabilistic for o, _ in filled), n),
    }


def panel_outcome(per_judge: Mapping[str, PairOutcome | None],
                  weights: Mapping[str, float] | None = None) -> PairOutcome:
    """The panel's outcome on one pair: the (weighted) battle result of the judges' effective votes, and of
    their one-order verdicts for each order."""
    from warriorflow.method.rating import BattleVotes, battle_result

    present = {j: o for j, o in per_judge.items() if o is not None}
    w = {j: float((weights or {}).get(j, 1.0)) for j in present}

    def result(votes: Mapping[str, str]) -> str:
        if not votes:
            return V.TIE
        s = battle_result(BattleVotes("pair", "pair", "a", "b", dict(votes), {j: w[j] for j in votes}))
        return V.ATTACKER if s == 1.0 else V.DEFENDER if s == 0.0 else V.TIE

    by_order = {}
    for order in (V.ATTACKER_FIRST, V.DEFENDER_FIRST):
        # a judge without a one-order verdict (the execution judge) keeps its effective vote in each order
        votes = {j: o.by_order.get(order, o.effective) for j, o in present.items()}
        by_order[order] = result(votes)
    return PairOutcome(result({j: o.effective for j, o in present.items()}), by_order,
                       any(o.probabilistic for o in present.values()))
