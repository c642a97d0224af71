"""Mining: the seeded grid, every sanitising drop rule, provenance. A scripted backend stands in for
the model here; tests/integration/test_instruction_pipeline.py mines with the real ones."""

from __future__ import annotations

import pytest

from warriorflow.config import MiningSettings
from warriorflow.inference.base import Generation
from warriorflow.method import mining as mine
from warriorflow.method.mining import MiningPrompt

S = MiningSettings(min_chars=20, max_chars=300, max_code_fraction=0.8)
STOPS = ("<|im_end|>", "<|im_start|>user")
GOOD = "Write a Python function that merges two sorted lists into one sorted list."


def test_grid_is_the_papers_nine_configs_with_stable_distinct_seeds():
    grid = mine.sampling_grid(MiningSettings(samples_per_config=2), "run-1", "smol")
    assert len(grid) == 18
    assert {(g.temperature, g.top_p) for g in grid} == {(t, p) for t in (1.0, 1.1, 1.2) for p in (0.99, 0.995, 1.0)}
    assert len({g.seed for g in grid}) == 18
    assert grid == mine.sampling_grid(MiningSettings(samples_per_config=2), "run-1", "smol")  # reproducible
    other = mine.sampling_grid(MiningSettings(samples_per_config=2), "run-2", "smol")
    assert {g.seed for g in grid}.isdisjoint({g.seed for g in other})  # a new run draws new samples


@pytest.mark.parametrize("raw, finish, mode, expected, reason", [
    (f"  {GOOD}  ", "stop", "chat_template", GOOD, None),
    (f"{GOOD}<|im_end|>\n<|im_start|>assistant\nSure!", "stop", "chat_template", GOOD, None),
    (f"{GOOD}\n### Response:\ndef merge(a, b): ...", "stop", "chat_template", GOOD, None),
    (f"{GOOD}\nAssistant: Here you go", "stop", "chat_template", GOOD, None),
    (f"{GOOD}\nQuestion: another one", "stop", "few_shot", GOOD, None),
    (f"{GOOD}\nand then the base model runs on", "length", "few_shot", GOOD, None),
    ("   ", "stop", "chat_template", None, "empty"),
    ("<|im_end|>", "stop", "chat_template", None, "empty"),
    ("Sort it.", "stop", "chat_template", None, "too_short"),
    ("Explain " + "this code in detail " * 30, "stop", "chat_template", None, "too_long"),
    ("Write a function that parses dates and also handles time zones and", "length", "chat_template", None,
     "truncated"),
    ("```python\ndef f(x):\n    return x * 2\n\nprint(f(3))\n```", "stop", "chat_template", None, "code_only"),
    ("def f(x):\n    return x * 2\nfor i in range(3):\n    print(f(i))\nx = f(2)", "stop", "chat_template", None,
     "code_only"),
])
def test_sanitize_rules(raw, finish, mode, expected, reason):
    assert mine.sanitize(raw, finish, STOPS, mode, S) == (expected, reason)


def test_instruction_with_some_code_is_kept():
    text = ("Why does this loop never end?\n```python\nwhile True:\n    pass\n```\n"
            "I expected it to stop after ten steps.")
    assert mine.code_fraction(text) < 0.8
    assert mine.sanitize(text, "stop", STOPS, "chat_template", S) == (text, None)


class Scripted:
    name = "smol"

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def complete(self, prompts, sampling):
        self.calls.append((list(prompts), list(sampling)))
        return [Generation(text, reason) for text, reason in self.outputs[: len(prompts)]]

    def chat(self, conversations, sampling):
        raise AssertionError("mining never chats")

    def close(self):
        pass


def test_mine_expert_one_batched_call_with_provenance_and_reasons():
    settings = MiningSettings(temperatures=[1.0, 1.2], top_ps=[1.0], samples_per_config=2, min_chars=20)
    outputs = [(GOOD, "stop"), ("", "stop"), ("Sort it.", "stop"), (GOOD + " Also add tests.", "stop")]
    backend = Scripted(outputs)
    prompt = MiningPrompt("smol", "chat_template", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n", STOPS)
    result = mine.mine_expert(backend, prompt, settings, "run-7")
    assert len(backend.calls) == 1 and len(backend.calls[0][0]) == 4
    seeds = [s.seed for s in backend.calls[0][1]]
    assert len(set(seeds)) == 4 and all(s.stop == STOPS for s in backend.calls[0][1])
    assert [r["text"] for r in result.records] == [GOOD, GOOD + " Also add tests."]
    rec = result.records[0]
    assert rec["expert"] == "smol" and rec["run_id"] == "run-7" and rec["prefix_sha256"] == prompt.sha256
    assert (rec["temperature"], rec["top_p"], rec["seed"]) == (1.0, 1.0, seeds[0]) and rec["mined_at"]
    assert [d["reason"] for d in result.dropped] == ["empty", "too_short"]
    assert result.dropped[1]["raw_text"] == "Sort it." and result.dropped[1]["provenance"]["seed"] == seeds[2]
    assert result.counts == {"generated": 4, "kept": 2, "empty": 1, "too_short": 1}
