"""The launcher that runs *inside* the sandbox: set the resource limits, then run the program.

It is passed to the interpreter as ``-c BOOT_SOURCE`` with the limits as arguments, and reads
``<nonce>\\n<program source>`` from stdin. The program runs in this same process (no second exec).
Exit codes tell the host what happened (see :data:`EXIT_CODES`); after a program that ran to the
end, the launcher writes the nonce on a line of its own to stdout, so a program that leaves early
with ``os._exit(0)`` does not look like a pass.
"""

from __future__ import annotations

EXIT_FAILED = 3  # AssertionError: a test failed
EXIT_MEMORY = 4  # MemoryError
EXIT_EXITED = 5  # the program called sys.exit()/exit() before the end
EXIT_SYNTAX = 6  # the program does not compile
EXIT_ERROR = 7  # any other exception

EXIT_CODES = {EXIT_FAILED: "failed", EXIT_MEMORY: "memory", EXIT_EXITED: "error", EXIT_SYNTAX: "error",
              EXIT_ERROR: "error"}

BOOT_SOURCE = r"""
import os, resource, sys
def _wf_boot():
    mem, cpu, nproc, fsize, nofile = (int(x) for x in sys.argv[1:6])
    del sys.argv[1:]
    data = sys.stdin.buffer.read()
    nonce, _, src = data.partition(b"\n")
    del data
    for res, soft, hard in ((resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_CPU, cpu, cpu + 1),
                            (resource.RLIMIT_NPROC, nproc, nproc), (resource.RLIMIT_FSIZE, fsize, fsize),
                            (resource.RLIMIT_NOFILE, nofile, nofile), (resource.RLIMIT_CORE, 0, 0)):
        resource.setrlimit(res, (soft, hard))
    out, err = sys.stdout, sys.stderr
    def leave(code, what):
        try:
            err.write(what[-2000:] + "\n")
            err.flush()
        finally:
            os._exit(code)
    try:
        code = compile(src, "<program>", "exec")
    except (SyntaxError, ValueError) as exc:
        leave(@SYNTAX@, "SyntaxError: %s" % exc)
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        out.flush()
    except AssertionError as exc:
        leave(@FAILED@, "AssertionError: %s" % exc)
    except MemoryError:
        leave(@MEMORY@, "MemoryError")
    except SystemExit as exc:
        leave(@EXITED@, "SystemExit(%r) before the end of the program" % (exc.code,))
    except BaseException as exc:
        leave(@ERROR@, "%s: %s" % (type(exc).__name__, exc))
    try:
        os.write(1, b"\n" + nonce + b"\n")
    finally:
        os._exit(0)
_wf_boot()
"""
for _name, _code in (("SYNTAX", EXIT_SYNTAX), ("FAILED", EXIT_FAILED), ("MEMORY", EXIT_MEMORY), ("EXITED", EXIT_EXITED),
                     ("ERROR", EXIT_ERROR)):
    BOOT_SOURCE = BOOT_SOURCE.replace(f"@{_name}@", str(_code))
