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

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
