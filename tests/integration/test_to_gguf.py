"""A trained model goes back to GGUF for llama.cpp (models/to_gguf.py): SmolLM2's GGUF dequantized to
safetensors and written back with the original as template gives llama.cpp the same greedy tokens as the
original (F32: the same weights; this also checks the llama q/k permutation), and Q8_0 stays close; a
model that does not fit the template is a clear error."""

from __future__ import annotations

import json

import pytest

from warriorflow.errors import ModelError
from warriorflow.inference.base import Sampling
from warriorflow.inference.llamacpp import LlamaCppBackend
from warriorflow.models.dequantize import dequantize_gguf_to_hf
from warriorflow.models.to_gguf import hf_to_gguf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROMPTS = [[{"role": "user", "content": "Write a Python function that reverses a string."}],
           [{"role": "user", "content": "What does the len() builtin return for a dict?"}]]


def _greedy(path):
    b = LlamaCppBackend("m", path, threads=2, n_parallel=2, ctx_per_sequence=512)
    try:
        return [g.text for g in b.chat(PROMPTS, Sampling(max_tokens=24, temperature=0.0))]
    finally:
        b.close()


def test_round_trip_through_safetensors_keeps_the_model(smollm2_path, model_cache, tmp_path):
    hf = dequantize_gguf_to_hf(smollm2_path, model_cache / "smollm2-135m-instruct-hf")
    f32 = hf_to_gguf(hf, smollm2_path, tmp_path / "smollm2.f32.gguf", qtype="F32")
    original = _greedy(smollm2_path)
    # the same weights: the answers start the same (llama.cpp's Q4_K kernels round activations, so long
    # greedy continuations may part later; a wrong q/k permutation or tensor map gives nonsense at once)
    assert [t[:40] for t in _greedy(f32)] == [t[:40] for t in original]
    q8 = hf_to_gguf(hf, smollm2_path, tmp_path / "smollm2.q8.gguf")
    assert q8.stat().st_size < f32.stat().st_size / 3
    assert _greedy(q8)[0][:12] == original[0][:12]  # Q8_0 of the same weights starts the same way
    marker = json.loads((tmp_path / "smollm2.q8.gguf.json").read_text())
    mtime = q8.stat().st_mtime_ns
    assert hf_to_gguf(hf, smollm2_path, q8) == q8 and q8.stat().st_mtime_ns == mtime  # cached by content
    # the model cache is shared: pods read it as another uid, so every file written is world-readable
    for f in [q8, f32, *hf.iterdir()]:
        assert f.stat().st_mode & 0o044 == 0o044, (f, oct(f.stat().st_mode))
    assert marker["qtype"] == "Q8_0"


def test_a_model_that_does_not_fit_the_template_is_a_clear_error(smollm2_path, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    bad = tmp_path / "bad"
    bad.mkdir()
    save_file({"model.embed_tokens.weight": np.zeros((4, 8), dtype=np.float32)}, str(bad / "model.safetensors"))
    with pytest.raises(ModelError, match="lacks tensors the template has"):
        hf_to_gguf(bad, smollm2_path, tmp_path / "bad.gguf")
    save_file({"not.a.known.tensor": np.zeros((4, 8), dtype=np.float32)}, str(bad / "model.safetensors"))
    with pytest.raises(ModelError, match="has no GGUF name"):
        hf_to_gguf(bad, smollm2_path, tmp_path / "bad.gguf")
    assert not (tmp_path / "bad.gguf").exists()
