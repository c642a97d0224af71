"""Great Expectations gates at the stage boundaries: what passes, what fails (naming the expectation and the
row count), quarantine with the GX result beside the batch, and no network."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from warriorflow.method import ids
from warriorflow.quality import gates
from warriorflow.quality.gates import gate_mined, gate_scored, gate_selected, quarantine_batch
from warriorflow.store.objects import LocalObjectStore

GRID = dict(experts=["smol", "qwen"], temperatures=[1.0, 1.1, 1.2], top_ps=[0.99, 0.995, 1.0],
            min_chars=20, max_chars=4000)


def _mined(n: int = 6) -> list[dict]:
    rows = []
    for i in range(n):
        text = f"Write a Python function number {i} that merges two sorted lists into one sorted list."
        rows.append({"instruction_id": ids.instruction_id(text), "text": text, "expert": ["smol", "qwen"][i % 2],
                     "temperature": GRID["temperatures"][i % 3], "top_p": GRID["top_ps"][i % 3], "seed": i,
                     "prefix_sha256": "abc", "mined_at": "2026-11-22 01:00:00", "run_id": "r1"})
    return rows


def _scored() -> list[dict]:
    return [{"instruction_id": "a", "judge": "j1", "score": 7, "valid": True},
            {"instruction_id": "a", "judge": "j2", "score": None, "valid": False},
            {"instruction_id": "b", "judge": "j1", "score": 10, "valid": True},
            {"instruction_id": "b", "judge": "j2", "score": 1, "valid": True}]


def _selected(n: int = 4) -> list[dict]:
    return [{"instruction_id": f"i{k}", "pick_rank": k, "embed_model": "all-minilm-l6-v2"} for k in range(n)]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


# ------------------------------------------------------------------------------------------------ offline


def test_importing_the_gates_disables_gx_analytics_and_defers_gx():
    code = ("import os, sys; import warriorflow.quality.gates; "
            "print(os.environ['GX_ANALYTICS_ENABLED'], 'great_expectations' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "GX_ANALYTICS_ENABLED"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["false", "False"]
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"


def test_gates_make_no_network_attempt_and_write_no_files(monkeypatch, tmp_path):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.chdir(tmp_path)
    gates.reset_context()  # context creation is covered too
    try:
        assert gate_mined(_mined(), **GRID).success
        assert not gate_scored([{**_scored()[0], "score": 11}]).success
        assert gate_selected(_selected(), max_rows=None).success
        assert gates.gx_context().config.analytics_enabled is False
    finally:
        gates.reset_context()
    assert attempts == []
    assert list(tmp_path.iterdir()) == []  # the ephemeral context keeps everything in memory


# ------------------------------------------------------------------------------------------------ mined


def test_good_mined_batch_passes():
    result = gate_mined(_mined(), **GRID)
    assert result.success and result.failed == [] and result.n_rows == 6
    assert result.summary().startswith("mined batch passed")
    assert result.result_json["success"] is True and result.result_json["results"]


def _break(rows: list[dict], defect: str) -> None:
    if defect == "duplicate_id":
        rows[3]["instruction_id"] = rows[1]["instruction_id"]
    elif defect == "null_text":
        rows[2]["text"] = None
    elif defect == "too_long":
        rows[4]["text"] = "x" * 4001
    elif defect == "too_short":
        rows[4]["text"] = "too short"
    elif defect == "temperature":
        rows[0]["temperature"] = 0.7
    elif defect == "top_p":
        rows[5]["top_p"] = 0.5
    elif defect == "unknown_expert":
        rows[1]["expert"] = "ghost"
    elif defect == "missing_run_id":
        del rows[2]["run_id"]


@pytest.mark.parametrize(("defect", "expected"), [
    ("duplicate_id", {"expect_column_values_to_be_unique(instruction_id)": 2}),  # both rows of the pair
    ("null_text", {"expect_column_values_to_not_be_null(text)": 1}),  # a null is not also "too short"
    ("too_long", {"expect_column_value_lengths_to_be_between(text)": 1}),
    ("too_short", {"expect_column_value_lengths_to_be_between(text)": 1}),
    ("temperature", {"expect_column_values_to_be_in_set(temperature)": 1}),
    ("top_p", {"expect_column_values_to_be_in_set(top_p)": 1}),
    ("unknown_expert", {"expect_column_values_to_be_in_set(expert)": 1}),
    ("missing_run_id", {"expect_column_values_to_not_be_null(run_id)": 1}),
])
def test_bad_mined_batch_fails_naming_exactly_its_expectation(defect, expected):
    rows = _mined()
    _break(rows, defect)
    result = gate_mined(rows, **GRID)
    assert not result.success
    assert result.failed_counts() == expected
    [name] = expected
    assert name in result.summary() and result.summary().startswith("mined batch failed 1 expectation(s)")


def test_mined_batch_with_several_defects_names_them_all():
    rows = _mined(8)
    for defect in ("duplicate_id", "null_text", "too_long", "temperature", "unknown_expert"):
        _break(rows, defect)
    result = gate_mined(rows, **GRID)
    assert result.failed_counts() == {
        "expect_column_values_to_be_unique(instruction_id)": 2,
        "expect_column_values_to_not_be_null(text)": 1,
        "expect_column_value_lengths_to_be_between(text)": 1,
        "expect_column_values_to_be_in_set(temperature)": 1,
        "expect_column_values_to_be_in_set(expert)": 1,
    }
    summary = result.summary()
    assert summary.startswith("mined batch failed 5 expectation(s): ")
    assert "expect_column_values_to_be_unique(instruction_id): 2 rows" in summary
    assert "expect_column_values_to_be_in_set(expert): 1 row" in summary
    unique = next(f for f in result.failed if f.expectation == "expect_column_values_to_be_unique")
    assert unique.details["partial_unexpected_index_list"] == [1, 3]
    json.dumps(result.result_json, allow_nan=False)  # strict JSON: NaN from pandas nulls became null


# ------------------------------------------------------------------------------------------------ scored


def test_good_scores_pass():
    result = gate_scored(_scored())
    assert result.success and result.n_rows == 4


@pytest.mark.parametrize(("change", "expected"), [
    ({"score": 11}, {"expect_column_values_to_be_between(score)": 1}),
    ({"score": 0}, {"expect_column_values_to_be_between(score)": 1}),
    ({"score": None}, {"expect_column_values_to_not_be_null(score)": 1}),  # valid but no score
    ({"valid": False}, {"expect_column_values_to_be_null(score)": 1}),  # invalid but has a score
    ({"valid": None}, {"expect_column_values_to_not_be_null(valid)": 1}),
    ({"judge": "j2"}, {"expect_compound_columns_to_be_unique(instruction_id,judge)": 2}),
])
def test_bad_scores_fail(change, expected):
    rows = _scored()
    rows[2].update(change)  # instruction b, judge j1, score 10, valid
    result = gate_scored(rows)
    assert not result.success and result.failed_counts() == expected


# ------------------------------------------------------------------------------------------------ selected


def test_selected_gate():
    assert gate_selected(_selected(), max_rows=4).success
    assert gate_selected(_selected(), max_rows=None).success

    duplicate = _selected()
    duplicate[2]["instruction_id"] = "i0"
    assert gate_selected(duplicate, max_rows=None).failed_counts() == {
        "expect_column_values_to_be_unique(instruction_id)": 2}

    ranks = _selected()
    ranks[1]["pick_rank"], ranks[3]["embed_model"] = -1, None
    assert gate_selected(ranks, max_rows=None).failed_counts() == {
        "expect_column_values_to_be_between(pick_rank)": 1, "expect_column_values_to_not_be_null(embed_model)": 1}

    too_many = gate_selected(_selected(5), max_rows=4)
    assert too_many.failed_counts() == {"expect_table_row_count_to_be_between": 0}
    assert "expect_table_row_count_to_be_between: observed 5" in too_many.summary()


def test_empty_batches_pass_with_no_rows():
    for result in (gate_mined([], **GRID), gate_scored([]), gate_selected([], max_rows=3)):
        assert result.success and result.n_rows == 0


# ------------------------------------------------------------------------------------------------ quarantine


def test_quarantine_batch_moves_the_file_and_writes_report_and_gx_result(tmp_path):
    objects = LocalObjectStore(tmp_path / "objects")
    key = "runs/r1/mine/smol.jsonl"
    rows = _mined()
    _break(rows, "unknown_expert")
    objects.put_bytes(key, _jsonl(rows))
    result = gate_mined(rows, **GRID)

    target = quarantine_batch(objects, key, "mine", result)

    assert target == f"quarantine/mine/{key}"
    assert not objects.exists(key) and objects.get_bytes(target) == _jsonl(rows)
    report = json.loads(objects.get_bytes(target + ".report.json"))
    assert report["stage"] == "mine" and report["reason"] == result.summary()
    assert report["details"]["failed"][0]["expectation"] == "expect_column_values_to_be_in_set"
    assert report["details"]["failed"][0]["unexpected_count"] == 1
    gx_result = json.loads(objects.get_bytes(target + ".gx.json"))
    assert gx_result["success"] is False and gx_result == result.result_json


def test_a_passing_batch_is_not_quarantined(tmp_path):
    objects = LocalObjectStore(tmp_path / "objects")
    objects.put_bytes("runs/r1/select/picks.jsonl", _jsonl(_selected()))
    with pytest.raises(ValueError, match="passed"):
        quarantine_batch(objects, "runs/r1/select/picks.jsonl", "select", gate_selected(_selected(), max_rows=None))
    assert objects.exists("runs/r1/select/picks.jsonl")


# ------------------------------------------------------------------------------------------------ speed, reuse


def test_a_gate_on_1k_rows_is_fast():
    rows = _mined(1000)
    gate_mined(rows[:10], **GRID)  # context and suite exist
    start = time.perf_counter()
    result = gate_mined(rows, **GRID)
    assert result.success and result.n_rows == 1000
    assert time.perf_counter() - start < 3.0


def test_context_is_cached_and_recycled(monkeypatch):
    first = gates.gx_context()
    gate_scored(_scored())
    assert gates.gx_context() is first
    monkeypatch.setattr(gates, "RECYCLE_AFTER", 0)
    gate_scored(_scored())
    assert gates.gx_context() is not first  # rebuilt to bound the in-memory results store
