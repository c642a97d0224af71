"""Untrusted-code execution: a bubblewrap sandbox with limits, one process per program."""

from warriorflow.sandbox.runner import (
    REASONS,
    CheckProgram,
    Sandbox,
    SandboxError,
    SandboxLimits,
    SandboxResult,
    bwrap_argv,
    classify,
    default_python,
)

__all__ = ["REASONS", "CheckProgram", "Sandbox", "SandboxError", "SandboxLimits", "SandboxResult", "bwrap_argv",
           "classify",
           "default_python"]
