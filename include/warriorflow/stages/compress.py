"""Compress: embed the clean pool (an embed job), then KCenterGreedy warm-started from every earlier selection.

* :func:`plan_embeddings_stage` (writer) writes the embed job: every clean or selected instruction with
  no stored embedding under the embedding model's key;
* :func:`compress_stage` (writer) ingests the embed job's result (vectors checked: the job's model, one
  dimension, finite numbers) and selects from the stored embeddings. A clean instruction without an
  embedding (its job failed) waits in the pool for the next run.

The embedding model's key is :func:`~warriorflow.models.embedder.model_id` (name and fingerprint of its
files) where the writer can see the model's files, else the configured spec itself (a production
path mounted only on the job's pod): the job writes its rows under the key the writer chose.

Bounded memory: the pool is read from the store as Arrow batches into one float32 matrix (never Python lists of
floats), and the old selections' embeddings are streamed a block at a time into the warm start
(:class:`StoredCenters`): the selection keeps only the k-center state (each candidate's nearest and second
nearest center distances, the picks), whatever the number of earlier selections.
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


@stage("plan_embeddings")
def plan_embeddings_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Write the embed job; the value is the jobs (dicts: key, step, model, items)."""
    s = config.settings.compression
    key = embed_model_key(s.embed_model)
    counts = store.query(
        "SELECT count(*) AS needed, count(e.instruction_id) AS have FROM instructions i "
        "LEFT JOIN embeddings e ON e.instruction_id = i.instruction_id AND e.model = ? "
        "WHERE i.status IN (?, ?)", [key, CLEAN, SELECTED])[0]
    items = store.query(  # the anti-join: what has no embedding under the key yet
        "SELECT i.instruction_id, i.text FROM instructions i WHERE i.status IN (?, ?) AND NOT EXISTS "
        "(SELECT 1 FROM embeddings e WHERE e.instruction_id = i.instruction_id AND e.model = ?) "
        "ORDER BY i.status, i.mined_at, i.instruction_id", [CLEAN, SELECTED, key])
    jobs = write_jobs(config, objects, run_id, "embed", {key: items},
                      {"model_spec": s.embed_model, "batch_size": s.batch_size}) if items else []
    return Outcome({"needed": int(counts["needed"]), "embedded_before": int(counts["have"]),
                    "embed_jobs": len(jobs), "to_embed": len(items)}, [], [j.to_dict() for j in jobs])


EMBED_BATCH = 1 << 14  # embeddings per Arrow record batch


def _matrix(column, dim: int) -> np.ndarray:
    """An Arrow list<float> column of vectors as a (rows, dim) float32 matrix (no Python floats)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column):
        lengths = pc.min_max(pc.list_value_length(column))
        if lengths["min"].as_py() != dim or lengths["max"].as_py() != dim:
            raise StoreError("stored embeddings", f"are not all {dim}-dimensional",
                             "embed the pool and the selections again with one model")
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(values, dtype=np.float32).reshape(len(column), dim)


class StoredCenters:
    """The embeddings of the selected instructions under ``key`` (oldest first), streamed from the store a block
    at a time: the warm start's :class:`~warriorflow.method.kcenter.CenterSource`. Only their ids are held (in
    a temporary table of the store's connection)."""

    def __init__(self, store: RatingStore, key: str, dim: int):
        self.store, self.key, self.dim = store, key, dim
        store.con.execute(
            "CREATE OR REPLACE TEMP TABLE _wf_centers AS SELECT (row_number() OVER (ORDER BY i.mined_at, "
            "i.instruction_id) - 1)::BIGINT AS idx, i.instruction_id FROM instructions i JOIN embeddings e ON "
            "e.instruction_id = i.instruction_id AND e.model = ? WHERE i.status = ?", [key, SELECTED])
        self.n = int(store.query("SELECT count(*) AS n FROM _wf_centers")[0]["n"])

    def __len__(self) -> int:
        return self.n

    def chunks(self, rows: int):
        reader = self.store.stream("SELECT e.vector FROM _wf_centers c JOIN embeddings e ON e.instruction_id = "
                                   "c.instruction_id AND e.model = ? ORDER BY c.idx", [self.key], EMBED_BATCH)
        pending: list[np.ndarray] = []
        held = 0
        for batch in reader:  # re-cut into blocks of exactly ``rows`` (the warm start's gemm blocks)
            pending.append(_matrix(batch.column(0), self.dim))
            held += len(pending[-1])
            while held >= rows:
                block = np.concatenate(pending) if len(pending) > 1 else pending[0]
                yield block[:rows]
                pending = [block[rows:]] if len(block) > rows else []
                held = len(block) - rows
        if held:
            yield np.concatenate(pending) if len(pending) > 1 else pending[0]

    def rows_at(self, indices: np.ndarray) -> np.ndarray:
        """The centers at these positions (the few an exact tie-break needs), in the order asked."""
        want = np.asarray(indices, np.int64)
        reader = self.store.stream("SELECT c.idx, e.vector FROM _wf_centers c JOIN embeddings e ON e.instruction_id "
                                   "= c.instruction_id AND e.model = ? WHERE c.idx IN (SELECT unnest(?::BIGINT[]))",
                                   [self.key, want.tolist()], EMBED_BATCH)
        found: dict[int, np.ndarray] = {}
        for batch in reader:
            for i, row in zip(batch.column(0).to_pylist(), _matrix(batch.column(1), self.dim)):
                found[i] = row
        missing = [int(i) for i in want if int(i) not in found]
        if missing:
            raise StoreError(f"embeddings ({self.key})", f"the selected instructions' centers {missing[:5]} vanished "
                             "during the selection", "run the compress step again")
        return np.stack([found[int(i)] for i in want]) if len(want) else np.empty((0, self.dim), np.float32)

    def close(self) -> None:
        self.store.con.execute("DROP TABLE IF EXISTS temp._wf_centers")


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
    counts = store.query(
        "SELECT count(*) FILTER (WHERE i.status = ?) AS clean, count(*) FILTER (WHERE i.status = ?) AS selected, "
        "count(e.instruction_id) FILTER (WHERE i.status = ?) AS pool FROM instructions i LEFT JOIN embeddings e "
        "ON e.instruction_id = i.instruction_id AND e.model = ? WHERE i.status IN (?, ?)",
        [CLEAN, SELECTED, CLEAN, key, CLEAN, SELECTED])[0]
    dims = [r["dim"] for r in store.query(
        "SELECT DISTINCT e.dim FROM embeddings e JOIN instructions i USING (instruction_id) "
        "WHERE e.model = ? AND i.status IN (?, ?)", [key, CLEAN, SELECTED])]
    if len(dims) > 1:
        raise StoreError(f"embeddings under {key}", f"have several dimensions {sorted(dims)}",
                         "embed the pool and the selections again with one model")
    budget = resolve_budget(s.budget, int(counts["pool"]))
    pool_ids: list[str] = []
    picks: list[int] = []
    if budget:
        dim = dims[0]
        x = np.empty((int(counts["pool"]), dim), np.float32)  # the pool, read a batch at a time
        at = 0
        for batch in store.stream(
                "SELECT i.instruction_id, e.vector FROM instructions i JOIN embeddings e ON e.instruction_id = "
                "i.instruction_id AND e.model = ? WHERE i.status = ? ORDER BY i.mined_at, i.instruction_id",
                [key, CLEAN], EMBED_BATCH):
            block = _matrix(batch.column(1), dim)
            x[at : at + len(block)] = block
            at += len(block)
            pool_ids.extend(batch.column(0).to_pylist())
        centers = StoredCenters(store, key, dim)
        try:
            result = k_center_greedy(x, budget, centers=centers if len(centers) else None, seed=s.seed)
        finally:
            centers.close()
        # a pick at distance 0 is a copy of an earlier selection: it adds nothing, leave it in the pool
        picks = [i for i, dist in zip(result.picks, result.min_distances) if dist > 0.0]
    base_rank = store.query("SELECT coalesce(max(pick_rank) + 1, 0) AS n FROM instruction_selections")[0]["n"]
    rows = [{"instruction_id": pool_ids[i], "run_id": run_id, "pick_rank": base_rank + k,
             "embed_model": key} for k, i in enumerate(picks)]
    gate = gate_selected(rows, max_rows=budget)
    if not gate.success:
        raise StoreError(f"selection of run {run_id}", f"failed its quality gate: {gate.summary()}",
                         "this is a bug in compression; report it with the GX result")
    store.upsert("instruction_selections", rows, key=["instruction_id"])
    advance(store, rows, SELECTED)
    pool = int(counts["pool"])
    return Outcome({**ingest_outcome(report).counts, "pool": pool, "waiting_for_embeddings":
                    int(counts["clean"]) - pool, "already_selected": int(counts["selected"]), "budget": budget,
                    "selected": len(rows), "not_selected_yet": pool - len(rows)})
