"""The battle DAG's steps: plan -> battle batches (workers) -> ingest battles -> rate -> select gold."""

from __future__ import annotations

import logging
from datetime import datetime

from warriorflow.store.keys import battle_out_for
from warriorflow.tasks.worker import config, logged, run_cli, writer_step

log = logging.getLogger(__name__)

TIMED_RUN_TYPES = ("scheduled", "backfill")  # Airflow DagRunType values of runs that own a data interval


def plan(run_id: str, run_type: str, since: datetime | None, until: datetime | None) -> list[str]:
    """Plan missing battles; return batch URIs. A scheduled or backfill run plans the instructions selected
    in its data interval; any other run (asset-triggered, manual) plans everything still missing."""
    from warriorflow.stages.plan import plan_stage
    from warriorflow.store.objects import open_objects
    from warriorflow.store.rating_store import RatingStore

    timed = str(getattr(run_type, "value", run_type)) in TIMED_RUN_TYPES
    cfg = config()
    objects = open_objects(cfg)
    with RatingStore(cfg.duckdb_path) as store:
        report = plan_stage(cfg, store, objects, run_id, since=since if timed else None,
                            until=until if timed else None)
    logged(report)
    return [objects.uri(k) for k in report.value]


def battle_batch(in_uri: str) -> str:
    """Run one planned batch as a worker; return the URI of its results."""
    out_uri = battle_out_for(in_uri)
    run_cli("battle-batch", "--in", in_uri, "--out", out_uri)
    return out_uri


def ingest_battles(run_id: str) -> dict[str, int]:
    from warriorflow.stages.ingest_battles import ingest_battles_stage

    return writer_step(ingest_battles_stage, run_id)


def rate(run_id: str) -> dict[str, int]:
    from warriorflow.stages.rate import rate_stage

    return writer_step(rate_stage, run_id)


def select_gold(run_id: str) -> dict[str, int]:
    from warriorflow.stages.gold import gold_stage

    return writer_step(gold_stage, run_id)
