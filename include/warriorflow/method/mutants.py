"""Single-site mutants of a Python function, for labeled judge pairs (correct vs broken), pure functions.

:func:`mutants` lists every single-site mutation of the named function's body, each as a whole
program (``ast.unparse``) with a short description, in source order:

* a comparison operator swapped (``<`` / ``<=``, ``>`` / ``>=``, ``==`` / ``!=``, ``in`` / ``not in``,
  ``is`` / ``is not``);
* an arithmetic operator swapped (``+`` / ``-``, ``*`` / ``//``, ``//`` / ``/``, ``%`` / ``//``);
* ``and`` / ``or`` swapped; a ``not`` removed;
* an integer constant off by one (``n`` -> ``n + 1``), ``True`` / ``False`` swapped;
* a ``return`` of a value replaced by ``return None`` is *not* used (too obvious to a judge).

Which mutant breaks the function is for the benchmark's tests to say; the caller runs them in the
sandbox and keeps only mutants that fail. The correct program is unparsed the same way, so the two
responses of a pair differ only in the mutation, never in formatting or comments.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from dataclasses import dataclass

_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
        ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Div, ast.Div: ast.FloorDiv,
        ast.Mod: ast.FloorDiv}
_BOOL = {ast.And: ast.Or, ast.Or: ast.And}


@dataclass(frozen=True)
class Mutant:
    source: str
    description: str


def _sites(fn: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, kind, description) for every mutable site in ``fn``'s body, in source order."""
    for node in ast.walk(fn):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _CMP:
                    yield node, f"cmp{i}", f"line {line}: comparison {type(op).__name__} -> {_CMP[type(op)].__name__}"
        elif isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            yield node, "bin", f"line {line}: operator {type(node.op).__name__} -> {_BIN[type(node.op)].__name__}"
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BIN:
            yield node, "bin", f"line {line}: operator {type(node.op).__name__}= -> {_BIN[type(node.op)].__name__}="
        elif isinstance(node, ast.BoolOp):
            new = _BOOL[type(node.op)].__name__.lower()
            yield node, "bool", f"line {line}: {type(node.op).__name__.lower()} -> {new}"
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", f"line {line}: not removed"
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            yield node, "int", f"line {line}: {node.value} -> {node.value + 1}"
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            yield node, "bool_const", f"line {line}: {node.value} -> {not node.value}"


def _apply(node: ast.AST, kind: str) -> ast.AST | None:
    """Mutate ``node`` in place (or return its replacement)."""
    if kind.startswith("cmp"):
        i = int(kind[3:])
        node.ops[i] = _CMP[type(node.ops[i])]()
    elif kind == "bin":
        node.op = _BIN[type(node.op)]()
    elif kind == "bool":
        node.op = _BOOL[type(node.op)]()
    elif kind == "not":
        return node.operand
    elif kind == "int":
        node.value = node.value + 1
    elif kind == "bool_const":
        node.value = not node.value
    return None


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST):
        self.target, self.replacement = target, replacement

    def generic_visit(self, node):
        if node is self.target:
            return self.replacement
        return super().generic_visit(node)

    def visit(self, node):
        if node is self.target:
            return self.replacement
        return super().visit(node)


def _function(tree: ast.Module, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


def _strip_docstrings(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and len(node.body) > 1 and \
                isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) and \
                isinstance(node.body[0].value.value, str):
            node.body = node.body[1:]


def canonical_source(program: str, docstrings: bool = True) -> str:
    """``program`` as :func:`ast.unparse` writes it (the form mutants are written in); ``docstrings=False``
    drops function and class docstrings (a response need not repeat the question's)."""
    tree = ast.parse(program)
    if not docstrings:
        _strip_docstrings(tree)
    return ast.unparse(tree)


def mutants(program: str, function: str, docstrings: bool = True) -> list[Mutant]:
    """Every single-site mutant of ``function``'s body in ``program`` (module doc), as whole programs that
    differ from :func:`canonical_source` of the original (with the same ``docstrings``); [] when the function
    is not found or the program does not parse."""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return []
    if not docstrings:
        _strip_docstrings(tree)
    fn = _function(tree, function)
    if fn is None:
        return []
    original = ast.unparse(tree)
    # a docstring is a str constant, never a site (only int and bool constants are), so it stays as it is
    count = sum(1 for stmt in fn.body for _ in _sites(stmt))
    out: list[Mutant] = []
    seen = {original}
    for k in range(count):
        copy_tree = copy.deepcopy(tree)  # the same shape as ``tree``, so its k-th site is the original's k-th
        copy_fn = _function(copy_tree, function)
        sites = [s for stmt in copy_fn.body for s in _sites(stmt)]
        node, kind, description = sites[k]
        replacement = _apply(node, kind)
        if replacement is not None:
            copy_tree = _Replace(node, replacement).visit(copy_tree)
        try:
            source = ast.unparse(ast.fix_missing_locations(copy_tree))
            compile(source, "<mutant>", "exec")
        except (SyntaxError, ValueError):
            continue
        if source not in seen:
            seen.add(source)
            out.append(Mutant(source, description))
    return out
