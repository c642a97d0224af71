"""Ingest (mined instructions): gate each mined batch (Great Expectations), quarantine a failing one,
merge the rest. Exact duplicates (same normalised text, hence the same id) are dropped here, with the
reason ``exact_duplicate``; near duplicates are the dedup step's."""

from __future__ import annotations

from warriorflow.config import Config
from warriorflow.method import ids
from warriorflow.quality.gates import gate_mined, rejection
from warriorflow.stages.base import Outcome, ingest_outcome, stage
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.jsonl import decode_jsonl
from warriorflow.store.keys import DROPPED_SUFFIX, dropped_key, run_prefix
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore


@stage("ingest")
def ingest_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    m = config.settings.mining

    def check(rows: list[dict]) -> Rejection | None:
        result = gate_mined(rows, experts=config.registry.names(), temperatures=m.temperatures, top_ps=m.top_ps,
                            min_chars=m.min_chars, max_chars=m.max_chars)
        return None if result.success else rejection(result)

    def merge(key: str, rows: list[dict]) -> dict[str, int]:
        counts: dict[str, int] = {}
        if objects.exists(dropped_key(key)):
            dropped = decode_jsonl(objects.get_bytes(dropped_key(key)))
            store.upsert("dropped_records", dropped, key=["record_id"])
            for d in dropped:
                counts[f"dropped_{d['reason']}"] = counts.get(f"dropped_{d['reason']}", 0) + 1
        existing = {r["instruction_id"] for r in store.query(
            "SELECT instruction_id FROM instructions WHERE instruction_id IN (SELECT unnest(?))",
            [[r["instruction_id"] for r in rows]])}
        fresh, dups, seen = [], [], set(existing)
        for r in rows:
            (dups if r["instruction_id"] in seen else fresh).append(r)
            seen.add(r["instruction_id"])
        store.upsert("instructions", [dict(r, source_uri=objects.uri(key)) for r in fresh], key=["instruction_id"])
        store.upsert("dropped_records", [
            {"record_id": ids.record_id("exact", r["run_id"], r["expert"], r["temperature"], r["top_p"], r["seed"]),
             "stage": "ingest", "reason": "exact_duplicate", "expert": r["expert"],
             "instruction_id": r["instruction_id"], "raw_text": r["text"],
             "provenance": {k: r[k] for k in ("temperature", "top_p", "seed", "run_id", "prefix_sha256")},
             "run_id": run_id} for r in dups], key=["record_id"])
        return {**counts, "ingested": len(fresh), "dropped_exact_duplicate": len(dups)}

    keys = [k for k in objects.list(run_prefix(run_id, "mine"))
            if k.endswith(".jsonl") and not k.endswith(DROPPED_SUFFIX)]
    report = ingest_files(store, objects, keys, kind="instructions", stage="mine", merge=merge, check=check)
    return ingest_outcome(report)
