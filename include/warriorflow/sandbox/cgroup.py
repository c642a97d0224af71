"""A memory (and process-count) bound over the whole sandbox: one cgroup per run, where the host allows it.

``RLIMIT_AS`` bounds each process's address space; it does not bound the sum over a program's
processes, pages that are not mapped (tmpfs files), or memory a process touches through
``mmap`` of shared files. A cgroup does: every page charged to the sandbox's processes counts,
children included, and the kernel kills the group when it goes over.

:func:`find_parent` looks for a cgroup this process may create children in:

* cgroup v2: the unified hierarchy, at this process's own cgroup, with the ``memory`` controller
  enabled for children (``memory.max``, ``memory.swap.max``, ``pids.max``);
* cgroup v1: the ``memory`` hierarchy at this process's own cgroup (``memory.limit_in_bytes``,
  ``memory.memsw.limit_in_bytes`` where swap accounting is on).

Where neither can be written (an unprivileged container without a delegated cgroup), the sandbox
falls back to ``RLIMIT_AS`` per process times ``RLIMIT_NPROC`` processes, and ``doctor`` says so.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupParent:
    version: int  # 1 or 2
    path: Path


def _own_path(version: int, proc_cgroup: str) -> str | None:
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if version == 2 and parts[0] == "0" and parts[1] == "":
            return parts[2]
        if version == 1 and "memory" in parts[1].split(","):
            return parts[2]
    return None


def find_parent(root: Path = ROOT) -> tuple[CgroupParent | None, str]:
    """(parent, why): a cgroup this process can create sandbox cgroups under, or None and the reason."""
    try:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    except OSError as exc:
        return None, f"cannot read /proc/self/cgroup ({exc.strerror})"
    candidates = []
    if (root / "cgroup.controllers").is_file():
        own = _own_path(2, proc_cgroup)
        if own is not None:
            candidates.append(CgroupParent(2, root / own.lstrip("/")))
    elif (root / "memory").is_dir():
        own = _own_path(1, proc_cgroup)
        if own is not None:
            candidates.append(CgroupParent(1, root / "memory" / own.lstrip("/")))
    if not candidates:
        return None, "no cgroup memory controller is mounted"
    parent = candidates[0]
    if parent.version == 2:
        try:
            enabled = (parent.path / "cgroup.subtree_control").read_text().split()
        except OSError:
            enabled = []
        if "memory" not in enabled:
            return None, f"the memory controller is not enabled for children of {parent.path}"
    probe = parent.path / f"warriorflow-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
    except OSError as exc:
        return None, f"cannot create a cgroup under {parent.path} ({exc.strerror})"
    with contextlib.suppress(OSError):
        probe.rmdir()
    return parent, f"cgroup v{parent.version} under {parent.path}"


class SandboxCgroup:
    """One run's cgroup: created with its limits, joined by the sandbox's first process, removed after."""

    def __init__(self, parent: CgroupParent, memory_bytes: int, pids: int):
        self.parent = parent
        self.path = parent.path / f"warriorflow-sandbox-{uuid.uuid4().hex}"
        self.path.mkdir()
        try:
            if parent.version == 2:
                self._write("memory.max", memory_bytes)
                self._write("memory.swap.max", 0, optional=True)
                self._write("pids.max", pids, optional=True)
            else:
                self._write("memory.limit_in_bytes", memory_bytes)
                self._write("memory.memsw.limit_in_bytes", memory_bytes, optional=True)
        except OSError:
            self.remove()
            raise
        self.procs = os.fsencode(self.path / "cgroup.procs")

    def _write(self, name: str, value: int, optional: bool = False) -> None:
        try:
            (self.path / name).write_text(str(value))
        except OSError:
            if not optional:
                raise

    def join(self) -> None:
        """Move the calling process into the cgroup (called between fork and exec: only os calls)."""
        fd = os.open(self.procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def out_of_memory(self, at_bound: bool = False) -> bool:
        """Did the kernel kill a process of the group for going over its memory bound? With ``at_bound``: or did
        the group's usage reach the bound at all (cgroup v2 ``max``/``oom`` events: the kernel reclaimed there)."""
        try:
            if self.parent.version == 2:
                events = (self.path / "memory.events").read_text().split()
                counts = dict(zip(events[::2], events[1::2], strict=False))
                keys = ("oom_kill", "oom", "max") if at_bound else ("oom_kill",)
                return any(int(counts.get(k, "0")) > 0 for k in keys)
            return int((self.path / "memory.failcnt").read_text()) > 0  # the bound was hit
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        for _ in range(50):  # the PID namespace's processes are reaped a moment after bwrap exits
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)
