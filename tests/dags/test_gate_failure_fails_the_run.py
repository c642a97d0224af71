"""GX in the DAGs: a mined batch that fails its Great Expectations gate fails the mine run, the task log
names the failed expectation, and the batch is moved to quarantine/ (kept, not deleted). The corrupt batch
is this test's input: the worker step writes it instead of mining; the DAG, the gate, the quarantine and
the store are the real ones."""

from __future__ import annotations

import json
import logging

import pytest

from tests.helpers import SMOLLM2
from warriorflow.config import load_config
from warriorflow.method import ids
from warriorflow.store.keys import mine_key
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore
from warriorflow.tasks import mine as mine_tasks

pytestmark = pytest.mark.integration


def _bad_batch(expert: str, run_id: str) -> None:
    text = "Implement binary search over a sorted list of integers."
    row = {"instruction_id": ids.instruction_id(text), "text": text, "expert": expert, "temperature": 0.3,
           "top_p": 0.99, "seed": 3, "prefix_sha256": "p" * 64, "mined_at": "2026-11-22 01:00:00", "run_id": run_id}
    cfg = load_config()
    open_objects(cfg).put_bytes(mine_key(run_id, expert), (json.dumps(row) + "\n").encode())


def test_a_failed_gate_fails_the_mine_run_and_quarantines_the_batch(dagbag, monkeypatch, caplog):
    monkeypatch.setattr(mine_tasks, "miners", lambda: [SMOLLM2])
    monkeypatch.setattr(mine_tasks, "mine", _bad_batch)
    with caplog.at_level(logging.INFO):
        run = dagbag.get_dag("warriorflow_mine").test()
    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1].lower() for ti in run.get_task_instances()}
    assert states["mine"] == "success" and states["ingest"] == "failed"
    assert states["run_failed_if_a_task_failed"] == "failed"  # the run stays red although later steps ran
    assert str(run.state).rsplit(".", 1)[-1].lower() == "failed"
    assert "expect_column_values_to_be_in_set" in caplog.text and "temperature" in caplog.text
    cfg = load_config()
    objects = open_objects(cfg)
    kept = list(objects.list("quarantine/"))
    assert any(k.endswith(f"{SMOLLM2}.jsonl") for k in kept) and any(k.endswith(".gx.json") for k in kept)
    assert not list(objects.list(f"runs/{run.run_id}/mine/"))  # moved out of the run's inputs
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        assert store.query("SELECT stage FROM quarantine") == [{"stage": "mine"}]
        assert store.query("SELECT count(*) AS n FROM instructions")[0]["n"] == 0
