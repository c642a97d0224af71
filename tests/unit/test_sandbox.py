"""The bubblewrap sandbox: reasons for every way a program ends, isolation, limits (real bwrap)."""

from __future__ import annotations

import pytest

from warriorflow.sandbox import Sandbox, SandboxLimits, bwrap_argv, classify

LIMITS = SandboxLimits(memory_mb=512, cpu_s=2, wall_s=5.0, nproc=16, file_size_mb=4, tmpfs_mb=16,
                       stdout_bytes=64 << 10)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


@pytest.mark.parametrize(("program", "reason"), [
    ("print('hello')", "passed"),
    ("assert 1 == 2, 'nope'", "failed"),
    ("1 / 0", "error"),
    ("def broken(:", "error"),
    ("import sys\nsys.exit(0)", "error"),
    ("import os\nos._exit(0)", "error"),
    ("x = bytearray(8 << 30)", "memory"),
    ("while True:\n    pass", "timeout"),
    ("import time\ntime.sleep(60)", "timeout"),
    ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", "output_limit"),
    ("open('big', 'wb').write(b'x' * (8 << 20))", "output_limit"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "signal"),
])
def test_reasons(sandbox, program, reason):
    result = sandbox.run(program)
    assert result.reason == reason, (result.detail, result.stderr[-300:])
    assert result.passed == (reason == "passed")


def test_stdout_comes_back_without_the_nonce(sandbox):
    result = sandbox.run("print('a')\nprint('b')")
    assert result.stdout == "a\nb\n"


def test_isolation_view(sandbox):
    program = """
import os, socket
assert os.getcwd() == '/work', os.getcwd()
assert not os.path.exists('/etc/shadow') and not os.path.exists('/home') and not os.path.exists('/root')
try:
    open('/usr/x', 'w')
except OSError:
    pass
else:
    raise AssertionError('/usr is writable')
try:
    socket.create_connection(('1.1.1.1', 53), timeout=1)
except OSError:
    pass
else:
    raise AssertionError('network reachable')
assert os.getpid() == 2, os.getpid()  # own PID namespace: bwrap's init is 1
open('scratch', 'w').write('ok')  # the tmpfs work dir is writable
assert os.environ.get('PYTHONHASHSEED') == '0' and 'HOME' in os.environ and len(os.environ) <= 8, dict(os.environ)
"""
    result = sandbox.run(program)
    assert result.passed, (result.reason, result.detail)


def test_nproc_limit_stops_forks(sandbox):
    program = """
import os, time
n = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(2)
            os._exit(0)
        n += 1
except OSError:
    pass
print(n)
"""
    result = sandbox.run(program)
    assert result.passed, result.detail
    assert int(result.stdout.strip()) < LIMITS.nproc


def test_hash_seed_is_fixed_so_set_order_is_reproducible(sandbox):
    program = "print(list({'kx', 'DHBNiditD', 'ITntCqEvPi', 'SmJpP', 'x'}))"
    assert sandbox.run(program).stdout == sandbox.run(program).stdout


def test_run_many_keeps_order(sandbox):
    results = sandbox.run_many([f"print({i})" for i in range(6)], workers=2)
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(6)]


def test_bwrap_argv_binds_no_home_or_repo():
    argv = bwrap_argv("/usr/bin/python3", 16)
    assert "--unshare-all" in argv and "--die-with-parent" in argv and "--new-session" in argv
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--ro-bind", "--bind")]
    assert binds and all(not b.startswith(("/home", "/root", "/work", "/etc")) for b in binds)
    assert "--bind" not in argv  # nothing of the host is writable


def test_missing_bwrap_is_a_clear_error():
    from warriorflow.sandbox import SandboxError

    with pytest.raises(SandboxError, match="bwrap: not found"):
        Sandbox(LIMITS, bwrap="/nonexistent/bwrap")
    with pytest.raises(SandboxError, match="interpreter /nope/python3: not found"):
        Sandbox(LIMITS, python="/nope/python3")


def test_classify_is_pure():
    assert classify(0, b"out\nN\n", b"", "N", None, 0.1).reason == "passed"
    assert classify(0, b"out\n", b"", "N", None, 0.1).reason == "error"
    assert classify(1, b"", b"bwrap: Creating new namespace failed", "N", None, 0.1).reason == "sandbox_error"
    assert classify(128 + 24, b"", b"", "N", None, 0.1).reason == "timeout"  # SIGXCPU
    assert classify(-9, b"", b"", "N", "timeout", 5.0).reason == "timeout"
    assert classify(-9, b"", b"", "N", "output_limit", 0.1).reason == "output_limit"


def test_a_cpu_limit_met_at_the_memory_bound_is_a_memory_verdict():
    """At its memory bound the kernel reclaims before it kills, charging the program's CPU time: a memory bomb can
    die of SIGXCPU first. That is still over the memory bound; a CPU burner that never reached it is a timeout."""
    import signal

    from warriorflow.sandbox.runner import memory_was_the_cause

    class Group:
        def __init__(self, oom_kill: bool, at_bound: bool):
            self.oom_kill, self.at_bound = oom_kill, at_bound

        def out_of_memory(self, at_bound: bool = False) -> bool:
            return self.oom_kill or (at_bound and self.at_bound)

    for rc in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        assert memory_was_the_cause(rc, Group(oom_kill=False, at_bound=True))
        assert not memory_was_the_cause(rc, Group(oom_kill=False, at_bound=False))
    for rc in (-signal.SIGKILL, 128 + signal.SIGKILL):
        assert memory_was_the_cause(rc, Group(oom_kill=True, at_bound=True))
        assert not memory_was_the_cause(rc, Group(oom_kill=False, at_bound=True))  # killed for another reason
    assert not memory_was_the_cause(1, Group(oom_kill=True, at_bound=True))
    assert not memory_was_the_cause(None, Group(oom_kill=True, at_bound=True))
