"""Retrain when enough new winning data has accumulated.

gate (>= flywheel.min_new_gold new gold examples since the last snapshot; otherwise skip, saying why)
-> snapshot (published manifest-last) -> train (a worker: local process, or torchrun in a pod on the
training node pool) -> record the run -> plan the evaluation -> generate (a job on the target's
resources) -> check (the sandbox, a CPU job) -> ingest and decide (a paired significance test against
the champion, else the baseline) -> report (also after a closed gate: the report follows every cycle).

Where the jobs run is config (`kubernetes.placement`), as for the other workers. Only the writer steps
(pool warriorflow_db) open the rating store.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from warriorflow.tasks.placement import on_kubernetes

GOLD = Asset("warriorflow://battles/gold")
SNAPSHOT = Asset("warriorflow://snapshots/latest")


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
    @task.short_circuit(ignore_downstream_trigger_rules=False)  # a closed gate skips retraining, not the report
    def enough_new_gold() -> bool:
        import logging

        from warriorflow.tasks.retrain import retrain_gate
        from warriorflow.tasks.worker import config

        go, why = retrain_gate(config().settings.flywheel.min_new_gold)
        logging.getLogger("warriorflow").info(why)
        return go

    @task(pool="warriorflow_db", outlets=[SNAPSHOT])
    def snapshot() -> str:
        from warriorflow.tasks.retrain import snapshot as create

        return create()

    @task
    def train(snapshot_id: str) -> str:
        from warriorflow.tasks.retrain import train_local

        train_local(snapshot_id)
        return snapshot_id

    @task
    def training_pod(snapshot_id: str) -> dict:
        from warriorflow.tasks.placement import training_pod_spec
        from warriorflow.tasks.retrain import train_args

        return training_pod_spec(train_args(snapshot_id))

    @task(pool="warriorflow_db")
    def record_training(snapshot_id: str) -> str:
        from warriorflow.tasks.retrain import record_training as record

        return record(snapshot_id)

    @task(pool="warriorflow_db")
    def plan_evaluation(training_run_id: str) -> list[str]:
        from warriorflow.tasks.retrain import plan_evaluations

        return plan_evaluations(training_run_id)

    @task(max_active_tis_per_dagrun=1)
    def generate(uri: str) -> str:
        from warriorflow.tasks.retrain import eval_job_local

        return eval_job_local("generate", uri)

    @task(max_active_tis_per_dagrun=1)
    def check(uri: str) -> str:
        from warriorflow.tasks.retrain import eval_job_local

        return eval_job_local("check", uri)

    @task
    def eval_pods(step: str, uris: list[str]) -> list[dict]:
        from warriorflow.tasks.placement import eval_pod_specs

        return eval_pod_specs(step, uris)

    @task(pool="warriorflow_db")
    def ingest_and_decide(training_run_id: str, uris: list[str]) -> dict:
        from warriorflow.tasks.retrain import ingest_and_decide as decide

        return decide(training_run_id, uris)

    @task(trigger_rule="none_failed")
    def report(decision: dict | None = None) -> str:
        from warriorflow.tasks.retrain import report as write

        return write()

    snapshot_id = snapshot()
    enough_new_gold() >> snapshot_id
    if on_kubernetes():
        from warriorflow.tasks.placement import eval_pool, pod_task, pod_tasks

        trained = pod_task("train", training_pod(snapshot_id))
    else:
        trained = train(snapshot_id)
    run_id = record_training(snapshot_id)
    trained >> run_id
    requests = plan_evaluation(run_id)
    if on_kubernetes():
        generated = pod_tasks("generate", eval_pods("generate", requests), pool=eval_pool("generate"))
        checked = pod_tasks("check", eval_pods("check", requests), pool=eval_pool("check"))
        requests >> generated >> checked
    else:
        checked = check.expand(uri=generate.expand(uri=requests))
    decision = ingest_and_decide(run_id, requests)
    checked >> decision
    report(decision)


warriorflow_retrain()
