"""Score: judges rate each unique instruction's difficulty 1-10 (constrained); keep medians >= keep_min.

The judges' outputs go to ``runs/RUN/score/scores.jsonl`` first (a re-run after a crash reuses the
file), then through the ingest loop and its Great Expectations gate: a failing file is quarantined and
the step fails, naming the expectations.
"""

from __future__ import annotations

import logging

from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.inference.factory import OpenBackends
from warriorflow.method.difficulty import aggregate, check_template, eligible_judges, score_instructions
from warriorflow.method.progress import Progress
from warriorflow.quality.gates import gate_scored, rejection
from warriorflow.stages.base import SCORED, UNIQUE, advance, at_status, drop, stage
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.keys import score_key
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


def score_prompt(config: Config) -> str:
    path = config.prompt_path(config.settings.difficulty.prompt)
    template = path.read_text(encoding="utf-8")
    check_template(template, f"difficulty prompt {path}")
    return template


@stage("score")
def score_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str,
                progress: Progress = log.info) -> dict[str, int]:
    s = config.settings.difficulty
    todo = at_status(store, UNIQUE)
    key = score_key(run_id)
    if todo and not objects.exists(key):
        judges = sorted({j.name for ins in todo for j in eligible_judges(ins["expert"], config.registry)})
        template = score_prompt(config)
        with OpenBackends(config) as backends:
            progress(f"score: {len(todo)} instructions, judges {judges} ...")
            rows = score_instructions(todo, config.registry, backends, template, config.settings.mining.language,
                                      run_id, s.max_judges)
        objects.put_bytes(key, encode_jsonl(rows))

    def check(rows: list[dict]) -> Rejection | None:
        gate = gate_scored(rows)
        return None if gate.success else rejection(gate)

    rows: list[dict] = []

    def merge(_key: str, file_rows: list[dict]) -> None:
        store.upsert("difficulty_scores", file_rows, key=["instruction_id", "judge"])
        rows.extend(file_rows)

    if todo and objects.exists(key):
        report = ingest_files(store, objects, [key], kind="difficulty_scores", stage="score", merge=merge,
                              check=check)
        if report.quarantined:
            raise StoreError(objects.uri(key),
                             f"failed its quality gate and was quarantined: {report.quarantined[key]}",
                             "see the GX result JSON beside the quarantined file; fix the judge backend and re-run")
        if report.skipped:  # merged by an earlier attempt: its scores are still this run's input
            rows = decode_jsonl(objects.get_bytes(key))
    verdicts = aggregate([r["instruction_id"] for r in todo], rows, s.keep_min)
    by_id = {r["instruction_id"]: r for r in todo}
    kept = [v for v in verdicts if v.keep]
    store.update("instructions", "instruction_id",
                 [{"instruction_id": v.instruction_id, "difficulty": v.median} for v in verdicts])
    advance(store, ({"instruction_id": v.instruction_id} for v in kept), SCORED)
    drops: dict[str, list[dict]] = {}
    for v in verdicts:
        if not v.keep:
            drops.setdefault(v.reason, []).append(dict(by_id[v.instruction_id], difficulty=v.median))
    drop(store, "score", drops, run_id)
    return {"input": len(todo), "scores": len(rows), "invalid_scores": sum(not r["valid"] for r in rows),
            "kept": len(kept), **{f"dropped_{k}": len(v) for k, v in sorted(drops.items())}}
