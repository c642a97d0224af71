"""Local llama.cpp backend (the embedded default).

It runs llama.cpp's own server engine in-process through ``xllamacpp`` (a prebuilt wheel): requests
are OpenAI-format dicts handled without HTTP, sequences are decoded together in ``n_parallel`` slots,
and constrained choice is a GBNF grammar. Each model file is loaded once per process and shared by
every backend object that asks for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from warriorflow.errors import BackendError, ModelError
from warriorflow.inference.base import Conversation, Generation, SamplingArg, fan_out, per_item
from warriorflow.inference.openai_format import (
    chat_body,
    check_batch,
    completion_body,
    parse_chat,
    parse_completion,
)

_LOCK = threading.Lock()
_SERVERS: dict[tuple, list] = {}  # key -> [server, refcount]

GGUF_MAGIC = b"GGUF"


def _load_server(path: Path, threads: int, n_parallel: int, ctx_per_sequence: int, verbosity: int,
                 chat_template: str | None):
    try:
        import xllamacpp
    except ImportError as exc:  # pragma: no cover - xllamacpp is a core dependency
        raise BackendError("llama.cpp backend", f"xllamacpp is not importable ({exc})",
                           "pip install -r requirements/lock.txt") from None
    if not path.is_file():
        raise ModelError(str(path), "model file not found", "run `warriorflow doctor` to see which expert needs it")
    with open(path, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ModelError(str(path), "is not a GGUF file (bad magic bytes)",
                             "the llamacpp backend needs GGUF weights; use backend vllm for a HF directory")
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = n_parallel
    params.n_ctx = ctx_per_sequence * n_parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = verbosity
    params.warmup = False
    if chat_template:
        params.chat_template = chat_template
    try:
        return xllamacpp.Server(params)
    except Exception as exc:  # the engine raises RuntimeError on a bad model
        raise ModelError(str(path), f"llama.cpp could not load the model: {exc}",
                         "check that the file is a complete GGUF supported by this llama.cpp build") from None


class LlamaCppBackend:
    """An expert served by an in-process llama.cpp engine."""

    def __init__(self, name: str, model_path: str | Path, *, threads: int = 2, n_parallel: int = 4,
                 ctx_per_sequence: int = 2048, verbosity: int = 0, chat_template: str | None = None):
        """``chat_template``: a Jinja template used instead of the one in the GGUF (or for a GGUF without one)."""
        self.name = name
        self.model_path = Path(model_path)
        self.n_parallel = n_parallel
        self._key = (str(self.model_path.resolve()), threads, n_parallel, ctx_per_sequence, chat_template)
        with _LOCK:
            entry = _SERVERS.get(self._key)
            if entry is None:
                entry = [_load_server(self.model_path, threads, n_parallel, ctx_per_sequence, verbosity,
                                      chat_template), 0]
                _SERVERS[self._key] = entry
            entry[1] += 1
            self._server = entry[0]
        self._closed = False

    def _what(self) -> str:
        return f"expert '{self.name}' (llama.cpp, {self.model_path.name})"

    def _run(self, handler: Callable[[dict], Any], bodies: list[dict], parse) -> list[Generation]:
        if self._closed:
            raise BackendError(self._what(), "backend is closed", "create a new backend")

        def one(body: dict) -> Generation:
            try:
                resp = handler(body)
            except Exception as exc:
                raise BackendError(self._what(), f"llama.cpp failed: {exc}") from None
            return parse(resp, self._what())

        return fan_out(one, bodies, self.n_parallel)

    def complete(self, prompts: Sequence[str], sampling: SamplingArg) -> list[Generation]:
        check_batch(prompts, "complete")
        bodies = [completion_body(None, p, s, "llamacpp")
                  for p, s in zip(prompts, per_item(sampling, len(prompts)))]
        return self._run(self._server.handle_completions, bodies, parse_completion)

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingArg) -> list[Generation]:
        check_batch(conversations, "chat")
        bodies = [chat_body(None, c, s, "llamacpp")
                  for c, s in zip(conversations, per_item(sampling, len(conversations)))]
        return self._run(self._server.handle_chat_completions, bodies, parse_chat)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _LOCK:
            entry = _SERVERS.get(self._key)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _SERVERS[self._key]
        self._server = None

    def __enter__(self) -> LlamaCppBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def loaded_models() -> list[str]:
    """Paths of the models loaded in this process (for diagnostics and tests)."""
    with _LOCK:
        return [k[0] for k in _SERVERS]
