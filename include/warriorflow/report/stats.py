"""Statistics the report needs that no stage computes: Fleiss' kappa and histogram counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of an items x categories table of rating counts (n_ij raters put item i in category j).

    Items may have different numbers of raters (each needs at least 2; rows with fewer are ignored):
    P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)), P_bar = mean_i P_i, p_j = sum_i n_ij / sum_i n_i,
    P_e = sum_j p_j^2 and kappa = (P_bar - P_e) / (1 - P_e). With a constant number of raters this is
    Fleiss (1971). None when it is undefined: no item with 2 ratings, or every rating in one category.
    """
    rows = [list(map(int, r)) for r in table if sum(r) >= 2]
    if not rows:
        return None
    if any(x < 0 for r in rows for x in r):
        raise ValueError("rating counts must be >= 0")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ValueError("every item needs a count for every category")
    p_items = []
    for r in rows:
        n = sum(r)
        p_items.append((sum(x * x for x in r) - n) / (n * (n - 1)))
    p_bar = sum(p_items) / len(p_items)
    total = sum(sum(r) for r in rows)
    p_e = sum((sum(r[j] for r in rows) / total) ** 2 for j in range(width))
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1.0 - p_e)


def rating_table(items: Iterable[Mapping[str, str]], categories: Sequence[str]) -> list[list[int]]:
    """Rows of category counts, one per item, from item -> {rater: category} (other categories ignored)."""
    index = {c: j for j, c in enumerate(categories)}
    out = []
    for by_rater in items:
        row = [0] * len(categories)
        for category in by_rater.values():
            if category in index:
                row[index[category]] += 1
        out.append(row)
    return out


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin [e_k, e_k+1), the last bin closed on the right (numpy.histogram's rule)."""
    import numpy as np

    counts, _ = np.histogram(np.asarray(values, dtype=float), bins=np.asarray(edges, dtype=float))
    return [int(c) for c in counts]
