"""Whole cycles in one process, for the CLI and tests (Airflow runs each step as its own task instead).

* the instruction cycle: mine every expert, then ingest -> dedup -> filter -> [score jobs] -> score ->
  decontaminate -> [embed job] -> compress -> [tag jobs] -> tag;
* the battle cycle: plan -> [response jobs] -> ingest responses -> plan executions -> [execute jobs: the
  sandbox] -> ingest executions -> judging rounds ([judge jobs] -> ingest votes) -> rate -> select gold.

The writer steps run with the rating store open; the model jobs between them run here, one after
another, with the store closed, each loading its one model and releasing it before the next
(:func:`run_jobs_here`): the same jobs Airflow maps onto local processes or pods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from warriorflow.config import Config
from warriorflow.method.jobs import Job
from warriorflow.method.progress import Progress
from warriorflow.stages.base import StageReport, run_as_writer
from warriorflow.stages.compress import compress_stage, plan_embeddings_stage
from warriorflow.stages.decontaminate import decontaminate_stage
from warriorflow.stages.dedup import dedup_stage
from warriorflow.stages.execute import ingest_executions_stage, plan_executions_stage
from warriorflow.stages.filter import filter_stage
from warriorflow.stages.gold import gold_stage
from warriorflow.stages.ingest import ingest_stage
from warriorflow.stages.ingest_battles import ingest_responses_stage, ingest_votes_stage
from warriorflow.stages.jobs import JobResult, run_job
from warriorflow.stages.judging import plan_votes_stage
from warriorflow.stages.mine import mine_to_files
from warriorflow.stages.plan import plan_stage
from warriorflow.stages.rate import rate_stage
from warriorflow.stages.score import plan_scores_stage, score_stage
from warriorflow.stages.tag import plan_tags_stage, tag_stage
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


def judging_rounds(config: Config) -> int:
    """Judging rounds per battle cycle: ``jobs.judging_rounds``, else 1, or with sequential voting as many
    as there are judge-role experts (each round asks at least one more judge of every open battle)."""
    configured = config.settings.jobs.judging_rounds
    if configured is not None:
        return configured
    if not config.settings.arena.sequential_voting:
        return 1
    return max(1, len(config.registry.with_role("judge")))


def run_jobs_here(config: Config, jobs: Sequence[dict], progress: Progress = log.info) -> list[JobResult]:
    """Run jobs in this process, one after another (each loads its one model and releases it)."""
    objects = open_objects(config)
    return [run_job(config, objects, Job.from_dict(j).key, progress) for j in jobs]


def _writer(config: Config, run_id: str, reports: list[StageReport]) -> Callable[..., StageReport]:
    def step(fn: Callable[..., StageReport], **kwargs) -> StageReport:
        report = run_as_writer(config, fn, run_id, **kwargs)
        reports.append(report)
        return report

    return step


MODEL_STEPS = {"score": (plan_scores_stage, score_stage), "compress": (plan_embeddings_stage, compress_stage),
               "tag": (plan_tags_stage, tag_stage)}


def with_jobs(config: Config, run_id: str, name: str, progress: Progress = log.info) -> list[StageReport]:
    """A model step here: its planning writer step, its jobs, its ingesting writer step."""
    plan, ingest = MODEL_STEPS[name]
    reports: list[StageReport] = []
    step = _writer(config, run_id, reports)
    run_jobs_here(config, step(plan).value, progress)
    step(ingest)
    return reports


def instruction_writer_steps(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """ingest -> dedup -> filter -> score -> decontaminate -> compress -> tag, with their model jobs run here."""
    reports = [run_as_writer(config, step, run_id) for step in (ingest_stage, dedup_stage, filter_stage)]
    reports += with_jobs(config, run_id, "score", progress)
    reports.append(run_as_writer(config, decontaminate_stage, run_id))
    reports += with_jobs(config, run_id, "compress", progress)
    reports += with_jobs(config, run_id, "tag", progress)
    return reports


def instruction_cycle(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """One full instruction-pipeline run here: mine every expert, then the writer steps and their jobs."""
    mine_to_files(config, open_objects(config), run_id, progress=progress)
    return instruction_writer_steps(config, run_id, progress)


def judge_and_rate(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """ingest responses -> execution evidence ([execute jobs]) -> judging rounds -> rate -> select gold (what
    follows the response jobs)."""
    reports: list[StageReport] = []
    step = _writer(config, run_id, reports)
    step(ingest_responses_stage)
    run_jobs_here(config, step(plan_executions_stage).value, progress)
    step(ingest_executions_stage)
    for round_no in range(1, judging_rounds(config) + 1):
        jobs = step(plan_votes_stage, round_no=round_no).value
        if not jobs:
            break
        run_jobs_here(config, jobs, progress)
        step(ingest_votes_stage)
    step(rate_stage)
    step(gold_stage)
    return reports


def battle_cycle(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """Plan, run the response jobs, judge in rounds, rate, select gold: one battle cycle."""
    plan = run_as_writer(config, plan_stage, run_id)
    run_jobs_here(config, plan.value, progress)
    return [plan, *judge_and_rate(config, run_id, progress)]


def rate_and_select_gold(config: Config, store: RatingStore, run_id: str) -> list[StageReport]:
    """rate -> select gold over an open store (what `warriorflow rate` runs)."""
    return [rate_stage(config, store, run_id), gold_stage(config, store, run_id)]
