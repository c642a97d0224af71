"""What the DAG tasks call: battle planning honours the data interval only for timed runs."""

from __future__ import annotations

from warriorflow.stages import plan as plan_module
from warriorflow.stages.base import StageReport
from warriorflow.stages.cycles import rate_and_select_gold
from warriorflow.tasks import battle as battle_tasks
from warriorflow.tasks import retrain as retrain_tasks


def test_battle_planning_uses_the_interval_only_for_timed_runs(monkeypatch):
    seen = []

    def fake_plan_stage(cfg, store, objects, run_id, since, until):
        seen.append((since, until))
        return StageReport("plan", run_id, value=[])

    monkeypatch.setattr(plan_module, "plan_stage", fake_plan_stage)
    for run_type in ("scheduled", "backfill", "asset_triggered", "manual"):
        assert battle_tasks.plan("r", run_type, "start", "end") == []
    assert seen == [("start", "end"), ("start", "end"), (None, None), (None, None)]


def test_rerating_without_new_battles_does_not_reopen_the_retrain_gate(config):
    """Gold keeps its selection time while its winner stays the same: re-rating the same vote log after a
    snapshot must not count the old gold as new."""
    from tests import ui_store
    from warriorflow.store.rating_store import RatingStore

    built = ui_store.build(config)
    assert retrain_tasks.new_gold_since_last_snapshot() == built["new_gold"]
    with RatingStore(config.duckdb_path) as store:
        before = store.query("SELECT instruction_id, response_id, selected_at FROM gold_selections ORDER BY 1")
        rate_and_select_gold(config, store, "rerate")
        after = store.query("SELECT instruction_id, response_id, selected_at FROM gold_selections ORDER BY 1")
    assert after == before
    assert retrain_tasks.new_gold_since_last_snapshot() == built["new_gold"]
