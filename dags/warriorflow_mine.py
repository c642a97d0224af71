"""Mine fresh instructions every day (WarriorCoder steps 1-3), one Airflow task per step; every step
that runs a model is a mapped job over one model.

    mine[expert] -> ingest -> dedup -> filter
      -> plan_scores -> score_jobs[judge x shard] -> score
      -> decontaminate
      -> plan_embeddings -> embed[shard] -> compress
      -> plan_tags -> tag_jobs[judge x shard] -> tag

The writer steps share the single-slot pool `warriorflow_db`, call no model, and each picks its input
by status, so clearing any one task is safe; an ingesting step runs when its jobs are all done (failed
or not): finished jobs are merged, the rest is planned again next run. tag emits the `selected
instructions` asset, which triggers the battle DAG.

Where mining and the jobs run is config (`kubernetes.placement`): local processes, one at a time
(embedded default), or one KubernetesPodOperator pod per expert / job on its model's node pool.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from warriorflow.tasks.placement import model_jobs, on_kubernetes, watch_failures, with_served_experts

SELECTED = Asset("warriorflow://instructions/selected")
WRITER = {"pool": "warriorflow_db"}


@dag(
    dag_id="warriorflow_mine",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["warriorflow"],
    doc_md=__doc__,
)
def warriorflow_mine():
    @task
    def experts() -> list[str]:
        from warriorflow.tasks.mine import miners

        return miners()

    @task(max_active_tis_per_dagrun=1)
    def mine(expert: str, run_id: str | None = None) -> str:
        from warriorflow.tasks import mine as steps

        steps.mine(expert, run_id)
        return expert

    @task
    def mine_pods(experts: list[str], run_id: str | None = None) -> list[dict]:
        from warriorflow.tasks.placement import mine_pods

        return mine_pods(experts, run_id)

    @task(**WRITER)
    def ingest(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.ingest(run_id)

    @task(**WRITER)
    def dedup(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.dedup(run_id)

    @task(task_id="filter", **WRITER)
    def filter_instructions(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.filter_instructions(run_id)

    @task(**WRITER)
    def plan_scores(run_id: str | None = None) -> list[dict]:
        from warriorflow.tasks import mine as steps

        return steps.plan_scores(run_id)

    @task(**WRITER, trigger_rule="all_done")
    def score(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.score(run_id)

    @task(**WRITER)
    def decontaminate(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.decontaminate(run_id)

    @task(**WRITER)
    def plan_embeddings(run_id: str | None = None) -> list[dict]:
        from warriorflow.tasks import mine as steps

        return steps.plan_embeddings(run_id)

    @task(**WRITER, trigger_rule="all_done")
    def compress(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.compress(run_id)

    @task(**WRITER)
    def plan_tags(run_id: str | None = None) -> list[dict]:
        from warriorflow.tasks import mine as steps

        return steps.plan_tags(run_id)

    @task(**WRITER, outlets=[SELECTED], trigger_rule="all_done")
    def tag(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.tag(run_id)

    miners = experts()
    if on_kubernetes():
        from warriorflow.tasks.placement import pod_tasks

        mined = pod_tasks("mine", mine_pods(miners))
    else:
        mined = mine.expand(expert=miners)
    filtered = mined >> ingest() >> dedup() >> filter_instructions()
    scores_asked = plan_scores()
    filtered >> scores_asked
    cleaned = model_jobs("score_jobs", "score", scores_asked) >> score() >> decontaminate()
    embeds_asked = plan_embeddings()
    cleaned >> embeds_asked
    compressed = model_jobs("embed", "embed", embeds_asked) >> compress()
    tags_asked = plan_tags()
    compressed >> tags_asked
    tagged = tag()
    model_jobs("tag_jobs", "tag", tags_asked) >> tagged
    with_served_experts(miners, mined, tagged)  # experts whose own vllm serve runs for the cycle


watch_failures(warriorflow_mine())
