"""Helpers every backend shares; the protocol itself (``Backend``, ``Sampling``, ``Generation``) is the
method's, in :mod:`warriorflow.method.backend`, and is re-exported here.

All calls are batched: a list in, a list out in the same order. A backend never makes the caller wait
on one request at a time. ``choices`` constrains the output to exactly one of the given strings
(a llama.cpp grammar, vLLM structured outputs, or ``extra_body`` over HTTP); it is how verdicts
(``[[A]]``/``[[B]]``/``[[Tie]]``) and 1-10 scores are asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from warriorflow.method.backend import (
    Backend,
    ChatMessage,
    Conversation,
    Generation,
    Sampling,
    SamplingArg,
    TokenLogprobs,
)

T = TypeVar("T")
R = TypeVar("R")


def per_item(sampling: SamplingArg, n: int) -> list[Sampling]:
    """Expand a SamplingArg to one Sampling per batch item."""
    if isinstance(sampling, Sampling):
        return [sampling] * n
    items = list(sampling)
    if len(items) != n:
        raise ValueError(f"got {len(items)} Sampling objects for a batch of {n}; give one, or one per item")
    return items


def fan_out(fn: Callable[[T], R], items: Sequence[T], max_workers: int) -> list[R]:
    """``[fn(x) for x in items]`` with up to ``max_workers`` in flight; order kept, first error raised."""
    if len(items) <= 1 or max_workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(fn, items))


def choice_grammar(choices: Sequence[str]) -> str:
    """A GBNF grammar that accepts exactly one of ``choices`` (llama.cpp)."""
    import json

    if not choices:
        raise ValueError("choice_grammar needs at least one choice")
    alternatives = " | ".join(json.dumps(c) for c in choices)
    return f"root ::= {alternatives}\n"


__all__ = ["Backend", "ChatMessage", "Conversation", "Generation", "Sampling", "SamplingArg", "TokenLogprobs",
           "choice_grammar",
           "fan_out", "per_item"]
