"""Whole cycles in one process, for the CLI and tests (Airflow runs each step as its own task instead).

* the instruction cycle: mine every expert, then ingest -> dedup -> score -> decontaminate -> compress -> tag;
* the battle cycle: plan -> battle batches (local) -> ingest battles -> rate -> select gold.
"""

from __future__ import annotations

import logging

from warriorflow.config import Config
from warriorflow.method.progress import Progress
from warriorflow.stages.base import StageReport
from warriorflow.stages.battle import run_batches
from warriorflow.stages.compress import compress_stage
from warriorflow.stages.decontaminate import decontaminate_stage
from warriorflow.stages.dedup import dedup_stage
from warriorflow.stages.gold import gold_stage
from warriorflow.stages.ingest import ingest_stage
from warriorflow.stages.ingest_battles import ingest_battles_stage
from warriorflow.stages.mine import mine_to_files
from warriorflow.stages.plan import plan_stage
from warriorflow.stages.rate import rate_stage
from warriorflow.stages.score import score_stage
from warriorflow.stages.tag import tag_stage
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


def instruction_writer_steps(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """ingest -> dedup -> score -> decontaminate -> compress -> tag, as the single writer of the store."""
    objects = open_objects(config)
    with RatingStore(config.duckdb_path) as store:
        return [ingest_stage(config, store, objects, run_id), dedup_stage(config, store, run_id),
                score_stage(config, store, objects, run_id, progress), decontaminate_stage(config, store, run_id),
                compress_stage(config, store, run_id, progress), tag_stage(config, store, objects, run_id, progress)]


def instruction_cycle(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """One full instruction-pipeline run here: mine every expert, then the writer steps."""
    mine_to_files(config, open_objects(config), run_id, progress=progress)
    return instruction_writer_steps(config, run_id, progress)


def battle_writer_steps(config: Config, run_id: str) -> list[StageReport]:
    """ingest battles -> rate -> select gold, as the single writer."""
    with RatingStore(config.duckdb_path) as store:
        return [ingest_battles_stage(config, store, open_objects(config), run_id), rate_stage(config, store, run_id),
                gold_stage(config, store, run_id)]


def battle_cycle(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """Plan, run the batches locally, ingest, rate, select gold: one battle cycle."""
    objects = open_objects(config)
    with RatingStore(config.duckdb_path) as store:
        plan = plan_stage(config, store, objects, run_id)
    run_batches(config, objects, plan.value, progress)  # workers: the store is closed meanwhile
    return [plan, *battle_writer_steps(config, run_id)]


def rate_and_select_gold(config: Config, store: RatingStore, run_id: str) -> list[StageReport]:
    """rate -> select gold over an open store (what `warriorflow rate` runs)."""
    return [rate_stage(config, store, run_id), gold_stage(config, store, run_id)]
