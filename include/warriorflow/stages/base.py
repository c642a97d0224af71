"""What every stage shares: the report, the ``@stage`` decorator, and moving instructions on or dropping them.

A stage is a function over the stores decorated with ``@stage("name")``. It returns its counts (a
dict), or a :class:`Outcome` with notes and a value for the caller. The decorator times it, records
the counts in ``stage_runs`` (one row per attempt of a stage in a run) and returns a :class:`StageReport`.

Instructions move through statuses, each stage taking everything at its input status (whatever run
mined it), so re-running a stage finds nothing left to do:

    mined -> unique (dedup; the filter step drops from unique) -> scored (score) -> clean (decontaminate)
    -> selected (compress)

A dropped instruction keeps its row (status ``dropped``, with the reason) and gets a
``dropped_records`` row naming the stage and the reason.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from warriorflow.config import Config
from warriorflow.method import ids
from warriorflow.store.ingest import IngestReport
from warriorflow.store.rating_store import RatingStore

MINED, UNIQUE, SCORED, CLEAN, SELECTED, DROPPED = "mined", "unique", "scored", "clean", "selected", "dropped"


@dataclass
class StageReport:
    stage: str
    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    value: Any = None  # what the stage hands its caller (the plan's batch keys)

    def table(self) -> str:
        width = max([len(k) for k in self.counts] + [8])
        lines = [f"{self.stage} (run {self.run_id})"]
        lines += [f"  {k:<{width}} {v:>7}" for k, v in self.counts.items()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class Outcome:
    """A stage's result when it has more than counts to give."""

    counts: Mapping[str, int]
    notes: list[str] = field(default_factory=list)
    value: Any = None


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id() -> str:
    return "manual__" + now_utc().strftime("%Y-%m-%dT%H-%M-%S")


def record_stage_run(store: RatingStore, report: StageReport, started: datetime) -> StageReport:
    """Add this attempt's row to ``stage_runs`` (attempt 1, 2, ... per run and stage): a rerun never
    overwrites what an earlier attempt counted."""
    attempt = store.query("SELECT coalesce(max(attempt), 0) + 1 AS n FROM stage_runs WHERE run_id = ? AND stage = ?",
                          [report.run_id, report.stage])[0]["n"]
    store.upsert("stage_runs", [{"run_id": report.run_id, "stage": report.stage, "attempt": attempt,
                                 "counts": report.counts, "started_at": started, "finished_at": now_utc()}],
                 key=["run_id", "stage", "attempt"])
    return report


def stage(name: str) -> Callable[[Callable[..., Mapping[str, int] | Outcome]], Callable[..., StageReport]]:
    """Make a function over the stores a recorded stage (see the module doc). It must take ``store`` and
    ``run_id`` arguments."""

    def decorate(fn: Callable[..., Mapping[str, int] | Outcome]) -> Callable[..., StageReport]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run(*args, **kwargs) -> StageReport:
            bound = signature.bind(*args, **kwargs)
            store, run_id = bound.arguments["store"], bound.arguments["run_id"]
            started = now_utc()
            out = fn(*args, **kwargs)
            out = out if isinstance(out, Outcome) else Outcome(out)
            report = StageReport(name, run_id, dict(out.counts), list(out.notes), out.value)
            return record_stage_run(store, report, started)

        return run

    return decorate


def run_as_writer(config: Config, step: Callable[..., StageReport], run_id: str, **kwargs: Any) -> StageReport:
    """Run one stage as the store's single writer: open the rating store (and the object store, when the
    stage takes ``objects``), run it, close the store. What the CLI and the Airflow tasks both call."""
    from warriorflow.store.objects import open_objects

    takes_objects = "objects" in inspect.signature(step).parameters
    with RatingStore(config.duckdb_path) as store:
        args = (config, store, open_objects(config), run_id) if takes_objects else (config, store, run_id)
        return step(*args, **kwargs)


def at_status(store: RatingStore, status: str) -> list[dict]:
    """The instructions at ``status``, oldest first."""
    return store.query("SELECT * FROM instructions WHERE status = ? ORDER BY mined_at, instruction_id", [status])


def advance(store: RatingStore, rows: Iterable[Mapping], status: str, **extra) -> None:
    """Move instructions on to ``status``."""
    store.update("instructions", "instruction_id",
                 [{"instruction_id": r["instruction_id"], "status": status, **extra} for r in rows])


def _drop_rows(stage_name: str, reason: str, rows: Iterable[Mapping], run_id: str) -> list[dict]:
    return [{"record_id": ids.record_id(stage_name, r["instruction_id"]), "stage": stage_name, "reason": reason,
             "expert": r.get("expert"), "instruction_id": r["instruction_id"], "raw_text": r.get("text"),
             "provenance": {k: r.get(k) for k in ("temperature", "top_p", "seed", "run_id", "duplicate_of",
                                                   "difficulty", "benchmark", "task_id", "filter_detail")
                            if r.get(k) is not None},
             "run_id": run_id} for r in rows]


def drop(store: RatingStore, stage_name: str, drops: Mapping[str, list[Mapping]], run_id: str) -> None:
    """Mark instructions dropped, with their reason, and log each in dropped_records."""
    for reason, rows in drops.items():
        if not rows:
            continue
        store.update("instructions", "instruction_id",
                     [{"instruction_id": r["instruction_id"], "status": DROPPED, "drop_reason": reason,
                       "duplicate_of": r.get("duplicate_of")} for r in rows])
        store.upsert("dropped_records", _drop_rows(stage_name, reason, rows, run_id), key=["record_id"])


def fail_on_quarantine(objects, report: IngestReport, fix: str) -> None:
    """Raise, naming the first quarantined result file and why, when the step's ingest quarantined any (the
    good files are merged already; the step fails so the run shows it)."""
    if report.quarantined:
        from warriorflow.errors import StoreError

        key, reason = next(iter(report.quarantined.items()))
        more = f" (and {len(report.quarantined) - 1} more)" if len(report.quarantined) > 1 else ""
        raise StoreError(objects.uri(key), f"failed its checks and was quarantined{more}: {reason}",
                         f"see the report (and GX result) beside the file under quarantine/; {fix}")


def ingest_outcome(report: IngestReport) -> Outcome:
    """A writer step's outcome from its ingest loop: the merges' counts, the quarantined batches counted and
    each one named in a note (the Airflow task fails on them, after the good batches went in)."""
    counts = dict(report.counts)
    if report.quarantined:
        counts["quarantined_batches"] = len(report.quarantined)
    return Outcome({k: v for k, v in counts.items() if v},
                   [f"quarantined {key}: {reason}" for key, reason in report.quarantined.items()])
