"""Dataset snapshots on the local object store: content-derived ids, immutability, manifest, lineage, the
snapshots row, checksum verification, the three datasets (sft, preferences, responses) and their scores,
format-1 snapshots, and loading with Hugging Face datasets / TRL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from tests.sft_seed import PROBLEMS, publish_format1_snapshot, seed_and_rate
from warriorflow.errors import StoreError
from warriorflow.store import snapshots
from warriorflow.store.objects import join_key, open_objects
from warriorflow.store.rating_store import RatingStore

FILES = {snapshots.PARQUET, snapshots.JSONL, snapshots.PREFERENCES_PARQUET, snapshots.PREFERENCES_JSONL,
         snapshots.RESPONSES_PARQUET, snapshots.RESPONSES_JSONL, snapshots.BATTLES, snapshots.CARD}
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
    assert set(m["files"]) == FILES and m["format_version"] == 2
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


def _rows(objects, sid, name):
    local = snapshots.prefix(sid)
    return [json.loads(x) for x in objects.get_bytes(join_key(local, snapshots.DATASETS[name][1])).splitlines()]


def test_preferences_and_responses_carry_the_gold_steps_scores(seeded):
    """Every response's e, Elo expectation and local score are the gold step's (the same method functions on
    the same vote log and ratings); chosen is the higher e, and the gold response is the best of each."""
    from warriorflow.method.rating import response_scores
    from warriorflow.store.vote_log import vote_log

    info = _create(seeded)
    objects = open_objects(seeded)
    m = snapshots.read_snapshot_manifest(objects, info.snapshot_id)
    n = len(PROBLEMS)
    assert (info.n_preferences, info.n_responses) == (n, 2 * n)
    assert m["counts"]["preferences"] == n and m["counts"]["preferences_skipped_ties"] == 0
    assert m["counts"]["responses"] == 2 * n
    for name, (parquet, jsonl, columns, _) in snapshots.DATASETS.items():
        d = m["datasets"][name]
        assert (d["parquet"], d["jsonl"], d["columns"]) == (parquet, jsonl, list(columns))
        assert d["rows"] == {"sft": n, "preferences": n, "responses": 2 * n}[name]
    with RatingStore(seeded.duckdb_path, read_only=True) as store:
        version = store.query("SELECT DISTINCT rating_version FROM gold_selections")[0]["rating_version"]
        elo = {r["expert"]: r["rating"] for r in store.query(
            "SELECT expert, rating FROM rating_history WHERE rating_version = ? AND method = 'elo'", [version])}
        expected = response_scores(vote_log(store, seeded.settings.arena), elo, seeded.settings.rating.alpha)
        gold = {g["instruction_id"]: g for g in store.query("SELECT * FROM gold_selections")}
        texts = {r["response_id"]: r["text"] for r in store.query("SELECT response_id, text FROM responses")}

    responses = _rows(objects, info.snapshot_id, "responses")
    assert [(r["instruction_id"], r["expert"]) for r in responses] == sorted(
        (i, e) for i, per in expected.items() for e in per)
    for r in responses:
        want = expected[r["instruction_id"]][r["expert"]]
        assert (r["final_score"], r["elo_expectation"], r["local_score"], r["n_battles"]) == (
            want.final, want.elo_expectation, want.local, want.battles)
        assert r["final_score"] == pytest.approx(seeded.settings.rating.alpha * r["elo_expectation"]
                                                 + (1 - seeded.settings.rating.alpha) * r["local_score"])
        assert r["rating_version"] == version and r["messages"][1]["content"] == texts[r["response_id"]]
        assert r["is_gold"] == (gold[r["instruction_id"]]["response_id"] == r["response_id"])
        if r["is_gold"]:
            assert r["final_score"] == gold[r["instruction_id"]]["final_score"]
        assert len(r["votes"]) == 2 and {v["role"] for v in r["votes"]} <= {"attacker", "defender"}
        assert {v["shown_order"] for v in r["votes"]} == {"attacker_first", "defender_first"}
        assert all(v["opponent"] != r["expert"] and v["p_a"] is None for v in r["votes"])

    pairs = _rows(objects, info.snapshot_id, "preferences")
    by = {(r["instruction_id"], r["expert"]): r for r in responses}
    assert len(pairs) == n and len({p["battle_id"] for p in pairs}) == n
    for p in pairs:
        chosen = by[(p["instruction_id"], p["chosen_expert"])]
        rejected = by[(p["instruction_id"], p["rejected_expert"])]
        assert chosen["is_gold"] and not rejected["is_gold"]  # two responses per instruction: chosen is the gold
        assert p["margin"] == chosen["final_score"] - rejected["final_score"] > 0
        assert (p["chosen_response_id"], p["rejected_response_id"]) == (chosen["response_id"], rejected["response_id"])
        assert p["prompt"] == chosen["messages"][:1] and p["chosen"] == chosen["messages"][1:]
        assert p["rejected"] == rejected["messages"][1:] and p["rating_version"] == version


def test_battles_with_equal_scores_give_no_pair(config):
    """All-tie votes leave every Elo rating at its start: both responses of every battle score 0.5."""
    from tests.sft_seed import seed_arena
    from warriorflow.stages.cycles import rate_and_select_gold

    with RatingStore(config.duckdb_path) as store:
        seed_arena(store)
        store.con.execute("UPDATE votes SET verdict = 'tie'")
        rate_and_select_gold(config, store, "ties")
    info = _create(config)
    m = snapshots.read_snapshot_manifest(open_objects(config), info.snapshot_id)
    assert info.n_preferences == 0 and m["counts"]["preferences_skipped_ties"] == len(PROBLEMS)
    assert m["datasets"]["preferences"]["rows"] == 0 and info.n_responses == 2 * len(PROBLEMS)
    assert {r["final_score"] for r in _rows(open_objects(config), info.snapshot_id, "responses")} == {0.5}


def test_gold_selected_before_response_scores_is_a_clear_error(seeded):
    with RatingStore(seeded.duckdb_path) as store:
        store.con.execute("DELETE FROM response_scores")
    with pytest.raises(StoreError, match="no stored response scores") as exc:
        _create(seeded)
    assert "warriorflow rate" in str(exc.value)


def test_the_three_datasets_load_by_name_from_a_downloaded_snapshot(seeded, tmp_path):
    """The dataset card's configs: datasets.load_dataset(<dir>, name), offline; preferences in TRL's
    conversational preference format."""
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    info = _create(seeded)
    local = snapshots.download_snapshot(open_objects(seeded), info.snapshot_id, tmp_path / "copy")
    card = (local / snapshots.CARD).read_text()
    assert card.startswith("---\n") and "config_name: preferences" in card and info.snapshot_id in card
    cache = str(tmp_path / "hf-cache")
    default = load_dataset(str(local), split="train", cache_dir=cache)
    loaded = {name: load_dataset(str(local), name, split="train", cache_dir=cache) for name in snapshots.DATASETS}
    assert default.column_names == loaded["sft"].column_names == list(snapshots.COLUMNS)
    for name, (parquet, jsonl, columns, _) in snapshots.DATASETS.items():
        ds = loaded[name]
        assert ds.column_names == list(columns)
        assert ds.num_rows == {"sft": info.n_examples, "preferences": info.n_preferences,
                               "responses": info.n_responses}[name]
        pq = load_dataset("parquet", data_files=str(local / parquet), split="train", cache_dir=cache)
        js = load_dataset("json", data_files=str(local / jsonl), split="train", cache_dir=cache)
        assert pq.num_rows == js.num_rows == ds.num_rows and pq[0]["instruction_id"] == js[0]["instruction_id"]
    pairs = loaded["preferences"]
    assert is_conversational(pairs[0]) and pairs[0]["prompt"][0]["role"] == "user"
    assert [m_["role"] for m_ in pairs[0]["chosen"]] == [m_["role"] for m_ in pairs[0]["rejected"]] == ["assistant"]
    assert pairs.features["margin"].dtype == "float64" and all(x > 0 for x in pairs["margin"])
    assert loaded["responses"].features["votes"].feature["p_a"].dtype == "float64"


def test_a_format1_snapshot_still_lists_verifies_downloads_and_reads_as_sft(seeded, tmp_path):
    info = _create(seeded)
    objects = open_objects(seeded)
    old = publish_format1_snapshot(objects, info.snapshot_id)
    assert [s["snapshot_id"] for s in snapshots.list_snapshots(objects)] == [old, info.snapshot_id]
    m = snapshots.verify_snapshot(objects, old)
    assert m["format_version"] == 1 and "datasets" not in m
    assert snapshots.dataset_file(m, "sft") == snapshots.PARQUET
    with pytest.raises(StoreError, match="no 'preferences' dataset"):
        snapshots.dataset_file(m, "preferences")
    local = snapshots.download_snapshot(objects, old, tmp_path / "old")
    assert sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()) == sorted(
        [snapshots.PARQUET, snapshots.JSONL, snapshots.BATTLES, "manifest.json"])
    assert snapshots.check_snapshot_manifest(m, "here") is None


def test_verify_names_the_damaged_file(seeded):
    info = _create(seeded)
    objects = open_objects(seeded)
    assert set(snapshots.verify_snapshot(objects, info.snapshot_id)["files"]) == FILES
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


def test_preference_pairs_pure():
    def resp(i, e, score):
        return {"instruction_id": i, "expert": e, "response_id": f"{i}{e}", "final_score": score,
                "rating_version": "v", "messages": [{"role": "user", "content": i},
                                                    {"role": "assistant", "content": e}]}

    responses = [resp("i1", "a", 0.4), resp("i1", "b", 0.6), resp("i2", "a", 0.5), resp("i2", "b", 0.5 + 1e-13)]
    battles = [{"battle_id": "b2", "instruction_id": "i2", "attacker": "a", "defender": "b"},
               {"battle_id": "b1", "instruction_id": "i1", "attacker": "a", "defender": "b"},
               {"battle_id": "b3", "instruction_id": "i1", "attacker": "a", "defender": "c"}]
    pairs, skipped = snapshots.preference_records(battles, responses)
    assert skipped == {"ties": 1, "unscored": 1}  # equal within the gold step's tie epsilon; c has no score
    assert len(pairs) == 1 and pairs[0]["chosen_expert"] == "b" and pairs[0]["rejected_expert"] == "a"
    assert pairs[0]["margin"] == pytest.approx(0.2) and pairs[0]["chosen"] == [{"role": "assistant", "content": "b"}]
    assert pairs[0]["prompt"] == [{"role": "user", "content": "i1"}]
    assert snapshots.parquet_bytes(pairs, "preferences") and snapshots.parquet_bytes([], "preferences")
    h = snapshots.content_sha256([], [], {}, pairs, responses)
    assert h != snapshots.content_sha256([], [], {}, [], responses) != snapshots.content_sha256([], [], {})


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
    assert ok.exit_code == 0 and f"{len(FILES)} files verified" in ok.output
    dl = runner.invoke(main, ["snapshot", "download", sid, str(seeded.home / "dl")])
    assert dl.exit_code == 0 and "preferences: datasets.load_dataset('parquet'" in dl.output
    assert (seeded.home / "dl" / snapshots.RESPONSES_PARQUET).is_file()
    objects = open_objects(seeded)
    objects.put_bytes(join_key(snapshots.prefix(sid), snapshots.PARQUET), b"not parquet")
    bad = runner.invoke(main, ["snapshot", "verify", sid])
    assert bad.exit_code == 2 and "fails its checksum" in bad.output
    missing = runner.invoke(main, ["snapshot", "show", "2026-01-01T00-00-00Z-00000000"])
    assert missing.exit_code == 2 and "no such snapshot" in missing.output


def test_a_snapshot_streamed_in_small_batches_has_the_content_of_its_records(seeded, monkeypatch):
    """Streamed a few rows at a time (several Parquet row groups per file), the snapshot's content hash is
    content_sha256 of its records read back, and the Parquet files hold the JSONL rows."""
    import io

    import pyarrow.parquet as pq

    monkeypatch.setattr(snapshots, "SNAPSHOT_BATCH", 2)
    info = _create(seeded)
    objects = open_objects(seeded)
    m = snapshots.read_snapshot_manifest(objects, info.snapshot_id)
    p = snapshots.prefix(info.snapshot_id)
    rows = {name: _rows(objects, info.snapshot_id, name) for name in snapshots.DATASETS}
    lineage = [json.loads(x) for x in objects.get_bytes(join_key(p, snapshots.BATTLES)).splitlines()]
    assert info.content_sha256 == snapshots.content_sha256(rows["sft"], lineage, m["lineage"]["ratings"],
                                                           rows["preferences"], rows["responses"])
    for name, (parquet, *_rest) in snapshots.DATASETS.items():
        table = pq.read_table(io.BytesIO(objects.get_bytes(join_key(p, parquet))))
        assert table.num_rows == len(rows[name]) and (table.num_rows < 3 or pq.ParquetFile(
            io.BytesIO(objects.get_bytes(join_key(p, parquet)))).num_row_groups > 1)
        assert json.loads(json.dumps(table.to_pylist())) == rows[name]
    monkeypatch.setattr(snapshots, "SNAPSHOT_BATCH", 1000)
    again = _create(seeded, now=T1)
    assert not again.created and again.snapshot_id == info.snapshot_id  # the same content, however streamed
