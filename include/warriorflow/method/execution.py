"""Execution evidence for a battle (pure functions): what the two responses' code does when it runs.

For each battle the arena extracts the Python code of both responses and the tests found in the
instruction and in *either* response, runs each response's code against *all* of them in the
sandbox (CodeT's dual agreement), and keeps a per-response record. The record feeds two switchable
things: a compact summary in the judge prompt (``arena.execution.in_prompt``) and a deterministic
``execution`` vote in the local score (``arena.execution.vote``). This module builds the programs
and reads their results; running them is the worker's (``warriorflow.stages.execution``).

**Code** (:func:`extract_code`): the fenced blocks labelled ``python``/``py``/``python3``/``py3``,
plus unlabelled blocks that parse as Python and hold more than bare expressions, joined in order;
blocks that are doctest sessions (first line ``>>>``) and blocks in other languages are left out.
Without any fence, the whole text when it parses as Python code, else the longest run of lines from
the first ``def``/``class``/``import``/``from``/``@`` line that parses. No code: ``""``.

**What runs** (:func:`runnable`): the code without its top-level ``assert`` statements and without
``if __name__ == "__main__":`` blocks (both are read as tests instead; the module runs as
``__main__``, so a main block would otherwise run and typically wait on ``input()``). The module
keeps everything else; stdin is empty, so a top-level ``input()`` raises EOFError and the code
"does not run to the end", like any other exception at import.

**Tests** (:func:`extract_tests`), each with its origin (instruction | attacker | defender) and a
stable id (a hash of the test itself, not of its origin: the same test found twice is one test,
kept with its first origin in that order):

* ``assert`` statements, possibly spanning lines, at top level, in main blocks, in ``test_*``
  functions, and ``self.assertEqual/True/False/In/IsNone/AlmostEqual`` in unittest methods;
  ``assert a and b`` is two tests;
* doctest examples (``>>> expr`` and its expected output lines, continuation lines ``...``); a
  ``print(x)`` example compares ``str(x)``, an output that is not a Python literal compares ``repr(x)``;
  examples expecting a traceback or no output are skipped;
* one-line examples ``f(1, 2) -> 3`` (also ``=>``, ``==>``, ``➞``, ``→``, ``==``, ``=``, ``returns``,
  ``should return``) and ``print(f(1))  # Output: 3``, only when the left side is a call whose
  arguments are all literals and the right side is a literal. No other prose form is parsed.

Only these shapes become tests, so that a test cannot be a tautology and the candidate never sees an
expected value: a comparison (``==``, ``!=``, ``<``..., ``in``, ``is``) with at least one *literal*
operand (a Python literal, or ``set/list/tuple/dict/sorted/float/...`` of literals) and at least one
*probe* that calls something; ``assert probe`` / ``assert not probe`` where the probe is a call; and
``math.isclose(probe, literal)``. The launcher (trusted) evaluates the literals itself, asks the
candidate's process only for the probes' *values* (data, see :mod:`warriorflow.sandbox.values`)
and applies the comparison, ``not`` and ``isclose`` itself. A probe may not use lambdas, ``:=``,
names or attributes starting with ``_``, nor names that reach the system or the interpreter
(``exec``, ``eval``, ``open``, ``getattr``, ``os``, ``sys``, ``print``, ...), so a test taken from one
response cannot sabotage the other's process. ``assert True or x`` is no test at all.

**Which tests count** (:func:`plan_execution`): the names a test's probes use must be builtins or
defined at the top level of the code: an instruction test is kept when at least one response defines
its names (a response that does not define the function the task names fails it); a response's test
is kept only when *both* responses define its names (a test of a helper only its author has, or
written against its author's own function name, says nothing about the other). At most
:data:`MAX_TESTS_PER_ORIGIN` tests per origin.

**Is it a code task** (:func:`is_code_task`, a heuristic): the instruction holds code (a fence, a
``def``/``class``/``import`` line, a ``>>>`` example, an ``assert``) or a test, or it asks to
write/implement/fix/... a function/program/script/class/..., or names Python code, or reads "given
... return ...". Anything else ("explain the difference between ...") is not, and its battle gets
no execution evidence at all.

**The vote** (:func:`execution_vote`), CodeT-style dual agreement: with two candidates each consensus
group has one member, so a response's score is the number of tests it passes. In order:

1. not a code task, neither response with code, or a sandbox failure: no vote;
2. a response with no code never gets the execution vote: when only one response has code, that
   one wins if its code runs to the end, and there is no vote if it does not (nothing ran that
   could speak for the other);
3. exactly one response's code runs to the end: it wins (a syntax error, an exception at import,
   a timeout, a memory or output kill all lose to code that runs);
4. neither runs: no vote;
5. more *instruction* tests passed (the spec) wins;
6. more tests passed in all (instruction + attacker + defender) wins;
7. otherwise no vote: equal evidence, the LLM judges decide.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import hashlib
import json
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

ORIGINS = ("instruction", "attacker", "defender")
ROLES = ("attacker", "defender")
EXECUTOR = "sandbox"  # the "model" of an execute job: it loads none
RUN_STATUSES = ("error", "timeout", "memory", "output_limit", "killed", "signal")
"""How a module that did not run to the end ended (the sandbox's reasons)."""
STATUSES = ("ok", "no_code", "syntax_error", "skipped", *RUN_STATUSES, "sandbox_error")
"""ok: the code ran to the end; no_code; syntax_error (found without running); skipped: not a code task;
a RUN_STATUSES reason; sandbox_error: the sandbox itself failed (no evidence)."""
TEST_RESULTS = ("pass", "fail", "error", *RUN_STATUSES[1:], "sandbox_error", "not_run")
"""A test's result: pass; fail (the comparison is false); error (an exception, a value that cannot be
checked); a kill reason (the test ended the run); not_run (the module failed on a rerun)."""
MAX_TESTS_PER_ORIGIN = 16
MAX_RUNS = 3  # sandbox runs per response: a test that ends a run is charged with it, the rest run again
MAX_SOURCE = 2000  # characters of a probe or a literal
MAX_DETAIL = 500

PY_LABELS = frozenset({"python", "py", "python3", "py3"})
BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))
BANNED_NAMES = frozenset({
    "exec", "eval", "compile", "open", "input", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "exit", "quit", "breakpoint", "help", "print", "memoryview", "classmethod", "staticmethod", "super", "type",
    "object", "os", "sys", "subprocess", "shutil", "signal", "ctypes", "builtins", "importlib", "gc", "inspect",
    "threading", "multiprocessing", "socket", "resource", "pathlib", "tempfile", "io", "pickle", "marshal",
    "asyncio", "select", "selectors", "mmap", "fcntl", "pty", "atexit", "faulthandler", "code", "codeop",
    "runpy", "traceback", "weakref", "ast", "dis", "types", "posix", "time", "unittest", "pytest", "doctest",
})
_ALLOWED_NODES = (
    ast.Expression, ast.Call, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.Slice, ast.Constant,
    ast.List, ast.Tuple, ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.keyword, ast.Starred, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension,
    ast.Store, ast.JoinedStr, ast.FormattedValue, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
    ast.expr_context,
)
_OPS = {ast.Eq: "Eq", ast.NotEq: "NotEq", ast.Lt: "Lt", ast.LtE: "LtE", ast.Gt: "Gt", ast.GtE: "GtE",
        ast.Is: "Is", ast.IsNot: "IsNot", ast.In: "In", ast.NotIn: "NotIn"}
_OP_TEXT = {"Eq": "==", "NotEq": "!=", "Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">=", "Is": "is",
            "IsNot": "is not", "In": "in", "NotIn": "not in"}

LITERAL_SOURCE = r'''
import ast as _wf_ast

_WF_CONSTRUCTORS = {"set": set, "frozenset": frozenset, "list": list, "tuple": tuple, "dict": dict,
                    "float": float, "int": int, "str": str, "complex": complex, "bool": bool, "sorted": sorted,
                    "abs": abs, "round": round, "min": min, "max": max, "sum": sum, "len": len}


def _wf_lit(src):
    """A literal operand's value: a Python literal, or one of a few builtins applied to literals."""
    node = _wf_ast.parse(src, mode="eval").body
    if isinstance(node, _wf_ast.Call):
        if not isinstance(node.func, _wf_ast.Name) or node.func.id not in _WF_CONSTRUCTORS:
            raise ValueError("not a literal")
        args = [_wf_ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: _wf_ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
        if len(kwargs) != len(node.keywords) or any(
                type(a) is int and abs(a) > 10 ** 6 for a in [*args, *kwargs.values()]):
            raise ValueError("not a small literal")
        return _WF_CONSTRUCTORS[node.func.id](*args, **kwargs)
    return _wf_ast.literal_eval(node)
'''

CHECKS_SOURCE = LITERAL_SOURCE + r'''
import math as _wf_math
import operator as _wf_op

_WF_OPS = {"Eq": _wf_op.eq, "NotEq": _wf_op.ne, "Lt": _wf_op.lt, "LtE": _wf_op.le, "Gt": _wf_op.gt,
           "GtE": _wf_op.ge, "Is": _wf_op.is_, "IsNot": _wf_op.is_not, "In": lambda a, b: a in b,
           "NotIn": lambda a, b: a not in b}


def _wf_value(operand):
    return _wf_lit(operand[1]) if operand[0] == "lit" else _wf_eval(operand[1])


def _wf_holds(spec):
    if spec[0] == "cmp":
        values = [_wf_value(o) for o in spec[1]]
        return all(bool(_WF_OPS[op](a, b)) for op, a, b in zip(spec[2], values, values[1:]))
    if spec[0] == "truth":
        held = bool(_wf_eval(spec[2]))
        return (not held) if spec[1] else held
    if spec[0] == "close":
        return _wf_math.isclose(_wf_eval(spec[1]), _wf_lit(spec[2]), rel_tol=spec[3], abs_tol=spec[4])
    raise ValueError("unknown test kind")


_wf_report("ready")
for _wf_id, _wf_spec in _WF_TESTS:
    try:
        _wf_result = "pass" if _wf_holds(_wf_spec) is True else "fail"
    except AssertionError:
        _wf_result = "fail"
    except BaseException:
        _wf_result = "error"
    _wf_report(_wf_id + " " + _wf_result)
'''
"""The checks of a response's run (they run in the sandbox's trusted launcher, with ``_WF_TESTS``
prepended): report ``ready`` (the module ran), then ``<test id> pass|fail|error`` per test."""

_LITERAL_NS: dict = {}
exec(compile(LITERAL_SOURCE, "<literal>", "exec"), _LITERAL_NS)  # noqa: S102 - our own constant source
literal_value: Callable[[str], object] = _LITERAL_NS["_wf_lit"]


# ------------------------------------------------------------------------------------------------ code
_FENCE_OPEN = re.compile(r"^([ \t]{0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^`\n]*$")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(label, body) of every fenced block, in order; an unclosed fence runs to the end of the text."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group(2)
        close = re.compile(r"^[ \t]{0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        body: list[str] = []
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        out.append((m.group(3).lower().split("{")[0], textwrap.dedent("\n".join(body))))
    return out


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _code_like(tree: ast.Module | None) -> bool:
    return tree is not None and any(not isinstance(s, ast.Expr) for s in tree.body)


def _session(body: str) -> bool:
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return first.startswith(">>>")


_CODE_START = re.compile(r"^(def |class |import |from \S+ import |@|async def )")


def extract_code(text: str) -> str:
    """The Python code of a response (rules in the module doc); ``""`` when it has none. Never raises."""
    try:
        return _extract_code(text)
    except (RecursionError, MemoryError, ValueError, SyntaxError):  # pathological model output: no code
        return ""


def _extract_code(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        return ""
    blocks = fenced_blocks(text)
    if blocks:
        kept = [body for label, body in blocks if body.strip() and not _session(body)
                and (label in PY_LABELS or (label == "" and _code_like(_parse(body))))]
        return "\n\n".join(b.strip("\n") for b in kept)
    if _code_like(_parse(text)):
        return text.strip("\n")
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return ""
    for end in range(len(lines), start, -1):
        if end - start > 400 or len(lines) - end > 60:
            break
        chunk = "\n".join(lines[start:end])
        if _code_like(_parse(chunk)):
            return chunk.strip("\n")
    return ""


def _main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare) or len(stmt.test.ops) != 1:
        return False
    sides = [stmt.test.left, stmt.test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    consts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return isinstance(stmt.test.ops[0], ast.Eq) and names == ["__name__"] and consts == ["__main__"]


def runnable(code: str) -> str:
    """``code`` without top-level asserts and ``if __name__ == "__main__":`` blocks (they are tests);
    unchanged when it does not parse."""
    tree = _parse(code)
    if tree is None:
        return code
    drop = [s for s in tree.body if isinstance(s, ast.Assert) or _main_guard(s)]
    if not drop:
        return code
    lines = code.splitlines()
    dropped = {n for s in drop for n in range(s.lineno, (s.end_lineno or s.lineno) + 1)}
    kept_lines = {n for s in tree.body if s not in drop for n in range(s.lineno, (s.end_lineno or s.lineno) + 1)}
    if dropped & kept_lines:  # statements sharing a line (`x = 1; assert x`): rebuild from the tree
        return ast.unparse(ast.Module([s for s in tree.body if s not in drop], []))
    return "\n".join(line for n, line in enumerate(lines, start=1) if n not in dropped)


def parses(code: str) -> bool:
    return _parse(code) is not None


def defined_names(code: str) -> tuple[frozenset[str], bool]:
    """(names the module defines at top level, whether it star-imports). Main blocks do not count."""
    tree = _parse(code)
    if tree is None:
        return frozenset(), False
    names: set[str] = set()
    star = False

    def targets(node: ast.AST) -> None:
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                names.add(n.id)

    def visit(body: Iterable[ast.stmt]) -> None:
        nonlocal star
        for s in body:
            if _main_guard(s):
                continue
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(s.name)
                for g in ast.walk(s):
                    if isinstance(g, ast.Global):
                        names.update(g.names)
            elif isinstance(s, ast.Import):
                names.update(a.asname or a.name.split(".")[0] for a in s.names)
            elif isinstance(s, ast.ImportFrom):
                for a in s.names:
                    if a.name == "*":
                        star = True
                    else:
                        names.add(a.asname or a.name)
            elif isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for t in (s.targets if isinstance(s, ast.Assign) else [s.target]):
                    targets(t)
            elif isinstance(s, (ast.For, ast.AsyncFor)):
                targets(s.target)
                visit(s.body + s.orelse)
            elif isinstance(s, (ast.With, ast.AsyncWith)):
                for item in s.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
                visit(s.body)
            elif isinstance(s, (ast.If, ast.While)):
                visit(s.body + s.orelse)
            elif isinstance(s, ast.Try):
                visit(s.body + s.orelse + s.finalbody + [x for h in s.handlers for x in h.body])
            elif isinstance(s, ast.Expr) and isinstance(s.value, ast.NamedExpr):
                targets(s.value.target)

    visit(tree.body)
    return frozenset(names), star


# ------------------------------------------------------------------------------------------------ tests
@dataclass(frozen=True)
class ExecutionTest:
    """One test: ``spec`` is what the launcher runs (``("cmp", operands, ops)``, ``("truth", negate,
    probe)`` or ``("close", probe, literal, rel_tol, abs_tol)``; an operand is ``("lit", src)`` or
    ``("probe", src)``), ``names`` the free names its probes use, ``source`` a readable form."""

    test_id: str
    origin: str
    spec: tuple
    names: frozenset[str]
    source: str

    def to_dict(self) -> dict:
        return {"id": self.test_id, "origin": self.origin, "source": self.source}


def _test_id(spec: tuple) -> str:
    return "t" + hashlib.sha256(json.dumps(spec, separators=(",", ":")).encode()).hexdigest()[:16]


def _free_names(node: ast.AST) -> set[str]:
    bound = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound


def safe_probe(node: ast.AST) -> bool:
    """Whether ``node`` may be evaluated in a candidate's process as a probe (rules in the module doc)."""
    for n in ast.walk(node):
        if not isinstance(n, _ALLOWED_NODES):
            return False
        if isinstance(n, ast.Name) and (n.id.startswith("_") or n.id in BANNED_NAMES):
            return False
        if isinstance(n, ast.Attribute) and n.attr.startswith("_"):
            return False
        if isinstance(n, ast.keyword) and n.arg is not None and n.arg.startswith("_"):
            return False
    return any(isinstance(n, ast.Call) for n in ast.walk(node)) and len(ast.unparse(node)) <= MAX_SOURCE


def _literal(node: ast.AST) -> str | None:
    """The source of ``node`` when it is a literal operand whose value can be computed, else None."""
    try:
        src = ast.unparse(node)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    if len(src) > MAX_SOURCE:
        return None
    try:
        literal_value(src)
    except Exception:  # noqa: BLE001 - any failure means: not a literal operand
        return None
    return src


def _compare_spec(operands: Sequence[ast.AST], ops: Sequence[str]) -> tuple | None:
    parts = []
    for o in operands:
        lit = _literal(o)
        if lit is not None:
            parts.append(("lit", lit))
        elif safe_probe(o):
            parts.append(("probe", ast.unparse(o)))
        else:
            return None
    kinds = {k for k, _ in parts}
    if kinds != {"lit", "probe"}:
        return None
    return ("cmp", tuple(parts), tuple(ops))


def _close_spec(call: ast.Call) -> tuple | None:
    f = call.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    if name != "isclose" or len(call.args) != 2:
        return None
    tol = {"rel_tol": 1e-9, "abs_tol": 0.0}
    for k in call.keywords:
        lit = _literal(k.value) if k.arg in tol else None
        value = literal_value(lit) if lit is not None else None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            return None
        tol[k.arg] = float(value)
    a, b = call.args
    for probe, lit in ((a, b), (b, a)):
        src = _literal(lit)
        if src is not None and _literal(probe) is None and safe_probe(probe):
            return ("close", ast.unparse(probe), src, tol["rel_tol"], tol["abs_tol"])
    return None


def specs_of_assertion(expr: ast.AST) -> list[tuple[tuple, ast.AST]]:
    """(spec, the nodes its probes are in) for the test expression of an ``assert`` (``and`` splits it)."""
    if isinstance(expr, ast.BoolOp) and isinstance(expr.op, ast.And):
        return [x for v in expr.values for x in specs_of_assertion(v)]
    if isinstance(expr, ast.Compare):
        ops = [_OPS.get(type(o)) for o in expr.ops]
        if None in ops:
            return []
        spec = _compare_spec([expr.left, *expr.comparators], ops)
        return [(spec, expr)] if spec else []
    negate = False
    while isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.Not):
        negate, expr = not negate, expr.operand
    if isinstance(expr, ast.Call):
        close = _close_spec(expr)
        if close is not None:
            return [] if negate else [(close, expr)]
        if safe_probe(expr):
            return [(("truth", negate, ast.unparse(expr)), expr)]
    return []


def _render(spec: tuple) -> str:
    if spec[0] == "cmp":
        parts = [spec[1][0][1]]
        for op, (_, src) in zip(spec[2], spec[1][1:]):
            parts += [_OP_TEXT[op], src]
        return "assert " + " ".join(parts)
    if spec[0] == "truth":
        return "assert " + ("not " if spec[1] else "") + spec[2]
    return f"assert math.isclose({spec[1]}, {spec[2]}, rel_tol={spec[3]!r}, abs_tol={spec[4]!r})"


def _make(spec: tuple, origin: str) -> ExecutionTest:
    names = set()
    for kind_src in (spec[1] if spec[0] == "cmp" else [("probe", spec[2] if spec[0] == "truth" else spec[1])]):
        if kind_src[0] == "probe":
            names |= _free_names(ast.parse(kind_src[1], mode="eval"))
    return ExecutionTest(_test_id(spec), origin, spec, frozenset(names), _render(spec))


_UNITTEST = {"assertEqual": "Eq", "assertEquals": "Eq", "assertNotEqual": "NotEq", "assertIn": "In",
             "assertNotIn": "NotIn", "assertIs": "Is", "assertIsNot": "IsNot", "assertLess": "Lt",
             "assertLessEqual": "LtE", "assertGreater": "Gt", "assertGreaterEqual": "GtE"}


def _unittest_specs(call: ast.Call) -> list[tuple[tuple, ast.AST]]:
    f = call.func
    if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "self"):
        return []
    args = call.args
    if f.attr in _UNITTEST and len(args) >= 2:
        spec = _compare_spec(args[:2], [_UNITTEST[f.attr]])
        return [(spec, call)] if spec else []
    if f.attr in ("assertTrue", "assertFalse") and args:
        expr = args[0] if f.attr == "assertTrue" else ast.UnaryOp(ast.Not(), args[0])
        return specs_of_assertion(expr)
    if f.attr in ("assertIsNone", "assertIsNotNone") and args:
        spec = _compare_spec([args[0], ast.Constant(None)], ["Is" if f.attr == "assertIsNone" else "IsNot"])
        return [(spec, call)] if spec else []
    if f.attr == "assertAlmostEqual" and len(args) >= 2:
        fake = ast.Call(ast.Name("isclose", ast.Load()), list(args[:2]), [ast.keyword("abs_tol", ast.Constant(5e-8))])
        close = _close_spec(fake)
        return [(close, call)] if close else []
    return []


def _assertions(tree: ast.Module) -> list[tuple[tuple, ast.AST]]:
    """Tests in a parsed module: asserts at top level and in main blocks, in ``test_*`` functions, and
    unittest assertions in methods of classes."""
    found: list[tuple[tuple, ast.AST]] = []

    def block(body: Iterable[ast.stmt], depth: int = 0) -> None:
        for s in body:
            if isinstance(s, ast.Assert):
                found.extend(specs_of_assertion(s.test))
            elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Call):
                found.extend(_unittest_specs(s.value))
            elif depth < 3 and isinstance(s, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
                inner = list(getattr(s, "body", [])) + list(getattr(s, "orelse", []))
                inner += [x for h in getattr(s, "handlers", []) for x in h.body]
                block(inner, depth + 1)

    for s in tree.body:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if s.name.startswith("test"):
                block(s.body, 1)
        elif isinstance(s, ast.ClassDef):
            for m in s.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name.startswith("test"):
                    block(m.body, 1)
        else:
            block([s])
    return found


def _snippets(text: str) -> list[str]:
    """Pieces of a text that may hold assert statements: its fenced blocks, the whole text, and each run of
    lines from an ``assert`` line that parses (asserts in prose, possibly spanning lines)."""
    out = [body for _label, body in fenced_blocks(text)]
    if _parse(text) is not None:
        out.append(text)
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        stripped = lines[n].strip().lstrip("`")
        if not stripped.startswith("assert ") and not stripped.startswith("assert("):
            n += 1
            continue
        for end in range(n + 1, min(len(lines), n + 20) + 1):
            chunk = textwrap.dedent("\n".join(line.strip("`") if k == 0 else line
                                              for k, line in enumerate(lines[n:end])))
            if _parse(chunk) is not None:
                out.append(chunk)
                n = end - 1
                break
        n += 1
    return out


def _want(text: str) -> str:
    """A doctest example's expected output, cut where a docstring or a fenced block ends."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(('"""', "'''", "```", "~~~")) or stripped.endswith(('"""', "'''")):
            break
        lines.append(line)
    return "\n".join(lines).rstrip("\n")


_FENCE_LINE = re.compile(r"^[ \t]*(?:```|~~~).*$", re.M)


def _doctest_specs(text: str) -> list[tuple[tuple, ast.AST]]:
    # a fence line ends an example's output as a blank line does (a prompt quoted right up to its closing
    # ``` would otherwise make the last example's indentation inconsistent and hide every example)
    text = _FENCE_LINE.sub("", text)
    parser = doctest.DocTestParser()
    try:
        examples = parser.get_examples(text)
    except ValueError:  # inconsistent indentation somewhere: try paragraph by paragraph
        examples = []
        for piece in re.split(r"\n[ \t]*\n", text):
            try:
                examples += parser.get_examples(piece)
            except ValueError:
                continue
    found = []
    for ex in examples:
        want = _want(ex.want)
        try:
            node = ast.parse(ex.source.strip(), mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue  # a statement (setup): skipped, and so are the examples that need it (names)
        if not want.strip() and isinstance(node, ast.Compare):  # `>>> f(1) == 2` with no output: an assertion
            found.extend(specs_of_assertion(node))
            continue
        if not want.strip() or want.lstrip().startswith("Traceback (most recent call last)") or ex.exc_msg:
            continue
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
                and len(node.args) == 1 and not node.keywords):
            probe = ast.Call(ast.Name("str", ast.Load()), [node.args[0]], [])
            spec = _compare_spec([probe, ast.Constant(want)], ["Eq"])
        else:
            try:
                want_node = ast.parse(want.strip(), mode="eval").body
            except (SyntaxError, ValueError, MemoryError, RecursionError):
                want_node = None
            if want_node is not None and _literal(want_node) is not None:
                spec = _compare_spec([node, want_node], ["Eq"])
            else:
                probe = ast.Call(ast.Name("repr", ast.Load()), [node], [])
                spec = _compare_spec([probe, ast.Constant(want.strip())], ["Eq"])
        if spec:
            found.append((spec, node))
    return found


_ARROWS = r"(?:->|=>|==>|➞|→|==|=|\breturns?\b|\bshould return\b|\bgives\b|\boutputs?\b:?|\bresult:)"
_EXAMPLE = re.compile(r"^\s*(?:[-*•]\s+|\d+[.)]\s+|#\s*)?(?:(?:input|examples?|e\.g\.|for example|for)\s*:?\s*)?"
                      r"`*(?P<call>[A-Za-z_][\w.]*\(.*\))`*\s*(?:#\s*)?" + _ARROWS
                      + r"\s*`*(?P<want>[^`]+?)`*\s*[.,;]?\s*$", re.I)
_PRINTED = re.compile(r"^\s*print\((?P<call>.+\))\)\s*#\s*(?:(?:output|prints?|returns?|result|->|=>|expected)"
                      r"\s*:?\s*)?(?P<want>.+?)\s*$", re.I)


def _call_with_literal_args(src: str) -> ast.Call | None:
    try:
        node = ast.parse(src.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Call) or not isinstance(node.func, (ast.Name, ast.Attribute)):
        return None
    if any(_literal(a) is None for a in [*node.args, *(k.value for k in node.keywords)]):
        return None
    return node if safe_probe(node) else None


def _example_specs(text: str) -> list[tuple[tuple, ast.AST]]:
    found = []
    for line in text.splitlines():
        if len(line) > 2 * MAX_SOURCE or line.lstrip().startswith((">>>", "assert")):
            continue
        m = _PRINTED.match(line) or _EXAMPLE.match(line)
        if not m:
            continue
        call = _call_with_literal_args(m.group("call"))
        if call is None:
            continue
        try:
            want = ast.parse(m.group("want").strip(), mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        spec = _compare_spec([call, want], ["Eq"])
        if spec:
            found.append((spec, call))
    return found


def extract_tests(text: str, origin: str) -> list[ExecutionTest]:
    """The tests found in ``text`` (rules in the module doc), each once, in the order found. Never raises on
    odd text (pathological nesting: no tests)."""
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, not {origin!r}")
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        return _extract_tests(text, origin)
    except (RecursionError, MemoryError, ValueError, SyntaxError):
        return []


def _extract_tests(text: str, origin: str) -> list[ExecutionTest]:
    found: list[tuple[tuple, ast.AST]] = []
    for snippet in _snippets(text):
        tree = _parse(snippet)
        if tree is not None:
            found.extend(_assertions(tree))
    found.extend(_doctest_specs(text))
    found.extend(_example_specs(text))
    out, seen = [], set()
    for spec, _node in found:
        t = _make(spec, origin)
        if t.test_id not in seen:
            seen.add(t.test_id)
            out.append(t)
    return out


# ------------------------------------------------------------------------------------------------ tasks
_CODE_HINT = re.compile(r"```|~~~|^\s*(?:async\s+)?(?:def|class)\s+\w+|^\s*import\s+\w|^\s*from\s+[\w.]+\s+import\s"
                        r"|^\s*>>>\s|^\s*assert\s", re.M)
_ASKS_CODE = re.compile(
    r"\b(?:write|implement|create|build|code|develop|design|complete|fix|debug|refactor|optimi[sz]e|modify|"
    r"rewrite|convert|translate|generate|define|make|program)\b[^.?!\n]{0,80}?\b(?:functions?|programs?|scripts?|"
    r"class(?:es)?|methods?|code|algorithms?|solutions?|modules?|snippets?|implementations?|decorators?|"
    r"generators?|parsers?|classes|routines?|procedures?)\b", re.I)
_PYTHON_CODE = re.compile(r"\bpython\b[^.?!\n]{0,40}?\b(?:functions?|programs?|scripts?|class(?:es)?|methods?|"
                          r"code|snippets?)\b|\b(?:functions?|programs?|scripts?|methods?)\b[^.?!\n]{0,40}?"
                          r"\bin python\b", re.I)
_GIVEN_RETURN = re.compile(r"\b(?:given|takes?|accepts?)\b[^.?!]{0,160}?\b(?:returns?|outputs?|prints?)\b", re.I)
# an operation on data ("remove duplicate items from a list", "count the vowels in a string")
_DATA_TASK = re.compile(
    r"\b(?:add|remove|delete|sort|reverse|count|find|compute|calculate|convert|parse|merge|filter|check|validate|"
    r"extract|replace|split|join|sum|search|flatten|rotate|swap|group|deduplicate|encode|decode|read|print)\b"
    r"[^.?!\n]{0,60}?\b(?:lists?|strings?|arrays?|dict(?:ionar(?:y|ies))?|numbers?|integers?|files?|elements?|"
    r"items?|values?|characters?|words?|digits?|matri(?:x|ces)|tuples?|sets?|keys?|lines?|duplicates?)\b", re.I)
# example input / output sections
_IO_EXAMPLE = re.compile(r"^\s*(?:example\s+)?(?:input|output)\b\s*:?", re.I | re.M)


def is_code_task(instruction: str) -> bool:
    """Whether the instruction asks for code (a heuristic, see the module doc)."""
    if not isinstance(instruction, str) or not instruction.strip():
        return False
    text = instruction[:20000]
    if _CODE_HINT.search(text) or _ASKS_CODE.search(text) or _PYTHON_CODE.search(text) or _GIVEN_RETURN.search(text):
        return True
    if _DATA_TASK.search(text) or _IO_EXAMPLE.search(text):
        return True
    try:
        return bool(_example_specs(text))
    except (RecursionError, MemoryError, ValueError, SyntaxError):
        return False


# ------------------------------------------------------------------------------------------------ plans
@dataclass(frozen=True)
class ExecutionPlan:
    """What to run for a battle: whether it is a code task, each role's extracted code, and the tests that
    count (:func:`plan_execution`)."""

    code_task: bool
    codes: Mapping[str, str]
    tests: tuple[ExecutionTest, ...]

    def has_code(self, role: str) -> bool:
        return bool(self.codes[role].strip())

    def status_before_running(self, role: str) -> str | None:
        """The record's status when the code is not run at all (else None)."""
        if not self.code_task:
            return "skipped"
        if not self.has_code(role):
            return "no_code"
        if not parses(self.codes[role]):
            return "syntax_error"
        return None

    def tests_dicts(self) -> list[dict]:
        return [t.to_dict() for t in self.tests]


def plan_execution(instruction: str, attacker: str, defender: str) -> ExecutionPlan:
    """The plan for a battle (which tests count: see the module doc)."""
    code_task = is_code_task(instruction)
    codes = {"attacker": extract_code(attacker), "defender": extract_code(defender)}
    if not code_task:
        return ExecutionPlan(False, codes, ())
    defined = {}
    for role in ROLES:
        names, star = defined_names(codes[role])
        defined[role] = (names | BUILTIN_NAMES, star)

    def known(t: ExecutionTest, role: str) -> bool:
        names, star = defined[role]
        return star or t.names <= names

    kept: list[ExecutionTest] = []
    seen: set[str] = set()
    for origin, text in (("instruction", instruction), ("attacker", attacker), ("defender", defender)):
        n = 0
        for t in extract_tests(text, origin):
            if t.test_id in seen or n >= MAX_TESTS_PER_ORIGIN:
                continue
            ok = (known(t, "attacker") or known(t, "defender")) if origin == "instruction" else (
                known(t, "attacker") and known(t, "defender"))
            if ok:
                seen.add(t.test_id)
                kept.append(t)
                n += 1
    return ExecutionPlan(True, codes, tuple(kept))


def check_sources(plan: ExecutionPlan, role: str, tests: Sequence[ExecutionTest]) -> tuple[str, str]:
    """(candidate, checks) of one sandbox run of ``role``'s code against ``tests``."""
    table = repr([(t.test_id, t.spec) for t in tests])
    return runnable(plan.codes[role]), f"_WF_TESTS = {table}\n" + CHECKS_SOURCE


@dataclass(frozen=True)
class RunOutcome:
    """How one sandbox run ended: the sandbox's reason, the launcher's report lines, seconds, stderr tail."""

    reason: str
    report: tuple[str, ...]
    seconds: float = 0.0
    detail: str = ""


def run_tests(plan: ExecutionPlan, role: str, check: Callable[[str, str], RunOutcome]) -> dict:
    """The execution record of ``role``: run its code (``check(candidate, checks)`` runs one sandbox) against
    the plan's tests. A test that ends a run (timeout, memory, output) is charged with it and the tests
    after it run again in a fresh sandbox, at most :data:`MAX_RUNS` runs."""
    early = plan.status_before_running(role)
    if early is not None:
        return make_record(plan, role, early, {}, 0, 0.0, "")
    pending = list(plan.tests)
    results: dict[str, str] = {}
    status, runs, seconds, detail = "ok", 0, 0.0, ""
    while runs < MAX_RUNS:
        candidate, checks = check_sources(plan, role, pending)
        out = check(candidate, checks)
        runs += 1
        seconds += out.seconds
        lines = list(out.report)
        if not lines or lines[0] != "ready":
            if runs == 1:
                status = out.reason if out.reason in RUN_STATUSES or out.reason == "sandbox_error" else "error"
                detail = out.detail[:MAX_DETAIL]
            results.update((t.test_id, "not_run") for t in pending)
            pending = []
            break
        wanted = {t.test_id for t in pending}
        for line in lines[1:]:
            tid, _, result = line.partition(" ")
            if tid in wanted and result in ("pass", "fail", "error"):
                results.setdefault(tid, result)
        pending = [t for t in pending if t.test_id not in results]
        if not pending or out.reason == "passed":
            results.update((t.test_id, "error") for t in pending)  # (a report line lost: cannot happen)
            pending = []
            break
        culprit = pending.pop(0)
        results[culprit.test_id] = out.reason if out.reason in TEST_RESULTS else "error"
        if not pending:
            break
    results.update((t.test_id, "not_run") for t in pending)
    return make_record(plan, role, status, results if status == "ok" else {}, runs, seconds, detail)


def make_record(plan: ExecutionPlan, role: str, status: str, results: Mapping[str, str], runs: int,
                seconds: float, detail: str) -> dict:
    """A per-response execution record (counts derived from ``results``)."""
    return {"role": role, "code_task": plan.code_task, "has_code": plan.has_code(role), "status": status,
            "tests": tally(plan, results), "results": dict(sorted(results.items())), "runs": runs,
            "seconds": round(float(seconds), 3), "detail": detail[:MAX_DETAIL]}


def tally(plan: ExecutionPlan, results: Mapping[str, str]) -> dict[str, list[int]]:
    """origin -> [tests, passed] (and ``all``)."""
    out = {o: [0, 0] for o in (*ORIGINS, "all")}
    for t in plan.tests:
        passed = int(results.get(t.test_id) == "pass")
        for key in (t.origin, "all"):
            out[key][0] += 1
            out[key][1] += passed
    return out


def check_record(plan: ExecutionPlan, role: str, record: object) -> list[str]:
    """Problems of a worker's execution record against the plan the writer computes itself (empty: sound).
    A worker can only report what the sandbox said; everything else must be exactly what the plan says."""
    if not isinstance(record, dict):
        return [f"{role}: not a JSON object"]
    want = {"role", "code_task", "has_code", "status", "tests", "results", "runs", "seconds", "detail"}
    if set(record) != want:
        return [f"{role}: must hold exactly {', '.join(sorted(want))}"]
    problems = []
    early = plan.status_before_running(role)
    if record["role"] != role:
        problems.append(f"{role}: role is {str(record['role'])[:20]!r}")
    if record["code_task"] is not plan.code_task or record["has_code"] is not plan.has_code(role):
        problems.append(f"{role}: code_task/has_code differ from the texts")
    status = record["status"]
    if early is not None and status != early:
        problems.append(f"{role}: status {str(status)[:20]!r}, but the texts say {early!r}")
    if early is None and status not in ("ok", *RUN_STATUSES, "sandbox_error"):
        problems.append(f"{role}: status {str(status)[:20]!r} is not a run's")
    results = record["results"]
    ids_ = {t.test_id for t in plan.tests}
    if not isinstance(results, dict) or not all(isinstance(v, str) and v in TEST_RESULTS for v in results.values()):
        problems.append(f"{role}: results must map test ids to one of {', '.join(TEST_RESULTS)}")
    elif set(results) != (ids_ if status == "ok" else set()):
        problems.append(f"{role}: results name other tests than the texts hold")
    elif record["tests"] != tally(plan, results):
        problems.append(f"{role}: test counts do not match the results")
    runs, seconds, detail = record["runs"], record["seconds"], record["detail"]
    if isinstance(runs, bool) or not isinstance(runs, int) or not 0 <= runs <= MAX_RUNS or (
            (runs == 0) != (early is not None)):
        problems.append(f"{role}: runs must be 1..{MAX_RUNS} when the code ran, else 0")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e6:
        problems.append(f"{role}: seconds must be a number")
    if not isinstance(detail, str) or len(detail) > MAX_DETAIL:
        problems.append(f"{role}: detail must be a short string")
    return problems


# ------------------------------------------------------------------------------------------------ verdicts
def runs_ok(record: Mapping) -> bool:
    return record.get("status") == "ok"


def execution_vote(attacker: Mapping, defender: Mapping) -> tuple[str | None, str]:
    """(``"attacker"`` | ``"defender"`` | None, why): the deterministic execution vote (rule in the module doc)."""
    if not (attacker.get("code_task") and defender.get("code_task")):
        return None, "not a code task"
    a_code, d_code = bool(attacker.get("has_code")), bool(defender.get("has_code"))
    if not (a_code or d_code):
        return None, "neither response has code"
    if "sandbox_error" in (attacker.get("status"), defender.get("status")):
        return None, "the sandbox failed"
    if a_code != d_code:  # a response without code never gets the vote
        coder, name = (attacker, "attacker") if a_code else (defender, "defender")
        if runs_ok(coder):
            return name, "only one response has code, and it runs"
        return None, f"only one response has code, and it does not run ({coder.get('status')})"
    a_ok, d_ok = runs_ok(attacker), runs_ok(defender)
    if a_ok != d_ok:
        loser = defender if a_ok else attacker
        return ("attacker" if a_ok else "defender"), f"only one runs (the other: {loser.get('status')})"
    if not a_ok:
        return None, "neither runs"
    for key, what in (("instruction", "instruction tests"), ("all", "tests")):
        (total, a), (_, d) = attacker["tests"][key], defender["tests"][key]
        if a != d:
            return ("attacker" if a > d else "defender"), f"{what} passed {a}/{total} vs {d}/{total}"
    return None, "equal evidence"


_RUN_WORDS = {"error": "raises an exception", "timeout": "times out", "memory": "runs out of memory",
              "output_limit": "prints too much", "killed": "is killed", "signal": "crashes"}


def execution_summary(record: Mapping | None) -> str:
    """A compact line on one response for the judge prompt (fixed wording: nothing a response wrote), or ``""``
    when there is nothing to say (not a code task, sandbox failure, no record)."""
    if not record or not record.get("code_task"):
        return ""
    status = record.get("status")
    if status == "no_code":
        return "no code"
    if status == "syntax_error":
        return "code does not parse (syntax error)"
    if status in _RUN_WORDS:
        return f"code does not run to the end (it {_RUN_WORDS[status]})"
    if status != "ok":
        return ""
    tests = record.get("tests") or {}
    total, passed = (tests.get("all") or [0, 0])[:2]
    if not total:
        return "code runs; no tests found"
    role = record.get("role")
    other = "defender" if role == "attacker" else "attacker"
    labels = (("instruction", "the question's examples"), (role, "its own tests"),
              (other, "the other response's tests"))
    parts = [f"{label} {tests[key][1]}/{tests[key][0]}" for key, label in labels if key in tests and tests[key][0]]
    return f"code runs; passes {passed}/{total} tests ({'; '.join(parts)})"


def summary_lines(roles: Mapping[str, Mapping]) -> dict[str, str]:
    """role -> the summary line judges see, for a battle's two execution records; ``{}`` when there is nothing
    to show (no line, or neither response has code)."""
    lines = {role: execution_summary(rec) for role, rec in roles.items()}
    if any(lines.values()) and any(rec.get("has_code") for rec in roles.values()):
        return lines
    return {}


def judge_section(first: str, second: str) -> str:
    """The judge prompt's ``{execution}`` text for two summaries in shown order (``""`` when both are empty)."""
    if not first and not second:
        return ""
    return ("\n[Execution results]\nThe arena ran the Python code of each response in a sandbox, against the "
            "examples found in the question and in both responses. These lines are the arena's, not the "
            "responses'.\n"
            f"Response A: {first or 'no result'}\nResponse B: {second or 'no result'}\n[End of Execution results]\n")
