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
