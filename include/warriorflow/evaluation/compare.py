"""Compare a new model with the previous one (delta per benchmark) and decide promotion by a configured rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from warriorflow.config import PromotionSettings


@dataclass(frozen=True)
class Decision:
    candidate: str
    previous: str | None
    promoted: bool
    deltas: dict[str, float]  # benchmark -> candidate - previous (benchmarks both have)
    mean_delta: float | None
    reasons: list[str] = field(default_factory=list)


def deltas(candidate: Mapping[str, float], previous: Mapping[str, float]) -> dict[str, float]:
    """pass@1 delta (candidate - previous) on every benchmark both were evaluated on."""
    return {b: candidate[b] - previous[b] for b in sorted(candidate) if b in previous}


def decide(candidate_ref: str, candidate: Mapping[str, float], previous_ref: str | None,
           previous: Mapping[str, float] | None, rule: PromotionSettings) -> Decision:
    """Promote when the mean delta on ``compare_on`` reaches ``min_delta`` and no ``must_not_regress``
    benchmark drops by more than ``tolerance``. With nothing to compare with, the candidate is promoted."""
    if previous_ref is None or not previous:
        return Decision(candidate_ref, None, True, {}, None, ["no previous model: promoted as the first one"])
    d = deltas(candidate, previous)
    reasons: list[str] = []
    names = rule.compare_on if rule.compare_on is not None else sorted(d)
    missing = [b for b in [*names, *rule.must_not_regress] if b not in d]
    if missing:
        reasons.append(f"not evaluated on both models: {', '.join(sorted(set(missing)))}")
    compared = [d[b] for b in names if b in d]
    mean = sum(compared) / len(compared) if compared else None
    if mean is None:
        reasons.append("no benchmark in common to compare")
    elif mean < rule.min_delta:
        reasons.append(f"mean delta {mean:+.4f} < min_delta {rule.min_delta:+.4f}")
    for b in rule.must_not_regress:
        if b in d and d[b] < -rule.tolerance:
            reasons.append(f"{b} regressed by {-d[b]:.4f} (> tolerance {rule.tolerance:.4f})")
    promoted = not reasons
    if promoted:
        reasons.append(f"mean delta {mean:+.4f} >= min_delta {rule.min_delta:+.4f}; no guarded regression")
    return Decision(candidate_ref, previous_ref, promoted, d, mean, reasons)
