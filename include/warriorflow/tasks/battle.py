"""The battle DAG's steps: plan -> response jobs -> ingest responses -> plan executions -> execute jobs (the
sandbox) -> ingest executions -> judging rounds (plan votes -> judge jobs -> ingest votes) -> rate -> select
gold. The writer steps here; the jobs run through :func:`warriorflow.tasks.placement.model_jobs`."""

from __future__ import annotations

import logging
from datetime import datetime

from warriorflow.tasks.worker import config, writer_step, writer_value

log = logging.getLogger(__name__)

TIMED_RUN_TYPES = ("scheduled", "backfill")  # Airflow DagRunType values of runs that own a data interval


def plan(run_id: str, run_type: str, since: datetime | None, until: datetime | None) -> list[dict]:
    """Plan missing battles; return their response jobs. A scheduled or backfill run plans the instructions
    selected in its data interval; any other run (asset-triggered, manual) plans everything still missing."""
    from warriorflow.stages.plan import plan_stage

    timed = str(getattr(run_type, "value", run_type)) in TIMED_RUN_TYPES
    return writer_value(plan_stage, run_id, since=since if timed else None, until=until if timed else None)


def judging_rounds() -> int:
    from warriorflow.stages.cycles import judging_rounds as rounds

    return rounds(config())


def ingest_responses(run_id: str) -> dict[str, int]:
    from warriorflow.stages.ingest_battles import ingest_responses_stage

    return writer_step(ingest_responses_stage, run_id)


def plan_executions(run_id: str) -> list[dict]:
    from warriorflow.stages.execute import plan_executions_stage

    return writer_value(plan_executions_stage, run_id)


def ingest_executions(run_id: str) -> dict[str, int]:
    from warriorflow.stages.execute import ingest_executions_stage

    return writer_step(ingest_executions_stage, run_id)


def plan_votes(run_id: str, round_no: int) -> list[dict]:
    from warriorflow.stages.judging import plan_votes_stage

    return writer_value(plan_votes_stage, run_id, round_no=round_no)


def ingest_votes(run_id: str) -> dict[str, int]:
    from warriorflow.stages.ingest_battles import ingest_votes_stage

    return writer_step(ingest_votes_stage, run_id)


def rate(run_id: str) -> dict[str, int]:
    from warriorflow.stages.rate import rate_stage

    return writer_step(rate_stage, run_id)


def select_gold(run_id: str) -> dict[str, int]:
    from warriorflow.stages.gold import gold_stage

    return writer_step(gold_stage, run_id)
