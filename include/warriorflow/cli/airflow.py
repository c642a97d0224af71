"""`warriorflow airflow up|cycle|backfill|status|down`: the embedded flywheel under a real `airflow standalone`
on 127.0.0.1 (what `make run` and `make stop` call)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from warriorflow.cli.context import FiniteFloatRange, config_of

DEFAULT_PORT = 8080
WEEK = 7 * 24 * 3600  # the longest wait an option accepts


def _local(ctx: click.Context):
    from warriorflow.cli.local_airflow import LocalAirflow

    config = config_of(ctx)
    port = int(os.environ.get("WARRIORFLOW_AIRFLOW_PORT", DEFAULT_PORT))
    env = {"WARRIORFLOW_HOME": str(config.home)}
    if config.settings_file:
        env["WARRIORFLOW_CONFIG"] = str(config.settings_file)
    return config, LocalAirflow(home=Path(config.home) / "airflow", port=port, extra_env=env)


@click.group("airflow")
def airflow_cmd() -> None:
    """Run the flywheel under a local `airflow standalone` (127.0.0.1, SQLite, LocalExecutor)."""


@airflow_cmd.command("up")
@click.pass_context
def up(ctx: click.Context) -> None:
    """Start airflow standalone (or reuse the running one) and wait until it is healthy."""
    _, local = _local(ctx)
    local.start()
    _where(local)


@airflow_cmd.command("cycle")
@click.option("--timeout", "timeout_s", type=FiniteFloatRange(min=1, max=WEEK), default=3600,
              show_default=True, help="Seconds to wait.")
@click.pass_context
def cycle(ctx: click.Context, timeout_s: float) -> None:
    """Unpause the DAGs, run one full cycle (mine -> battle -> retrain) and wait for it."""
    from warriorflow.cli.local_airflow import run_cycle

    config, local = _local(ctx)
    runs = run_cycle(local.api(), timeout_s=timeout_s, log=click.echo)
    click.echo("cycle finished:")
    for dag_id, rs in runs.items():
        for r in rs:
            click.echo(f"  {dag_id:22} {r['run_type']:16} {r['state']:8} {r['dag_run_id']}")
    _where(local, config)


@airflow_cmd.command("backfill")
@click.option("--dag-id", default="warriorflow_battle", show_default=True)
@click.option("--from-date", required=True, help="First logical date (ISO 8601).")
@click.option("--to-date", required=True, help="Last logical date (ISO 8601).")
@click.option("--timeout", "timeout_s", type=FiniteFloatRange(min=1, max=WEEK), default=3600, show_default=True)
@click.pass_context
def backfill(ctx: click.Context, dag_id: str, from_date: str, to_date: str, timeout_s: float) -> None:
    """Create a backfill through the REST API (same as `airflow backfill create`) and wait for its runs."""
    from warriorflow.cli.local_airflow import run_backfill

    _, local = _local(ctx)
    runs = run_backfill(local.api(), dag_id, from_date, to_date, timeout_s=timeout_s, log=click.echo)
    for r in runs:
        click.echo(f"  {r['dag_run_id']:48} {r['state']}")


@airflow_cmd.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Is the local airflow running? Where is it?"""
    _, local = _local(ctx)
    pid = local.pid()
    click.echo(f"airflow standalone: running (pid {pid})" if pid else "airflow standalone: not running")
    if pid:
        _where(local)


@airflow_cmd.command("down")
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop the airflow standalone that `up` started (its whole process group)."""
    _, local = _local(ctx)
    click.echo("stopped airflow standalone" if local.stop() else "airflow standalone was not running")


def _where(local, config=None) -> None:
    click.echo(f"""
Airflow UI        {local.url}   (user {local.username}, password {local.password})
Flywheel page     {local.url}/warriorflow/   (also Browse -> Flywheel in the UI)
Airflow home      {local.home}   (log: {local.log_file})
Note              the LocalExecutor's log server (serve-logs) listens on 0.0.0.0:8793""")
    if config is None:
        return
    from warriorflow.store.rating_store import RatingStore

    snap = None
    if config.duckdb_path.exists():
        with RatingStore(config.duckdb_path, read_only=True) as store:
            rows = store.query("SELECT snapshot_id, uri, n_examples FROM snapshots ORDER BY created_at DESC LIMIT 1")
            snap = rows[0] if rows else None
    report = Path(config.home) / "reports" / "latest" / "index.html"
    click.echo(f"""Leaderboard       warriorflow leaderboard   (or the flywheel page)
Rating store      {config.duckdb_path}
Latest snapshot   {f"{snap['snapshot_id']} ({snap['n_examples']} examples): {snap['uri']}" if snap else
                   "none yet (the retrain gate has not opened)"}
Report            {report if report.exists() else "none yet: warriorflow report"}
Stop              make stop""")
