"""`warriorflow train --snapshot ID [--method sft|dpo]`: SFT (or DPO) on a snapshot with TRL, checkpointed to the
object store, resumable."""

from __future__ import annotations

import json

import click

from warriorflow.cli.context import config_of


@click.command("train")
@click.option("--snapshot", "snapshot_id", default=None, help="Snapshot id (default: the latest snapshot).")
@click.option("--method", type=click.Choice(["sft", "dpo"]), default=None,
              help="Override training.method: sft on the gold conversations, dpo on the preference pairs.")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Override training.max_steps (a different run).")
@click.option("--record/--no-record", default=None,
              help="Write the training_runs row (default: yes, except in worker processes such as pods).")
@click.option("--record-only", is_flag=True,
              help="Do not train: record the run for this snapshot and config, trained elsewhere (a pod).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's row as JSON at the end.")
@click.pass_context
def train(ctx: click.Context, snapshot_id: str | None, method: str | None, max_steps: int | None,
          record: bool | None, record_only: bool, as_json: bool) -> None:
    """Fine-tune the base model on a snapshot (rerunning resumes the same run from its last checkpoint)."""
    from warriorflow.store.objects import open_objects
    from warriorflow.store.rating_store import RatingStore
    from warriorflow.store.snapshots import latest_snapshot_id
    from warriorflow.training import sft

    cfg = config_of(ctx)
    objects = open_objects(cfg)
    snapshot_id = snapshot_id or latest_snapshot_id(objects)
    overrides = {k: v for k, v in (("method", method), ("max_steps", max_steps)) if v is not None} or None
    if record_only:
        run_id = sft.training_run_id_for(cfg, snapshot_id, overrides)
        with RatingStore(cfg.duckdb_path) as store:
            row = sft.record_training_run(cfg, store, objects, run_id)
    else:
        run_id = sft.train(cfg, snapshot_id, objects=objects, record=record, overrides=overrides,
                           progress=click.echo)
        manifest = sft.published_model(objects, run_id) or {}
        row = {"training_run_id": run_id, "snapshot_id": snapshot_id, "method": manifest.get("method"),
               "output_uri": objects.uri(sft.model_prefix(run_id)),
               "global_step": manifest.get("global_step"), "losses": manifest.get("losses")}
    if as_json:
        click.echo(json.dumps({k: (json.loads(v) if k in ("config", "losses", "segments") and isinstance(v, str)
                                   else v) for k, v in row.items()}, indent=2, default=str))
    else:
        click.echo(f"run {run_id}: {row['output_uri']}")
