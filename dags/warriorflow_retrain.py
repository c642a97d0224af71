"""Retrain when enough new winning data has accumulated.

gate (>= flywheel.min_new_gold new gold examples since the last snapshot; otherwise skip, saying why)
-> snapshot -> train -> evaluate -> record. Snapshot, training and evaluation arrive with their issue;
until then those tasks say so loudly.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

GOLD = Asset("warriorflow://battles/gold")


@dag(
    dag_id="warriorflow_retrain",
    schedule=[GOLD],
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["warriorflow"],
    doc_md=__doc__,
)
def warriorflow_retrain():
    @task.short_circuit
    def enough_new_gold() -> bool:
        import logging

        from warriorflow.flywheel_tasks import config, retrain_gate

        go, why = retrain_gate(config().settings.flywheel.min_new_gold)
        logging.getLogger("warriorflow").info(why)
        return go

    @task
    def snapshot_train_evaluate() -> None:
        import logging

        logging.getLogger("warriorflow").warning(
            "NOT IMPLEMENTED YET: snapshot, training and evaluation arrive with the training/eval issue; "
            "the gate above is real")

    enough_new_gold() >> snapshot_train_evaluate()


warriorflow_retrain()
