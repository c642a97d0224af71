"""Errors that name the thing that went wrong and what to do about it, and the redaction every error
message and log record goes through, so that no credential reaches an output."""

from __future__ import annotations

import logging
import os
import re


class WarriorflowError(Exception):
    """Base error. ``what`` names the failing thing, ``fix`` says what the user should do."""

    def __init__(self, what: str, problem: str, fix: str | None = None):
        what, problem, fix = redact(what), redact(problem), None if fix is None else redact(fix)
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


# ------------------------------------------------------------------------------------------ redaction
# Every printed error (the messages above) and every log record (``RedactingFilter``) goes through
# ``redact``: credentials in headers, pre-signed URLs and key=value pairs, and the value of every secret
# the process knows (environment variables that name a secret, and values registered here), are masked.

_SECRET_ENV = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|CREDENTIAL|PRIVATE_KEY)", re.I)
_PATTERNS = (
    # Authorization: Bearer abc / 'authorization': 'AWS4-HMAC-SHA256 Credential=..., Signature=...'
    re.compile(r"(?i)(\bauthorization\b['\"]?\s*[:=]\s*['\"]?)((?:bearer|basic|token)\s+[^\s'\",}]+"
               r"|aws4-hmac-sha256\s[^'\"\n}]*|[^\s'\",}]+)"),
    re.compile(r"(?i)(\bx-amz-security-token\b['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)(\b(?:x-amz-credential|x-amz-signature|x-amz-security-token|signature|awsaccesskeyid)=)[^&\s'\"]+"),
    re.compile(r"(?i)(\b(?:api[_-]?key|secret[_-]?access[_-]?key|session[_-]?token|password|passwd|secret|token)"
               r"['\"]?\s*[:=]\s*['\"]?)[^'\"\s,&}]{4,}"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
)
_NOT_A_VALUE = re.compile(r"_(FILE|PATH|DIR|ENV|URL|URI)$", re.I)  # names a place, not the secret itself
_REGISTERED: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in printed errors and logs from now on (api keys read from a file)."""
    if value and len(value) >= 4:
        _REGISTERED.add(value)


def _secret_values() -> list[str]:
    values = set(_REGISTERED)
    values.update(v for k, v in os.environ.items() if _SECRET_ENV.search(k) and not _NOT_A_VALUE.search(k)
                  and v and len(v) >= 6)
    return sorted(values, key=len, reverse=True)


def redact(text: object) -> str:
    """``text`` with every credential it shows masked."""
    out = text if isinstance(text, str) else str(text)
    for value in _secret_values():
        out = out.replace(value, MASK)
    for pattern in _PATTERNS:
        out = pattern.sub(lambda m: m.group(1) + MASK, out)
    return out


def excerpt(text: object, limit: int = 200) -> str:
    """A bounded, redacted excerpt of a body someone else wrote (an endpoint's error page, a proxy's echo)."""
    out = redact(text)
    return out if len(out) <= limit else out[:limit] + f"… ({len(out) - limit} more characters)"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (arguments included) before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logger's problem, not ours
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_redaction(*loggers: logging.Logger) -> None:
    """Put one RedactingFilter on every handler of ``loggers`` (default: the root logger)."""
    for logger in loggers or (logging.getLogger(),):
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
