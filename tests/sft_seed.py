"""Seed a rating store with a small, real-looking arena (instructions, responses, battles, votes), then
let the real rate stage compute ratings and gold: the input of snapshots and training tests."""

from __future__ import annotations

from warriorflow.method import ids
from warriorflow.stages.cycles import rate_and_select_gold

EXPERTS = ("alpha", "beta", "gamma")

PROBLEMS = [
    ("Write a Python function `add(a, b)` that returns the sum of two integers.",
     "def add(a, b):\n    return a + b\n", "def add(a, b):\n    result = a\n    result += b\n    return result\n"),
    ("Write a function `is_even(n)` that tells whether an integer is even.",
     "def is_even(n):\n    return n % 2 == 0\n",
     "def is_even(n):\n    if n % 2 == 0:\n        return True\n    return False\n"),
    ("Write `reverse(s)` that returns the string s reversed.",
     "def reverse(s):\n    return s[::-1]\n", "def reverse(s):\n    return ''.join(reversed(s))\n"),
    ("Write `square_all(xs)` returning the squares of a list of numbers.",
     "def square_all(xs):\n    return [x * x for x in xs]\n",
     "def square_all(xs):\n    return list(map(lambda x: x ** 2, xs))\n"),
    ("Write `count_vowels(s)` that counts the vowels in a string.",
     "def count_vowels(s):\n    return sum(c in 'aeiouAEIOU' for c in s)\n",
     "def count_vowels(s):\n    n = 0\n    for c in s:\n"
     "        if c.lower() in 'aeiou':\n            n += 1\n    return n\n"),
    ("Write `factorial(n)` computing n! iteratively.",
     "def factorial(n):\n    out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out\n",
     "import math\n\ndef factorial(n):\n    return math.factorial(n)\n"),
]


def seed_arena(store, problems=PROBLEMS, run_id: str = "seed-run", first_order: int = 0) -> None:
    """Insert a finished arena over ``problems``: the miner attacks, the next expert defends, the third judges."""
    instructions, responses, battles, votes = [], [], [], []
    for n, (text, good, other) in enumerate(problems):
        attacker, defender = EXPERTS[n % 3], EXPERTS[(n + 1) % 3]
        judge = EXPERTS[(n + 2) % 3]
        iid = ids.instruction_id(text)
        instructions.append({"instruction_id": iid, "text": text, "expert": attacker, "temperature": 1.0,
                             "top_p": 0.99, "seed": n, "prefix_sha256": "p", "mined_at": "2026-11-20 00:00:00",
                             "run_id": run_id, "status": "selected", "difficulty": 6.0 + n % 3})
        rids = {}
        for expert, body in ((attacker, good if n % 2 == 0 else other), (defender, other if n % 2 == 0 else good)):
            rid = ids.response_id(text, expert, {"temperature": 0.7}, 0)
            rids[expert] = rid
            responses.append({"response_id": rid, "instruction_id": iid, "expert": expert, "text": body,
                              "sampling": {"temperature": 0.7}, "seed": 0, "run_id": run_id})
        bid = ids.battle_id(text, attacker, defender)
        battles.append({"battle_id": bid, "instruction_id": iid, "attacker": attacker, "defender": defender,
                        "attacker_response_id": rids[attacker], "defender_response_id": rids[defender],
                        "battle_order": first_order + n, "status": "done", "run_id": run_id})
        verdict = "attacker" if n % 2 == 0 else "defender"
        for order in ("attacker_first", "defender_first"):
            votes.append({"vote_id": ids.vote_id(bid, judge, order), "battle_id": bid, "judge": judge,
                          "shown_order": order, "verdict": verdict, "run_id": run_id})
    store.upsert("instructions", instructions, key=["instruction_id"])
    store.upsert("responses", responses, key=["response_id"])
    store.upsert("battles", battles, key=["battle_id"])
    store.upsert("votes", votes, key=["vote_id"])


def seed_and_rate(cfg, store, problems=PROBLEMS, run_id: str = "seed-run", first_order: int = 0) -> None:
    seed_arena(store, problems, run_id, first_order)
    rate_and_select_gold(cfg, store, run_id)


FORMAT1_ID = "2026-01-01T00-00-00Z-0000f001"  # sorts before every snapshot the tests create


def publish_format1_snapshot(objects, snapshot_id: str) -> str:
    """Publish the gold SFT pairs of snapshot ``snapshot_id`` as a format-1 snapshot (what was published before
    the preferences and responses datasets: data/train.*, the lineage, no `datasets` in the manifest); return
    its id, FORMAT1_ID."""
    from warriorflow.store import snapshots
    from warriorflow.store.objects import join_key, publish, read_manifest

    m = read_manifest(objects, snapshots.prefix(snapshot_id))
    files = {n: objects.get_bytes(join_key(snapshots.prefix(snapshot_id), n))
             for n in (snapshots.PARQUET, snapshots.JSONL, snapshots.BATTLES)}
    manifest = {k: v for k, v in m.items() if k not in ("files", "published_at", "datasets", "card")}
    manifest.update(format_version=1, snapshot_id=FORMAT1_ID,
                    counts={k: m["counts"][k] for k in ("examples", "battles", "votes", "examples_by_expert")})
    publish(objects, snapshots.prefix(FORMAT1_ID), files, manifest)
    return FORMAT1_ID
