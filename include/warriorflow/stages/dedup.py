"""Dedup: drop near duplicates (MinHash LSH) of everything kept before, in this run or any earlier one.

The stored index is read as Arrow batches into one uint32 signature matrix (``stored_signatures``); the batch to
check is the run's mined instructions only."""

from __future__ import annotations

import numpy as np

from warriorflow.config import Config
from warriorflow.method.minhash import (
    ALGORITHM_VERSION,
    EMPTY_VALUE,
    SIGNATURE_DTYPE,
    MinHasher,
    find_near_duplicates,
    index_from_matrix,
    signature_to_bytes,
)
from warriorflow.stages.base import MINED, UNIQUE, advance, at_status, drop, stage
from warriorflow.store.rating_store import RatingStore


def stored_signatures(store: RatingStore, d) -> tuple[list[str], np.ndarray]:
    """The stored signatures of these settings in the order they were kept, read as Arrow batches straight into one
    uint32 matrix (never one Python bytes object per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    size = d.num_perm * SIGNATURE_DTYPE.itemsize
    where = "num_perm = ? AND seed = ? AND shingle_size = ? AND algorithm = ?"
    params = [d.num_perm, d.seed, d.shingle_size, ALGORITHM_VERSION]
    n = store.query(f"SELECT count(*) AS n FROM minhash_signatures WHERE {where}", params)[0]["n"]
    matrix = np.empty((n, d.num_perm), SIGNATURE_DTYPE)
    keys: list[str] = []
    for batch in store.stream(f"SELECT instruction_id, signature FROM minhash_signatures WHERE {where} "
                              "ORDER BY created_at, instruction_id", params, rows=1 << 16):
        ids, sigs = batch.column(0), batch.column(1)
        if not len(sigs):
            continue
        lengths = pc.binary_length(sigs)
        if len(sigs) and (pc.min_max(lengths)["min"].as_py() != size or pc.min_max(lengths)["max"].as_py() != size):
            bad = ids[int(np.flatnonzero(lengths.to_numpy(zero_copy_only=False) != size)[0])].as_py()
            raise ValueError(f"stored signature of {bad} is not {size} bytes: recompute it with these settings")
        wide = pa.types.is_large_binary(sigs.type)
        offsets = np.frombuffer(sigs.buffers()[1], dtype=np.int64 if wide else np.int32)
        offsets = offsets[sigs.offset : sigs.offset + len(sigs) + 1]
        data = np.frombuffer(sigs.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        matrix[len(keys) : len(keys) + len(sigs)] = data.view(SIGNATURE_DTYPE).reshape(len(sigs), d.num_perm)
        keys.extend(ids.to_pylist())
    if len(keys) != n:
        raise ValueError(f"read {len(keys)} stored signatures, expected {n}")
    return keys, matrix


@stage("dedup")
def dedup_stage(config: Config, store: RatingStore, run_id: str) -> dict[str, int]:
    d = config.settings.dedup
    todo = at_status(store, MINED)
    keys, matrix = stored_signatures(store, d)
    index, known = index_from_matrix(keys, matrix, d)
    hasher = MinHasher(num_perm=d.num_perm, seed=d.seed, shingle_size=d.shingle_size)
    decisions, sigs = find_near_duplicates([r["instruction_id"] for r in todo], [r["text"] for r in todo],
                                           index, known, hasher, d.threshold)
    kept, dups = [], []
    for row, decision, sig in zip(todo, decisions, sigs):
        if decision.duplicate_of is None:
            kept.append((row, sig))
        else:
            dups.append(dict(row, duplicate_of=decision.duplicate_of))
    store.upsert("minhash_signatures", [
        {"instruction_id": r["instruction_id"], "num_perm": d.num_perm, "seed": d.seed, "shingle_size": d.shingle_size,
         "algorithm": ALGORITHM_VERSION, "signature": signature_to_bytes(s)}
        for r, s in kept if not (s == EMPTY_VALUE).all()], key=["instruction_id"])
    advance(store, (r for r, _ in kept), UNIQUE)
    drop(store, "dedup", {"near_duplicate": dups}, run_id)
    return {"input": len(todo), "index_size_before": len(keys), "kept": len(kept),
            "dropped_near_duplicate": len(dups)}
