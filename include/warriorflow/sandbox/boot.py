"""The launcher that runs *inside* the sandbox: set the resource limits, then run what the host sent.

It is passed to the interpreter as ``-c BOOT_SOURCE`` with the limits and the verdict descriptor as
arguments, and reads its request from stdin. Two modes:

* ``program`` (trusted code: ground truths, the doctor's probe): the program runs in this process;
  after it ran to the end, the launcher writes the nonce on a line of its own to stdout, so a
  program that leaves early with ``os._exit(0)`` does not look like a pass.
* ``check`` (a verdict on untrusted code): the launcher marks itself non-dumpable (no
  ``/proc/<pid>/mem``, ``/proc/<pid>/fd`` or ptrace from the candidate, which also holds no
  capability), then forks the **candidate** process, which closes the verdict descriptor, puts
  ``/dev/null`` on its stdin, then runs the candidate's source and answers calls on a pipe. The
  **checks** come on stdin in a second message that the launcher reads only after the fork, so
  they are never in the candidate's memory (its tests' expected values stay secret). The launcher
  runs the checks itself, and asks the candidate only for values: ``call`` a function, ``eval`` an
  expression, ``exec`` a snippet and return one variable. Values cross as data only
  (:mod:`warriorflow.sandbox.values`: builtin scalars and containers, numpy arrays, pandas frames),
  never as objects with code, so a candidate cannot return an object whose ``__eq__`` says yes.
  When every check passed, the launcher writes ``passed`` to the verdict descriptor (a pipe only the
  host reads) and exits 0. The candidate never runs a line of code in the launcher's process, so
  nothing it does in its own process (reading frames or memory, ``os._exit(0)``, patching builtins,
  printing a marker) can make a pass.
  The checks may also call ``_wf_report(text)``: a line (``r <text>``) written at once on the verdict
  descriptor, before the final ``passed`` (per-test results that survive a later timeout; at most
  32 KiB in all, so the pipe never fills).

The request comes on stdin as length-prefixed ``marshal`` messages (8-byte little-endian length),
read with ``os.read`` and no buffering, so nothing past a message is read before it is wanted.

Exit codes tell the host what happened (see :data:`EXIT_CODES`). When the candidate dies of a signal,
the launcher dies of the same signal, so a CPU-time or memory kill is reported as such.
"""

from __future__ import annotations

from pathlib import Path

EXIT_FAILED = 3  # AssertionError: a test failed
EXIT_MEMORY = 4  # MemoryError
EXIT_EXITED = 5  # the program called sys.exit()/exit() before the end
EXIT_SYNTAX = 6  # the program does not compile
EXIT_ERROR = 7  # any other exception

EXIT_CODES = {EXIT_FAILED: "failed", EXIT_MEMORY: "memory", EXIT_EXITED: "error", EXIT_SYNTAX: "error",
              EXIT_ERROR: "error"}

VERDICT_PASSED = b"passed\n"

VALUES_SOURCE = (Path(__file__).with_name("values.py")).read_text(encoding="utf-8")

BOOT_SOURCE = r"""
import marshal, os, resource, signal, sys

def _wf_boot():
    mem, cpu, nproc, fsize, nofile, verdict_fd = (int(x) for x in sys.argv[1:7])
    del sys.argv[1:]

    def read_exactly(n):
        chunks = []
        while n:
            chunk = os.read(0, min(n, 1 << 20))
            if not chunk:
                raise EOFError("the request ended early")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def message():
        return marshal.loads(read_exactly(int.from_bytes(read_exactly(8), "little")))

    request = message()
    for res, soft, hard in ((resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_CPU, cpu, cpu + 1),
                            (resource.RLIMIT_NPROC, nproc, nproc), (resource.RLIMIT_FSIZE, fsize, fsize),
                            (resource.RLIMIT_NOFILE, nofile, nofile), (resource.RLIMIT_CORE, 0, 0)):
        resource.setrlimit(res, (soft, hard))
    err = sys.stderr

    def leave(code, what):
        try:
            err.write(what[-2000:] + "\n")
            err.flush()
        finally:
            os._exit(code)

    def run(src, name, namespace, after=None):
        try:
            code = compile(src, name, "exec")
        except (SyntaxError, ValueError) as exc:
            leave(@SYNTAX@, "SyntaxError: %s" % exc)
        try:
            exec(code, namespace)
            if after is not None:
                after()
            sys.stdout.flush()
        except AssertionError as exc:
            leave(@FAILED@, "AssertionError: %s" % exc)
        except MemoryError:
            leave(@MEMORY@, "MemoryError")
        except SystemExit as exc:
            leave(@EXITED@, "SystemExit(%r) before the end of the program" % (exc.code,))
        except BaseException as exc:
            leave(@ERROR@, "%s: %s" % (type(exc).__name__, exc))

    if request["mode"] == "program":
        nonce = request.pop("nonce").encode()
        src = request.pop("source")
        run(src, "<program>", {"__name__": "__main__", "__builtins__": __builtins__})
        try:
            os.write(1, b"\n" + nonce + b"\n")
        finally:
            os._exit(0)

    values = {"__name__": "_wf_values", "__builtins__": __builtins__}
    exec(compile(request["values"], "<values>", "exec"), values)
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()

    def dumpable(flag):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(4, flag, 0, 0, 0)  # PR_SET_DUMPABLE
        except Exception:
            pass

    dumpable(0)  # before the fork: the candidate never sees a dumpable launcher
    pid = os.fork()
    if pid == 0:  # the candidate: never sees the verdict descriptor or the checks, never runs code in the launcher
        try:
            os.close(verdict_fd)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)  # the checks wait on stdin for the launcher alone
            os.close(null)
            os.close(to_child_w)
            os.close(to_parent_r)
            dumpable(1)  # its own /proc/self stays readable to itself, as in any process
            values["serve"](request["candidate"], to_child_r, to_parent_w)
        finally:
            os._exit(@ERROR@)
    os.close(to_child_r)
    os.close(to_parent_w)
    checks_source = message()
    remote = values["Remote"](pid, to_child_w, to_parent_r)
    budget = [32768]

    def report(text):
        line = b"r " + str(text).encode("utf-8", "replace").replace(b"\n", b" ")[:1000] + b"\n"
        if len(line) > budget[0]:
            return False
        budget[0] -= len(line)
        os.write(verdict_fd, line)
        return True

    checks = {"__name__": "__main__", "__builtins__": __builtins__, "_wf_remote": remote.function,
              "_wf_eval": remote.eval, "_wf_exec": remote.exec, "_wf_report": report}

    def passed():
        remote.ready()  # the candidate's module ran to the end (an error there is the candidate's error)

    def done():
        remote.close()
        os.write(verdict_fd, b"@PASSED@")

    run("_wf_ready()\n" + checks_source, "<checks>", dict(checks, _wf_ready=passed), after=done)
    os._exit(0)
_wf_boot()
"""
for _name, _code in (("SYNTAX", EXIT_SYNTAX), ("FAILED", EXIT_FAILED), ("MEMORY", EXIT_MEMORY), ("EXITED", EXIT_EXITED),
                     ("ERROR", EXIT_ERROR), ("PASSED", VERDICT_PASSED.decode().replace("\n", "\\n"))):
    BOOT_SOURCE = BOOT_SOURCE.replace(f"@{_name}@", str(_code))
