"""Score: judges rate each unique instruction's difficulty 1-10 (constrained); keep medians >= keep_min.

Two writer steps around the score jobs (one per judge and shard, :mod:`warriorflow.stages.jobs`):

* :func:`plan_scores_stage` writes, per judge, the unique instructions it must still score (eligible
  judges, at most ``difficulty.max_judges``; scores already stored are not asked again);
* :func:`score_stage` ingests the jobs' result files (each checked against its job and by the Great
  Expectations gate; a failing file is quarantined and the step fails, naming the expectations), then
  decides every unique instruction whose judges have all scored it: kept (``scored``) or dropped with
  its reason. An instruction still missing a score (its job failed) stays ``unique`` and is asked
  again next run.
"""

from __future__ import annotations

from collections import defaultdict

from warriorflow.config import Config
from warriorflow.method.difficulty import aggregate, check_template, judges_for
from warriorflow.quality.gates import gate_scored, rejection
from warriorflow.stages.base import (
    SCORED,
    UNIQUE,
    Outcome,
    advance,
    at_status,
    drop,
    fail_on_quarantine,
    ingest_outcome,
    stage,
)
from warriorflow.stages.job_plans import answers_its_job, result_keys, write_jobs
from warriorflow.stages.prompt_files import read_prompt
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore


def score_prompt(config: Config) -> str:
    return read_prompt(config, config.settings.difficulty.prompt, check_template, "difficulty.prompt")


def _scores_of(store: RatingStore, instruction_ids: list[str]) -> list[dict]:
    return store.query("SELECT * FROM difficulty_scores WHERE instruction_id IN (SELECT unnest(?))",
                       [instruction_ids])


@stage("plan_scores")
def plan_scores_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Write the score jobs; the value is the jobs (dicts: key, step, model, items)."""
    s = config.settings.difficulty
    todo = at_status(store, UNIQUE)
    have = {(r["instruction_id"], r["judge"]) for r in _scores_of(store, [r["instruction_id"] for r in todo])}
    per_judge: dict[str, list[dict]] = defaultdict(list)
    for ins in todo:
        for judge in judges_for(ins, config.registry, s.max_judges):
            if (ins["instruction_id"], judge.name) not in have:
                per_judge[judge.name].append({"instruction_id": ins["instruction_id"], "text": ins["text"]})
    jobs = []
    if per_judge:
        params = {"template": score_prompt(config), "language": config.settings.mining.language}
        jobs = write_jobs(config, objects, run_id, "score", per_judge, params)
    return Outcome({"unique": len(todo), "score_jobs": len(jobs), "scores_asked": sum(j.items for j in jobs)}, [],
                   [j.to_dict() for j in jobs])


@stage("score")
def score_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Ingest the score jobs' results, then keep or drop every instruction all of whose judges have scored."""
    s = config.settings.difficulty

    def check(rows: list[dict]) -> Rejection | None:
        gate = gate_scored(rows)
        return None if gate.success else rejection(gate)

    def merge(_key: str, rows: list[dict]) -> dict[str, int]:
        store.upsert("difficulty_scores", rows, key=["instruction_id", "judge"])
        return {"scores": len(rows), "invalid_scores": sum(not r["valid"] for r in rows)}

    report = ingest_files(store, objects, result_keys(objects, run_id, "score"), kind="difficulty_scores",
                          stage="score", merge=merge, check=check, check_file=answers_its_job(objects, "score"))
    todo = at_status(store, UNIQUE)
    rows = _scores_of(store, [r["instruction_id"] for r in todo])
    got: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        got[r["instruction_id"]].add(r["judge"])
    ready = [ins for ins in todo
             if {j.name for j in judges_for(ins, config.registry, s.max_judges)} <= got[ins["instruction_id"]]]
    ready_ids = {r["instruction_id"] for r in ready}
    verdicts = aggregate([r["instruction_id"] for r in ready], [r for r in rows if r["instruction_id"] in ready_ids],
                         s.keep_min)
    by_id = {r["instruction_id"]: r for r in ready}
    kept = [v for v in verdicts if v.keep]
    store.update("instructions", "instruction_id",
                 [{"instruction_id": v.instruction_id, "difficulty": v.median} for v in verdicts])
    advance(store, ({"instruction_id": v.instruction_id} for v in kept), SCORED)
    drops: dict[str, list[dict]] = {}
    for v in verdicts:
        if not v.keep:
            drops.setdefault(v.reason, []).append(dict(by_id[v.instruction_id], difficulty=v.median))
    drop(store, "score", drops, run_id)
    counts = ingest_outcome(report).counts
    fail_on_quarantine(objects, report, "fix the judge backend and re-run: its instructions are asked again")
    return Outcome({"input": len(todo), **counts, "decided": len(ready), "waiting": len(todo) - len(ready),
                    "kept": len(kept), **{f"dropped_{k}": len(v) for k, v in sorted(drops.items())}})
