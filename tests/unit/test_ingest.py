"""Single writer in practice: worker result files -> ingest -> DuckDB; idempotent; bad files quarantined."""

from __future__ import annotations

import json

import pytest

from warriorflow.errors import StoreError
from warriorflow.method import ids
from warriorflow.store.ingest import TableSpec, ingest_results
from warriorflow.store.objects import LocalObjectStore
from warriorflow.store.rating_store import RatingStore

SPEC = TableSpec("instructions", key=("instruction_id",), required=("instruction_id", "text", "expert", "run_id"))


def _row(text: str, run: str = "r1") -> dict:
    return {"instruction_id": ids.instruction_id(text), "text": text, "expert": "smol", "temperature": 1.0,
            "top_p": 0.99, "seed": 0, "prefix_sha256": "abc", "mined_at": "2026-11-22 01:00:00", "run_id": run}


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture
def stores(tmp_path):
    store = RatingStore(tmp_path / "s.duckdb")
    yield store, LocalObjectStore(tmp_path / "objects")
    store.close()


def test_ingest_merges_worker_files_once(stores):
    store, objects = stores
    objects.put_bytes("runs/r1/mine/smol.jsonl", _jsonl([_row("a"), _row("b")]))
    objects.put_bytes("runs/r1/mine/qwen.jsonl", _jsonl([_row("b"), _row("c")]))  # "b" again: same id
    first = ingest_results(store, objects, "runs/r1/", SPEC, "mine")
    assert sorted(first.ingested) == ["runs/r1/mine/qwen.jsonl", "runs/r1/mine/smol.jsonl"] and first.rows == 4
    assert store.query("SELECT count(*) AS n FROM instructions") == [{"n": 3}]
    before = store.query("SELECT * FROM instructions ORDER BY instruction_id")
    again = ingest_results(store, objects, "runs/r1/", SPEC, "mine")
    assert again.ingested == [] and len(again.skipped) == 2
    assert store.query("SELECT * FROM instructions ORDER BY instruction_id") == before


def test_malformed_file_is_quarantined_with_a_report_not_deleted(stores):
    store, objects = stores
    objects.put_bytes("runs/r1/mine/good.jsonl", _jsonl([_row("a")]))
    objects.put_bytes("runs/r1/mine/bad.jsonl", _jsonl([_row("x")]) + b"{not json\n")
    objects.put_bytes("runs/r1/mine/partial.jsonl", _jsonl([{"instruction_id": "i", "text": "t"}]))
    report = ingest_results(store, objects, "runs/r1/", SPEC, "mine")
    assert report.ingested == ["runs/r1/mine/good.jsonl"]
    assert report.quarantined["runs/r1/mine/bad.jsonl"].startswith("line 2 is not JSON")
    assert "lacks required field(s) ['expert', 'run_id']" in report.quarantined["runs/r1/mine/partial.jsonl"]
    assert not objects.exists("runs/r1/mine/bad.jsonl")
    assert objects.get_bytes("quarantine/mine/runs/r1/mine/bad.jsonl").endswith(b"{not json\n")
    rep = json.loads(objects.get_bytes("quarantine/mine/runs/r1/mine/bad.jsonl.report.json"))
    assert rep["stage"] == "mine" and rep["reason"].startswith("line 2")
    assert {r["stage"] for r in store.query("SELECT stage FROM quarantine")} == {"mine"}
    assert store.query("SELECT count(*) AS n FROM instructions") == [{"n": 1}]  # nothing from the bad batch


def test_changed_result_file_is_refused(stores):
    store, objects = stores
    objects.put_bytes("runs/r1/a.jsonl", _jsonl([_row("a")]))
    ingest_results(store, objects, "runs/r1/", SPEC, "mine")
    objects.put_bytes("runs/r1/a.jsonl", _jsonl([_row("a"), _row("b")]))
    with pytest.raises(StoreError, match="result files are immutable"):
        ingest_results(store, objects, "runs/r1/", SPEC, "mine")
