"""Benchmark: near-duplicate detection (dedup stage) against datasketch MinHash + MinHashLSH.

    python bench/bench_dedup.py [--n 200000] [--quick] [--seed 0] [--dup-rate 0.1] [--baseline-n N]

Data (seeded): ``n`` instruction-like texts of 20-80 words: an opening phrase from a few dozen
templates ("write a python function that ...") then words drawn Zipf-like from a vocabulary of
4,000 made-up words, so unrelated texts share a few common shingles but are far from similar.
About ``dup-rate`` of the items are PLANTED near duplicates: a copy of an earlier original item with
a few word substitutions / insertions / deletions, redrawn until its true word-3-shingle Jaccard to
the source is >= 0.7 (and the text is new: exact duplicates are another stage's business).
The truth is the set of planted items whose true Jaccard to their source is >= the threshold (0.5).

Measured in one process, both end to end from the raw texts to keep/drop decisions in order:

* **ours**: ``find_near_duplicates`` (batched MinHash signatures, LSH, estimated-Jaccard check).
* **baseline**: what the WarriorCoder paper describes: per text, ``datasketch.MinHash(num_perm=128)``
  updated shingle by shingle (same ``word_shingles``), then ``MinHashLSH(threshold=0.5,
  num_perm=128)``: query, flag the item if there is any candidate, else insert it. With
  ``--baseline-n N`` (< n, >= 20k) it runs on a seeded random subset of N texts and its time is
  extrapolated linearly to n (its recall/precision are then not reported).

Recall = flagged planted items / planted items; precision = flagged planted items / flagged items.
Then the persistent path: the kept signatures are serialised (``signature_to_bytes``), reloaded with
``load_index`` (timed), and a "next day" batch of n/10 new texts, 20% of them near duplicates of
stored originals, is checked against the reloaded store (timed, recall/precision).

Prints markdown tables; exits 1 when a goal fails (speed ratio >= 5, recall >= 0.95,
precision >= 0.95, for the main run and the next-day run).
"""

from __future__ import annotations

import argparse
import bisect
import os
import platform
import random
import sys
import time

import numpy as np

from warriorflow.config import DedupSettings
from warriorflow.method.ids import instruction_id
from warriorflow.method.minhash import (
    LSHIndex,
    MinHasher,
    find_near_duplicates,
    load_index,
    signature_to_bytes,
    word_shingles,
)

RATIO_GOAL = 5.0
RECALL_GOAL = 0.95
PRECISION_GOAL = 0.95
PLANT_MIN_JACCARD = 0.7
MIN_BASELINE_N = 20_000

TEMPLATES = [
    "write a python function that",
    "write a python function to",
    "implement a function that",
    "given a list of integers",
    "given a string s",
    "create a class that",
    "write a program that reads",
    "design an algorithm to",
    "write a sql query that",
    "write a javascript function that",
    "explain how to",
    "fix the bug in the following code so that",
    "write a c++ program to",
    "implement a data structure that supports",
    "write a rust function that",
    "you are given an array of integers nums and",
    "write a bash script that",
    "refactor the following code to",
    "write unit tests for a function that",
    "implement a binary search that",
    "write a function that takes a list and",
    "how can i",
    "write a go program that",
    "create a rest api endpoint that",
    "optimize the following function so that",
    "write a recursive function to",
    "implement the following interface so that",
    "write a java method that",
    "parse a json file and",
    "write a regular expression that",
]
_SYLLABLES = [
    "ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "da", "ve", "gor", "lin", "qua", "tor", "bel",
    "sa", "xi", "zu", "fe", "mon", "ar", "ex", "ol", "ip", "um", "tra", "pre", "con", "dis", "ent",
]  # fmt: skip


def make_vocab(size: int, rng: random.Random) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


class Corpus:
    """Seeded generator of instruction-like texts and of near-duplicate edits of them."""

    def __init__(self, seed: int, k: int, vocab_size: int = 4000):
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.k = k
        self.vocab = make_vocab(vocab_size, self.rng)
        weights = 1.0 / np.arange(1, vocab_size + 1) ** 1.05
        self.probs = weights / weights.sum()
        self.cdf = np.cumsum(self.probs).tolist()
        self.seen: set[str] = set()  # every text made so far: no exact duplicates, across batches too

    def originals(self, count: int) -> list[str]:
        lengths = self.np_rng.integers(20, 81, count)
        templates = self.np_rng.integers(0, len(TEMPLATES), count)
        body = self.np_rng.choice(len(self.vocab), size=int(lengths.sum()), p=self.probs).tolist()
        texts, at = [], 0
        for length, t in zip(lengths.tolist(), templates.tolist()):
            head = TEMPLATES[t].split()
            words = head + [self.vocab[j] for j in body[at : at + length - len(head)]]
            at += length - len(head)
            texts.append(" ".join(words))
        return texts

    def near_duplicate(self, text: str) -> tuple[str, float] | None:
        """An edit of ``text`` with true Jaccard >= PLANT_MIN_JACCARD, and that Jaccard."""
        source = text.split()
        source_set = set(word_shingles(text, self.k))
        for attempt in range(50):
            words = list(source)
            max_edits = max(1, len(words) // 15 - attempt // 10)
            for _ in range(self.rng.randint(1, max_edits)):
                op, pos = self.rng.choice("sid"), self.rng.randrange(len(words))
                new = self.vocab[min(bisect.bisect(self.cdf, self.rng.random()), len(self.vocab) - 1)]
                if op == "s":
                    words[pos] = new
                elif op == "i":
                    words.insert(pos, new)
                elif len(words) > 2:
                    del words[pos]
            edited = " ".join(words)
            if edited == text:
                continue
            shingles = set(word_shingles(edited, self.k))
            jaccard = len(shingles & source_set) / len(shingles | source_set)
            if jaccard >= PLANT_MIN_JACCARD:
                return edited, jaccard
        return None

    def batch(self, count: int, dup_rate: float, sources: list[str] | None = None):
        """``count`` texts, and planted: item -> (source, true Jaccard). The source is an earlier
        original item of this batch (an index) or, with ``sources``, a text of ``sources`` (a
        ("stored", index) pair)."""
        fresh = iter(self.originals(count))
        texts: list[str] = []
        planted: dict[int, tuple[object, float]] = {}
        originals: list[int] = []
        for j in range(count):
            pool_size = len(sources) if sources is not None else len(originals)
            if pool_size and self.rng.random() < dup_rate:
                pick = self.rng.randrange(pool_size)
                src_text = sources[pick] if sources is not None else texts[originals[pick]]
                made = self.near_duplicate(src_text)
                if made is not None and made[0] in self.seen:  # an exact duplicate: not our business
                    made = self.near_duplicate(src_text)
                if made is not None and made[0] not in self.seen:
                    self.seen.add(made[0])
                    texts.append(made[0])
                    planted[j] = (("stored", pick) if sources is not None else originals[pick], made[1])
                    next(fresh)
                    continue
            texts.append(next(fresh))
            self.seen.add(texts[-1])
            originals.append(j)
        return texts, planted


def scores(flagged: set[int], truth: set[int]) -> tuple[float, float]:
    hit = len(flagged & truth)
    return (hit / len(truth) if truth else 1.0), (hit / len(flagged) if flagged else 1.0)


def run_baseline(texts: list[str], keys: list[str], settings: DedupSettings) -> tuple[float, set[int]]:
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=settings.threshold, num_perm=settings.num_perm)
    flagged = set()
    for i, (key, text) in enumerate(zip(keys, texts)):
        m = MinHash(num_perm=settings.num_perm, seed=settings.seed)
        for shingle in word_shingles(text, settings.shingle_size):
            m.update(shingle.encode("utf-8"))
        if lsh.query(m):
            flagged.add(i)
        else:
            lsh.insert(key, m)
    return time.perf_counter() - t0, flagged


def mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="n = 20,000: a smoke check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dup-rate", type=float, default=0.1)
    parser.add_argument("--baseline-n", type=int, default=None, help="time the baseline on a subset and extrapolate")
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else args.n
    settings = DedupSettings()
    k = settings.shingle_size

    t0 = time.perf_counter()
    corpus = Corpus(args.seed, k)
    texts, planted = corpus.batch(n, args.dup_rate)
    keys = [instruction_id(t) for t in texts]
    if len(set(keys)) != len(keys):
        raise SystemExit("generated corpus holds exact duplicates; change --seed")
    truth = {j for j, (_, jac) in planted.items() if jac >= settings.threshold}
    print(
        f"corpus: {n:,} texts, {len(truth):,} planted near duplicates "
        f"(true Jaccard {min(j for _, j in planted.values()):.2f}..{max(j for _, j in planted.values()):.2f}), "
        f"generated in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )

    # ours
    hasher = MinHasher.from_settings(settings)
    index = LSHIndex(settings.num_perm, settings.threshold)
    known: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    decisions, sigs = find_near_duplicates(keys, texts, index, known, hasher, settings.threshold)
    ours_s = time.perf_counter() - t0
    ours_flagged = {i for i, d in enumerate(decisions) if d.duplicate_of is not None}
    ours_recall, ours_precision = scores(ours_flagged, truth)
    position = {key: i for i, key in enumerate(keys)}
    linked = sum(1 for i in ours_flagged & truth if position[decisions[i].duplicate_of] == planted[i][0])

    # baseline
    print(f"ours: {ours_s:.1f} s; running the datasketch baseline ...", file=sys.stderr)
    if args.baseline_n and args.baseline_n < n:
        if args.baseline_n < MIN_BASELINE_N:
            raise SystemExit(f"--baseline-n must be at least {MIN_BASELINE_N}")
        subset = sorted(random.Random(args.seed + 1).sample(range(n), args.baseline_n))
        sub_s, _ = run_baseline([texts[i] for i in subset], [keys[i] for i in subset], settings)
        base_s, base_scores = sub_s * n / args.baseline_n, None
        base_note = f"extrapolated x{n / args.baseline_n:.1f} from a seeded random subset of {args.baseline_n:,}"
    else:
        base_s, base_flagged = run_baseline(texts, keys, settings)
        base_scores = scores(base_flagged, truth)
        base_note = "measured on all texts"
    ratio = base_s / ours_s

    # persistent: store the kept signatures, reload, check a next-day batch against the store
    kept = [i for i, d in enumerate(decisions) if d.duplicate_of is None]
    rows = [(keys[i], signature_to_bytes(sigs[i])) for i in kept]
    t0 = time.perf_counter()
    index2, known2 = load_index(rows, settings)
    load_s = time.perf_counter() - t0
    stored_originals = [i for i in kept if i not in planted]
    n2 = max(1000, n // 10)
    texts2, planted2 = corpus.batch(n2, 0.2, sources=[texts[i] for i in stored_originals])
    keys2 = [instruction_id(t) for t in texts2]
    t0 = time.perf_counter()
    decisions2, _ = find_near_duplicates(keys2, texts2, index2, known2, hasher, settings.threshold)
    day2_s = time.perf_counter() - t0
    truth2 = {j for j, (_, jac) in planted2.items() if jac >= settings.threshold}
    flagged2 = {i for i, d in enumerate(decisions2) if d.duplicate_of is not None}
    recall2, precision2 = scores(flagged2, truth2)
    linked2 = sum(
        1 for i in flagged2 & truth2 if decisions2[i].duplicate_of == keys[stored_originals[planted2[i][0][1]]]
    )

    goals = {
        "ratio": ratio >= RATIO_GOAL,
        "recall": ours_recall >= RECALL_GOAL,
        "precision": ours_precision >= PRECISION_GOAL,
        "next-day recall": recall2 >= RECALL_GOAL,
        "next-day precision": precision2 >= PRECISION_GOAL,
    }
    base_r, base_p = (f"{base_scores[0]:.4f}", f"{base_scores[1]:.4f}") if base_scores else ("n/a", "n/a")
    print(
        f"\n## Near-duplicate detection, n = {n:,} (threshold {settings.threshold}, num_perm {settings.num_perm}, "
        f"{k}-word shingles, seed {args.seed})\n"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"numpy {np.__version__}; LSH {index.bands} bands x {index.rows} rows\n"
    )
    print("| pipeline | n | time (s) | texts/s | recall | precision |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| ours (find_near_duplicates) | {n:,} | {ours_s:.2f} | {n / ours_s:,.0f} | {ours_recall:.4f} | "
        f"{ours_precision:.4f} |"
    )
    print(
        f"| datasketch MinHash + MinHashLSH ({base_note}) | {n:,} | {base_s:.2f} | {n / base_s:,.0f} | {base_r} | "
        f"{base_p} |"
    )
    print()
    print("| goal | value | target | result |")
    print("|---|---:|---:|---|")
    print(f"| throughput ratio ours / baseline | {ratio:.1f}x | >= {RATIO_GOAL:.0f}x | {mark(goals['ratio'])} |")
    print(
        f"| recall (planted near duplicates flagged) | {ours_recall:.4f} | >= {RECALL_GOAL} | {mark(goals['recall'])} |"
    )
    print(
        f"| precision (flagged items that are planted) | {ours_precision:.4f} | >= {PRECISION_GOAL} | "
        f"{mark(goals['precision'])} |"
    )
    print(
        f"\nplanted: {len(truth):,}; flagged: {len(ours_flagged):,}; flagged planted items linked to their own "
        f"source: {linked:,}"
    )
    print(f"\n## Persistent store: {len(rows):,} kept signatures reloaded, next-day batch of {n2:,}\n")
    print("| step | items | time (s) | recall | precision |")
    print("|---|---:|---:|---:|---:|")
    print(f"| load_index (bytes rows -> index) | {len(rows):,} | {load_s:.2f} | | |")
    print(
        f"| next-day batch vs store | {n2:,} ({len(truth2):,} planted) | {day2_s:.2f} | {recall2:.4f} | "
        f"{precision2:.4f} |"
    )
    print(f"\nnext-day: flagged {len(flagged2):,}; planted flagged and linked to their own stored source: {linked2:,}")
    failed = [name for name, ok in goals.items() if not ok]
    print(f"\n**{'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}**")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
