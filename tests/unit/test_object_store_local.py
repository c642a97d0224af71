"""LocalObjectStore semantics, key safety, manifest-last publishing, and the pure S3 helpers."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from pathlib import Path

import pytest

from warriorflow.errors import StoreError
from warriorflow.store.objects import (
    LocalObjectStore,
    ObjectNotFoundError,
    ObjectStore,
    S3ObjectStore,
    list_published,
    object_store_from_uri,
    publish,
    read_published,
    verify_published,
)
from warriorflow.store.objects import base as obs_base
from warriorflow.store.objects import local as obs_local
from warriorflow.store.objects import s3 as obs_s3

SECRET = "super-secret-value-123"


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "root")


class RecordingStore:
    """Wraps a store and records every write, in order; can fail on a chosen key."""

    def __init__(self, inner, fail_on: str | None = None):
        self.inner, self.fail_on, self.writes = inner, fail_on, []

    def _record(self, key):
        if key == self.fail_on:
            raise StoreError(key, "injected failure")
        self.writes.append(key)

    def put_bytes(self, key, data):
        self._record(key)
        self.inner.put_bytes(key, data)

    def put_file(self, key, path):
        self._record(key)
        self.inner.put_file(key, path)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# --------------------------------------------------------------------------- basic semantics


def test_implements_protocol(store):
    assert isinstance(store, ObjectStore)


def test_bytes_round_trip(store):
    store.put_bytes("a/b/c.txt", b"hello")
    assert store.get_bytes("a/b/c.txt") == b"hello"
    assert store.exists("a/b/c.txt")
    assert not store.exists("a/b")  # a directory is not an object
    assert (store.root / "a" / "b" / "c.txt").read_bytes() == b"hello"


def test_file_round_trip(store, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(100_000))
    store.put_file("x/data.bin", src)
    dest = tmp_path / "out" / "nested" / "copy.bin"
    store.get_file("x/data.bin", dest)
    assert dest.read_bytes() == src.read_bytes()


def test_overwrite_replaces(store):
    store.put_bytes("k", b"one")
    store.put_bytes("k", b"two")
    assert store.get_bytes("k") == b"two"


def test_missing_key_is_keyerror_like(store):
    with pytest.raises(ObjectNotFoundError) as info:
        store.get_bytes("nope/x.json")
    assert isinstance(info.value, KeyError) and isinstance(info.value, StoreError)
    assert "nope/x.json" in str(info.value) and "fix:" in str(info.value)
    with pytest.raises(KeyError):
        store.get_file("nope/x.json", store.root.parent / "out")


def test_put_file_missing_source(store, tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        store.put_file("k", tmp_path / "missing.bin")


def test_list_sorted_relative_and_prefix(store):
    for key in ["b/2", "a/1", "a-c", "a/sub/3", "c"]:
        store.put_bytes(key, b"x")
    assert list(store.list()) == ["a-c", "a/1", "a/sub/3", "b/2", "c"]  # code-point order, like S3
    assert list(store.list("a/")) == ["a/1", "a/sub/3"]
    assert list(store.list("a")) == ["a-c", "a/1", "a/sub/3"]  # string prefix, like S3
    assert list(store.list("a/s")) == ["a/sub/3"]
    assert list(store.list("zzz/")) == []


def test_list_on_missing_root_is_empty(tmp_path):
    assert list(LocalObjectStore(tmp_path / "never-created").list()) == []


def test_delete_is_idempotent_and_prunes_dirs(store):
    store.put_bytes("a/b/c", b"x")
    store.delete("a/b/c")
    store.delete("a/b/c")
    assert not store.exists("a/b/c")
    assert not (store.root / "a").exists()
    assert store.root.is_dir()


def test_uri(store):
    assert store.uri("a/b.json") == (store.root / "a" / "b.json").as_uri()
    assert store.uri().startswith("file:///")


def test_check_ok_and_failing(store, tmp_path):
    store.check()
    assert store.root.is_dir() and list(store.root.iterdir()) == []
    blocker = tmp_path / "a-file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreError, match="not writable") as info:
        LocalObjectStore(blocker / "sub").check()
    assert "fix:" in str(info.value)


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_keeps_old_content_on_failure(store, monkeypatch):
    store.put_bytes("k.json", b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(obs_local.os, "replace", broken_replace)
    with pytest.raises(StoreError, match="No space left"):
        store.put_bytes("k.json", b"new")
    monkeypatch.undo()
    assert store.get_bytes("k.json") == b"old"
    assert sorted(p.name for p in store.root.iterdir()) == ["k.json"]  # temp file cleaned up


def test_write_goes_through_temp_then_replace(store, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src).name, Path(dst).name, Path(src).read_bytes()))
        assert not Path(dst).exists()  # the final name appears only via the rename
        real_replace(src, dst)

    monkeypatch.setattr(obs_local.os, "replace", spy)
    store.put_bytes("d/k.bin", b"payload")
    ((tmp_name, final_name, content),) = seen
    assert final_name == "k.bin" and tmp_name != "k.bin" and content == b"payload"


def test_in_flight_temp_files_are_not_listed(store):
    store.put_bytes("d/real", b"x")
    (store.root / "d" / f"{obs_base.TMP_MARK}real.abc").write_bytes(b"partial")
    assert list(store.list()) == ["d/real"]


# --------------------------------------------------------------------------- key safety


BAD_KEYS = ["", "/etc/passwd", "../x", "a/../../x", "a/..", "./a", "a//b", "a/./b", "a\\..\\b", "a/b/", "nul\x00"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected(store, key):
    for op in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(StoreError):
            op()
    assert not any(store.root.parent.glob("x"))


def test_symlink_escape_rejected(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "link").symlink_to(outside)
    with pytest.raises(StoreError, match="outside the store root"):
        store.put_bytes("link/evil", b"x")
    assert not (outside / "evil").exists()


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//"])
def test_bad_list_prefix_rejected(store, prefix):
    with pytest.raises(StoreError):
        list(store.list(prefix))


# --------------------------------------------------------------------------- manifest-last publishing


def test_publish_writes_manifest_last(store, tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"a": 1}\n' * 1000)
    rec = RecordingStore(store)
    uri = publish(rec, "runs/r1", {"data/part-0.jsonl": b"x\n", "big.jsonl": big, "meta.txt": b"m"}, {"run_id": "r1"})
    assert rec.writes[-1] == "runs/r1/manifest.json"
    assert sorted(rec.writes[:-1]) == ["runs/r1/big.jsonl", "runs/r1/data/part-0.jsonl", "runs/r1/meta.txt"]
    assert uri == store.uri("runs/r1/manifest.json")
    manifest = json.loads(store.get_bytes("runs/r1/manifest.json"))
    assert manifest["run_id"] == "r1" and manifest["published_at"]
    assert manifest["files"]["big.jsonl"]["size"] == big.stat().st_size
    assert manifest["files"]["meta.txt"] == {"sha256": hashlib.sha256(b"m").hexdigest(), "size": 1}


def test_failed_publish_leaves_no_manifest(store):
    rec = RecordingStore(store, fail_on="runs/bad/b.txt")
    with pytest.raises(StoreError, match="injected"):
        publish(rec, "runs/bad", {"a.txt": b"a", "b.txt": b"b"}, {})
    assert not store.exists("runs/bad/manifest.json")
    assert list_published(store, "runs") == []


def test_list_published_ignores_prefixes_without_manifest(store):
    publish(store, "runs/r1", {"a": b"1"}, {})
    publish(store, "runs/r2/nested", {"a": b"2"}, {})
    store.put_bytes("runs/half-done/a", b"3")  # no manifest: readers must ignore it
    store.put_bytes("runs-other/r9/manifest.json", b"{}")  # outside the root prefix
    assert list_published(store, "runs") == ["runs/r1", "runs/r2/nested"]
    assert list_published(store, "runs/") == ["runs/r1", "runs/r2/nested"]
    assert "runs-other/r9" in list_published(store, "")
    with pytest.raises(StoreError, match="not published"):
        read_published(store, "runs/half-done")


def test_read_and_verify(store):
    publish(store, "p", {"a.txt": b"alpha", "b/c.txt": b"gamma"}, {"kind": "sft"})
    manifest, data = read_published(store, "p")
    assert manifest["kind"] == "sft" and data == {"a.txt": b"alpha", "b/c.txt": b"gamma"}
    assert verify_published(store, "p")["kind"] == "sft"


def test_corrupted_file_detected(store):
    publish(store, "p", {"a.txt": b"alpha", "b.txt": b"beta"}, {})
    store.put_bytes("p/b.txt", b"betA")
    with pytest.raises(StoreError, match="'b.txt' fails its checksum"):
        verify_published(store, "p")
    with pytest.raises(StoreError, match="b.txt"):
        read_published(store, "p")
    _, data = read_published(store, "p", verify=False)
    assert data["b.txt"] == b"betA"


def test_missing_file_detected(store):
    publish(store, "p", {"a.txt": b"alpha", "b.txt": b"beta"}, {})
    store.delete("p/a.txt")
    with pytest.raises(StoreError, match="'a.txt' is listed in the manifest but missing"):
        verify_published(store, "p")


def test_idempotent_republish_and_refused_overwrite(store, tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"alpha")
    first = publish(store, "p", {"a.txt": src}, {"v": 1})
    before = store.get_bytes("p/manifest.json")
    rec = RecordingStore(store)
    assert publish(rec, "p", {"a.txt": b"alpha"}, {"v": 1}) == first  # same file list: no-op
    assert rec.writes == [] and store.get_bytes("p/manifest.json") == before
    with pytest.raises(StoreError, match="immutable") as info:
        publish(store, "p", {"a.txt": b"ALPHA"}, {"v": 2})
    assert "new prefix" in str(info.value)
    with pytest.raises(StoreError, match="immutable"):
        publish(store, "p", {"a.txt": b"alpha", "extra.txt": b"x"}, {"v": 1})
    assert store.get_bytes("p/manifest.json") == before and store.get_bytes("p/a.txt") == b"alpha"


@pytest.mark.parametrize(
    "files, manifest, match",
    [
        ({"manifest.json": b"x"}, {}, "may not be called manifest.json"),
        ({"a": b"x"}, {"files": {}}, "reserved"),
        ({"a": b"x"}, {"published_at": "x"}, "reserved"),
        ({}, {}, "nothing to publish"),
        ({"../a": b"x"}, {}, "escape"),
    ],
)
def test_publish_rejects_bad_input(store, files, manifest, match):
    with pytest.raises(StoreError, match=match):
        publish(store, "p", files, manifest)
    assert list(store.list()) == []


# --------------------------------------------------------------------------- choosing a store


def test_from_uri_local(tmp_path):
    assert object_store_from_uri(str(tmp_path)).root == tmp_path.resolve()
    assert object_store_from_uri(tmp_path.as_uri()).root == tmp_path.resolve()
    with pytest.raises(StoreError, match="remote host"):
        object_store_from_uri("file://elsewhere/x")
    with pytest.raises(StoreError, match="unsupported scheme"):
        object_store_from_uri("gs://bucket/x")


def test_from_uri_s3_uses_env(monkeypatch):
    monkeypatch.setenv("WARRIORFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WARRIORFLOW_S3_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("WARRIORFLOW_S3_SECRET_ACCESS_KEY", SECRET)
    store = object_store_from_uri("s3://bkt/some/prefix/", region="eu-west-1")
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix, store.endpoint_url, store.region) == (
        "bkt",
        "some/prefix",
        "http://127.0.0.1:9",
        "eu-west-1",
    )
    assert store.uri("a/b") == "s3://bkt/some/prefix/a/b"
    assert SECRET not in repr(store) and SECRET not in str(store)
    assert object_store_from_uri("s3://bkt", endpoint_url="http://other").endpoint_url == "http://other"


def test_s3_rejects_half_credentials_and_bad_bucket():
    with pytest.raises(StoreError, match="both"):
        S3ObjectStore("bkt", access_key_id="AKID")
    with pytest.raises(StoreError, match="bucket"):
        object_store_from_uri("s3:///prefix")


def _fake_airflow(monkeypatch, conn, *, sdk=True):
    class BaseHook:
        @staticmethod
        def get_connection(conn_id):
            if conn is None:
                raise LookupError(f"The conn_id `{conn_id}` isn't defined")
            return conn

    monkeypatch.setitem(sys.modules, "airflow", types.ModuleType("airflow"))
    if sdk:
        monkeypatch.setitem(sys.modules, "airflow.sdk", types.SimpleNamespace(BaseHook=BaseHook))
    else:
        monkeypatch.setitem(sys.modules, "airflow.sdk", None)  # import fails -> Airflow 2 fallback
        monkeypatch.setitem(sys.modules, "airflow.hooks", types.ModuleType("airflow.hooks"))
        monkeypatch.setitem(sys.modules, "airflow.hooks.base", types.SimpleNamespace(BaseHook=BaseHook))


@pytest.mark.parametrize("sdk", [True, False])
def test_from_airflow_connection(monkeypatch, sdk):
    conn = types.SimpleNamespace(
        conn_type="aws",
        login="AKID",
        password=SECRET,
        extra_dejson={"endpoint_url": "http://seaweed:8333", "region_name": "eu-central-1"},
    )
    _fake_airflow(monkeypatch, conn, sdk=sdk)
    store = S3ObjectStore.from_airflow_connection("wf_s3", "bkt", "datasets")
    assert (store.bucket, store.prefix, store.endpoint_url, store.region) == (
        "bkt",
        "datasets",
        "http://seaweed:8333",
        "eu-central-1",
    )
    assert store._access_key_id == "AKID" and store._secret_access_key == SECRET
    assert "wf_s3" in repr(store) and SECRET not in repr(store)


def test_from_airflow_connection_errors(monkeypatch):
    _fake_airflow(monkeypatch, None)
    with pytest.raises(StoreError, match="'wf_s3'") as info:
        S3ObjectStore.from_airflow_connection("wf_s3", "bkt")
    assert "airflow connections add wf_s3" in str(info.value)
    _fake_airflow(monkeypatch, types.SimpleNamespace(conn_type="postgres", login="u", password=SECRET, extra_dejson={}))
    with pytest.raises(StoreError, match="expected 'aws'") as info:
        S3ObjectStore.from_airflow_connection("wf_s3", "bkt")
    assert SECRET not in str(info.value)


def test_from_airflow_connection_without_airflow(monkeypatch):
    for name in [m for m in sys.modules if m == "airflow" or m.startswith("airflow.")] + ["airflow"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if Airflow were not installed
    with pytest.raises(StoreError, match="Airflow is not installed"):
        S3ObjectStore.from_airflow_connection("wf_s3", "bkt")


# --------------------------------------------------------------------------- S3 error mapping (pure)


def _client_error(code, op="GetObject"):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "msg"}}, op)


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"])
def test_map_credentials_rejected(code):
    err = obs_s3.map_s3_error(
        _client_error(code),
        endpoint="http://h:8333",
        bucket="bkt",
        uri="s3://bkt/k",
        credentials_source="x",
        secrets=(SECRET,),
    )
    assert "credentials rejected by http://h:8333 for bucket bkt" in str(err)
    assert "WARRIORFLOW_S3_" in str(err) and SECRET not in str(err)


def test_map_not_found_and_unreachable():
    from botocore.exceptions import EndpointConnectionError

    err = obs_s3.map_s3_error(_client_error("NoSuchKey"), endpoint="e", bucket="bkt", uri="s3://bkt/k")
    assert isinstance(err, ObjectNotFoundError) and isinstance(err, KeyError)
    err = obs_s3.map_s3_error(_client_error("404", "HeadBucket"), endpoint="e", bucket="bkt", uri="s3://bkt")
    assert isinstance(err, ObjectNotFoundError) and "bucket bkt does not exist" in str(err)
    err = obs_s3.map_s3_error(_client_error("NoSuchBucket"), endpoint="e", bucket="bkt", uri="s3://bkt/k")
    assert "bucket bkt does not exist" in str(err)
    err = obs_s3.map_s3_error(
        EndpointConnectionError(endpoint_url="http://h:1"), endpoint="http://h:1", bucket="b", uri="s3://b"
    )
    assert "S3 endpoint http://h:1 is not reachable; is the server running?" in str(err) and "endpoint_url" in str(err)


def test_map_missing_credentials_and_read_timeout():
    from botocore.exceptions import NoCredentialsError, ReadTimeoutError

    err = obs_s3.map_s3_error(NoCredentialsError(), endpoint="e", bucket="bkt", uri="s3://bkt/k")
    assert "no S3 credentials found" in str(err) and "WARRIORFLOW_S3_ACCESS_KEY_ID" in str(err)
    err = obs_s3.map_s3_error(
        ReadTimeoutError(endpoint_url="http://h:1"), endpoint="http://h:1", bucket="b", uri="s3://b/k"
    )
    assert "did not answer in time" in str(err) and "s3://b/k" in str(err)


def test_map_unwraps_upload_failed_error():
    from boto3.exceptions import S3UploadFailedError

    wrapped = S3UploadFailedError("Failed to upload f to b/k: An error occurred (SignatureDoesNotMatch)")
    wrapped.__context__ = _client_error("SignatureDoesNotMatch", "UploadPart")  # as boto3 raises it
    err = obs_s3.map_s3_error(wrapped, endpoint="e", bucket="b", uri="s3://b/k")
    assert "credentials rejected by e for bucket b" in str(err)


def test_map_other_error_redacts_secrets():
    err = obs_s3.map_s3_error(
        _client_error(f"Weird{SECRET}"), endpoint="e", bucket="b", uri="s3://b/k", secrets=(SECRET, None)
    )
    assert SECRET not in str(err) and "***" in str(err)
