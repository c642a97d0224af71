"""Versioned, immutable dataset snapshots of the gold SFT examples (DESIGN.md section 5).

A snapshot lives in the object store under ``snapshots/<snapshot_id>/``::

    data/train.parquet      the examples: a `messages` conversation (user instruction, assistant gold
    data/train.jsonl        response) plus provenance columns; the same rows in both formats
    lineage/battles.jsonl   every completed battle behind the examples, with its votes
    manifest.json           written last: counts, sha256 of each file, config hash, lineage, rating state

Both data files load with ``datasets.load_dataset("parquet" | "json", data_files=...)`` and train with
TRL as conversations. The id is sortable and content-derived: ``<UTC creation time>-<content hash[:8]>``.
The content hash covers the examples and their lineage (never times), so creating a snapshot of the
same content returns the existing one, and a published snapshot is never overwritten. A prefix
without ``manifest.json`` is no snapshot at all; readers re-hash every file against the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warriorflow import __version__
from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.store.hashing import sha256_file
from warriorflow.store.jsonl import encode_jsonl
from warriorflow.store.objects import (
    MANIFEST_NAME,
    ObjectStore,
    join_key,
    list_published,
    publish,
    read_manifest,
    verify_published,
)
from warriorflow.store.rating_store import RatingStore

ROOT = "snapshots"
PARQUET = "data/train.parquet"
JSONL = "data/train.jsonl"
BATTLES = "lineage/battles.jsonl"
KIND = "warriorflow.sft-snapshot"
FORMAT_VERSION = 1
ID_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{8}$")
COLUMNS = ("messages", "instruction_id", "response_id", "response_expert", "miner", "final_score",
           "rating_version", "difficulty", "battle_ids")


class SnapshotNotFoundError(StoreError, KeyError):
    """No published snapshot has this id (no manifest: an unfinished snapshot does not exist)."""

    __str__ = Exception.__str__


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: str
    uri: str                    # the snapshot's prefix
    n_examples: int
    n_battles: int
    content_sha256: str
    config_hash: str
    rating_version: str | None
    created_at: str             # ISO 8601 UTC, when it was first published
    created: bool               # False: identical content existed already and was returned

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------ pure parts


def example_records(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the ``sft`` view -> snapshot examples (``messages`` + provenance), sorted by instruction id."""
    out = []
    for r in rows:
        out.append({
            "messages": [{"role": "user", "content": r["instruction"]},
                         {"role": "assistant", "content": r["response"]}],
            "instruction_id": r["instruction_id"],
            "response_id": r["response_id"],
            "response_expert": r["response_expert"],
            "miner": r["miner"],
            "final_score": float(r["final_score"]),
            "rating_version": r["rating_version"],
            "difficulty": None if r.get("difficulty") is None else float(r["difficulty"]),
            "battle_ids": list(r.get("battle_ids") or []),
        })
    return sorted(out, key=lambda e: e["instruction_id"])


def battle_lineage(battles: Iterable[dict[str, Any]], votes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per battle with its votes, in the recorded battle order."""
    per: dict[str, list[dict]] = {}
    for v in votes:
        per.setdefault(v["battle_id"], []).append(
            {"judge": v["judge"], "shown_order": v["shown_order"], "verdict": v["verdict"]})
    out = []
    for b in sorted(battles, key=lambda b: (b["battle_order"] is None, b["battle_order"] or 0, b["battle_id"])):
        out.append({"battle_id": b["battle_id"], "instruction_id": b["instruction_id"], "attacker": b["attacker"],
                    "defender": b["defender"], "battle_order": b["battle_order"],
                    "votes": sorted(per.get(b["battle_id"], []),
                                    key=lambda v: (v["judge"], v["shown_order"]))})
    return out


def rating_state(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """rating_history rows -> {rating_version: {method: {expert: {rating, lo, hi, n_battles}}}}."""
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["rating_version"], r["method"], r["expert"])):
        state.setdefault(r["rating_version"], {}).setdefault(r["method"], {})[r["expert"]] = {
            "rating": r["rating"], "lo": r["lo"], "hi": r["hi"], "n_battles": r["n_battles"]}
    return state


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def content_sha256(examples: list[dict], battles: list[dict], ratings: dict) -> str:
    """The snapshot's identity: its examples and lineage, never the time it was made."""
    return hashlib.sha256(_canonical({"format": FORMAT_VERSION, "examples": examples, "battles": battles,
                                      "ratings": ratings})).hexdigest()


def snapshot_id(created_at: datetime, content: str) -> str:
    return f"{created_at.astimezone(UTC):%Y-%m-%dT%H-%M-%SZ}-{content[:8]}"


def jsonl_bytes(records: Iterable[dict]) -> bytes:
    return encode_jsonl(records, ascii_only=False)


def parquet_bytes(examples: list[dict]) -> bytes:
    """The examples as Parquet with an explicit schema (empty lists and all-null columns keep their types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema([
        ("messages", pa.list_(message)), ("instruction_id", pa.string()), ("response_id", pa.string()),
        ("response_expert", pa.string()), ("miner", pa.string()), ("final_score", pa.float64()),
        ("rating_version", pa.string()), ("difficulty", pa.float64()), ("battle_ids", pa.list_(pa.string())),
    ])
    table = pa.Table.from_pylist(examples, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def check_id(snapshot_id_: str) -> str:
    if not isinstance(snapshot_id_, str) or not ID_PATTERN.match(snapshot_id_):
        raise SnapshotNotFoundError(
            f"snapshot {snapshot_id_!r}", "no such snapshot (ids look like 2026-11-22T06-00-00Z-1a2b3c4d)",
            "list the snapshots with `warriorflow snapshot list`")
    return snapshot_id_


def prefix(snapshot_id_: str) -> str:
    return join_key(ROOT, check_id(snapshot_id_))


# ------------------------------------------------------------------------------------------ create


def _gather(store: RatingStore) -> tuple[list[dict], list[dict], dict, str | None, Any]:
    rows = store.query("SELECT * FROM sft ORDER BY instruction_id")
    examples = example_records(rows)
    ids_ = {e["instruction_id"] for e in examples}
    battles = store.query(
        "SELECT battle_id, instruction_id, attacker, defender, battle_order FROM battles "
        "WHERE status = 'done' AND instruction_id IN (SELECT instruction_id FROM gold_selections)")
    votes = [dict(v) for r in rows for v in (r.get("votes") or [])]
    lineage = battle_lineage([b for b in battles if b["instruction_id"] in ids_], votes)
    versions = sorted({e["rating_version"] for e in examples})
    ratings = rating_state(store.query(
        "SELECT rating_version, method, expert, rating, lo, hi, n_battles FROM rating_history "
        "WHERE rating_version IN (SELECT DISTINCT rating_version FROM gold_selections)"))
    latest_gold = max((r["selected_at"] for r in rows if r.get("selected_at") is not None), default=None)
    return examples, lineage, ratings, ",".join(versions) or None, latest_gold


def find_by_content(objects: ObjectStore, content: str) -> dict | None:
    """The manifest of a published snapshot with exactly this content, if any."""
    for p in list_published(objects, ROOT):
        sid = p.rsplit("/", 1)[-1]
        if ID_PATTERN.match(sid) and sid.endswith("-" + content[:8]):
            manifest = read_manifest(objects, p)
            if manifest.get("content_sha256") == content:
                return manifest
    return None


def _info(objects: ObjectStore, manifest: dict, created: bool) -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=manifest["snapshot_id"], uri=objects.uri(prefix(manifest["snapshot_id"])),
        n_examples=manifest["counts"]["examples"], n_battles=manifest["counts"]["battles"],
        content_sha256=manifest["content_sha256"], config_hash=manifest["config_hash"],
        rating_version=manifest["lineage"]["rating_version"], created_at=manifest["created_at"], created=created)


def _record(store: RatingStore, objects: ObjectStore, info: SnapshotInfo) -> None:
    """The snapshots row (insert-only: a published snapshot never changes, nor does its row)."""
    raw = objects.get_bytes(join_key(prefix(info.snapshot_id), MANIFEST_NAME))
    created = datetime.fromisoformat(info.created_at.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
    store.upsert("snapshots", [{
        "snapshot_id": info.snapshot_id, "uri": info.uri, "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "n_examples": info.n_examples, "config_hash": info.config_hash, "rating_version": info.rating_version,
        "created_at": created, "content_sha256": info.content_sha256, "n_battles": info.n_battles,
        "warriorflow_version": json.loads(raw).get("warriorflow_version")}], key=["snapshot_id"])


def create_snapshot(cfg: Config, store: RatingStore, objects: ObjectStore, *,
                    now: datetime | None = None) -> SnapshotInfo:
    """Snapshot every gold example: data files first, manifest last, then the ``snapshots`` row.

    Identical content returns the existing snapshot (``created=False``), recording its row if missing."""
    examples, lineage, ratings, rating_version, latest_gold = _gather(store)
    if not examples:
        raise StoreError(f"rating store {store.path}", "has no gold examples to snapshot",
                         "run the battle stage (`warriorflow run-arena` / the battle DAG) first")
    content = content_sha256(examples, lineage, ratings)
    existing = find_by_content(objects, content)
    if existing is not None:
        info = _info(objects, existing, created=False)
        _record(store, objects, info)
        return info

    # the id has seconds; created_at keeps microseconds: the retrain gate compares it with gold selected_at
    created_at = (now or datetime.now(UTC)).astimezone(UTC)
    sid = snapshot_id(created_at, content)
    parquet, jsonl, battles = parquet_bytes(examples), jsonl_bytes(examples), jsonl_bytes(lineage)
    n_votes = sum(len(b["votes"]) for b in lineage)
    manifest = {
        "kind": KIND, "format_version": FORMAT_VERSION, "snapshot_id": sid,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "warriorflow_version": __version__, "config_hash": cfg.config_hash(), "content_sha256": content,
        "counts": {"examples": len(examples), "battles": len(lineage), "votes": n_votes,
                   "examples_by_expert": dict(sorted(Counter(e["response_expert"] for e in examples).items()))},
        "format": {"parquet": PARQUET, "jsonl": JSONL, "columns": list(COLUMNS),
                   "conversation": "messages: [{role: user, content: instruction}, "
                                   "{role: assistant, content: gold response}]"},
        "lineage": {
            "battles_file": BATTLES,
            "battle_ids_sha256": hashlib.sha256("\n".join(b["battle_id"] for b in lineage).encode()).hexdigest(),
            "rating_version": rating_version,
            "ratings": ratings,
            "gold_selected_through": latest_gold.isoformat() if latest_gold is not None else None,
        },
    }
    publish(objects, prefix(sid), {PARQUET: parquet, JSONL: jsonl, BATTLES: battles}, manifest)
    info = _info(objects, read_manifest(objects, prefix(sid)), created=True)
    _record(store, objects, info)
    return info


# ------------------------------------------------------------------------------------------ read


def read_snapshot_manifest(objects: ObjectStore, snapshot_id_: str) -> dict[str, Any]:
    """The snapshot's manifest; SnapshotNotFoundError when it has none (unpublished or never made)."""
    p = prefix(snapshot_id_)
    if not objects.exists(join_key(p, MANIFEST_NAME)):
        raise SnapshotNotFoundError(
            f"snapshot {snapshot_id_}", f"no such snapshot (no {MANIFEST_NAME} at {objects.uri(p)})",
            "list the snapshots with `warriorflow snapshot list`; an unfinished snapshot has no manifest")
    manifest = read_manifest(objects, p)
    if manifest.get("kind") != KIND:
        raise StoreError(objects.uri(p), f"manifest kind is {manifest.get('kind')!r}, not {KIND!r}",
                         "this prefix holds something else; use another id")
    check_snapshot_manifest(manifest, objects.uri(join_key(p, MANIFEST_NAME)), snapshot_id_)
    return manifest


def check_snapshot_manifest(manifest: dict[str, Any], where: str, snapshot_id_: str | None = None) -> None:
    """The fields every reader uses must be there with their types (a forged or truncated manifest is a
    StoreError naming the field, not a KeyError later)."""
    problems = []
    counts, lineage = manifest.get("counts"), manifest.get("lineage")
    if not isinstance(counts, dict) or any(isinstance(counts.get(k), bool) or not isinstance(counts.get(k), int)
                                           for k in ("examples", "battles")):
        problems.append("counts.examples and counts.battles must be integers")
    if not isinstance(lineage, dict) or not isinstance(lineage.get("rating_version"), str | None):
        problems.append("lineage.rating_version must be a string or null")
    for k in ("snapshot_id", "content_sha256", "created_at"):
        if not isinstance(manifest.get(k), str):
            problems.append(f"{k} must be a string")
    if snapshot_id_ is not None and manifest.get("snapshot_id") != snapshot_id_:
        problems.append(f"snapshot_id {manifest.get('snapshot_id')!r} is not {snapshot_id_!r}")
    if problems:
        raise StoreError(where, "manifest is not valid: " + "; ".join(problems),
                         "the snapshot was tampered with or damaged; create a new one (`warriorflow snapshot create`)")


def list_snapshots(objects: ObjectStore) -> list[dict[str, Any]]:
    """Summaries of the published snapshots, oldest first (ids sort by creation time)."""
    out = []
    for p in list_published(objects, ROOT):
        sid = p.rsplit("/", 1)[-1]
        if not ID_PATTERN.match(sid) or p != join_key(ROOT, sid):
            continue
        m = read_manifest(objects, p)
        check_snapshot_manifest(m, objects.uri(join_key(p, MANIFEST_NAME)), sid)
        out.append({"snapshot_id": sid, "created_at": m.get("created_at"), "examples": m["counts"]["examples"],
                    "battles": m["counts"]["battles"], "rating_version": m["lineage"]["rating_version"],
                    "uri": objects.uri(p)})
    return sorted(out, key=lambda s: s["snapshot_id"])


def latest_snapshot_id(objects: ObjectStore) -> str:
    snaps = list_snapshots(objects)
    if not snaps:
        raise SnapshotNotFoundError(f"snapshots in {objects.uri(ROOT)}", "there are none yet",
                                    "create one with `warriorflow snapshot create`")
    return snaps[-1]["snapshot_id"]


def verify_snapshot(objects: ObjectStore, snapshot_id_: str) -> dict[str, Any]:
    """Re-hash every file of the snapshot against its manifest; return the manifest or raise StoreError."""
    read_snapshot_manifest(objects, snapshot_id_)
    return verify_published(objects, prefix(snapshot_id_))


def download_snapshot(objects: ObjectStore, snapshot_id_: str, dest: str | Path) -> Path:
    """Copy a snapshot to ``dest`` (manifest included), checking every file's sha256; return ``dest``.

    Files already in ``dest`` with the right hash are kept, so downloading again is cheap."""
    manifest = read_snapshot_manifest(objects, snapshot_id_)  # file names checked: relative, no '..'
    dest = Path(dest).expanduser().resolve()
    p = prefix(snapshot_id_)
    for name, entry in sorted(manifest["files"].items()):
        target = dest.joinpath(*name.split("/"))
        if not target.resolve().is_relative_to(dest):  # e.g. through a symlink already in dest
            raise StoreError(f"snapshot {snapshot_id_} file {name!r}", f"would be written outside {dest}",
                             "download into a new, empty folder")
        if target.is_file() and target.stat().st_size == entry["size"] and sha256_file(target) == entry["sha256"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        objects.get_file(join_key(p, name), target)
        if sha256_file(target) != entry["sha256"]:
            target.unlink()
            raise StoreError(objects.uri(join_key(p, name)), f"file {name!r} fails its checksum",
                             "the snapshot is damaged; create a new one (`warriorflow snapshot create`)")
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return dest
