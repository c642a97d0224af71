"""Compression (WarriorCoder step 3): pick a diverse subset of instructions by k-center greedy.

The pool of new instructions is embedded with a sentence-transformers model and a subset is picked by
k-center greedy (Sener & Savarese 2018, the "core-set" selection of the google/active-learning code):
each pick is the candidate farthest from every center chosen so far. The flywheel runs daily, so the
selection is **warm-started**: the embeddings of every instruction selected in earlier runs are passed
as ``centers`` and count as already chosen. New picks are then far from the old selections, not only
from each other.

The guarantee of the greedy rule (what tests assert): let ``r_t`` be the covering radius before pick
``t`` (the largest distance of any candidate to its nearest center, reported as
``KCenterResult.min_distances[t]``). Pick ``t`` is at distance >= ``r_t`` from *every* center that
exists at that moment (all old centers and all earlier picks), and ``r_t`` never grows. So while the
covering radius is at least ``r``, every pick is at least ``r`` away from all old selections; a pick
nearer than ``r`` to an old selection happens only once every candidate is within ``r`` of a center.

Everything here is a pure function over numpy arrays; the embedding model is in
:mod:`warriorflow.models.embedder`.

Speed: one pick costs one streaming pass over the candidate matrix (a float32 matrix-vector product in
row blocks on all cores, updating running squared distances to the nearest and second-nearest
center), which is the memory-bandwidth floor for this algorithm. Candidates within the rigorous
float32 error bound of the farthest one are re-decided in float64 by direct differences (to their
nearest center, or to every center when the nearest two are too close to tell apart), so picks and
distances equal those of the float64 reference (``k_center_greedy_reference``), ties going to the
lowest index. The warm start computes distances to the old centers once, in memory-bounded blocks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from warriorflow.errors import ConfigError

__all__ = ["ArrayCenters", "CenterSource", "KCenterResult", "k_center_greedy", "k_center_greedy_reference",
           "resolve_budget"]

# --------------------------------------------------------------------------------------------------
# Budget
# --------------------------------------------------------------------------------------------------


def resolve_budget(budget: float, n_candidates: int) -> int:
    """Number of picks for a pool of ``n_candidates``.

    ``budget >= 1`` is a count (a whole number, capped at the pool size); ``0 < budget < 1`` is a
    fraction of the pool, rounded up, at least 1 when the pool is not empty. An empty pool gives 0.
    The fraction is read as the decimal written in the settings (0.1 of 30 is 3, not 4).
    """
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, (int, np.integer)) or n_candidates < 0:
        raise ConfigError("compression pool size", f"must be a whole number >= 0, got {n_candidates!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)):
        raise ConfigError(
            "compression.budget",
            f"must be a number, got {budget!r}",
            "use a count of picks (e.g. 2000) or a fraction of the pool below 1 (e.g. 0.25)",
        )
    b = float(budget)
    if not math.isfinite(b) or b <= 0:
        raise ConfigError(
            "compression.budget",
            f"must be a finite number > 0, got {budget!r}",
            "use a count of picks (e.g. 2000) or a fraction of the pool below 1 (e.g. 0.25)",
        )
    if b >= 1 and b != math.floor(b):
        raise ConfigError(
            "compression.budget",
            f"{budget!r} is >= 1, so it is a count of picks, and must be a whole number",
            "write a whole number (e.g. 2000), or a fraction below 1 (e.g. 0.25)",
        )
    n = int(n_candidates)
    if n == 0:
        return 0
    if b >= 1:
        return min(int(b), n)
    picks = math.ceil(Fraction(repr(b)) * n)
    return min(max(picks, 1), n)


# --------------------------------------------------------------------------------------------------
# k-center greedy
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KCenterResult:
    """The picks of one k-center greedy run.

    ``picks``: candidate indices in the order picked (distinct).
    ``min_distances[t]``: distance of ``picks[t]`` to its nearest center when it was picked, which is
    the covering radius before that pick; non-increasing. ``inf`` for a first pick made without any
    center. Computed in float64 by direct differences, like the reference (only past the caps on
    exact re-decisions, e.g. >131k exact ties in one step, is a value float32-accurate).
    ``radius_after``: the covering radius after all picks (largest distance of any candidate to its
    nearest center); 0.0 when there are no candidates or all were picked, ``inf`` when nothing was
    picked and there were no centers.
    """

    picks: list[int]
    min_distances: list[float]
    radius_after: float


# Tuning knobs (module level so tests can shrink them to exercise the chunked and threaded paths).
_INIT_BLOCK_ELEMENTS = 1 << 24  # candidate x old-center distance block for the warm start (64 MiB float32)
_MIN_ROWS_PER_THREAD = 16384  # below this many rows per thread, the per-pick pass stays single-threaded
_MAX_THREADS = 16
_TIE_LIMIT = 1 << 17  # at most this many near-tied candidates are re-decided exactly per pick
_EXACT_PAIR_LIMIT = 1 << 21  # ... and at most this many candidate x center pairs for the ambiguous ones
_EXACT_BLOCK_ELEMENTS = 1 << 20  # float64 elements per block in the exact computation
_KEPT_OLD = 4  # nearest old centers kept per candidate (exact tie-breaks without reading every old center again)
_F32_EPS = float(np.finfo(np.float32).eps)


def _as_matrix(x: Any, name: str, d: int | None = None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {a.shape}")
    if d is not None and a.shape[1] != d:
        raise ValueError(f"{name} has {a.shape[1]} columns but the candidates have {d}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def _check_args(candidates: Any, budget: int, centers: Any, first: int | None) -> tuple[np.ndarray, CenterSource, int]:
    x = _as_matrix(candidates, "candidates")
    n, d = x.shape
    if centers is None:
        old: CenterSource = ArrayCenters(np.empty((0, d), np.float32))
    elif isinstance(centers, np.ndarray) or not hasattr(centers, "chunks"):
        old = ArrayCenters(_as_matrix(centers, "centers", d))
    else:
        old = centers
        if len(old) and old.dim != d:
            raise ValueError(f"centers has {old.dim} columns but the candidates have {d}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be a whole number >= 0, got {budget!r} (see resolve_budget)")
    if first is not None:
        if len(old):
            raise ValueError("first is only used without centers; with centers every pick is greedy")
        if isinstance(first, bool) or not isinstance(first, (int, np.integer)) or not 0 <= first < n:
            raise ValueError(f"first must be a candidate index in [0, {n}), got {first!r}")
    return x, old, min(int(budget), n)


def _sq_norms(a: np.ndarray, rows: int = 65536) -> np.ndarray:
    """Squared row norms, summed in float64 and rounded once to float32."""
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), rows):
        blk = a[s : s + rows].astype(np.float64)
        out[s : s + rows] = np.einsum("ij,ij->i", blk, blk)
    return out


def _sq_rows(diff: np.ndarray) -> np.ndarray:
    """Row-wise sum of squares (float64). The one exact-distance kernel: equal rows give equal results."""
    return np.einsum("ij,ij->i", diff, diff)


class CenterSource(Protocol):
    """The old centers (earlier selections) of a warm start, read as a stream: never all in memory.

    ``len()`` is their number and ``dim`` their dimension; ``chunks(rows)`` yields them in their fixed order as
    float32 blocks of ``rows`` rows (the last one shorter), every time it is called: the warm start reads them
    once, and again only to re-decide a candidate whose two nearest centers are too close to tell apart.
    ``rows_at(indices)`` returns the centers at those positions of that order (float32, one row each): the
    exact distances of the few candidates in contention fetch their nearest old centers with it. A
    store-backed source reads them from the store, a block at a time."""

    dim: int

    def __len__(self) -> int: ...
    def chunks(self, rows: int) -> Iterable[np.ndarray]: ...
    def rows_at(self, indices: np.ndarray) -> np.ndarray: ...


class ArrayCenters:
    """A :class:`CenterSource` over a float32 matrix in memory."""

    def __init__(self, centers: np.ndarray):
        self.array = centers
        self.dim = centers.shape[1]

    def __len__(self) -> int:
        return len(self.array)

    def chunks(self, rows: int) -> Iterable[np.ndarray]:
        for c0 in range(0, len(self.array), rows):
            yield self.array[c0 : c0 + rows]

    def rows_at(self, indices: np.ndarray) -> np.ndarray:
        return self.array[indices]


def _checked_chunk(block: Any, d: int) -> np.ndarray:
    block = np.ascontiguousarray(block, dtype=np.float32)
    if block.ndim != 2 or block.shape[1] != d:
        raise ValueError(f"centers have {block.shape[-1]} columns but the candidates have {d}")
    if block.size and not np.isfinite(block).all():
        raise ValueError("centers holds NaN or infinite values")
    return block


def _threads_for(n: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_THREADS, n // _MIN_ROWS_PER_THREAD))


class _Greedy:
    """Running float32 squared distance of every candidate to its nearest center, with exact tie-breaks.

    Per candidate: ``mind`` (squared distance to the nearest center; -1 once picked, else >= 0),
    ``second`` (to the second nearest) and ``near`` (which center is nearest: old centers are
    0..m-1, pick t is m+t). The old centers are read once (a stream); each candidate keeps which are its
    ``_KEPT_OLD`` nearest ones (float32 values and positions, not vectors: the state stays a few numbers per
    candidate), enough to re-decide it exactly unless more old centers than that are within the error band of its
    nearest: only then are the old centers read again. The vector of the nearest one is kept (what the exact
    distance of a candidate in contention needs, at every pick); the others' are fetched by position
    (``rows_at``, cached) for the rare candidates whose nearest two are too close to tell apart.
    The float32 values carry an error of at most ``err``; candidates within
    ``2 err`` of the farthest one are re-decided with float64 distances by direct differences. For a
    candidate whose nearest center leads the second by more than ``2 err`` that is one distance (to
    ``near``); only the rare ambiguous ones are compared with their kept old centers and every pick.
    """

    def __init__(self, x: np.ndarray, old: CenterSource, capacity: int, pool: ThreadPoolExecutor | None,
                 n_threads: int):
        self.x = x
        self.old = old
        self.m = len(old)
        self.n, self.d = x.shape
        self.pool = pool
        self.nx = _sq_norms(x)
        self.r2 = max(float(self.nx.max(initial=0.0)), 1e-30)  # with the old centers' norms once they are read
        self.mind = np.full(self.n, np.inf, np.float32)
        self.second = np.full(self.n, np.inf, np.float32)
        self.near = np.full(self.n, -1, np.int64)
        self.buf = np.empty(self.n, np.float32)
        self.closer = np.empty(self.n, bool)
        self.picks64 = np.empty((capacity, self.d), np.float64)
        bounds = np.linspace(0, self.n, n_threads + 1).astype(int)
        self.blocks = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        self.block_max = np.full(len(self.blocks), np.inf)
        self.picks: list[int] = []
        self.kept_val = np.zeros((0, _KEPT_OLD), np.float32)
        self.kept_idx = np.zeros((0, _KEPT_OLD), np.int64)
        self.near_old = np.zeros((0, self.d), np.float32)  # each candidate's nearest old center (its vector)
        self._old64: dict[int, np.ndarray] = {}  # old centers fetched for exact distances, by position
        if self.m:
            self._init_from_centers()
        # Rigorous bound on the float32 error of one squared distance ||x||^2 - 2 x.c + ||c||^2
        # (dot product: (d-1) u sum|x_i c_i| <= d eps/2 * 2 R^2; norms and two additions: a few eps R^2),
        # doubled for margin. Two values closer than twice this may be in either order.
        self.err = 2.0 * (self.d + 16) * _F32_EPS * self.r2

    @property
    def n_centers(self) -> int:
        return self.m + len(self.picks)

    def _init_from_centers(self) -> None:
        """Nearest and second-nearest old center of every candidate, reading the old centers once, a block of
        ``cols`` at a time (the blocks of the gemm: candidate rows x center columns, memory-bounded)."""
        cols = max(1, min(self.m, _INIT_BLOCK_ELEMENTS // 4096))
        rows = max(1, _INIT_BLOCK_ELEMENTS // cols)
        row_blocks = [(r0, min(self.n, r0 + rows)) for r0 in range(0, self.n, rows)]
        t = _KEPT_OLD
        # each candidate's t nearest old centers as read (values without ||x||^2, and positions), nearest first
        self.kept_val = np.full((self.n, t), np.inf, np.float32)
        self.kept_idx = np.full((self.n, t), -1, np.int64)
        self.near_old = np.zeros((self.n, self.d), np.float32)
        best = [np.full(r1 - r0, np.inf, np.float32) for r0, r1 in row_blocks]
        second = [np.full(r1 - r0, np.inf, np.float32) for r0, r1 in row_blocks]
        near = [np.zeros(r1 - r0, np.int64) for r0, r1 in row_blocks]
        c0 = 0
        for block in self.old.chunks(cols):
            block = _checked_chunk(block, self.d)
            nc = _sq_norms(block)
            self.r2 = max(self.r2, float(nc.max(initial=0.0)))
            for b, (r0, r1) in enumerate(row_blocks):
                xr = self.x[r0:r1]
                ar = np.arange(len(xr))
                g = xr @ block.T
                g *= -2.0
                g += nc[None, :]  # ||c||^2 - 2 x.c; ||x||^2 is added at the end
                self._keep_nearest(r0, r1, g, c0)
                j = g.argmin(axis=1)
                v1 = g[ar, j]
                g[ar, j] = np.inf
                v2 = g.min(axis=1)
                closer = v1 < best[b]
                second[b] = np.minimum(np.minimum(second[b], v2), np.where(closer, best[b], v1))
                near[b] = np.where(closer, c0 + j, near[b])
                if closer.any():
                    rows = np.flatnonzero(closer)
                    self.near_old[r0 + rows] = block[j[rows]]
                best[b] = np.minimum(best[b], v1)
            c0 += len(block)
        if c0 != self.m:
            raise ValueError(f"the centers source gave {c0} centers, not the {self.m} it has")
        for b, (r0, r1) in enumerate(row_blocks):
            for v in (best[b], second[b]):
                v += self.nx[r0:r1]
                np.maximum(v, 0.0, out=v)
            self.mind[r0:r1] = best[b]
            self.second[r0:r1] = second[b]
            self.near[r0:r1] = near[b]
        for i, s in enumerate(self.blocks):
            self.block_max[i] = self.mind[s].max()

    def _keep_nearest(self, r0: int, r1: int, g: np.ndarray, c0: int) -> None:
        """Merge a block's nearest old centers (the block starts at old center ``c0``) into each candidate's
        ``_KEPT_OLD`` nearest (values and positions; ties keep the earlier center)."""
        t = _KEPT_OLD
        kept_val, kept_idx = self.kept_val[r0:r1], self.kept_idx[r0:r1]
        entering = g < kept_val[:, -1:]  # only these can displace a kept one
        n_entering = int(np.count_nonzero(entering))
        if n_entering > g.size // 16:  # early blocks: most entries enter; a partition per row is cheaper
            if g.shape[1] > t:
                part = np.argpartition(g, t - 1, axis=1)[:, :t]
                part.sort(axis=1)
            else:
                part = np.broadcast_to(np.arange(g.shape[1]), g.shape).copy()
            vals = np.concatenate([kept_val, np.take_along_axis(g, part, axis=1)], axis=1)
            order = np.argsort(vals, axis=1, kind="stable")[:, :t]
            idxs = np.concatenate([kept_idx, c0 + part], axis=1)
            kept_val[:] = np.take_along_axis(vals, order, axis=1)
            kept_idx[:] = np.take_along_axis(idxs, order, axis=1)
            return
        if not n_entering:
            return
        touched = np.flatnonzero(entering.any(axis=1))
        sub_rows, cols = np.nonzero(entering[touched])
        rows = touched[sub_rows]
        # the kept entries of the touched rows, then the entering ones; sorted by row, value (stable: kept first)
        all_rows = np.concatenate([np.repeat(touched, t), rows])
        all_vals = np.concatenate([kept_val[touched].ravel(), g[rows, cols]])
        order = np.lexsort((all_vals, all_rows))
        first = np.searchsorted(all_rows[order], touched)
        take = order[(first[:, None] + np.arange(t)[None, :]).ravel()].reshape(len(touched), t)
        n_kept = len(touched) * t
        from_kept = take < n_kept
        new_idx = np.empty((len(touched), t), np.int64)
        kt = take[from_kept]
        new_idx[from_kept] = kept_idx[touched[kt // t], kt % t]
        new_idx[~from_kept] = c0 + cols[take[~from_kept] - n_kept]
        kept_val[touched] = all_vals[take]
        kept_idx[touched] = new_idx

    def _update_block(self, i: int, c: np.ndarray, nc: np.float32, p: int, center_id: int) -> None:
        s = self.blocks[i]
        b, m, sec, closer = self.buf[s], self.mind[s], self.second[s], self.closer[s]
        np.einsum("ij,j->i", self.x[s], c, out=b)
        b *= -2.0
        b += self.nx[s]
        b += nc
        np.maximum(b, 0.0, out=b)
        np.less(b, m, out=closer)
        np.minimum(sec, b, out=sec)
        np.copyto(sec, m, where=closer)  # the new center is nearest: the old nearest becomes second
        np.copyto(self.near[s], center_id, where=closer)
        np.copyto(m, b, where=closer)
        if s.start <= p < s.stop:
            m[p - s.start] = -1.0
        self.block_max[i] = m.max()

    def add(self, p: int) -> None:
        """Make candidate ``p`` a center: one pass over the matrix."""
        center_id = self.n_centers
        self.picks64[len(self.picks)] = self.x[p]
        self.picks.append(p)
        c = self.x[p]
        nc = self.nx[p]
        if self.pool is None or len(self.blocks) == 1:
            for i in range(len(self.blocks)):
                self._update_block(i, c, nc, p, center_id)
        else:
            list(self.pool.map(lambda i: self._update_block(i, c, nc, p, center_id), range(len(self.blocks))))

    def farthest(self) -> tuple[int, float] | None:
        """The candidate farthest from all centers (lowest index on ties) and its distance; None if all picked."""
        top = float(self.block_max.max())
        if top < 0:
            return None
        lo = max(top - 2.0 * self.err, 0.0)
        near = [
            s.start + np.flatnonzero(self.mind[s] >= lo)
            for s, bm in zip(self.blocks, self.block_max)
            if bm >= lo
        ]
        tied = np.concatenate(near) if len(near) > 1 else near[0]
        if len(tied) > _TIE_LIMIT:  # e.g. a huge pool of exact duplicates of centers: float32 order
            j = int(np.argmax(self.mind))
            return j, math.sqrt(max(float(self.mind[j]), 0.0))
        exact = self.exact_distances(tied)
        j = int(np.argmax(exact))  # the first maximum: the lowest index, since ``tied`` is sorted
        return int(tied[j]), float(exact[j])

    def _nearest64(self, cands: np.ndarray) -> np.ndarray:
        """The float64 vector of each candidate's nearest center: an old one as the warm start kept it, else a
        pick."""
        ids = self.near[cands]
        out = np.empty((len(cands), self.d), np.float64)
        is_old = ids < self.m
        if is_old.any():  # the nearest old center as the warm start read it
            out[is_old] = self.near_old[cands[is_old]]
        out[~is_old] = self.picks64[ids[~is_old] - self.m]
        return out

    def _old_vectors(self, positions: np.ndarray) -> np.ndarray:
        """The old centers at ``positions`` (any shape; -1 for none: a zero vector) in float64, fetched from the
        source once each."""
        flat = positions.ravel()
        missing = np.unique(flat[(flat >= 0) & ~np.isin(flat, np.fromiter(self._old64, np.int64))])
        if len(missing):
            got = _checked_chunk(self.old.rows_at(missing), self.d)
            if len(got) != len(missing):
                raise ValueError(f"the centers source gave {len(got)} rows for {len(missing)} positions")
            for i, row in zip(missing.tolist(), got.astype(np.float64)):
                self._old64[i] = row
        zero = np.zeros(self.d)
        out = np.stack([self._old64[i] if i >= 0 else zero for i in flat.tolist()]) if len(flat) else \
            np.empty((0, self.d))
        return out.reshape(*positions.shape, self.d)

    def _all_centers64(self, rows: int) -> Iterable[np.ndarray]:
        if self.m:
            for block in self.old.chunks(rows):
                yield _checked_chunk(block, self.d).astype(np.float64)
        for c0 in range(0, len(self.picks), rows):
            yield self.picks64[c0 : min(c0 + rows, len(self.picks))]

    def _kept_and_picks(self, xs: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Float64 squared distance of candidates ``idx`` (their vectors ``xs``) to the nearest of their kept old
        centers and of every pick."""
        kept = self._old_vectors(self.kept_idx[idx])  # (k, t, d); unfilled slots are at +inf value, 0 vector
        d2 = _sq_rows((xs[:, None, :] - kept).reshape(-1, self.d)).reshape(len(idx), -1)
        d2[~np.isfinite(self.kept_val[idx])] = np.inf
        best = d2.min(axis=1)
        if self.picks:
            rows = max(1, _EXACT_BLOCK_ELEMENTS // (len(idx) * self.d))
            for c0 in range(0, len(self.picks), rows):
                cb = self.picks64[c0 : min(c0 + rows, len(self.picks))]
                diff = (xs[:, None, :] - cb[None, :, :]).reshape(-1, self.d)
                np.minimum(best, _sq_rows(diff).reshape(len(idx), len(cb)).min(axis=1), out=best)
        return best

    def exact_distances(self, idx: np.ndarray) -> np.ndarray:
        """Float64 distance of candidates ``idx`` to their nearest center, by direct differences."""
        xs = self.x[idx].astype(np.float64)
        d2 = np.empty(len(idx))
        clear = (self.second[idx].astype(np.float64) - self.mind[idx]) > 2.0 * self.err
        one = np.flatnonzero(clear)
        d2[one] = _sq_rows(xs[one] - self._nearest64(idx[one]))
        ambiguous = np.flatnonzero(~clear)
        if len(ambiguous) and self.m:
            # the true nearest old center is among the kept ones when the last kept is clearly farther than the
            # first (or all old centers are kept): compare with those and every pick, not with every old center
            vals = self.kept_val[idx[ambiguous]].astype(np.float64)
            banded = (vals[:, -1] - vals[:, 0] > 2.0 * self.err + 8 * _F32_EPS * self.r2) | (self.m < _KEPT_OLD)
            if banded.any():
                near = ambiguous[banded]
                d2[near] = self._kept_and_picks(xs[near], idx[near])
                ambiguous = ambiguous[~banded]
        if len(ambiguous) * self.n_centers > _EXACT_PAIR_LIMIT:
            # too many to compare with every center: the distance to the float32-nearest one
            # (at most 2 err above the true nearest)
            d2[ambiguous] = _sq_rows(xs[ambiguous] - self._nearest64(idx[ambiguous]))
        elif len(ambiguous):
            xa = xs[ambiguous]
            best = np.full(len(xa), np.inf)
            rows = max(1, _EXACT_BLOCK_ELEMENTS // (len(xa) * self.d))
            for cb in self._all_centers64(rows):
                diff = (xa[:, None, :] - cb[None, :, :]).reshape(-1, self.d)
                np.minimum(best, _sq_rows(diff).reshape(len(xa), len(cb)).min(axis=1), out=best)
            d2[ambiguous] = best
        return np.sqrt(d2)


def k_center_greedy(
    candidates: np.ndarray,
    budget: int,
    *,
    centers: np.ndarray | CenterSource | None = None,
    seed: int = 0,
    first: int | None = None,
) -> KCenterResult:
    """Pick ``budget`` of ``candidates`` (n, d) by k-center greedy, warm-started from ``centers``.

    ``centers`` (m, d) are embeddings of earlier selections, an array or a :class:`CenterSource` that streams
    them (read once for the warm start; again only for rare exact tie-breaks): they count as chosen, so every pick is
    the candidate farthest (Euclidean) from all old centers and all earlier picks. Without centers
    (None or zero rows) the first pick is ``first`` if given, else ``np.random.default_rng(seed)``'s
    choice; with centers ``first`` must be None and ``seed`` is not used. Ties go to the lowest index.
    ``budget`` above the pool size picks every candidate. Candidates are used as float32.
    """
    x, old, k = _check_args(candidates, budget, centers, first)
    n = len(x)
    if n == 0:
        return KCenterResult([], [], 0.0)
    n_threads = _threads_for(n)
    pool = ThreadPoolExecutor(n_threads, thread_name_prefix="kcenter") if n_threads > 1 else None
    try:
        g = _Greedy(x, old, k, pool, n_threads)
        mins: list[float] = []
        if len(old) == 0 and k > 0:
            p = int(first) if first is not None else int(np.random.default_rng(seed).integers(n))
            mins.append(math.inf)
            g.add(p)
        while len(g.picks) < k:
            best = g.farthest()
            assert best is not None  # k <= n, so an unpicked candidate is left
            mins.append(best[1])
            g.add(best[0])
        if g.n_centers == 0:
            radius = math.inf
        else:
            best = g.farthest()
            radius = 0.0 if best is None else best[1]
        return KCenterResult(list(g.picks), mins, radius)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _cdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All pairwise Euclidean distances in float64 (scipy's cdist; numpy when scipy is missing)."""
    try:
        from scipy.spatial.distance import cdist
    except ImportError:  # pragma: no cover - scipy comes with sentence-transformers and datasketch
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        out = np.empty((len(a64), len(b64)))
        for c0 in range(0, len(b64), 64):
            diff = a64[:, None, :] - b64[None, c0 : c0 + 64, :]
            out[:, c0 : c0 + 64] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        return out
    return cdist(a, b, metric="euclidean")


def k_center_greedy_reference(
    candidates: np.ndarray,
    budget: int,
    *,
    centers: np.ndarray | None = None,
    seed: int = 0,
    first: int | None = None,
) -> KCenterResult:
    """The straightforward k-center greedy, an oracle for tests and the benchmark's *strawman* (slow).

    Before every pick it recomputes the full pairwise distances from all candidates to all current centers
    (old centers + picks so far) in float64 and takes the row minimum; pick the argmax. Same contract as
    ``k_center_greedy``. This is NOT google/active-learning's ``kCenterGreedy``, which updates only the new
    center's distances (``bench/reference_impls.py`` transcribes that one for the benchmark).
    """
    x, source, k = _check_args(candidates, budget, centers, first)
    old = np.concatenate([_checked_chunk(c, x.shape[1]) for c in source.chunks(1 << 16)] or [
        np.empty((0, x.shape[1]), np.float32)])
    n = len(x)
    if n == 0:
        return KCenterResult([], [], 0.0)
    picks: list[int] = []
    mins: list[float] = []

    def min_distances() -> np.ndarray:
        all_centers = np.concatenate([old, x[picks]])
        dist = _cdist(x, all_centers)
        md = dist.min(axis=1)
        md[picks] = -1.0  # already chosen
        return md

    for _ in range(k):
        if len(old) == 0 and not picks:
            ind = int(first) if first is not None else int(np.random.default_rng(seed).integers(n))
            mins.append(math.inf)
        else:
            md = min_distances()
            ind = int(np.argmax(md))
            mins.append(float(md[ind]))
        assert ind not in picks
        picks.append(ind)
    if len(old) == 0 and not picks:
        radius = math.inf
    else:
        radius = max(float(min_distances().max()), 0.0)
    return KCenterResult(picks, mins, radius)
