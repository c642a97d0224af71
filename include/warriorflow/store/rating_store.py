"""The DuckDB rating store.

* The schema lives in ``sql/migrations/NNNN_name.sql``. Migrations are forward-only: they are
  applied in order when the store is opened for writing, each in its own transaction, and recorded
  in ``schema_migrations`` with their sha256. Editing an applied migration is an error; add a new
  one instead.
* **Single writer.** Only the ingest step writes. Workers (battle-batch pods, mining subprocesses)
  write result files to the object store and never open this file: in a process marked as a worker
  (``WARRIORFLOW_ROLE=worker``) opening the store for writing raises. DuckDB itself locks the file
  against a second writing process; that case is reported with what to do.
* Writes are upserts on content-addressed ids, so writing the same rows twice changes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from warriorflow.config import SQL_DIR
from warriorflow.errors import ConfigError, StoreError

if TYPE_CHECKING:  # pyarrow is imported on first write, not when a DAG file imports this module
    import pyarrow as pa

ROLE_ENV = "WARRIORFLOW_ROLE"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = SQL_DIR / "migrations") -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise StoreError(str(path), "is not named NNNN_name.sql", "rename the migration file")
        migrations.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise StoreError(str(directory), f"migration versions must be 1..N without gaps, found {versions}",
                         "number migrations consecutively")
    return migrations


def load_query(name: str, directory: Path = SQL_DIR / "queries") -> str:
    path = directory / f"{name}.sql"
    if not path.is_file():
        raise StoreError(f"named query '{name}'", f"{path} not found", "add the .sql file to sql/queries/")
    return path.read_text()


class RatingStore:
    """A connection to the rating store. ``read_only=True`` for readers (CLI, UI, reports)."""

    def __init__(self, path: str | Path, *, read_only: bool = False, migrations: Sequence[Migration] | None = None,
                 lock_wait_s: float | None = None):
        """``lock_wait_s``: how long to retry while another process holds DuckDB's file lock (a status-page or
        report reader holds it for a fraction of a second); default ``WARRIORFLOW_LOCK_WAIT_S`` or 10 s."""
        self.path = Path(path)
        self.read_only = read_only
        self._in_transaction = False
        if not read_only and os.environ.get(ROLE_ENV) == "worker":
            raise StoreError(
                f"rating store {self.path}",
                "a worker process tried to open it for writing",
                "workers write result files to the object store; the ingest step (the only writer) merges them",
            )
        if read_only and not self.path.exists():
            raise StoreError(f"rating store {self.path}", "does not exist yet",
                             "run a stage that writes it first (or `warriorflow doctor --init`)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"rating store {self.path}", f"its folder cannot be created ({exc.strerror or exc})",
                             "point paths.home / paths.duckdb at a writable directory, not a file") from None
        try:
            self.con = self._connect(lock_wait_s)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                raise StoreError(
                    f"rating store {self.path}",
                    f"is open for writing by another process ({text.splitlines()[0]})",
                    "only the ingest task writes the store: run writers in the single-slot "
                    "'warriorflow_db' pool, or wait for the other process to finish",
                ) from None
            raise StoreError(f"rating store {self.path}", f"cannot be opened: {text}",
                             "check the path and that the file is a DuckDB database") from None
        except duckdb.Error as exc:
            raise StoreError(f"rating store {self.path}", f"cannot be opened: {exc}",
                             "the file may be corrupt or from a newer DuckDB; restore it from a backup") from None
        known = list(migrations) if migrations is not None else load_migrations()
        try:
            if read_only:
                self._check_version(known)
            else:
                self.migrate(known)
        except duckdb.Error as exc:
            self.con.close()
            raise StoreError(f"rating store {self.path}", f"is damaged: {str(exc).splitlines()[0]}",
                             "the file may be truncated or overwritten; restore it from a backup, or move it away "
                             "to start a new store") from None

    def _connect(self, lock_wait_s: float | None):
        wait = float(os.environ.get("WARRIORFLOW_LOCK_WAIT_S", "10")) if lock_wait_s is None else lock_wait_s
        deadline, delay = time.monotonic() + wait, 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only, config=_duckdb_config())
                con.execute("SET enable_progress_bar = false")
                return con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchone()[0]
        if not exists:
            return 0
        return int(self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])

    def _check_version(self, known: Sequence[Migration]) -> None:
        current, latest = self.schema_version(), len(known)
        if current > latest:
            raise StoreError(f"rating store {self.path}",
                             f"has schema version {current}, newer than this warriorflow knows ({latest})",
                             "upgrade warriorflow")
        if current < latest and self.read_only:
            raise StoreError(f"rating store {self.path}",
                             f"has schema version {current}, this warriorflow needs {latest}",
                             "open it once for writing (any ingest step, or `warriorflow doctor --init`) to migrate")

    def migrate(self, known: Sequence[Migration]) -> list[int]:
        """Apply the migrations not yet applied; return their versions."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
            "sha256 VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
        )
        applied = {v: sha for v, sha in self.con.execute("SELECT version, sha256 FROM schema_migrations").fetchall()}
        self._check_version(known)
        for m in known:
            if m.version in applied and applied[m.version] != m.sha256:
                raise StoreError(f"migration {m.version:04d}_{m.name}",
                                 "was changed after it was applied to this store",
                                 "migrations are forward-only: restore the file and add a new migration")
        done = []
        for m in known:
            if m.version in applied:
                continue
            try:
                self.con.execute("BEGIN TRANSACTION")
                self.con.execute(m.sql)
                self.con.execute("INSERT INTO schema_migrations (version, name, sha256) VALUES (?, ?, ?)",
                                 [m.version, m.name, m.sha256])
                self.con.execute("COMMIT")
            except duckdb.Error as exc:
                self.con.execute("ROLLBACK")
                raise StoreError(f"migration {m.version:04d}_{m.name}", f"failed: {exc}",
                                 "fix the migration SQL; the store was left at the previous version") from None
            done.append(m.version)
        return done

    # ------------------------------------------------------------------ writes
    @contextlib.contextmanager
    def transaction(self) -> Iterator[RatingStore]:
        """Every write inside commits together, or none does (an exception rolls all of it back). A nested
        call joins the outer transaction."""
        self._require_writer()
        if self._in_transaction:
            yield self
            return
        self.con.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            self.con.execute("ROLLBACK")
            raise
        self._in_transaction = False
        self.con.execute("COMMIT")

    def _write(self, table: str, what: str, run: Callable[[], None]) -> None:
        """One bulk statement in its own transaction, or in the caller's (see :meth:`transaction`)."""
        own = not self._in_transaction
        try:
            if own:
                self.con.execute("BEGIN TRANSACTION")
            run()
            if own:
                self.con.execute("COMMIT")
        except duckdb.Error as exc:
            if own:
                self.con.execute("ROLLBACK")
            raise StoreError(f"table {table}", f"{what} failed: {exc}",
                             "check the rows against sql/migrations") from None
        except BaseException:
            if own:
                self.con.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _staged(self, table: str, rows: Rows, key: Sequence[str]) -> Iterator[tuple[str, list[str], int] | None]:
        """The rows of one write to ``table`` as a relation of the connection with an ordinal column: an Arrow table
        registered under a fresh name, or a :class:`Select` materialized in a temporary table (refused if it
        repeats ``key``). Yields (its name, its columns, its row count), or None when there are no rows;
        unregistered (dropped) afterwards. After a failed statement the transaction is aborted and DuckDB refuses
        even that cleanup; the rollback that follows removes them, and the failure that matters is the
        statement's own, so the cleanup's is not raised over it."""
        name = f"_wf_rows_{next(_REGISTERED)}"
        if isinstance(rows, Select):
            self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT *, row_number() OVER () AS {_ORD} "
                             f"FROM ({rows.sql})", rows.params or None)
            try:
                columns = [d[0] for d in self.con.execute(f"SELECT * EXCLUDE ({_ORD}) FROM {name} LIMIT 0").description]
                n = self.con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                if n:
                    self._unique_keys(table, name, key)
                yield (name, columns, n) if n else None
            finally:
                with contextlib.suppress(duckdb.Error):
                    self.con.execute(f"DROP TABLE IF EXISTS temp.{name}")
            return
        source = _arrow_rows(rows)
        if source is None or source.num_rows == 0:
            yield None
            return
        self.register(name, _with_ordinal(source))
        try:
            yield name, list(source.column_names), source.num_rows
        finally:
            with contextlib.suppress(duckdb.Error):
                self.unregister(name)

    def _unique_keys(self, table: str, name: str, key: Sequence[str]) -> None:
        """A :class:`Select`'s rows have no order DuckDB keeps (a parallel scan), so which of two rows with one key
        would win is undefined: refused."""
        keys = ", ".join(key)
        dup = self.con.execute(f"SELECT {keys} FROM {name} GROUP BY ALL HAVING count(*) > 1 LIMIT 1").fetchone()
        if dup is not None:
            raise StoreError(f"table {table}", f"the rows to write repeat the key ({keys}) = {tuple(dup)!r}",
                             "a SELECT given to upsert/update must yield each key once (aggregate or DISTINCT ON)")

    def upsert(self, table: str, rows: Rows, key: Sequence[str], update: Sequence[str] = ()) -> int:
        """Insert rows; on a key conflict leave the row (content-addressed) or update ``update`` columns.

        ``rows`` are dicts (every row names the columns of the first; a missing one is NULL), an Arrow table, or a
        :class:`Select` whose rows never pass through Python. They go in as one ``INSERT ... SELECT`` from the
        rows registered as an Arrow table (a Select: materialized in a temporary table), with the semantics of
        inserting them one by one: of rows repeating a key, the first is inserted (or, when the key is stored,
        left out) and the last one's ``update`` columns win (a Select, whose order DuckDB does not keep, must not
        repeat a key: refused). Returns
        the number of rows sent. All rows are written in one transaction.
        """
        self._require_writer()
        for ident in (table, *key, *update):
            if not _IDENT.match(ident):
                raise StoreError(f"table {table}", f"bad identifier {ident!r}", "use lower_snake_case names")
        conflict = f"ON CONFLICT ({', '.join(key)}) " + (
            "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in update) if update else "DO NOTHING"
        )
        sent = 0

        def run() -> None:
            nonlocal sent
            with self._staged(table, rows, key) as staged:
                if staged is None:
                    return
                name, columns, sent = staged
                _check_idents(table, columns)
                cols = ", ".join(columns)
                select = _collapsed(self.con, name, columns, key, keep_last=update)
                self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM ({select}) {conflict}")

        if isinstance(rows, Select) or _has_rows(rows):
            self._write(table, "upsert", run)
        return sent

    def update(self, table: str, key: str, rows: Rows) -> int:
        """Set the given columns of existing rows, found by ``key`` (every row names the same columns; of rows
        repeating a key the last wins). One ``UPDATE ... FROM`` the rows registered as an Arrow table (or a
        :class:`Select`)."""
        self._require_writer()
        for ident in (table, key):
            if not _IDENT.match(ident):
                raise StoreError(f"table {table}", f"bad identifier {ident!r}", "use lower_snake_case names")
        sent = 0

        def run() -> None:
            nonlocal sent
            with self._staged(table, rows, [key]) as staged:
                if staged is None:
                    return
                name, all_columns, sent = staged
                _check_idents(table, all_columns)
                columns = [c for c in all_columns if c != key]
                if not columns:
                    return
                select = _collapsed(self.con, name, [key, *columns], [key], keep_last=columns)
                self.con.execute(f"UPDATE {table} SET {', '.join(f'{c} = u.{c}' for c in columns)} "
                                 f"FROM ({select}) u WHERE {table}.{key} = u.{key}")

        if isinstance(rows, Select) or _has_rows(rows):
            self._write(table, "update", run)
        return sent

    def _require_writer(self) -> None:
        if self.read_only:
            raise StoreError(f"rating store {self.path}", "is open read-only", "writes go through the ingest step")

    # ------------------------------------------------------------------ reads
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        try:
            cur = self.con.execute(sql, params or [])
        except (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException) as exc:
            raise StoreError(f"rating store {self.path}", f"cannot be read: {str(exc).splitlines()[0]}",
                             "the file may be damaged; restore it from a backup") from None
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def stream(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None,
               rows: int = 1 << 16) -> pa.RecordBatchReader:
        """``sql``'s result as Arrow record batches of up to ``rows`` rows, produced as they are read (a
        result too big for memory is never held whole). Run nothing else on the store until it is read."""
        try:
            self.con.complete()  # a partly read execute() result (a fetchone) would block a streamed one
            return self.con.sql(sql, params=params or None).to_arrow_reader(rows)
        except (duckdb.IOException, duckdb.SerializationException, duckdb.InternalException) as exc:
            raise StoreError(f"rating store {self.path}", f"cannot be read: {str(exc).splitlines()[0]}",
                             "the file may be damaged; restore it from a backup") from None

    def register(self, name: str, table: pa.Table) -> None:
        """Make an Arrow table queryable as ``name`` on this connection (until :meth:`unregister`)."""
        self.con.complete()  # a partly read execute() result would block the registration
        self.con.register(name, table)

    def unregister(self, name: str) -> None:
        self.con.complete()
        self.con.unregister(name)

    def named(self, name: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        return self.query(load_query(name), params)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> RatingStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


MEMORY_ENV = "WARRIORFLOW_DUCKDB_MEMORY"
DEFAULT_MEMORY = "2GB"


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)


def _duckdb_config() -> dict[str, Any]:
    """DuckDB's settings for every connection: its memory (``WARRIORFLOW_DUCKDB_MEMORY``, default 2GB; beyond it
    joins, sorts and aggregates spill to ``<store>.tmp``)."""
    memory = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY
    size = _MEMORY.match(memory)
    if size is None or not float(size.group(1)) > 0:
        raise ConfigError(f"environment variable {MEMORY_ENV}", f"{memory!r} is not an amount of memory",
                          "set it to a size such as 2GB, 512MB or 4GiB, or unset it for the default (2GB)")
    return {"memory_limit": memory}


def _to_db(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


@dataclass(frozen=True)
class Select:
    """Rows for :meth:`RatingStore.upsert` / :meth:`RatingStore.update` given as a SELECT on the store's
    connection (over its tables, temporary tables or a registered Arrow table): written without passing
    through Python."""

    sql: str
    params: Sequence[Any] | Mapping[str, Any] | None = None


Rows = "Iterable[dict[str, Any]] | pa.Table | Select"
_REGISTERED = itertools.count()


def _has_rows(rows: Any) -> bool:
    """False for an empty list (nothing to write, no transaction); anything else is looked at when written."""
    return not (isinstance(rows, (list, tuple)) and not rows)


def _check_idents(table: str, columns: Sequence[str]) -> None:
    for ident in columns:
        if not _IDENT.match(ident):
            raise StoreError(f"table {table}", f"bad identifier {ident!r}", "use lower_snake_case names")
_ORD = "_wf_ord"


def _arrow_rows(rows: Iterable[dict[str, Any]] | pa.Table) -> pa.Table | None:
    """Rows as an Arrow table: dict values become JSON text (sorted keys), column types are inferred."""
    import pyarrow as pa

    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return None
    columns = list(rows[0])
    arrays = []
    for c in columns:
        values = [_to_db(r.get(c)) for r in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
            raise StoreError(f"column {c}", f"its values cannot be written together: {exc}",
                             "give every row of a column one type (numbers, text, lists of text, ...)") from None
    return pa.Table.from_arrays(arrays, names=columns)


def _with_ordinal(source: pa.Table) -> pa.Table:
    import pyarrow as pa

    return source.append_column(_ORD, pa.array(range(source.num_rows), type=pa.int64()))


def _collapsed(con: duckdb.DuckDBPyConnection, name: str, columns: Sequence[str], key: Sequence[str],
               keep_last: Sequence[str]) -> str:
    """A SELECT of the registered rows with one row per key, as inserting them one at a time leaves it: the
    first row of a key, with the last row's ``keep_last`` columns. Rows with distinct keys pass through."""
    keys = ", ".join(key)
    dupes = con.execute(f"SELECT count(*) - count(DISTINCT ({keys})) FROM {name}").fetchone()[0]
    cols = ", ".join(columns)
    if not dupes:
        return f"SELECT {cols} FROM {name}"
    firsts = (f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {_ORD}) AS _wf_n "
              f"FROM {name}) WHERE _wf_n = 1")
    if not keep_last:
        return f"SELECT {cols} FROM ({firsts})"
    lasts = (f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {_ORD} DESC) AS _wf_n "
             f"FROM {name}) WHERE _wf_n = 1")
    picked = ", ".join(f"l.{c} AS {c}" if c in keep_last else f"f.{c} AS {c}" for c in columns)
    on = " AND ".join(f"f.{k} IS NOT DISTINCT FROM l.{k}" for k in key)
    return f"SELECT {picked} FROM ({firsts}) f JOIN ({lasts}) l ON {on}"
