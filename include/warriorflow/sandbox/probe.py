"""Is the bubblewrap sandbox usable on this machine? (The doctor asks; evaluation needs it.)"""

from __future__ import annotations

import shutil
import subprocess

PROBE_ARGS = ["--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "--dev", "/dev",
              "--proc", "/proc", "--tmpfs", "/tmp", "true"]


def probe_bwrap(timeout_s: float = 10.0) -> tuple[bool, str]:
    """(usable, detail): bwrap is installed and can start a process with no network."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bwrap not found: install bubblewrap (apt-get install bubblewrap)"
    try:
        proc = subprocess.run([exe, *PROBE_ARGS], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, "bwrap did not finish its probe in time"
    if proc.returncode != 0:
        return False, (f"bwrap cannot create namespaces here ({proc.stderr.strip()[:200]}); "
                       "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) "
                       "or run the pod with the permissions in docs/production.md")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return True, version


PROTECTION_PROBE = r'''
import ctypes, json, os, platform, resource, socket
nr = {"x86_64": {"keyctl": 250, "unshare": 272, "mount": 165, "ptrace": 101},
      "aarch64": {"keyctl": 219, "unshare": 97, "mount": 40, "ptrace": 117}}.get(platform.machine(), {})
libc = ctypes.CDLL(None, use_errno=True)
def refused(call, *args):
    return call not in nr or libc.syscall(nr[call], *args) < 0
out = {}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=1).close(); out["network"] = False
except OSError:
    out["network"] = True
out["keyrings"] = refused("keyctl", 0, -3, 1)
out["nested user namespaces"] = refused("unshare", 0x10000000)
out["mounts"] = refused("mount", b"none", b"/work", b"tmpfs", 0, b"")
out["ptrace"] = refused("ptrace", 16, os.getppid(), 0, 0)
try:
    os.memfd_create("probe"); out["memfd"] = False
except OSError:
    out["memfd"] = True
out["host files hidden"] = not any(os.path.exists(p) for p in ("/etc/passwd", "/root", "/home"))
out["environment cleared"] = not any(k.startswith(("AWS_", "WARRIORFLOW_")) for k in os.environ)
out["memory_bytes"] = resource.getrlimit(resource.RLIMIT_AS)[0]
out["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
print(json.dumps(out))
def solve():
    return 1
'''


VERDICT_PROBE = r'''
import os, sys
frame, found = sys._getframe(), None
while frame is not None and found is None:
    found = frame.f_locals.get("nonce")
    frame = frame.f_back
for fd in range(3, 32):
    try:
        os.write(fd, b"passed\n")
    except OSError:
        pass
os.write(1, b"\n" + (found if isinstance(found, bytes) else b"-") + b"\n")
os._exit(0)
'''


def probe_protections(python: str | None = None, memory_cgroup: str = "auto") -> list[tuple[str, bool, str]]:
    """(protection, in force, detail) for each thing the sandbox promises, measured by running probe
    programs in the real sandbox: one reports what it may do, one tries to fake a pass."""
    import json

    from warriorflow.sandbox.runner import CheckProgram, Sandbox, SandboxLimits

    kwargs = {"python": python} if python else {}
    box = Sandbox(SandboxLimits(wall_s=20.0), memory_cgroup=memory_cgroup, **kwargs)
    result = box.run(PROTECTION_PROBE)
    if result.reason != "passed":
        return [("sandbox probe", False, f"{result.reason}: {result.detail or result.stderr[-300:]}")]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [(name, bool(got[name]), "refused inside the sandbox" if got[name] else "ALLOWED inside the sandbox")
            for name in ("network", "keyrings", "nested user namespaces", "mounts", "ptrace", "memfd")]
    rows.append(("host files hidden", bool(got["host files hidden"]), "/etc, /root, /home not visible"
                 if got["host files hidden"] else "host files are visible"))
    rows.append(("environment cleared", bool(got["environment cleared"]), "no AWS_* / WARRIORFLOW_* variables"
                 if got["environment cleared"] else "host variables leak in"))
    mem, nproc = got["memory_bytes"], got["nproc"]
    bounded = mem > 0 and nproc > 0
    if box.cgroup_parent is not None:
        bound = f"{box.limits.memory_mb} MiB over the whole sandbox ({box.memory_bound})"
    else:
        bound = (f"RLIMIT_AS {mem >> 20} MiB per process x at most {nproc} processes (= {(mem >> 20) * nproc} MiB): "
                 f"{box.memory_bound}")
    rows.append(("memory bound", bounded, bound + "; memfd refused, /dev/shm 4 MiB, work tmpfs size-capped"))
    faked = box.check(CheckProgram(VERDICT_PROBE, "assert _wf_remote('solve')() == 1\n"))
    rows.append(("verdicts", not faked.passed, "checks run outside the candidate's process; a program that "
                 "prints the launcher's marker and exits 0 is " + ("an error" if not faked.passed else "a PASS")))
    return rows
