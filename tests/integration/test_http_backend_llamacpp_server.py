"""The OpenAI-compatible HTTP backend against llama.cpp's real server (SmolLM2 on 127.0.0.1).

This is the code path `vllm serve` takes in production: raw-prefix mining through /v1/completions,
judging through /v1/chat/completions, constrained choice through extra body fields."""

from __future__ import annotations

import pytest

from tests.helpers import SMOLLM2, start_gguf_server, stop_server
from warriorflow.inference.base import Sampling
from warriorflow.inference.openai_http import OpenAIHTTPBackend

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX = "<|im_start|>system\nYou help with Python coding problems.<|im_end|>\n<|im_start|>user\n"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory, model_cache):
    proc, url = start_gguf_server(SMOLLM2, model_cache, tmp_path_factory.mktemp("srv") / "ready")
    yield url
    stop_server(proc)


@pytest.fixture
def http(llama_server):
    with OpenAIHTTPBackend(SMOLLM2, llama_server, model=SMOLLM2, concurrency=4, timeout_s=120,
                           constraint_style="llamacpp") as backend:
        yield backend


def test_models_endpoint_lists_the_served_alias(http):
    assert SMOLLM2 in http.models()


def test_raw_prefix_completion_mines_instructions(http):
    s = Sampling(max_tokens=48, temperature=1.0, top_p=0.99, stop=("<|im_end|>",))
    out = http.complete([PREFIX] * 3, [s.with_(seed=i) for i in range(3)])
    assert len(out) == 3 and all(g.text.strip() for g in out)
    assert all(g.prompt_tokens < 20 for g in out)  # special tokens passed through as single tokens
    assert len({g.text for g in out}) > 1


def test_chat_and_constrained_verdicts(http):
    convs = [[{"role": "user", "content": f"Compare answers A and B for task {i}. Verdict?"}] for i in range(3)]
    verdicts = http.chat(convs, Sampling(max_tokens=16, choices=("[[A]]", "[[B]]", "[[Tie]]")))
    assert all(v.text in ("[[A]]", "[[B]]", "[[Tie]]") for v in verdicts)
    answer = http.chat([[{"role": "user", "content": "Say hello."}]], Sampling(max_tokens=16, seed=1))[0]
    assert answer.text.strip() and answer.completion_tokens <= 16


def test_seeded_sampling_is_reproducible_over_http(http):
    s = Sampling(max_tokens=20, temperature=1.1, seed=5)
    assert http.complete([PREFIX], s)[0].text == http.complete([PREFIX], s)[0].text


def test_verdict_probabilities_over_http(http):
    """The server's OpenAI `logprobs` / `top_logprobs` come back per token and give the vote's probabilities."""
    from warriorflow.method.judging import verdict_probabilities

    convs = [[{"role": "user", "content": "Is print(2 + 3) (A) or print(2 - 3) (B) the sum? [[A]], [[B]] or [[Tie]]."}]]
    out = http.chat(convs, Sampling(max_tokens=16, choices=("[[A]]", "[[B]]", "[[Tie]]"), top_logprobs=5))
    assert out[0].logprobs and all(t.top for t in out[0].logprobs)
    probs = verdict_probabilities(out[0].logprobs)
    assert probs is not None and abs(sum(probs) - 1.0) < 1e-9
