"""Manifest-last publishing.

Datasets are published *manifest-last* (:func:`publish`): every data file is uploaded first and
``<prefix>/manifest.json`` is written last, listing the sha256 and size of each file. Readers only
look at prefixes that have a manifest (:func:`list_published`) and can re-hash every file
(:func:`verify_published`, :func:`read_published`), so a half-finished upload is never read."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from warriorflow.errors import StoreError
from warriorflow.store.objects.base import (
    MANIFEST_NAME,
    ObjectNotFoundError,
    ObjectStore,
    file_entry,
    join_key,
    normalize_key,
)

# --------------------------------------------------------------------------- manifest-last publishing


def publish(
    store: ObjectStore, prefix: str, files: Mapping[str, bytes | os.PathLike[str]], manifest: Mapping[str, Any]
) -> str:
    """Upload ``files`` under ``prefix``, then write ``prefix/manifest.json`` last. Returns its URI.

    The manifest holds ``manifest`` plus ``files: {name: {sha256, size}}`` and ``published_at``.
    A published prefix is immutable: publishing again with the same file list (same names,
    hashes and sizes) is a no-op, anything else raises StoreError."""
    prefix = prefix.strip("/")
    if prefix:
        normalize_key(prefix)
    manifest_key = join_key(prefix, MANIFEST_NAME)
    reserved = {"files", "published_at"} & set(manifest)
    if reserved:
        raise StoreError(
            store.uri(manifest_key),
            f"manifest sets reserved field(s) {sorted(reserved)}",
            "leave them out; publish() fills them in",
        )
    if not files:
        raise StoreError(store.uri(manifest_key), "nothing to publish", "pass at least one data file")
    try:
        json.dumps(dict(manifest))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            store.uri(manifest_key),
            f"manifest is not JSON-serializable: {exc}",
            "pass only str/int/float/bool/list/dict values",
        ) from None
    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(files):
        normalize_key(name)
        if name == MANIFEST_NAME:
            raise StoreError(
                store.uri(join_key(prefix, name)), "a data file may not be called manifest.json", "rename the file"
            )
        try:
            entries[name] = file_entry(files[name])
        except OSError as exc:
            raise StoreError(
                str(files[name]), f"cannot read file to publish: {exc.strerror or exc}", "check the path"
            ) from exc

    if store.exists(manifest_key):
        existing = json.loads(store.get_bytes(manifest_key))
        if existing.get("files") == entries:
            return store.uri(manifest_key)  # idempotent re-publish
        raise StoreError(
            store.uri(manifest_key),
            "already published with different files; published prefixes are immutable",
            "publish under a new prefix (e.g. a new version or run id)",
        )

    for name in sorted(files):
        source, key = files[name], join_key(prefix, name)
        if isinstance(source, (bytes, bytearray, memoryview)):
            store.put_bytes(key, bytes(source))
        else:
            store.put_file(key, source)
    document = {**manifest, "files": entries, "published_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    store.put_bytes(manifest_key, json.dumps(document, indent=2, sort_keys=True).encode() + b"\n")
    return store.uri(manifest_key)


def list_published(store: ObjectStore, root_prefix: str = "") -> list[str]:
    """Prefixes under ``root_prefix`` (itself included) that have a manifest.json, sorted."""
    root = root_prefix.strip("/")
    found = []
    for key in store.list(f"{root}/" if root else ""):
        if key == MANIFEST_NAME:
            found.append("")
        elif key.endswith("/" + MANIFEST_NAME):
            found.append(key[: -len(MANIFEST_NAME) - 1])
    return sorted(found)


def read_manifest(store: ObjectStore, prefix: str) -> dict[str, Any]:
    key = join_key(prefix, MANIFEST_NAME)
    try:
        raw = store.get_bytes(key)
    except ObjectNotFoundError:
        raise StoreError(
            store.uri(key),
            "no manifest.json: this prefix is not published (or its publish did not finish)",
            "use list_published() to find complete datasets",
        ) from None
    try:
        document = json.loads(raw)
        check_manifest_files(document)
    except (ValueError, TypeError, AttributeError, StoreError) as exc:
        raise StoreError(store.uri(key), f"manifest is not valid: {exc}", "re-publish under a new prefix") from None
    return document


_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_manifest_files(document: Any) -> None:
    """A manifest's ``files`` must map safe relative names (no '..', no absolute path, no backslash, not the
    manifest itself) to ``{"sha256": 64 hex, "size": int >= 0}``: a tampered manifest can then never make a
    reader write outside its destination. Raises ValueError naming the first bad entry."""
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        raise ValueError("no 'files' mapping")
    for name, entry in document["files"].items():
        try:
            normalize_key(name)
        except StoreError as exc:
            raise ValueError(f"file name {name!r}: {exc.problem}") from None
        if name == MANIFEST_NAME:
            raise ValueError(f"file name {name!r} is the manifest itself")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(
                entry["sha256"]) or isinstance(entry.get("size"), bool) or not isinstance(entry.get("size"), int) \
                or entry["size"] < 0:
            raise ValueError(f"file {name!r}: its entry must be {{'sha256': 64 hex digits, 'size': bytes >= 0}}")


def _verified(store: ObjectStore, prefix: str, name: str, entry: Mapping[str, Any]) -> bytes:
    key = join_key(prefix, name)
    try:
        data = store.get_bytes(key)
    except ObjectNotFoundError:
        raise StoreError(
            store.uri(key),
            f"file {name!r} is listed in the manifest but missing",
            "the dataset is damaged; re-publish it under a new prefix",
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256") or len(data) != entry.get("size"):
        raise StoreError(
            store.uri(key),
            f"file {name!r} fails its checksum: manifest says sha256 {entry.get('sha256')} "
            f"size {entry.get('size')}, found sha256 {digest} size {len(data)}",
            "the dataset is damaged; re-publish it under a new prefix",
        )
    return data


def verify_published(store: ObjectStore, prefix: str) -> dict[str, Any]:
    """Re-hash every file listed in ``prefix/manifest.json``; return the manifest or raise StoreError."""
    prefix = prefix.strip("/")
    document = read_manifest(store, prefix)
    for name, entry in sorted(document["files"].items()):
        _verified(store, prefix, name, entry)
    return document


def read_published(store: ObjectStore, prefix: str, verify: bool = True) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Return ``(manifest, {name: bytes})`` for a published prefix, checking hashes if ``verify``."""
    prefix = prefix.strip("/")
    document = read_manifest(store, prefix)
    data = {}
    for name, entry in sorted(document["files"].items()):
        data[name] = _verified(store, prefix, name, entry) if verify else store.get_bytes(join_key(prefix, name))
    return document, data
