"""Mine fresh instructions every day: one mapped task per expert, then the single-writer stages.

mine (per expert, a worker) -> ingest + GX gate -> dedup -> difficulty -> decontaminate -> compress
-> emits the `selected instructions` asset, which triggers the battle DAG.

Where `mine` runs is config (`kubernetes.placement`): a local process (embedded default) or one
KubernetesPodOperator pod per expert on that expert's resources (production).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from warriorflow.placement import on_kubernetes

SELECTED = Asset("warriorflow://instructions/selected")


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
        from warriorflow.flywheel_tasks import miners

        return miners()

    @task(max_active_tis_per_dagrun=1)
    def mine(expert: str, run_id: str | None = None) -> str:
        from warriorflow.flywheel_tasks import mine_expert

        mine_expert(expert, run_id)
        return expert

    @task
    def mine_pods(experts: list[str], run_id: str | None = None) -> list[dict]:
        from warriorflow.placement import mine_pods

        return mine_pods(experts, run_id)

    @task(pool="warriorflow_db", outlets=[SELECTED])
    def ingest_dedup_score_decontaminate_compress(run_id: str | None = None) -> dict:
        from warriorflow.flywheel_tasks import instruction_stages

        return instruction_stages(run_id)

    if on_kubernetes():
        from warriorflow.placement import pod_tasks

        mined = pod_tasks("mine", mine_pods(experts()))
    else:
        mined = mine.expand(expert=experts())
    mined >> ingest_dedup_score_decontaminate_compress()


warriorflow_mine()
