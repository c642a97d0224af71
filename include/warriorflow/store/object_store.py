"""Object store: one small interface over a local directory (default) and S3.

Keys are '/'-separated strings relative to the store root, e.g. ``"runs/2024-05-01/data.jsonl"``.
``..``, ``.``, empty segments and absolute keys are rejected, for both stores, so a key can never
escape the root.

Datasets are published *manifest-last* (:func:`publish`): every data file is uploaded first and
``<prefix>/manifest.json`` is written last, listing the sha256 and size of each file. Readers only
look at prefixes that have a manifest (:func:`list_published`) and can re-hash every file
(:func:`verify_published`, :func:`read_published`), so a half-finished upload is never read.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from warriorflow.errors import StoreError
from warriorflow.hashing import sha256_file

MiB = 1024 * 1024
MANIFEST_NAME = "manifest.json"
_TMP_MARK = ".wf-tmp-"  # local in-flight writes; never listed
_CREDENTIAL_CODES = {
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


def _file_entry(source: bytes | os.PathLike[str]) -> dict[str, Any]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return {"sha256": sha256_file(source), "size": Path(source).stat().st_size}


def _atomic_write(dest: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temp file beside ``dest``, then os.replace it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_MARK}{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- local directory


class LocalObjectStore:
    """Objects as files under ``root``. Writes are atomic (temp file + os.replace)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def _join(self, key: str) -> Path:
        return self.root.joinpath(*normalize_key(key).split("/"))

    def _path(self, key: str) -> Path:
        path = self._join(key)
        if not path.resolve().is_relative_to(self.root):  # a symlink pointing out of the root
            raise StoreError(self.uri(key), "resolves outside the store root", "remove the symlink or use another key")
        return path

    def _os_error(self, key: str, action: str, exc: OSError) -> StoreError:
        return StoreError(
            self.uri(key),
            f"cannot {action}: {exc.strerror or exc}",
            f"check that {self.root} is a writable directory with free space",
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            _atomic_write(self._path(key), lambda tmp: _write_synced(tmp, data))
        except OSError as exc:
            raise self._os_error(key, "write", exc) from exc

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        src = Path(path)
        if not src.is_file():
            raise StoreError(str(src), "local file to upload does not exist", "check the path")
        try:
            _atomic_write(self._path(key), lambda tmp: shutil.copyfile(src, tmp))
        except OSError as exc:
            raise self._os_error(key, "write", exc) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(
                self.uri(key), "no such object", "check the key, or list the prefix to see what exists"
            ) from exc
        except OSError as exc:
            raise self._os_error(key, "read", exc) from exc

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFoundError(
                self.uri(key), "no such object", "check the key, or list the prefix to see what exists"
            )
        try:
            _atomic_write(Path(path), lambda tmp: shutil.copyfile(src, tmp))
        except OSError as exc:
            raise StoreError(
                str(path), f"cannot write download target: {exc.strerror or exc}", "check the destination directory"
            ) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "", page_size: int | None = None) -> Iterator[str]:
        """Keys under ``prefix`` (a plain string prefix, as in S3), sorted. ``page_size`` is ignored."""
        prefix = normalize_prefix(prefix)
        start = self.root.joinpath(*prefix.split("/")[:-1])  # deepest directory the prefix names
        keys = []
        for dirpath, _dirs, files in os.walk(start):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if not name.startswith(_TMP_MARK) and key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._os_error(key, "delete", exc) from exc
        for parent in path.parents:  # prune now-empty directories, never the root
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def uri(self, key: str = "") -> str:
        return (self._join(key) if key else self.root).as_uri()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=_TMP_MARK, dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(
                self.root.as_uri(),
                f"object store directory is not writable: {exc.strerror or exc}",
                "create the directory and make it writable, or set another store URI",
            ) from exc


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


# --------------------------------------------------------------------------- S3


class S3ObjectStore:
    """Objects in ``s3://bucket/prefix/``, through boto3.

    Credentials come from the arguments, else boto3's standard chain (AWS_* env vars, profiles,
    instance roles). Timeouts and retries are short so a down server fails in seconds.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        addressing_style: str = "path",
        create_bucket: bool = False,
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
        list_page_size: int = 1000,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        credentials_source: str | None = None,
    ):
        if not bucket or "/" in bucket:
            raise StoreError(
                f"S3 bucket {bucket!r}",
                "bucket name is empty or contains '/'",
                "use s3://bucket/prefix with a plain bucket name",
            )
        if addressing_style not in ("path", "auto", "virtual"):
            raise StoreError(
                f"s3://{bucket}",
                f"addressing_style {addressing_style!r} is not path|auto|virtual",
                "use 'path' for SeaweedFS/MinIO, 'auto' for AWS",
            )
        if (access_key_id is None) != (secret_access_key is None):
            raise StoreError(
                f"s3://{bucket}",
                "only one of access key id / secret access key was given",
                "set both, or neither to use the AWS environment chain",
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            normalize_key(self.prefix)
        self.endpoint_url = endpoint_url or None
        self.region = region or None
        self.addressing_style = addressing_style
        self.create_bucket = create_bucket
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.list_page_size = list_page_size
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        self.credentials_source = credentials_source or (
            "explicit credentials (arguments / WARRIORFLOW_S3_* vars)"
            if access_key_id
            else "the AWS environment chain (AWS_* vars, profile, role)"
        )
        self._client_obj = None
        self._bucket_ready = False

    @classmethod
    def from_airflow_connection(cls, conn_id: str, bucket: str, prefix: str = "", **options: Any) -> S3ObjectStore:
        """Build from an Airflow ``aws`` connection: login = access key id, password = secret,
        extra ``endpoint_url`` / ``region_name`` (and optionally ``aws_session_token``)."""
        what = f"Airflow connection {conn_id!r}"
        try:
            from airflow.sdk import BaseHook  # Airflow 3
        except ImportError:
            try:
                from airflow.hooks.base import BaseHook  # Airflow 2
            except ImportError as exc:
                raise StoreError(
                    what,
                    "Airflow is not installed in this environment",
                    "run inside Airflow, or use S3ObjectStore(...) with explicit settings",
                ) from exc
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception as exc:  # AirflowNotFoundException and friends
            raise StoreError(
                what,
                f"cannot load the connection ({type(exc).__name__})",
                f"create it, e.g. `airflow connections add {conn_id} --conn-type aws --conn-login KEY "
                f"""--conn-password SECRET --conn-extra '{{"endpoint_url": "http://host:8333"}}'`""",
            ) from exc
        conn_type = getattr(conn, "conn_type", None)
        if conn_type not in (None, "", "aws", "s3"):
            raise StoreError(
                what, f"has type {conn_type!r}, expected 'aws'", "recreate the connection with --conn-type aws"
            )
        extra = dict(getattr(conn, "extra_dejson", None) or {})
        options.setdefault(
            "endpoint_url",
            extra.get("endpoint_url") or (extra.get("service_config") or {}).get("s3", {}).get("endpoint_url"),
        )
        options.setdefault("region", extra.get("region_name"))
        options.setdefault("session_token", extra.get("aws_session_token"))
        return cls(
            bucket,
            prefix,
            access_key_id=conn.login or None,
            secret_access_key=conn.password or None,
            credentials_source=f"the Airflow connection {conn_id!r}",
            **options,
        )

    def __repr__(self) -> str:
        return (
            f"S3ObjectStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r}, "
            f"region={self.region!r}, credentials={self.credentials_source!r})"
        )

    # ---- plumbing

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or "AWS S3"

    def _key(self, key: str) -> str:
        return join_key(self.prefix, normalize_key(key))

    def _client(self):
        if self._client_obj is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(
                aws_access_key_id=self._access_key_id,
                aws_secret_access_key=self._secret_access_key,
                aws_session_token=self._session_token,
                region_name=self.region,
            )
            config = Config(
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                retries={"max_attempts": self.max_attempts, "mode": "standard"},
                s3={"addressing_style": self.addressing_style},
            )
            self._client_obj = session.client(
                "s3", endpoint_url=self.endpoint_url, region_name=session.region_name or "us-east-1", config=config
            )
        if self.create_bucket and not self._bucket_ready:
            self._ensure_bucket()
            self._bucket_ready = True
        return self._client_obj

    def _transfer_config(self):
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold, multipart_chunksize=self.multipart_chunksize
        )

    def _error(self, exc: BaseException, key: str | None = None) -> StoreError:
        return map_s3_error(
            exc,
            endpoint=self.endpoint,
            bucket=self.bucket,
            uri=self.uri(key) if key else f"s3://{self.bucket}",
            credentials_source=self.credentials_source,
            secrets=(self._secret_access_key, self._session_token),
        )

    def _call(self, key: str | None, fn, *args, **kwargs):
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise self._error(exc, key) from None  # the botocore chain can be long; the message says it all

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client_obj
        try:
            self._call(None, client.head_bucket, Bucket=self.bucket)
            return
        except ObjectNotFoundError:
            if not self.create_bucket:
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = client.meta.region_name
        if self.endpoint_url is None and region != "us-east-1":  # AWS wants the region spelled out
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":  # that one: lost a harmless race
                raise self._error(exc) from None

    # ---- the interface

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._key(key)
        self._call(key, self._client().put_object, Bucket=self.bucket, Key=full, Body=bytes(data))

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        full = self._key(key)
        src = Path(path)
        if not src.is_file():
            raise StoreError(str(src), "local file to upload does not exist", "check the path")
        self._call(key, self._client().upload_file, str(src), self.bucket, full, Config=self._transfer_config())

    def get_bytes(self, key: str) -> bytes:
        full = self._key(key)
        response = self._call(key, self._client().get_object, Bucket=self.bucket, Key=full)
        return self._call(key, response["Body"].read)

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        full = self._key(key)
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # s3transfer downloads to a temp file and renames it into place
        self._call(key, self._client().download_file, self.bucket, full, str(dest), Config=self._transfer_config())

    def exists(self, key: str) -> bool:
        full = self._key(key)
        try:
            self._call(key, self._client().head_object, Bucket=self.bucket, Key=full)
        except ObjectNotFoundError as exc:
            if exc.what == f"s3://{self.bucket}":  # a missing bucket is an error, not "no"
                raise
            return False
        return True

    def list(self, prefix: str = "", page_size: int | None = None) -> Iterator[str]:
        """Keys under ``prefix`` (relative to the store root), sorted.

        Pages through list_objects_v2 (``page_size`` keys per request). The result is collected
        and sorted here, since not every S3-compatible server returns strict byte order."""
        prefix = normalize_prefix(prefix)
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self._client().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=full_prefix, PaginationConfig={"PageSize": page_size or self.list_page_size}
        )
        keys: list[str] = []

        def collect() -> None:
            for page in pages:
                keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))

        self._call(prefix or None, collect)
        return iter(sorted(k for k in keys if k and not k.endswith("/")))

    def delete(self, key: str) -> None:
        full = self._key(key)
        self._call(key, self._client().delete_object, Bucket=self.bucket, Key=full)

    def uri(self, key: str = "") -> str:
        path = join_key(self.prefix, key) if key else self.prefix
        return f"s3://{self.bucket}/{path}"

    def check(self) -> None:
        """Reachable, credentials accepted, bucket exists (or is created if create_bucket=True)."""
        self._client()
        self._ensure_bucket()


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def map_s3_error(
    exc: BaseException,
    *,
    endpoint: str,
    bucket: str,
    uri: str,
    credentials_source: str = "the configured credentials",
    secrets: tuple[str | None, ...] = (),
) -> StoreError:
    """Turn a botocore/boto3 exception into a StoreError that names the thing and the fix."""
    import botocore.exceptions as bx

    unreachable = (bx.ConnectionError, bx.ConnectionClosedError)  # refused, connect timeout, DNS, proxy, dropped
    no_credentials = (bx.NoCredentialsError, bx.PartialCredentialsError)
    cause = exc  # S3UploadFailedError hides the ClientError in its __context__
    while not isinstance(cause, (bx.ClientError, bx.ReadTimeoutError, *unreachable, *no_credentials)) and (
        cause.__cause__ or cause.__context__
    ):
        cause = cause.__cause__ or cause.__context__
    code = _error_code(cause)
    if isinstance(cause, unreachable):
        return StoreError(
            uri,
            f"S3 endpoint {endpoint} is not reachable; is the server running?",
            "check endpoint_url (WARRIORFLOW_S3_ENDPOINT_URL) and that the server is up",
        )
    if isinstance(cause, bx.ReadTimeoutError):
        return StoreError(
            uri,
            f"S3 endpoint {endpoint} accepted the connection but did not answer in time",
            "check the server's health and load, or raise read_timeout",
        )
    if isinstance(cause, no_credentials):
        return StoreError(
            f"s3://{bucket}",
            "no S3 credentials found",
            "set WARRIORFLOW_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY, the AWS_* vars, or use the Airflow connection",
        )
    if code in _CREDENTIAL_CODES:
        return StoreError(
            uri,
            f"credentials rejected by {endpoint} for bucket {bucket} ({code})",
            f"check WARRIORFLOW_S3_* / the Airflow connection (credentials came from {credentials_source}) "
            "and that the identity may access this bucket",
        )
    if code == "NoSuchBucket" or (code == "404" and uri == f"s3://{bucket}"):
        return ObjectNotFoundError(
            f"s3://{bucket}",
            f"bucket {bucket} does not exist on {endpoint}",
            "create the bucket, fix the bucket name, or set create_bucket=True",
        )
    if code in ("NoSuchKey", "404", "NotFound"):
        return ObjectNotFoundError(uri, "no such object", "check the key, or list the prefix to see what exists")
    message = str(exc)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return StoreError(uri, f"S3 request to {endpoint} failed: {message}", "check the S3 error code and the server logs")


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
            entries[name] = _file_entry(files[name])
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
        if not isinstance(document.get("files"), dict):
            raise TypeError("no 'files' mapping")
    except (ValueError, TypeError, AttributeError) as exc:
        raise StoreError(store.uri(key), f"manifest is not valid: {exc}", "re-publish under a new prefix") from None
    return document


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
