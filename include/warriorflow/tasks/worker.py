"""Plumbing the DAG tasks share: the settings, running a worker step as a local process, and running a
writer step (one stage over the store, in the single-slot pool) with its report logged.

Worker steps (mining an expert, a battle batch, training) run the same CLI command a Kubernetes pod
runs, as a local process: ``python -m warriorflow.cli ...``. They never open the rating store. Writer
steps open it; in Airflow they share the single-slot pool ``warriorflow_db``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable

from warriorflow.config import Config, load_config
from warriorflow.errors import StoreError, redact
from warriorflow.stages.base import StageReport, run_as_writer

log = logging.getLogger(__name__)

DB_POOL = "warriorflow_db"


def config() -> Config:
    return load_config()


def run_cli(*args: str) -> None:
    """Run `warriorflow ARGS` as a local process (what a pod runs in production); raise on failure."""
    cmd = [sys.executable, "-m", "warriorflow.cli", *args]
    log.info("running %s", " ".join(cmd))
    env = dict(os.environ, WARRIORFLOW_ROLE="worker")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        log.info("| %s", redact(line))
    if proc.returncode != 0:
        raise RuntimeError(f"`warriorflow {' '.join(args)}` exited with {proc.returncode}; see the log above")


class QualityGateFailed(StoreError):
    """A batch failed its quality gate: it was quarantined, and the Airflow task fails."""


def logged(report: StageReport) -> dict[str, int]:
    """Log the step's counts; fail (after the good batches went through) if any batch was quarantined, so
    the run shows red and its log names the failed expectations. Re-running is safe: the bad batch has left
    the run's inputs for quarantine/."""
    log.info("%s", report.table())
    failed = [n for n in report.notes if n.startswith("quarantined ")] if report.counts.get(
        "quarantined_batches") else []
    if failed:
        for note in failed:
            log.error("quality gate failed in %s: %s", report.stage, note)
        raise QualityGateFailed(f"{len(failed)} batch(es) of this run", "failed their quality gate and were "
                                "quarantined: " + " | ".join(failed),
                                "read the GX result (*.gx.json) or report beside each file under quarantine/, fix "
                                "the worker that wrote it, then clear this task: good batches were already merged")
    return report.counts


def writer_step(step: Callable[..., StageReport], run_id: str) -> dict[str, int]:
    """Run one stage as the store's single writer and log (or fail on) its report."""
    return logged(run_as_writer(config(), step, run_id))
