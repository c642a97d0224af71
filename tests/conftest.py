"""Shared fixtures. Tests never touch the developer's var/: every test gets its own WARRIORFLOW_HOME,
while joined model weights are shared across the session (joining the chunks takes seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import SMOLLM2, resolved_path


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, model_cache, monkeypatch):
    monkeypatch.setenv("WARRIORFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WARRIORFLOW_MODEL_CACHE", str(model_cache))
    monkeypatch.delenv("WARRIORFLOW_CONFIG", raising=False)
    monkeypatch.delenv("WARRIORFLOW_ROLE", raising=False)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture
def config():
    from warriorflow.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def smollm2_path(model_cache) -> Path:
    return resolved_path(SMOLLM2, model_cache)


@pytest.fixture(scope="session")
def smollm2_backend(smollm2_path):
    """One real SmolLM2 loaded once for the session (llama.cpp on CPU)."""
    from warriorflow.inference.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(SMOLLM2, smollm2_path, threads=2, n_parallel=4, ctx_per_sequence=1024)
    yield backend
    backend.close()
