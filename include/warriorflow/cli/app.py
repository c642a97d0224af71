"""The root command: `warriorflow [--config FILE] [-v] COMMAND`. Each command group lives in its own module;
a warriorflow error becomes a clear message and exit code 2, never a traceback."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from warriorflow import __version__
from warriorflow.cli import airflow, arena, doctor, evaluate, instructions, judges, pods, report, serve, snapshot, train
from warriorflow.errors import WarriorflowError, install_redaction, redact


class WarriorflowGroup(click.Group):
    """Turn warriorflow errors into a clear message and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except WarriorflowError as exc:
            click.echo(click.style("error: ", fg="red") + redact(exc), err=True)
            ctx.exit(2)


@click.group(cls=WarriorflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="warriorflow")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), envvar="WARRIORFLOW_CONFIG",
              help="Settings YAML (default: $WARRIORFLOW_CONFIG, else include/config/embedded.yaml).")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, verbose: bool) -> None:
    """warriorflow: training data for code LLMs from expert battles."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "sentence_transformers", "httpx", "botocore"):  # their INFO is chatter
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    install_redaction()  # every record, botocore's and urllib3's DEBUG included, is redacted before it is written
    ctx.obj = {"config_file": config_file}


for command in (
    doctor.doctor, doctor.experts,
    instructions.mine, instructions.dedup, instructions.filter_cmd, instructions.score, instructions.decontaminate,
    instructions.compress, instructions.instructions_cmd, instructions.run_cmd, report.tag,
    arena.plan, arena.job, arena.plan_votes_cmd, arena.ingest_responses_cmd, arena.ingest_votes_cmd,
    arena.plan_executions_cmd, arena.ingest_executions_cmd, arena.battle,
    arena.battle_batch, arena.rate, arena.export, arena.leaderboard,
    serve.serve_gguf_cmd, snapshot.snapshot, train.train, report.report, evaluate.evaluate_cmd, evaluate.models_cmd,
    evaluate.evaluate_job, airflow.airflow_cmd, pods.pods, judges.judges,
):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
