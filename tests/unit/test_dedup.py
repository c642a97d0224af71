"""Near-duplicate detection: shingles, deterministic MinHash, LSH, in-order decisions, persistence."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from warriorflow.config import DedupSettings
from warriorflow.method.ids import normalize_text
from warriorflow.method.minhash import (
    EMPTY_VALUE,
    SIGNATURE_DTYPE,
    DedupDecision,
    LSHIndex,
    MinHasher,
    estimated_jaccard,
    find_near_duplicates,
    load_index,
    optimal_bands,
    signature_from_bytes,
    signature_to_bytes,
    tokenize_batch,
    word_shingles,
)

SETTINGS = DedupSettings()
VOCAB = [f"w{i}" for i in range(5000)]


def random_text(rng: random.Random, n_words: int = 40) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n_words))


def edit(text: str, rng: random.Random, substitutions: int) -> str:
    words = text.split()
    for pos in rng.sample(range(len(words)), substitutions):
        words[pos] = f"new{rng.randrange(10**6)}"
    return " ".join(words)


def true_jaccard(a: str, b: str, k: int = 3) -> float:
    sa, sb = set(word_shingles(a, k)), set(word_shingles(b, k))
    return len(sa & sb) / len(sa | sb)


def run(ids, texts, index=None, known=None, threshold=SETTINGS.threshold):
    index = index if index is not None else LSHIndex(SETTINGS.num_perm, SETTINGS.threshold)
    known = known if known is not None else {}
    decisions, sigs = find_near_duplicates(ids, texts, index, known, MinHasher.from_settings(SETTINGS), threshold)
    return decisions, sigs, index, known


# ------------------------------------------------------------------------------------------- shingles


def test_word_shingles_over_normalised_words():
    assert word_shingles("Write  a\nPython FUNCTION", 3) == ["write a python", "a python function"]
    assert word_shingles("two words", 3) == ["two words"]  # shorter than k: one shingle of all words
    assert word_shingles("", 3) == [] and word_shingles(" \n\t ", 3) == []
    assert word_shingles("a b c", 1) == ["a", "b", "c"]


def test_batched_tokenizer_matches_normalize_text_split():
    texts = ["ﬁnd ΟΔΟΣ\u00a0now", "", "e\u0301 café CAFÉ  x", "Σ", "tab\tsep\nnew\x1cline", "\u3000wide\u3000space"]
    for batch in (texts, texts + ["holds a \x00 nul"], texts[:1], []):
        ids, lengths, vocab = tokenize_batch(batch)
        words = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        flat = [words[i] for i in ids.tolist()]
        expected = [normalize_text(t).split() for t in batch]
        assert lengths.tolist() == [len(e) for e in expected]
        assert flat == [w for e in expected for w in e]


# ------------------------------------------------------------------------------------------- MinHash


TEXTS = ["Write a Python function that reverses a string.", "Given a list of integers, return the sum.", "", "hi"]


def test_signatures_shape_dtype_and_empty_text():
    sigs = MinHasher().signatures(TEXTS)
    assert sigs.shape == (4, 128) and sigs.dtype == SIGNATURE_DTYPE
    assert (sigs[2] == EMPTY_VALUE).all() and not (sigs[3] == EMPTY_VALUE).all()
    assert MinHasher().signatures([]).shape == (0, 128)


def test_signatures_are_deterministic_and_batch_independent():
    a, b = MinHasher(seed=1), MinHasher(seed=1)
    batch = a.signatures(TEXTS)
    assert np.array_equal(batch, b.signatures(TEXTS))
    for i, text in enumerate(TEXTS):
        assert np.array_equal(b.signatures([text])[0], batch[i])
    assert not np.array_equal(MinHasher(seed=2).signatures(TEXTS[:1]), batch[:1])
    # Same words after normalisation, same signature.
    assert np.array_equal(a.signatures(["  WRITE a python\nfunction that reverses a STRING. "])[0], batch[0])


def test_signatures_are_the_same_in_another_process():
    code = (
        "import json,sys; from warriorflow.method.minhash import MinHasher, signature_to_bytes;"
        "print(json.dumps([signature_to_bytes(s).hex() for s in MinHasher().signatures(json.loads(sys.argv[1]))]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(TEXTS)], env=env, check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout) == [signature_to_bytes(s).hex() for s in MinHasher().signatures(TEXTS)]


def test_signatures_are_pinned():
    """Stored signatures must stay comparable: a change here invalidates every stored row."""
    text = "Write a Python function that reverses a string."
    assert MinHasher().signatures([text])[0][:6].tolist() == [
        1219613064, 77176845, 707266384, 301719037, 326092201, 162582976,
    ]  # fmt: skip
    assert MinHasher(num_perm=16, seed=7, shingle_size=2).signatures([text])[0][:6].tolist() == [
        1190917096, 1902729265, 1578597407, 777001958, 733435757, 283244282,
    ]  # fmt: skip


def test_estimated_jaccard_tracks_true_jaccard():
    rng = random.Random(3)
    hasher = MinHasher()
    errors = []
    for substitutions in (1, 2, 3, 4, 6, 8, 10, 14):
        for _ in range(3):
            a = random_text(rng, 60)
            b = edit(a, rng, substitutions)
            sa, sb = hasher.signatures([a, b])
            errors.append(abs(estimated_jaccard(sa, sb) - true_jaccard(a, b)))
    assert max(errors) < 0.15  # 128 permutations: standard error <= 0.045
    assert np.mean(errors) < 0.05
    x, y = hasher.signatures([random_text(rng), random_text(rng)])
    assert estimated_jaccard(x, y) < 0.05
    assert estimated_jaccard(x, x) == 1.0


def test_signature_bytes_round_trip():
    sig = MinHasher().signatures(TEXTS[:1])[0]
    data = signature_to_bytes(sig)
    assert len(data) == 128 * 4
    assert np.array_equal(signature_from_bytes(data, 128), sig)
    with pytest.raises(ValueError):
        signature_from_bytes(data[:-4], 128)


# ------------------------------------------------------------------------------------------- LSH


def test_optimal_bands_like_datasketch():
    assert optimal_bands(0.5, 128) == (25, 5)
    assert optimal_bands(0.8, 128) == (9, 13)
    datasketch_lsh = pytest.importorskip("datasketch.lsh")
    for threshold, num_perm in ((0.5, 128), (0.7, 64), (0.3, 32)):
        assert optimal_bands(threshold, num_perm) == datasketch_lsh._optimal_param(threshold, num_perm, 0.5, 0.5)


def test_index_candidates_in_both_tiers():
    rng = random.Random(5)
    texts = [random_text(rng) for _ in range(300)]
    near = edit(texts[10], rng, 1)
    sigs = MinHasher().signatures(texts + [near])
    keys = [f"k{i}" for i in range(300)]
    bulk, recent = LSHIndex(128, 0.5), LSHIndex(128, 0.5)
    bulk.add_many(keys, sigs[:300])  # >= 256 items: the sorted bulk tier
    for key, sig in zip(keys, sigs[:300]):
        recent.add(key, sig)  # one at a time: the dict tier
    for index in (bulk, recent):
        assert len(index) == 300
        assert "k10" in index.candidates(sigs[300])
        assert index.candidates(sigs[3]) == {"k3"}
    recent.add("k3", sigs[3])
    bulk.add_many(keys, sigs[:300])
    assert len(recent) == 300 and len(bulk) == 300  # re-adding is a no-op


# ------------------------------------------------------------------------------------------- decisions


def test_within_batch_near_duplicate_links_to_first_seen():
    rng = random.Random(7)
    a = random_text(rng)
    a2, a3 = edit(a, rng, 2), edit(a, rng, 1)
    decisions, sigs, index, known = run(["a", "b", "a2", "a3"], [a, random_text(rng), a2, a3])
    assert [d.duplicate_of for d in decisions] == [None, None, "a", "a"]
    assert decisions[2].similarity >= 0.5 and decisions[2].similarity == estimated_jaccard(sigs[0], sigs[2])
    assert set(known) == {"a", "b"} and len(index) == 2


def test_first_seen_is_kept_whatever_the_order():
    rng = random.Random(8)
    a = random_text(rng)
    a2 = edit(a, rng, 2)
    assert [d.duplicate_of for d in run(["a", "a2"], [a, a2])[0]] == [None, "a"]
    assert [d.duplicate_of for d in run(["a2", "a"], [a2, a])[0]] == [None, "a2"]


def test_unrelated_texts_are_not_flagged():
    rng = random.Random(9)
    texts = [random_text(rng, rng.randint(20, 80)) for _ in range(500)]
    decisions, *_ = run([f"t{i}" for i in range(500)], texts)
    assert all(d.duplicate_of is None for d in decisions)


def test_best_match_wins_and_ties_go_to_the_earliest():
    rng = random.Random(10)
    a = random_text(rng, 60)
    far, close = edit(a, rng, 6), edit(a, rng, 1)
    decisions, *_ = run(["far", "close", "q"], [far, close, a])
    assert decisions[2].duplicate_of == "close"
    # The same text under two ids (the caller's exact dedup would not allow it, but ties must be stable).
    index = LSHIndex(128, 0.5)
    sig = MinHasher().signatures([a])[0]
    index.add("first", sig)
    index.add("second", sig)
    known = {"first": sig, "second": sig}
    decisions, *_ = run(["q"], [edit(a, rng, 1)], index, known)
    assert decisions[0].duplicate_of == "first"


def test_ties_in_the_stored_index_go_to_the_earliest_row():
    rng = random.Random(13)
    texts = [random_text(rng) for _ in range(300)]
    texts[200] = texts[5]  # same signature under a later id
    sigs = MinHasher().signatures(texts)
    index, known = load_index([(f"s{i}", signature_to_bytes(s)) for i, s in enumerate(sigs)], SETTINGS)
    decisions, *_ = run(["q"], [edit(texts[5], rng, 1)], index, known)
    assert decisions[0].duplicate_of == "s5"


def test_threshold_is_respected():
    rng = random.Random(11)
    a = random_text(rng, 60)
    b = edit(a, rng, 3)
    est = estimated_jaccard(*MinHasher().signatures([a, b]))
    assert 0.5 < est < 1
    assert run(["a", "b"], [a, b], threshold=est)[0][1].duplicate_of == "a"
    assert run(["a", "b"], [a, b], threshold=est + 1e-9)[0][1].duplicate_of is None
    # A pair just below the 0.5 threshold is kept.
    c = edit(a, rng, 9)
    assert 0.35 < true_jaccard(a, c) < 0.5
    assert estimated_jaccard(*MinHasher().signatures([a, c])) < 0.5
    assert run(["a", "c"], [a, c])[0][1] == DedupDecision("c", None, None)


def test_empty_text_is_kept_and_not_indexed():
    decisions, _, index, known = run(["e", "f"], ["", "   "])
    assert decisions == [DedupDecision("e", None, None), DedupDecision("f", None, None)]
    assert len(index) == 0 and not known


def test_near_duplicate_of_a_stored_item_is_caught_after_a_round_trip():
    rng = random.Random(12)
    day1 = [random_text(rng, rng.randint(20, 80)) for _ in range(400)]
    ids1 = [f"d1-{i}" for i in range(400)]
    decisions, sigs, *_ = run(ids1, day1)
    rows = [(d.instruction_id, signature_to_bytes(s)) for d, s in zip(decisions, sigs) if d.duplicate_of is None]
    assert len(rows) == 400

    index, known = load_index(rows, SETTINGS)  # 400 rows: the bulk tier
    assert len(index) == 400 and index.order("d1-0") == 0
    day2 = [edit(day1[17], rng, 2), random_text(rng), edit(day1[250], rng, 1), edit(day1[17], rng, 1)]
    decisions2, *_ = run(["n0", "n1", "n2", "n3"], day2, index, known)
    assert [d.duplicate_of for d in decisions2] == ["d1-17", None, "d1-250", "d1-17"]
    assert "n1" in index and "n0" not in index and len(index) == 401

    # A re-run of day 2 changes nothing: kept items stay kept, duplicates stay duplicates.
    again, *_ = run(["n0", "n1", "n2", "n3"], day2, index, known)
    assert again == decisions2 and len(index) == 401


def test_load_index_rejects_signatures_of_other_settings():
    with pytest.raises(ValueError, match="not 512 bytes"):
        load_index([("x", b"\x00" * 256)], SETTINGS)
    index, known = load_index([], SETTINGS)
    assert len(index) == 0 and known == {}


def test_stored_signatures_are_read_in_bulk_and_checked(tmp_path, config):
    """The stored index comes back as one matrix in the order kept; a signature of another size is refused."""
    import numpy as np

    from warriorflow.method.minhash import ALGORITHM_VERSION, SIGNATURE_DTYPE
    from warriorflow.stages.dedup import stored_signatures
    from warriorflow.store.rating_store import RatingStore

    d = config.settings.dedup
    rng = np.random.default_rng(0)
    sigs = rng.integers(0, 2**32, (5, d.num_perm), dtype=np.uint64).astype(SIGNATURE_DTYPE)
    with RatingStore(tmp_path / "s.duckdb") as store:
        rows = [{"instruction_id": f"i{k}", "num_perm": d.num_perm, "seed": d.seed, "shingle_size": d.shingle_size,
                 "algorithm": ALGORITHM_VERSION, "signature": sigs[k].tobytes(),
                 "created_at": f"2026-01-0{5 - k} 00:00:00"} for k in range(5)]
        store.upsert("minhash_signatures", rows, key=["instruction_id"])
        keys, matrix = stored_signatures(store, d)
        assert keys == [f"i{k}" for k in (4, 3, 2, 1, 0)]
        assert np.array_equal(matrix, sigs[[4, 3, 2, 1, 0]])
        store.upsert("minhash_signatures", [dict(rows[0], instruction_id="short", signature=b"\x00" * 8)],
                     key=["instruction_id"])
        with pytest.raises(ValueError, match="short"):
            stored_signatures(store, d)


def test_the_stored_index_keeps_signatures_in_one_matrix():
    """index_from_matrix serves the stored signatures as rows of the matrix (no object per key), and
    find_near_duplicates extends it as it does a dict."""
    from warriorflow.method.minhash import KnownSignatures, index_from_matrix

    rng = random.Random(2)
    texts = [random_text(rng) for _ in range(300)]
    sigs = MinHasher.from_settings(SETTINGS).signatures(texts)
    index, known = index_from_matrix([f"s{i}" for i in range(300)], sigs, SETTINGS)
    assert isinstance(known, KnownSignatures) and len(known) == 300 and "s7" in known and "x" not in known
    assert np.array_equal(known["s7"], sigs[7])
    decisions, *_ = run(["q", "new"], [edit(texts[5], rng, 1), random_text(rng)], index, known)
    assert decisions[0].duplicate_of == "s5" and decisions[1].duplicate_of is None
    assert "new" in known and len(known) == 301
    with pytest.raises(KeyError):
        known["nope"]
    _, plain = index_from_matrix(["a", "b", "a"], sigs[:3], SETTINGS)  # a repeated key: a plain dict, last wins
    assert np.array_equal(plain["a"], sigs[2])
