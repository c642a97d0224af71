"""The one ingest loop, as every writer step uses it: a result file is merged once (skipped by URI and
sha256), a file rewritten after its ingest is refused with a clear error naming it (never skipped
silently), and a file that fails its checks is quarantined whole with its report beside it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.helpers import SMOLLM2
from warriorflow.cli import main
from warriorflow.config import load_config
from warriorflow.errors import StoreError
from warriorflow.method import ids
from warriorflow.method.jobs import JobInput
from warriorflow.stages.base import Outcome, StageReport, stage
from warriorflow.stages.ingest import ingest_stage
from warriorflow.stages.ingest_battles import ingest_votes_stage
from warriorflow.store.ingest import Rejection, ResultFileChanged, ingest_files
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.keys import job_in_key, job_out_for, mine_key
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore


def _mined(text: str, seed: int = 3) -> dict:
    return {"instruction_id": ids.instruction_id(text), "text": text, "expert": SMOLLM2, "temperature": 1.0,
            "top_p": 0.99, "seed": seed, "prefix_sha256": "p" * 64, "mined_at": "2026-11-22 01:00:00",
            "run_id": "r1"}


def test_a_mined_file_rewritten_after_its_ingest_is_refused_not_skipped():
    cfg = load_config()
    objects = open_objects(cfg)
    key = mine_key("r1", SMOLLM2)
    objects.put_bytes(key, encode_jsonl([_mined("Write a function that reverses a linked list in place.")]))
    with RatingStore(cfg.duckdb_path) as store:
        assert ingest_stage(cfg, store, objects, "r1").counts == {"ingested": 1}
        assert ingest_stage(cfg, store, objects, "r1").counts == {}  # the same bytes again: skipped
        objects.put_bytes(key, encode_jsonl([_mined("Explain how Python's GIL affects CPU-bound threads.")]))
        with pytest.raises(ResultFileChanged) as err:
            ingest_stage(cfg, store, objects, "r1")
        assert objects.uri(key) in str(err.value) and "immutable" in str(err.value)
        assert "new run id" in str(err.value)  # says what to do
        assert [r["text"] for r in store.query("SELECT text FROM instructions")] == [
            "Write a function that reverses a linked list in place."]  # nothing of the new content went in


def test_a_changed_battle_file_is_a_clear_cli_error_not_a_traceback():
    cfg = load_config()
    objects = open_objects(cfg)
    in_key = job_in_key("b1", "judge", "judge-r01-j-s0000")
    params = {"arena": {}, "template": "{instruction} {response_a} {response_b}"}
    objects.put_bytes(in_key, JobInput("judge-r01-j-s0000", "judge", "j", "b1", params, (), 1).to_json())
    key = job_out_for(in_key)
    objects.put_bytes(key, encode_jsonl([]))
    with RatingStore(cfg.duckdb_path) as store:
        ingest_votes_stage(cfg, store, objects, "b1")
    objects.put_bytes(key, b"\n")  # other bytes, same (empty) content
    result = CliRunner().invoke(main, ["ingest-votes", "--run-id", "b1"])
    assert result.exit_code == 2, result.output
    assert "ingested before with different content" in result.output and "Traceback" not in result.output


def test_a_file_failing_its_check_is_quarantined_whole_with_its_report(config):
    objects = open_objects(config)
    objects.put_bytes("runs/x/t/a.jsonl", encode_jsonl([{"n": 1}, {"n": 2}]))
    objects.put_bytes("runs/x/t/b.jsonl", b'{"n": 3}\n[4]\n')
    merged: list[dict] = []

    def check(rows):
        return Rejection("n=2 is not allowed", {"rows": len(rows)}, {".extra.json": b"{}"}) if any(
            r["n"] == 2 for r in rows) else None

    with RatingStore(config.duckdb_path) as store:
        report = ingest_files(store, objects, ["runs/x/t/a.jsonl", "runs/x/t/b.jsonl"], kind="t", stage="t",
                              merge=lambda key, rows: merged.extend(rows), check=check)
        assert merged == [] and report.ingested == []
        assert report.quarantined == {"runs/x/t/a.jsonl": "n=2 is not allowed",
                                      "runs/x/t/b.jsonl": "line 2 is a JSON list, not an object"}
        assert {r["stage"] for r in store.query("SELECT stage FROM quarantine")} == {"t"}
        assert store.query("SELECT count(*) AS n FROM ingested_files")[0]["n"] == 0
    kept = set(objects.list("quarantine/t/"))
    assert {"quarantine/t/runs/x/t/a.jsonl", "quarantine/t/runs/x/t/a.jsonl.extra.json",
            "quarantine/t/runs/x/t/a.jsonl.report.json", "quarantine/t/runs/x/t/b.jsonl"} <= kept
    report_a = json.loads(objects.get_bytes("quarantine/t/runs/x/t/a.jsonl.report.json"))
    assert report_a["reason"] == "n=2 is not allowed" and report_a["details"] == {"rows": 2}
    assert not objects.exists("runs/x/t/a.jsonl")  # moved, so a re-run does not meet it again


def test_the_jsonl_codec_round_trips_any_text_and_names_bad_lines():
    rows = [{"text": "naïve \ud800 {braces} \n", "n": 1}, {"a": None}]
    data = encode_jsonl(rows)
    assert data.isascii() and decode_jsonl(data) == rows
    assert decode_jsonl(encode_jsonl(rows, ascii_only=False)) == rows  # a lone surrogate falls back to escapes
    assert encode_jsonl([{"t": "naïve"}], ascii_only=False) == '{"t": "naïve"}\n'.encode()
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        decode_jsonl(b'{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match=r"line 1 lacks required field\(s\) \['b'\]"):
        decode_jsonl(b'{"a": 1}\n', required=("b",))


def test_the_stage_decorator_records_counts_notes_and_value(config):
    @stage("probe")
    def probe(cfg, store, run_id, *, fail=False):
        if fail:
            raise StoreError("probe", "failed", "nothing to do")
        return Outcome({"seen": 2}, ["a note"], ["k1"])

    with RatingStore(config.duckdb_path) as store:
        report = probe(config, store, run_id="r9")
        assert isinstance(report, StageReport) and report.stage == "probe" and report.value == ["k1"]
        assert report.counts == {"seen": 2} and report.notes == ["a note"]
        with pytest.raises(StoreError):
            probe(config, store, "r10", fail=True)
        rows = store.query("SELECT run_id, stage, counts FROM stage_runs ORDER BY run_id")
    assert [(r["run_id"], r["stage"]) for r in rows] == [("r9", "probe")]  # a failed stage records nothing
