"""Difficulty: who may judge, parsing scores, the median rule and every drop reason."""

from __future__ import annotations

from tests.helpers import write_yaml
from warriorflow.config import load_registry
from warriorflow.inference.base import Generation
from warriorflow.method import difficulty as d

REGISTRY = """
experts:
  - {name: a, backend: llamacpp, model: {gguf: /a.gguf}, weights_id: wa}
  - {name: a-served, backend: openai, model: {endpoint: "http://h/v1"}, weights_id: wa}
  - {name: b, backend: llamacpp, model: {gguf: /b.gguf}}
  - {name: c, backend: llamacpp, model: {gguf: /c.gguf}, roles: [mine, answer]}
  - {name: base, backend: llamacpp, model: {gguf: /g.gguf}, chat_template: {source: none},
     few_shot_prompt: mine_few_shot.txt, roles: [mine]}
"""


def test_judges_exclude_the_miner_its_weights_and_non_judges(tmp_path):
    reg = load_registry(write_yaml(tmp_path / "e.yaml", REGISTRY))
    assert [e.name for e in d.eligible_judges("a", reg)] == ["b"]
    assert [e.name for e in d.eligible_judges("b", reg)] == ["a", "a-served"]
    assert [e.name for e in d.eligible_judges("base", reg)] == ["a", "a-served", "b"]


def test_parse_score():
    assert [d.parse_score(t) for t in ("7", " 10 ", "Score: 8", "8/10", "1 or 2", "great", "11", "")] == [
        7, 10, 8, None, None, None, None, None]


def test_levels_follow_the_rubric():
    assert [d.level(x) for x in (10, 9, 8.5, 6, 5.5, 3, 2, 1, None)] == [
        "excellent", "excellent", "good", "good", "average", "average", "poor", "poor", "invalid"]


def test_aggregate_median_and_reasons():
    scores = [
        {"instruction_id": "i1", "score": 7, "valid": True}, {"instruction_id": "i1", "score": 9, "valid": True},
        {"instruction_id": "i1", "score": None, "valid": False},
        {"instruction_id": "i2", "score": 5, "valid": True}, {"instruction_id": "i2", "score": 6, "valid": True},
        {"instruction_id": "i3", "score": None, "valid": False},
    ]
    v = {x.instruction_id: x for x in d.aggregate(["i1", "i2", "i3", "i4"], scores, keep_min=6)}
    assert (v["i1"].median, v["i1"].n_valid, v["i1"].n_invalid, v["i1"].keep) == (8.0, 2, 1, True)
    assert (v["i2"].median, v["i2"].keep, v["i2"].reason) == (5.5, False, "low_difficulty")
    assert (v["i3"].median, v["i3"].reason) == (None, "no_valid_scores")
    assert v["i4"].reason == "no_eligible_judges"


class Judge:
    def __init__(self, name, answers):
        self.name, self.answers, self.calls = name, answers, []

    def chat(self, conversations, sampling):
        self.calls.append((list(conversations), sampling))
        return [Generation(self.answers[i % len(self.answers)], "stop") for i in range(len(conversations))]


def test_score_instructions_batches_per_judge_and_keeps_invalid_raw_text(tmp_path):
    reg = load_registry(write_yaml(tmp_path / "e.yaml", REGISTRY))
    ins = [{"instruction_id": "i1", "text": "Write a parser.", "expert": "a"},
           {"instruction_id": "i2", "text": "Fix my loop.", "expert": "b"}]
    backends = {"a": Judge("a", ["8"]), "a-served": Judge("a-served", ["no idea"]), "b": Judge("b", ["3"])}
    rows = d.score_instructions(ins, reg, backends, "Rate ({language}): {instruction}", "Python", "r1")
    assert sorted((r["instruction_id"], r["judge"], r["score"], r["valid"]) for r in rows) == [
        ("i1", "b", 3, True), ("i2", "a", 8, True), ("i2", "a-served", None, False)]
    assert [r["raw_text"] for r in rows if not r["valid"]] == ["no idea"]
    assert all(len(j.calls) == 1 for j in backends.values())  # one batched call per judge
    conv, sampling = backends["b"].calls[0]
    assert conv[0][0]["content"] == "Rate (Python): Write a parser." and sampling.choices == d.SCORES
