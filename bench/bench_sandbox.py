"""Benchmark: sandboxed throughput (programs/s on 2 workers) against plain subprocess execution.

    python bench/bench_sandbox.py [--n 200] [--workers 2] [--quick] [--kind check|trivial]

Both sides run the same programs with the same launcher (``warriorflow.sandbox.boot``: resource
limits, the candidate process and the launcher that judges it) through the same ``Sandbox.run_many`` thread pool:

* **sandboxed**: ``Sandbox(isolate=True)``: bwrap with new user/PID/network/IPC/UTS/cgroup
  namespaces, read-only binds, tmpfs work dir, an unprivileged uid;
* **plain**: ``Sandbox(isolate=False)``: the interpreter as a plain subprocess (no isolation).

Programs (``--kind``): ``check`` (default): real HumanEval check programs (canonical solutions of the
first problems, cycled), the workload the harness runs; ``trivial``: ``x = 1``, the worst case, where
start-up is everything. Runs alternate (plain, sandboxed, plain, sandboxed, ...) and the medians
of the rounds are compared. Goal: sandboxed/plain throughput >= 0.5. Exits 1 on a miss.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from warriorflow.evaluation.problems import load_benchmark
from warriorflow.evaluation.programs import humaneval_program
from warriorflow.sandbox import Sandbox, SandboxLimits

GOAL = 0.5


def programs(kind: str, n: int) -> list:
    if kind == "trivial":
        return ["x = 1"] * n
    problems = load_benchmark("humaneval", "humaneval", None, limit=40).problems
    return [humaneval_program(p.record, p.record["canonical_solution"]) for p in problems][:n] * (n // 40 + 1)


def throughput(box: Sandbox, progs: list[str], workers: int) -> float:
    t0 = time.perf_counter()
    results = box.run_many(progs, workers=workers)
    dt = time.perf_counter() - t0
    bad = [r for r in results if not r.passed]
    if bad:
        raise SystemExit(f"{len(bad)} programs did not pass: {bad[0].reason} {bad[0].detail}")
    return len(progs) / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="programs per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kind", choices=["check", "trivial"], default="check")
    ap.add_argument("--quick", action="store_true", help="40 programs, 1 round")
    args = ap.parse_args()
    n, rounds = (40, 1) if args.quick else (args.n, args.rounds)
    progs = programs(args.kind, n)[:n]
    limits = SandboxLimits(cpu_s=10, wall_s=30.0)
    sandboxed, plain = Sandbox(limits), Sandbox(limits, isolate=False)
    throughput(sandboxed, progs[:4], args.workers)  # warm the page cache for both
    throughput(plain, progs[:4], args.workers)
    ps, ss = [], []
    for _ in range(rounds):
        ps.append(throughput(plain, progs, args.workers))
        ss.append(throughput(sandboxed, progs, args.workers))
    p, s = statistics.median(ps), statistics.median(ss)
    ratio = s / p
    print(f"| programs ({args.kind}) | workers | plain programs/s | sandboxed programs/s | ratio | goal |")
    print("|---|---|---|---|---|---|")
    print(f"| {n} x {rounds} rounds | {args.workers} | {p:.1f} | {s:.1f} | {ratio:.2f}x | >= {GOAL}x "
          f"{'PASS' if ratio >= GOAL else 'FAIL'} |")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
