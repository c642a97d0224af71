"""Near-duplicate detection: MinHash over word shingles, banded LSH, persistent across runs.

Exact duplicates never reach this stage (instruction ids are content addressed on normalised text);
this stage drops *near* duplicates. Every new instruction is checked against everything already kept:
the LSH index is rebuilt from the stored signatures (``load_index``), new items are processed in
order, the first seen is kept and a later near duplicate is dropped with a link to what it duplicates.

How it works
------------
* Shingles: runs of ``shingle_size`` words of ``ids.normalize_text(text)`` (``word_shingles``).
* Shingle hashes: each distinct word is hashed once with BLAKE2b (8 bytes, little endian); the
  word hashes of a shingle are folded with the MurmurHash3 64-bit finaliser (``_fmix64``), all in
  numpy. Nothing depends on Python's randomised ``hash()``, so signatures are the same in every
  process, run and machine.
* MinHash: permutation j maps the top 32 bits x of a shingle hash to ``(a_j * x + b_j) mod 2**32``
  (a_j odd, so the map is a bijection: datasketch >= 2.0's "affine32" scheme, see
  ``datasketch/minhash.py``); the signature value is the minimum over the text's shingles.
  ``a_j, b_j`` come from a SplitMix64 stream started at the seed (pure integer arithmetic, no numpy
  RNG whose streams may change between versions). A batch is evaluated in blocks of texts with
  similar shingle counts: one (texts x shingles x num_perm) uint32 product and a min per block.
* Signatures: ``uint32`` (``SIGNATURE_DTYPE``, little endian), ``num_perm * 4`` bytes when stored.
  A text with no shingles gets ``EMPTY_VALUE`` everywhere and is never indexed.
* LSH: ``b`` bands of ``r`` rows, chosen like datasketch's ``MinHashLSH._optimal_param``; each band
  slice is folded to a 64-bit key (a collision only adds a candidate, never loses one). Stored items
  sit in sorted arrays queried for the whole batch at once, items kept during the batch in dicts
  (``LSHIndex``). A candidate is only a duplicate if its estimated Jaccard (fraction of equal
  signature values) reaches the threshold, which removes the LSH false positives.

Changing the word hash, the fold, the permutation stream or the dtype changes every signature: the
stored ``minhash_signatures`` rows would then have to be recomputed (bump ``ALGORITHM_VERSION``).
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from warriorflow.method.ids import normalize_text

ALGORITHM_VERSION = 1
SIGNATURE_DTYPE = np.dtype("<u4")  # little-endian uint32: num_perm * 4 bytes per stored signature
EMPTY_VALUE = np.iinfo(np.uint32).max  # every value of the signature of a text without shingles

_MASK64 = (1 << 64) - 1
_FMIX_C1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_C2 = np.uint64(0xC4CEB9FE1A85EC53)
_FOLD_MUL = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio odd constant used to fold several hashes into one
_PAD = np.uint64(0x5BD1E9955BD1E995)  # stands for a missing word in a shingle of a text shorter than k
_SHIFT33 = np.uint64(33)
_SHIFT32 = np.uint64(32)
_BLOCK_CELLS = 1 << 17  # texts x shingles x num_perm cells per MinHash block (512 KiB of uint32)
_BAND_ROWS = 1 << 16  # signatures per block when folding band keys


# --------------------------------------------------------------------------------------------- shingles


def word_shingles(text: str, k: int) -> list[str]:
    """The shingles of ``text``: every run of ``k`` consecutive words of its normalised form, joined by
    one space, in order (repeats kept). A text of fewer than ``k`` words gives one shingle of all its
    words; an empty (or all-whitespace) text gives none."""
    if k < 1:
        raise ValueError("k must be at least 1")
    words = normalize_text(text).split()
    if not words:
        return []
    if len(words) <= k:
        return [" ".join(words)]
    return [" ".join(words[i : i + k]) for i in range(len(words) - k + 1)]


# --------------------------------------------------------------------------------------------- hashing


def _fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, an avalanching bijection; wraps modulo 2**64 (arrays only)."""
    x = x ^ (x >> _SHIFT33)
    x *= _FMIX_C1
    x ^= x >> _SHIFT33
    x *= _FMIX_C2
    x ^= x >> _SHIFT33
    return x


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _splitmix64(seed: int, count: int) -> list[int]:
    """``count`` values of the SplitMix64 generator started at ``seed`` (pure Python, so fixed forever)."""
    state = seed & _MASK64
    out = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        out.append(z ^ (z >> 31))
    return out


class MinHasher:
    """Computes MinHash signatures of texts over word shingles, for a whole batch at once.

    ``signatures(texts)`` returns a ``(len(texts), num_perm)`` array of ``SIGNATURE_DTYPE`` (uint32).
    The result depends only on the texts, ``num_perm``, ``seed`` and ``shingle_size``."""

    def __init__(self, num_perm: int = 128, seed: int = 1, shingle_size: int = 3):
        if num_perm < 1:
            raise ValueError("num_perm must be positive")
        if shingle_size < 1:
            raise ValueError("shingle_size must be at least 1")
        self.num_perm = num_perm
        self.seed = seed
        self.shingle_size = shingle_size
        stream = _splitmix64(seed, 2 * num_perm)
        # 32-bit affine permutations x -> a*x + b mod 2**32 of the top 32 bits of each shingle hash
        # (datasketch's "affine32" scheme); an odd a makes each a bijection.
        self._a = np.array([(v >> 32) | 1 for v in stream[:num_perm]], dtype=np.uint32)
        self._b = np.array([v >> 32 for v in stream[num_perm:]], dtype=np.uint32)

    @classmethod
    def from_settings(cls, settings) -> MinHasher:
        """From a ``config.DedupSettings`` (or anything with num_perm, seed, shingle_size)."""
        return cls(num_perm=settings.num_perm, seed=settings.seed, shingle_size=settings.shingle_size)

    def shingle_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """64-bit hashes of every text's shingles (those of ``word_shingles``), flat and in order,
        with ``counts[i]`` shingles for text i."""
        k = self.shingle_size
        if len(texts) == 0:
            return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
        word_ids, lengths, vocab = tokenize_batch(texts)
        word_hashes = np.fromiter(map(_word_hash, vocab), dtype=np.uint64, count=len(vocab))
        n = len(texts)
        # Lay the words out with k-1 pads after every text: a shingle is then always the k values
        # from its first word on, and a text shorter than k gets its words followed by pads.
        text_of_word = np.repeat(np.arange(n, dtype=np.int64), lengths)
        padded = np.full(len(word_ids) + n * (k - 1), _PAD, dtype=np.uint64)
        padded[np.arange(len(word_ids), dtype=np.int64) + text_of_word * (k - 1)] = word_hashes[word_ids]
        width = len(padded) - (k - 1)
        h = np.full(width, np.uint64(k), dtype=np.uint64)
        for j in range(k):
            h *= _FOLD_MUL
            h += padded[j : j + width]
            h = _fmix64(h)
        # Shingle starts: for text i (first padded slot p_i), p_i .. p_i + counts[i] - 1.
        counts = np.where(lengths >= k, lengths - k + 1, np.minimum(lengths, 1))
        text_start = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1] + (k - 1), out=text_start[1:])
        first_shingle = np.zeros(n, dtype=np.int64)
        np.cumsum(counts[:-1], out=first_shingle[1:])
        starts = np.repeat(text_start - first_shingle, counts) + np.arange(counts.sum(), dtype=np.int64)
        return h[starts], counts

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """MinHash signatures, shape ``(len(texts), num_perm)``, dtype ``SIGNATURE_DTYPE``."""
        hashes, counts = self.shingle_hashes(texts)
        x = (hashes >> _SHIFT32).astype(np.uint32)
        out = np.full((len(texts), self.num_perm), EMPTY_VALUE, dtype=SIGNATURE_DTYPE)
        first = np.zeros(len(texts), dtype=np.int64)
        np.cumsum(counts[:-1], out=first[1:])
        # Texts in blocks of similar shingle counts (sorted), each block a (texts, shingles) matrix,
        # padded by repeating a text's last shingle (harmless to a minimum); then one
        # (texts, shingles, num_perm) product and a min over the shingle axis, a block small enough
        # to stay in cache.
        order = np.flatnonzero(counts)
        order = order[np.argsort(counts[order], kind="stable")]
        s = 0
        while s < len(order):
            m = max(1, _BLOCK_CELLS // (int(counts[order[s]]) * self.num_perm))
            block = order[s : s + m]
            c = counts[block]
            cols = np.minimum(np.arange(int(c.max()), dtype=np.int64)[None, :], (c - 1)[:, None])
            values = x[first[block][:, None] + cols][:, :, None] * self._a  # (texts, shingles, num_perm)
            values += self._b
            out[block] = values.min(axis=1)
            s += m
        return out


def tokenize_batch(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The words of every text, as ``normalize_text(text).split()`` gives them: flat word ids, the
    number of words of each text, and the vocabulary (word -> id, in id order).

    All texts are normalised and split in one go, joined by a NUL token: NFKC, lower() and split()
    treat " NUL " as a boundary nothing crosses (space and NUL are stable starters that compose with
    nothing, and a space ends a final-sigma context), and split() does normalize_text's whitespace
    collapsing. A text that holds a NUL itself sends the batch down the text-by-text path."""
    sep = "\x00"
    joined = f" {sep} ".join(texts)
    one_go = joined.count(sep) == len(texts) - 1
    if one_go:
        words = unicodedata.normalize("NFKC", joined).lower().split()
    else:
        words, lengths = [], []
        for text in texts:
            ws = normalize_text(text).split()
            words.extend(ws)
            lengths.append(len(ws))
    vocab: dict[str, int] = dict.fromkeys(words)  # type: ignore[arg-type]
    for i, w in enumerate(vocab):
        vocab[w] = i
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
    if not one_go:
        return ids, np.array(lengths, dtype=np.int64), vocab
    if len(texts) <= 1:
        return ids, np.full(len(texts), len(ids), dtype=np.int64), vocab
    is_sep = ids == vocab[sep]  # stays in the vocabulary (ids are positions in it), never used
    bounds = np.concatenate([[-1], np.flatnonzero(is_sep), [len(ids)]])
    return ids[~is_sep], np.diff(bounds) - 1, vocab


def signature_to_bytes(sig: np.ndarray) -> bytes:
    """The stored form of a signature: ``num_perm`` little-endian uint32 values."""
    return np.ascontiguousarray(sig, dtype=SIGNATURE_DTYPE).tobytes()


def signature_from_bytes(data: bytes, num_perm: int) -> np.ndarray:
    """Inverse of ``signature_to_bytes`` (a read-only view of ``data``)."""
    if len(data) != num_perm * SIGNATURE_DTYPE.itemsize:
        raise ValueError(f"signature has {len(data)} bytes, expected {num_perm * SIGNATURE_DTYPE.itemsize}")
    return np.frombuffer(data, dtype=SIGNATURE_DTYPE)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The MinHash estimate of the Jaccard similarity: the fraction of equal signature values."""
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signatures differ in shape: {sig_a.shape} vs {sig_b.shape}")
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.shape[-1]


# --------------------------------------------------------------------------------------------- LSH


def _integral(f, lo: float, hi: float, steps: int = 2000) -> float:
    """Composite Simpson's rule (``f`` must accept numpy arrays)."""
    x = np.linspace(lo, hi, steps + 1)
    y = f(x)
    return float((hi - lo) / (3 * steps) * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum()))


@functools.cache  # pure, and about 40 ms for 128 permutations
def optimal_bands(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """Bands ``b`` and rows per band ``r`` (``b * r <= num_perm``) minimising the weighted probability
    of false positives (pairs below the threshold that share a band) and false negatives (pairs
    above it that share none), integrated over the similarity. A re-implementation of
    ``datasketch.lsh._optimal_param`` (datasketch, MIT licence; scipy's quad replaced by Simpson)."""
    best, best_error = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            collide = lambda s, b=b, r=r: 1 - (1 - s**r) ** b  # noqa: E731
            fp = _integral(collide, 0.0, threshold)
            fn = _integral(lambda s, c=collide: 1 - c(s), threshold, 1.0)
            error = fp * false_positive_weight + fn * false_negative_weight
            if error < best_error:
                best, best_error = (b, r), error
    return best


class LSHIndex:
    """Banded MinHash LSH over string keys. ``candidates(sig)`` are the indexed keys that share at
    least one band with ``sig``: a superset of the near duplicates, to verify with estimated Jaccard.

    Two tiers hold the same kind of entries (band -> band key -> item):
    * bulk: what ``add_many`` adds in bulk (the stored index, via ``load_index``): per band, the
      band keys as a sorted uint64 array with the int32 item numbers beside it. 12 bytes per band
      per item, built with one sort per band, and queried for a whole batch with ``searchsorted``.
    * recent: what ``add`` adds one at a time (items kept while a batch is processed): per band a
      dict from band key to a key (or a list of keys, when several items share the bucket).
    Items are numbered in the order they were added (``order``); adding a key that is already
    indexed does nothing, so re-runs are harmless."""

    _BULK_MIN = 256  # add_many of fewer items goes to the recent tier (a bulk merge re-sorts a band)

    def __init__(self, num_perm: int, threshold: float):
        self.num_perm = num_perm
        self.threshold = threshold
        self.bands, self.rows = optimal_bands(threshold, num_perm)
        self._keys: list[str] = []  # item number -> key
        self._number: dict[str, int] = {}  # key -> item number
        self._bulk_keys = [np.empty(0, dtype=np.uint64) for _ in range(self.bands)]
        self._bulk_items = [np.empty(0, dtype=np.int32) for _ in range(self.bands)]
        self._recent: list[dict[int, str | list[str]]] = [{} for _ in range(self.bands)]

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in self._number

    def order(self, key: str) -> int:
        """Position of ``key`` in insertion order (0 for the first added)."""
        return self._number[key]

    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        """``(n, bands)`` uint64 keys: each band's ``rows`` signature values folded into 64 bits (computed a block
        of rows at a time: the uint64 copy of the signatures is never made whole)."""
        sigs = np.atleast_2d(sigs)
        if sigs.shape[1] != self.num_perm:
            raise ValueError(f"signatures have {sigs.shape[1]} values, the index expects {self.num_perm}")
        if len(sigs) > _BAND_ROWS:
            out = np.empty((len(sigs), self.bands), dtype=np.uint64)
            for lo in range(0, len(sigs), _BAND_ROWS):
                out[lo : lo + _BAND_ROWS] = self.band_keys(sigs[lo : lo + _BAND_ROWS])
            return out
        used = sigs[:, : self.bands * self.rows].reshape(len(sigs), self.bands, self.rows).astype(np.uint64)
        h = np.full((len(sigs), self.bands), np.uint64(self.rows), dtype=np.uint64)
        for j in range(self.rows):
            h *= _FOLD_MUL
            h += used[:, :, j]
            h = _fmix64(h)
        return h

    def add(self, key: str, sig: np.ndarray) -> None:
        self._add_recent(key, self.band_keys(sig)[0].tolist())

    def add_many(self, keys: Sequence[str], sigs: np.ndarray) -> None:
        sigs = np.atleast_2d(sigs)
        if len(keys) != len(sigs):
            raise ValueError("keys and signatures differ in number")
        band_keys = self.band_keys(sigs)
        if len(keys) < self._BULK_MIN:
            for key, row in zip(keys, band_keys.tolist()):
                self._add_recent(key, row)
            return
        fresh = []  # positions of keys not indexed yet (first occurrence only)
        for i, key in enumerate(keys):
            if key not in self._number:
                self._number[key] = len(self._keys)
                self._keys.append(key)
                fresh.append(i)
        numbers = np.arange(len(self._keys) - len(fresh), len(self._keys), dtype=np.int32)
        band_keys = band_keys[fresh]
        for band in range(self.bands):
            merged_keys = np.concatenate([self._bulk_keys[band], band_keys[:, band]])
            merged_items = np.concatenate([self._bulk_items[band], numbers])
            by_key = np.argsort(merged_keys, kind="stable")  # keeps equal keys in insertion order
            self._bulk_keys[band] = merged_keys[by_key]
            self._bulk_items[band] = merged_items[by_key]

    def _add_recent(self, key: str, band_keys: list[int], buckets: list | None = None) -> None:
        """Index ``key`` in the recent tier; ``buckets`` is ``_recent_buckets(band_keys)`` if the
        caller already looked them up (saves a second round of lookups)."""
        if key in self._number:
            return
        self._number[key] = len(self._keys)
        self._keys.append(key)
        if buckets is None:
            buckets = self._recent_buckets(band_keys)
        for table, h, cur in zip(self._recent, band_keys, buckets):
            if cur is None:
                table[h] = key
            elif type(cur) is list:
                cur.append(key)
            else:
                table[h] = [cur, key]

    def candidates(self, sig: np.ndarray) -> set[str]:
        band_keys = self.band_keys(sig)
        _, items = self._bulk_pairs(band_keys)
        recent = _keys_in(self._recent_buckets(band_keys[0].tolist()))
        return {self._keys[i] for i in items.tolist()} | recent

    def _recent_buckets(self, band_keys: list[int]) -> list:
        """The recent tier's bucket of every band (None, a key, or a list of keys)."""
        return list(map(dict.get, self._recent, band_keys))

    def _bulk_pairs(self, band_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (query row, bulk item number) pair sharing a band, once, sorted by query row."""
        queries, items = [], []
        for band in range(self.bands):
            keys = self._bulk_keys[band]
            if len(keys) == 0:
                continue
            lo = np.searchsorted(keys, band_keys[:, band], side="left")
            hits = np.searchsorted(keys, band_keys[:, band], side="right") - lo
            rows = np.flatnonzero(hits)
            counts = hits[rows]
            within = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            queries.append(np.repeat(rows, counts))
            items.append(self._bulk_items[band][np.repeat(lo[rows], counts) + within])
        if not queries:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        pairs = np.unique(np.concatenate(queries) * len(self._keys) + np.concatenate(items).astype(np.int64))
        return pairs // len(self._keys), pairs % len(self._keys)


def _keys_in(buckets: list) -> set[str]:
    if buckets.count(None) == len(buckets):  # the usual case, checked at C speed
        return set()
    found: set[str] = set()
    for cur in buckets:
        if type(cur) is list:
            found.update(cur)
        elif cur is not None:
            found.add(cur)
    return found


# --------------------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class DedupDecision:
    """``duplicate_of`` is None for a kept item, else the kept item it nearly duplicates, with the
    estimated Jaccard ``similarity`` between the two."""

    instruction_id: str
    duplicate_of: str | None
    similarity: float | None


def find_near_duplicates(
    ids: Sequence[str],
    texts: Sequence[str],
    index: LSHIndex,
    known_sigs: dict[str, np.ndarray],
    hasher: MinHasher,
    threshold: float,
) -> tuple[list[DedupDecision], np.ndarray]:
    """Decide, in order, which new items are near duplicates of an item already kept (in the store or
    earlier in this batch). A candidate counts only if its estimated Jaccard is at least
    ``threshold``; the best one (highest similarity, ties to the earliest indexed) is ``duplicate_of``.
    A kept item is added to ``index`` and ``known_sigs`` at once (both are updated in place).

    Returns the decisions and the signatures of all new items (row i for ``ids[i]``), so the caller
    can persist those of the kept ones. A text without shingles is kept (duplicate_of None) but not
    indexed; don't persist its signature (it is all ``EMPTY_VALUE``). An id that is already indexed
    (a re-run, or the same id twice) is reported as kept and left alone."""
    if len(ids) != len(texts):
        raise ValueError("ids and texts differ in number")
    if hasher.num_perm != index.num_perm:
        raise ValueError(f"hasher has num_perm={hasher.num_perm}, index has {index.num_perm}")
    sigs = hasher.signatures(texts)
    empty = (sigs == EMPTY_VALUE).all(axis=1).tolist()
    band_keys = index.band_keys(sigs)
    # Against the bulk tier (the store), all at once: the best verified match of every new item.
    stored_best = _best_bulk_matches(sigs, band_keys, index, known_sigs, threshold)
    band_key_rows = band_keys.tolist()
    decisions: list[DedupDecision] = []
    for i, key in enumerate(ids):
        if empty[i] or key in index:
            decisions.append(DedupDecision(key, None, None))
            continue
        best = stored_best.get(i)  # (similarity, key) or None
        # Against the items added one at a time (kept earlier in this batch), one by one.
        buckets = index._recent_buckets(band_key_rows[i])
        recent = _keys_in(buckets)
        if recent:
            cands = sorted(recent, key=index.order)  # earliest first: argmax keeps the earliest of ties
            sims = (np.stack([known_sigs[c] for c in cands]) == sigs[i]).mean(axis=1)
            j = int(np.argmax(sims))
            if sims[j] >= threshold and (
                best is None or (sims[j], -index.order(cands[j])) > (best[0], -index.order(best[1]))
            ):
                best = (float(sims[j]), cands[j])
        if best is not None:
            decisions.append(DedupDecision(key, best[1], best[0]))
        else:
            decisions.append(DedupDecision(key, None, None))
            known_sigs[key] = sigs[i]
            index._add_recent(key, band_key_rows[i], buckets)
    return decisions, sigs


def _best_bulk_matches(
    sigs: np.ndarray, band_keys: np.ndarray, index: LSHIndex, known_sigs: dict[str, np.ndarray], threshold: float
) -> dict[int, tuple[float, str]]:
    """Row -> (similarity, key) of its best bulk candidate at or above the threshold (highest
    similarity, then earliest); rows without one are absent."""
    rows, items = index._bulk_pairs(band_keys)
    if len(rows) == 0:
        return {}
    sims = np.empty(len(rows), dtype=np.float64)
    for lo in range(0, len(rows), 1 << 16):  # bounded memory however many candidate pairs there are
        part = slice(lo, lo + (1 << 16))
        stored = np.stack([known_sigs[index._keys[i]] for i in items[part].tolist()])
        sims[part] = (stored == sigs[rows[part]]).mean(axis=1)
    ok = np.flatnonzero(sims >= threshold)
    rows, items, sims = rows[ok], items[ok], sims[ok]
    best_first = np.lexsort((items, -sims, rows))  # per row: highest similarity, then earliest item
    rows, items, sims = rows[best_first], items[best_first], sims[best_first]
    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.empty(0, dtype=np.int64)
    return {int(r): (float(sm), index._keys[int(it)]) for r, it, sm in zip(rows[first], items[first], sims[first])}


def load_index(rows: Iterable[tuple[str, bytes]], settings) -> tuple[LSHIndex, dict[str, np.ndarray]]:
    """Rebuild the persistent index from stored ``(instruction_id, signature bytes)`` rows, in the
    order given (use the order they were kept, e.g. ``ORDER BY created_at, instruction_id``, so ties
    go to the earliest). ``settings`` is a ``config.DedupSettings``; only pass rows whose num_perm,
    seed and shingle_size match it (signatures of other settings are not comparable)."""
    keys: list[str] = []
    blobs: list[bytes] = []
    for key, blob in rows:
        keys.append(key)
        blobs.append(bytes(blob))
    size = settings.num_perm * SIGNATURE_DTYPE.itemsize
    bad = next((k for k, b in zip(keys, blobs) if len(b) != size), None)
    if bad is not None:
        raise ValueError(f"stored signature of {bad} is not {size} bytes: recompute it with these settings")
    matrix = np.frombuffer(b"".join(blobs), dtype=SIGNATURE_DTYPE).reshape(len(keys), settings.num_perm)
    return index_from_matrix(keys, matrix, settings)


def index_from_matrix(keys: Sequence[str], matrix: np.ndarray, settings) -> tuple[LSHIndex, dict[str, np.ndarray]]:
    """:func:`load_index` from the keys and their signatures as one (n, num_perm) ``SIGNATURE_DTYPE`` matrix (read
    from the store in bulk, never as one bytes object per row)."""
    matrix = np.asarray(matrix, dtype=SIGNATURE_DTYPE)
    if matrix.shape != (len(keys), settings.num_perm):
        raise ValueError(f"signatures have shape {matrix.shape}, expected ({len(keys)}, {settings.num_perm})")
    index = LSHIndex(settings.num_perm, settings.threshold)
    index.add_many(keys, matrix)
    if len(index) != len(matrix):  # a repeated key: rows and item numbers differ; the last row wins, as before
        return index, dict(zip(keys, matrix))
    return index, KnownSignatures(index, matrix)


class KnownSignatures(dict):
    """The signatures of the indexed keys, as the dict ``find_near_duplicates`` reads and extends: the stored ones
    are rows of the one signature matrix, found through the index's key numbers (no object per stored key);
    the ones added later are held as usual."""

    def __init__(self, index: LSHIndex, matrix: np.ndarray):
        super().__init__()
        self._index, self._matrix, self._stored = index, matrix, len(matrix)

    def __missing__(self, key: str) -> np.ndarray:
        n = self._index._number.get(key)
        if n is None or n >= self._stored:
            raise KeyError(key)
        return self._matrix[n]

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or (isinstance(key, str) and self._index._number.get(key, self._stored)
                                                < self._stored)

    def __len__(self) -> int:
        return dict.__len__(self) + self._stored
