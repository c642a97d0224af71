"""The ingest step: the one writer that merges workers' result files into the rating store.

Workers (pods, subprocesses) never open the DuckDB file. They write JSON Lines result files to the
object store under their run's prefix. Ingest reads each file, upserts its rows on their
content-addressed ids and records the file in ``ingested_files``, so that ingesting the same file
again is a no-op. A file that cannot be parsed, or whose rows do not fit the table, is moved to
``quarantine/`` with a JSON report beside it; it is never deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from warriorflow.errors import StoreError
from warriorflow.store.object_store import ObjectStore
from warriorflow.store.rating_store import RatingStore

QUARANTINE_PREFIX = "quarantine"


@dataclass(frozen=True)
class TableSpec:
    """Where rows of one kind of result file go."""

    table: str
    key: tuple[str, ...]
    required: tuple[str, ...]
    update: tuple[str, ...] = ()


@dataclass
class IngestReport:
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already ingested, unchanged
    quarantined: dict[str, str] = field(default_factory=dict)  # key -> reason
    rows: int = 0


def parse_jsonl(data: bytes, required: Sequence[str]) -> list[dict]:
    """Rows of a JSON Lines file; ValueError naming the line for anything malformed."""
    rows = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {n} is not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {n} is a JSON {type(row).__name__}, not an object")
        missing = [c for c in required if row.get(c) is None]
        if missing:
            raise ValueError(f"line {n} lacks required field(s) {missing}")
        rows.append(row)
    return rows


def quarantine(objects: ObjectStore, key: str, stage: str, reason: str, details: dict | None = None) -> str:
    """Copy ``key`` under quarantine/ with a report beside it, then remove the original. Returns the new key."""
    target = f"{QUARANTINE_PREFIX}/{stage}/{key}"
    objects.put_bytes(target, objects.get_bytes(key))
    report = {"source": objects.uri(key), "stage": stage, "reason": reason, "details": details or {},
              "quarantined_at": datetime.now(UTC).isoformat()}
    objects.put_bytes(target + ".report.json", json.dumps(report, indent=2).encode())
    objects.delete(key)
    return target


def record_quarantine(store: RatingStore, objects: ObjectStore, key: str, target: str, stage: str,
                      reason: str) -> None:
    """List a batch moved to ``target`` by quarantine() in the store's ``quarantine`` table."""
    store.upsert("quarantine", [{"batch_uri": objects.uri(key), "stage": stage, "reason": reason,
                                 "report_uri": objects.uri(target + ".report.json")}], key=["batch_uri"])


def ingest_results(store: RatingStore, objects: ObjectStore, prefix: str, spec: TableSpec,
                   stage: str, suffix: str = ".jsonl") -> IngestReport:
    """Merge every result file under ``prefix`` into ``spec.table``; idempotent and quarantining."""
    report = IngestReport()
    done = {r["uri"]: r["sha256"] for r in store.query("SELECT uri, sha256 FROM ingested_files")}
    for key in objects.list(prefix):
        if not key.endswith(suffix):
            continue
        data = objects.get_bytes(key)
        digest = hashlib.sha256(data).hexdigest()
        uri = objects.uri(key)
        if uri in done:
            if done[uri] != digest:
                raise StoreError(uri, "was ingested before with different content; result files are immutable",
                                 "write re-runs to a new run prefix, or move the file to quarantine/ by hand")
            report.skipped.append(key)
            continue
        try:
            rows = parse_jsonl(data, spec.required)
            store.upsert(spec.table, rows, key=spec.key, update=spec.update)
        except (ValueError, UnicodeDecodeError, StoreError) as exc:
            reason = str(exc).splitlines()[0]
            record_quarantine(store, objects, key, quarantine(objects, key, stage, reason), stage, reason)
            report.quarantined[key] = reason
            continue
        store.upsert("ingested_files", [{"uri": uri, "sha256": digest, "kind": spec.table, "n_rows": len(rows)}],
                     key=["uri"])
        report.ingested.append(key)
        report.rows += len(rows)
    return report
