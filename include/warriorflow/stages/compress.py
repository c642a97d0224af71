"""Compress: embed the clean pool (an embed job), then KCenterGreedy warm-started from every earlier selection.

* :func:`plan_embeddings_stage` (writer) writes the embed job: every clean or selected instruction with
  no stored embedding under the embedding model's key;
* :func:`compress_stage` (writer) ingests the embed job's result (vectors checked: the job's model, one
  dimension, finite numbers) and selects from the stored embeddings. A clean instruction without an
  embedding (its job failed) waits in the pool for the next run.

The embedding model's key is :func:`~warriorflow.models.embedder.model_id` (name and fingerprint of its
files) where the writer can see the model's files, else the configured spec itself (a production
path mounted only on the job's pod): the job writes its rows under the key the writer chose.
"""

from __future__ import annotations

import math

import numpy as np

from warriorflow.config import Config
from warriorflow.errors import ModelError, StoreError
from warriorflow.method.kcenter import k_center_greedy, resolve_budget
from warriorflow.quality.gates import gate_selected
from warriorflow.stages.base import (
    CLEAN,
    SELECTED,
    Outcome,
    advance,
    at_status,
    fail_on_quarantine,
    ingest_outcome,
    stage,
)
from warriorflow.stages.job_plans import answers_its_job, result_keys, write_jobs
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore


def embed_model_key(spec: str) -> str:
    """The embeddings cache key of ``spec``: its model id where its files are visible here, else the spec."""
    from warriorflow.models.embedder import model_id

    try:
        return model_id(spec)
    except (ModelError, OSError):
        return spec


def _embedded(store: RatingStore, key: str, instruction_ids: list[str]) -> dict[str, list[float]]:
    return {r["instruction_id"]: r["vector"] for r in store.query(
        "SELECT instruction_id, vector FROM embeddings WHERE model = ? AND instruction_id IN (SELECT unnest(?))",
        [key, instruction_ids])}


@stage("plan_embeddings")
def plan_embeddings_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Write the embed job; the value is the jobs (dicts: key, step, model, items)."""
    s = config.settings.compression
    key = embed_model_key(s.embed_model)
    needed = at_status(store, CLEAN) + at_status(store, SELECTED)
    have = _embedded(store, key, [r["instruction_id"] for r in needed])
    items = [{"instruction_id": r["instruction_id"], "text": r["text"]} for r in needed
             if r["instruction_id"] not in have]
    jobs = write_jobs(config, objects, run_id, "embed", {key: items},
                      {"model_spec": s.embed_model, "batch_size": s.batch_size}) if items else []
    return Outcome({"needed": len(needed), "embedded_before": len(have), "embed_jobs": len(jobs),
                    "to_embed": len(items)}, [], [j.to_dict() for j in jobs])


def check_vectors(rows: list[dict]) -> Rejection | None:
    """Problems of an embed job's rows: a dimension per row that matches its vector, all rows one dimension,
    finite numbers."""
    problems, dims = [], set()
    for n, r in enumerate(rows, start=1):
        v = r.get("vector")
        if not isinstance(v, list) or not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                        and math.isfinite(x) for x in v):
            problems.append(f"line {n}: vector must be a non-empty list of finite numbers")
            continue
        if r.get("dim") != len(v):
            problems.append(f"line {n}: dim {r.get('dim')!r} is not the vector's length {len(v)}")
        dims.add(len(v))
    if len(dims) > 1:
        problems.append(f"vectors of different dimensions {sorted(dims)}")
    return Rejection("; ".join(problems[:5]), {"problems": problems}) if problems else None


@stage("compress")
def compress_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    s = config.settings.compression
    key = embed_model_key(s.embed_model)

    def merge(_key: str, rows: list[dict]) -> dict[str, int]:
        store.upsert("embeddings", [{"instruction_id": r["instruction_id"], "model": r["model"], "dim": r["dim"],
                                     "vector": r["vector"]} for r in rows], key=["instruction_id", "model"])
        return {"embedded": len(rows)}

    report = ingest_files(store, objects, result_keys(objects, run_id, "embed"), kind="embeddings",
                          stage="embed", merge=merge, check=check_vectors, check_file=answers_its_job(objects, "embed"))
    fail_on_quarantine(objects, report, "fix the embed job and re-run: its instructions are embedded again")
    clean = at_status(store, CLEAN)
    selected = at_status(store, SELECTED)
    cached = _embedded(store, key, [r["instruction_id"] for r in clean + selected])
    pool = [r for r in clean if r["instruction_id"] in cached]
    centers_rows = [r for r in selected if r["instruction_id"] in cached]
    budget = resolve_budget(s.budget, len(pool))
    picks: list[int] = []
    if budget:
        X = np.asarray([cached[r["instruction_id"]] for r in pool], dtype=np.float32)
        centers = np.asarray([cached[r["instruction_id"]] for r in centers_rows], dtype=np.float32) \
            if centers_rows else None
        result = k_center_greedy(X, budget, centers=centers, seed=s.seed)
        # a pick at distance 0 is a copy of an earlier selection: it adds nothing, leave it in the pool
        picks = [i for i, dist in zip(result.picks, result.min_distances) if dist > 0.0]
    base_rank = store.query("SELECT coalesce(max(pick_rank) + 1, 0) AS n FROM instruction_selections")[0]["n"]
    rows = [{"instruction_id": pool[i]["instruction_id"], "run_id": run_id, "pick_rank": base_rank + k,
             "embed_model": key} for k, i in enumerate(picks)]
    gate = gate_selected(rows, max_rows=budget)
    if not gate.success:
        raise StoreError(f"selection of run {run_id}", f"failed its quality gate: {gate.summary()}",
                         "this is a bug in compression; report it with the GX result")
    store.upsert("instruction_selections", rows, key=["instruction_id"])
    advance(store, rows, SELECTED)
    return Outcome({**ingest_outcome(report).counts, "pool": len(pool), "waiting_for_embeddings":
                    len(clean) - len(pool), "already_selected": len(selected), "budget": budget,
                    "selected": len(rows), "not_selected_yet": len(pool) - len(rows)})
