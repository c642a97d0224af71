"""OpenAI-compatible request bodies and response parsing, shared by the in-process llama.cpp server
and the HTTP backend (vLLM serve, llama.cpp server, any compatible endpoint)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from warriorflow.errors import BackendError
from warriorflow.inference.base import Conversation, Generation, Sampling, TokenLogprobs, choice_grammar

ConstraintStyle = Literal["llamacpp", "vllm", "none"]


def sampling_fields(sampling: Sampling, constraint: ConstraintStyle) -> dict[str, Any]:
    """The sampling part of a /v1/completions or /v1/chat/completions body."""
    body: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if sampling.choices:
        if constraint == "llamacpp":
            body["grammar"] = choice_grammar(sampling.choices)
        elif constraint == "vllm":
            body["structured_outputs"] = {"choice": list(sampling.choices)}
        # "none": unconstrained; the caller parses the verdict tolerantly
    if sampling.top_logprobs > 0:
        body["logprobs"] = True
        body["top_logprobs"] = sampling.top_logprobs
    return body


def completion_body(model: str | None, prompt: str, sampling: Sampling, constraint: ConstraintStyle) -> dict:
    body = {"prompt": prompt, **sampling_fields(sampling, constraint)}
    if model:
        body["model"] = model
    return body


def chat_body(model: str | None, conversation: Conversation, sampling: Sampling, constraint: ConstraintStyle) -> dict:
    body = {"messages": [dict(m) for m in conversation], **sampling_fields(sampling, constraint)}
    if model:
        body["model"] = model
    return body


def _first_choice(resp: Any, what: str) -> dict:
    if not isinstance(resp, dict):
        raise BackendError(what, f"answered {type(resp).__name__} instead of a JSON object",
                           "check that the endpoint is an OpenAI-compatible server")
    if "error" in resp:
        err = resp["error"]
        msg = err.get("message") if isinstance(err, dict) else str(err)
        hint = "raise the context size (inference.llamacpp.ctx_per_sequence) or shorten the prompt" \
            if msg and "context" in msg.lower() else "see the server's message above"
        raise BackendError(what, f"the server returned an error: {msg}", hint)
    choices = resp.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BackendError(what, f"answered JSON without 'choices': {str(resp)[:200]}",
                           "check that the endpoint is an OpenAI-compatible server (base URL ending in /v1)")
    return choices[0]


def _usage(resp: dict) -> tuple[int, int]:
    usage = resp.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return None
    return float(x)


def parse_logprobs(choice: dict) -> tuple[TokenLogprobs, ...] | None:
    """The per-token log-probabilities of an OpenAI-format choice (``logprobs.content``: chat and
    llama.cpp completions; ``logprobs.tokens``/``top_logprobs`` lists: legacy completions), or None when
    the server sent none or sent something unreadable (a server without logprobs keeps discrete verdicts)."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return None
    out: list[TokenLogprobs] = []
    content = lp.get("content")
    if isinstance(content, list):
        for pos in content:
            if not isinstance(pos, dict) or not isinstance(pos.get("token"), str):
                return None
            value = _number(pos.get("logprob"))
            if value is None:
                return None
            top = []
            for alt in pos.get("top_logprobs") or ():
                if isinstance(alt, dict) and isinstance(alt.get("token"), str):
                    alt_lp = _number(alt.get("logprob"))
                    if alt_lp is not None:
                        top.append((alt["token"], alt_lp))
            out.append(TokenLogprobs(pos["token"], value, tuple(top)))
        return tuple(out)
    tokens, values, tops = lp.get("tokens"), lp.get("token_logprobs"), lp.get("top_logprobs")
    if isinstance(tokens, list) and isinstance(values, list) and len(tokens) == len(values):
        tops = tops if isinstance(tops, list) and len(tops) == len(tokens) else [None] * len(tokens)
        for tok, value, top in zip(tokens, values, tops):
            value = _number(value)
            if not isinstance(tok, str) or value is None:
                return None
            alts = tuple((t, float(v)) for t, v in (top or {}).items()
                         if isinstance(t, str) and _number(v) is not None) if isinstance(top, dict) else ()
            out.append(TokenLogprobs(tok, value, alts))
        return tuple(out)
    return None


def parse_completion(resp: Any, what: str) -> Generation:
    choice = _first_choice(resp, what)
    text = choice.get("text")
    if not isinstance(text, str):
        raise BackendError(what, f"completion choice has no text: {str(choice)[:200]}",
                           "check that the endpoint implements /v1/completions")
    pt, ct = _usage(resp)
    return Generation(text, str(choice.get("finish_reason") or "stop"), pt, ct, logprobs=parse_logprobs(choice))


def parse_chat(resp: Any, what: str) -> Generation:
    choice = _first_choice(resp, what)
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        content = ""  # some servers send null content for an empty answer
    if not isinstance(content, str):
        raise BackendError(what, f"chat choice has no message content: {str(choice)[:200]}",
                           "check that the endpoint implements /v1/chat/completions")
    pt, ct = _usage(resp)
    return Generation(content, str(choice.get("finish_reason") or "stop"), pt, ct, logprobs=parse_logprobs(choice))


def check_batch(items: Sequence, kind: str) -> None:
    if isinstance(items, (str, bytes)):
        raise TypeError(f"{kind} takes a list; wrap a single item in a list")
