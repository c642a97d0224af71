"""The compress stage on stored embeddings: the pool read as Arrow batches into float32, the old selections
streamed a block at a time into the warm start (StoredCenters), the embed job planned with an anti-join. The
picks must be those of k-center greedy on the same vectors held in memory."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from warriorflow.method import kcenter
from warriorflow.method.kcenter import k_center_greedy, resolve_budget
from warriorflow.stages import compress
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

KEY = "test-embedder"


def seeded_store(store: RatingStore, n_pool: int, n_selected: int, dim: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1)
    vectors = {}
    rows = []
    for i in range(n_pool + n_selected + 3):
        iid = f"i{rng.integers(1 << 40):011x}"
        status = "clean" if i < n_pool else "selected" if i < n_pool + n_selected else "clean"
        rows.append({"instruction_id": iid, "text": f"text {i}", "expert": "x", "mined_at": t0 + timedelta(
            seconds=int(rng.integers(1000))), "run_id": "r", "status": status})
        if i < n_pool + n_selected:  # the last three clean ones have no embedding yet
            vectors[iid] = (rng.standard_normal(dim) * (1 + (i % 3))).astype(np.float32)
    store.upsert("instructions", rows, key=["instruction_id"])
    store.upsert("embeddings", [{"instruction_id": k, "model": KEY, "dim": dim, "vector": v.tolist()}
                                for k, v in vectors.items()], key=["instruction_id", "model"])
    return vectors


@pytest.mark.parametrize("seed", range(3))
def test_compress_stage_picks_what_k_center_greedy_picks_in_memory(tmp_path, config, monkeypatch, seed):
    monkeypatch.setattr(compress, "embed_model_key", lambda spec: KEY)
    monkeypatch.setattr(kcenter, "_INIT_BLOCK_ELEMENTS", 4096 * 7)  # centers streamed 7 at a time
    monkeypatch.setattr(compress, "EMBED_BATCH", 5)  # ... from record batches of 5
    with RatingStore(tmp_path / "s.duckdb") as store:
        vectors = seeded_store(store, n_pool=40, n_selected=33, dim=12, seed=seed)
        pool = store.query("SELECT instruction_id FROM instructions WHERE status = 'clean' "
                           "AND instruction_id IN (SELECT instruction_id FROM embeddings) "
                           "ORDER BY mined_at, instruction_id")
        old = store.query("SELECT instruction_id FROM instructions WHERE status = 'selected' "
                          "ORDER BY mined_at, instruction_id")
        x = np.stack([vectors[r["instruction_id"]] for r in pool])
        centers = np.stack([vectors[r["instruction_id"]] for r in old])
        budget = resolve_budget(config.settings.compression.budget, len(pool))
        want = k_center_greedy(x, budget, centers=centers, seed=config.settings.compression.seed)
        report = compress.compress_stage(config, store, open_objects(config), "run-1")
        assert report.counts["pool"] == 40 and report.counts["waiting_for_embeddings"] == 3
        assert report.counts["already_selected"] == 33
        got = store.query("SELECT instruction_id FROM instruction_selections ORDER BY pick_rank")
        assert [r["instruction_id"] for r in got] == [pool[i]["instruction_id"] for i in want.picks]
        assert store.query("SELECT count(*) AS n FROM instructions WHERE status = 'selected'")[0]["n"] == 33 + budget


def test_stored_centers_stream_in_exact_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(compress, "EMBED_BATCH", 4)
    with RatingStore(tmp_path / "s.duckdb") as store:
        vectors = seeded_store(store, n_pool=0, n_selected=23, dim=5, seed=1)
        order = [r["instruction_id"] for r in store.query(
            "SELECT instruction_id FROM instructions WHERE status = 'selected' ORDER BY mined_at, instruction_id")]
        centers = compress.StoredCenters(store, KEY, 5)
        assert len(centers) == 23
        blocks = list(centers.chunks(7))
        assert [len(b) for b in blocks] == [7, 7, 7, 2]
        assert np.array_equal(np.concatenate(blocks), np.stack([vectors[i] for i in order]))
        assert [len(b) for b in centers.chunks(23)] == [23]  # read again: the same stream
        # by position, in the order asked (what exact tie-breaks fetch), across the stream's batches
        everything = np.concatenate(blocks)
        assert np.array_equal(centers.rows_at(np.array([22, 0, 9, 9, 4])), everything[[22, 0, 9, 9, 4]])
        assert centers.rows_at(np.array([], np.int64)).shape == (0, 5)
        centers.close()


def test_the_embed_job_asks_only_what_has_no_embedding(tmp_path, config, monkeypatch):
    monkeypatch.setattr(compress, "embed_model_key", lambda spec: KEY)
    with RatingStore(tmp_path / "s.duckdb") as store:
        seeded_store(store, n_pool=4, n_selected=2, dim=3, seed=2)
        report = compress.plan_embeddings_stage(config, store, open_objects(config), "run-1")
        assert report.counts == {"needed": 9, "embedded_before": 6, "embed_jobs": 1, "to_embed": 3}
