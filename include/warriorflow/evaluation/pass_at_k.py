"""pass@k, the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models Trained on Code"):
with n samples per problem of which c pass, pass@k = 1 - C(n-c, k) / C(n, k), averaged over problems."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """The probability that at least one of k samples drawn without replacement from n (c correct) passes."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    prob_all_fail = 1.0
    for i in range(n - c + 1, n + 1):  # the numerically stable product form of C(n-c, k) / C(n, k)
        prob_all_fail *= 1.0 - k / i
    return 1.0 - prob_all_fail


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given (n, c) per problem (0.0 for no problems)."""
    if not counts:
        return 0.0
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def reported_ks(samples: int, ks: Iterable[int]) -> list[int]:
    """The k of pass@k that n samples support (1 always)."""
    return sorted({1, *(k for k in ks if 1 <= k <= samples)})
