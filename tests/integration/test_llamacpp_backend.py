"""The embedded default backend on a real model: SmolLM2-135M-Instruct via llama.cpp on CPU."""

from __future__ import annotations

import pytest

from tests.helpers import SMOLLM2
from warriorflow.errors import ModelError
from warriorflow.inference.base import Backend, Sampling
from warriorflow.inference.llamacpp import LlamaCppBackend, loaded_models

PREFIX = "<|im_start|>system\nYou help with Python coding problems.<|im_end|>\n<|im_start|>user\n"
VERDICTS = ("[[A]]", "[[B]]", "[[Tie]]")

pytestmark = pytest.mark.slow


def test_complete_a_batch_from_a_chat_template_prefix(smollm2_backend):
    assert isinstance(smollm2_backend, Backend)
    s = Sampling(max_tokens=48, temperature=1.0, top_p=0.99, stop=("<|im_end|>",))
    out = smollm2_backend.complete([PREFIX] * 3, [s.with_(seed=i) for i in range(3)])
    assert len(out) == 3 and all(g.text.strip() for g in out)
    assert all("<|im_start|>" not in g.text for g in out)  # special tokens in the prompt were parsed as tokens
    assert out[0].prompt_tokens < 20  # ~15 tokens, far fewer than the prompt's characters
    assert len({g.text for g in out}) > 1  # different seeds, different samples


def test_same_seed_same_text(smollm2_backend):
    s = Sampling(max_tokens=24, temperature=1.2, top_p=1.0, seed=42)
    a = smollm2_backend.complete([PREFIX], s)[0].text
    assert smollm2_backend.complete([PREFIX], s)[0].text == a


def test_chat_batch_and_constrained_choice(smollm2_backend):
    convs = [[{"role": "user", "content": f"Which answer is better, A or B? Case {i}."}] for i in range(4)]
    out = smollm2_backend.chat(convs, Sampling(max_tokens=16, choices=VERDICTS))
    assert [g.text in VERDICTS for g in out] == [True] * 4
    free = smollm2_backend.chat(convs[:2], Sampling(max_tokens=12))
    assert all(g.text and g.completion_tokens <= 12 for g in free)


def test_model_is_loaded_once_per_process(smollm2_path, smollm2_backend):
    n = len(loaded_models())
    again = LlamaCppBackend(SMOLLM2, smollm2_path, threads=2, n_parallel=4, ctx_per_sequence=1024)
    assert len(loaded_models()) == n and again._server is smollm2_backend._server
    again.close()
    assert str(smollm2_path.resolve()) in loaded_models()  # still held by the session backend


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "weights.gguf"
    bad.write_bytes(b"<html>404</html>")
    with pytest.raises(ModelError, match="is not a GGUF file"):
        LlamaCppBackend("x", bad)
    with pytest.raises(ModelError, match="model file not found"):
        LlamaCppBackend("x", tmp_path / "missing.gguf")


def test_verdict_probabilities_from_real_logprobs(smollm2_backend):
    """llama.cpp reports the raw distribution per token (before the grammar): read along the generated path,
    P([[A]]), P([[B]]), P([[Tie]]) sum to 1, and the constrained greedy verdict has the most mass at its
    divergence token; without top_logprobs nothing is reported."""
    from warriorflow.method.judging import parse_verdict, verdict_probabilities

    prompt = ("Which response adds 2 and 3 correctly?\n[Response A]\nprint(2 + 3)\n[End of Response A]\n"
              "[Response B]\nprint(2 - 3)\n[End of Response B]\nAnswer [[A]], [[B]] or [[Tie]].")
    convs = [[{"role": "user", "content": prompt}], [{"role": "user", "content": prompt.replace("2 - 3", "2+3 ")}]]
    out = smollm2_backend.chat(convs, Sampling(max_tokens=8, choices=VERDICTS, top_logprobs=10))
    for g in out:
        assert g.text in VERDICTS and g.logprobs
        assert "".join(t.token for t in g.logprobs).startswith(g.text)
        probs = verdict_probabilities(g.logprobs)
        assert probs is not None and abs(sum(probs) - 1.0) < 1e-9 and min(probs) >= 0.0
        picked = {"A": 0, "B": 1, "tie": 2}[parse_verdict(g.text)]
        assert probs[picked] == max(probs)
    plain = smollm2_backend.chat(convs[:1], Sampling(max_tokens=8, choices=VERDICTS))
    assert plain[0].logprobs is None
