"""S3ObjectStore against a real SeaweedFS (started by the `seaweedfs` session fixture), and the
publishing contract run against both the local and the S3 store."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import pytest

from warriorflow.errors import StoreError
from warriorflow.store.objects import (
    LocalObjectStore,
    MiB,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
    list_published,
    object_store_from_uri,
    publish,
    read_published,
    verify_published,
)

pytestmark = pytest.mark.integration

BUCKET = "wf-test"


def make_s3(seaweedfs, prefix: str | None = None, **options) -> S3ObjectStore:
    settings = {
        "endpoint_url": seaweedfs.endpoint_url,
        "region": seaweedfs.region,
        "access_key_id": seaweedfs.access_key,
        "secret_access_key": seaweedfs.secret_key,
        "create_bucket": True,
    }
    settings.update(options)
    bucket = settings.pop("bucket", BUCKET)
    return S3ObjectStore(bucket, prefix if prefix is not None else f"t-{uuid.uuid4().hex[:10]}", **settings)


@pytest.fixture
def s3(seaweedfs) -> S3ObjectStore:
    return make_s3(seaweedfs, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)


@pytest.fixture(params=["local", "s3"])
def any_store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    return make_s3(request.getfixturevalue("seaweedfs"))


def dead_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here any more


# --------------------------------------------------------------------------- basics


def test_bytes_round_trip(s3):
    s3.check()
    s3.put_bytes("a/b.json", b'{"x": 1}')
    assert s3.get_bytes("a/b.json") == b'{"x": 1}'
    assert s3.exists("a/b.json") and not s3.exists("a/nope.json")
    assert s3.uri("a/b.json") == f"s3://{BUCKET}/{s3.prefix}/a/b.json"
    s3.delete("a/b.json")
    s3.delete("a/b.json")  # idempotent
    assert not s3.exists("a/b.json")
    with pytest.raises(ObjectNotFoundError) as info:
        s3.get_bytes("a/b.json")
    assert isinstance(info.value, KeyError) and s3.uri("a/b.json") in str(info.value)


def test_file_round_trip(s3, tmp_path):
    src = tmp_path / "small.bin"
    src.write_bytes(os.urandom(300_000))
    s3.put_file("f/small.bin", src)
    dest = tmp_path / "out" / "small.bin"
    s3.get_file("f/small.bin", dest)
    assert dest.read_bytes() == src.read_bytes()
    etag = seaweed_head(s3, "f/small.bin")["ETag"].strip('"')
    assert "-" not in etag  # below the threshold: a single PUT
    with pytest.raises(ObjectNotFoundError):
        s3.get_file("f/missing.bin", tmp_path / "missing.bin")


def seaweed_head(store: S3ObjectStore, key: str, **kwargs) -> dict:
    return store._client().head_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}", **kwargs)


def test_multipart_upload(s3, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * MiB))  # 5 MiB threshold and chunks -> 3 parts
    s3.put_file("big/big.bin", src)
    head = seaweed_head(s3, "big/big.bin")
    assert head["ContentLength"] == 12 * MiB
    assert head["ETag"].strip('"').endswith("-3")
    assert seaweed_head(s3, "big/big.bin", PartNumber=1)["PartsCount"] == 3
    dest = tmp_path / "big.out"
    s3.get_file("big/big.bin", dest)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


def test_paginated_listing(s3):
    keys = [f"many/k{i:03d}" for i in range(25)]
    for key in reversed(keys):
        s3.put_bytes(key, b"x")
    s3.put_bytes("other/z", b"x")
    calls = []
    s3._client().meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **kw: calls.append(params.get("MaxKeys"))
    )
    assert list(s3.list("many/", page_size=10)) == keys
    assert calls == [10, 10, 10]  # really paginated: 10 + 10 + 5
    assert list(s3.list()) == keys + ["other/z"]  # relative to the store prefix, sorted
    assert list(s3.list("many/k02")) == keys[20:]


def test_list_is_sorted_across_directories(s3):
    for key in ["a/1", "a-c", "b", "a/sub/3"]:
        s3.put_bytes(key, b"x")
    assert list(s3.list()) == ["a-c", "a/1", "a/sub/3", "b"]  # same order as LocalObjectStore


# --------------------------------------------------------------------------- failures


def test_wrong_secret_rejected(seaweedfs, s3, tmp_path):
    s3.put_bytes("k", b"x")
    wrong = "definitely-not-the-secret-8d2f"
    bad = make_s3(seaweedfs, prefix=s3.prefix, secret_access_key=wrong, create_bucket=False)
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 100)
    for op in (
        bad.check,
        lambda: bad.get_bytes("k"),
        lambda: bad.put_bytes("k2", b"x"),
        lambda: bad.put_file("k3", src),
        lambda: list(bad.list()),
        lambda: bad.exists("k"),
    ):
        with pytest.raises(StoreError) as info:
            op()
        message = str(info.value)
        assert f"credentials rejected by {seaweedfs.endpoint_url} for bucket {BUCKET}" in message, message
        assert "WARRIORFLOW_S3_" in message
        assert wrong not in message and seaweedfs.secret_key not in message
        assert wrong not in repr(bad)


def test_unknown_access_key_rejected(seaweedfs):
    bad = make_s3(seaweedfs, access_key_id="nobody", secret_access_key="whatever-secret-1", create_bucket=False)
    with pytest.raises(StoreError, match="credentials rejected") as info:
        bad.check()
    assert "whatever-secret-1" not in str(info.value)


def test_endpoint_down_fails_fast(seaweedfs):
    endpoint = dead_endpoint()
    store = make_s3(seaweedfs, endpoint_url=endpoint, create_bucket=False)
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.check()
    assert time.monotonic() - started < 15
    assert f"S3 endpoint {endpoint} is not reachable; is the server running?" in str(info.value)
    assert "endpoint_url" in str(info.value)
    with pytest.raises(StoreError, match="not reachable"):
        store.get_bytes("k")


def test_missing_bucket(seaweedfs):
    store = make_s3(seaweedfs, bucket=f"wf-missing-{uuid.uuid4().hex[:8]}", create_bucket=False)
    with pytest.raises(ObjectNotFoundError, match="does not exist") as info:
        store.check()
    assert "create_bucket" in str(info.value)
    with pytest.raises(ObjectNotFoundError, match="does not exist"):
        store.get_bytes("k")


def test_create_bucket(seaweedfs):
    store = make_s3(seaweedfs, bucket=f"wf-new-{uuid.uuid4().hex[:8]}", prefix="", create_bucket=True)
    store.check()
    store.put_bytes("k", b"v")
    assert list(store.list()) == ["k"]
    assert store.uri("k") == f"s3://{store.bucket}/k"


def test_from_uri_with_env(seaweedfs, monkeypatch):
    monkeypatch.setenv("WARRIORFLOW_S3_ENDPOINT_URL", seaweedfs.endpoint_url)
    monkeypatch.setenv("WARRIORFLOW_S3_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("WARRIORFLOW_S3_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    monkeypatch.setenv("WARRIORFLOW_S3_REGION", seaweedfs.region)
    prefix = f"env-{uuid.uuid4().hex[:8]}"
    store = object_store_from_uri(f"s3://{BUCKET}/{prefix}", create_bucket=True)
    store.check()
    store.put_bytes("x", b"1")
    assert store.get_bytes("x") == b"1"
    assert seaweedfs.secret_key not in repr(store)


# --------------------------------------------------------------------------- publishing, on both stores


class RecordingStore:
    def __init__(self, inner):
        self.inner, self.writes = inner, []

    def put_bytes(self, key, data):
        self.writes.append(key)
        self.inner.put_bytes(key, data)

    def put_file(self, key, path):
        self.writes.append(key)
        self.inner.put_file(key, path)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_publish_manifest_last_and_verify(any_store, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * MiB))
    rec = RecordingStore(any_store)
    uri = publish(rec, "runs/r1", {"big.bin": big, "part/0.jsonl": b'{"a": 1}\n'}, {"run_id": "r1"})
    assert rec.writes == ["runs/r1/big.bin", "runs/r1/part/0.jsonl", "runs/r1/manifest.json"]
    assert uri == any_store.uri("runs/r1/manifest.json")
    manifest = verify_published(any_store, "runs/r1")
    assert manifest["run_id"] == "r1"
    assert manifest["files"]["big.bin"] == {"sha256": hashlib.sha256(big.read_bytes()).hexdigest(), "size": 2 * MiB}
    _, data = read_published(any_store, "runs/r1")
    assert data["big.bin"] == big.read_bytes() and data["part/0.jsonl"] == b'{"a": 1}\n'


def test_list_published_ignores_unfinished(any_store):
    publish(any_store, "runs/r1", {"a": b"1"}, {})
    publish(any_store, "runs/r2", {"a": b"2"}, {})
    any_store.put_bytes("runs/r3-unfinished/a", b"3")
    assert list_published(any_store, "runs") == ["runs/r1", "runs/r2"]
    with pytest.raises(StoreError, match="not published"):
        verify_published(any_store, "runs/r3-unfinished")


def test_corruption_and_missing_file_detected(any_store):
    publish(any_store, "p", {"a.txt": b"alpha", "b.txt": b"beta"}, {})
    any_store.put_bytes("p/b.txt", b"BETA")
    with pytest.raises(StoreError, match="'b.txt' fails its checksum"):
        verify_published(any_store, "p")
    any_store.delete("p/a.txt")
    with pytest.raises(StoreError, match="'a.txt' is listed in the manifest but missing"):
        read_published(any_store, "p")


def test_republish_idempotent_overwrite_refused(any_store):
    first = publish(any_store, "p", {"a.txt": b"alpha"}, {"v": 1})
    before = any_store.get_bytes("p/manifest.json")
    assert publish(any_store, "p", {"a.txt": b"alpha"}, {"v": 1}) == first
    with pytest.raises(StoreError, match="immutable"):
        publish(any_store, "p", {"a.txt": b"other"}, {"v": 2})
    assert any_store.get_bytes("p/manifest.json") == before
    assert json.loads(before)["v"] == 1
