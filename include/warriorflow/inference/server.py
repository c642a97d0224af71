"""Serve a GGUF model over llama.cpp's OpenAI-compatible HTTP API (``/v1/completions``,
``/v1/chat/completions``, ``/v1/models``, ``/health``).

This is llama.cpp's own server, run through ``xllamacpp``. It is the endpoint the HTTP backend
talks to in tests and on a laptop, and the same code path ``vllm serve`` takes in production.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path


def serve_gguf(model_path: Path, *, host: str = "127.0.0.1", port: int = 8080, threads: int = 2,
               n_parallel: int = 4, ctx_per_sequence: int = 2048, alias: str | None = None,
               api_key: str | None = None, ready_file: Path | None = None) -> None:
    """Serve until SIGINT/SIGTERM. Writes ``ready_file`` (the listening address) once listening."""
    import xllamacpp

    from warriorflow.errors import ModelError
    from warriorflow.inference.llamacpp import GGUF_MAGIC

    with open(model_path, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise ModelError(str(model_path), "is not a GGUF file", "serve a .gguf file")
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path)
    params.hostnames = [host]
    params.port = port
    params.n_parallel = n_parallel
    params.n_ctx = ctx_per_sequence * n_parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.warmup = False
    if alias:
        params.model_alias = {alias}
    if api_key:
        params.api_keys = [api_key]
    server = xllamacpp.Server(params)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    address = server.listening_address
    print(f"serving {model_path.name} on {address}", flush=True)
    if ready_file is not None:
        ready_file.write_text(str(address))
    stop.wait()
    del server
