"""The object-store interface: the protocol both stores implement, its errors, and key rules.

Keys are '/'-separated strings relative to the store root, e.g. ``"runs/2024-05-01/data.jsonl"``.
``..``, ``.``, empty segments and absolute keys are rejected, for both stores, so a key can never
escape the root."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from warriorflow.errors import StoreError
from warriorflow.store.hashing import sha256_file

MiB = 1024 * 1024
MANIFEST_NAME = "manifest.json"
TMP_MARK = ".wf-tmp-"  # local in-flight writes; never listed
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "403",
}


class ObjectNotFoundError(StoreError, KeyError):
    """The key (or bucket) does not exist. Catchable as ``KeyError`` too."""

    __str__ = Exception.__str__  # KeyError would repr() the message


@runtime_checkable
class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: str | os.PathLike[str]) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_file(self, key: str, path: str | os.PathLike[str]) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "", page_size: int | None = None) -> Iterator[str]: ...
    def delete(self, key: str) -> None: ...
    def uri(self, key: str = "") -> str: ...
    def check(self) -> None: ...


# --------------------------------------------------------------------------- pure helpers


def normalize_key(key: str) -> str:
    """Return ``key`` if it is a safe relative '/'-separated key, else raise StoreError."""
    if not isinstance(key, str) or not key:
        raise StoreError(f"object key {key!r}", "keys must be non-empty strings", "pass e.g. 'runs/x/data.jsonl'")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise StoreError(
            f"object key {key!r}",
            "absolute keys, backslashes and NUL are not allowed",
            "use a relative key with '/' separators",
        )
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise StoreError(
            f"object key {key!r}",
            "empty, '.' or '..' segments would escape or confuse the store root",
            "use a plain relative key like 'a/b/c.json'",
        )
    return key


def normalize_prefix(prefix: str) -> str:
    """A listing prefix: '' or a key-like string, optionally ending in '/'."""
    if prefix == "":
        return ""
    body = prefix.removesuffix("/")
    normalize_key(body)
    return prefix


def join_key(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def file_entry(source: bytes | os.PathLike[str]) -> dict[str, Any]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return {"sha256": sha256_file(source), "size": Path(source).stat().st_size}
