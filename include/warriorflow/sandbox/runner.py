"""Run untrusted Python in a bubblewrap sandbox, one process per program, with limits and a reason.

The sandbox (see :func:`bwrap_argv`):

* ``--unshare-all --unshare-user --disable-userns``: new user, PID, network, IPC, UTS and cgroup
  namespaces, and no nested user namespace (so no tmpfs of its own past the size cap, no
  ``CAP_NET_ADMIN`` in a namespace of its own). The network namespace has only a loopback device that
  is down: no network at all.
* a seccomp filter (:mod:`warriorflow.sandbox.seccomp`): no kernel keyrings (they are shared with the
  host), no ``memfd_create`` (memory that ``RLIMIT_AS`` does not count), no ptrace or
  ``process_vm_*``, no new namespaces or mounts;
* a read-only host view of only what the interpreter needs (``/usr`` and the ``/lib*``, ``/bin``
  links; the interpreter's own prefix when it lives elsewhere); not the repository, not ``/home``,
  not ``/etc``; ``--remount-ro /`` so the sandbox's own root is read-only too;
* a size-capped tmpfs work directory (``/work``, the current directory), fresh ``/proc`` and ``/dev``;
* ``--clearenv``, ``--new-session`` (no terminal to inject keystrokes into), ``--die-with-parent``,
  all capabilities dropped; when the host process is root, bwrap itself runs as an unprivileged
  uid (``sandbox_uid``), because the kernel exempts uid 0 from ``RLIMIT_NPROC``.
* limits set inside the sandbox before the program starts (:mod:`warriorflow.sandbox.boot`):
  ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``, ``RLIMIT_NPROC`` (counted per user namespace),
  ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, no core files;
* a memory bound over the whole sandbox: a cgroup per run where the host lets us create one
  (:mod:`warriorflow.sandbox.cgroup`), else ``RLIMIT_AS`` times ``RLIMIT_NPROC``;
* verdicts on untrusted code (:meth:`Sandbox.check`) come from a launcher process that runs the
  benchmark's checks and asks the candidate's own process only for values; the launcher writes
  ``passed`` on a pipe the candidate does not hold (see :mod:`warriorflow.sandbox.boot`). The checks
  reach the launcher only after the candidate's process is forked, so the candidate cannot read them
  (nor the expected values in them).
  :meth:`Sandbox.run` runs a whole program in one process: for trusted programs only (ground truths,
  probes), since a program's claim that it ran to the end is its own.
* outside: stdout and stderr read with a byte cap (over the cap: killed, ``output_limit``) and a
  wall timeout. Killing bwrap kills the sandbox's PID 1, and the kernel then kills every process of
  the PID namespace, ``setsid`` daemons included.

Every run ends in a :class:`SandboxResult` whose ``reason`` is one of :data:`REASONS`.
"""

from __future__ import annotations

import marshal
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from warriorflow.errors import WarriorflowError
from warriorflow.sandbox import seccomp
from warriorflow.sandbox.boot import BOOT_SOURCE, EXIT_CODES, VALUES_SOURCE, VERDICT_PASSED
from warriorflow.sandbox.cgroup import CgroupParent, SandboxCgroup, find_parent

REASONS = ("passed", "failed", "error", "timeout", "memory", "output_limit", "killed", "signal", "sandbox_error")
"""passed; failed (an assertion); error (an exception, exit, syntax error); timeout (wall or CPU time);
memory (MemoryError); output_limit (stdout/stderr or file size cap); killed (SIGKILL not sent by us);
signal (died of another signal); sandbox_error (bwrap could not start the program)."""

WORKDIR = "/work"
_RO_SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")


class SandboxError(WarriorflowError):
    """The sandbox itself cannot run (bwrap missing, namespaces refused, interpreter not found)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Per-program limits. Memory is address space (RLIMIT_AS); CPU time kills by SIGXCPU."""

    memory_mb: int = 4096
    cpu_s: int = 10
    wall_s: float = 15.0
    nproc: int = 32
    file_size_mb: int = 16
    tmpfs_mb: int = 64
    open_files: int = 128
    stdout_bytes: int = 1 << 20
    stderr_bytes: int = 64 << 10


@dataclass(frozen=True)
class CheckProgram:
    """A verdict to reach on untrusted code. ``candidate`` (untrusted) runs in a process of its own;
    ``checks`` (the benchmark's, trusted) run in the launcher and reach the candidate only through
    ``_wf_remote(name)`` (a function of the candidate's, called with values), ``_wf_eval(expression)``
    and ``_wf_exec(code, env, want)`` (run a snippet in the candidate's process, return one variable).
    The checks pass by running to the end."""

    candidate: str
    checks: str


@dataclass(frozen=True)
class SandboxResult:
    reason: str  # one of REASONS
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    detail: str = ""
    report: tuple[str, ...] = ()  # the checks' ``_wf_report`` lines, in order (a check run only)

    @property
    def passed(self) -> bool:
        return self.reason == "passed"


@dataclass
class Sandbox:
    """Runs programs with a fixed interpreter and limits. ``isolate=False`` runs them as plain subprocesses
    with the same launcher and limits but no bwrap: the throughput baseline, never for untrusted code."""

    limits: SandboxLimits = field(default_factory=SandboxLimits)
    python: str = "/usr/bin/python3"
    bwrap: str | None = None
    sandbox_uid: int = 65534
    isolate: bool = True
    memory_cgroup: str = "auto"  # auto: a cgroup per run where the host allows one; off: RLIMIT_AS x nproc only
    cgroup_parent: CgroupParent | None = field(default=None, init=False, repr=False)
    memory_bound: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.memory_cgroup not in ("auto", "off", "required"):
            raise SandboxError("evaluation.sandbox.memory_cgroup", f"is {self.memory_cgroup!r}",
                               "use auto, off or required")
        exe = shutil.which(self.python) or self.python
        if not Path(exe).is_file():
            raise SandboxError(f"sandbox interpreter {self.python}", "not found",
                               "set evaluation.sandbox.python to a Python 3 interpreter (e.g. /usr/bin/python3)")
        self.python = exe
        if self.isolate:
            found = shutil.which(self.bwrap or "bwrap")
            if found is None:
                raise SandboxError("bwrap", "not found", "install bubblewrap (apt-get install bubblewrap)")
            self.bwrap = found
        why = "turned off (memory_cgroup: off)"
        if self.isolate and self.memory_cgroup != "off":
            self.cgroup_parent, why = find_parent()
        if self.cgroup_parent is None and self.memory_cgroup == "required":
            raise SandboxError("the sandbox's memory cgroup", why,
                               "run warriorflow where it may create cgroups (see docs/production.md), "
                               "or set evaluation.sandbox.memory_cgroup: auto")
        self.memory_bound = (f"a cgroup per run ({why}): memory_mb over all the sandbox's processes"
                             if self.cgroup_parent is not None else
                             f"RLIMIT_AS per process x RLIMIT_NPROC (no cgroup: {why})")

    # ------------------------------------------------------------------ argv
    def argv(self, limits: SandboxLimits | None = None, seccomp_fd: int | None = None,
             verdict_fd: int = -1) -> list[str]:
        lim = limits or self.limits
        # -S: no site; -P: no unsafe sys.path entry; -I is not used because it would ignore PYTHONHASHSEED,
        # which is fixed (the environment is cleared and set below) so set/dict orders are reproducible.
        inner = [self.python, "-S", "-P", "-c", BOOT_SOURCE, str(lim.memory_mb << 20), str(lim.cpu_s),
                 str(lim.nproc), str(lim.file_size_mb << 20), str(lim.open_files), str(verdict_fd)]
        if not self.isolate:
            return inner
        extra = ["--add-seccomp-fd", str(seccomp_fd)] if seccomp_fd is not None else []
        return [self.bwrap, *bwrap_argv(self.python, lim.tmpfs_mb), *extra, *inner]

    def _child_setup(self, cgroup: SandboxCgroup | None) -> dict:
        """Popen arguments that put the child in the run's cgroup and, when we are root, drop to
        ``sandbox_uid`` (the kernel exempts uid 0 from RLIMIT_NPROC) after joining it."""
        drop = self.isolate and os.geteuid() == 0
        if cgroup is None:
            return {"user": self.sandbox_uid, "group": self.sandbox_uid, "extra_groups": []} if drop else {}
        uid = self.sandbox_uid

        def enter() -> None:
            cgroup.join()
            if drop:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        return {"preexec_fn": enter}

    # ------------------------------------------------------------------ run
    def run(self, program: str, limits: SandboxLimits | None = None) -> SandboxResult:
        """Run one *trusted* program (``limits`` overrides the sandbox's) to the end in one process; passed
        means it ran to the end. Never raises for anything the program does."""
        nonce = secrets.token_hex(16)
        return self._launch({"mode": "program", "nonce": nonce, "source": program}, None, limits, nonce)

    def check(self, program: CheckProgram, limits: SandboxLimits | None = None) -> SandboxResult:
        """Reach a verdict on untrusted code (see :class:`CheckProgram`); never raises for anything it does."""
        request = {"mode": "check", "values": VALUES_SOURCE, "candidate": program.candidate}
        return self._launch(request, program.checks, limits, None)

    def _launch(self, request: dict, checks: str | None, limits: SandboxLimits | None,
                nonce: str | None) -> SandboxResult:
        limits = limits or self.limits
        started = time.monotonic()
        try:  # length-prefixed messages; the checks second (the launcher reads them after forking the candidate)
            payload = b"".join(len(m).to_bytes(8, "little") + m for m in
                               [marshal.dumps(request)] + ([] if checks is None else [marshal.dumps(checks)]))
        except ValueError as exc:
            return SandboxResult("sandbox_error", None, "", "", 0.0, f"cannot send the program: {exc}")
        cgroup = None
        if self.cgroup_parent is not None:
            try:
                cgroup = SandboxCgroup(self.cgroup_parent, limits.memory_mb << 20, limits.nproc + 8)
            except OSError as exc:
                return SandboxResult("sandbox_error", None, "", "", 0.0, f"cannot create the run's cgroup: {exc}")
        seccomp_r = None
        verdict_r, verdict_w = os.pipe()
        keep = [verdict_w]
        if self.isolate and seccomp.supported():
            seccomp_r, seccomp_w = os.pipe()  # the BPF program is < 1 KiB: it fits the pipe buffer
            os.write(seccomp_w, seccomp.filter_program())
            os.close(seccomp_w)
            keep.append(seccomp_r)
        try:
            try:
                proc = subprocess.Popen(self.argv(limits, seccomp_r, verdict_w), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                        cwd="/", env=_plain_env(), pass_fds=tuple(keep),
                                        **self._child_setup(cgroup))
            except (OSError, subprocess.SubprocessError) as exc:
                return SandboxResult("sandbox_error", None, "", "", 0.0, f"cannot start the sandbox: {exc}")
            finally:
                for fd in keep:
                    os.close(fd)
            writer = threading.Thread(target=_feed, args=(proc.stdin, payload), daemon=True)
            writer.start()
            out, err, why_killed = _collect(proc, limits, started)
            proc.wait()
            writer.join(timeout=1.0)
            verdict = _drain(verdict_r)
            if cgroup is not None and why_killed is None and memory_was_the_cause(proc.returncode, cgroup):
                why_killed = "memory"
        finally:
            os.close(verdict_r)
            if cgroup is not None:
                cgroup.remove()
        duration = time.monotonic() - started
        return classify(proc.returncode, out, err, nonce, why_killed, duration, isolated=self.isolate,
                        verdict=verdict)

    def run_many(self, programs: Sequence[str | CheckProgram], workers: int = 2,
                 on_result: Callable[[int, SandboxResult], None] | None = None,
                 limits: Sequence[SandboxLimits | None] | None = None) -> list[SandboxResult]:
        """Run programs (plain: :meth:`run`; :class:`CheckProgram`: :meth:`check`) in parallel (``workers``
        sandboxes at a time), results in input order."""

        def one(i: int) -> SandboxResult:
            program, lim = programs[i], limits[i] if limits is not None else None
            result = self.check(program, lim) if isinstance(program, CheckProgram) else self.run(program, lim)
            if on_result is not None:
                on_result(i, result)
            return result

        if workers <= 1 or len(programs) <= 1:
            return [one(i) for i in range(len(programs))]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, range(len(programs))))


def bwrap_argv(python: str, tmpfs_mb: int) -> list[str]:
    """bwrap options (before the command) for the sandbox described in the module docstring."""
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
            "--clearenv", "--cap-drop", "ALL"]
    for path in _RO_SYSTEM:
        p = Path(path)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), path]
        elif p.is_dir():
            args += ["--ro-bind", path, path]
    real = Path(python).resolve()
    if not any(real.is_relative_to(p) for p in ("/usr", "/bin", "/lib")):
        prefix = real.parent.parent  # <prefix>/bin/python3 -> bind <prefix> (its lib/ holds the stdlib)
        args += ["--ro-bind", str(prefix), str(prefix)]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(4 << 20), "--tmpfs", "/dev/shm",  # not RAM-sized
             "--size", str(tmpfs_mb << 20), "--tmpfs", WORKDIR,
             "--chdir", WORKDIR, "--setenv", "HOME", WORKDIR, "--setenv", "PATH", "/usr/bin:/bin",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONHASHSEED", "0",
             "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--remount-ro", "/"]
    return args


def _plain_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


def _feed(pipe, payload: bytes) -> None:
    try:
        pipe.write(payload)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            pipe.close()
        except (BrokenPipeError, OSError):
            pass


def _drain(fd: int, cap: int = 1 << 16) -> bytes:
    """What the launcher wrote on the verdict pipe, up to ``cap`` bytes (nothing blocks: the run is over)."""
    os.set_blocking(fd, False)
    got = bytearray()
    while len(got) < cap:
        try:
            chunk = os.read(fd, cap - len(got))
        except BlockingIOError:
            break
        if not chunk:
            break
        got += chunk
    return bytes(got)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _collect(proc: subprocess.Popen, limits: SandboxLimits, started: float) -> tuple[bytes, bytes, str | None]:
    """Read stdout/stderr up to their caps until both close; kill on overflow or at the wall deadline."""
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    caps = {out_fd: limits.stdout_bytes, err_fd: limits.stderr_bytes}
    bufs = {fd: bytearray() for fd in caps}
    deadline = started + limits.wall_s
    why_killed = None
    with selectors.DefaultSelector() as sel:
        for f in (proc.stdout, proc.stderr):
            sel.register(f, selectors.EVENT_READ)
        open_fds = set(caps)
        while open_fds and why_killed is None:
            left = deadline - time.monotonic()
            if left <= 0:
                why_killed = "timeout"
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_fds.discard(key.fd)
                    continue
                bufs[key.fd] += chunk
                if len(bufs[key.fd]) > caps[key.fd]:
                    why_killed = "output_limit"
                    break
        if why_killed is None:  # pipes closed: the program is done or closed them itself; wait for the exit
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                why_killed = "timeout"
    if why_killed:
        _kill(proc)
    proc.stdout.close()
    proc.stderr.close()
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), why_killed


def memory_was_the_cause(returncode: int | None, cgroup) -> bool:
    """A run killed by the kernel's OOM killer (SIGKILL), or one that ran out of CPU time (SIGXCPU) after its group's
    memory reached the bound: at the bound the kernel reclaims pages before it kills, and that reclaim is charged
    to the program's CPU time, so a memory bomb can meet its CPU limit first. Both are over the memory bound."""
    if returncode in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return cgroup.out_of_memory()
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return cgroup.out_of_memory(at_bound=True)
    return False


def classify(returncode: int | None, out: bytes, err: bytes, nonce: str | None, why_killed: str | None,
             duration_s: float, *, isolated: bool = True, verdict: bytes = b"") -> SandboxResult:
    """Turn how a run ended into a SandboxResult with its reason (a pure function). A trusted program
    (``nonce`` set) passed when it exited 0 and printed the nonce last; a check (``nonce`` None) passed
    when the launcher exited 0 and wrote ``passed`` on the verdict pipe, as its last line (the lines before
    it, ``r <text>``, are the checks' report: :attr:`SandboxResult.report`, kept whatever the reason)."""
    stdout = out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    tail = stderr.strip().splitlines()[-1][:500] if stderr.strip() else ""
    lines = verdict.split(b"\n")
    report = tuple(x[2:].decode("utf-8", "replace") for x in lines[:-1] if x.startswith(b"r "))
    verdict = VERDICT_PASSED if verdict.endswith(VERDICT_PASSED) and lines[-2:-1] == [b"passed"] else b""

    def result(reason: str, detail: str) -> SandboxResult:
        return SandboxResult(reason, returncode, stdout, stderr, duration_s, detail, report)

    if why_killed == "timeout":
        return result("timeout", "wall-clock timeout")
    if why_killed == "output_limit":
        return result("output_limit", "stdout/stderr over the byte cap")
    if why_killed == "memory":
        return result("memory", "over the sandbox's memory bound (killed by the cgroup)")
    rc = returncode
    if rc is None:
        return result("sandbox_error", "no exit status")
    if rc == 0 and nonce is None:
        if verdict == VERDICT_PASSED:
            return result("passed", "")
        return result("error", "the launcher exited 0 without a verdict")
    if rc == 0:
        marker = "\n" + nonce + "\n"
        if stdout.endswith(marker):
            return SandboxResult("passed", 0, stdout[: -len(marker)], stderr, duration_s, "", report)
        return result("error", "exited with status 0 before the end of the program")
    if isolated and rc == 1 and stderr.startswith("bwrap:"):
        return result("sandbox_error", tail)
    sig = -rc if rc < 0 else (rc - 128 if rc > 128 else None)
    if sig is not None and 0 < sig < 65:
        name = _signal_name(sig)
        if sig == signal.SIGXCPU:
            return result("timeout", "CPU time limit (SIGXCPU)")
        if sig == signal.SIGXFSZ:
            return result("output_limit", "file size limit (SIGXFSZ)")
        if sig == signal.SIGKILL:
            return result("killed", "killed by SIGKILL")
        return result("signal", f"died of {name}")
    if rc in EXIT_CODES:
        if EXIT_CODES[rc] == "error" and ("[Errno 27]" in tail or "[Errno 28]" in tail):
            return result("output_limit", f"file size / work dir limit: {tail}")  # EFBIG / ENOSPC
        return result(EXIT_CODES[rc], tail)
    return result("error", f"exit status {rc}" + (f": {tail}" if tail else ""))


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def default_python() -> str:
    """The sandbox's default interpreter: the system python3 (outside any venv or home directory)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if Path(candidate).is_file():
            return candidate
    return sys.executable
