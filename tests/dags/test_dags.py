"""The DAGs: they import cleanly, read like the method, chain through assets, and the retrain gate
skips with a reason until enough gold exists."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"warriorflow_mine", "warriorflow_battle", "warriorflow_retrain"} <= set(dagbag.dag_ids)


WATCHER = "run_failed_if_a_task_failed"
MINE_ORDER = ["mine", "ingest", "dedup", "filter", "plan_scores", "score_jobs", "score", "decontaminate",
              "plan_embeddings", "embed", "compress", "plan_tags", "tag_jobs", "tag"]
MINE_WRITERS = {"ingest", "dedup", "filter", "plan_scores", "score", "decontaminate", "plan_embeddings", "compress",
                "plan_tags", "tag"}


def test_mine_dag_shape(dagbag):
    dag = dagbag.get_dag("warriorflow_mine")
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"experts", *MINE_ORDER, WATCHER}  # one task per method step, a job task per model step
    assert tasks[WATCHER].trigger_rule == "one_failed" and tasks[WATCHER].upstream_task_ids == set(tasks) - {WATCHER}
    for before, after in zip(MINE_ORDER, MINE_ORDER[1:]):  # in method order
        assert tasks[after].upstream_task_ids == {before}
    assert {t for t in tasks if tasks[t].pool == "warriorflow_db"} == MINE_WRITERS  # the writers call no model
    for jobs, ingest in (("score_jobs", "score"), ("embed", "compress"), ("tag_jobs", "tag")):
        assert tasks[jobs].pool != "warriorflow_db" and tasks[ingest].trigger_rule == "all_done"
        assert tasks[jobs].max_active_tis_per_dagrun == 1  # locally one model process at a time
    assert [o.uri for o in tasks["tag"].outlets] == ["warriorflow://instructions/selected"]


def test_battle_dag_is_periodic_and_asset_triggered(dagbag):
    dag = dagbag.get_dag("warriorflow_battle")
    assert dag.timetable.timetable.expression == "0 6 * * *"  # periodic, so `airflow backfill create` works
    assert "warriorflow://instructions/selected" in str(dag.timetable.asset_condition)
    tasks = {t.task_id: t for t in dag.tasks}
    order = ["plan", "respond", "ingest_responses", "plan_executions", "execute", "ingest_executions",
             "plan_votes_r1", "judge_r1", "ingest_votes_r1", "rate", "select_gold"]
    assert set(tasks) == {*order, WATCHER}  # the embedded arena judges in one round (no sequential voting)
    assert tasks[WATCHER].trigger_rule == "one_failed"  # a failed job keeps the run red
    for before, after in zip(order, order[1:]):
        assert tasks[after].upstream_task_ids == {before}
    assert {t for t in tasks if tasks[t].pool == "warriorflow_db"} == set(order) - {"respond", "execute", "judge_r1"}
    assert tasks["ingest_responses"].trigger_rule == tasks["ingest_votes_r1"].trigger_rule == "all_done"
    assert tasks["ingest_executions"].trigger_rule == "all_done"  # the sandbox jobs run in a worker, never the writer
    assert tasks["execute"].max_active_tis_per_dagrun == 1
    assert [o.uri for o in tasks["select_gold"].outlets] == ["warriorflow://battles/gold"]


def test_sequential_voting_adds_judging_rounds(airflow_home, monkeypatch, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import REPO
    from tests.helpers import write_yaml
    from warriorflow.config import CONFIG_DIR

    settings = write_yaml(tmp_path / "s.yaml", f"experts_file: {CONFIG_DIR / 'experts.embedded.yaml'}\n"
                                               "arena: {sequential_voting: true}\n")
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(settings))
    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("warriorflow_battle")
    ids_ = set(dag.task_ids)
    assert {"plan_votes_r1", "judge_r1", "ingest_votes_r2", "judge_r2"} <= ids_  # two judge-role experts: 2 rounds
    assert dag.get_task("plan_votes_r2").upstream_task_ids == {"ingest_votes_r1"}


def test_retrain_dag_waits_on_gold(dagbag):
    dag = dagbag.get_dag("warriorflow_retrain")
    assert "warriorflow://battles/gold" in str(dag.timetable.asset_condition)
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"enough_new_gold", "snapshot", "train", "record_training", "plan_evaluation", "generate",
                          "check", "ingest_and_decide", "report"}
    writers = ("snapshot", "record_training", "plan_evaluation", "ingest_and_decide")
    assert all(tasks[t].pool == "warriorflow_db" for t in writers)
    # training and the evaluation's jobs are workers: they never hold the writer slot
    assert all(tasks[t].pool != "warriorflow_db" for t in ("train", "generate", "check"))
    assert tasks["check"].upstream_task_ids == {"generate"}
    assert tasks["ingest_and_decide"].upstream_task_ids == {"check", "plan_evaluation", "record_training"}
    assert [o.uri for o in tasks["snapshot"].outlets] == ["warriorflow://snapshots/latest"]


def test_retrain_gate_skips_with_a_reason(dagbag, caplog, tmp_path, monkeypatch):
    from warriorflow.store.rating_store import RatingStore
    from warriorflow.tasks.retrain import retrain_gate

    monkeypatch.setenv("WARRIORFLOW_HOME", str(tmp_path / "home"))
    from warriorflow.config import load_config

    RatingStore(load_config().duckdb_path).close()
    go, why = retrain_gate(8)
    assert not go and "0 new gold examples since the last snapshot, need 8" in why
    run = dagbag.get_dag("warriorflow_retrain").test()
    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in run.get_task_instances()}
    assert states == {"enough_new_gold": "success", "snapshot": "skipped", "train": "skipped",
                      "record_training": "skipped", "plan_evaluation": "skipped", "generate": "skipped",
                      "check": "skipped", "ingest_and_decide": "skipped", "report": "success"}
    assert (tmp_path / "home" / "reports" / "latest" / "index.html").exists()  # the report follows every cycle
