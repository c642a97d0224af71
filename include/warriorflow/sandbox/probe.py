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
