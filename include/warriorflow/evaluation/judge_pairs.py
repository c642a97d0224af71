"""`warriorflow judges make-pairs`: a seeded labeled pair set from benchmark canonical solutions and mutants.

For each HumanEval problem (seeded order): the instruction asks to complete the problem's function;
one response is the canonical solution, the other a single-site mutant of it
(:mod:`warriorflow.method.mutants`) that **fails the benchmark's tests in the sandbox** (the canonical
solution must pass them in the same run). Both are written the same way (``ast.unparse``, in a
``python`` fence), so they differ only in the mutation. Which side is correct is drawn from the seed, so
the label says nothing about position. Mutants that only time out are not used (they would test the
judge's patience, not its reading). The responses leave out the docstring (the instruction holds it),
and problems longer than ``max_chars`` (prompt + canonical solution) are skipped: tiny CPU judges
pay for every prompt token, and a long pair costs several times a battle's judge call.

The set is for calibration only: the HumanEval prompts are a decontamination benchmark, and
``judges.make-pairs`` output is also listed there by the embedded settings, so no instruction like
these reaches training data.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from warriorflow.config import Config
from warriorflow.evaluation.harness import check_program, run_programs
from warriorflow.evaluation.jobs import sandbox_from_config
from warriorflow.evaluation.problems import load_benchmark
from warriorflow.method.mutants import canonical_source, mutants

INSTRUCTION = "Complete the following Python function.\n\n```python\n{prompt}\n```"
TRIES_PER_PROBLEM = 6
BROKEN_REASONS = ("failed", "error")  # the benchmark's checks failed or raised: a broken program


def _fence(source: str) -> str:
    return f"```python\n{source}\n```"


def make_pairs(config: Config, n: int, seed: int = 0, *, progress: Callable[[str], None] = lambda _m: None,
               path: Path | None = None, max_chars: int | None = 700) -> list[dict]:
    """Up to ``n`` labeled pairs (module doc); each ``{instruction, response_a, response_b, label, source}``."""
    bench = load_benchmark("humaneval", "humaneval", path)
    rng = random.Random(seed)
    problems = list(bench.problems)
    rng.shuffle(problems)
    sandbox = sandbox_from_config(config)
    workers = config.settings.evaluation.sandbox.workers
    pairs: list[dict] = []
    for problem in problems:
        if len(pairs) >= n:
            break
        record = problem.record
        program = record["prompt"] + record["canonical_solution"]
        if max_chars is not None and len(program) > max_chars:
            continue
        candidates = mutants(program, record["entry_point"], docstrings=False)
        rng.shuffle(candidates)
        candidates = candidates[:TRIES_PER_PROBLEM]
        if not candidates:
            continue
        correct = canonical_source(program, docstrings=False)
        replies = [_fence(correct)] + [_fence(m.source) for m in candidates]
        results = run_programs([problem.task_id] * len(replies), [check_program(problem, r) for r in replies],
                               sandbox, workers)
        if not results[0].passed:
            continue  # the canonical solution must pass as we write it
        broken = next((m for m, r in zip(candidates, results[1:]) if r.reason in BROKEN_REASONS), None)
        if broken is None:
            continue
        label = rng.choice("ab")
        good, bad = _fence(correct), _fence(broken.source)
        pairs.append({"instruction": INSTRUCTION.format(prompt=record["prompt"].strip()),
                      "response_a": good if label == "a" else bad, "response_b": bad if label == "a" else good,
                      "label": label, "source": f"{problem.task_id}: {broken.description}"})
        progress(f"{len(pairs)}/{n} {problem.task_id}: {broken.description}")
    return pairs


def write_pairs(pairs: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    tmp.replace(out)
