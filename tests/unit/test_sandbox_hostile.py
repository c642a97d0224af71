"""The hostile-program corpus (tests/fixtures/hostile): every program is contained, recorded as a failure
with its expected reason, the evaluation goes on, and nothing leaks to the host."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from pathlib import Path

from warriorflow.evaluation.harness import score_humaneval_completions
from warriorflow.evaluation.problems import EvalProblem
from warriorflow.sandbox import Sandbox, SandboxLimits

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
REPO = Path(__file__).resolve().parents[2]
ALL_PROGRAMS = sorted(CORPUS.glob("*.py"))
_WHOLE_SANDBOX_BOUND = Sandbox().cgroup_parent is not None
# a program marked "# needs: cgroup" is run only where the sandbox has its memory cgroup (doctor says which)
PROGRAMS = [p for p in ALL_PROGRAMS if _WHOLE_SANDBOX_BOUND or "# needs: cgroup" not in p.read_text()]
LIMITS = SandboxLimits(memory_mb=512, cpu_s=2, wall_s=6.0, nproc=24, file_size_mb=8, tmpfs_mb=32,
                       stdout_bytes=256 << 10, stderr_bytes=64 << 10)


def _expected(path: Path) -> set[str]:
    m = re.search(r"^# expect: (.+)$", path.read_text(), re.M)
    assert m, f"{path.name} has no '# expect:' line"
    return set(m.group(1).strip().split("|"))


def _problem(name: str) -> EvalProblem:
    record = {"task_id": f"hostile/{name}", "prompt": "", "entry_point": "solve",
              "test": "def check(candidate):\n    assert candidate() == 1\n"}
    return EvalProblem("hostile", "humaneval", record["task_id"], record)


def _alive_with(marker: str) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


def test_corpus_is_large_enough_and_labelled():
    assert len(ALL_PROGRAMS) >= 30
    for p in ALL_PROGRAMS:
        assert _expected(p) <= {"failed", "error", "timeout", "memory", "output_limit", "killed", "signal"}


def test_hostile_corpus_is_contained(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")  # the host has a secret; the sandbox must not see it
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    connections: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except OSError:
                pass

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = f"wf-hostile-{uuid.uuid4().hex}"
    sources = [p.read_text().replace("@HOST_PORT@", str(port)).replace("@REPO@", str(REPO))
               .replace("@MARKER@", marker).replace("@OUTSIDE@", str(outside)) for p in PROGRAMS]
    # a well-behaved completion after the corpus shows that the evaluation goes on
    problems = [_problem(p.stem) for p in PROGRAMS] + [_problem("control")]
    completions = sources + ["def solve():\n    return 1\n"]
    sandbox = Sandbox(LIMITS)
    started = time.monotonic()
    try:
        results = score_humaneval_completions(problems, completions, sandbox, workers=2)
    finally:
        stop.set()
        acceptor.join(timeout=2)
        listener.close()
    elapsed = time.monotonic() - started

    report = {r.task_id: (r.reason, r.detail) for r in results}
    for path, result in zip(PROGRAMS, results):
        assert not result.passed, f"{path.name} escaped: {report[result.task_id]}"
        assert result.reason in _expected(path), f"{path.name}: {report[result.task_id]}"
    assert results[-1].passed, report  # evaluation continued after the corpus
    assert connections == [], "a sandboxed program reached a socket on the host"
    assert list(outside.iterdir()) == [] and not (REPO / "pwned").exists() and not Path("/tmp/pwned").exists()
    time.sleep(0.5)
    assert _alive_with(marker) == [], "the setsid daemon outlived the sandbox"
    assert elapsed < len(PROGRAMS) * LIMITS.wall_s  # every program was stopped by its limits, none hung
