"""Benchmark: sequential voting against the full judge panel (battle batch, arena.sequential_voting).

    python bench/bench_sequential_voting.py [--battles 1000] [--judges 5] [--seed 0] [--quick]

Synthetic battles between 4 competitors, judged by a panel of ``--judges`` scripted, deterministic
judges with fixed biases (no models: the point is the number of judge calls, not their speed):

* every response gets a hidden quality, a hash of its text, plus a per-competitor skill;
* a judge sees that quality through its own noise (a hash of judge and prompt), adds its fixed
  bias (a favourite competitor, a position bias towards "A" or "B"), says ``[[Tie]]`` inside its
  tie margin, and writes an unparseable answer a small fixed share of the time (an invalid vote).

Each setting runs the same batch twice through ``run_battle_batch``: once with the full panel and
once with sequential voting (judges asked in a seeded order, stopping once the remaining judges
cannot change the majority). Reported: judge calls used by each and the saving; and the check that
every battle's result (sign of attacker votes minus defender votes over effective votes) is
identical. Goal: identical results in every setting (exit code 1 otherwise); the saving is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
import time
from pathlib import Path

from warriorflow.config import PROMPTS_DIR
from warriorflow.inference.base import Generation, per_item
from warriorflow.method import ids
from warriorflow.method import votes as V
from warriorflow.method.battle_batch import BattleBatchInput
from warriorflow.stages.battle import run_battle_batch

COMPETITORS = {"alpha": 0.15, "bravo": 0.05, "charlie": -0.05, "delta": -0.15}  # skill added to quality
JUDGE_PROFILES = [  # (favourite, favour bonus, position bias towards A (+) or B (-), noise, tie margin, invalid share)
    ("alpha", 0.10, 0.00, 0.20, 0.05, 0.02),
    (None, 0.00, 0.15, 0.25, 0.08, 0.05),
    ("delta", 0.15, -0.10, 0.30, 0.05, 0.03),
    (None, 0.00, 0.00, 0.15, 0.10, 0.00),
    ("bravo", 0.05, 0.05, 0.35, 0.03, 0.08),
    (None, 0.00, -0.20, 0.20, 0.06, 0.02),
    ("charlie", 0.10, 0.10, 0.25, 0.05, 0.04),
]


def _unit(*parts: str) -> float:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big") / 2**64


def _section(prompt: str, label: str) -> str:
    m = re.search(rf"\[Response {label}\]\n(.*?)\n\[End of Response {label}\]", prompt, re.DOTALL)
    return m.group(1) if m else ""


class SyntheticExpert:
    """Answers with a text naming its author; judges with its fixed profile. Deterministic."""

    def __init__(self, name: str, profile=None):
        self.name, self.profile, self.calls = name, profile, 0

    def chat(self, conversations, sampling):
        self.calls += 1
        out = []
        for conv, s in zip(conversations, per_item(sampling, len(conversations))):
            prompt = conv[-1]["content"]
            out.append(Generation(self._judge(prompt) if s.choices else f"by {self.name}: {_unit(self.name, prompt)}",
                                  "stop"))
        return out

    def _quality(self, text: str) -> float:
        author = text.split(":")[0].removeprefix("by ")
        return _unit("quality", text) + COMPETITORS.get(author, 0.0)

    def _judge(self, prompt: str) -> str:
        favourite, bonus, position, noise, margin, invalid = self.profile
        if _unit(self.name, "invalid", prompt) < invalid:
            return "Both answers have merit."
        a, b = _section(prompt, "A"), _section(prompt, "B")
        diff = self._quality(a) - self._quality(b) + position + noise * (2 * _unit(self.name, prompt) - 1)
        if favourite:
            diff += bonus * (a.startswith(f"by {favourite}:") - b.startswith(f"by {favourite}:"))
        if abs(diff) < margin:
            return "[[Tie]]"
        return "[[A]]" if diff > 0 else "[[B]]"

    def complete(self, prompts, sampling):
        raise NotImplementedError

    def close(self):
        pass


def make_batch(n: int, judges: list[str], seed: int, both_orders: bool, sequential: bool) -> BattleBatchInput:
    names = list(COMPETITORS)
    battles = []
    for i in range(n):
        text = f"Synthetic instruction {seed}-{i}: implement something useful"
        iid = ids.instruction_id(text)
        att = names[i % 4]
        dfd = names[(i + 1 + (i // 4) % 3) % 4]
        battles.append({"battle_id": ids.battle_id(iid, att, dfd), "instruction_id": iid, "instruction": text,
                        "attacker": att, "defender": dfd, "judges": judges, "battle_order": i})
    return BattleBatchInput.from_json({"run_id": f"bench-{seed}", "battles": battles, "arena": {
        "seed": seed, "both_orders": both_orders, "sequential_voting": sequential}})


def result(battle: dict) -> int:
    v = list(battle["effective_votes"].values())
    return (v.count(V.ATTACKER) > v.count(V.DEFENDER)) - (v.count(V.ATTACKER) < v.count(V.DEFENDER))


def run(batch: BattleBatchInput, judges: list[str], template: str) -> tuple[dict, int, int, float]:
    backends = {n: SyntheticExpert(n) for n in COMPETITORS}
    backends |= {j: SyntheticExpert(j, JUDGE_PROFILES[i % len(JUDGE_PROFILES)]) for i, j in enumerate(judges)}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        records = run_battle_batch(batch, backends, Path(tmp), template)
        elapsed = time.perf_counter() - t0
    battles = [r for r in records if r["type"] == "battle"]
    calls = sum(b["judge_calls"] for b in battles)
    batched_calls = sum(backends[j].calls for j in judges)
    return {b["battle_id"]: result(b) for b in battles}, calls, batched_calls, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--battles", type=int, default=1000)
    parser.add_argument("--judges", type=int, default=5, help="panel size (3-7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="200 battles")
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.battles
    template = (PROMPTS_DIR / "battle_judge.txt").read_text()
    judges = [f"judge-{i}" for i in range(max(3, min(7, args.judges)))]

    print(f"\n## Sequential voting vs full panel: {n:,} battles, {len(judges)} judges, seed {args.seed}\n")
    print("| mode | judge calls (full) | judge calls (sequential) | saved | batched calls full / seq "
          "| decisive battles | identical results |")
    print("|---|---:|---:|---:|---:|---:|---|")
    failed = []
    for both in (False, True):
        full_res, full_calls, full_batched, _ = run(make_batch(n, judges, args.seed, both, False), judges, template)
        seq_res, seq_calls, seq_batched, _ = run(make_batch(n, judges, args.seed, both, True), judges, template)
        same = full_res == seq_res
        if not same:
            failed.append(f"results differ ({'both orders' if both else 'one order'})")
        decisive = sum(1 for r in full_res.values() if r != 0)
        print(f"| {'both orders' if both else 'one order'} | {full_calls:,} | {seq_calls:,} "
              f"| {1 - seq_calls / full_calls:.1%} | {full_batched} / {seq_batched} | {decisive:,} / {n:,} "
              f"| {'PASS' if same else 'FAIL'} |")
    print(f"\n**{'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}**")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
