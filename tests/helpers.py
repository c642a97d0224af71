"""Plain helpers and constants for tests (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOLLM2 = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"
GEMMA = "gemma-3-270m-base"


def resolved_path(expert: str, model_cache: Path) -> Path:
    from warriorflow.config import DEFAULT_SETTINGS_FILE, load_registry
    from warriorflow.models.locate import resolve_model

    e = load_registry(DEFAULT_SETTINGS_FILE.parent / "experts.embedded.yaml").get(expert)
    return resolve_model(e.name, e.model, model_cache).path


def write_yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gguf_server(expert: str, model_cache: Path, ready: Path, timeout_s: float = 120.0):
    """Start `warriorflow serve-gguf` for an embedded expert on a free port (llama.cpp's real HTTP server);
    return (process, base URL). Stop it with :func:`stop_server`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import pytest

    port = free_port()
    env = dict(os.environ, WARRIORFLOW_MODEL_CACHE=str(model_cache), WARRIORFLOW_THREADS="2")
    env.pop("WARRIORFLOW_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "warriorflow.cli", "serve-gguf", "--expert", expert, "--port", str(port),
         "--ready-file", str(ready)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"llama.cpp server did not start within {timeout_s:.0f} s")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}/v1"


def stop_server(proc) -> None:
    import os
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def select_instruction(store, instruction_id: str, text: str, expert: str) -> None:
    """A mined instruction, already selected for battle (what the battle tests start from)."""
    store.upsert("instructions", [{"instruction_id": instruction_id, "text": text, "expert": expert,
                                   "mined_at": "2026-11-22 01:00:00", "run_id": "m1", "status": "selected"}],
                 key=["instruction_id"])
    store.upsert("instruction_selections", [{"instruction_id": instruction_id, "run_id": "m1", "pick_rank": 0,
                                             "embed_model": "m"}], key=["instruction_id"])
