"""Dataset snapshots against a real S3 server (SeaweedFS): publish manifest-last, immutability, listing,
verification, a half-written snapshot that does not exist, and loading a downloaded copy with datasets (sft by
file, preferences by the dataset card's config name)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.sft_seed import PROBLEMS, seed_and_rate
from warriorflow.errors import StoreError
from warriorflow.store import snapshots
from warriorflow.store.objects import S3ObjectStore, join_key
from warriorflow.store.rating_store import RatingStore

pytestmark = pytest.mark.integration


@pytest.fixture
def s3(seaweedfs) -> S3ObjectStore:
    return S3ObjectStore("wf-snapshots", f"t-{uuid.uuid4().hex[:10]}", endpoint_url=seaweedfs.endpoint_url,
                         region=seaweedfs.region, access_key_id=seaweedfs.access_key,
                         secret_access_key=seaweedfs.secret_key, create_bucket=True)


def test_snapshot_on_s3(config, s3, tmp_path):
    from datasets import load_dataset

    with RatingStore(config.duckdb_path) as store:
        seed_and_rate(config, store)
        info = snapshots.create_snapshot(config, store, s3, now=datetime(2026, 11, 22, 6, tzinfo=UTC))
        again = snapshots.create_snapshot(config, store, s3, now=datetime(2026, 11, 23, 6, tzinfo=UTC))
        row = store.query("SELECT uri, n_examples FROM snapshots")
    assert info.created and not again.created and again.snapshot_id == info.snapshot_id
    assert info.uri.startswith("s3://wf-snapshots/") and row == [{"uri": info.uri, "n_examples": len(PROBLEMS)}]
    assert [s["snapshot_id"] for s in snapshots.list_snapshots(s3)] == [info.snapshot_id]
    manifest = snapshots.verify_snapshot(s3, info.snapshot_id)
    assert manifest["counts"]["examples"] == len(PROBLEMS)

    local = snapshots.download_snapshot(s3, info.snapshot_id, tmp_path / "copy")
    ds = load_dataset("parquet", data_files=str(local / snapshots.PARQUET), split="train",
                      cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == len(PROBLEMS) and ds[0]["messages"][1]["role"] == "assistant"
    pairs = load_dataset(str(local), "preferences", split="train", cache_dir=str(tmp_path / "hf"))
    assert pairs.num_rows == info.n_preferences == len(PROBLEMS) and set(pairs[0]) >= {"prompt", "chosen", "rejected"}

    # a half-written snapshot (data, no manifest) does not exist
    half = "2026-11-24T06-00-00Z-0badf00d"
    s3.put_bytes(join_key(snapshots.prefix(half), snapshots.JSONL), b"{}\n")
    with pytest.raises(snapshots.SnapshotNotFoundError, match="no such snapshot"):
        snapshots.verify_snapshot(s3, half)
    assert [s["snapshot_id"] for s in snapshots.list_snapshots(s3)] == [info.snapshot_id]

    # a damaged file is named
    key = join_key(snapshots.prefix(info.snapshot_id), snapshots.PARQUET)
    s3.put_bytes(key, s3.get_bytes(key)[:-1])
    with pytest.raises(StoreError, match="train.parquet.*fails its checksum"):
        snapshots.verify_snapshot(s3, info.snapshot_id)
