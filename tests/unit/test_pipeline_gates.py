"""The pipeline's Great Expectations boundaries: a bad mined batch is quarantined with the GX result
beside it and named in the report; good batches are merged once; exact duplicates are dropped with a link."""

from __future__ import annotations

import json

from tests.helpers import SMOLLM2
from warriorflow.config import load_config
from warriorflow.method import ids
from warriorflow.stages.ingest import ingest_stage
from warriorflow.store.keys import mine_key
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore


def _row(text: str, **over) -> dict:
    row = {"instruction_id": ids.instruction_id(text), "text": text, "expert": SMOLLM2, "temperature": 1.0,
           "top_p": 0.99, "seed": 3, "prefix_sha256": "p" * 64, "mined_at": "2026-11-22 01:00:00", "run_id": "r1"}
    return {**row, **over}


def _put(objects, key, rows):
    objects.put_bytes(key, "".join(json.dumps(r) + "\n" for r in rows).encode())


def test_bad_mined_batch_is_quarantined_with_its_gx_result():
    cfg = load_config()
    objects = open_objects(cfg)
    good = [_row("Write a function that reverses a linked list in place."),
            _row("Explain how Python's GIL affects CPU-bound threads.", seed=4)]
    bad = [_row("Implement binary search over a sorted list of integers.", temperature=0.3),
           _row("Implement binary search over a sorted list of integers!", expert="gpt-9", seed=5)]
    _put(objects, mine_key("r1", "good"), good)
    _put(objects, mine_key("r1", "bad"), bad)
    with RatingStore(cfg.duckdb_path) as store:
        report = ingest_stage(cfg, store, objects, "r1")
        assert report.counts == {"ingested": 2, "quarantined_batches": 1}
        note = report.notes[0]
        assert "runs/r1/mine/bad.jsonl" in note and "temperature" in note and "expert" in note
        q = store.query("SELECT stage, reason FROM quarantine")
        assert q[0]["stage"] == "mine" and "expect_column_values_to_be_in_set" in q[0]["reason"]
        assert {r["text"] for r in store.query("SELECT text FROM instructions")} == {r["text"] for r in good}
    assert not objects.exists(mine_key("r1", "bad"))
    keys = set(objects.list("quarantine/"))
    gx = [k for k in keys if k.endswith(".gx.json")]
    assert len(gx) == 1 and json.loads(objects.get_bytes(gx[0]))["success"] is False
    assert any(k.endswith("bad.jsonl") for k in keys)  # the batch itself is kept, not deleted


def test_exact_duplicates_are_dropped_at_ingest_with_their_link():
    cfg = load_config()
    objects = open_objects(cfg)
    text = "Write a function that reverses a linked list in place."
    _put(objects, mine_key("r1", "a"), [_row(text)])
    _put(objects, mine_key("r1", "b"), [_row("  write a function that REVERSES a linked list in place. ",
                                                       seed=9)])
    with RatingStore(cfg.duckdb_path) as store:
        report = ingest_stage(cfg, store, objects, "r1")
        assert report.counts == {"ingested": 1, "dropped_exact_duplicate": 1}
        drop = store.query("SELECT stage, reason, instruction_id, provenance->>'seed' AS seed FROM dropped_records")
        assert drop == [{"stage": "ingest", "reason": "exact_duplicate", "instruction_id": ids.instruction_id(text),
                         "seed": "9"}]
