"""`warriorflow report` and `warriorflow tag` (heavy imports happen inside the commands)."""

from __future__ import annotations

from pathlib import Path

import click

from warriorflow.cli.context import config_of, run_id_option, run_model_step


@click.command("report")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (default: <paths.home>/reports/latest, which the Airflow plugin serves).")
@click.pass_context
def report(ctx: click.Context, out_dir: Path | None) -> None:
    """Write the flywheel report: index.html, PNG figures and report.json, from the rating store.

    Win rates, Elo and Bradley-Terry (with bootstrap bands) over time, difficulty levels, task categories,
    drop reasons, overlap with the evaluation sets, judge quality (Fleiss' kappa, position bias, invalid
    votes), attack/defence balance, snapshots and model scores. The folder is replaced atomically.
    """
    from warriorflow.report import write_report

    index = write_report(config_of(ctx), out_dir)
    click.echo(f"wrote {index}")


@click.command("tag")
@run_id_option
@click.pass_context
def tag(ctx: click.Context, run_id: str | None) -> None:
    """A judge tags each untagged instruction in scope with one task category (constrained choice). Plans the
    tag jobs (one per judge and shard), runs them here, ingests them."""
    run_model_step(ctx, "tag", run_id)
