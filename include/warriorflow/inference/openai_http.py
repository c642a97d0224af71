"""OpenAI-compatible HTTP backend: experts served as endpoints (``vllm serve``, llama.cpp's server, ...).

* ``complete`` posts raw prompts to ``/v1/completions``; the template's special tokens are in the
  prompt text and the server tokenizes them as special tokens. This is what mining needs, so
  chat-only endpoints cannot mine.
* ``chat`` posts to ``/v1/chat/completions``.
* Requests of a batch run concurrently, at most ``concurrency`` at a time, with a timeout each and
  retries with exponential backoff on connection errors, timeouts, 429 and 5xx.
* A server that is down, or answers something that is not the API's JSON, is a BackendError that
  names the endpoint and says what to check. The API key is never logged or put in messages.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from warriorflow.errors import BackendError, excerpt, register_secret
from warriorflow.inference.base import Conversation, Generation, SamplingArg, fan_out, per_item
from warriorflow.inference.openai_format import (
    ConstraintStyle,
    chat_body,
    check_batch,
    completion_body,
    parse_chat,
    parse_completion,
)

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class OpenAIHTTPBackend:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        constraint_style: ConstraintStyle = "vllm",
    ):
        self.name = name
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model or name
        self.concurrency = concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        self.constraint_style = constraint_style
        key = api_key or (os.environ.get(api_key_env) if api_key_env else None)
        register_secret(key)  # whatever the endpoint echoes back, the key is masked in errors and logs
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIHTTPBackend(name={self.name!r}, base_url={self.base_url!r}, model={self.model!r})"

    def _what(self, path: str) -> str:
        return f"expert '{self.name}' at {self.base_url}{path}"

    def _post(self, path: str, body: dict) -> Any:
        what = self._what(path)
        url = self.base_url + path
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random())
                log.warning("%s: %s; retry %d/%d in %.1fs", what, last_problem, attempt, self.retries, delay)
                time.sleep(delay)
            try:
                resp = self._client.post(url, json=body)
            except httpx.ConnectError as exc:
                last_problem = f"cannot connect ({exc})"
                continue
            except httpx.TimeoutException:
                last_problem = "timed out"
                continue
            except httpx.HTTPError as exc:
                last_problem = f"HTTP error ({exc.__class__.__name__}: {exc})"
                continue
            if resp.status_code in _RETRY_STATUS:
                last_problem = f"HTTP {resp.status_code}: {excerpt(resp.text)}"
                continue
            try:
                data = resp.json()
            except ValueError:
                ctype = resp.headers.get("content-type", "?")
                raise BackendError(
                    what,
                    f"answered HTTP {resp.status_code} with non-JSON ({ctype}): {excerpt(repr(resp.text))}",
                    "check that model.endpoint is the OpenAI-compatible base URL (for example "
                    "http://host:8000/v1) of a vLLM or llama.cpp server",
                ) from None
            if resp.status_code >= 400:
                err = data.get("error") if isinstance(data, dict) else None
                msg = (err.get("message") if isinstance(err, dict) else err) or str(data)[:200]
                raise BackendError(what, f"HTTP {resp.status_code}: {msg}",
                                   "check model.served_name and the request parameters" if resp.status_code != 401
                                   else "check the API key (model.api_key_env)")
            return data
        raise BackendError(
            what,
            f"no answer after {self.retries + 1} attempts: {last_problem}",
            "is the server running and reachable? check model.endpoint, or start it "
            "(vllm serve / llama.cpp server) and retry",
        )

    def _batch(self, path: str, bodies: list[dict], parse: Callable[[Any, str], Generation]) -> list[Generation]:
        def one(body: dict) -> Generation:
            return parse(self._post(path, body), self._what(path))

        return fan_out(one, bodies, self.concurrency)

    def complete(self, prompts: Sequence[str], sampling: SamplingArg) -> list[Generation]:
        check_batch(prompts, "complete")
        bodies = [completion_body(self.model, p, s, self.constraint_style)
                  for p, s in zip(prompts, per_item(sampling, len(prompts)))]
        return self._batch("/completions", bodies, parse_completion)

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingArg) -> list[Generation]:
        check_batch(conversations, "chat")
        bodies = [chat_body(self.model, c, s, self.constraint_style)
                  for c, s in zip(conversations, per_item(sampling, len(conversations)))]
        return self._batch("/chat/completions", bodies, parse_chat)

    def models(self) -> list[str]:
        """Model ids the endpoint serves (GET /v1/models); used by `warriorflow doctor`."""
        what = self._what("/models")
        try:
            resp = self._client.get(self.base_url + "/models")
        except httpx.HTTPError as exc:
            raise BackendError(what, f"cannot connect ({exc})", "is the server running? check model.endpoint") from None
        try:
            data = resp.json()
            return [m["id"] for m in data["data"]]
        except (ValueError, KeyError, TypeError):
            raise BackendError(what, f"answered HTTP {resp.status_code} with something that is not a model list: "
                               f"{resp.text[:200]!r}",
                               "check that model.endpoint is an OpenAI-compatible base URL") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIHTTPBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
