"""Execution evidence: the responses' code run in the sandbox against the tests of the question and of both
responses (CodeT's dual agreement). Extraction edge cases, the vote rule, the judge prompt's summary, real
sandbox runs (none of the hostile programs fakes a pass), the execute job through the real stages, and
forged execution result files quarantined whole."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import GEMMA, QWEN, SMOLLM2, select_instruction, write_yaml
from warriorflow.method import execution as X
from warriorflow.method import ids
from warriorflow.method.battle_jobs import BatchInputError, VoteRequest, cast_votes
from warriorflow.method.jobs import JobInput

# ------------------------------------------------------------------------------------------------ code


def test_no_code_is_no_code():
    for text in ("", "   ", "Yes", "I would use a dictionary here.", "answer by c1: w3 {braces} [[A]]"):
        assert X.extract_code(text) == ""


def test_fences_are_joined_in_order_and_other_languages_are_left_out():
    text = ("First:\n```python\ndef a():\n    return 1\n```\nthen run\n```bash\npip install x\n```\n"
            "```py\ndef b():\n    return a() + 1\n```\n```json\n{\"k\": 1}\n```\n"
            "```\ndef c():\n    return 3\n```\n```\n[1, 2, 3]\n```\n```pycon\n>>> a()\n1\n```\n"
            "```python\n>>> b()\n2\n```")
    code = X.extract_code(text)
    assert code == "def a():\n    return 1\n\ndef b():\n    return a() + 1\n\ndef c():\n    return 3"


def test_a_python_fence_that_does_not_parse_is_code_with_a_syntax_error():
    plan = X.plan_execution("Write a Python function f.", "```python\ndef f(:\n    pass\n```", "def f():\n    pass\n")
    assert plan.has_code("attacker") and plan.status_before_running("attacker") == "syntax_error"
    assert plan.status_before_running("defender") is None  # a whole text that parses is code


def test_unfenced_code_after_prose_and_an_unclosed_fence():
    assert X.extract_code("Here is the code:\ndef f(x):\n    return x * 2\n\nIt doubles.") == \
        "def f(x):\n    return x * 2"
    assert X.extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1"  # cut off at max tokens


def test_runnable_drops_top_level_asserts_and_main_blocks():
    code = ("def f(x):\n    assert x >= 0\n    return x\n\nassert f(1) == 1\nassert (f(2)\n        == 2)\n"
            "if __name__ == '__main__':\n    print(f(int(input())))\nx = 1; assert x\n")
    run = X.runnable(code)
    assert "input" not in run and "assert f(1)" not in run and "assert x >= 0" in run  # inside a function: kept
    assert X.runnable("def f(:\n") == "def f(:\n"  # unchanged when it does not parse


# ------------------------------------------------------------------------------------------------ tests
def _sources(text: str, origin: str = "attacker") -> list[str]:
    return [t.source for t in X.extract_tests(text, origin)]


def test_asserts_spanning_lines_and_and_are_split():
    text = "```python\nassert add(1,\n           2) == 3\nassert add(0, 0) == 0 and not is_neg(add(1, 1))\n```"
    assert _sources(text) == ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert not is_neg(add(1, 1))"]
    assert _sources("Your code should pass:\nassert add(2, 2) == 4\n") == ["assert add(2, 2) == 4"]  # in prose


@pytest.mark.parametrize("hostile", [
    "assert True or x", "assert x", "assert add(1, 2) == add(2, 1)", "assert 1 == 1",
    "assert __import__('os')._exit(0) == 1", "assert open('/etc/passwd').read() == ''",
    "assert (lambda: 1)() == 1", "assert print(1) is None", "assert add.__code__ == 1",
    "assert (y := add(1, 1)) == 2", "assert getattr(add, 'x')() == 1", "assert sys.exit(0) == 1",
    "assert os.kill(1, 9) == 1", "assert exec('x=1') is None",
])
def test_tautologies_and_hostile_probes_are_no_tests(hostile):
    assert X.extract_tests(f"```python\n{hostile}\n```", "defender") == []


def test_doctests_with_multi_line_output_print_and_reprs():
    text = '''def grid(n):
    """A grid.

    >>> grid(2)
    [[0, 0],
     [0, 0]]
    >>> print(name(1))
    one
    line two
    >>> point(1)
    Point(x=1)
    >>> boom(1)
    Traceback (most recent call last):
    ValueError: no
    >>> p = point(2)
    >>> p.x
    2
    >>> grid(0) == []
    """
'''
    assert _sources(text, "instruction") == [
        "assert grid(2) == [[0, 0], [0, 0]]", "assert str(name(1)) == 'one\\nline two'",
        "assert repr(point(1)) == 'Point(x=1)'", "assert grid(0) == []"]
    # ``p.x`` needs the setup statement: its probe names ``p``, which no response defines, so it never counts
    assert [t.names for t in X.extract_tests(text, "instruction")][:1] == [frozenset({"grid"})]


def test_example_lines_and_unittest_assertions():
    text = ("Examples:\n- add(1, 2) -> 3\n* add(2, 2) ➞ 4\nadd(5, 5) returns 10\nadd(x, 1) -> 2\n"
            "print(add(3, 3))  # Output: 6\n"
            "```python\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(add(0, 1), 1)\n"
            "        self.assertTrue(is_pos(1))\n        self.assertAlmostEqual(half(1), 0.5)\n```")
    assert _sources(text, "instruction") == [
        "assert add(0, 1) == 1", "assert is_pos(1)", "assert math.isclose(half(1), 0.5, rel_tol=1e-09, abs_tol=5e-08)",
        "assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(5, 5) == 10", "assert add(3, 3) == 6"]


def test_test_ids_are_stable_and_a_test_found_twice_keeps_its_first_origin():
    a = X.extract_tests("assert add(1, 2) == 3", "attacker")[0]
    b = X.extract_tests(">>> add(1, 2)\n3\n", "instruction")[0]
    assert a.test_id == b.test_id and a.origin != b.origin
    plan = X.plan_execution("Write a function add.\n>>> add(1, 2)\n3\n",
                            "```python\ndef add(a, b):\n    return a + b\nassert add(1, 2) == 3\n```",
                            "```python\ndef add(a, b):\n    return a + b\n```")
    assert [(t.origin, t.source) for t in plan.tests] == [("instruction", "assert add(1, 2) == 3")]


def test_which_tests_count():
    inst = "Write a function add(a, b).\n>>> add(1, 2)\n3\n>>> total([1])\n1\n"
    att = "```python\ndef add(a, b):\n    return a + b\ndef helper(x):\n    return x\nassert helper(1) == 1\n" \
          "assert add(1, 1) == 2\nassert add(2, 2) == len('abcd')\n```"
    dfd = "```python\nfrom math import *\ndef plus(a, b):\n    return a + b\nassert plus(1, 1) == 2\n```"
    plan = X.plan_execution(inst, att, dfd)
    got = [(t.origin, t.source) for t in plan.tests]
    # add: the attacker defines it; total: the defender's star import might; the attacker's helper test: the
    # defender may define it (star import); plus(): only the defender defines it, so it is not a fair test
    assert ("instruction", "assert add(1, 2) == 3") in got and ("attacker", "assert add(1, 1) == 2") in got
    assert ("defender", "assert plus(1, 1) == 2") not in got
    assert X.plan_execution("Explain the GIL.", att, dfd).tests == ()


@pytest.mark.parametrize("text", [
    "(" * 5000 + "1" + ")" * 5000, "assert " + "(" * 3000 + "f(1)" + ")" * 3000 + " == 1",
    ">>> " + "[" * 3000 + "\n1\n",
    "\x00def f(): pass\x00", "assert f(" + "[" * 500 + "]" * 500 + ") == " + "[" * 2000 + "]" * 2000,
    "f(1) -> " + "(" * 5000, "def f():\n" + "    if 1:\n" * 200 + "        pass", "```python\n```", "```",
    "assert f(1) == 1" + " + 1" * 20000, "assert f(1) == " + "9" * 5000,
])
def test_pathological_text_is_no_code_and_no_tests_never_a_traceback(text):
    X.extract_code(text), X.extract_tests(text, "instruction"), X.is_code_task(text)
    plan = X.plan_execution(text, text, text)
    assert isinstance(plan.tests, tuple)


@pytest.mark.parametrize(("instruction", "code"), [
    ("Write a Python function that merges two sorted lists.", True),
    ("Implement a class LRUCache with get and put.", True),
    ("Given a list of integers, return the largest gap.", True),
    ("Fix this:\n```python\nprint(1\n```", True),
    ("What does this print?\n>>> sorted([3, 1])", True),
    ("Python, please add a new feature to remove duplicate items from a list.\n\nExample Input\n[1, 2, 2]", True),
    ("Count the vowels in each word of a sentence.", True),
    ("Input: [3, 1, 2]\nOutput: [1, 2, 3]", True),
    ("Explain the difference between a list and a tuple in Python.", False),
    ("How do you find the best Python library for automation?", False),
    ("What is the time complexity of quicksort?", False),
    ("Write a poem about the sea.", False),
    ("", False),
])
def test_is_code_task(instruction, code):
    assert X.is_code_task(instruction) is code


# ------------------------------------------------------------------------------------------------ the vote
def _rec(status: str = "ok", inst: tuple = (0, 0), total: tuple = (0, 0), role: str = "attacker",
         code_task: bool = True, has_code: bool = True) -> dict:
    return {"role": role, "code_task": code_task, "has_code": has_code, "status": status,
            "tests": {"instruction": list(inst), "attacker": [0, 0], "defender": [0, 0], "all": list(total)}}


@pytest.mark.parametrize(("att", "dfd", "winner"), [
    (_rec(), _rec(role="defender"), None),  # both run, no tests
    (_rec(inst=(2, 1), total=(3, 2)), _rec(inst=(2, 2), total=(3, 2), role="defender"), "defender"),  # the spec
    (_rec(inst=(2, 1), total=(5, 5)), _rec(inst=(2, 2), total=(5, 2), role="defender"), "defender"),  # spec first
    (_rec("error"), _rec(role="defender"), "defender"),  # one crashes
    (_rec(), _rec("syntax_error", role="defender"), "attacker"),
    (_rec(total=(4, 1)), _rec("timeout", total=(4, 0), role="defender"), "attacker"),
    (_rec("timeout"), _rec("memory", role="defender"), None),  # neither runs
    (_rec(inst=(1, 1), total=(3, 2)), _rec(inst=(1, 1), total=(3, 3), role="defender"), "defender"),
    (_rec(inst=(2, 1), total=(3, 2)), _rec(inst=(2, 1), total=(3, 2), role="defender"), None),  # equal
    (_rec("skipped", code_task=False), _rec("skipped", code_task=False, role="defender"), None),  # not a code task
    (_rec("no_code", has_code=False), _rec(role="defender"), "defender"),  # code that runs vs no code at all
    (_rec(), _rec("no_code", has_code=False, role="defender"), "attacker"),
    (_rec("no_code", has_code=False), _rec("error", role="defender"), None),  # never a vote for no code
    (_rec("no_code", has_code=False), _rec("no_code", has_code=False, role="defender"), None),
    (_rec("no_code", has_code=False), _rec("sandbox_error", role="defender"), None),
    (_rec("sandbox_error"), _rec(role="defender"), None),
])
def test_the_vote_rule(att, dfd, winner):
    assert X.execution_vote(att, dfd)[0] == winner


def test_summaries_use_fixed_words_and_the_judge_section_is_empty_without_evidence():
    ok = {**_rec(inst=(2, 2), total=(4, 3)), "tests": {"instruction": [2, 2], "attacker": [1, 1],
                                                       "defender": [1, 0], "all": [4, 3]}}
    assert X.execution_summary(ok) == ("code runs; passes 3/4 tests (the question's examples 2/2; its own tests "
                                       "1/1; the other response's tests 0/1)")
    assert X.execution_summary(_rec("error")) == "code does not run to the end (it raises an exception)"
    assert X.execution_summary(_rec("skipped", code_task=False)) == ""
    assert X.judge_section("", "") == ""
    section = X.judge_section("no code", "code runs; no tests found")
    assert "Response A: no code\nResponse B: code runs; no tests found" in section


def test_the_judge_prompt_shows_the_section_only_when_there_is_one():
    from warriorflow.config import PROMPTS_DIR, ArenaSettings
    from warriorflow.method.judging import render_judge_prompt

    template = (PROMPTS_DIR / "battle_judge.txt").read_text()
    without_slot = template.replace("[End of Response B]\n{execution}\n", "[End of Response B]\n\n")
    plain = render_judge_prompt(template, "q", "a", "b")
    assert plain == render_judge_prompt(without_slot, "q", "a", "b")  # off: the prompt of before, byte for byte

    class Capture:
        prompts: list = []

        def chat(self, convs, sampling):
            from warriorflow.method.backend import Generation

            self.prompts.extend(c[-1]["content"] for c in convs)
            return [Generation("[[A]]", "stop") for _ in convs]

    section = X.judge_section("code runs; no tests found", "no code")
    request = VoteRequest("v", "b", "j", "attacker_first", "q", "a", "b", section)
    assert VoteRequest(**request.to_dict()) == request and "execution" not in VoteRequest(
        "v", "b", "j", "attacker_first", "q", "a", "b").to_dict()
    cast_votes([request], Capture(), template, ArenaSettings(), "r")
    assert "[Execution results]" in Capture.prompts[-1] and "Response B: no code" in Capture.prompts[-1]
    assert Capture.prompts[-1].index("[End of Response B]") < Capture.prompts[-1].index("[Execution results]")


def test_job_inputs_check_the_optional_execution_field_and_the_execute_step():
    vote = {"vote_id": "v", "battle_id": "b", "judge": "j", "shown_order": "attacker_first", "instruction": "q",
            "first": "a", "second": "b"}
    base = {"job_id": "j", "step": "judge", "model": "j", "run_id": "r",
            "params": {"arena": {}, "template": "t"}}
    JobInput.from_json(json.dumps({**base, "items": [vote]}))
    JobInput.from_json(json.dumps({**base, "items": [{**vote, "execution": "x"}]}))
    for bad in ({**vote, "execution": 3}, {**vote, "other": "x"}):
        with pytest.raises(BatchInputError):
            JobInput.from_json(json.dumps({**base, "items": [bad]}))
    item = {"battle_id": "b", "instruction": "q", "attacker": "a", "defender": "d", "attacker_response_id": "ra",
            "defender_response_id": "rd"}
    execute = {"job_id": "x", "step": "execute", "model": "sandbox", "run_id": "r", "params": {"limits": {}}}
    JobInput.from_json(json.dumps({**execute, "items": [item]}))
    with pytest.raises(BatchInputError, match="sandbox"):
        JobInput.from_json(json.dumps({**execute, "model": "gpt", "items": [item]}))
    with pytest.raises(BatchInputError):
        JobInput.from_json(json.dumps({**execute, "items": [{**item, "attacker": None}]}))
    from warriorflow.stages.execute import sandbox_limits

    with pytest.raises(BatchInputError, match="limits"):
        sandbox_limits({"wall_s": 5})
    with pytest.raises(BatchInputError, match="wall_s"):
        sandbox_limits({"memory_mb": 64, "cpu_s": 1, "wall_s": "5", "nproc": 4, "file_size_mb": 1, "tmpfs_mb": 1,
                        "stdout_kb": 1})


def test_a_record_must_follow_from_the_texts():
    plan = X.plan_execution("Write add.\n>>> add(1, 2)\n3\n", "def add(a, b):\n    return a + b\n", "no code here")
    [test] = plan.tests
    honest = X.make_record(plan, "attacker", "ok", {test.test_id: "pass"}, 1, 0.2, "")
    assert X.check_record(plan, "attacker", honest) == []
    assert X.check_record(plan, "defender", X.make_record(plan, "defender", "no_code", {}, 0, 0.0, "")) == []
    forged = [
        {**honest, "status": "timeout"},  # a run status with results
        {**honest, "results": {test.test_id: "pass", "t0000": "pass"}},
        {**honest, "tests": {**honest["tests"], "all": [1, 1], "instruction": [5, 5]}},
        {**honest, "has_code": False},
        {**honest, "runs": 0},
        {**honest, "role": "defender"},
        {**honest, "extra": 1},
        {**honest, "results": {test.test_id: "yes"}},
        ["not", "a", "record"],
    ]
    for record in forged:
        assert X.check_record(plan, "attacker", record), record
    assert X.check_record(plan, "defender", X.make_record(plan, "defender", "ok", {}, 1, 0.1, ""))  # it has no code


# ------------------------------------------------------------------------------------------------ the sandbox
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="the sandbox needs bubblewrap")

ADD = "Write a Python function `add(a, b)` that returns a + b.\n\n>>> add(1, 2)\n3\n>>> add(-1, 1)\n0\n"
HONEST = "```python\ndef add(a, b):\n    return a + b\n```"
HALF = "\nAlso write `half(x)`:\nassert math.isclose(half(1), 0.5)\n"
HONEST_HALF = "```python\nimport math\n\ndef add(a, b):\n    return a + b\n\ndef half(x):\n    return x / 2\n```"
HOSTILE = {
    "patches AssertionError and builtins": "import builtins\nbuiltins.AssertionError = KeyError\n"
                                           "builtins.bool = lambda x: True\nbuiltins.repr = lambda x: '3'\n"
                                           "def add(a, b):\n    return None\n",
    "sys.exit(0) before the tests": "import sys\ndef add(a, b):\n    return a + b\nsys.exit(0)\n",
    "os._exit(0) before the tests": "import os\ndef add(a, b):\n    return a + b\nos._exit(0)\n",
    "os._exit(0) in the function": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "prints PASS markers": "print('r ready\\nr t0 pass\\npassed\\nPASS ' * 50)\ndef add(a, b):\n    print('PASS')\n",
    "an infinite loop at import": "while True:\n    pass\ndef add(a, b):\n    return a + b\n",
    "an infinite loop in the function": "def add(a, b):\n    while True:\n        pass\n",
    "an object equal to everything": "class Eq:\n    def __eq__(self, o):\n        return True\n"
                                     "def add(a, b):\n    return Eq()\n",
    "an int subclass equal to everything": "class Eq(int):\n    def __eq__(self, o):\n        return True\n"
                                           "    __hash__ = int.__hash__\ndef add(a, b):\n    return Eq(7)\n",
    "reads the tests from memory": "import sys\n"
                                   "def add(a, b):\n    needle = ''.join(['_wf_', 'report(', '\"ready\")'])\n"
                                   "    f = sys._getframe().f_back\n    while f is not None:\n"
                                   "        for v in f.f_locals.values():\n"
                                   "            for w in (v.values() if isinstance(v, dict) else [v]):\n"
                                   "                if isinstance(w, str) and needle in w:\n"
                                   "                    return 3 if (a, b) == (1, 2) else 0\n"
                                   "        f = f.f_back\n    return 99\n",
    "writes on every descriptor": "import os\nfor fd in range(3, 64):\n    try:\n"
                                  "        os.write(fd, b'r ready\\nr x pass\\npassed\\n')\n    except OSError:\n"
                                  "        pass\ndef add(a, b):\n    return 99\n",
    "kills the launcher": "import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "patches math.isclose": "import math\nmath.isclose = lambda *a, **k: True\ndef add(a, b):\n    return 99\n"
                            "def half(x):\n    return 99\n",
}


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory):
    from warriorflow.config import CONFIG_DIR, load_config

    home = tmp_path_factory.mktemp("exec")
    settings = write_yaml(home / "settings.yaml", f"""
experts_file: {CONFIG_DIR / "experts.embedded.yaml"}
paths: {{home: {home / "home"}}}
arena: {{execution: {{wall_s: 2}}}}
evaluation: {{sandbox: {{memory_mb: 512, cpu_s: 2, workers: 2}}}}
""")
    return load_config(settings)


@needs_bwrap
def test_real_programs_run_and_the_honest_one_wins(fast_config):
    from warriorflow.stages.execute import execution_records

    buggy = "```python\ndef add(a, b):\n    return a - b\n\nassert add(3, 1) == 2\n```"
    [r] = execution_records(fast_config, [{"id": "1", "instruction": ADD, "response_a": buggy,
                                           "response_b": HONEST}])
    assert r["vote"] == "defender" and "instruction tests passed 0/2 vs 2/2" in r["why"]
    assert r["attacker"]["tests"]["all"] == [3, 1] and r["defender"]["tests"]["all"] == [3, 2]  # dual agreement
    [crash] = execution_records(fast_config, [{"instruction": ADD, "response_a": "```python\nraise ValueError\n"
                                               "def add(a, b):\n    return a + b\n```", "response_b": buggy}])
    assert crash["attacker"]["status"] == "error" and crash["vote"] == "defender"


@needs_bwrap
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_no_hostile_program_fakes_a_pass(fast_config, name):
    from warriorflow.stages.execute import execution_records

    hostile = f"```python\n{HOSTILE[name]}```"
    [r] = execution_records(fast_config, [{"instruction": ADD + HALF, "response_a": hostile,
                                           "response_b": HONEST_HALF}])
    assert r["attacker"]["tests"]["all"] == [3, 0], (name, r["attacker"])
    assert r["defender"]["tests"]["all"] == [3, 3] and r["vote"] == "defender", (name, r["why"])


@needs_bwrap
def test_a_test_that_ends_a_run_is_charged_and_the_others_run_again(fast_config):
    from warriorflow.stages.execute import execution_records

    slow = ("```python\ndef add(a, b):\n    if a == 1:\n        while True:\n            pass\n    return a + b\n"
            "assert add(5, 5) == 10\n```")
    [r] = execution_records(fast_config, [{"instruction": ADD, "response_a": slow, "response_b": HONEST}])
    rec = r["attacker"]
    assert rec["status"] == "ok" and rec["runs"] == 2 and sorted(rec["results"].values()) == ["pass", "pass",
                                                                                               "timeout"]


# ------------------------------------------------------------------------------------------------ the stages
IID = ids.instruction_id(ADD)
SAMPLING = {"max_tokens": 64, "temperature": 0.0, "top_p": 1.0}


class CodeBackends:
    """A job loader: SmolLM2 answers with correct code, Qwen with a bug; judges always say [[A]]."""

    ANSWERS = {SMOLLM2: HONEST, QWEN: "```python\ndef add(a, b):\n    return a * b\n```"}

    def __init__(self):
        self.prompts: list[str] = []

    def __call__(self, config, job):
        from warriorflow.method.backend import Generation

        loader = self

        class Backend:
            def chat(self, convs, sampling):
                loader.prompts.extend(c[-1]["content"] for c in convs)
                if job.step == "respond":
                    return [Generation(CodeBackends.ANSWERS[job.model], "stop") for _ in convs]
                return [Generation("[[A]]", "stop") for _ in convs]

            def close(self):
                pass

        return Backend(), lambda: None


@pytest.fixture
def executed(config):
    """One battle (SmolLM2 attacks with correct code, Qwen defends with a bug), its responses ingested and its
    execute job run (not ingested). Returns (config, execute jobs)."""
    from warriorflow.stages.base import run_as_writer
    from warriorflow.stages.execute import plan_executions_stage
    from warriorflow.stages.ingest_battles import ingest_responses_stage
    from warriorflow.stages.jobs import run_job
    from warriorflow.stages.plan import plan_stage
    from warriorflow.store.objects import open_objects
    from warriorflow.store.rating_store import RatingStore

    if shutil.which("bwrap") is None:
        pytest.skip("the sandbox needs bubblewrap")
    with RatingStore(config.duckdb_path) as store:
        select_instruction(store, IID, ADD, SMOLLM2)
    objects = open_objects(config)
    loader = CodeBackends()
    for j in run_as_writer(config, plan_stage, "b1").value:
        run_job(config, objects, j["key"], loader=loader)
    run_as_writer(config, ingest_responses_stage, "b1")
    jobs = run_as_writer(config, plan_executions_stage, "b1").value
    assert [(j["step"], j["model"], j["items"]) for j in jobs] == [("execute", "sandbox", 1)]
    for j in jobs:
        result = run_job(config, objects, j["key"], loader=loader)
        assert result.receipt["models_loaded"] == []  # the sandbox, no model
    return config, jobs


def test_the_execute_job_feeds_the_judges_and_the_execution_vote(executed):
    from warriorflow.stages.base import run_as_writer
    from warriorflow.stages.execute import ingest_executions_stage, plan_executions_stage
    from warriorflow.stages.jobs import run_job
    from warriorflow.stages.judging import plan_votes_stage
    from warriorflow.store.executions import execution_summaries, execution_verdicts
    from warriorflow.store.objects import open_objects
    from warriorflow.store.rating_store import RatingStore

    config, _jobs = executed
    report = run_as_writer(config, ingest_executions_stage, "b1")
    assert report.counts == {"executions": 1, "execution_votes": 1}
    assert run_as_writer(config, plan_executions_stage, "b1").value == []  # executed: never again
    with RatingStore(config.duckdb_path, read_only=True) as store:
        rows = {r["role"]: r for r in store.query("SELECT * FROM executions")}
        bid = rows["attacker"]["battle_id"]
        assert execution_verdicts(store) == {bid: "attacker"} == execution_verdicts(store, [bid])
        assert execution_verdicts(store, ["other"]) == {}
        summaries = execution_summaries(store, [bid])[bid]
    assert (rows["attacker"]["tests_passed"], rows["defender"]["tests_passed"]) == (2, 0)
    assert rows["attacker"]["response_id"] != rows["defender"]["response_id"]
    assert [t["result"] for t in json.loads(rows["defender"]["details"])["tests"]] == ["fail", "fail"]
    assert summaries["attacker"].startswith("code runs; passes 2/2")
    judge_jobs = run_as_writer(config, plan_votes_stage, "b1", round_no=1).value
    objects = open_objects(config)
    loader = CodeBackends()
    for j in judge_jobs:
        job = JobInput.from_json(objects.get_bytes(j["key"]))
        assert all("[Execution results]" in i["execution"] for i in job.items)
        run_job(config, objects, j["key"], loader=loader)
    assert loader.prompts and all("passes 2/2 tests" in p and "passes 0/2 tests" in p for p in loader.prompts)


def test_with_the_summary_off_the_judges_see_the_plain_prompt(executed):
    from warriorflow.stages.base import run_as_writer
    from warriorflow.stages.execute import ingest_executions_stage
    from warriorflow.stages.judging import plan_votes_stage
    from warriorflow.store.objects import open_objects

    config, _jobs = executed
    run_as_writer(config, ingest_executions_stage, "b1")
    arena = config.settings.arena
    off = arena.model_copy(update={"execution": arena.execution.model_copy(update={"in_prompt": False})})
    config.settings = config.settings.model_copy(update={"arena": off})
    objects = open_objects(config)
    for j in run_as_writer(config, plan_votes_stage, "b1", round_no=1).value:
        assert all("execution" not in i for i in JobInput.from_json(objects.get_bytes(j["key"])).items)


def _forge_attacker(field: str, value):
    return lambda r: dict(r, attacker={**r["attacker"], field: value})


FORGERIES = {
    "a status the texts contradict": _forge_attacker("status", "no_code"),
    "a response that was not a code task": _forge_attacker("code_task", False),
    "a test the texts do not hold": lambda r: dict(r, attacker={
        **r["attacker"], "results": {**r["attacker"]["results"], "t0123456789abcdef": "pass"}}),
    "counts that do not follow from the results": _forge_attacker("tests", {
        "instruction": [2, 2], "attacker": [0, 0], "defender": [0, 0], "all": [9, 9]}),
    "has_code flipped": _forge_attacker("has_code", False),
    "a result that is no result": lambda r: dict(r, attacker={
        **r["attacker"], "results": dict.fromkeys(r["attacker"]["results"], "PASS")}),
    "runs of zero for a run": _forge_attacker("runs", 0),
    "a battle never planned": lambda r: dict(r, battle_id=ids.battle_id(IID, QWEN, GEMMA)),
    "another executor": lambda r: dict(r, executor="gpt-9"),
    "the defender missing": lambda r: {k: v for k, v in r.items() if k != "defender"},
    "an extra field": lambda r: dict(r, verdict="attacker"),
    "a line that is a list": lambda r: ["execution", r["battle_id"]],
    "a vote smuggled in": lambda r: {"type": "vote", "vote_id": "v", "battle_id": r["battle_id"]},
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_a_forged_execution_file_is_quarantined_whole(executed, case):
    from warriorflow.stages.base import run_as_writer
    from warriorflow.stages.execute import ingest_executions_stage
    from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
    from warriorflow.store.keys import job_out_for
    from warriorflow.store.objects import open_objects
    from warriorflow.store.rating_store import RatingStore

    config, jobs = executed
    objects = open_objects(config)
    out = job_out_for(jobs[0]["key"])
    [honest] = decode_jsonl(objects.get_bytes(out))
    objects.put_bytes(out, encode_jsonl([FORGERIES[case](honest)]))
    report = run_as_writer(config, ingest_executions_stage, "b1")
    assert report.counts.get("quarantined_batches") == 1, (case, report.counts)
    with RatingStore(config.duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM executions")[0]["n"] == 0, case
    reports = [k for k in objects.list("quarantine/execute/") if k.endswith(".report.json")]
    assert len(reports) == 1 and json.loads(objects.get_bytes(reports[0]))["reason"]
