"""Mine fresh instructions every day (WarriorCoder steps 1-3), one Airflow task per step.

    mine[expert] -> ingest -> dedup -> score -> decontaminate -> compress -> tag

mine is mapped, one worker per expert; the writer steps after it share the single-slot pool
`warriorflow_db` and each picks its input by status, so clearing any one task is safe. tag emits the
`selected instructions` asset, which triggers the battle DAG.

Where `mine` runs is config (`kubernetes.placement`): a local process (embedded default) or one
KubernetesPodOperator pod per expert on that expert's resources (production).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from warriorflow.tasks.placement import on_kubernetes

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

    @task(**WRITER)
    def score(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.score(run_id)

    @task(**WRITER)
    def decontaminate(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.decontaminate(run_id)

    @task(**WRITER)
    def compress(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.compress(run_id)

    @task(**WRITER, outlets=[SELECTED])
    def tag(run_id: str | None = None) -> dict:
        from warriorflow.tasks import mine as steps

        return steps.tag(run_id)

    if on_kubernetes():
        from warriorflow.tasks.placement import pod_tasks

        mined = pod_tasks("mine", mine_pods(experts()))
    else:
        mined = mine.expand(expert=experts())
    mined >> ingest() >> dedup() >> score() >> decontaminate() >> compress() >> tag()


warriorflow_mine()
