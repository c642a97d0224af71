"""The sandbox's seccomp filter: a few system calls a test program never needs, refused with EPERM.

* ``keyctl``, ``add_key``, ``request_key``: the kernel keyrings are not namespaced with the sandbox; a
  program could read or overwrite a key of the host session, or leave a message for a later run;
* ``memfd_create``: anonymous files whose pages ``RLIMIT_AS`` does not count (memory bound escape);
* ``userfaultfd``, ``perf_event_open``, ``bpf``, ``io_uring_setup``: kernel attack surface;
* ``ptrace``, ``process_vm_readv``, ``process_vm_writev``, ``pidfd_getfd``: no process reads another's
  memory or takes another's file descriptors;
* ``unshare``, ``setns``, ``mount``: no new namespaces or mounts (bwrap's ``--disable-userns`` also stops
  nested user namespaces).

The filter is a classic BPF program built here (no libseccomp): it checks the architecture (a call made
through another ABI, such as x32 on x86_64, kills the process), then the call number. bwrap installs it
(``--add-seccomp-fd``) after setting the sandbox up, right before the interpreter starts.
"""

from __future__ import annotations

import errno
import platform
import struct

# syscall numbers per architecture (linux/unistd.h)
DENIED = ("keyctl", "add_key", "request_key", "memfd_create", "userfaultfd", "perf_event_open", "bpf",
          "io_uring_setup", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "unshare", "setns",
          "mount")
_NR = {
    "x86_64": {"keyctl": 250, "add_key": 248, "request_key": 249, "memfd_create": 319, "userfaultfd": 323,
               "perf_event_open": 298, "bpf": 321, "io_uring_setup": 425, "ptrace": 101, "process_vm_readv": 310,
               "process_vm_writev": 311, "pidfd_getfd": 438, "unshare": 272, "setns": 308, "mount": 165},
    "aarch64": {"keyctl": 219, "add_key": 217, "request_key": 218, "memfd_create": 279, "userfaultfd": 282,
                "perf_event_open": 241, "bpf": 280, "io_uring_setup": 425, "ptrace": 117, "process_vm_readv": 270,
                "process_vm_writev": 271, "pidfd_getfd": 438, "unshare": 97, "setns": 268, "mount": 40},
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_BIT = 0x40000000

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000
_RET_EPERM = 0x00050000 | errno.EPERM


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in _NR


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def filter_program(machine: str | None = None) -> bytes:
    """The BPF program (struct sock_filter[]) for this machine's architecture."""
    machine = machine or platform.machine()
    if machine not in _NR:
        raise ValueError(f"no seccomp filter for {machine}")
    nrs = [_NR[machine][name] for name in DENIED]
    prog = [_insn(_LD_W_ABS, 0, 0, 4),                       # A = arch
            _insn(_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),       # arch ok: skip the kill
            _insn(_RET_K, 0, 0, _RET_KILL),
            _insn(_LD_W_ABS, 0, 0, 0)]                       # A = syscall number
    if machine == "x86_64":
        prog += [_insn(_JGE_K, 0, 1, _X32_BIT), _insn(_RET_K, 0, 0, _RET_KILL)]
    for i, nr in enumerate(nrs):  # equal: jump to the EPERM return after the ALLOW
        prog.append(_insn(_JEQ_K, len(nrs) - i, 0, nr))
    prog += [_insn(_RET_K, 0, 0, _RET_ALLOW), _insn(_RET_K, 0, 0, _RET_EPERM)]
    return b"".join(prog)
