"""Benchmark: near-duplicate detection (dedup stage) against datasketch MinHash + MinHashLSH.

    python bench/bench_dedup.py [--n 200000] [--quick] [--seed 0] [--dup-rate 0.1] [--baseline-n N]
                                [--baseline both|batch|per-shingle] [--json bench/results/dedup.json]

Data (seeded): ``n`` instruction-like texts of 20-80 words: an opening phrase from a few dozen
templates ("write a python function that ...") then words drawn Zipf-like from a vocabulary of
4,000 made-up words, so unrelated texts share a few common shingles but are far from similar.
About ``dup-rate`` of the items are PLANTED near duplicates: a copy of an earlier original item with
a few word substitutions / insertions / deletions, redrawn until its true word-3-shingle Jaccard to
the source is >= 0.7 (and the text is new: exact duplicates are another stage's business).
The truth is the set of planted items whose true Jaccard to their source is >= the threshold (0.5).

Measured in one process, both end to end from the raw texts to keep/drop decisions in order:

* **ours**: ``find_near_duplicates`` (batched MinHash signatures, LSH, estimated-Jaccard check).
* **reference** (the real package, ``datasketch`` as locked in requirements/lock.txt): what the
  WarriorCoder paper describes: per text a ``datasketch.MinHash(num_perm=128)`` over the same
  ``word_shingles``, then ``MinHashLSH(threshold=0.5, num_perm=128)``: query, flag the item if there is
  any candidate, else insert it. Run two ways (``--baseline``): feeding each text's shingles with
  ``MinHash.update_batch`` (datasketch's vectorised path; the headline ratio) and with ``update`` per
  shingle (the usual tutorial loop; the ratio earlier versions of this file reported). Both give the
  same signatures, so they flag the same items. With ``--baseline-n N`` (< n, >= 20k) they run on a
  seeded random subset of N texts and their time is extrapolated linearly to n (recall/precision are
  then not reported).

Recall = flagged planted items / planted items; precision = flagged planted items / flagged items.
Then the persistent path: the kept signatures are serialised (``signature_to_bytes``), reloaded with
``load_index`` (timed), and a "next day" batch of n/10 new texts, 20% of them near duplicates of
stored originals, is checked against the reloaded store (timed, recall/precision).

Prints markdown tables; exits 1 when a goal fails (speed ratio >= 5 vs the headline datasketch run, recall >= 0.95,
precision >= 0.95, for the main run and the next-day run).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import random
import sys
import time
from importlib.metadata import version
from pathlib import Path

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
datasketch_version = version("datasketch")
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


def run_baseline(texts: list[str], keys: list[str], settings: DedupSettings, batch: bool = False
                 ) -> tuple[float, set[int]]:
    """datasketch MinHash + MinHashLSH, query-then-insert per text. ``batch``: hash a text's shingles with
    ``MinHash.update_batch`` (one vectorised permutation pass) instead of ``update`` per shingle."""
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    lsh = MinHashLSH(threshold=settings.threshold, num_perm=settings.num_perm)
    flagged = set()
    for i, (key, text) in enumerate(zip(keys, texts)):
        m = MinHash(num_perm=settings.num_perm, seed=settings.seed)
        if batch:
            m.update_batch([shingle.encode("utf-8") for shingle in word_shingles(text, settings.shingle_size)])
        else:
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
    parser.add_argument("--baseline-n", type=int, default=None, help="time the baselines on a subset and extrapolate")
    parser.add_argument("--baseline", choices=("both", "batch", "per-shingle"), default="both",
                        help="which datasketch feeding to run (default both)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of ours (best of)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    n = 20_000 if args.quick else args.n
    settings = DedupSettings()
    k = settings.shingle_size
    load_start = os.getloadavg()[0]

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

    # ours, best of --repeat (fresh index each run; the machine may be shared)
    hasher = MinHasher.from_settings(settings)
    ours_runs = []
    for _ in range(args.repeat):
        index = LSHIndex(settings.num_perm, settings.threshold)
        known: dict[str, np.ndarray] = {}
        t0 = time.perf_counter()
        decisions, sigs = find_near_duplicates(keys, texts, index, known, hasher, settings.threshold)
        ours_runs.append(time.perf_counter() - t0)
    ours_s = min(ours_runs)
    ours_flagged = {i for i, d in enumerate(decisions) if d.duplicate_of is not None}
    ours_recall, ours_precision = scores(ours_flagged, truth)
    position = {key: i for i, key in enumerate(keys)}
    linked = sum(1 for i in ours_flagged & truth if position[decisions[i].duplicate_of] == planted[i][0])

    # the reference: real datasketch, two ways of feeding MinHash (update per shingle; update_batch)
    variants = [("update_batch", True), ("update per shingle", False)]
    if args.baseline == "batch":
        variants = variants[:1]
    elif args.baseline == "per-shingle":
        variants = variants[1:]
    if args.baseline_n and args.baseline_n < n:
        if args.baseline_n < MIN_BASELINE_N:
            raise SystemExit(f"--baseline-n must be at least {MIN_BASELINE_N}")
        subset = sorted(random.Random(args.seed + 1).sample(range(n), args.baseline_n))
    baselines: dict[str, dict] = {}
    for name, batch in variants:
        print(f"ours: {ours_s:.1f} s; running datasketch ({name}) ...", file=sys.stderr, flush=True)
        if args.baseline_n and args.baseline_n < n:
            sub_s, _ = run_baseline([texts[i] for i in subset], [keys[i] for i in subset], settings, batch)
            base = {"seconds": sub_s * n / args.baseline_n, "seconds_measured": sub_s, "measured_on": args.baseline_n,
                    "note": f"extrapolated x{n / args.baseline_n:.1f} from a seeded random subset of "
                            f"{args.baseline_n:,}", "recall": None, "precision": None, "flagged": None}
        else:
            base_s, base_flagged = run_baseline(texts, keys, settings, batch)
            r, p = scores(base_flagged, truth)
            base = {"seconds": base_s, "seconds_measured": base_s, "measured_on": n, "note": "measured on all texts",
                    "recall": r, "precision": p, "flagged": base_flagged}
        base["ratio"] = base["seconds"] / ours_s
        baselines[name] = base
        print(f"datasketch ({name}): {base['seconds']:.1f} s", file=sys.stderr, flush=True)
    same_flags = None
    if len(baselines) == 2 and all(b["flagged"] is not None for b in baselines.values()):
        same_flags = baselines["update_batch"]["flagged"] == baselines["update per shingle"]["flagged"]
    headline = baselines.get("update_batch") or baselines["update per shingle"]
    ratio = headline["ratio"]

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
    print(
        f"\n## Near-duplicate detection, n = {n:,} (threshold {settings.threshold}, num_perm {settings.num_perm}, "
        f"{k}-word shingles, seed {args.seed})\n"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"numpy {np.__version__}, datasketch {datasketch_version}; LSH {index.bands} bands x {index.rows} rows\n"
    )
    print("| pipeline | n | time (s) | texts/s | recall | precision | ours faster by |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| ours (find_near_duplicates) | {n:,} | {ours_s:.2f} | {n / ours_s:,.0f} | {ours_recall:.4f} | "
        f"{ours_precision:.4f} | |"
    )
    for name, base in baselines.items():
        br, bp = (f"{base['recall']:.4f}", f"{base['precision']:.4f}") if base["recall"] is not None else ("n/a", "n/a")
        print(
            f"| datasketch MinHash ({name}) + MinHashLSH ({base['note']}) | {n:,} | {base['seconds']:.2f} | "
            f"{n / base['seconds']:,.0f} | {br} | {bp} | {base['ratio']:.1f}x |"
        )
    if same_flags is not None:
        print(f"\nthe two datasketch runs flag the same items: {'yes' if same_flags else 'NO'}")
    print()
    print("| goal | value | target | result |")
    print("|---|---:|---:|---|")
    headline_name = "update_batch" if "update_batch" in baselines else "update per shingle"
    print(f"| throughput ratio ours / datasketch ({headline_name}) | {ratio:.1f}x | >= {RATIO_GOAL:.0f}x | "
          f"{mark(goals['ratio'])} |")
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
    if args.json:
        result = {
            "bench": "dedup",
            "env": {"python": platform.python_version(), "numpy": np.__version__, "datasketch": datasketch_version,
                    "cores": len(os.sched_getaffinity(0)), "load_1min_at_start": load_start},
            "load_1min_at_end": os.getloadavg()[0],
            "sizes": {"n": n, "planted": len(truth), "seed": args.seed, "dup_rate": args.dup_rate,
                      "threshold": settings.threshold, "num_perm": settings.num_perm, "shingle_size": k},
            "ours": {"seconds": ours_s, "runs": ours_runs, "recall": ours_recall, "precision": ours_precision,
                     "flagged": len(ours_flagged), "linked_to_own_source": linked},
            "reference": {
                name: {kk: (len(v) if kk == "flagged" and v is not None else v) for kk, v in base.items()}
                | {"name": f"datasketch MinHash ({name}) + MinHashLSH, query then insert per text"}
                for name, base in baselines.items()},
            "datasketch_variants_flag_the_same_items": same_flags,
            "ratios": {f"vs_datasketch_{name.replace(' ', '_')}": base["ratio"] for name, base in baselines.items()},
            "headline_ratio": {"vs": headline_name, "ratio": ratio},
            "persistent": {"kept": len(rows), "load_index_seconds": load_s, "next_day_n": n2,
                           "next_day_seconds": day2_s, "next_day_recall": recall2, "next_day_precision": precision2},
            "goals": {name: bool(ok) for name, ok in goals.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
