"""Benchmark: k-center greedy (compression stage) against the straightforward reference.

    python bench/bench_kcenter.py [--n 100000] [--d 384] [--k 2000] [--quick] [--ref-picks 200] [--seed 0]
                                  [--repeat 2]

Data: ``n`` x ``d`` float32 standard-normal rows (seeded), L2-normalised like sentence embeddings.
Both implementations start from the SAME first center and must pick the same candidates.

Measured in one process:

* **ours**: ``k_center_greedy`` for ``k`` picks.
* **reference**: ``k_center_greedy_reference`` (recomputes all n x (centers) float64 distances with
  scipy's cdist before every pick, like google/active-learning). Its cost per pick grows with the
  number of centers, so all ``k`` picks take hours at full size. When the predicted time (from one
  timed cdist call) exceeds 10 minutes, it runs only the first ``K'`` picks (``--ref-picks``, >= 200),
  checks them against ours (greedy picks are a prefix: our first K' picks are what a K' budget gives)
  and extrapolates **linearly per pick** to ``k``: time(K') * k / K'. That underestimates the
  reference (its later picks cost more), so the speedup it gives is a lower bound; the table also
  shows the estimate from the measured per-pick cost as a function of the number of centers.
* **floor**: the time to stream the matrix once per pick: ``k`` passes of the matrix-vector product
  ``np.einsum('ij,j->i', X[block], v)`` over the same row blocks and threads as ours, i.e. the one
  product each pick cannot avoid, without the distance bookkeeping, argmax and tie-breaks.
  ``ours / floor`` close to 1 means a pick costs one pass over memory. ``k`` passes of the pure
  reduction ``X[block].sum()`` are shown for comparison. Ours and the floor are run alternately,
  ``--repeat`` times, and the best of each is reported (the machine may be shared).

Prints a markdown table; exits 1 when picks differ or the speedup is below the 5x goal.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from warriorflow.method import kcenter as compress
from warriorflow.method.kcenter import k_center_greedy, k_center_greedy_reference

GOAL = 5.0
REF_LIMIT_S = 600.0
MIN_REF_PICKS = 200


def make_data(n: int, d: int, seed: int) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, int(rng.integers(n))


def stream_floor(x: np.ndarray, k: int, kernel: str) -> tuple[float, int]:
    """Seconds for ``k`` streaming passes over ``x`` on the same row blocks and threads as ours.

    ``kernel`` "matvec": ``np.einsum('ij,j->i', X[block], v)``, the product every pick needs (no distance
    bookkeeping, argmax or tie-breaks); "sum": ``X[block].sum()``, a reduction that does no useful work.
    """
    n_threads = compress._threads_for(len(x))
    bounds = np.linspace(0, len(x), n_threads + 1).astype(int)
    blocks = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    v = x[0].copy()
    out = np.empty(len(x), np.float32)

    def one(s: slice) -> None:
        if kernel == "matvec":
            np.einsum("ij,j->i", x[s], v, out=out[s])
        else:
            x[s].sum()

    def one_pass(pool) -> None:
        if pool is None:
            one(blocks[0])
        else:
            list(pool.map(one, blocks))

    pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
    try:
        one_pass(pool)
        t0 = time.perf_counter()
        for _ in range(k):
            one_pass(pool)
        return time.perf_counter() - t0, n_threads
    finally:
        if pool is not None:
            pool.shutdown()


class TimedCdist:
    """Wraps the reference's distance function to record (number of centers, seconds) per call."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[int, float]] = []

    def __call__(self, a, b):
        t0 = time.perf_counter()
        out = self.inner(a, b)
        self.calls.append((len(b), time.perf_counter() - t0))
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--k", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref-picks", type=int, default=MIN_REF_PICKS,
                    help=f"picks of the reference when all k would take over {REF_LIMIT_S:.0f}s (>= {MIN_REF_PICKS})")
    ap.add_argument("--repeat", type=int, default=2, help="runs of ours and of the floor (best of)")
    ap.add_argument("--quick", action="store_true", help="a small case (n=5000, d=64, k=200), reference in full")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.d, args.k = 5000, 64, 200
    k = min(args.k, args.n)

    x, first = make_data(args.n, args.d, args.seed)
    print(f"# k-center greedy: n={args.n} d={args.d} k={k} seed={args.seed} first={first} "
          f"(python {platform.python_version()}, numpy {np.__version__}, "
          f"{len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.2f})", flush=True)

    # ours and the floor alternate, best of --repeat each (the machine may be shared)
    t_ours_runs, t_floor_runs = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours = k_center_greedy(x, k, first=first)
        t_ours_runs.append(time.perf_counter() - t0)
        t_floor_runs.append(stream_floor(x, k, "matvec")[0])
        print(f"ours: {t_ours_runs[-1]:.2f}s, floor (matvec): {t_floor_runs[-1]:.2f}s", flush=True)
    t_ours, t_floor = min(t_ours_runs), min(t_floor_runs)
    t_sum, n_threads = stream_floor(x, k, "sum")

    # Predict the full reference from one cdist call against 64 centers (cost ~ linear in centers).
    probe = min(64, args.n)
    compress._cdist(x[:2], x[:2])  # import scipy.spatial outside the timing
    t0 = time.perf_counter()
    compress._cdist(x, x[:probe])
    per_center = (time.perf_counter() - t0) / probe
    predicted_full = per_center * k * (k - 1) / 2
    ref_picks = k if predicted_full <= REF_LIMIT_S else min(k, max(args.ref_picks, MIN_REF_PICKS))
    print(f"reference: predicted {predicted_full:.0f}s for all {k} picks -> running {ref_picks} picks", flush=True)

    timed = TimedCdist(compress._cdist)
    compress._cdist = timed
    try:
        t0 = time.perf_counter()
        ref = k_center_greedy_reference(x, ref_picks, first=first)
        t_ref_measured = time.perf_counter() - t0
    finally:
        compress._cdist = timed.inner
    # the reference's last cdist call computes radius_after, not a pick: leave it out of the timing
    radius_call = timed.calls[-1][1] if timed.calls else 0.0
    t_ref_picks = t_ref_measured - radius_call
    print(f"reference: {t_ref_picks:.1f}s for {ref_picks} picks", flush=True)

    identical = ours.picks[:ref_picks] == ref.picks
    dist_err = float(np.max(np.abs(np.array(ours.min_distances[1:ref_picks]) - ref.min_distances[1:]))) \
        if ref_picks > 1 else 0.0

    truncated = ref_picks < k
    if truncated:
        t_ref_linear = t_ref_picks * k / ref_picks
        # per-pick cost vs number of centers (least squares on the measured calls), summed to k picks
        calls = np.array(timed.calls[:-1])
        slope, intercept = np.polyfit(calls[:, 0], calls[:, 1], 1)
        t_ref_fit = float(sum(intercept + slope * c for c in range(1, k)))
    else:
        t_ref_linear = t_ref_fit = t_ref_picks
    t_ours_prefix = None
    if truncated:
        t0 = time.perf_counter()
        prefix = k_center_greedy(x, ref_picks, first=first)
        t_ours_prefix = time.perf_counter() - t0
        identical = identical and prefix.picks == ref.picks

    speedup = t_ref_linear / t_ours
    ok = identical and speedup >= GOAL

    ref_label = (f"measured on the first {ref_picks} picks, extrapolated linearly per pick to {k}"
                 if truncated else f"measured, all {k} picks")
    rows = [
        ("candidates", f"{args.n:,} x {args.d} float32 (L2-normalised, seed {args.seed}), {k:,} picks"),
        ("ours (k_center_greedy)", f"{t_ours:.2f} s ({1e3 * t_ours / k:.2f} ms/pick, {n_threads} thread(s))"),
        ("reference (cdist recompute)", f"{t_ref_linear:,.0f} s ({ref_label})"),
    ]
    if truncated:
        rows += [
            ("reference, measured", f"{t_ref_picks:,.1f} s for {ref_picks} picks "
                                    f"(ours for the same {ref_picks}: {t_ours_prefix:.2f} s, "
                                    f"{t_ref_picks / t_ours_prefix:,.0f}x)"),
            ("reference, per-pick cost fit", f"{t_ref_fit:,.0f} s for {k} picks "
                                             f"({intercept * 1e3:.1f} ms + {slope * 1e3:.2f} ms per center; "
                                             f"speedup {t_ref_fit / t_ours:,.0f}x)"),
        ]
    rows += [
        ("identical picks", f"{'yes' if identical else 'NO'} ({ref_picks} of {k} compared; "
                            f"largest min_distances difference {dist_err:.1e})"),
        (f"speedup (goal >= {GOAL:.0f}x)",
         f"{speedup:,.0f}x{' (lower bound)' if truncated else ''} **{'PASS' if speedup >= GOAL else 'FAIL'}**"),
        ("floor: k passes of X @ v (threaded einsum)", f"{t_floor:.2f} s ({1e3 * t_floor / k:.2f} ms/pass)"),
        ("ours / floor", f"{t_ours / t_floor:.2f}"),
        ("for comparison: k passes of X.sum()", f"{t_sum:.2f} s ({1e3 * t_sum / k:.2f} ms/pass; "
                                                  f"ours / this {t_ours / t_sum:.2f})"),
    ]
    print()
    print("| quantity | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    print("PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
