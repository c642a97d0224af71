"""Battle the selected instructions of each data interval, then rate and select gold.

Periodic (so `airflow backfill create` works after a new expert joins: only its missing battles are
planned) and also triggered by new selections. plan -> mapped battle batches (workers) -> ingest +
rate + gold (single writer) -> emits the `gold` asset, which triggers retraining.

Where a battle batch runs is config (`kubernetes.placement`): a local process (embedded default) or
one KubernetesPodOperator pod per batch on the GPU node pool (production).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from warriorflow.placement import on_kubernetes

SELECTED = Asset("warriorflow://instructions/selected")
GOLD = Asset("warriorflow://battles/gold")


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
    @task(pool="warriorflow_db")
    def plan(run_id: str | None = None, dag_run=None, data_interval_start=None, data_interval_end=None) -> list[str]:
        from warriorflow.flywheel_tasks import plan_battles

        return plan_battles(run_id, dag_run.run_type, data_interval_start, data_interval_end)

    @task
    def battle_batch(in_uri: str) -> str:
        from warriorflow.flywheel_tasks import battle_batch as run

        return run(in_uri)

    @task
    def battle_pods(in_uris: list[str]) -> list[dict]:
        from warriorflow.placement import battle_pods

        return battle_pods(in_uris)

    @task(pool="warriorflow_db", outlets=[GOLD])
    def ingest_rate_select_gold(run_id: str | None = None) -> dict:
        from warriorflow.flywheel_tasks import ingest_and_rate

        return ingest_and_rate(run_id)

    if on_kubernetes():
        from warriorflow.placement import pod_tasks

        battled = pod_tasks("battle_batch", battle_pods(plan()))
    else:
        battled = battle_batch.expand(in_uri=plan())
    battled >> ingest_rate_select_gold()


warriorflow_battle()
