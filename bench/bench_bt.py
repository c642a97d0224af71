"""Benchmark: Bradley-Terry ratings with a bootstrap CI (rating stage) against FastChat's compute_bt.

    python bench/bench_bt.py [--battles 1000000] [--experts 20] [--rounds 100] [--quick] [--seed 0]
                             [--repeat 3] [--strawman-limit 60] [--blas-threads 1] [--json bench/results/bt.json]

Data: ``battles`` synthetic battles among ``experts`` experts with known strengths (Elo scale, normal with
sd 120), uniformly random pairs and roles. The result has expected value exactly the BT probability p
(P(tie) = 0.3 min(p, 1 - p), about 10% ties; P(win) = p - P(tie)/2), so BT with half-ties is unbiased.

Measured in one process (best of ``--repeat`` for ours and the reference), with BLAS limited to
``--blas-threads`` (default 1) for both: the problems are tiny (20 experts, ~1,100 cells), and with
OpenBLAS' default one-thread-per-core on a shared 2-core machine, FastChat's 100 fits took 0.1 s or
2.5-3.3 s depending on whether ours had just run (its idle BLAS threads spin), and ours was 4x slower
too; one thread is the fastest setting for both here.

* **ours**: ``rating.bt_bootstrap(battles, rounds, seed)`` from the list of ``BattleVotes`` (what the
  rating stage receives: it includes reducing 1M Python objects to the count table) to the point
  estimate and the 2.5/97.5 percentiles. Also from per-battle arrays (``BattleTable.from_arrays`` +
  ``bt_bootstrap``), the input closest to FastChat's DataFrame.
* **reference** (the real one): FastChat's current ``compute_bootstrap_bt(battles, num_round)`` then
  ``compute_bt(battles)``, in that order as ``elo_analysis.py`` calls them, transcribed in
  ``bench/reference_impls.py`` (upstream path and commit there). Input: a pandas DataFrame of battle
  rows (``model_a``, ``model_b``, ``winner`` in {"model_a", "model_b", "tie"}), built outside the
  timing. Each call runs ``preprocess_for_bt`` (``pd.factorize`` + ``np.unique(axis=0)`` counts of the
  unique (model_a, model_b, outcome) cells), then scipy L-BFGS-B on the counted cells; the bootstrap
  draws cell counts with ``np.random.default_rng(0).multinomial`` and fits the rounds in an
  ``mp.Pool(os.cpu_count())`` (upstream's default ``num_cpu=None``). Also timed with ``num_cpu=1``.
* **strawman** (``strawman_per_row_bt_bootstrap``, our own simplified baseline, NOT FastChat): from
  per-battle arrays, per round resample the n battle ROWS, build the sparse n x m design and run scipy
  L-BFGS-B on the per-row log-loss. FastChat stopped doing per-row fits in 2024 (#3523). If all rounds
  are predicted to take over ``--strawman-limit`` seconds, it runs as many rounds as fit (>= 5) and is
  extrapolated linearly per round (each round costs the same).

Agreement with the reference: the point estimate (both centred on mean 1000; FastChat anchors on a
model absent here, so its mean is 1000 up to the optimiser's tolerance), and every round on the SAME
resamples: FastChat's own multinomial draws (``fastchat_bootstrap_weights``) mapped cell by cell onto our
count table and fitted with ``rating.fit_bt_counts``; the CI bounds from those are compared with the
bounds of FastChat's ``compute_bootstrap_bt`` output. Tolerance: 1 Elo point (ours adds ``PRIOR_TIES`` =
0.01 virtual ties per pair; FastChat stops L-BFGS-B at gtol 1e-6, i.e. ~1e-3 points); the numbers with
``prior=0`` are shown too.

Prints a markdown table; exits 1 when a goal is missed (speedup of ours from BattleVotes >= 5x over the
faster of the two reference configurations; all agreement checks within 1 point). ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reference_impls  # noqa: E402

from warriorflow.method import rating  # noqa: E402
from warriorflow.method.rating import BattleTable, BattleVotes  # noqa: E402

SPEED_GOAL = 5.0
POINT_GOAL = 1.0
LN10_400 = math.log(10.0) / 400.0


# --------------------------------------------------------------------------------------------------- data

def make_data(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    strengths = np.sort(rng.normal(0.0, 120.0, m))[::-1] + 1000.0
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1.0 / (1.0 + 10.0 ** ((strengths[b] - strengths[a]) / 400.0))
    tie = 0.3 * np.minimum(p, 1.0 - p)
    u = rng.random(n)
    s = np.where(u < p - tie / 2, 1.0, np.where(u < p + tie / 2, 0.5, 0.0))
    return strengths, a, b, s


def to_battles(a: np.ndarray, b: np.ndarray, s: np.ndarray, experts: list[str]) -> list[BattleVotes]:
    votes = {1.0: {"judge": "attacker"}, 0.5: {"judge": "tie"}, 0.0: {"judge": "defender"}}
    return [BattleVotes(f"b{i}", f"i{i // 2}", experts[x], experts[y], votes[v])
            for i, (x, y, v) in enumerate(zip(a.tolist(), b.tolist(), s.tolist()))]


def to_fastchat_frame(a: np.ndarray, b: np.ndarray, s: np.ndarray, experts: list[str]) -> pd.DataFrame:
    """Chatbot Arena battle rows, the columns FastChat's BT reads (winner as ``rating.to_fastchat`` maps it)."""
    names = np.array(experts, dtype=object)
    winner = np.where(s == 1.0, "model_a", np.where(s == 0.0, "model_b", "tie"))
    return pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})


# --------------------------------------------------------------------------------------------------- strawman

def strawman_per_row_fit(a: np.ndarray, b: np.ndarray, s: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """Plain BT MLE over battle ROWS with scipy L-BFGS-B; Elo scale, mean 1000. Returns (ratings, iterations)."""
    n = len(a)
    design = csr_matrix((np.tile([1.0, -1.0], n), np.column_stack([a, b]).ravel(), np.arange(0, 2 * n + 1, 2)),
                        shape=(n, m))
    design_t = design.T.tocsr()

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ theta
        loss = -(s * log_expit(z) + (1.0 - s) * log_expit(-z)).sum() / n
        return loss, -(design_t @ (s - expit(z))) / n

    res = minimize(loss_and_grad, np.zeros(m), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-8, "ftol": 0.0, "maxiter": 2000})
    r = res.x / LN10_400
    return r - r.mean() + 1000.0, int(res.nit)


def strawman_per_row_bt_bootstrap(arrays: tuple[np.ndarray, np.ndarray, np.ndarray], m: int, rounds: int,
                                  seed: int, time_limit: float = math.inf, min_rounds: int = 5) -> dict:
    """Full-data fit, then per round: resample battle rows with replacement and refit. Stops early
    (>= min_rounds) when the predicted time for the next round would pass ``time_limit``."""
    a, b, s = arrays
    n = len(a)
    t0 = time.perf_counter()
    point, nit = strawman_per_row_fit(a, b, s, m)
    t_point = time.perf_counter() - t0
    rng = np.random.RandomState(seed)
    samples, iters, t_rounds = [], [nit], 0.0
    for r in range(rounds):
        t1 = time.perf_counter()
        if r >= min_rounds and t_point + t_rounds + t_rounds / r > time_limit:
            break
        idx = rng.randint(0, n, n)
        ratings, nit = strawman_per_row_fit(a[idx], b[idx], s[idx], m)
        samples.append(ratings)
        iters.append(nit)
        t_rounds += time.perf_counter() - t1
    return {"point": point, "rounds_run": len(samples), "t_point": t_point,
            "t_per_round": t_rounds / max(len(samples), 1), "iters": iters}


# --------------------------------------------------------------------------------------------------- reference

def run_fastchat(df: pd.DataFrame, rounds: int, num_cpu: int | None) -> tuple[float, tuple[pd.DataFrame, pd.Series]]:
    """What elo_analysis.py does for rating_system="bt": compute_bootstrap_bt, then compute_bt."""
    t0 = time.perf_counter()
    bootstrap_df = reference_impls.compute_bootstrap_bt(df, num_round=rounds, num_cpu=num_cpu, progress=False)
    final = reference_impls.compute_bt(df)
    return time.perf_counter() - t0, (bootstrap_df, final)


def centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=-1, keepdims=True) + 1000.0


def fastchat_cells_to_ours(table: BattleTable, matchups: np.ndarray, outcomes: np.ndarray, models: list[str],
                           weights: np.ndarray) -> np.ndarray:
    """Index of each FastChat cell in our table; checks that both count the same cells the same way."""
    ours = {(table.experts[i], table.experts[j], float(v)): c
            for c, (i, j, v) in enumerate(zip(table.a.tolist(), table.b.tolist(), table.s.tolist()))}
    perm = np.array([ours[(models[i], models[j], float(v))]
                     for (i, j), v in zip(matchups.tolist(), outcomes.tolist())])
    if len(perm) != len(table.count) or len(set(perm.tolist())) != len(perm):
        raise AssertionError("FastChat's cells and ours differ")
    if not np.array_equal(table.count[perm], weights.astype(np.int64)):
        raise AssertionError("FastChat's cell counts and ours differ")
    return perm


# --------------------------------------------------------------------------------------------------- main

def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t, out = fn()
        times.append(t)
    return min(times), times, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--experts", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of ours and of the reference (best of)")
    ap.add_argument("--strawman-limit", type=float, default=60.0,
                    help="seconds for the strawman before extrapolating (0: skip it)")
    ap.add_argument("--quick", action="store_true", help="100k battles, 20 rounds")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads for the whole process, ours and the reference alike (0: library default)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args()
    # held for the whole run; forked pool workers inherit it
    _limits = threadpool_limits(limits=args.blas_threads or None, user_api="blas")  # noqa: F841
    if args.quick:
        args.battles, args.rounds = 100_000, 20
    n, m, rounds = args.battles, args.experts, args.rounds
    experts = [f"expert{i:02d}" for i in range(m)]
    env = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
           "pandas": pd.__version__, "cores": len(os.sched_getaffinity(0)), "os_cpu_count": os.cpu_count(),
           "load_1min_at_start": os.getloadavg()[0],
           "blas_threads": sorted({d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"})}
    print(f"# Bradley-Terry bootstrap: {n:,} battles, {m} experts, {rounds} rounds ({env})\n", flush=True)

    strengths, a, b, s = make_data(n, m, args.seed)
    t0 = time.perf_counter()
    battles = to_battles(a, b, s, experts)
    df = to_fastchat_frame(a, b, s, experts)
    print(f"data: {np.mean(s == 0.5):.1%} ties; {len(battles):,} BattleVotes and the FastChat DataFrame built "
          f"in {time.perf_counter() - t0:.1f} s (not timed)", flush=True)

    # ours, end to end from BattleVotes, and from per-battle arrays
    def ours_votes():
        t0 = time.perf_counter()
        out = rating.bt_bootstrap(battles, rounds=rounds, seed=args.seed)
        return time.perf_counter() - t0, out

    def ours_arrays():
        t0 = time.perf_counter()
        table = BattleTable.from_arrays(a, b, s, experts)
        out = rating.bt_bootstrap(table, rounds=rounds, seed=args.seed)
        return time.perf_counter() - t0, out

    t_ours, t_ours_runs, ours = best_of(args.repeat, ours_votes)
    t_ours_arr, t_ours_arr_runs, _ = best_of(args.repeat, ours_arrays)
    t0 = time.perf_counter()
    table = rating.battle_table(battles)
    t_table = time.perf_counter() - t0
    assert list(table.experts) == experts
    battles.clear()  # free the 1M objects before FastChat forks its pool
    our_point = np.array([ours[e]["rating"] for e in experts])
    print(f"ours: {t_ours:.3f} s from BattleVotes, {t_ours_arr:.3f} s from arrays (best of {args.repeat})", flush=True)

    # the reference: FastChat, default pool (num_cpu=None -> os.cpu_count()) and num_cpu=1
    t_ref, t_ref_runs, (boot_df, fc_final) = best_of(args.repeat, lambda: run_fastchat(df, rounds, None))
    t_ref1, t_ref1_runs, _ = best_of(args.repeat, lambda: run_fastchat(df, rounds, 1))
    print(f"FastChat: {t_ref:.3f} s (pool of {os.cpu_count()}), {t_ref1:.3f} s (num_cpu=1)", flush=True)
    # breakdown: FastChat's preprocess_for_bt (run twice per call pair) and its fit_bt calls in one process;
    # ours: the count table from BattleVotes, and the fits from the table
    t0 = time.perf_counter()
    reference_impls.preprocess_for_bt(df)
    t_pre = time.perf_counter() - t0

    def fastchat_fits():
        matchups, outcomes, models, weights, boot_w = reference_impls.fastchat_bootstrap_weights(df, rounds)
        t0 = time.perf_counter()
        reference_impls.fit_bt(matchups, outcomes, weights, len(models), math.log(10.0))
        for w in boot_w:
            reference_impls.fit_bt(matchups, outcomes, w, len(models), np.log(10.0))
        return time.perf_counter() - t0, None

    def ours_fits():
        t0 = time.perf_counter()
        rating.bt_bootstrap(table, rounds=rounds, seed=args.seed)
        return time.perf_counter() - t0, None

    t_fc_fits, _, _ = best_of(args.repeat, fastchat_fits)
    t_ours_fits, _, _ = best_of(args.repeat, ours_fits)

    # agreement: point estimate
    fc_point_raw = fc_final[experts].to_numpy()
    point_diff = float(np.abs(centred(our_point) - centred(fc_point_raw)).max())
    ours_p0 = rating.fit_bt_counts(table, prior=0.0)
    point_diff_p0 = float(np.abs(centred(ours_p0) - centred(fc_point_raw)).max())
    # agreement: every round on FastChat's own resamples
    matchups, outcomes, models, weights, boot_w = reference_impls.fastchat_bootstrap_weights(df, rounds)
    perm = fastchat_cells_to_ours(table, matchups, outcomes, models, weights)
    counts_fc = np.rint(boot_w * n).astype(np.int64)
    assert np.array_equal(counts_fc.sum(axis=1), np.full(rounds, n))
    counts = np.zeros((rounds, len(table.count)), dtype=np.int64)
    counts[:, perm] = counts_fc
    col = [models.index(e) for e in experts]
    fc_rounds = np.array([reference_impls.scale_and_offset(
        reference_impls.fit_bt(matchups, outcomes, w, len(models), np.log(10.0)), models)[col] for w in boot_w])
    ours_same = rating.fit_bt_counts(table, counts)
    ours_same_p0 = rating.fit_bt_counts(table, counts, prior=0.0)
    round_diff = float(np.abs(centred(ours_same) - centred(fc_rounds)).max())
    round_diff_p0 = float(np.abs(centred(ours_same_p0) - centred(fc_rounds)).max())
    # CI bounds: FastChat's compute_bootstrap_bt output (quantiles as elo_analysis takes them) vs ours
    fc_lo = boot_df.quantile(0.025)[experts].to_numpy()
    fc_hi = boot_df.quantile(0.975)[experts].to_numpy()
    lo_same, hi_same = np.percentile(ours_same, rating.CI_PERCENTILES, axis=0)
    ci_diff_same = float(max(np.abs(lo_same - fc_lo).max(), np.abs(hi_same - fc_hi).max()))
    our_lo = np.array([ours[e]["lo"] for e in experts])
    our_hi = np.array([ours[e]["hi"] for e in experts])
    ci_diff_indep = float(max(np.abs(our_lo - fc_lo).max(), np.abs(our_hi - fc_hi).max()))
    width, fc_width = float(np.mean(our_hi - our_lo)), float(np.mean(fc_hi - fc_lo))
    truth_diff = float(np.abs(our_point - (strengths - strengths.mean() + 1000.0)).max())

    # the strawman
    straw = None
    if args.strawman_limit > 0:
        print("strawman: running ...", flush=True)
        st = strawman_per_row_bt_bootstrap((a, b, s), m, rounds, args.seed, time_limit=args.strawman_limit)
        t_straw = st["t_point"] + st["t_per_round"] * rounds
        straw = {"seconds": t_straw, "rounds_run": st["rounds_run"], "extrapolated": st["rounds_run"] < rounds,
                 "seconds_full_fit": st["t_point"], "seconds_per_round": st["t_per_round"],
                 "lbfgs_iterations": [min(st["iters"]), max(st["iters"])],
                 "max_point_diff_vs_ours": float(np.abs(our_point - st["point"]).max()),
                 "speedup": t_straw / t_ours}
        print(f"strawman: full fit {st['t_point']:.1f} s, {st['t_per_round']:.2f} s/round over {st['rounds_run']} "
              f"rounds", flush=True)

    speedup, speedup1 = t_ref / t_ours, t_ref1 / t_ours
    speedup_arr, speedup1_arr = t_ref / t_ours_arr, t_ref1 / t_ours_arr
    # the goal is judged against the FASTER reference configuration on this machine
    best_cfg = "default pool" if t_ref <= t_ref1 else "num_cpu=1"
    speedup_best, speedup_best_arr = min(t_ref, t_ref1) / t_ours, min(t_ref, t_ref1) / t_ours_arr
    ok_speed = speedup_best >= SPEED_GOAL
    ok_agree = max(point_diff, round_diff, ci_diff_same) <= POINT_GOAL
    print()
    print("| quantity | value |")
    print("|---|---|")
    print(f"| ours, from {n:,} BattleVotes (point + {rounds} rounds) | {t_ours:.3f} s |")
    print(f"| ours, from per-battle arrays | {t_ours_arr:.3f} s |")
    print(f"| reference: FastChat compute_bootstrap_bt + compute_bt, from the DataFrame, default pool "
          f"({os.cpu_count()} processes) | {t_ref:.3f} s (of which preprocess_for_bt {t_pre:.2f} s, run twice) |")
    print(f"| reference, num_cpu=1 | {t_ref1:.3f} s |")
    print(f"| breakdown: FastChat fit_bt alone (full + {rounds} rounds, one process) vs ours from the table | "
          f"{t_fc_fits:.3f} s vs {t_ours_fits:.3f} s: {t_fc_fits / t_ours_fits:.1f}x; ours' count table from "
          f"BattleVotes {t_table:.2f} s, FastChat's preprocess_for_bt {t_pre:.2f} s per call |")
    print(f"| **speedup vs reference, end to end** (ours from BattleVotes; goal >= {SPEED_GOAL:g}x vs the faster "
          f"reference configuration, here {best_cfg}) | **{speedup_best:.1f}x** {'PASS' if ok_speed else 'FAIL'} "
          f"(default pool {speedup:.1f}x, num_cpu=1 {speedup1:.1f}x) |")
    print(f"| speedup vs reference, ours from per-battle arrays | {speedup_best_arr:.1f}x (default pool "
          f"{speedup_arr:.1f}x, num_cpu=1 {speedup1_arr:.1f}x) |")
    print(f"| max abs point-estimate difference vs FastChat compute_bt (Elo, centred) | {point_diff:.2e} "
          f"(prior=0: {point_diff_p0:.2e}; FastChat's raw mean {fc_point_raw.mean():.4f}) |")
    print(f"| max abs difference over all {rounds} rounds on FastChat's own resamples (Elo, centred) | "
          f"{round_diff:.2e} (prior=0: {round_diff_p0:.2e}) |")
    print(f"| max abs CI-bound difference, same resamples, vs compute_bootstrap_bt's quantiles | {ci_diff_same:.2e} |")
    print(f"| agreement (all <= {POINT_GOAL:g} point) | {'PASS' if ok_agree else 'FAIL'} |")
    print(f"| CI bounds, independent resamples (ours seed {args.seed} vs FastChat) | max diff {ci_diff_indep:.2f}; "
          f"mean width {width:.2f} vs {fc_width:.2f} |")
    print(f"| max abs difference from the true strengths (Elo) | {truth_diff:.2f} |")
    if straw is not None:
        note = (f"extrapolated from {straw['rounds_run']} rounds: {straw['seconds_full_fit']:.1f} s + {rounds} x "
                f"{straw['seconds_per_round']:.2f} s" if straw["extrapolated"] else "all rounds measured")
        print(f"| STRAWMAN (ours, not FastChat): per-row scipy fit per resample | {straw['seconds']:.1f} s ({note}) |")
        print(f"| speedup vs strawman | {straw['speedup']:,.0f}x "
              f"(point difference {straw['max_point_diff_vs_ours']:.1e}) |")
    print()
    print("PASS" if ok_speed and ok_agree else "FAIL", flush=True)

    if args.json:
        result = {
            "bench": "bt", "env": env, "load_1min_at_end": os.getloadavg()[0],
            "sizes": {"battles": n, "experts": m, "rounds": rounds, "seed": args.seed, "cells": len(table.count)},
            "ours": {"seconds_from_battlevotes": t_ours, "runs_from_battlevotes": t_ours_runs,
                     "seconds_from_arrays": t_ours_arr, "runs_from_arrays": t_ours_arr_runs,
                     "seconds_battle_table_from_battlevotes": t_table, "seconds_fits_from_table": t_ours_fits},
            "reference": {"name": "FastChat compute_bootstrap_bt + compute_bt (transcribed, bench/reference_impls.py)",
                          "upstream": reference_impls.FASTCHAT_PATH, "commit": reference_impls.FASTCHAT_COMMIT,
                          "input": "pandas DataFrame of battle rows (built outside the timing)",
                          "seconds_default_pool": t_ref, "pool_processes": os.cpu_count(),
                          "runs_default_pool": t_ref_runs,
                          "seconds_num_cpu_1": t_ref1, "runs_num_cpu_1": t_ref1_runs,
                          "seconds_preprocess_for_bt_once": t_pre,
                          "seconds_fit_bt_alone_one_process": t_fc_fits},
            "strawman": None if straw is None else {
                "name": "strawman_per_row_bt_bootstrap (per-row scipy L-BFGS-B on resampled battle rows)", **straw},
            "ratios": {"vs_reference_faster_config": speedup_best, "reference_faster_config": best_cfg,
                       "ours_from_arrays_vs_reference_faster_config": speedup_best_arr,
                       "vs_reference_default_pool": speedup, "vs_reference_num_cpu_1": speedup1,
                       "ours_from_arrays_vs_reference_default_pool": speedup_arr,
                       "ours_from_arrays_vs_reference_num_cpu_1": speedup1_arr,
                       "fits_alone_vs_reference_fit_bt_alone": t_fc_fits / t_ours_fits,
                       "vs_strawman": None if straw is None else straw["speedup"]},
            "agreement_elo_points": {
                "tolerance": POINT_GOAL,
                "point_max_abs_diff": point_diff, "point_max_abs_diff_prior0": point_diff_p0,
                "same_resamples_all_rounds_max_abs_diff": round_diff,
                "same_resamples_all_rounds_max_abs_diff_prior0": round_diff_p0,
                "ci_bounds_same_resamples_max_abs_diff": ci_diff_same,
                "ci_bounds_independent_resamples_max_abs_diff": ci_diff_indep,
                "ci_mean_width_ours": width, "ci_mean_width_reference": fc_width,
                "fastchat_raw_mean_rating": float(fc_point_raw.mean()),
                "max_abs_diff_from_true_strengths": truth_diff},
            "goal": {"speedup_vs_reference": SPEED_GOAL, "pass": bool(ok_speed and ok_agree)},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if ok_speed and ok_agree else 1


if __name__ == "__main__":
    sys.exit(main())
