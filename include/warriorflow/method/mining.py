"""Completion-based instruction mining (WarriorCoder step 1).

An expert is given only the prefix of its chat template (or a few-shot prompt, for a base model) and
completes it: what it writes is a user instruction it has learned. Each run samples the sampling
grid (temperature x top_p, ``samples_per_config`` each) with seeds derived from the run id, so every
daily run draws new samples and any run can be reproduced exactly.

Sanitising cuts where the model starts answering itself and drops what is not an instruction. Every
dropped record is kept with its reason, in the manner of datatrove's exclusion writers.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from warriorflow.config import MiningSettings
from warriorflow.method import ids
from warriorflow.method.backend import Backend, Sampling


@dataclass(frozen=True)
class MiningPrompt:
    expert: str
    mode: str  # "chat_template" | "few_shot"
    text: str
    stops: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


FEW_SHOT_STOPS = ("\nQuestion:", "\n\n\n", "\nAnswer:")



# Markers of a turn boundary in the common chat formats: text after one is the model answering itself.
TURN_MARKERS = (
    "<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|start_header_id|>", "<start_of_turn>", "<end_of_turn>",
    "<|endoftext|>", "<|end|>", "<|assistant|>", "<|user|>", "</s>", "<eos>",
    "### Response:", "### Instruction:", "\nAssistant:", "\nASSISTANT:", "\nUser:", "\nUSER:",
)

DROP_EMPTY = "empty"
DROP_TOO_SHORT = "too_short"
DROP_TOO_LONG = "too_long"
DROP_TRUNCATED = "truncated"
DROP_CODE_ONLY = "code_only"

_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import |return\b|print\(|for .+:\s*$|while .+:\s*$|if .+:\s*$|"
    r"elif .+:\s*$|else:\s*$|try:\s*$|except\b|[A-Za-z_][\w.\[\]]*\s*[+\-*/]?=\s*\S|#include|[{};]\s*$)"
)


@dataclass(frozen=True)
class GridPoint:
    temperature: float
    top_p: float
    sample: int
    seed: int


def sample_seed(run_id: str, base_seed: int, expert: str, temperature: float, top_p: float, sample: int) -> int:
    """A 31-bit seed, stable across processes, unique per run / expert / grid point / sample."""
    key = f"{run_id}|{base_seed}|{expert}|{temperature!r}|{top_p!r}|{sample}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF


def sampling_grid(settings: MiningSettings, run_id: str, expert: str) -> list[GridPoint]:
    return [
        GridPoint(t, p, i, sample_seed(run_id, settings.seed, expert, t, p, i))
        for t in settings.temperatures
        for p in settings.top_ps
        for i in range(settings.samples_per_config)
    ]


def code_fraction(text: str) -> float:
    """Share of characters that are code: fenced blocks, plus code-looking lines outside fences."""
    if not text:
        return 0.0
    fenced = sum(len(m.group(0)) for m in _FENCE.finditer(text))
    rest = _FENCE.sub("", text)
    code_lines = sum(len(line) + 1 for line in rest.splitlines() if line.strip() and _CODE_LINE.match(line))
    return min(1.0, (fenced + code_lines) / len(text))


def cut_self_answer(text: str, stops: Sequence[str], mode: str) -> str:
    """Cut at the first turn marker or stop string; a few-shot (run-on) completion ends at its first newline."""
    cut = len(text)
    for marker in (*stops, *TURN_MARKERS):
        if marker:
            at = text.find(marker)
            if at != -1:
                cut = min(cut, at)
    text = text[:cut]
    if mode == "few_shot":
        text = text.strip().split("\n", 1)[0]
    return text.strip()


def sanitize(raw: str, finish_reason: str, stops: Sequence[str], mode: str,
             settings: MiningSettings) -> tuple[str | None, str | None]:
    """(instruction, None) or (None, drop reason)."""
    text = cut_self_answer(raw, stops, mode)
    if not text:
        return None, DROP_EMPTY
    # Hitting max_tokens without reaching the end of the turn (and without a marker to cut at) leaves
    # an instruction that stops mid-sentence.
    if finish_reason == "length" and text == raw.strip():
        return None, DROP_TRUNCATED
    if len(text) < settings.min_chars:
        return None, DROP_TOO_SHORT
    if len(text) > settings.max_chars:
        return None, DROP_TOO_LONG
    if code_fraction(text) > settings.max_code_fraction:
        return None, DROP_CODE_ONLY
    return text, None


@dataclass
class MineResult:
    expert: str
    records: list[dict] = field(default_factory=list)  # rows for the `instructions` table
    dropped: list[dict] = field(default_factory=list)  # rows for the `dropped_records` table

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(d["reason"] for d in self.dropped)
        total = len(self.records) + len(self.dropped)
        return {"generated": total, "kept": len(self.records), **dict(sorted(c.items()))}


def mine_expert(backend: Backend, prompt: MiningPrompt, settings: MiningSettings, run_id: str,
                now: datetime | None = None) -> MineResult:
    """Sample the whole grid for one expert in one batched call; sanitise; keep provenance."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    grid = sampling_grid(settings, run_id, prompt.expert)
    samplings = [Sampling(max_tokens=settings.max_tokens, temperature=g.temperature, top_p=g.top_p, seed=g.seed,
                          stop=prompt.stops) for g in grid]
    generations = backend.complete([prompt.text] * len(grid), samplings)
    result = MineResult(prompt.expert)
    for g, gen in zip(grid, generations):
        provenance = {"expert": prompt.expert, "temperature": g.temperature, "top_p": g.top_p, "seed": g.seed,
                      "prefix_sha256": prompt.sha256, "mode": prompt.mode, "mined_at": now.isoformat(sep=" "),
                      "run_id": run_id, "finish_reason": gen.finish_reason}
        text, reason = sanitize(gen.text, gen.finish_reason, prompt.stops, prompt.mode, settings)
        if reason is not None:
            result.dropped.append({
                "record_id": ids.record_id("mine", run_id, prompt.expert, g.temperature, g.top_p, g.seed),
                "stage": "mine", "reason": reason, "expert": prompt.expert, "instruction_id": None,
                "raw_text": gen.text, "provenance": provenance, "run_id": run_id,
            })
            continue
        result.records.append({
            "instruction_id": ids.instruction_id(text), "text": text, "expert": prompt.expert,
            "temperature": g.temperature, "top_p": g.top_p, "seed": g.seed, "prefix_sha256": prompt.sha256,
            "mined_at": now.isoformat(sep=" "), "run_id": run_id,
        })
    return result
