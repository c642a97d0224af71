"""The one ingest loop: how the single writer merges workers' result files into the rating store.

Workers (pods, subprocesses) never open the DuckDB file. They write JSON Lines result files to the
object store under their run's prefix. :func:`ingest_files` reads each file and

* skips it when ``ingested_files`` already holds its URI **with the same sha256** (re-running is a
  no-op), and refuses it with :class:`ResultFileChanged` when the URI was ingested with other content
  (result files are immutable; a silent skip would lose the new content);
* decodes it (the one JSONL codec), runs the step's check (a Great Expectations gate or structural
  checks) and moves a file that fails either to ``quarantine/`` with a JSON report beside it (never
  deleted), listing it in the ``quarantine`` table;
* otherwise hands its rows to the step's ``merge`` and records the file in ``ingested_files``, in one
  transaction: a merge that fails part-way commits nothing, and the file is quarantined whole.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from warriorflow.errors import StoreError
from warriorflow.store.jsonl import decode_jsonl, line_problems
from warriorflow.store.keys import quarantine_key
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore


class ResultFileChanged(StoreError):
    """A result file was ingested before with other content: result files are immutable."""


@dataclass(frozen=True)
class Rejection:
    """Why a result file is refused: the reason, details for its report, and files to keep beside it."""

    reason: str
    details: Mapping = field(default_factory=dict)
    beside: Mapping[str, bytes] = field(default_factory=dict)  # suffix -> bytes (e.g. ".gx.json": GX result)


Check = Callable[[list[dict]], Rejection | None]
CheckFile = Callable[[str, list[dict]], Rejection | None]  # a check that needs the file's key
Merge = Callable[[str, list[dict]], Mapping[str, int] | None]


@dataclass
class IngestReport:
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already ingested, unchanged
    quarantined: dict[str, str] = field(default_factory=dict)  # key -> reason
    rows: int = 0
    counts: Counter = field(default_factory=Counter)  # what the merges reported


def quarantine(objects: ObjectStore, key: str, stage: str, reason: str, details: Mapping | None = None,
               beside: Mapping[str, bytes] | None = None) -> str:
    """Copy ``key`` under quarantine/ with a report (and ``beside`` files) next to it, then remove the original.
    Returns the new key."""
    target = quarantine_key(stage, key)
    objects.put_bytes(target, objects.get_bytes(key))
    for suffix, data in (beside or {}).items():
        objects.put_bytes(target + suffix, data)
    report = {"source": objects.uri(key), "stage": stage, "reason": reason, "details": dict(details or {}),
              "quarantined_at": datetime.now(UTC).isoformat()}
    objects.put_bytes(target + ".report.json", json.dumps(report, indent=2, default=str).encode())
    objects.delete(key)
    return target


def record_quarantine(store: RatingStore, objects: ObjectStore, key: str, target: str, stage: str,
                      reason: str) -> None:
    """List a batch moved to ``target`` by quarantine() in the store's ``quarantine`` table."""
    store.upsert("quarantine", [{"batch_uri": objects.uri(key), "stage": stage, "reason": reason,
                                 "report_uri": objects.uri(target + ".report.json")}], key=["batch_uri"])


def quarantine_and_record(store: RatingStore, objects: ObjectStore, key: str, stage: str,
                          rejection: Rejection) -> str:
    target = quarantine(objects, key, stage, rejection.reason, rejection.details, rejection.beside)
    record_quarantine(store, objects, key, target, stage, rejection.reason)
    return target


def ingest_files(store: RatingStore, objects: ObjectStore, keys: Iterable[str], *, kind: str, stage: str,
                 merge: Merge, check: Check | None = None, required: Sequence[str] = (),
                 check_file: CheckFile | None = None) -> IngestReport:
    """Merge each result file in ``keys`` once (see the module doc); idempotent and quarantining.
    ``check_file(key, rows)`` runs after ``check(rows)`` for checks that need to know which file it is."""
    report = IngestReport()
    done = {r["uri"]: r["sha256"] for r in store.query("SELECT uri, sha256 FROM ingested_files")}
    for key in sorted(keys):
        data = objects.get_bytes(key)
        digest = hashlib.sha256(data).hexdigest()
        uri = objects.uri(key)
        if uri in done:
            if done[uri] != digest:
                raise ResultFileChanged(uri, "was ingested before with different content (sha256 "
                                        f"{done[uri][:12]}… then, {digest[:12]}… now); result files are immutable",
                                        "write a re-run to a new run id, or move this file to quarantine/ by hand")
            report.skipped.append(key)
            continue
        try:
            rows = decode_jsonl(data, required)
        except (ValueError, UnicodeDecodeError) as exc:
            rejection: Rejection | None = Rejection(str(exc), {"problems": line_problems(data, required)})
        else:
            rejection = check(rows) if check is not None else None
            if rejection is None and check_file is not None:
                rejection = check_file(key, rows)
        if rejection is None:
            try:
                with store.transaction():  # the file's rows and its ingested_files row: all or nothing
                    counts = merge(key, rows)
                    store.upsert("ingested_files", [{"uri": uri, "sha256": digest, "kind": kind,
                                                     "n_rows": len(rows)}], key=["uri"])
            except StoreError as exc:
                rejection = Rejection(str(exc).splitlines()[0])
        if rejection is not None:
            quarantine_and_record(store, objects, key, stage, rejection)
            report.quarantined[key] = rejection.reason
            continue
        report.ingested.append(key)
        report.rows += len(rows)
        report.counts.update(counts or {})
    return report


@dataclass(frozen=True)
class TableSpec:
    """Where the rows of a plain result file go (one table, upserted on its key)."""

    table: str
    key: tuple[str, ...]
    required: tuple[str, ...]
    update: tuple[str, ...] = ()


def ingest_results(store: RatingStore, objects: ObjectStore, prefix: str, spec: TableSpec,
                   stage: str, suffix: str = ".jsonl") -> IngestReport:
    """Merge every ``*suffix`` result file under ``prefix`` into ``spec.table`` (:func:`ingest_files`)."""

    def merge(_key: str, rows: list[dict]) -> None:
        store.upsert(spec.table, rows, key=spec.key, update=spec.update)

    keys = [k for k in objects.list(prefix) if k.endswith(suffix)]
    return ingest_files(store, objects, keys, kind=spec.table, stage=stage, merge=merge, required=spec.required)
