"""Paired significance tests over benchmark problems (pure: no I/O).

Two models are compared on the problems both were evaluated on, matched by ``(benchmark, task_id)``;
a problem only one of them has is left out and counted (:func:`pair`). Per-problem scores are in [0, 1]:
pass/fail (1/0), or the fraction of n samples that passed.

* :func:`mcnemar`: the exact McNemar test on pass/fail. Only the discordant problems count:
  ``b`` = candidate-only passes, ``c`` = previous-only passes; under "no difference" b ~ Binomial(b + c, 1/2).
  ``p_value`` is the one-sided P(X >= b) ("candidate better"), ``p_two_sided`` the two-sided exact p
  (as scipy.stats.binomtest), and ``chi2`` = (|b - c| - 1)^2 / (b + c) with continuity, for information.
* :func:`bootstrap`: the paired bootstrap over problems: resample problems with replacement (a seeded numpy
  Generator), ``p_value`` = the share of resamples whose mean delta is <= 0 (one-sided), with a percentile CI
  of the mean delta.

Both give the one-sided p for "candidate better"; for "candidate worse", swap the arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import comb

import numpy as np

Key = tuple[str, str]  # (benchmark, task_id)

TESTS = ("mcnemar", "bootstrap")
_CHUNK = 1 << 21  # resampled indices held at once by the bootstrap (rounds x problems is cut into chunks)


@dataclass(frozen=True)
class Paired:
    """Scores of the problems both models have, in key order, and how many each had that the other lacks."""

    keys: list[Key]
    candidate: list[float]
    previous: list[float]
    unmatched_candidate: int
    unmatched_previous: int

    @property
    def n(self) -> int:
        return len(self.keys)

    @property
    def unmatched(self) -> int:
        return self.unmatched_candidate + self.unmatched_previous

    def only(self, benchmarks: Iterable[str]) -> Paired:
        """The pairs of these benchmarks (unmatched counts are the whole pairing's)."""
        keep = set(benchmarks)
        idx = [i for i, k in enumerate(self.keys) if k[0] in keep]
        return Paired([self.keys[i] for i in idx], [self.candidate[i] for i in idx],
                      [self.previous[i] for i in idx], self.unmatched_candidate, self.unmatched_previous)

    def mean_delta(self) -> float | None:
        if not self.keys:
            return None
        return sum(self.candidate) / self.n - sum(self.previous) / self.n


def pair(candidate: Mapping[Key, float], previous: Mapping[Key, float],
         benchmarks: Iterable[str] | None = None) -> Paired:
    """Match problems by (benchmark, task_id), restricted to ``benchmarks`` when given."""
    keep = None if benchmarks is None else set(benchmarks)

    def inside(k: Key) -> bool:
        return keep is None or k[0] in keep

    cand = {k: v for k, v in candidate.items() if inside(k)}
    prev = {k: v for k, v in previous.items() if inside(k)}
    keys = sorted(set(cand) & set(prev))
    for k in keys:
        for who, v in (("candidate", cand[k]), ("previous", prev[k])):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{who} score of {k[0]}/{k[1]} is {v!r}, not a number in [0, 1]")
    return Paired(keys, [float(cand[k]) for k in keys], [float(prev[k]) for k in keys],
                  len(set(cand) - set(prev)), len(set(prev) - set(cand)))


@dataclass(frozen=True)
class TestResult:
    test: str                       # mcnemar | bootstrap
    n: int                          # problems paired
    mean_delta: float | None        # mean(candidate - previous) over the paired problems
    statistic: float                # mcnemar: b; bootstrap: the observed mean delta
    p_value: float                  # one-sided: candidate better
    p_two_sided: float | None = None
    b: int | None = None            # mcnemar: candidate-only passes
    c: int | None = None            # mcnemar: previous-only passes
    chi2: float | None = None       # mcnemar: (|b - c| - 1)^2 / (b + c), for information
    ci: tuple[float, float] | None = None  # bootstrap: percentile CI of the mean delta
    level: float | None = None      # bootstrap: the CI's coverage
    rounds: int | None = None
    seed: int | None = None

    def as_dict(self) -> dict:
        d = {"test": self.test, "n": self.n, "mean_delta": self.mean_delta, "statistic": self.statistic,
             "p_value": self.p_value}
        if self.test == "mcnemar":
            d.update(p_two_sided=self.p_two_sided, b=self.b, c=self.c, chi2=self.chi2)
        else:
            d.update(ci=list(self.ci) if self.ci else None, level=self.level, rounds=self.rounds, seed=self.seed)
        return d

    def describe(self, better: str = "candidate", worse: str = "previous") -> str:
        """One line naming the test, its statistic and its p-value."""
        if self.test == "mcnemar":
            return f"McNemar exact: {better}-only {self.b}, {worse}-only {self.c}, p={self.p_value:.4g}"
        lo, hi = self.ci if self.ci else (float("nan"), float("nan"))
        return (f"paired bootstrap ({self.rounds} rounds, seed {self.seed}): mean delta {self.statistic:+.4f}, "
                f"{self.level:.0%} CI [{lo:+.4f}, {hi:+.4f}], p={self.p_value:.4g}")


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2), exactly."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return float(Fraction(sum(comb(n, i) for i in range(k, n + 1)), 2 ** n))


def _two_sided(k: int, n: int) -> float:
    """Two-sided exact binomial p at 1/2 (the distribution is symmetric: twice the smaller tail, at most 1)."""
    if n == 0:
        return 1.0
    return min(1.0, 2 * min(binomial_tail(k, n), binomial_tail(n - k, n)))


def mcnemar(candidate: Sequence[float], previous: Sequence[float]) -> TestResult:
    """Exact McNemar on paired pass/fail outcomes (each 0 or 1)."""
    if len(candidate) != len(previous):
        raise ValueError(f"{len(candidate)} candidate outcomes but {len(previous)} previous ones")
    b = c = 0
    for i, (x, y) in enumerate(zip(candidate, previous)):
        if x not in (0, 1) or y not in (0, 1):
            raise ValueError(f"problem #{i}: McNemar needs pass/fail (0 or 1), got {x!r} and {y!r}")
        b += x == 1 and y == 0
        c += x == 0 and y == 1
    n = len(candidate)
    mean = (b - c) / n if n else None
    chi2 = (abs(b - c) - 1) ** 2 / (b + c) if b + c else 0.0
    return TestResult("mcnemar", n, mean, float(b), binomial_tail(b, b + c), _two_sided(b, b + c), b, c, chi2)


def bootstrap(candidate: Sequence[float], previous: Sequence[float], *, rounds: int = 10000, seed: int = 0,
              level: float = 0.95) -> TestResult:
    """Paired bootstrap of the mean per-problem delta (scores in [0, 1])."""
    if len(candidate) != len(previous):
        raise ValueError(f"{len(candidate)} candidate scores but {len(previous)} previous ones")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    d = np.asarray(candidate, dtype=float) - np.asarray(previous, dtype=float)
    n = len(d)
    if n == 0:
        return TestResult("bootstrap", 0, None, 0.0, 1.0, ci=(0.0, 0.0), level=level, rounds=rounds, seed=seed)
    rng = np.random.default_rng(seed)
    means = np.empty(rounds)
    step = max(1, _CHUNK // n)
    for start in range(0, rounds, step):
        m = min(step, rounds - start)
        means[start:start + m] = d[rng.integers(0, n, size=(m, n))].mean(axis=1)
    observed = float(d.mean())
    tail = (1 - level) / 2
    lo, hi = np.quantile(means, [tail, 1 - tail])
    p = float(np.mean(means <= 0))
    return TestResult("bootstrap", n, observed, observed, p, ci=(float(lo), float(hi)), level=level,
                      rounds=rounds, seed=seed)


def paired_test(test: str, candidate: Sequence[float], previous: Sequence[float], *, rounds: int = 10000,
                seed: int = 0, level: float = 0.95) -> TestResult:
    """The one-sided "candidate better" test named ``test`` (mcnemar | bootstrap)."""
    if test == "mcnemar":
        return mcnemar(candidate, previous)
    if test == "bootstrap":
        return bootstrap(candidate, previous, rounds=rounds, seed=seed, level=level)
    raise ValueError(f"unknown test {test!r}: use one of {', '.join(TESTS)}")
