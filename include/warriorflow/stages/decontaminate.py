"""Decontaminate: drop instructions sharing n-grams with HumanEval, MBPP+ or CRUXEval; record the overlaps.

The judge calibration pairs (``<home>/calibration/pairs.jsonl``, written by `warriorflow judges make-pairs`)
count as one more benchmark (``judge-pairs``) when the file exists, so no calibration item reaches training
data."""

from __future__ import annotations

from warriorflow.config import Config
from warriorflow.method.decontamination import NGramIndex, contamination_rate, decontaminate
from warriorflow.stages.base import CLEAN, SCORED, advance, at_status, drop, stage
from warriorflow.store.benchmarks import load_benchmarks, load_jsonl
from warriorflow.store.rating_store import RatingStore

CALIBRATION_BENCHMARK = "judge-pairs"


def calibration_pairs_file(config: Config):
    """Where `warriorflow judges make-pairs` writes by default (and `judges calibrate` reads)."""
    return config.home / "calibration" / "pairs.jsonl"


@stage("decontaminate")
def decontaminate_stage(config: Config, store: RatingStore, run_id: str) -> dict[str, int | float]:
    s = config.settings.decontamination
    todo = at_status(store, SCORED)
    index = NGramIndex(s.ngram)
    index.add(load_benchmarks(s, config.repo_path))
    pairs = calibration_pairs_file(config)
    if pairs.is_file():
        index.add(load_jsonl(pairs, CALIBRATION_BENCHMARK, ["instruction", "response_a", "response_b"],
                             fix="rewrite it with `warriorflow judges make-pairs`"))
    decisions = decontaminate([(r["instruction_id"], r["text"]) for r in todo], index, s.min_shared)
    store.upsert("contamination", [
        {"instruction_id": d.instruction_id, "benchmark": b, "task_id": m.task_id, "ngram": s.ngram,
         "shared_ngrams": m.shared, "overlap": m.overlap, "run_id": run_id}
        for d in decisions for b, m in d.per_benchmark.items()], key=["instruction_id", "benchmark"])
    by_id = {r["instruction_id"]: r for r in todo}
    dirty = [dict(by_id[d.instruction_id], benchmark=d.best.benchmark, task_id=d.best.task_id)
             for d in decisions if d.contaminated]
    advance(store, (by_id[d.instruction_id] for d in decisions if not d.contaminated), CLEAN)
    drop(store, "decontaminate", {"contaminated": dirty}, run_id)
    return {"input": len(todo), "kept": len(todo) - len(dirty), "dropped_contaminated": len(dirty),
            "contamination_rate_pct": round(100 * contamination_rate(decisions), 2) if decisions else 0}
