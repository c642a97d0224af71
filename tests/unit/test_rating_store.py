"""DuckDB rating store: versioned forward-only migrations, idempotent upserts, the single-writer rule."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from warriorflow.errors import StoreError
from warriorflow.method import ids
from warriorflow.store.rating_store import Migration, RatingStore, load_migrations

TABLES = {"experts", "instructions", "dropped_records", "difficulty_scores", "embeddings", "instruction_selections",
          "responses", "battles", "votes", "rating_history", "gold_selections", "snapshots", "training_runs",
          "eval_results", "ingested_files", "quarantine"}


def _instruction(text: str) -> dict:
    return {"instruction_id": ids.instruction_id(text), "text": text, "expert": "a", "temperature": 1.0,
            "top_p": 0.99, "seed": 1, "prefix_sha256": "p", "mined_at": "2026-11-22 00:00:00", "run_id": "r1"}


def test_schema_applied_and_versioned(tmp_path):
    with RatingStore(tmp_path / "s.duckdb") as s:
        assert s.schema_version() == len(load_migrations()) >= 1
        names = {r["table_name"] for r in s.query("SELECT table_name FROM information_schema.tables")}
        assert TABLES <= names
        assert s.query("SELECT version, name FROM schema_migrations")[0] == {"version": 1, "name": "initial"}


def test_upsert_twice_changes_nothing(tmp_path):
    rows = [_instruction("Write a function."), _instruction("Fix this bug.")]
    with RatingStore(tmp_path / "s.duckdb") as s:
        s.upsert("instructions", rows, key=["instruction_id"])
        before = s.query("SELECT * FROM instructions ORDER BY instruction_id")
        s.upsert("instructions", rows, key=["instruction_id"])
        s.upsert("instructions", [dict(rows[0], run_id="r2")], key=["instruction_id"])  # same content id
        assert s.query("SELECT * FROM instructions ORDER BY instruction_id") == before


def test_upsert_updates_only_named_columns(tmp_path):
    row = _instruction("Write a function.")
    with RatingStore(tmp_path / "s.duckdb") as s:
        s.upsert("instructions", [row], key=["instruction_id"])
        s.upsert("instructions", [dict(row, status="kept", text="changed")], key=["instruction_id"], update=["status"])
        got = s.query("SELECT text, status FROM instructions")
    assert got == [{"text": "Write a function.", "status": "kept"}]


def test_new_migration_applies_forward_and_edited_one_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    base = load_migrations()
    RatingStore(path).close()
    extra = Migration(len(base) + 1, "add_note", "ALTER TABLE experts ADD COLUMN note VARCHAR;")
    with RatingStore(path, migrations=[*base, extra]) as s:
        assert s.schema_version() == len(base) + 1
        assert "note" in {r["column_name"] for r in s.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'experts'")}
    edited = Migration(extra.version, extra.name, extra.sql + " -- edited")
    with pytest.raises(StoreError, match="changed after it was applied"):
        RatingStore(path, migrations=[*base, edited])
    with pytest.raises(StoreError, match="newer than this warriorflow"):
        RatingStore(path, migrations=base)


def test_failed_migration_rolls_back(tmp_path):
    path = tmp_path / "s.duckdb"
    bad = Migration(len(load_migrations()) + 1, "bad", "CREATE TABLE ok_then (x INT); SELECT * FROM nowhere;")
    with pytest.raises(StoreError, match="failed"):
        RatingStore(path, migrations=[*load_migrations(), bad])
    with RatingStore(path) as s:
        assert s.schema_version() == len(load_migrations())
        assert not s.query("SELECT * FROM information_schema.tables WHERE table_name = 'ok_then'")


def test_readers_cannot_write_and_need_an_existing_store(tmp_path):
    with pytest.raises(StoreError, match="does not exist yet"):
        RatingStore(tmp_path / "none.duckdb", read_only=True)
    RatingStore(tmp_path / "s.duckdb").close()
    with RatingStore(tmp_path / "s.duckdb", read_only=True) as r:
        with pytest.raises(StoreError, match="read-only"):
            r.upsert("experts", [{"name": "x"}], key=["name"])


def test_worker_processes_may_not_open_the_store_for_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("WARRIORFLOW_ROLE", "worker")
    with pytest.raises(StoreError, match="workers write result files to the object store"):
        RatingStore(tmp_path / "s.duckdb")


def test_second_writing_process_gets_a_clear_error(tmp_path):
    path = tmp_path / "s.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError) as exc:
            RatingStore(path, lock_wait_s=0.3)
        assert "open for writing by another process" in str(exc.value) and "warriorflow_db" in str(exc.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_writer_waits_for_a_short_lived_lock_holder(tmp_path, monkeypatch):
    """A reader (status page, report) holds DuckDB's lock briefly; a writer retries instead of failing."""
    path = tmp_path / "s.duckdb"
    RatingStore(path).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, duckdb
        con = duckdb.connect({str(path)!r}, read_only=True)
        print("locked", flush=True)
        time.sleep(1.5)
        con.close()
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        import duckdb

        attempts, connect = [], duckdb.connect
        monkeypatch.setattr(duckdb, "connect", lambda *a, **k: attempts.append(1) or connect(*a, **k))
        with RatingStore(path, lock_wait_s=20) as store:
            assert store.schema_version() >= 1
        assert len(attempts) > 1  # the first attempts met the lock
        assert holder.poll() is None  # the holder was still alive: the lock was waited out, not absent
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_named_queries_are_loaded_from_sql(tmp_path):
    with RatingStore(tmp_path / "s.duckdb") as s:
        s.upsert("instructions", [_instruction("a b c")], key=["instruction_id"])
        assert s.named("instruction_summary") == [{"expert": "a", "status": "mined", "n": 1}]
        with pytest.raises(StoreError, match="named query 'nope'"):
            s.named("nope")



@pytest.mark.parametrize("as_select", [False, True])
def test_a_failed_write_reports_its_own_cause_and_leaves_nothing_behind(tmp_path, as_select):
    """A constraint failure is the error reported (not DuckDB's 'transaction is aborted' from the staged rows'
    cleanup), inside a caller's transaction too; the store takes the next write."""
    from warriorflow.store.rating_store import Select

    bad = dict(_instruction("Write a function."), text=None)
    with RatingStore(tmp_path / "s.duckdb") as s:
        rows = Select("SELECT 'x' AS instruction_id, NULL::VARCHAR AS text, 'a' AS expert, "
                      "TIMESTAMP '2026-11-22' AS mined_at, 'r1' AS run_id") if as_select else [bad]
        with pytest.raises(StoreError) as err:
            s.upsert("instructions", rows, key=["instruction_id"])
        assert "NOT NULL" in str(err.value) and "aborted" not in str(err.value)
        with pytest.raises(StoreError) as err, s.transaction():
            s.upsert("instructions", rows, key=["instruction_id"])
        assert "NOT NULL" in str(err.value) and "aborted" not in str(err.value)
        s.upsert("instructions", [_instruction("Fix this bug.")], key=["instruction_id"])
        assert s.query("SELECT count(*) AS n FROM instructions") == [{"n": 1}]
        leftovers = s.query("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '_wf_rows_%' "
                            "UNION ALL SELECT view_name FROM duckdb_views() WHERE view_name LIKE '_wf_rows_%'")
        assert leftovers == []


def test_a_select_repeating_a_key_is_refused(tmp_path):
    """Which of two SELECT rows with one key would win is undefined (DuckDB keeps no scan order): refused."""
    from warriorflow.store.rating_store import Select

    row = _instruction("Write a function.")
    with RatingStore(tmp_path / "s.duckdb") as s:
        s.upsert("instructions", [row], key=["instruction_id"])
        twice = Select("SELECT ? AS instruction_id, s AS status FROM (VALUES ('kept'), ('dropped')) v(s)",
                       [row["instruction_id"]])
        with pytest.raises(StoreError, match=r"repeat the key \(instruction_id\)"):
            s.upsert("instructions", twice, key=["instruction_id"], update=["status"])
        with pytest.raises(StoreError, match="repeat the key"):
            s.update("instructions", "instruction_id", twice)
        assert s.query("SELECT status FROM instructions") == [{"status": "mined"}]
        once = Select("SELECT ? AS instruction_id, 'kept' AS status", [row["instruction_id"]])
        assert s.update("instructions", "instruction_id", once) == 1
        assert s.query("SELECT status FROM instructions") == [{"status": "kept"}]


@pytest.mark.parametrize("value", ["lots", "-5GB", "0GB", "2 parsecs", "1e9"])
def test_a_bad_duckdb_memory_setting_names_the_variable(tmp_path, monkeypatch, value):
    from warriorflow.errors import ConfigError

    monkeypatch.setenv("WARRIORFLOW_DUCKDB_MEMORY", value)
    with pytest.raises(ConfigError, match="WARRIORFLOW_DUCKDB_MEMORY") as err:
        RatingStore(tmp_path / "s.duckdb")
    assert "restore it from a backup" not in str(err.value)
    monkeypatch.setenv("WARRIORFLOW_DUCKDB_MEMORY", "512MiB")
    with RatingStore(tmp_path / "s.duckdb") as s:
        assert s.query("SELECT current_setting('memory_limit') AS m")[0]["m"].endswith("MiB")
