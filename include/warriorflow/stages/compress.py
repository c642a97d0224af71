"""Compress: embed the clean pool, then KCenterGreedy warm-started from every earlier selection."""

from __future__ import annotations

import logging

import numpy as np

from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.method.kcenter import k_center_greedy, resolve_budget
from warriorflow.method.progress import Progress
from warriorflow.models.embedder import embed, load_sentence_model, model_id
from warriorflow.quality.gates import gate_selected
from warriorflow.stages.base import CLEAN, SELECTED, advance, at_status, stage
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


@stage("compress")
def compress_stage(config: Config, store: RatingStore, run_id: str, progress: Progress = log.info) -> dict[str, int]:
    s = config.settings.compression
    name = model_id(s.embed_model)
    pool = at_status(store, CLEAN)
    selected = at_status(store, SELECTED)
    needed = pool + selected
    cached = {r["instruction_id"]: r["vector"] for r in store.query(
        "SELECT instruction_id, vector FROM embeddings WHERE model = ?", [name])}
    missing = [r for r in needed if r["instruction_id"] not in cached]
    if missing:
        progress(f"compress: embedding {len(missing)} instructions with {name} ...")
        vectors = embed(load_sentence_model(s.embed_model), [r["text"] for r in missing], batch_size=s.batch_size)
        store.upsert("embeddings", [{"instruction_id": r["instruction_id"], "model": name, "dim": int(v.shape[0]),
                                     "vector": v.tolist()} for r, v in zip(missing, vectors)],
                     key=["instruction_id", "model"])
        cached.update({r["instruction_id"]: v for r, v in zip(missing, vectors)})
    budget = resolve_budget(s.budget, len(pool))
    picks: list[int] = []
    if budget:
        X = np.asarray([cached[r["instruction_id"]] for r in pool], dtype=np.float32)
        centers = np.asarray([cached[r["instruction_id"]] for r in selected], dtype=np.float32) if selected else None
        result = k_center_greedy(X, budget, centers=centers, seed=s.seed)
        # a pick at distance 0 is a copy of an earlier selection: it adds nothing, leave it in the pool
        picks = [i for i, dist in zip(result.picks, result.min_distances) if dist > 0.0]
    base_rank = store.query("SELECT coalesce(max(pick_rank) + 1, 0) AS n FROM instruction_selections")[0]["n"]
    rows = [{"instruction_id": pool[i]["instruction_id"], "run_id": run_id, "pick_rank": base_rank + k,
             "embed_model": name} for k, i in enumerate(picks)]
    gate = gate_selected(rows, max_rows=budget)
    if not gate.success:
        raise StoreError(f"selection of run {run_id}", f"failed its quality gate: {gate.summary()}",
                         "this is a bug in compression; report it with the GX result")
    store.upsert("instruction_selections", rows, key=["instruction_id"])
    advance(store, rows, SELECTED)
    return {"pool": len(pool), "already_selected": len(selected), "budget": budget, "selected": len(rows),
            "not_selected_yet": len(pool) - len(rows)}
