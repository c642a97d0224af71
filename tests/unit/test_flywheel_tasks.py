"""What the DAG tasks call: battle planning honours the data interval only for timed runs."""

from __future__ import annotations

from warriorflow import flywheel_tasks
from warriorflow.pipeline import StageReport


def test_battle_planning_uses_the_interval_only_for_timed_runs(monkeypatch):
    seen = []

    def fake_plan_stage(cfg, store, objects, run_id, since, until):
        seen.append((since, until))
        return StageReport("plan", run_id), []

    monkeypatch.setattr(flywheel_tasks.arena, "plan_stage", fake_plan_stage)
    for run_type in ("scheduled", "backfill", "asset_triggered", "manual"):
        assert flywheel_tasks.plan_battles("r", run_type, "start", "end") == []
    assert seen == [("start", "end"), ("start", "end"), (None, None), (None, None)]
