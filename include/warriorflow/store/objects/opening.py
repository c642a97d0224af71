"""Choosing and opening a store: from a URI, from the settings, and splitting an object URI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.store.objects.local import LocalObjectStore
from warriorflow.store.objects.s3 import S3ObjectStore

# --------------------------------------------------------------------------- choosing a store


def object_store_from_uri(uri: str, **s3_options: Any) -> LocalObjectStore | S3ObjectStore:
    """``file:///abs/dir`` or a plain path -> LocalObjectStore; ``s3://bucket/prefix`` -> S3ObjectStore.

    For S3, options not given as keyword arguments come from WARRIORFLOW_S3_ENDPOINT_URL,
    WARRIORFLOW_S3_REGION, WARRIORFLOW_S3_ACCESS_KEY_ID, WARRIORFLOW_S3_SECRET_ACCESS_KEY and
    WARRIORFLOW_S3_SESSION_TOKEN; anything still unset falls to boto3's AWS_* chain."""
    if not uri:
        raise StoreError("object store URI", "is empty", "use a directory path, file:///abs/dir or s3://bucket/prefix")
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StoreError(f"object store URI {uri!r}", "has no bucket", "use s3://bucket/prefix")
        env = {
            "endpoint_url": "WARRIORFLOW_S3_ENDPOINT_URL",
            "region": "WARRIORFLOW_S3_REGION",
            "access_key_id": "WARRIORFLOW_S3_ACCESS_KEY_ID",
            "secret_access_key": "WARRIORFLOW_S3_SECRET_ACCESS_KEY",
            "session_token": "WARRIORFLOW_S3_SESSION_TOKEN",
        }
        for option, var in env.items():
            if s3_options.get(option) is None and os.environ.get(var):
                s3_options[option] = os.environ[var]
        return S3ObjectStore(parsed.netloc, parsed.path.strip("/"), **s3_options)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(
                f"object store URI {uri!r}", f"names a remote host {parsed.netloc!r}", "use file:///absolute/path"
            )
        return LocalObjectStore(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # a one-letter scheme is a Windows drive
        raise StoreError(
            f"object store URI {uri!r}",
            f"unsupported scheme {parsed.scheme!r}",
            "use a directory path, file:///abs/dir or s3://bucket/prefix",
        )
    return LocalObjectStore(uri)


def s3_options(config: Config) -> dict[str, Any]:
    """The S3 client options the settings give (endpoint, region, addressing style); unset ones are left out."""
    s3 = config.settings.object_store.s3
    return {k: v for k, v in {"endpoint_url": s3.endpoint_url, "region": s3.region,
                              "addressing_style": s3.addressing_style}.items() if v is not None}


def object_store_for(uri: str, config: Config | None = None) -> LocalObjectStore | S3ObjectStore:
    """The store at ``uri``, with the settings' S3 options when it is an S3 URI."""
    return object_store_from_uri(uri, **(s3_options(config) if config is not None and uri.startswith("s3://")
                                         else {}))


def open_objects(config: Config) -> LocalObjectStore | S3ObjectStore:
    """The flywheel's object store (``object_store.uri`` in the settings)."""
    return object_store_for(config.object_store_uri, config)


def split_object_uri(uri: str) -> tuple[str, str]:
    """A full object URI -> (store root URI, key): the key is the last path segment.

    ``s3://bucket/a/b/out.jsonl`` -> (``s3://bucket/a/b``, ``out.jsonl``); ``file:///x/y.json`` and plain
    paths (relative ones resolve against the working directory) -> (``file:///x``, ``y.json``)."""
    if not isinstance(uri, str) or not uri.strip():
        raise StoreError("object URI", "is empty", "use s3://bucket/prefix/name.json, file:///path or a path")
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        path = parsed.path.strip("/")
        if not parsed.netloc or not path:
            raise StoreError(f"object URI {uri!r}", "names no object", "use s3://bucket/prefix/name.json")
        parent, _, key = path.rpartition("/")
        return f"s3://{parsed.netloc}" + (f"/{parent}" if parent else ""), key
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"object URI {uri!r}", f"names a remote host {parsed.netloc!r}", "use file:///abs/path")
        path = Path(unquote(parsed.path))
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise StoreError(f"object URI {uri!r}", f"unsupported scheme {parsed.scheme!r}",
                         "use s3://bucket/prefix/name.json, file:///path or a path")
    else:
        path = Path(uri).expanduser()
    path = path.resolve()
    if uri.endswith("/") or not path.name:
        raise StoreError(f"object URI {uri!r}", "names a directory, not an object", "end the URI with a file name")
    return path.parent.as_uri(), path.name


def open_object_uri(uri: str, config: Config | None = None) -> tuple[LocalObjectStore | S3ObjectStore, str]:
    """(store, key) for a full object URI such as a battle batch's ``--in``/``--out``."""
    root, key = split_object_uri(uri)
    return object_store_for(root, config), key
