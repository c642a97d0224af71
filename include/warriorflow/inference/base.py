"""The inference protocol every backend implements.

All calls are batched: a list in, a list out in the same order. A backend never makes the caller wait
on one request at a time. ``choices`` constrains the output to exactly one of the given strings
(a llama.cpp grammar, vLLM structured outputs, or ``extra_body`` over HTTP); it is how verdicts
(``[[A]]``/``[[B]]``/``[[Tie]]``) and 1-10 scores are asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, TypeVar, runtime_checkable

T = TypeVar("T")
R = TypeVar("R")


class ChatMessage(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


Conversation = list[ChatMessage]


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters for one call. ``seed`` makes sampling reproducible where the backend allows."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None  # constrain output to exactly one of these strings

    def with_(self, **changes) -> Sampling:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class Generation:
    """One generated text and how it ended."""

    text: str
    finish_reason: str  # "stop" | "length" | ...
    prompt_tokens: int = 0
    completion_tokens: int = 0
    meta: dict = field(default_factory=dict)


SamplingArg = Sampling | Sequence[Sampling]
"""One Sampling for the whole batch, or one per item (e.g. a seed per mined sample)."""


def per_item(sampling: SamplingArg, n: int) -> list[Sampling]:
    """Expand a SamplingArg to one Sampling per batch item."""
    if isinstance(sampling, Sampling):
        return [sampling] * n
    items = list(sampling)
    if len(items) != n:
        raise ValueError(f"got {len(items)} Sampling objects for a batch of {n}; give one, or one per item")
    return items


@runtime_checkable
class Backend(Protocol):
    """A loaded model. ``name`` is the expert it serves."""

    name: str

    def complete(self, prompts: Sequence[str], sampling: SamplingArg) -> list[Generation]:
        """Raw completion of each prompt. Special tokens in the prompt pass through as tokens."""
        ...

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingArg) -> list[Generation]:
        """Chat completion of each conversation with the model's chat template."""
        ...

    def close(self) -> None:
        """Release the model / connections. Safe to call twice."""
        ...


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
