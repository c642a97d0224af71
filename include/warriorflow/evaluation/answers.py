"""Prompts for each benchmark kind, and turning a model's reply into the text the check program needs.

Replies are untrusted text: extraction is parsing only (regex and ``ast.parse``), never execution.
"""

from __future__ import annotations

import ast
import re

from warriorflow.evaluation.problems import EvalProblem
from warriorflow.inference.base import Conversation

SYSTEM = "You are an expert Python programmer. Answer with correct, complete code."
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)
_ANSWER = re.compile(r"\[ANSWER\](.*?)(?:\[/ANSWER\]|\Z)", re.S)


def conversation(problem: EvalProblem) -> Conversation:
    """The chat prompt for one problem (greedy, pass@1)."""
    r, kind = problem.record, problem.kind
    if kind in ("humaneval", "humanevalplus"):
        user = ("Complete the following Python function. Reply with the complete function (including its "
                f"signature) in one ```python code block.\n\n```python\n{r['prompt'].rstrip()}\n```")
    elif kind in ("mbpp", "mbppplus"):
        task = r["prompt"].strip().strip("'\"").strip()
        example = next((ln.strip() for ln in str(r.get("assertion", "")).splitlines() if ln.strip()), "")
        user = (f"{task}\nName the function `{r['entry_point']}`."
                + (f" Your code should pass this test:\n{example}\n" if example else "\n")
                + "Reply with the Python code in one ```python code block.")
    elif kind == "cruxeval_output":
        user = ("Here is a Python function and an assertion with an input. Complete the assertion with the literal "
                "value the function returns on that input (no function calls).\n\n"
                f"```python\n{r['code']}\nassert f({r['input']}) == ??\n```\n\n"
                "Reply with the completed assertion between [ANSWER] and [/ANSWER], e.g. "
                "[ANSWER]assert f(1) == 2[/ANSWER].")
    elif kind == "cruxeval_input":
        user = ("Here is a Python function and the output it should return. Find any input such that executing "
                "the function on it returns that output.\n\n"
                f"```python\n{r['code']}\nassert f(??) == {r['output']}\n```\n\n"
                "Reply with the completed assertion between [ANSWER] and [/ANSWER], e.g. "
                "[ANSWER]assert f(1) == 2[/ANSWER].")
    elif kind == "ds1000":
        user = f"{r['prompt'].rstrip()}\n\nReply with the code that replaces the solution placeholder in one " \
               "```python code block."
    else:
        raise ValueError(f"no prompt for benchmark kind {kind}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def code_blocks(text: str) -> list[str]:
    """Fenced code blocks in order (an unclosed last fence runs to the end of the text)."""
    return [m.group(2) for m in _FENCE.finditer(text)]


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code of a reply: the first block defining ``entry_point``, else the first block, else the text."""
    blocks = code_blocks(text)
    if entry_point:
        pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.M)
        for block in blocks:
            if pattern.search(block):
                return block
    if blocks:
        return blocks[0]
    return text


def defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.M) is not None


def humaneval_completion(prompt: str, reply: str, entry_point: str) -> str:
    """The text that follows the prompt in the official format.

    A reply with the whole function (the usual chat answer) becomes ``pass`` for the prompt's body and
    then the reply's code, which redefines the function with everything it imports and calls; a reply
    with only the body is used as the body.
    """
    code = extract_code(reply, entry_point)
    if defines(code, entry_point):
        return "    pass\n\n" + code
    return code


def solution_program(problem: EvalProblem, reply: str) -> str:
    """A whole program that defines the entry point (EvalPlus kinds, DS-1000)."""
    if problem.kind == "ds1000":
        return extract_code(reply)
    code = extract_code(reply, problem.entry_point)
    if problem.kind == "humanevalplus":
        return problem.record["prompt"] + humaneval_completion(problem.record["prompt"], reply, problem.entry_point)
    return code


def cruxeval_prediction(reply: str, kind: str) -> str:
    """The predicted input (arguments) or output (value) from ``[ANSWER]assert f(X) == Y[/ANSWER]``.

    Falls back to the first ``assert`` line, then the first code block, then the raw text.
    """
    m = _ANSWER.search(reply)
    answer = m.group(1).strip() if m else ""
    if not answer:
        line = next((ln.strip() for ln in reply.splitlines() if ln.strip().startswith("assert ")), "")
        answer = line or (code_blocks(reply)[0].strip() if code_blocks(reply) else reply.strip())
    blocks = code_blocks(answer)
    if blocks:
        answer = blocks[0].strip()
    answer = answer.strip().strip("`").strip()
    parsed = _parse_assert(answer)
    if parsed is None:
        return answer
    args, value = parsed
    return args if kind == "cruxeval_input" else value


def _parse_assert(text: str) -> tuple[str, str] | None:
    """(argument source, value source) of ``assert f(args) == value``; None when it is not that shape."""
    first = text.splitlines()[0] if text else ""
    for candidate in (text, first):
        try:
            tree = ast.parse(candidate)
        except SyntaxError:
            continue
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
            continue
        test = tree.body[0].test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
            continue
        call, value = test.left, test.comparators[0]
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "f"):
            continue
        parts = [ast.get_source_segment(candidate, a) for a in call.args]
        parts += [f"{k.arg}={ast.get_source_segment(candidate, k.value)}" if k.arg else
                  f"**{ast.get_source_segment(candidate, k.value)}" for k in call.keywords]
        return ", ".join(p for p in parts if p is not None), ast.get_source_segment(candidate, value) or ""
    return None
