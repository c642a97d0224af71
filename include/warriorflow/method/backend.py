"""What the method asks of a model: the batched ``Backend`` protocol, its ``Sampling`` and ``Generation``.

All calls are batched: a list in, a list out in the same order. A backend never makes the caller wait
on one request at a time. ``choices`` constrains the output to exactly one of the given strings; it is
how verdicts (``[[A]]``/``[[B]]``/``[[Tie]]``) and 1-10 scores are asked for. The method's steps take a
backend as an argument; :mod:`warriorflow.inference` implements the protocol (llama.cpp, vLLM, HTTP).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, runtime_checkable


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
    top_logprobs: int = 0  # > 0: ask for this many alternatives per generated token (Generation.logprobs)

    def with_(self, **changes) -> Sampling:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated token, its log-probability and the top alternatives at its position.

    ``top`` holds ``(token text, logprob)`` pairs as the engine reports them *before* any constraint
    (llama.cpp and vLLM report the model's raw distribution), the generated token included."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Generation:
    """One generated text and how it ended. ``logprobs``: per generated token, when asked
    (``Sampling.top_logprobs``) and the backend exposes them; ``None`` otherwise."""

    text: str
    finish_reason: str  # "stop" | "length" | ...
    prompt_tokens: int = 0
    completion_tokens: int = 0
    meta: dict = field(default_factory=dict)
    logprobs: tuple[TokenLogprobs, ...] | None = None


SamplingArg = Sampling | Sequence[Sampling]
"""One Sampling for the whole batch, or one per item (e.g. a seed per mined sample)."""


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
