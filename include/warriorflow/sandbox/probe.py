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


def probe_protections(python: str | None = None) -> list[tuple[str, bool, str]]:
    """(protection, in force, detail) for each thing the sandbox promises, measured by running a probe
    program in the real sandbox. Memory is bounded per process (RLIMIT_AS) times the process cap: the
    sandbox does not create a memory cgroup (most hosts do not delegate one), so that product is the bound."""
    import json

    from warriorflow.sandbox.runner import Sandbox, SandboxLimits

    kwargs = {"python": python} if python else {}
    result = Sandbox(SandboxLimits(wall_s=20.0), **kwargs).run(PROTECTION_PROBE)
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
    rows.append(("memory bound", bounded, f"RLIMIT_AS {mem >> 20} MiB per process x at most {nproc} processes "
                 f"(= {(mem >> 20) * nproc} MiB; no cgroup is created); memfd refused, /dev/shm 4 MiB, "
                 "work tmpfs size-capped"))
    return rows
