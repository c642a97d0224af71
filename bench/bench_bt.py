"""Benchmark: Bradley-Terry ratings with a bootstrap CI (rating stage) against the straightforward reference.

    python bench/bench_bt.py [--battles 1000000] [--experts 20] [--rounds 100] [--quick] [--seed 0]
                             [--same 5] [--ref-limit 600]

Data: ``battles`` synthetic battles among ``experts`` experts with known strengths (Elo scale, normal with
sd 120), uniformly random pairs and roles. The result has expected value exactly the BT probability p
(P(tie) = 0.3 min(p, 1 - p), about 10% ties; P(win) = p - P(tie)/2), so BT with half-ties is unbiased.
Each battle is a ``BattleVotes`` with one judge, as the library receives them.

Measured in one process:

* **ours**: ``rating.bt_bootstrap(battles, rounds, seed)``, from the list of ``BattleVotes`` (so it
  includes reducing 1M Python objects to the count table) to the point estimate and the 2.5/97.5
  percentiles. The fitting alone (from the table) is shown too.
* **reference** (``bt_bootstrap_reference``): what one writes first, like FastChat's per-round
  ``LogisticRegression`` but with scipy: from per-battle arrays (given for free, not timed), fit the
  full data once, then per round resample the n battle rows with replacement (``np.random``), build
  the sparse n x m design (+1 attacker, -1 defender) and minimise the mean logistic log-loss with
  ``scipy.optimize.minimize(method="L-BFGS-B")`` (analytic gradient; gtol 1e-8 on the mean loss,
  about 1e-4 Elo points). If the predicted time for all rounds exceeds ``--ref-limit`` seconds, it
  runs as many rounds as fit (at least 5) and extrapolates linearly per round (each round costs the
  same: same n, same m); the table says so.

Checks: speedup >= 5x; max |our point estimate - the reference's full-data MLE| <= 1 Elo point (ours
adds ``PRIOR_TIES`` = 0.01 virtual ties per pair; the reference is the plain MLE); on the SAME
resamples (the first ``--same`` of our multinomial draws, expanded back to n battle rows for the
reference), max |difference| per round <= 1 point. The CI bounds from independent resamples are
reported without a goal (they differ by Monte-Carlo noise; only comparable when the reference ran all
rounds).

Prints a markdown table; exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import csr_matrix
from scipy.special import expit, log_expit

from warriorflow.method import rating
from warriorflow.method.rating import BattleVotes

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


# --------------------------------------------------------------------------------------------------- reference

def reference_fit(a: np.ndarray, b: np.ndarray, s: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """Plain BT MLE over battle rows with scipy L-BFGS-B; Elo scale, mean 1000. Returns (ratings, iterations)."""
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


def bt_bootstrap_reference(arrays: tuple[np.ndarray, np.ndarray, np.ndarray], m: int, rounds: int, seed: int,
                           time_limit: float = math.inf, min_rounds: int = 5) -> dict:
    """Full-data fit, then per round: resample rows with replacement and refit. Stops early (>= min_rounds)
    when the predicted time for the next round would pass ``time_limit``."""
    a, b, s = arrays
    n = len(a)
    t0 = time.perf_counter()
    point, nit = reference_fit(a, b, s, m)
    t_point = time.perf_counter() - t0
    rng = np.random.RandomState(seed)
    samples, iters, t_rounds = [], [nit], 0.0
    for r in range(rounds):
        t1 = time.perf_counter()
        if r >= min_rounds and t_point + t_rounds + t_rounds / r > time_limit:
            break
        idx = rng.randint(0, n, n)
        ratings, nit = reference_fit(a[idx], b[idx], s[idx], m)
        samples.append(ratings)
        iters.append(nit)
        t_rounds += time.perf_counter() - t1
    samples = np.array(samples)
    lo, hi = np.percentile(samples, rating.CI_PERCENTILES, axis=0)
    return {"point": point, "lo": lo, "hi": hi, "rounds_run": len(samples), "t_point": t_point,
            "t_per_round": t_rounds / len(samples), "iters": iters}


# --------------------------------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--experts", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--same", type=int, default=5, help="rounds compared on identical resamples")
    ap.add_argument("--ref-limit", type=float, default=600.0, help="seconds for the reference before extrapolating")
    ap.add_argument("--quick", action="store_true", help="100k battles, 20 rounds")
    args = ap.parse_args()
    if args.quick:
        args.battles, args.rounds = 100_000, 20
    n, m, rounds = args.battles, args.experts, args.rounds
    experts = [f"expert{i:02d}" for i in range(m)]

    print(f"# Bradley-Terry bootstrap: {n:,} battles, {m} experts, {rounds} rounds "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numpy {np.__version__})\n")
    strengths, a, b, s = make_data(n, m, args.seed)
    t0 = time.perf_counter()
    battles = to_battles(a, b, s, experts)
    print(f"data: {np.mean(s == 0.5):.1%} ties; {len(battles):,} BattleVotes built in {time.perf_counter() - t0:.1f} s")

    # ours, end to end from BattleVotes
    t0 = time.perf_counter()
    ours = rating.bt_bootstrap(battles, rounds=rounds, seed=args.seed)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = rating.battle_table(battles)
    t_table = time.perf_counter() - t0
    t0 = time.perf_counter()
    rating.bt_bootstrap(table, rounds=rounds, seed=args.seed)
    t_fit = time.perf_counter() - t0
    del battles
    order = list(table.experts)
    assert order == experts
    our_point = np.array([ours[e]["rating"] for e in experts])
    our_lo = np.array([ours[e]["lo"] for e in experts])
    our_hi = np.array([ours[e]["hi"] for e in experts])
    print(f"ours: {t_ours:.2f} s ({t_table:.2f} s table from BattleVotes, {t_fit:.3f} s fits)")

    # reference
    ref = bt_bootstrap_reference((a, b, s), m, rounds, args.seed, time_limit=args.ref_limit)
    t_ref = ref["t_point"] + ref["t_per_round"] * rounds
    extrapolated = ref["rounds_run"] < rounds
    print(f"reference: full fit {ref['t_point']:.1f} s, {ref['t_per_round']:.1f} s/round over {ref['rounds_run']} "
          f"rounds, L-BFGS-B iterations {min(ref['iters'])}-{max(ref['iters'])}")

    # same resamples: our first `same` multinomial draws, expanded back into battle rows for the reference
    same = min(args.same, rounds)
    counts = rating.bootstrap_counts(table, rounds, args.seed)[:same]
    ours_same = rating.fit_bt_counts(table, counts)
    diffs = []
    for r in range(same):
        rows = np.repeat(np.arange(len(table.count)), counts[r])
        ref_r, _ = reference_fit(table.a[rows], table.b[rows], table.s[rows], m)
        diffs.append(np.abs(ours_same[r] - ref_r).max())
    same_diff = max(diffs) if diffs else 0.0

    speedup = t_ref / t_ours
    point_diff = np.abs(our_point - ref["point"]).max()
    truth_diff = np.abs(our_point - (strengths - strengths.mean() + 1000.0)).max()
    ci_note = "" if not extrapolated else f" (reference: only {ref['rounds_run']} rounds, percentiles not comparable)"
    lo_diff, hi_diff = np.abs(our_lo - ref["lo"]).max(), np.abs(our_hi - ref["hi"]).max()
    width = np.mean(our_hi - our_lo)
    ref_width = np.mean(ref["hi"] - ref["lo"])
    ok_speed, ok_point, ok_same = speedup >= SPEED_GOAL, point_diff <= POINT_GOAL, same_diff <= POINT_GOAL

    ref_time = f"{t_ref:.1f} s" + (f" (extrapolated from {ref['rounds_run']} rounds: {ref['t_point']:.1f} s + "
                                   f"{rounds} x {ref['t_per_round']:.2f} s)" if extrapolated else "")
    print()
    print("| check | ours | reference | goal | result |")
    print("|---|---|---|---|---|")
    print(f"| time, point estimate + {rounds} bootstrap rounds | {t_ours:.2f} s (fits alone {t_fit:.3f} s) | "
          f"{ref_time} | >= {SPEED_GOAL:g}x | {speedup:,.0f}x {'PASS' if ok_speed else 'FAIL'} |")
    print(f"| max abs point-estimate difference (Elo) | | full-data MLE | <= {POINT_GOAL:g} | "
          f"{point_diff:.2e} {'PASS' if ok_point else 'FAIL'} |")
    print(f"| max abs difference on the same {same} resamples (Elo) | | same rows | <= {POINT_GOAL:g} | "
          f"{same_diff:.2e} {'PASS' if ok_same else 'FAIL'} |")
    print(f"| max abs CI bound difference, independent resamples (Elo){ci_note} | mean width {width:.2f} | "
          f"mean width {ref_width:.2f} | report | lo {lo_diff:.2f}, hi {hi_diff:.2f} |")
    print(f"| max abs difference from the true strengths (Elo) | {truth_diff:.2f} | | report | |")
    return 0 if ok_speed and ok_point and ok_same else 1


if __name__ == "__main__":
    sys.exit(main())
