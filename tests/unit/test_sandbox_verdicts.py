"""Verdicts a candidate cannot fake: the launcher/candidate split, the value codec, the whole-sandbox memory bound."""

from __future__ import annotations

import marshal
import math

import pytest

from warriorflow.evaluation import programs
from warriorflow.sandbox import CheckProgram, Sandbox, SandboxError, SandboxLimits, classify, values
from warriorflow.sandbox import cgroup as cgroup_mod
from warriorflow.sandbox.boot import VERDICT_PASSED

LIMITS = SandboxLimits(memory_mb=512, cpu_s=3, wall_s=8.0)


@pytest.fixture(scope="module")
def box() -> Sandbox:
    return Sandbox(LIMITS)


# ------------------------------------------------------------------------------------------------ codec
@pytest.mark.parametrize("value", [
    None, True, False, 0, -(10 ** 40), 1.5, float("inf"), 2 + 3j, "héllo\udc80", b"\x00\xff",
    [1, [2, (3, {4: "a"})]], (), {"k": {1, 2}, (1, 2): frozenset({"x"})}, [[[]]],
])
def test_values_round_trip(value):
    got = values.decode(marshal.loads(marshal.dumps(values.encode(value))))
    assert got == value and type(got) is type(value)


def test_nan_round_trips_as_nan():
    assert math.isnan(values.decode(values.encode(float("nan"))))


def test_subclasses_cross_as_their_builtin_value():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class Named(str):
        pass

    got = values.decode(values.encode([Liar(2), Named("x"), True]))
    assert got == [2, "x", True] and type(got[0]) is int and type(got[1]) is str and got[2] is True
    assert got[0] != 1  # the lie did not cross


@pytest.mark.parametrize("value", [object(), (i for i in range(3)), len, type("Anything", (), {})(), [1, object()]])
def test_objects_with_code_cannot_cross(value):
    with pytest.raises(values.Unsupported, match="cannot be checked"):
        values.encode(value)


def test_nesting_is_bounded():
    deep: list = []
    for _ in range(values.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(values.Unsupported, match="nested"):
        values.encode(deep)


@pytest.mark.parametrize("node", [
    42, "s", [("i", 1)], (), (1,), ("i", "1"), ("i", True), ("b", 1), ("l", ("i", 1)), ("l", [("zz", 1)]),
    ("d", [[("l", []), ("i", 1)]]), ("set", [("l", [])]), ("d", [[("i", 1)]]), ("s", b"x"),
    ("code", compile("1", "x", "eval")), ("l", [compile("1", "x", "eval")]), ("nd", "O", [1], b"\x00" * 8),
    ("nd", "<i8", [2], b"\x00" * 8), ("nd", "<i8", [-1], b""), ("nd", "[('a','O')]", [1], b"\x00" * 8),
    ("np", "<f8", b"\x00"), ("pdf", [("s", "a")], [], ("n",)), ("n", 1),
])
def test_forged_value_trees_are_refused(node):
    with pytest.raises(values.Forged):
        values.decode(node)


def test_numpy_and_pandas_values_round_trip():
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    arr = np.arange(12, dtype="<f4").reshape(3, 4)
    got = values.decode(values.encode(arr))
    assert got.dtype == arr.dtype and got.shape == (3, 4) and (got == arr).all()
    assert values.decode(values.encode(np.int64(7))) == np.int64(7)
    assert type(values.decode(values.encode(np.int64(7)))) is np.int64
    obj = np.array(["a", 1, None], dtype=object)
    assert list(values.decode(values.encode(obj))) == ["a", 1, None]
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=pd.Index([10, 20], name="i"))
    pd.testing.assert_frame_equal(values.decode(values.encode(frame)), frame)
    series = pd.Series([1.5, 2.5], name="s")
    pd.testing.assert_series_equal(values.decode(values.encode(series)), series)


def test_candidate_exceptions_keep_their_builtin_class():
    assert isinstance(values.rebuild_exception("AssertionError", "x"), AssertionError)
    assert isinstance(values.rebuild_exception("MemoryError", ""), MemoryError)
    assert isinstance(values.rebuild_exception("SystemExit", "0"), SystemExit)
    assert type(values.rebuild_exception("MyError", "boom")) is RuntimeError
    assert type(values.rebuild_exception("print", "x")) is RuntimeError  # a builtin that is not an exception
    assert type(values.rebuild_exception("KeyboardInterrupt", "x")) is RuntimeError
    assert type(values.rebuild_exception(["AssertionError"], 3)) is RuntimeError


def test_a_launcher_exit_0_without_the_verdict_is_not_a_pass():
    assert classify(0, b"passed\n", b"", None, None, 0.1).reason == "error"
    assert classify(0, b"", b"", None, None, 0.1, verdict=VERDICT_PASSED).reason == "passed"
    assert classify(3, b"", b"", None, None, 0.1, verdict=VERDICT_PASSED).reason == "failed"


# ------------------------------------------------------------------------------------------------ split runs
def _solve(candidate: str, expected: str = "1") -> CheckProgram:
    return CheckProgram(candidate, f"assert _wf_remote('solve')() == {expected}\n")


@pytest.mark.parametrize(("candidate", "reason"), [
    ("def solve():\n    return 1\n", "passed"),
    ("def solve():\n    return 2\n", "failed"),
    ("def solve():\n    assert False, 'inside'\n", "failed"),
    ("def solve():\n    raise ValueError('x')\n", "error"),
    ("def solve(:\n", "error"),
    ("import os\nos._exit(0)\n", "error"),
    ("import os\ndef solve():\n    os._exit(0)\n", "error"),
    ("import os, signal\ndef solve():\n    os.kill(os.getppid(), signal.SIGKILL)\n", "killed"),
    ("def solve():\n    while True:\n        pass\n", "timeout"),
    ("def solve():\n    return bytearray(2 << 30)\n", "memory"),
    ("def solve():\n    return (i for i in [1])\n", "error"),
    ("x = 1\n", "error"),  # no solve
])
def test_split_verdicts(box, candidate, reason):
    result = box.check(_solve(candidate), SandboxLimits(memory_mb=512, cpu_s=1, wall_s=6.0))
    assert result.reason == reason, result


def test_the_candidate_gets_copies_of_the_arguments(box):
    prog = CheckProgram("def solve(xs):\n    xs.append(9)\n    return len(xs)\n",
                        "xs = [1]\nassert _wf_remote('solve')(xs) == 2\nassert xs == [1]\n")
    assert box.check(prog).passed


def test_cruxeval_prediction_cannot_smuggle_statements(box):
    record = {"code": "def f(x):\n    return x + 1\n", "input": "1", "output": "2"}
    assert box.check(programs.cruxeval_program(record, "cruxeval_output", "2")).passed
    assert box.check(programs.cruxeval_program(record, "cruxeval_input", "1")).passed
    always_equal = "type('A', (), {'__eq__': lambda s, o: True})()"
    for hostile in ("3\n)\nimport os\nos._exit(0)\n(", "__import__('os')._exit(0)", always_equal):
        for kind in ("cruxeval_output", "cruxeval_input"):
            assert not box.check(programs.cruxeval_program(record, kind, hostile)).passed, (kind, hostile)


DS1000_CONTEXT = '''
def generate_test_case(test_case_id):
    data = list(range(test_case_id * 3))
    return data, [x * 2 for x in data]

def exec_test(result, ans):
    assert result == ans
    return 1

exec_context = r"""
data = test_input
[INSERT]
"""

def test_execution(solution: str):
    code = exec_context.replace("[INSERT]", solution)
    for i in range(2):
        test_input, expected_result = generate_test_case(i + 1)
        test_env = {"test_input": test_input}
        exec(code, test_env)
        assert exec_test(test_env["result"], expected_result)
'''


def test_ds1000_solutions_run_in_the_candidate_process(box):
    record = {"code_context": DS1000_CONTEXT}
    assert box.check(programs.ds1000_program(record, "result = [x * 2 for x in data]")).passed
    assert box.check(programs.ds1000_program(record, "result = [x * 3 for x in data]")).reason == "failed"
    cheat = "class A:\n    __eq__ = lambda s, o: True\nresult = A()"
    assert box.check(programs.ds1000_program(record, cheat)).reason == "error"
    patch = "import builtins\nbuiltins.AssertionError = KeyError\nresult = 5"
    assert box.check(programs.ds1000_program(record, patch)).reason == "failed"


# ------------------------------------------------------------------------------------------------ memory bound
def test_memory_cgroup_required_without_one_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("warriorflow.sandbox.runner.find_parent", lambda: (None, "no cgroup memory controller"))
    with pytest.raises(SandboxError, match="memory cgroup"):
        Sandbox(LIMITS, memory_cgroup="required")
    fallback = Sandbox(LIMITS)
    assert fallback.cgroup_parent is None and "RLIMIT_AS per process" in fallback.memory_bound
    with pytest.raises(SandboxError, match="memory_cgroup"):
        Sandbox(LIMITS, memory_cgroup="sometimes")


def test_cgroup_paths_are_read_from_proc_self_cgroup():
    v1 = "4:memory:/process_api/abc\n1:cpu:/\n0::/\n"
    assert cgroup_mod._own_path(1, v1) == "/process_api/abc"
    assert cgroup_mod._own_path(2, "0::/user.slice/x.scope\n") == "/user.slice/x.scope"
    assert cgroup_mod._own_path(1, "0::/\n") is None


SIBLINGS = """import os, time
pids = []
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        block = bytearray(160 << 20)
        block[::4096] = b"x" * len(block[::4096])
        time.sleep(1.0)
        os._exit(0)
    pids.append(pid)
statuses = [os.waitpid(p, 0)[1] for p in pids]
def solve():
    return statuses
"""


def test_the_memory_bound_covers_the_whole_sandbox():
    bounded = Sandbox(SandboxLimits(memory_mb=400, cpu_s=5, wall_s=10.0))
    if bounded.cgroup_parent is None:
        pytest.skip(f"no memory cgroup on this host ({bounded.memory_bound}); doctor reports the fallback")
    prog = CheckProgram(SIBLINGS, "s = _wf_remote('solve')()\nprint(s)\nassert all(x == 0 for x in s)\n")
    unbounded = Sandbox(SandboxLimits(memory_mb=400, cpu_s=5, wall_s=10.0), memory_cgroup="off")
    assert unbounded.check(prog).passed  # 5 x 160 MiB: each process is under RLIMIT_AS, the sum is not
    result = bounded.check(prog)
    assert result.reason == "failed", result  # the cgroup killed children: the sum is bounded
