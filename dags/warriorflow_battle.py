"""Battle the selected instructions of each data interval, then rate and select gold (steps 4-5),
one Airflow task per step.

    plan -> battle_batch[batch] -> ingest_battles -> rate -> select_gold

Periodic (so `airflow backfill create` works after a new expert joins: only its missing battles are
planned) and also triggered by new selections. The battle batches are mapped workers; the writer steps
share the single-slot pool `warriorflow_db`. select_gold emits the `gold` asset, which triggers
retraining.

Where a battle batch runs is config (`kubernetes.placement`): a local process (embedded default) or
one KubernetesPodOperator pod per batch on the GPU node pool (production).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from warriorflow.tasks.placement import on_kubernetes

SELECTED = Asset("warriorflow://instructions/selected")
GOLD = Asset("warriorflow://battles/gold")
WRITER = {"pool": "warriorflow_db"}


@dag(
    dag_id="warriorflow_battle",
    # a daily tick owning the day before it (without `interval` a cron trigger's data interval is empty)
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC", interval=timedelta(days=1)), assets=[SELECTED]),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["warriorflow"],
    doc_md=__doc__,
)
def warriorflow_battle():
    @task(**WRITER)
    def plan(run_id: str | None = None, dag_run=None, data_interval_start=None, data_interval_end=None) -> list[str]:
        from warriorflow.tasks import battle as steps

        return steps.plan(run_id, dag_run.run_type, data_interval_start, data_interval_end)

    @task
    def battle_batch(in_uri: str) -> str:
        from warriorflow.tasks import battle as steps

        return steps.battle_batch(in_uri)

    @task
    def battle_pods(in_uris: list[str]) -> list[dict]:
        from warriorflow.tasks.placement import battle_pods

        return battle_pods(in_uris)

    @task(**WRITER)
    def ingest_battles(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.ingest_battles(run_id)

    @task(**WRITER)
    def rate(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.rate(run_id)

    @task(**WRITER, outlets=[GOLD])
    def select_gold(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.select_gold(run_id)

    if on_kubernetes():
        from warriorflow.tasks.placement import pod_tasks

        battled = pod_tasks("battle_batch", battle_pods(plan()))
    else:
        battled = battle_batch.expand(in_uri=plan())
    battled >> ingest_battles() >> rate() >> select_gold()


warriorflow_battle()
