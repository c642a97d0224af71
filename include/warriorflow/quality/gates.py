"""Great Expectations (GX Core 1.x) gates at the instruction pipeline's stage boundaries.

Each gate turns a batch of rows (the dicts a stage writes to its result file) into a pandas
DataFrame and validates it against an Expectation Suite built in code:

* :func:`gate_mined` -- mined instructions: unique ``instruction_id``; non-null ``instruction_id``,
  ``text``, ``expert``, ``run_id``, ``mined_at``; text length in ``[min_chars, max_chars]``;
  ``temperature`` and ``top_p`` on the sampling grid; ``expert`` in the registry.
* :func:`gate_scored` -- difficulty scores ``{instruction_id, judge, score, valid}``: non-null
  ``instruction_id``, ``judge``, ``valid``; unique ``(instruction_id, judge)``; where ``valid`` is true
  the score is non-null and in ``[1, 10]``; where ``valid`` is false the score is null. The two
  conditional rules are GX-native *conditional expectations*: ``row_condition=Column("valid") == True``
  (a ``great_expectations.expectations.row_conditions.Column`` condition object, the 1.9+ syntax; the
  string ``row_condition`` + ``condition_parser`` form is deprecated since GX 1.9).
* :func:`gate_selected` -- the compressed selection: unique, non-null ``instruction_id``; non-null,
  unique ``pick_rank`` >= 0; non-null ``embed_model``; at most ``max_rows`` rows when given.

Semantics worth knowing:

* Column-map expectations (in-set, between, lengths) skip nulls; nullness is checked by its own
  not-null expectation. A ``temperature``/``top_p`` that is null is therefore not "off the grid".
* ``expect_column_values_to_be_unique`` counts *every* row of a duplicated value: two rows sharing an
  id are 2 unexpected rows.
* A column the rows lack entirely is added as all-null, so a missing required field fails its
  not-null expectation (one unexpected row per row) instead of raising inside GX.
* An empty batch passes every gate with ``n_rows == 0`` (there is nothing wrong in it); whether an
  empty stage output is acceptable is the caller's decision.

GX runs offline: ``GX_ANALYTICS_ENABLED`` is set to ``false`` (unless already set) before GX is
imported, and the context's ``analytics_enabled`` is switched off as well. GX is imported lazily, on
the first gate, so importing this module stays cheap (importing GX takes about 2 s). One ephemeral
(in-memory) context serves the whole process: one pandas Data Source, and per distinct gate
configuration one dataframe Data Asset, whole-dataframe Batch Definition, Expectation Suite and
Validation Definition, created on first use and reused. A Validation Definition's ``run()`` keeps its
result in the context's in-memory results store, so the context is rebuilt every
``RECYCLE_AFTER`` runs to bound memory. Gates are serialised by a lock (GX contexts are not
thread-safe).
"""

from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # before great_expectations is ever imported

import hashlib
import json
import math
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from warriorflow.store.ingest import Rejection, quarantine
from warriorflow.store.objects import ObjectStore

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.validation_definition import ValidationDefinition
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation

DATASOURCE = "warriorflow"
RESULT_FORMAT = "SUMMARY"  # counts, up to 20 unexpected values and their row indexes per expectation
RECYCLE_AFTER = 500  # validation runs kept in one context's in-memory results store

MINED_REQUIRED = ("instruction_id", "text", "expert", "run_id", "mined_at")
MINED_COLUMNS = (*MINED_REQUIRED, "temperature", "top_p")
SCORED_COLUMNS = ("instruction_id", "judge", "score", "valid")
SELECTED_COLUMNS = ("instruction_id", "pick_rank", "embed_model")
_DETAIL_KEYS = ("element_count", "unexpected_percent", "missing_count", "partial_unexpected_list",
                "partial_unexpected_index_list", "partial_unexpected_counts", "observed_value")


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedExpectation:
    expectation: str  # the GX expectation type, e.g. "expect_column_values_to_be_unique"
    column: str | None  # the column; "a,b" for a compound-column expectation; None for table-level ones
    unexpected_count: int  # rows that broke it (0 for table-level expectations: see details)
    details: dict  # kwargs, observed value, sample of unexpected values and row indexes, exception

    def describe(self) -> str:
        target = f"{self.expectation}({self.column})" if self.column else self.expectation
        if "exception" in self.details:
            return f"{target}: error: {self.details['exception']}"
        if self.unexpected_count:
            return f"{target}: {self.unexpected_count} row{'s' if self.unexpected_count != 1 else ''}"
        if "observed_value" in self.details:
            return f"{target}: observed {self.details['observed_value']}"
        return f"{target}: failed"


@dataclass(frozen=True)
class GateResult:
    gate: str  # "mined" | "scored" | "selected"
    success: bool
    failed: list[FailedExpectation]
    result_json: dict  # the GX ExpectationSuiteValidationResult, .to_json_dict() (NaN -> null)
    n_rows: int

    def summary(self) -> str:
        if self.success:
            return f"{self.gate} batch passed {len(self.result_json.get('results', []))} expectation(s) " \
                   f"on {self.n_rows} row(s)"
        return (f"{self.gate} batch failed {len(self.failed)} expectation(s): "
                + "; ".join(f.describe() for f in self.failed))

    def failed_counts(self) -> dict[str, int]:
        """``{"expectation(column)": unexpected_count}`` of the failed expectations (handy in tests and logs)."""
        return {(f"{f.expectation}({f.column})" if f.column else f.expectation): f.unexpected_count
                for f in self.failed}


# --------------------------------------------------------------------------------------------------
# The process-wide GX context
# --------------------------------------------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.context: EphemeralDataContext | None = None
        self.validations: dict[str, ValidationDefinition] = {}
        self.runs = 0


_STATE = _State()


def _context_locked() -> EphemeralDataContext:
    if _STATE.context is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.enable_analytics(False)
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        context.data_sources.add_pandas(name=DATASOURCE)
        _STATE.context = context
        _STATE.validations = {}
        _STATE.runs = 0
    return _STATE.context


def gx_context() -> EphemeralDataContext:
    """The process's ephemeral GX context, created on first use (offline, no progress bars)."""
    with _STATE.lock:
        return _context_locked()


def reset_context() -> None:
    """Drop the cached context, its suites and stored results; the next gate builds a fresh one."""
    with _STATE.lock:
        _STATE.context = None
        _STATE.validations = {}
        _STATE.runs = 0


def _validation_locked(gate: str, params: Any, build: Callable[[], list[Expectation]]) -> ValidationDefinition:
    key = json.dumps([gate, params], sort_keys=True, default=str)
    name = f"{gate}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    validation = _STATE.validations.get(name)
    if validation is None:
        import great_expectations as gx

        context = _context_locked()
        batch_definition = (context.data_sources.get(DATASOURCE)
                            .add_dataframe_asset(name=name)
                            .add_batch_definition_whole_dataframe("whole"))
        suite = context.suites.add(gx.ExpectationSuite(name=name, meta={"gate": gate, "params": params}))
        for expectation in build():
            suite.add_expectation(expectation)
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch_definition, suite=suite))
        _STATE.validations[name] = validation
    return validation


def _frame(rows: Sequence[Mapping], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    frame = pd.DataFrame.from_records([dict(r) for r in rows])
    for c in columns:
        if c not in frame.columns:
            frame[c] = None
    return frame


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _exception_message(info: Any) -> str | None:
    """The message of a raised exception in a result's exception_info (flat, or keyed by metric)."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        return (info.get("exception_message") or "exception raised") if info.get("raised_exception") else None
    for nested in info.values():
        message = _exception_message(nested)
        if message:
            return message
    return None


def _failed(result_json: dict) -> list[FailedExpectation]:
    failed = []
    for r in result_json.get("results", []):
        if r.get("success"):
            continue
        config = r.get("expectation_config") or {}
        kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
        column = kwargs.get("column")
        if column is None and kwargs.get("column_list"):
            column = ",".join(kwargs["column_list"])
        res = r.get("result") or {}
        details: dict = {"kwargs": kwargs, **{k: res[k] for k in _DETAIL_KEYS if k in res}}
        message = _exception_message(r.get("exception_info"))
        if message:
            details["exception"] = message
        failed.append(FailedExpectation(config.get("type", "unknown"), column,
                                        int(res.get("unexpected_count") or 0), details))
    return failed


def _run(gate: str, rows: Sequence[Mapping], columns: Sequence[str], params: Any,
         build: Callable[[], list[Expectation]]) -> GateResult:
    frame = _frame(rows, columns)
    with _STATE.lock:
        if _STATE.runs >= RECYCLE_AFTER:
            reset_context()
        validation = _validation_locked(gate, params, build)
        result = validation.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
        _STATE.runs += 1
    result_json = _json_safe(result.to_json_dict())
    failed = _failed(result_json)
    return GateResult(gate, bool(result.success) and not failed, failed, result_json, len(frame))


# --------------------------------------------------------------------------------------------------
# The gates
# --------------------------------------------------------------------------------------------------


def gate_mined(rows: Sequence[Mapping], *, experts: Collection[str], temperatures: Collection[float],
               top_ps: Collection[float], min_chars: int, max_chars: int) -> GateResult:
    """Validate mined instruction rows (see the module docstring for the expectations)."""
    expert_set = sorted(set(experts))
    temperature_set = sorted({float(t) for t in temperatures})
    top_p_set = sorted({float(p) for p in top_ps})
    params = {"experts": expert_set, "temperatures": temperature_set, "top_ps": top_p_set,
              "min_chars": min_chars, "max_chars": max_chars}

    def build() -> list[Expectation]:
        import great_expectations.expectations as gxe

        return [
            gxe.ExpectColumnValuesToBeUnique(column="instruction_id"),
            *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in MINED_REQUIRED),
            gxe.ExpectColumnValueLengthsToBeBetween(column="text", min_value=min_chars, max_value=max_chars),
            gxe.ExpectColumnValuesToBeInSet(column="temperature", value_set=temperature_set),
            gxe.ExpectColumnValuesToBeInSet(column="top_p", value_set=top_p_set),
            gxe.ExpectColumnValuesToBeInSet(column="expert", value_set=expert_set),
        ]

    return _run("mined", rows, MINED_COLUMNS, params, build)


def gate_scored(rows: Sequence[Mapping]) -> GateResult:
    """Validate difficulty-score rows ``{instruction_id, judge, score, valid}``."""

    def build() -> list[Expectation]:
        import great_expectations.expectations as gxe
        from great_expectations.expectations.row_conditions import Column

        is_valid = Column("valid") == True  # noqa: E712 -- builds a GX condition object, not a bool
        is_invalid = Column("valid") == False  # noqa: E712
        return [
            *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("instruction_id", "judge", "valid")),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["instruction_id", "judge"]),
            gxe.ExpectColumnValuesToNotBeNull(column="score", row_condition=is_valid),
            gxe.ExpectColumnValuesToBeBetween(column="score", min_value=1, max_value=10, row_condition=is_valid),
            gxe.ExpectColumnValuesToBeNull(column="score", row_condition=is_invalid),
        ]

    return _run("scored", rows, SCORED_COLUMNS, {}, build)


def gate_selected(rows: Sequence[Mapping], *, max_rows: int | None) -> GateResult:
    """Validate the selected (compressed) instruction rows ``{instruction_id, pick_rank, embed_model, ...}``."""

    def build() -> list[Expectation]:
        import great_expectations.expectations as gxe

        expectations = [
            gxe.ExpectColumnValuesToBeUnique(column="instruction_id"),
            *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in SELECTED_COLUMNS),
            gxe.ExpectColumnValuesToBeUnique(column="pick_rank"),
            gxe.ExpectColumnValuesToBeBetween(column="pick_rank", min_value=0),
        ]
        if max_rows is not None:
            expectations.append(gxe.ExpectTableRowCountToBeBetween(min_value=0, max_value=max_rows))
        return expectations

    return _run("selected", rows, SELECTED_COLUMNS, {"max_rows": max_rows}, build)


VOTE_COLUMNS = ("vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict")


def gate_votes(rows: Sequence[Mapping], *, judges: Collection[str]) -> GateResult:
    """Validate a battle file's vote rows: unique ids, one vote per (battle, judge, shown order), a registered
    judge, a known shown order, and raw and competitor verdicts from their sets."""
    judge_set = sorted(set(judges))

    def build() -> list[Expectation]:
        import great_expectations.expectations as gxe

        return [
            gxe.ExpectColumnValuesToBeUnique(column="vote_id"),
            *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in VOTE_COLUMNS),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["battle_id", "judge", "shown_order"]),
            gxe.ExpectColumnValuesToBeInSet(column="judge", value_set=judge_set),
            gxe.ExpectColumnValuesToBeInSet(column="shown_order", value_set=["attacker_first", "defender_first"]),
            gxe.ExpectColumnValuesToBeInSet(column="raw_verdict", value_set=["A", "B", "tie", "invalid"]),
            gxe.ExpectColumnValuesToBeInSet(column="verdict", value_set=["attacker", "defender", "tie", "invalid"]),
        ]

    return _run("votes", rows, VOTE_COLUMNS, {"judges": judge_set}, build)


BATTLE_COLUMNS = ("battle_id", "attacker_response_id", "defender_response_id")


def gate_battles(rows: Sequence[Mapping]) -> GateResult:
    """Validate a battle file's battle rows: one per battle, both response ids present."""

    def build() -> list[Expectation]:
        import great_expectations.expectations as gxe

        return [gxe.ExpectColumnValuesToBeUnique(column="battle_id"),
                *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in BATTLE_COLUMNS)]

    return _run("battles", rows, BATTLE_COLUMNS, {}, build)


# --------------------------------------------------------------------------------------------------
# Quarantine
# --------------------------------------------------------------------------------------------------


def rejection(result: GateResult) -> Rejection:
    """What the ingest loop quarantines a failing batch with: the summary, the failed expectations in its
    report, and the GX result beside it as ``<quarantined key>.gx.json``."""
    if result.success:
        raise ValueError(f"the {result.gate} gate passed; only a failing batch is rejected")
    details = {"gate": result.gate, "n_rows": result.n_rows, "failed": [asdict(f) for f in result.failed]}
    gx = json.dumps(result.result_json, indent=2, sort_keys=True, allow_nan=False).encode() + b"\n"
    return Rejection(result.summary(), details, {".gx.json": gx})


def quarantine_batch(objects: ObjectStore, key: str, stage: str, result: GateResult) -> str:
    """Move the failing batch ``key`` under quarantine/ (with the ingest report and the GX result beside it).
    Returns the quarantined key."""
    r = rejection(result)
    return quarantine(objects, key, stage, r.reason, r.details, r.beside)
