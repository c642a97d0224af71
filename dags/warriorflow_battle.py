"""Battle the selected instructions of each data interval, then rate and select gold.

Periodic (so `airflow backfill create` works after a new expert joins: only its missing battles are
planned) and also triggered by new selections. plan -> mapped battle batches (workers) -> ingest +
rate + gold (single writer) -> emits the `gold` asset, which triggers retraining.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

SELECTED = Asset("warriorflow://instructions/selected")
GOLD = Asset("warriorflow://battles/gold")


@dag(
    dag_id="warriorflow_battle",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[SELECTED]),
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

    @task(pool="warriorflow_db", outlets=[GOLD])
    def ingest_rate_select_gold(outs: list[str], run_id: str | None = None) -> dict:
        from warriorflow.flywheel_tasks import ingest_and_rate

        return ingest_and_rate(run_id)

    ingest_rate_select_gold(battle_batch.expand(in_uri=plan()))


warriorflow_battle()
