"""The launcher that runs *inside* the sandbox: set the resource limits, then run what the host sent.

It is passed to the interpreter as ``-c BOOT_SOURCE`` with the limits and the verdict descriptor as
arguments, and reads one ``marshal``-ed request from stdin. Two modes:

* ``program`` (trusted code: ground truths, the doctor's probe): the program runs in this process;
  after it ran to the end, the launcher writes the nonce on a line of its own to stdout, so a
  program that leaves early with ``os._exit(0)`` does not look like a pass.
* ``check`` (a verdict on untrusted code): the launcher forks the **candidate** process, which closes
  the verdict descriptor, then runs the candidate's source and answers calls on a pipe. The
  launcher marks itself non-dumpable (no ``/proc/<pid>/mem``, ``/proc/<pid>/fd`` or ptrace from the
  candidate, which also holds no capability), runs the benchmark's **checks** itself, and asks the
  candidate only for values: ``call`` a function, ``eval`` an expression, ``exec`` a snippet and
  return one variable. Values cross as data only (:mod:`warriorflow.sandbox.values`: builtin
  scalars and containers, numpy arrays, pandas frames), never as objects with code, so a candidate
  cannot return an object whose ``__eq__`` says yes. When every check passed, the launcher writes
  ``passed`` to the verdict descriptor (a pipe only the host reads) and exits 0. The candidate never
  runs a line of code in the launcher's process, so nothing it does in its own process (reading
  frames or memory, ``os._exit(0)``, patching builtins, printing a marker) can make a pass.

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
    request = marshal.loads(sys.stdin.buffer.read())
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
    pid = os.fork()
    if pid == 0:  # the candidate: never sees the verdict descriptor, never runs code in the launcher
        try:
            os.close(verdict_fd)
            os.close(to_child_w)
            os.close(to_parent_r)
            values["serve"](request["candidate"], to_child_r, to_parent_w)
        finally:
            os._exit(@ERROR@)
    os.close(to_child_r)
    os.close(to_parent_w)
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    except Exception:
        pass
    remote = values["Remote"](pid, to_child_w, to_parent_r)
    checks = {"__name__": "__main__", "__builtins__": __builtins__, "_wf_remote": remote.function,
              "_wf_eval": remote.eval, "_wf_exec": remote.exec}

    def passed():
        remote.ready()  # the candidate's module ran to the end (an error there is the candidate's error)

    def done():
        remote.close()
        os.write(verdict_fd, b"@PASSED@")

    run("_wf_ready()\n" + request["checks"], "<checks>", dict(checks, _wf_ready=passed), after=done)
    os._exit(0)
_wf_boot()
"""
for _name, _code in (("SYNTAX", EXIT_SYNTAX), ("FAILED", EXIT_FAILED), ("MEMORY", EXIT_MEMORY), ("EXITED", EXIT_EXITED),
                     ("ERROR", EXIT_ERROR), ("PASSED", VERDICT_PASSED.decode().replace("\n", "\\n"))):
    BOOT_SOURCE = BOOT_SOURCE.replace(f"@{_name}@", str(_code))
