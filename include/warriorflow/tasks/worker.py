"""Plumbing the DAG tasks share: the settings, running a worker step as a local process, and running a
writer step (one stage over the store, in the single-slot pool) with its report logged.

Worker steps (mining an expert, a model job, training) run the same CLI command a Kubernetes pod runs,
as a local process: ``python -m warriorflow.cli ...``. They never open the rating store. Writer steps
open it and call no model; in Airflow they share the single-slot pool ``warriorflow_db``.
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
    """The settings, with S3 credentials from ``object_store.s3.airflow_conn_id`` when one is named."""
    cfg = load_config()
    s3_from_airflow_connection(cfg)
    return cfg


def s3_from_airflow_connection(cfg: Config) -> None:
    """Inside Airflow: when ``object_store.s3.airflow_conn_id`` names a connection, the writer steps and the
    local workers they start read S3 with its login/password (and its extra's ``aws_session_token``,
    ``endpoint_url``, ``region_name``), through the WARRIORFLOW_S3_* variables of this process; every
    value is registered with the redaction filter. Explicit WARRIORFLOW_S3_* variables win."""
    conn_id = cfg.settings.object_store.s3.airflow_conn_id
    if not conn_id or not cfg.object_store_uri.startswith("s3://") or os.environ.get("WARRIORFLOW_S3_ACCESS_KEY_ID"):
        return
    from airflow.sdk import BaseHook

    from warriorflow.errors import ConfigError, register_secret

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise ConfigError(f"Airflow connection {conn_id!r}", f"cannot be loaded ({type(exc).__name__}) for the "
                          "object store's credentials", f"create it: airflow connections add {conn_id} "
                          "--conn-type aws --conn-login KEY_ID --conn-password SECRET") from None
    extra = conn.extra_dejson or {}
    values = {"WARRIORFLOW_S3_ACCESS_KEY_ID": conn.login, "WARRIORFLOW_S3_SECRET_ACCESS_KEY": conn.password,
              "WARRIORFLOW_S3_SESSION_TOKEN": extra.get("aws_session_token"),
              "WARRIORFLOW_S3_ENDPOINT_URL": extra.get("endpoint_url"),
              "WARRIORFLOW_S3_REGION": extra.get("region_name")}
    for var, value in values.items():
        if value:
            if "KEY" in var or "TOKEN" in var:
                register_secret(str(value))
            os.environ.setdefault(var, str(value))


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


def writer_step(step: Callable[..., StageReport], run_id: str, **kwargs) -> dict[str, int]:
    """Run one stage as the store's single writer and log (or fail on) its report."""
    return logged(run_as_writer(config(), step, run_id, **kwargs))


def writer_value(step: Callable[..., StageReport], run_id: str, **kwargs):
    """Run a planning stage as the single writer, log its report, and return its value (the jobs it planned)."""
    report = run_as_writer(config(), step, run_id, **kwargs)
    logged(report)
    return report.value
