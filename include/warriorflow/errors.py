"""Errors that name the thing that went wrong and what to do about it."""

from __future__ import annotations


class WarriorflowError(Exception):
    """Base error. ``what`` names the failing thing, ``fix`` says what the user should do."""

    def __init__(self, what: str, problem: str, fix: str | None = None):
        self.what = what
        self.problem = problem
        self.fix = fix
        message = f"{what}: {problem}"
        if fix:
            message += f"\n  fix: {fix}"
        super().__init__(message)


class ConfigError(WarriorflowError):
    """A settings or registry file is missing, unreadable or invalid."""


class ModelError(WarriorflowError):
    """Model weights are missing, incomplete or fail their checksum."""


class BackendError(WarriorflowError):
    """An inference backend failed: server down, timeout, or an answer that is not what the API promises."""


class StoreError(WarriorflowError):
    """The rating store or the object store failed."""
