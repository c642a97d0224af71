"""The DAGs: they import cleanly, read like the method, chain through assets, and the retrain gate
skips with a reason until enough gold exists."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"warriorflow_mine", "warriorflow_battle", "warriorflow_retrain"} <= set(dagbag.dag_ids)


def test_mine_dag_shape(dagbag):
    dag = dagbag.get_dag("warriorflow_mine")
    tasks = {t.task_id: t for t in dag.tasks}
    steps = ["ingest", "dedup", "score", "decontaminate", "compress", "tag"]
    assert set(tasks) == {"experts", "mine", *steps}  # one task per method step
    assert all(tasks[s].pool == "warriorflow_db" for s in steps) and tasks["mine"].pool != "warriorflow_db"
    for before, after in zip(["mine", *steps], steps):  # mine[expert] -> ingest -> ... -> tag, in method order
        assert tasks[after].upstream_task_ids == {before}
    assert [o.uri for o in tasks["tag"].outlets] == ["warriorflow://instructions/selected"]


def test_battle_dag_is_periodic_and_asset_triggered(dagbag):
    dag = dagbag.get_dag("warriorflow_battle")
    assert dag.timetable.timetable.expression == "0 6 * * *"  # periodic, so `airflow backfill create` works
    assert "warriorflow://instructions/selected" in str(dag.timetable.asset_condition)
    tasks = {t.task_id: t for t in dag.tasks}
    steps = ["ingest_battles", "rate", "select_gold"]
    assert set(tasks) == {"plan", "battle_batch", *steps}
    assert all(tasks[s].pool == "warriorflow_db" for s in ["plan", *steps])
    for before, after in zip(["plan", "battle_batch", *steps], ["battle_batch", *steps]):
        assert tasks[after].upstream_task_ids == {before}
    assert [o.uri for o in tasks["select_gold"].outlets] == ["warriorflow://battles/gold"]
    assert tasks["battle_batch"].pool != "warriorflow_db"  # workers never hold the writer slot


def test_retrain_dag_waits_on_gold(dagbag):
    dag = dagbag.get_dag("warriorflow_retrain")
    assert "warriorflow://battles/gold" in str(dag.timetable.asset_condition)
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {"enough_new_gold", "snapshot", "train", "record_training", "evaluate_and_compare", "report"}
    assert all(tasks[t].pool == "warriorflow_db" for t in ("snapshot", "record_training", "evaluate_and_compare"))
    assert tasks["train"].pool != "warriorflow_db"  # training is a worker: it never holds the writer slot
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
                      "record_training": "skipped", "evaluate_and_compare": "skipped", "report": "success"}
    assert (tmp_path / "home" / "reports" / "latest" / "index.html").exists()  # the report follows every cycle
