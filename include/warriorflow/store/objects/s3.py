"""The S3 object store (boto3), with every S3 failure mapped to a StoreError that says what to do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from warriorflow.errors import StoreError
from warriorflow.store.objects.base import (
    CREDENTIAL_CODES,
    MiB,
    ObjectNotFoundError,
    join_key,
    normalize_key,
    normalize_prefix,
)

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
    if code in CREDENTIAL_CODES:
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
