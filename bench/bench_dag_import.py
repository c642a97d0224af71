"""Benchmark: import time of each DAG file against a bare ``import airflow.sdk``.

    python bench/bench_dag_import.py [--runs 9] [--quick] [--goal 1.5] [--importtime] [DAG_FILE ...]

The dag-processor imports every DAG file over and over, so a DAG file must only compose: heavy imports
(torch, transformers, duckdb, GX, the warriorflow stages) belong inside the task callables. Goal: each
DAG file's import time <= 1.5x a bare ``import airflow.sdk``.

Measured, each in a fresh ``python`` subprocess (so nothing is cached in ``sys.modules``), with the same
Airflow setup as tests/dags/conftest.py (a throwaway AIRFLOW_HOME with SQLite, dags folder = dags/,
no examples):

* **baseline**: ``import airflow.sdk``;
* **each DAG file**: loading it as a module (``importlib`` ``exec_module``, what the dag-processor does:
  it imports airflow.sdk itself and builds the DAG objects).

The clock runs inside the subprocess around the import only (interpreter start-up is not counted).
Runs alternate baseline / DAG / baseline / ... so that load from the other engineers on the machine hits
both alike. The ratio judged against the goal is the median over runs of the paired ratio (each DAG import
over the baseline import right before it), which is robust to load that comes and goes; the table also
shows the median times. It also lists which heavy modules (a watch list)
each DAG file pulls in at import time. With ``--importtime`` (or on a miss) it prints the biggest
non-Airflow imports from ``python -X importtime`` for each DAG that misses.

Prints a markdown table; exits 1 when a DAG file misses the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
GOAL = 1.5
# Modules a DAG file must not import at parse time (they cost seconds, or open files / threads).
HEAVY = ("torch", "transformers", "sentence_transformers", "great_expectations", "duckdb", "numpy", "pandas",
         "pyarrow", "xllamacpp", "vllm", "trl", "datasets", "boto3", "kubernetes",
         "warriorflow.tasks.worker", "warriorflow.stages", "warriorflow.store")

_PROBE = r"""
import importlib.util, json, sys, time
target = sys.argv[1]
t0 = time.perf_counter()
if target == "airflow.sdk":
    import airflow.sdk  # noqa: F401
else:
    spec = importlib.util.spec_from_file_location("bench_dag_module", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
elapsed = time.perf_counter() - t0
heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps({"seconds": elapsed, "heavy": heavy}))
"""


def airflow_env(home: Path) -> dict[str, str]:
    """The environment of tests/dags/conftest.py: throwaway AIRFLOW_HOME, SQLite, dags/ as the dags folder."""
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "HF_HUB_OFFLINE": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PYTHONDONTWRITEBYTECODE": "1",  # same cache state on every run
    })
    # the DAG files import `warriorflow` lazily; make include/ importable like the editable install does
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "include"), env.get("PYTHONPATH", "")) if p)
    return env


def probe(target: str, env: dict[str, str]) -> dict:
    """Import ``target`` (``airflow.sdk`` or a DAG file path) in a fresh interpreter; its time and heavy modules."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, target, json.dumps(HEAVY)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"importing {target} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def importtime_top(target: str, env: dict[str, str], top: int = 12) -> list[tuple[float, str]]:
    """The largest cumulative import times (ms) outside airflow itself, from ``python -X importtime``."""
    code = ("import airflow.sdk, importlib.util; "
            f"s = importlib.util.spec_from_file_location('m', {target!r}); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m)")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    rows, after_sdk = [], False
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cum_us, raw = line.removeprefix("import time:").split("|", 2)
        depth = (len(raw) - len(raw.lstrip()) - 1) // 2  # two spaces per nesting level
        name = raw.strip()
        if depth == 0 and name == "airflow.sdk":
            after_sdk = True  # what follows is what the DAG file adds (start-up imports come before)
        elif after_sdk and depth <= 1 and not name.startswith("airflow"):
            rows.append((int(cum_us) / 1000.0, name))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dag_files", nargs="*", type=Path, help="DAG files (default: every dags/*.py)")
    ap.add_argument("--runs", type=int, default=9, help="runs per file (median); default 9")
    ap.add_argument("--quick", action="store_true", help="3 runs per file")
    ap.add_argument("--goal", type=float, default=GOAL, help=f"max DAG / airflow.sdk ratio (default {GOAL})")
    ap.add_argument("--importtime", action="store_true", help="print -X importtime offenders for every DAG")
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs
    files = [p.resolve() for p in args.dag_files] or sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
    if not files:
        raise SystemExit(f"no DAG files in {DAGS}")

    with tempfile.TemporaryDirectory(prefix="bench-dag-import-") as tmp:
        env = airflow_env(Path(tmp))
        probe("airflow.sdk", env)  # warm-up: the first run writes airflow.cfg into the fresh AIRFLOW_HOME
        for f in files:
            probe(str(f), env)
        base: list[float] = []
        per_file: dict[Path, list[float]] = {f: [] for f in files}
        paired: dict[Path, list[float]] = {f: [] for f in files}
        heavy: dict[Path, list[str]] = {}
        for _ in range(runs):
            for f in files:  # baseline, file, baseline, file, ...
                base.append(probe("airflow.sdk", env)["seconds"])
                r = probe(str(f), env)
                per_file[f].append(r["seconds"])
                paired[f].append(r["seconds"] / base[-1])
                heavy[f] = r["heavy"]

        base_med = statistics.median(base)
        print(f"# DAG import time vs `import airflow.sdk` ({platform.python_implementation()} "
              f"{platform.python_version()}, {os.cpu_count()} cores, {runs} runs/file, medians)\n")
        print(f"baseline `import airflow.sdk`: {base_med * 1000:.0f} ms (min {min(base) * 1000:.0f}, "
              f"max {max(base) * 1000:.0f}, n={len(base)})\n")
        print(f"| DAG file | import (ms) | ratio (paired median) | ratio range | goal <= {args.goal}x "
              "| heavy modules imported |")
        print("|---|---|---|---|---|---|")
        misses = []
        for f in files:
            med = statistics.median(per_file[f])
            ratio = statistics.median(paired[f])
            ok = ratio <= args.goal
            if not ok:
                misses.append(f)
            print(f"| {f.relative_to(REPO) if f.is_relative_to(REPO) else f} | {med * 1000:.0f} | {ratio:.2f}x | "
                  f"{min(paired[f]):.2f}-{max(paired[f]):.2f}x | {'PASS' if ok else 'FAIL'} | "
                  f"{', '.join(heavy[f]) or '-'} |")
        for f in files if args.importtime else misses:
            print(f"\n`python -X importtime` for {f.name}: biggest non-Airflow imports (cumulative ms)")
            for ms, name in importtime_top(str(f), env):
                print(f"  {ms:8.1f}  {name}")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
