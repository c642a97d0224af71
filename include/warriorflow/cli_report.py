"""`warriorflow report` and `warriorflow tag` (registered in cli.py; heavy imports happen inside the commands)."""

from __future__ import annotations

from pathlib import Path

import click


def _config(ctx: click.Context):
    from warriorflow.config import load_config

    if "config" not in ctx.obj:
        ctx.obj["config"] = load_config(ctx.obj["config_file"])
    return ctx.obj["config"]


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

    index = write_report(_config(ctx), out_dir)
    click.echo(f"wrote {index}")


@click.command("tag")
@click.option("--run-id", default=None, help="Run id (default: manual__<UTC time>); re-using one is safe.")
@click.pass_context
def tag(ctx: click.Context, run_id: str | None) -> None:
    """A judge tags each untagged instruction in scope with one task category (constrained choice)."""
    from warriorflow import pipeline
    from warriorflow.stages.tagging import tag_stage
    from warriorflow.store.rating_store import RatingStore

    config = _config(ctx)
    with RatingStore(config.duckdb_path) as store:
        result = tag_stage(config, store, pipeline.open_objects(config), run_id or pipeline.new_run_id(),
                           progress=click.echo)
    click.echo(result.table())
