"""The mine DAG's steps: mine[expert] (a worker) -> ingest -> dedup -> filter -> score (plan, jobs, ingest) ->
decontaminate -> compress (plan the embed job, job, select) -> tag (plan, jobs, ingest). The writer steps
here; the jobs run through :func:`warriorflow.tasks.placement.model_jobs`."""

from __future__ import annotations

from warriorflow.tasks.worker import config, run_cli, writer_step, writer_value


def miners() -> list[str]:
    """The experts with the mine role (one mapped mine task each)."""
    return [e.name for e in config().registry.with_role("mine")]


def mine(expert: str, run_id: str) -> None:
    run_cli("mine", "--no-ingest", "--expert", expert, "--run-id", run_id)


def ingest(run_id: str) -> dict[str, int]:
    from warriorflow.stages.ingest import ingest_stage

    return writer_step(ingest_stage, run_id)


def dedup(run_id: str) -> dict[str, int]:
    from warriorflow.stages.dedup import dedup_stage

    return writer_step(dedup_stage, run_id)


def filter_instructions(run_id: str) -> dict[str, int]:
    from warriorflow.stages.filter import filter_stage

    return writer_step(filter_stage, run_id)


def plan_scores(run_id: str) -> list[dict]:
    from warriorflow.stages.score import plan_scores_stage

    return writer_value(plan_scores_stage, run_id)


def score(run_id: str) -> dict[str, int]:
    from warriorflow.stages.score import score_stage

    return writer_step(score_stage, run_id)


def decontaminate(run_id: str) -> dict[str, int]:
    from warriorflow.stages.decontaminate import decontaminate_stage

    return writer_step(decontaminate_stage, run_id)


def plan_embeddings(run_id: str) -> list[dict]:
    from warriorflow.stages.compress import plan_embeddings_stage

    return writer_value(plan_embeddings_stage, run_id)


def compress(run_id: str) -> dict[str, int]:
    from warriorflow.stages.compress import compress_stage

    return writer_step(compress_stage, run_id)


def plan_tags(run_id: str) -> list[dict]:
    from warriorflow.stages.tag import plan_tags_stage

    return writer_value(plan_tags_stage, run_id)


def tag(run_id: str) -> dict[str, int]:
    from warriorflow.stages.tag import tag_stage

    return writer_step(tag_stage, run_id)
