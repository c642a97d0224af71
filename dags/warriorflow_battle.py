"""Battle the selected instructions of each data interval, then rate and select gold (steps 4-5),
one Airflow task per step; every step that runs a model is a mapped job over one model.

    plan -> respond[expert x shard] -> ingest_responses
         -> plan_executions -> execute[shard] -> ingest_executions   (the responses' code, in the sandbox)
         -> judge round 1: plan_votes_r1 -> judge_r1[judge x shard] -> ingest_votes_r1
         -> ... (sequential voting: round k asks only the judges still needed)
         -> rate -> select_gold

Periodic (so `airflow backfill create` works after a new expert joins: only its missing battles are
planned) and also triggered by new selections. The writer steps share the single-slot pool
`warriorflow_db` and call no model; an ingest step runs when its jobs are all done (failed or not):
finished jobs are merged, failed ones are planned again next run. select_gold emits the `gold` asset,
which triggers retraining.

Where the jobs run is config (`kubernetes.placement`): local processes, one at a time (embedded
default), or one KubernetesPodOperator pod per job on its model's node pool, an Airflow pool each.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from warriorflow.tasks.battle import judging_rounds
from warriorflow.tasks.placement import model_jobs, watch_failures, with_served_experts

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
    def plan(run_id: str | None = None, dag_run=None, data_interval_start=None, data_interval_end=None) -> list[dict]:
        from warriorflow.tasks import battle as steps

        return steps.plan(run_id, dag_run.run_type, data_interval_start, data_interval_end)

    @task(**WRITER, trigger_rule="all_done")
    def ingest_responses(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.ingest_responses(run_id)

    @task(**WRITER)
    def plan_executions(run_id: str | None = None) -> list[dict]:
        from warriorflow.tasks import battle as steps

        return steps.plan_executions(run_id)

    @task(**WRITER, trigger_rule="all_done")
    def ingest_executions(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.ingest_executions(run_id)

    @task(**WRITER)
    def plan_votes(round_no: int, run_id: str | None = None) -> list[dict]:
        from warriorflow.tasks import battle as steps

        return steps.plan_votes(run_id, round_no)

    @task(**WRITER, trigger_rule="all_done")
    def ingest_votes(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.ingest_votes(run_id)

    @task(**WRITER)
    def rate(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.rate(run_id)

    @task(**WRITER, outlets=[GOLD])
    def select_gold(run_id: str | None = None) -> dict:
        from warriorflow.tasks import battle as steps

        return steps.select_gold(run_id)

    planned = plan()
    responding = model_jobs("respond", "respond", planned)
    done = ingest_responses()
    responding >> done
    executions_asked = plan_executions()
    done >> executions_asked
    done = ingest_executions()
    model_jobs("execute", "execute", executions_asked) >> done
    for k in range(1, judging_rounds() + 1):
        asked = plan_votes.override(task_id=f"plan_votes_r{k}")(k)
        counted = ingest_votes.override(task_id=f"ingest_votes_r{k}")()
        done >> asked
        model_jobs(f"judge_r{k}", "judge", asked) >> counted
        done = counted
    done >> rate() >> select_gold()
    with_served_experts(planned, responding, done)  # experts whose own vllm serve runs for the cycle


watch_failures(warriorflow_battle())
