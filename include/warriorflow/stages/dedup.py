"""Dedup: drop near duplicates (MinHash LSH) of everything kept before, in this run or any earlier one."""

from __future__ import annotations

from warriorflow.config import Config
from warriorflow.method.minhash import (
    ALGORITHM_VERSION,
    EMPTY_VALUE,
    MinHasher,
    find_near_duplicates,
    load_index,
    signature_to_bytes,
)
from warriorflow.stages.base import MINED, UNIQUE, advance, at_status, drop, stage
from warriorflow.store.rating_store import RatingStore


@stage("dedup")
def dedup_stage(config: Config, store: RatingStore, run_id: str) -> dict[str, int]:
    d = config.settings.dedup
    todo = at_status(store, MINED)
    stored = store.query("SELECT instruction_id, signature FROM minhash_signatures WHERE num_perm = ? AND seed = ? "
                         "AND shingle_size = ? AND algorithm = ? ORDER BY created_at, instruction_id",
                         [d.num_perm, d.seed, d.shingle_size, ALGORITHM_VERSION])
    index, known = load_index(((r["instruction_id"], r["signature"]) for r in stored), d)
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
    return {"input": len(todo), "index_size_before": len(stored), "kept": len(kept),
            "dropped_near_duplicate": len(dups)}
