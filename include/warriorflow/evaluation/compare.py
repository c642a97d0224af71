"""Compare a new model with the previous one problem by problem, and decide promotion by evidence.

The rule (``evaluation.promotion``, :func:`decide`):

1. Problems are paired by (benchmark, task_id) over the ``compare_on`` benchmarks (default: every benchmark
   both models were evaluated on); problems only one model has are left out and counted.
2. One pooled, one-sided paired test, ``test``: exact McNemar on pass/fail (``mcnemar``), or the paired
   bootstrap of per-problem scores (``bootstrap``, ``bootstrap_rounds`` resamples, ``seed``).
3. The candidate is promoted only when that test is significant (p < ``alpha``) AND the pooled mean
   per-problem delta is strictly above ``min_delta`` and above 0: equal scores never promote (0 vs 0
   included), and a candidate with nothing to compare with is not promoted.
4. Each ``must_not_regress`` benchmark is tested alone, one-sided for "candidate worse": a significant
   regression (p < ``alpha``) blocks promotion unless the drop is no larger than ``tolerance`` (so
   ``tolerance`` is the drop allowed beyond significance; 0 = any significant regression blocks). A guarded
   or ``compare_on`` benchmark that is not evaluated on both models blocks promotion too.

The :class:`Decision` carries the evidence: test, statistic, p-value, problems paired, McNemar's b/c or
the bootstrap CI, per-benchmark deltas and each guarded benchmark's p-value, and readable reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warriorflow.config import PromotionSettings
from warriorflow.errors import ConfigError
from warriorflow.evaluation import significance as sig

NOTHING_TO_COMPARE = "nothing to compare with: evaluate the baseline first"

# benchmark -> task_id -> score in [0, 1] (pass/fail as 1/0, or the fraction of samples that passed)
ProblemScores = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class Decision:
    candidate: str
    previous: str | None
    promoted: bool
    deltas: dict[str, float]  # benchmark -> mean per-problem delta (candidate - previous) over paired problems
    mean_delta: float | None  # pooled over the compare_on benchmarks' paired problems
    reasons: list[str] = field(default_factory=list)
    test: str | None = None          # mcnemar | bootstrap; None when nothing was compared
    statistic: float | None = None   # mcnemar: b (candidate-only passes); bootstrap: the mean delta
    p_value: float | None = None     # pooled, one-sided (candidate better)
    n_paired: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    decision_id: str | None = None   # set once recorded (records.write_decision)
    champion_alias: str | None = None  # the alias URI, when a promoted training run was published as champion


def deltas(candidate: ProblemScores, previous: ProblemScores) -> dict[str, float]:
    """Mean per-problem delta (candidate - previous) over the paired problems of each benchmark both have."""
    out = {}
    for b in sorted(set(candidate) & set(previous)):
        p = sig.pair(_flat({b: candidate[b]}), _flat({b: previous[b]}))
        if p.n:
            out[b] = p.mean_delta()
    return out


def _flat(scores: ProblemScores) -> dict[sig.Key, float]:
    return {(b, t): v for b, problems in scores.items() for t, v in problems.items()}


def _test(rule: PromotionSettings, p: sig.Paired, worse: bool = False) -> sig.TestResult:
    cand, prev = (p.previous, p.candidate) if worse else (p.candidate, p.previous)
    if rule.test == "mcnemar":
        fractional = sorted({k[0] for k, x, y in zip(p.keys, p.candidate, p.previous) if x not in (0, 1)
                             or y not in (0, 1)})
        if fractional:
            raise ConfigError("evaluation.promotion.test: mcnemar",
                              f"needs pass/fail per problem, but {', '.join(fractional)} has fractional scores "
                              "(several samples per problem)", "set evaluation.promotion.test: bootstrap")
    return sig.paired_test(rule.test, cand, prev, rounds=rule.bootstrap_rounds, seed=rule.seed,
                           level=1 - rule.alpha)


def decide(candidate_ref: str, candidate: ProblemScores | None, previous_ref: str | None,
           previous: ProblemScores | None, rule: PromotionSettings) -> Decision:
    """Decide by the rule in the module docstring. ``candidate``/``previous``: benchmark -> task_id -> score."""
    settings = {"test": rule.test, "alpha": rule.alpha, "min_delta": rule.min_delta, "tolerance": rule.tolerance}
    if rule.test == "bootstrap":
        settings.update(bootstrap_rounds=rule.bootstrap_rounds, seed=rule.seed)
    if previous_ref is None or not previous or not candidate:
        return Decision(candidate_ref, previous_ref, False, {}, None, [NOTHING_TO_COMPARE],
                        evidence={"rule": settings})
    try:
        paired_all = sig.pair(_flat(candidate), _flat(previous))
    except ValueError as exc:
        raise ConfigError(f"per-problem scores of {candidate_ref} / {previous_ref}", str(exc),
                          "re-evaluate both models with `warriorflow evaluate`") from None
    common = sorted({k[0] for k in paired_all.keys})
    d = deltas(candidate, previous)
    reasons: list[str] = []
    names = sorted(set(rule.compare_on)) if rule.compare_on is not None else common
    missing = sorted({b for b in [*names, *rule.must_not_regress] if b not in common})
    if missing:
        reasons.append(f"not evaluated on both models: {', '.join(missing)}")
    pooled_pairs = sig.pair(_flat(candidate), _flat(previous), names)
    evidence: dict[str, Any] = {
        "rule": settings, "compare_on": [b for b in names if b in common],
        "unmatched": {"candidate": pooled_pairs.unmatched_candidate, "previous": pooled_pairs.unmatched_previous},
        "benchmarks": {}, "guarded": {}}
    for b in common:
        bp = paired_all.only([b])
        evidence["benchmarks"][b] = {"n": bp.n, "delta": d[b], "candidate": sum(bp.candidate) / bp.n,
                                     "previous": sum(bp.previous) / bp.n}
    if pooled_pairs.unmatched:
        reasons.append(f"{pooled_pairs.unmatched} problem(s) evaluated on one model only were left out "
                       f"(candidate only {pooled_pairs.unmatched_candidate}, previous only "
                       f"{pooled_pairs.unmatched_previous})")
    result = _test(rule, pooled_pairs) if pooled_pairs.n else None
    mean = pooled_pairs.mean_delta()
    if result is None:
        reasons.append("no problem in common to compare")
    else:
        evidence["pooled"] = result.as_dict()
        verdict = "<" if result.p_value < rule.alpha else ">="
        reasons.append(f"{result.describe()} {verdict} alpha {rule.alpha:g} "
                       f"({pooled_pairs.n} problems paired on {', '.join(evidence['compare_on'])})")
        if mean > max(rule.min_delta, 0.0):
            reasons.append(f"mean delta {mean:+.4f} > min_delta {rule.min_delta:+.4f}")
        elif mean == 0:
            reasons.append("mean delta +0.0000: equal scores never promote")
        elif mean < 0:
            reasons.append(f"mean delta {mean:+.4f}: the candidate is worse")
        else:
            reasons.append(f"mean delta {mean:+.4f} is not above min_delta {rule.min_delta:+.4f}")
    blocked = False
    for b in rule.must_not_regress:
        if b not in common:
            continue
        gp = paired_all.only([b])
        worse = _test(rule, gp, worse=True)
        drop = -d[b]
        regressed = worse.p_value < rule.alpha and drop > rule.tolerance
        evidence["guarded"][b] = {"n": gp.n, "delta": d[b], "p_value": worse.p_value, "regressed": regressed,
                                  **{k: v for k, v in worse.as_dict().items() if k in ("b", "c", "ci", "statistic")}}
        line = worse.describe("previous", "candidate")
        if regressed:
            blocked = True
            reasons.append(f"{b} regressed significantly: delta {d[b]:+.4f}, {line} < alpha {rule.alpha:g} "
                           f"(drop > tolerance {rule.tolerance:g})")
        elif worse.p_value < rule.alpha:
            reasons.append(f"{b} dropped {drop:.4f}, significant ({line}) but within tolerance {rule.tolerance:g}")
        else:
            reasons.append(f"{b} (guarded): no significant regression, delta {d[b]:+.4f}, {line} >= alpha "
                           f"{rule.alpha:g}")
    promoted = (not missing and result is not None and result.p_value < rule.alpha
                and mean is not None and mean > max(rule.min_delta, 0.0) and not blocked)
    return Decision(candidate_ref, previous_ref, promoted, d, mean, reasons,
                    test=result.test if result else None, statistic=result.statistic if result else None,
                    p_value=result.p_value if result else None, n_paired=pooled_pairs.n, evidence=evidence)
