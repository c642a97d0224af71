"""What every command shares: the loaded settings and store for the invocation, the run-id option, output."""

from __future__ import annotations

import click

MARK = {"ok": click.style("✓", fg="green"), "warn": click.style("!", fg="yellow"), "fail": click.style("✗", fg="red")}


def config_of(ctx: click.Context):
    """The settings of this invocation (``--config``, else $WARRIORFLOW_CONFIG, else the embedded default),
    loaded once."""
    from warriorflow.config import load_config

    root = ctx.find_root()
    root.ensure_object(dict)
    if "config" not in root.obj:
        root.obj["config"] = load_config(root.obj.get("config_file"))
    return root.obj["config"]


def store_of(ctx: click.Context):
    """The rating store, opened for writing (the caller closes it: ``with store_of(ctx) as store``)."""
    from warriorflow.store.rating_store import RatingStore

    return RatingStore(config_of(ctx).duckdb_path)


def run_id_option(f):
    return click.option("--run-id", default=None, help="Run id (default: manual__<UTC time>); re-using one is safe.")(f)


def echo_report(report) -> None:
    click.echo(report.table())


def run_step(ctx: click.Context, step: str, run_id: str | None, *, progress: bool = False) -> None:
    """Run one stage (``"module:function"`` under warriorflow.stages, imported only now) as the store's writer
    and print its report. ``progress``: the stage reports progress here."""
    import importlib

    from warriorflow.stages.base import new_run_id, run_as_writer

    module, _, name = step.partition(":")
    fn = getattr(importlib.import_module(f"warriorflow.stages.{module}"), name)
    kwargs = {"progress": click.echo} if progress else {}
    echo_report(run_as_writer(config_of(ctx), fn, run_id or new_run_id(), **kwargs))


def run_model_step(ctx: click.Context, name: str, run_id: str | None) -> None:
    """Run a model step here (``score``, ``compress``, ``tag``): plan its jobs, run them one after another in
    this process, ingest them; print each writer step's report."""
    from warriorflow.stages.base import new_run_id
    from warriorflow.stages.cycles import with_jobs

    for report in with_jobs(config_of(ctx), run_id or new_run_id(), name, progress=click.echo):
        echo_report(report)


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses NaN and infinities (which compare false with every bound)."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        import math

        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv
