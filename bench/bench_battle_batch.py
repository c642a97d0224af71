"""Benchmark: a battle batch against the raw llama.cpp engine generating the same tokens.

    python bench/bench_battle_batch.py [--instructions 8] [--max-tokens 64] [--repeats 2] [--both-orders] [--quick]

Real models from the embedded registry, llama.cpp on CPU (the settings' threads / n_parallel):
SmolLM2-135M-Instruct against Qwen2.5-Coder-0.5B-Instruct on ``--instructions`` coding instructions
(the attacker alternates), judged by SmolLM2 (constrained to ``[[A]]``/``[[B]]``/``[[Tie]]``).

* **ours**: ``run_battle_batch`` end to end (response planning, one batched chat call per expert,
  judge prompts, constrained judging, verdict parsing, checkpoint appends with fsync, output records),
  on ``LlamaCppBackend`` objects built by the factory. A thin recorder between the batch and the
  backends logs every call (conversations, sampling, generations) for the replay.
* **raw**: the same calls replayed straight into the same in-process engines
  (``xllamacpp.Server.handle_chat_completions``), in the same order and with the same concurrency
  (``n_parallel`` requests in flight), the same messages, seeds, temperature, top_p and grammar, and
  ``max_tokens`` set to the token count each response produced in our run, with ``ignore_eos``
  (judge calls keep their grammar, which ends the output itself): the same number of tokens.

An untimed warm-up run comes first; then ``--repeats`` rounds of (ours, raw) alternating which goes
first (prompt caches favour whoever runs second). Throughput = generated tokens / wall time; goal:
median ours / median raw >= 0.9 (exit code 1 otherwise).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from warriorflow.config import load_config
from warriorflow.inference.base import fan_out, per_item
from warriorflow.inference.factory import backend_for
from warriorflow.inference.openai_format import chat_body
from warriorflow.method import ids
from warriorflow.method.battle_batch import BattleBatchInput
from warriorflow.stages.battle import run_battle_batch

GOAL = 0.9
SMOLLM2, QWEN = "smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"
INSTRUCTIONS = [
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "Write a Python function that checks whether a string is a palindrome, ignoring case and spaces.",
    "Write a Python function that merges two sorted lists into one sorted list.",
    "Write a Python function that counts the vowels in a string.",
    "Write a Python function that returns the second largest number in a list.",
    "Write a Python function that flattens a nested list of integers.",
    "Write a Python function that removes duplicates from a list while keeping the order.",
    "Write a Python function that converts a Roman numeral to an integer.",
    "Write a Python function that computes the greatest common divisor of two integers.",
    "Write a Python function that transposes a matrix given as a list of lists.",
    "Write a Python function that checks whether two strings are anagrams.",
    "Write a Python function that returns all prime numbers below n.",
]


class Recorder:
    """Passes calls to a backend and logs (name, conversations, samplings, generations)."""

    def __init__(self, backend, log: list):
        self.backend, self.name, self.log = backend, backend.name, log

    def chat(self, conversations, sampling):
        gens = self.backend.chat(conversations, sampling)
        self.log.append((self.name, list(conversations), per_item(sampling, len(conversations)), gens))
        return gens

    def complete(self, prompts, sampling):
        raise NotImplementedError

    def close(self):
        pass


def make_batch(n: int, max_tokens: int, both_orders: bool) -> BattleBatchInput:
    battles = []
    for i, text in enumerate((INSTRUCTIONS * (n // len(INSTRUCTIONS) + 1))[:n]):
        text = text if i < len(INSTRUCTIONS) else f"{text} (variant {i})"
        iid = ids.instruction_id(text)
        att, dfd = (SMOLLM2, QWEN) if i % 2 == 0 else (QWEN, SMOLLM2)
        battles.append({"battle_id": ids.battle_id(iid, att, dfd), "instruction_id": iid, "instruction": text,
                        "attacker": att, "defender": dfd, "judges": [SMOLLM2], "battle_order": i})
    return BattleBatchInput.from_json({"run_id": "bench", "battles": battles, "arena": {
        "response_max_tokens": max_tokens, "both_orders": both_orders, "judge_max_tokens": 8, "seed": 0}})


def run_ours(batch, backends, template) -> tuple[float, int, list]:
    log: list = []
    recorders = {name: Recorder(b, log) for name, b in backends.items()}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        records = run_battle_batch(batch, recorders, Path(tmp), template)
        elapsed = time.perf_counter() - t0
    assert sum(r["type"] == "battle" for r in records) == len(batch.battles)
    tokens = sum(g.completion_tokens for _, _, _, gens in log for g in gens)
    return elapsed, tokens, log


def run_raw(log: list, backends, n_parallel: int) -> tuple[float, int]:
    """Replay the logged calls into the engines directly, forcing each response's token count."""
    plans = []
    for name, convs, samplings, gens in log:
        bodies = []
        for conv, s, g in zip(convs, samplings, gens):
            body = chat_body(None, conv, s, "llamacpp")
            if not s.choices:
                body["max_tokens"] = max(1, g.completion_tokens)
                body["ignore_eos"] = True
            bodies.append(body)
        plans.append((backends[name]._server, bodies))
    tokens = 0
    t0 = time.perf_counter()
    for server, bodies in plans:
        for resp in fan_out(server.handle_chat_completions, bodies, n_parallel):
            tokens += int(resp["usage"]["completion_tokens"])
    return time.perf_counter() - t0, tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instructions", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--both-orders", action="store_true")
    parser.add_argument("--quick", action="store_true", help="4 instructions, 32 tokens, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.instructions, args.max_tokens, args.repeats = 4, 32, 1
    config = load_config()
    template = config.prompt_path(config.settings.arena.judge_prompt).read_text()
    ll = config.settings.inference.llamacpp
    batch = make_batch(args.instructions, args.max_tokens, args.both_orders)
    print(f"loading {SMOLLM2} and {QWEN} (threads {ll.threads}, n_parallel {ll.n_parallel}) ...", file=sys.stderr)
    backends = {name: backend_for(config.registry.get(name), config) for name in (SMOLLM2, QWEN)}
    try:
        print("warm-up run ...", file=sys.stderr)
        run_ours(batch, backends, template)
        ours, raw = [], []
        for rep in range(args.repeats):
            for who in (("ours", "raw") if rep % 2 == 0 else ("raw", "ours")):
                if who == "ours":
                    seconds, tokens, log = run_ours(batch, backends, template)
                    ours.append((seconds, tokens))
                else:  # replays the latest run of ours (rep 0 runs ours first)
                    seconds, tokens = run_raw(log, backends, ll.n_parallel)
                    raw.append((seconds, tokens))
                print(f"  {who}: {seconds:.2f} s, {tokens} tokens", file=sys.stderr)
    finally:
        for b in backends.values():
            b.close()

    def rate(runs):
        return statistics.median(t / s for s, t in runs)

    ratio = rate(ours) / rate(raw)
    calls = len(log)
    items = sum(len(c) for _, c, _, _ in log)
    print(f"\n## Battle batch vs raw llama.cpp engine: {len(batch.battles)} battles "
          f"({SMOLLM2} vs {QWEN}, judge {SMOLLM2}, {'both orders' if args.both_orders else 'one order'}), "
          f"{args.max_tokens} max tokens, {calls} batched calls / {items} requests, "
          f"threads {ll.threads}, n_parallel {ll.n_parallel}\n")
    print("| pipeline | runs | median wall (s) | generated tokens | median tokens/s |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in (("ours: run_battle_batch", ours), ("raw: xllamacpp handle_chat_completions", raw)):
        print(f"| {name} | {len(runs)} | {statistics.median(s for s, _ in runs):.2f} | "
              f"{statistics.median(t for _, t in runs):.0f} | {rate(runs):.1f} |")
    ok = ratio >= GOAL
    print("\n| goal | value | target | result |")
    print("|---|---:|---:|---|")
    print(f"| throughput ours / raw | {ratio:.3f}x | >= {GOAL}x | {'PASS' if ok else 'FAIL'} |")
    print(f"\n**{'PASS' if ok else 'FAIL'}**")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
