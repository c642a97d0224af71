"""Dataset snapshots on the local object store: content-derived ids, immutability, manifest, lineage, the
snapshots row, checksum verification, and loading with Hugging Face datasets / TRL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from tests.sft_seed import PROBLEMS, seed_and_rate
from warriorflow.errors import StoreError
from warriorflow.store import snapshots
from warriorflow.store.objects import join_key, open_objects
from warriorflow.store.rating_store import RatingStore

T0 = datetime(2026, 11, 22, 6, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 6, 0, 0, tzinfo=UTC)
MORE = [("Write `fib(n)` returning the n-th Fibonacci number.",
         "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
         "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n")]


@pytest.fixture
def seeded(config):
    with RatingStore(config.duckdb_path) as store:
        seed_and_rate(config, store)
    return config


def _create(cfg, now=T0):
    with RatingStore(cfg.duckdb_path) as store:
        return snapshots.create_snapshot(cfg, store, open_objects(cfg), now=now)


def test_snapshot_layout_manifest_and_row(seeded):
    info = _create(seeded)
    objects = open_objects(seeded)
    assert info.created and snapshots.ID_PATTERN.match(info.snapshot_id)
    assert info.snapshot_id == f"2026-11-22T06-00-00Z-{info.content_sha256[:8]}"
    m = snapshots.read_snapshot_manifest(objects, info.snapshot_id)
    assert set(m["files"]) == {snapshots.PARQUET, snapshots.JSONL, snapshots.BATTLES}
    assert m["counts"]["examples"] == len(PROBLEMS) == info.n_examples
    assert m["counts"]["battles"] == len(PROBLEMS) and m["counts"]["votes"] == 2 * len(PROBLEMS)
    assert m["config_hash"] == seeded.config_hash()
    with RatingStore(seeded.duckdb_path, read_only=True) as store:
        gold = store.query("SELECT instruction_id, expert, response_id, rating_version FROM gold_selections")
        row = store.query("SELECT * FROM snapshots")
        ratings = store.query("SELECT * FROM rating_history WHERE method = 'elo'")
    version = gold[0]["rating_version"]
    assert m["lineage"]["rating_version"] == version
    assert m["lineage"]["ratings"][version]["elo"] == {
        r["expert"]: {"rating": r["rating"], "lo": r["lo"], "hi": r["hi"], "n_battles": r["n_battles"]}
        for r in ratings if r["rating_version"] == version}
    # the lineage file holds every battle of the examples, with votes
    battles = [json.loads(line) for line in objects.get_bytes(
        join_key(snapshots.prefix(info.snapshot_id), snapshots.BATTLES)).splitlines()]
    assert {b["instruction_id"] for b in battles} == {g["instruction_id"] for g in gold}
    assert all(len(b["votes"]) == 2 for b in battles)
    # the row: created_at set from the manifest (the retrain gate reads it)
    assert len(row) == 1 and row[0]["snapshot_id"] == info.snapshot_id and row[0]["n_examples"] == len(PROBLEMS)
    assert row[0]["created_at"] == datetime(2026, 11, 22, 6, 0, 0) and row[0]["content_sha256"] == info.content_sha256
    # the examples: gold responses as conversations
    lines = [json.loads(x) for x in objects.get_bytes(
        join_key(snapshots.prefix(info.snapshot_id), snapshots.JSONL)).splitlines()]
    by_id = {g["instruction_id"]: g for g in gold}
    for e in lines:
        assert [m_["role"] for m_ in e["messages"]] == ["user", "assistant"]
        assert e["response_id"] == by_id[e["instruction_id"]]["response_id"]
        assert e["response_expert"] == by_id[e["instruction_id"]]["expert"]
        assert e["battle_ids"] and e["rating_version"] == version


def test_same_content_returns_the_existing_snapshot(seeded):
    first = _create(seeded, T0)
    again = _create(seeded, T1)
    assert again.snapshot_id == first.snapshot_id and not again.created
    objects = open_objects(seeded)
    assert [s["snapshot_id"] for s in snapshots.list_snapshots(objects)] == [first.snapshot_id]
    with RatingStore(seeded.duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM snapshots")[0]["n"] == 1


def test_row_is_recorded_when_publish_finished_but_the_row_is_missing(seeded):
    first = _create(seeded, T0)
    with RatingStore(seeded.duckdb_path) as store:
        store.con.execute("DELETE FROM snapshots")
    again = _create(seeded, T1)
    assert again.snapshot_id == first.snapshot_id
    with RatingStore(seeded.duckdb_path, read_only=True) as store:
        rows = store.query("SELECT snapshot_id, created_at FROM snapshots")
    assert rows == [{"snapshot_id": first.snapshot_id, "created_at": datetime(2026, 11, 22, 6, 0, 0)}]


def test_new_gold_makes_a_new_version_that_sorts_later(seeded):
    first = _create(seeded, T0)
    with RatingStore(seeded.duckdb_path) as store:
        seed_and_rate(seeded, store, MORE, run_id="later", first_order=100)
    second = _create(seeded, T1)
    assert second.created and second.snapshot_id != first.snapshot_id and second.n_examples == len(PROBLEMS) + 1
    listed = [s["snapshot_id"] for s in snapshots.list_snapshots(open_objects(seeded))]
    assert listed == [first.snapshot_id, second.snapshot_id]
    assert snapshots.latest_snapshot_id(open_objects(seeded)) == second.snapshot_id
    # the first one is untouched
    assert snapshots.verify_snapshot(open_objects(seeded), first.snapshot_id)["counts"]["examples"] == len(PROBLEMS)


def test_retrain_gate_counts_only_gold_newer_than_the_snapshot(seeded):
    from warriorflow.tasks import retrain as retrain_tasks

    assert retrain_tasks.new_gold_since_last_snapshot() == len(PROBLEMS)
    _create(seeded, now=datetime.now(UTC))
    assert retrain_tasks.new_gold_since_last_snapshot() == 0


def test_loads_with_datasets_and_is_a_trl_conversation(seeded, tmp_path):
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    info = _create(seeded)
    local = snapshots.download_snapshot(open_objects(seeded), info.snapshot_id, tmp_path / "copy")
    cache = str(tmp_path / "hf-cache")
    pq = load_dataset("parquet", data_files=str(local / snapshots.PARQUET), split="train", cache_dir=cache)
    js = load_dataset("json", data_files=str(local / snapshots.JSONL), split="train", cache_dir=cache)
    assert pq.num_rows == js.num_rows == len(PROBLEMS)
    assert set(snapshots.COLUMNS) <= set(pq.column_names)
    assert pq["messages"] == js["messages"] and pq["instruction_id"] == js["instruction_id"]
    assert is_conversational(pq[0]) and is_conversational(js[0])
    texts = {p[0] for p in PROBLEMS}
    assert {row[0]["content"] for row in pq["messages"]} == texts
    # downloading again keeps the verified files
    assert snapshots.download_snapshot(open_objects(seeded), info.snapshot_id, local) == local


def test_verify_names_the_damaged_file(seeded):
    info = _create(seeded)
    objects = open_objects(seeded)
    assert set(snapshots.verify_snapshot(objects, info.snapshot_id)["files"]) == {
        snapshots.PARQUET, snapshots.JSONL, snapshots.BATTLES}
    key = join_key(snapshots.prefix(info.snapshot_id), snapshots.JSONL)
    objects.put_bytes(key, objects.get_bytes(key).replace(b"def ", b"def  ", 1))
    with pytest.raises(StoreError, match="train.jsonl.*fails its checksum"):
        snapshots.verify_snapshot(objects, info.snapshot_id)
    with pytest.raises(StoreError, match="checksum"):
        snapshots.download_snapshot(objects, info.snapshot_id, seeded.home / "dl")


def test_prefix_without_manifest_does_not_exist(seeded):
    objects = open_objects(seeded)
    half = "2026-11-22T07-00-00Z-deadbeef"
    objects.put_bytes(join_key(snapshots.prefix(half), snapshots.PARQUET), b"PAR1 half written")
    for call in (snapshots.read_snapshot_manifest, snapshots.verify_snapshot):
        with pytest.raises(snapshots.SnapshotNotFoundError, match="no such snapshot"):
            call(objects, half)
    with pytest.raises(snapshots.SnapshotNotFoundError, match="no such snapshot"):
        snapshots.read_snapshot_manifest(objects, "../../etc")
    assert snapshots.list_snapshots(objects) == []
    with pytest.raises(snapshots.SnapshotNotFoundError, match="none yet"):
        snapshots.latest_snapshot_id(objects)


def test_empty_store_is_a_clear_error(config):
    with pytest.raises(StoreError, match="no gold examples"):
        _create(config)


def test_pure_parts_are_deterministic():
    rows = [{"instruction_id": "b", "instruction": "I2", "response": "R2", "response_id": "r2",
             "response_expert": "x", "miner": "y", "final_score": 0.6, "rating_version": "v", "difficulty": None,
             "battle_ids": ["bb"]},
            {"instruction_id": "a", "instruction": "I1", "response": "R1", "response_id": "r1",
             "response_expert": "y", "miner": "x", "final_score": 0.7, "rating_version": "v", "difficulty": 7,
             "battle_ids": None}]
    ex = snapshots.example_records(rows)
    assert [e["instruction_id"] for e in ex] == ["a", "b"] and ex[0]["battle_ids"] == [] and ex[0]["difficulty"] == 7.0
    h = snapshots.content_sha256(ex, [], {})
    assert h == snapshots.content_sha256(snapshots.example_records(reversed(rows)), [], {})
    assert h != snapshots.content_sha256(ex, [{"battle_id": "bb"}], {})
    assert snapshots.parquet_bytes(ex) == snapshots.parquet_bytes(ex)


def test_cli_create_list_show_verify(seeded):
    from warriorflow.cli import main

    runner = CliRunner()
    out = runner.invoke(main, ["snapshot", "create", "--json"])
    assert out.exit_code == 0, out.output
    sid = json.loads(out.output)["snapshot_id"]
    again = runner.invoke(main, ["snapshot", "create"])
    assert again.exit_code == 0 and "existing snapshot" in again.output and sid in again.output
    listed = runner.invoke(main, ["snapshot", "list"])
    assert listed.exit_code == 0 and sid in listed.output
    shown = runner.invoke(main, ["snapshot", "show", sid])
    assert shown.exit_code == 0 and json.loads(shown.output)["snapshot_id"] == sid
    ok = runner.invoke(main, ["snapshot", "verify", sid])
    assert ok.exit_code == 0 and "3 files verified" in ok.output
    objects = open_objects(seeded)
    objects.put_bytes(join_key(snapshots.prefix(sid), snapshots.PARQUET), b"not parquet")
    bad = runner.invoke(main, ["snapshot", "verify", sid])
    assert bad.exit_code == 2 and "fails its checksum" in bad.output
    missing = runner.invoke(main, ["snapshot", "show", "2026-01-01T00-00-00Z-00000000"])
    assert missing.exit_code == 2 and "no such snapshot" in missing.output
