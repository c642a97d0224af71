"""Score model answers: build each problem's check program, run it in the sandbox, pass@1 (greedy).

``HARNESS_VERSION`` is recorded with every result: the package version plus a hash of the source of
everything that decides a verdict (the check programs, answer extraction, input types, the
sandbox launcher), so results from different harness code never compare silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from warriorflow import __version__
from warriorflow.evaluation import answers, programs
from warriorflow.evaluation.problems import EvalProblem, LoadedBenchmark
from warriorflow.sandbox import CheckProgram, Sandbox, SandboxLimits, SandboxResult

log = logging.getLogger(__name__)

_VERDICT_SOURCES = ("programs.py", "answers.py", "mbpp_inputs.py", "harness.py")
EVALPLUS_KINDS = ("mbpp", "mbppplus", "humanevalplus")


def _harness_version() -> str:
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in _VERDICT_SOURCES:
        h.update((here / name).read_bytes())
    for name in ("boot.py", "values.py"):
        h.update((here.parent / "sandbox" / name).read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


HARNESS_VERSION = _harness_version()


@dataclass(frozen=True)
class ProblemResult:
    task_id: str
    passed: bool
    reason: str  # a sandbox reason (passed, failed, error, timeout, ...) or ground_truth_error
    detail: str
    duration_s: float

    def as_dict(self) -> dict:
        return {"task_id": self.task_id, "passed": self.passed, "reason": self.reason, "detail": self.detail[:300],
                "duration_s": round(self.duration_s, 4)}


@dataclass(frozen=True)
class BenchmarkScore:
    name: str
    kind: str
    path: str
    data_sha256: str
    harness_version: str
    results: list[ProblemResult]
    n_total: int

    @property
    def n_problems(self) -> int:
        return len(self.results)

    @property
    def n_passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def pass_at_1(self) -> float:
        return self.n_passed / self.n_problems if self.results else 0.0

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.reason] = out.get(r.reason, 0) + 1
        return dict(sorted(out.items()))


def check_program(problem: EvalProblem, reply: str, expected_b64: str | None = None) -> CheckProgram:
    """The program that passes exactly when ``reply`` solves ``problem``."""
    kind, record = problem.kind, problem.record
    if kind == "humaneval":
        return programs.humaneval_program(record, answers.humaneval_completion(record["prompt"], reply,
                                                                               record["entry_point"]))
    if kind in EVALPLUS_KINDS:
        if expected_b64 is None:
            raise ValueError(f"{problem.task_id}: EvalPlus problems need the ground-truth outputs")
        return programs.evalplus_check_program(record, kind, answers.solution_program(problem, reply), expected_b64)
    if kind in ("cruxeval_input", "cruxeval_output"):
        return programs.cruxeval_program(record, kind, answers.cruxeval_prediction(reply, kind))
    if kind == "ds1000":
        return programs.ds1000_program(record, answers.solution_program(problem, reply))
    raise ValueError(f"unknown benchmark kind {kind}")


def _result(task_id: str, r: SandboxResult) -> ProblemResult:
    return ProblemResult(task_id, r.passed, r.reason, r.detail, r.duration_s)


def run_programs(task_ids: Sequence[str], progs: Sequence[CheckProgram | None], sandbox: Sandbox, workers: int,
                 missing_reason: Sequence[str] = (),
                 limits: Sequence[SandboxLimits | None] | None = None) -> list[ProblemResult]:
    """Run the programs (None: no program, recorded with ``missing_reason[i]``) and wrap the verdicts."""
    index = [i for i, p in enumerate(progs) if p is not None]
    ran = sandbox.run_many([progs[i] for i in index], workers=workers,
                           limits=[limits[i] for i in index] if limits is not None else None)
    by_index = dict(zip(index, ran))
    out = []
    for i, task_id in enumerate(task_ids):
        if i in by_index:
            out.append(_result(task_id, by_index[i]))
        else:
            out.append(ProblemResult(task_id, False, "ground_truth_error", missing_reason[i], 0.0))
    return out


TIME_FACTOR = 4.0  # a solution may use this many times the canonical solution's CPU time (EvalPlus-like)


def _limits_for(sandbox: Sandbox, cpu_s: float) -> SandboxLimits | None:
    """Raise CPU and wall limits for problems whose canonical solution itself is slow."""
    need = math.ceil(cpu_s * TIME_FACTOR) + 1
    if need <= sandbox.limits.cpu_s:
        return None
    return replace(sandbox.limits, cpu_s=need, wall_s=max(sandbox.limits.wall_s, need * 1.5))


def score_benchmark(bench: LoadedBenchmark, replies: Sequence[str], sandbox: Sandbox, *, workers: int = 2,
                    expected: dict[str, dict] | None = None) -> BenchmarkScore:
    """Score one reply per problem (same order as ``bench.problems``); ``expected``: from :func:`ground_truth`."""
    if len(replies) != len(bench.problems):
        raise ValueError(f"{bench.name}: {len(replies)} replies for {len(bench.problems)} problems")
    progs: list[CheckProgram | None] = []
    missing: list[str] = []
    limits: list[SandboxLimits | None] = []
    for problem, reply in zip(bench.problems, replies):
        truth = (expected or {}).get(problem.task_id) if problem.kind in EVALPLUS_KINDS else None
        limits.append(_limits_for(sandbox, truth.get("cpu_s", 0.0)) if truth else None)
        if problem.kind in EVALPLUS_KINDS and (truth is None or truth.get("expected") is None):
            progs.append(None)
            missing.append(f"no ground truth: {(truth or {}).get('error', 'not computed')}")
            continue
        progs.append(check_program(problem, reply, truth["expected"] if truth else None))
        missing.append("")
    results = run_programs([p.task_id for p in bench.problems], progs, sandbox, workers, missing, limits)
    return BenchmarkScore(bench.name, bench.kind, bench.path, bench.data_sha256, HARNESS_VERSION, results,
                          bench.n_total)


def score_humaneval_completions(problems: Sequence[EvalProblem], completions: Sequence[str], sandbox: Sandbox,
                                *, workers: int = 2) -> list[ProblemResult]:
    """Official-format HumanEval completions (the text after the prompt), e.g. for the cross-check."""
    progs = [programs.humaneval_program(p.record, c) for p, c in zip(problems, completions, strict=True)]
    return run_programs([p.task_id for p in problems], progs, sandbox, workers)


# --------------------------------------------------------------------------------------------------
# EvalPlus ground truth: the canonical solution's outputs, computed in the sandbox and cached
# --------------------------------------------------------------------------------------------------


def ground_truth(bench: LoadedBenchmark, sandbox: Sandbox, cache_dir: Path | None, *,
                 workers: int = 2) -> dict[str, dict]:
    """task_id -> {expected: base64 pickle of the canonical outputs on base + plus inputs, cpu_s} or {error}.

    Cached per data file (sha256) and harness version in ``cache_dir``; only missing tasks are run.
    """
    if bench.kind not in EVALPLUS_KINDS:
        return {}
    family = "humanevalplus" if bench.kind == "humanevalplus" else "mbpp"
    cache_file = None
    cached: dict[str, dict] = {}
    if cache_dir is not None:
        cache_file = cache_dir / f"expected-{family}-{bench.data_sha256[:16]}-{HARNESS_VERSION}.json"
        if cache_file.is_file():
            try:
                cached = json.loads(cache_file.read_text())
            except (OSError, json.JSONDecodeError):
                log.warning("ground-truth cache %s is unreadable; recomputing", cache_file)
                cached = {}
    todo = [p for p in bench.problems if p.task_id not in cached]
    if todo:
        big = replace(sandbox.limits, stdout_bytes=max(sandbox.limits.stdout_bytes, 256 << 20),
                      wall_s=max(sandbox.limits.wall_s, 120.0), cpu_s=max(sandbox.limits.cpu_s, 60),
                      memory_mb=max(sandbox.limits.memory_mb, 4096))
        gt_box = replace(sandbox, limits=big)
        ran = gt_box.run_many([programs.ground_truth_program(p.record, p.kind) for p in todo], workers=workers)
        for p, r in zip(todo, ran):
            blob, cpu_s = programs.parse_ground_truth(r.stdout) if r.passed else (None, 0.0)
            cached[p.task_id] = ({"expected": blob, "cpu_s": cpu_s} if blob else
                                 {"expected": None, "error": f"{r.reason}: {r.detail}"[:300]})
            if not blob:
                log.warning("%s %s: the canonical solution failed in the sandbox (%s %s)", bench.name, p.task_id,
                            r.reason, r.detail)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cached))
            tmp.replace(cache_file)
    return {p.task_id: cached[p.task_id] for p in bench.problems}
