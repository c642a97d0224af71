"""Versioned, immutable dataset snapshots (DESIGN.md section 5): every instruction with all its responses
and their scores, as three datasets for different post-training methods (WarriorCoder section 3.4).

A snapshot lives in the object store under ``snapshots/<snapshot_id>/``::

    data/train.parquet        sft: each instruction's gold response as a `messages` conversation (user
    data/train.jsonl               instruction, assistant gold response) plus provenance columns
    data/preferences.parquet  preferences: one chosen/rejected pair per completed battle, chosen = the higher
    data/preferences.jsonl         final score, in TRL's conversational DPO format (prompt, chosen, rejected)
    data/responses.parquet    responses: every scored response with its final score e, Elo expectation,
    data/responses.jsonl           local score, gold flag and the judges' votes of its battles
    lineage/battles.jsonl     every completed battle behind the examples, with its votes
    README.md                 dataset card: its YAML `configs` make ``datasets.load_dataset(<dir>, "preferences")``
    manifest.json             written last: counts, the datasets (files, rows, columns), sha256 of each file,
                              config hash, lineage, rating state

The sft files keep the names of format 1 (gold SFT pairs only), so older readers still find them. Each
Parquet file has an explicit schema and loads with ``datasets.load_dataset("parquet", data_files=...)``;
the JSONL files are the same rows. Scores come from the ``response_scores`` the gold step stores, for the
gold's rating version: the numbers gold was selected with. Battles whose two responses have equal final
scores give no preference pair (``counts.preferences_skipped_ties``).

The id is sortable and content-derived: ``<UTC creation time>-<content hash[:8]>``. The content hash covers
the three datasets and the lineage (never times), so creating a snapshot of the same content returns the
existing one, and a published snapshot is never overwritten. A prefix without ``manifest.json`` is no
snapshot at all; readers re-hash every file against the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warriorflow import __version__
from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.method.rating import GOLD_TIE_EPS
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
from warriorflow.store.rating_store import RatingStore, load_query
from warriorflow.store.vote_log import run_script

ROOT = "snapshots"
PARQUET = "data/train.parquet"   # the sft dataset: format 1's names, so older readers keep working
JSONL = "data/train.jsonl"
PREFERENCES_PARQUET = "data/preferences.parquet"
PREFERENCES_JSONL = "data/preferences.jsonl"
RESPONSES_PARQUET = "data/responses.parquet"
RESPONSES_JSONL = "data/responses.jsonl"
BATTLES = "lineage/battles.jsonl"
CARD = "README.md"
KIND = "warriorflow.sft-snapshot"
FORMAT_VERSION = 2
ID_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{8}$")
COLUMNS = ("messages", "instruction_id", "response_id", "response_expert", "miner", "final_score",
           "rating_version", "difficulty", "battle_ids")
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected", "battle_id", "instruction_id", "chosen_expert",
                      "rejected_expert", "chosen_response_id", "rejected_response_id", "chosen_score",
                      "rejected_score", "margin", "rating_version")
RESPONSE_COLUMNS = ("messages", "instruction_id", "response_id", "expert", "is_gold", "final_score",
                    "elo_expectation", "local_score", "n_battles", "rating_version", "votes")
VOTE_FIELDS = ("battle_id", "opponent", "role", "judge", "shown_order", "verdict", "p_a", "p_b", "p_tie")
# name -> (parquet, jsonl, columns, what a row is)
DATASETS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "sft": (PARQUET, JSONL, COLUMNS,
            "each instruction with its gold response: messages [{role: user, content: instruction}, "
            "{role: assistant, content: gold response}]"),
    "preferences": (PREFERENCES_PARQUET, PREFERENCES_JSONL, PREFERENCE_COLUMNS,
                    "one pair per completed battle (TRL conversational DPO format): prompt [user], chosen and "
                    "rejected [assistant]; chosen has the higher final score, margin = its score minus the other's"),
    "responses": (RESPONSES_PARQUET, RESPONSES_JSONL, RESPONSE_COLUMNS,
                  "every scored response: messages [user, assistant], final score e = alpha * elo_expectation + "
                  "(1 - alpha) * local_score, is_gold, and the stored judge votes of its battles"),
}


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
    n_preferences: int = 0      # 0 in format 1 (gold SFT pairs only)
    n_responses: int = 0

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


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def response_records(rows: Iterable[dict[str, Any]], votes: Iterable[dict[str, Any]],
                     votes_of: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Rows of the scored responses and the stored votes of their battles -> the responses
    dataset, sorted by instruction id and expert. Each response carries the votes of the battles it fought on
    its instruction, with its ``role`` there (the verdict names a role) and its opponent. ``votes_of(row)``, if
    given, gives a row's votes already in that shape (the streamed snapshot reads them with the row)."""
    per: dict[tuple[str, str], list[dict]] = {}
    for v in votes:
        for role, me, other in (("attacker", v["attacker"], v["defender"]), ("defender", v["defender"], v["attacker"])):
            per.setdefault((v["instruction_id"], me), []).append({
                "battle_id": v["battle_id"], "opponent": other, "role": role, "judge": v["judge"],
                "shown_order": v["shown_order"], "verdict": v["verdict"],
                "p_a": _float(v.get("p_a")), "p_b": _float(v.get("p_b")), "p_tie": _float(v.get("p_tie"))})
    out = []
    for r in rows:
        out.append({
            "messages": [{"role": "user", "content": r["instruction"]},
                         {"role": "assistant", "content": r["response"]}],
            "instruction_id": r["instruction_id"], "response_id": r["response_id"], "expert": r["expert"],
            "is_gold": bool(r["is_gold"]), "final_score": float(r["final_score"]),
            "elo_expectation": float(r["elo_expectation"]), "local_score": float(r["local_score"]),
            "n_battles": int(r["n_battles"]), "rating_version": r["rating_version"],
            "votes": sorted(per.get((r["instruction_id"], r["expert"]), []) if votes_of is None else [
                {**v, "p_a": _float(v.get("p_a")), "p_b": _float(v.get("p_b")), "p_tie": _float(v.get("p_tie"))}
                for v in votes_of(r)], key=lambda v: (v["battle_id"], v["judge"], v["shown_order"])),
        })
    return sorted(out, key=lambda r: (r["instruction_id"], r["expert"]))


def preference_pair(battle: dict[str, Any], a: dict[str, Any] | None, d: dict[str, Any] | None) -> dict[str, Any] | str:
    """The chosen/rejected pair of one battle from its attacker's and defender's rows of the responses dataset, or
    why there is none: ``"unscored"`` (a response without a score), ``"ties"`` (equal scores within the gold
    step's tie epsilon)."""
    if a is None or d is None:
        return "unscored"
    if abs(a["final_score"] - d["final_score"]) <= GOLD_TIE_EPS:
        return "ties"
    chosen, rejected = (a, d) if a["final_score"] > d["final_score"] else (d, a)
    return {
        "prompt": chosen["messages"][:1], "chosen": chosen["messages"][1:], "rejected": rejected["messages"][1:],
        "battle_id": battle["battle_id"], "instruction_id": battle["instruction_id"],
        "chosen_expert": chosen["expert"], "rejected_expert": rejected["expert"],
        "chosen_response_id": chosen["response_id"], "rejected_response_id": rejected["response_id"],
        "chosen_score": chosen["final_score"], "rejected_score": rejected["final_score"],
        "margin": chosen["final_score"] - rejected["final_score"], "rating_version": chosen["rating_version"],
    }


def preference_records(battles: Iterable[dict[str, Any]],
                       responses: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One chosen/rejected pair per battle from the responses dataset's rows: chosen is the response with the
    higher final score. Returns (pairs sorted by instruction and battle id, {"ties": battles whose two scores
    are equal (within the gold step's tie epsilon), "unscored": battles with a response without a score})."""
    by = {(r["instruction_id"], r["expert"]): r for r in responses}
    pairs, skipped = [], {"ties": 0, "unscored": 0}
    for b in sorted(battles, key=lambda b: (b["instruction_id"], b["battle_id"])):
        pair = preference_pair(b, by.get((b["instruction_id"], b["attacker"])),
                               by.get((b["instruction_id"], b["defender"])))
        if isinstance(pair, str):
            skipped[pair] += 1
        else:
            pairs.append(pair)
    return pairs, skipped


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _canonical(obj: Any) -> bytes:
    return _CANONICAL.encode(obj).encode()


def content_sha256(examples: list[dict], battles: list[dict], ratings: dict, preferences: Sequence[dict] = (),
                   responses: Sequence[dict] = ()) -> str:
    """The snapshot's identity: its datasets and lineage, never the time it was made."""
    return hashlib.sha256(_canonical({"format": FORMAT_VERSION, "examples": examples, "battles": battles,
                                      "ratings": ratings, "preferences": list(preferences),
                                      "responses": list(responses)})).hexdigest()


def snapshot_id(created_at: datetime, content: str) -> str:
    return f"{created_at.astimezone(UTC):%Y-%m-%dT%H-%M-%SZ}-{content[:8]}"


def jsonl_bytes(records: Iterable[dict]) -> bytes:
    return encode_jsonl(records, ascii_only=False)


def schema(dataset: str = "sft"):
    """The explicit pyarrow schema of a dataset (empty lists and all-null columns keep their types)."""
    import pyarrow as pa

    text, number = pa.string(), pa.float64()
    conversation = pa.list_(pa.struct([("role", text), ("content", text)]))
    vote = pa.struct([(k, number if k.startswith("p_") else text) for k in VOTE_FIELDS])
    types = {"messages": conversation, "prompt": conversation, "chosen": conversation, "rejected": conversation,
             "final_score": number, "difficulty": number, "chosen_score": number, "rejected_score": number,
             "margin": number, "elo_expectation": number, "local_score": number, "n_battles": pa.int32(),
             "is_gold": pa.bool_(), "battle_ids": pa.list_(text), "votes": pa.list_(vote)}
    return pa.schema([(c, types.get(c, text)) for c in DATASETS[dataset][2]])


def parquet_bytes(records: list[dict], dataset: str = "sft") -> bytes:
    """A dataset's rows as Parquet with its explicit schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(records, schema=schema(dataset))
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def dataset_card(snapshot_id_: str, rows: dict[str, int], skipped_ties: int, rating_version: str | None) -> bytes:
    """README.md at the snapshot's root: a Hugging Face dataset card whose ``configs`` name the three datasets,
    so ``datasets.load_dataset(<downloaded snapshot>, "preferences")`` loads one (sft is the default)."""
    header = ["---", f"pretty_name: WarriorFlow snapshot {snapshot_id_}", "tags: [code, warriorcoder]", "configs:"]
    for name, (parquet, *_rest) in DATASETS.items():
        header += [f"- config_name: {name}"] + (["  default: true"] if name == "sft" else []) + [
            "  data_files:", "  - split: train", f"    path: {parquet}"]
    table = ["| config | rows | a row |", "|---|---|---|"] + [
        f"| `{name}` | {rows[name]} | {what} |" for name, (*_rest, what) in DATASETS.items()]
    body = [
        "---", "", f"# WarriorFlow dataset snapshot {snapshot_id_}", "",
        "Instructions mined from expert models, answered by several experts and judged pairwise by the others "
        "(the WarriorCoder arena). A response's final score is e = alpha * Elo expectation + (1 - alpha) * local "
        f"score (its share of the judges' votes), rating version `{rating_version}`.", "", *table, "",
        f"{skipped_ties} battles whose two responses have equal final scores give no preference pair.", "",
        "```python", "from datasets import load_dataset", "",
        'sft = load_dataset("path/to/this/folder", split="train")              # the default config',
        'pairs = load_dataset("path/to/this/folder", "preferences", split="train")  # TRL DPOTrainer input',
        'scored = load_dataset("parquet", data_files="path/to/this/folder/data/responses.parquet", split="train")',
        "```", "",
        "`manifest.json` holds every file's sha256, the counts, the columns and the lineage "
        "(`lineage/battles.jsonl`: every battle with its votes).", ""]
    return "\n".join(header + body).encode()


def dataset_file(manifest: dict[str, Any], dataset: str) -> str:
    """The Parquet file of ``dataset`` in a snapshot; a format-1 snapshot has only ``sft`` (``data/train.parquet``)."""
    datasets = manifest.get("datasets")
    if datasets is None:  # format 1: gold SFT pairs only
        datasets = {"sft": {"parquet": PARQUET}}
    if dataset not in datasets:
        raise StoreError(f"snapshot {manifest.get('snapshot_id')}",
                         f"has no {dataset!r} dataset (format {manifest.get('format_version', 1)}: "
                         f"{', '.join(sorted(datasets))})",
                         "create a new snapshot (`warriorflow snapshot create`): format 2 holds sft, preferences "
                         "and responses")
    return datasets[dataset]["parquet"]


def check_id(snapshot_id_: str) -> str:
    if not isinstance(snapshot_id_, str) or not ID_PATTERN.match(snapshot_id_):
        raise SnapshotNotFoundError(
            f"snapshot {snapshot_id_!r}", "no such snapshot (ids look like 2026-11-22T06-00-00Z-1a2b3c4d)",
            "list the snapshots with `warriorflow snapshot list`")
    return snapshot_id_


def prefix(snapshot_id_: str) -> str:
    return join_key(ROOT, check_id(snapshot_id_))


# ------------------------------------------------------------------------------------------ create

SNAPSHOT_BATCH = 10_000  # battles per lineage batch; instructions per range: half as many


class _Content:
    """The snapshot's content hash (:func:`content_sha256`), fed as the datasets stream by in its canonical order:
    ``{"battles": [...], "examples": [...], "format": 2, "preferences": [...], "ratings": ..., "responses": [...]}``
    with sorted keys and no spaces (the same bytes as hashing the whole document at once)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256(b'{"battles":[')
        self.first = True

    def add(self, records: Iterable[dict]) -> None:
        text = b",".join(_canonical(r) for r in records)
        if text:
            self.digest.update(text if self.first else b"," + text)
            self.first = False

    def next_list(self, between: bytes) -> None:
        """Close the list being fed and open the next one, ``between`` being what the document holds between."""
        self.digest.update(b"]" + between + b"[")
        self.first = True

    def finish(self) -> str:
        self.digest.update(b"]}")
        return self.digest.hexdigest()


class _Files:
    """A dataset's files in the temporary folder, written a record batch at a time: JSONL lines (the
    :func:`jsonl_bytes` bytes) and, for a dataset with a Parquet file, one row group per batch (its explicit
    :func:`schema`, zstd)."""

    def __init__(self, folder: Path, jsonl: str, parquet: str | None = None, dataset: str | None = None):
        import pyarrow.parquet as pq

        self.jsonl_path = folder / jsonl
        self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.jsonl_path.open("wb")
        self.parquet_path = folder / parquet if parquet else None
        self.dataset = dataset
        self.writer = pq.ParquetWriter(self.parquet_path, schema(dataset), compression="zstd") if parquet else None
        self.rows = 0

    def write(self, records: list[dict]) -> None:
        import pyarrow as pa

        self.jsonl.write(jsonl_bytes(records))
        if self.writer is not None and records:
            self.writer.write_table(pa.Table.from_pylist(records, schema=schema(self.dataset)))
        self.rows += len(records)

    def close(self) -> None:
        self.jsonl.close()
        if self.writer is not None:
            self.writer.close()


@dataclass
class _Written:
    content: str
    rows: dict[str, int]
    n_battles: int
    n_votes: int
    battle_ids_sha256: str
    by_expert: dict[str, int]
    latest_gold: Any
    ratings: dict
    rating_version: str | None
    skipped: dict[str, int]


def _ranges(store: RatingStore) -> list[tuple[str, str]]:
    """The gold instructions cut into consecutive id ranges of ``SNAPSHOT_BATCH // 2`` instructions (a range of a
    dataset is then a few record batches' worth of rows)."""
    ids = [r[0] for r in store.con.execute("SELECT instruction_id FROM _wf_snap_gold ORDER BY 1").fetchall()]
    step = max(1, SNAPSHOT_BATCH // 2)
    return [(ids[i], ids[min(i + step, len(ids)) - 1]) for i in range(0, len(ids), step)]


def _lineage_batches(store: RatingStore) -> Iterator[list[dict[str, Any]]]:
    """The lineage records (every battle of the gold instructions with its votes, in battle order), a batch at a
    time."""
    n = store.query("SELECT count(*) AS n FROM _wf_snap_battles")[0]["n"]
    for lo in range(0, n, SNAPSHOT_BATCH):
        hi = lo + SNAPSHOT_BATCH
        battles = store.query("SELECT bo, battle_id, instruction_id, attacker, defender, battle_order FROM "
                              "_wf_snap_battles WHERE bo >= ? AND bo < ? ORDER BY bo", [lo, hi])
        per: dict[int, list[dict]] = {}
        for v in store.query("SELECT bo, judge, shown_order, verdict FROM _wf_snap_battle_votes "
                             "WHERE bo >= ? AND bo < ? ORDER BY bo, judge, shown_order", [lo, hi]):
            per.setdefault(v.pop("bo"), []).append(v)
        yield [{"battle_id": b["battle_id"], "instruction_id": b["instruction_id"], "attacker": b["attacker"],
                "defender": b["defender"], "battle_order": b["battle_order"], "votes": per.get(b["bo"], [])}
               for b in battles]


def _response_batches(store: RatingStore, ranges: list[tuple[str, str]]) -> Iterator[list[dict[str, Any]]]:
    """The responses dataset (every scored response of the gold instructions with its battles' votes), a range of
    instructions at a time."""
    for lo, hi in ranges:
        rows = store.query("SELECT * FROM _wf_snap_scored WHERE instruction_id BETWEEN ? AND ? "
                           "ORDER BY instruction_id, expert", [lo, hi])
        per: dict[tuple[str, str], list[dict]] = {}
        for v in store.query("SELECT * FROM _wf_snap_sides WHERE instruction_id BETWEEN ? AND ? "
                             "ORDER BY instruction_id, expert, battle_id, judge, shown_order", [lo, hi]):
            per.setdefault((v.pop("instruction_id"), v.pop("expert")), []).append(v)
        yield response_records(rows, [], votes_of=lambda r, per=per: per.get((r["instruction_id"], r["expert"]), []))


def _pair(b: dict[str, Any]) -> dict[str, Any] | str:
    """One row of snapshot_pairs as its preference pair (or why none)."""
    sides = []
    for side, role in (("a", "attacker"), ("d", "defender")):
        if b[f"{side}_response_id"] is None:
            sides.append(None)
            continue
        sides.append({"instruction_id": b["instruction_id"], "expert": b[role], "response_id": b[f"{side}_response_id"],
                      "final_score": float(b[f"{side}_final_score"]), "rating_version": b[f"{side}_rating_version"],
                      "messages": [{"role": "user", "content": b[f"{side}_instruction"]},
                                   {"role": "assistant", "content": b[f"{side}_response"]}]})
    return preference_pair(b, *sides)


def _write_content(store: RatingStore, folder: Path) -> _Written:
    """Stream the snapshot's datasets from the store into ``folder`` (JSONL, Parquet in row groups, the lineage),
    hashing the content as it goes: staged in sorted temporary tables, read a range at a time, so only one range's
    records are ever in memory."""
    run_script(store, "snapshot_stream")
    if not store.query("SELECT count(*) AS n FROM _wf_snap_gold")[0]["n"]:
        raise StoreError(f"rating store {store.path}", "has no gold examples to snapshot",
                         "run the battle stage (`warriorflow run-arena` / the battle DAG) first")
    ranges = _ranges(store)
    content = _Content()
    # lineage (the content's "battles")
    battles = _Files(folder, BATTLES)
    ids_digest, n_votes, first = hashlib.sha256(), 0, True
    for records in _lineage_batches(store):
        battles.write(records)
        content.add(records)
        ids = "\n".join(b["battle_id"] for b in records)
        if ids:
            ids_digest.update((ids if first else "\n" + ids).encode())
            first = False
        n_votes += sum(len(b["votes"]) for b in records)
    battles.close()
    # sft (the content's "examples")
    content.next_list(b',"examples":')
    sft = _Files(folder, JSONL, PARQUET, "sft")
    by_expert: Counter = Counter()
    versions: set[str] = set()
    latest_gold = None
    for lo, hi in ranges:
        rows = store.query(load_query("snapshot_examples"), {"lo": lo, "hi": hi})
        records = example_records(rows)
        sft.write(records)
        content.add(records)
        by_expert.update(e["response_expert"] for e in records)
        versions.update(e["rating_version"] for e in records)
        stamps = [r["selected_at"] for r in rows if r.get("selected_at") is not None]
        if stamps:
            latest_gold = max([*stamps, *([latest_gold] if latest_gold is not None else [])])
    sft.close()
    # preferences
    content.next_list(b',"format":' + str(FORMAT_VERSION).encode() + b',"preferences":')
    prefs = _Files(folder, PREFERENCES_JSONL, PREFERENCES_PARQUET, "preferences")
    skipped = {"ties": 0, "unscored": 0}
    for lo, hi in ranges:
        records = []
        for b in store.query(load_query("snapshot_pairs"), {"lo": lo, "hi": hi}):
            pair = _pair(b)
            if isinstance(pair, str):
                skipped[pair] += 1
            else:
                records.append(pair)
        prefs.write(records)
        content.add(records)
    prefs.close()
    # ratings (one value), then responses
    ratings = rating_state(store.query(
        "SELECT rating_version, method, expert, rating, lo, hi, n_battles FROM rating_history "
        "WHERE rating_version IN (SELECT DISTINCT rating_version FROM gold_selections)"))
    content.digest.update(b'],"ratings":' + _canonical(ratings) + b',"responses":[')
    content.first = True
    responses = _Files(folder, RESPONSES_JSONL, RESPONSES_PARQUET, "responses")
    scored: set[str] = set()
    for records in _response_batches(store, ranges):
        responses.write(records)
        content.add(records)
        scored.update(r["instruction_id"] for r in records)
    responses.close()
    n_gold = store.query("SELECT count(*) AS n FROM _wf_snap_gold")[0]["n"]
    if len(scored) < n_gold:
        raise StoreError(f"rating store {store.path}",
                         f"{n_gold - len(scored)} of {n_gold} gold instructions have no stored response scores of "
                         "their gold's rating version (gold was selected before schema version 11)",
                         "select gold again with `warriorflow rate` (it stores every response's score), "
                         "then create the snapshot")
    for table in ("_wf_snap_gold", "_wf_snap_scored", "_wf_snap_battles", "_wf_snap_battle_votes", "_wf_snap_sides"):
        store.con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    return _Written(content.finish(), {"sft": sft.rows, "preferences": prefs.rows, "responses": responses.rows},
                    battles.rows, n_votes, ids_digest.hexdigest(), dict(sorted(by_expert.items())), latest_gold,
                    ratings, ",".join(sorted(versions)) or None, skipped)


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
    counts = manifest["counts"]
    return SnapshotInfo(
        snapshot_id=manifest["snapshot_id"], uri=objects.uri(prefix(manifest["snapshot_id"])),
        n_examples=counts["examples"], n_battles=counts["battles"],
        content_sha256=manifest["content_sha256"], config_hash=manifest["config_hash"],
        rating_version=manifest["lineage"]["rating_version"], created_at=manifest["created_at"], created=created,
        n_preferences=counts.get("preferences", 0), n_responses=counts.get("responses", 0))


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
    """Snapshot every gold instruction with all its scored responses: data files first, manifest last, then
    the ``snapshots`` row.

    The datasets are streamed from the store into a temporary folder (a record batch at a time; Parquet row
    groups), hashed as they go, then uploaded file by file (the object store uploads a large file in parts);
    nothing holds a whole dataset in memory. Identical content returns the existing snapshot (``created=False``),
    recording its row if missing."""
    with tempfile.TemporaryDirectory(prefix="warriorflow-snapshot-") as tmp:
        folder = Path(tmp)
        c = _write_content(store, folder)
        existing = find_by_content(objects, c.content)
        if existing is not None:
            info = _info(objects, existing, created=False)
            _record(store, objects, info)
            return info
        # the id has seconds; created_at keeps microseconds: the retrain gate compares it with gold selected_at
        created_at = (now or datetime.now(UTC)).astimezone(UTC)
        sid = snapshot_id(created_at, c.content)
        (folder / CARD).write_bytes(dataset_card(sid, c.rows, c.skipped["ties"], c.rating_version))
        files = {name: folder / name for name in (BATTLES, CARD, *(f for d in DATASETS.values() for f in d[:2]))}
        manifest = {
            "kind": KIND, "format_version": FORMAT_VERSION, "snapshot_id": sid,
            "created_at": created_at.isoformat().replace("+00:00", "Z"),
            "warriorflow_version": __version__, "config_hash": cfg.config_hash(), "content_sha256": c.content,
            "counts": {"examples": c.rows["sft"], "battles": c.n_battles, "votes": c.n_votes,
                       "examples_by_expert": c.by_expert,
                       "preferences": c.rows["preferences"], "preferences_skipped_ties": c.skipped["ties"],
                       "preferences_skipped_unscored": c.skipped["unscored"], "responses": c.rows["responses"]},
            "format": {"parquet": PARQUET, "jsonl": JSONL, "columns": list(COLUMNS),
                       "conversation": "messages: [{role: user, content: instruction}, "
                                       "{role: assistant, content: gold response}]"},
            "datasets": {name: {"parquet": parquet, "jsonl": jsonl, "rows": c.rows[name], "columns": list(columns),
                                "description": what}
                         for name, (parquet, jsonl, columns, what) in DATASETS.items()},
            "card": CARD,
            "lineage": {
                "battles_file": BATTLES,
                "battle_ids_sha256": c.battle_ids_sha256,
                "rating_version": c.rating_version,
                "ratings": c.ratings,
                "gold_selected_through": c.latest_gold.isoformat() if c.latest_gold is not None else None,
            },
        }
        publish(objects, prefix(sid), files, manifest)
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
    datasets, files = manifest.get("datasets"), manifest.get("files")
    if datasets is not None and (not isinstance(datasets, dict) or not isinstance(files, dict) or any(
            not isinstance(d, dict) or not isinstance(d.get("parquet"), str) or d["parquet"] not in files
            or isinstance(d.get("rows"), bool) or not isinstance(d.get("rows"), int) for d in datasets.values())):
        problems.append("datasets must give each dataset's parquet file (one of files) and its rows")
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
