"""The writer's side of model jobs: write a step's job inputs, find its result files, and check that a
result file answers exactly its own job (no item it was not asked for, none twice, the job's own model).

A writer step that plans model work calls :func:`write_jobs` and returns the jobs (the mapped tasks'
input); the writer step after the jobs ingests the results it finds with :func:`result_keys`, checking
each file with :func:`answers_its_job` first. A job that failed left no result file: its items are
planned again by the next run, and nothing finished is redone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from warriorflow.config import Config
from warriorflow.method.battle_jobs import BatchInputError
from warriorflow.method.jobs import ITEM_ID, Job, JobInput, job_id, shard
from warriorflow.store.ingest import Rejection
from warriorflow.store.keys import job_in_key, run_prefix
from warriorflow.store.objects import ObjectStore

ITEMS_PER_JOB = {"respond": "respond_items", "judge": "judge_items", "score": "score_items", "tag": "tag_items",
                 "embed": "embed_items"}  # execute: arena.execution.shard_size, passed by its planner
RECORD_MODEL_FIELD = {"respond": "expert", "judge": "judge", "score": "judge", "tag": "judge", "embed": "model",
                      "execute": "executor"}


def write_jobs(config: Config, objects: ObjectStore, run_id: str, step: str,
               items_by_model: Mapping[str, Sequence[dict]], params: Callable[[str], dict] | dict,
               round_no: int | None = None, items_per_job: int | None = None) -> list[Job]:
    """Cut each model's items into shards (of ``items_per_job``, default the step's ``jobs`` setting) and write
    one job input per shard (an existing input is kept: the same run plans the same jobs); return the jobs."""
    s = config.settings.jobs
    jobs = []
    for model, n, items in shard({m: v for m, v in items_by_model.items() if v},
                                 items_per_job or getattr(s, ITEMS_PER_JOB[step]), s.max_jobs_per_step):
        job = JobInput(job_id(step, model, n, round_no), step, model, run_id,
                       params(model) if callable(params) else params, tuple(items), round_no)
        key = job_in_key(run_id, step, job.job_id)
        if not objects.exists(key):
            objects.put_bytes(key, job.to_json())
        jobs.append(Job(key, step, model, len(items)))
    return jobs


def result_keys(objects: ObjectStore, run_id: str, step: str) -> list[str]:
    """The result files the run's jobs of ``step`` wrote (a failed job has none)."""
    return sorted(k for k in objects.list(run_prefix(run_id, f"jobs/{step}/out")) if k.endswith(".jsonl"))


def answers_its_job(objects: ObjectStore, step: str) -> Callable[[str, list[dict]], Rejection | None]:
    """A ``check_file`` for :func:`~warriorflow.store.ingest.ingest_files`: the result file's records are
    exactly answers to its job's items (by id), each once, all by the job's model."""

    def check(key: str, records: list[dict]) -> Rejection | None:
        in_key = key.replace(f"/jobs/{step}/out/", f"/jobs/{step}/in/").removesuffix(".jsonl") + ".json"
        if not objects.exists(in_key):
            return Rejection(f"no job input {objects.uri(in_key)} for this result file: no job asked for it")
        try:
            job = JobInput.from_json(objects.get_bytes(in_key), objects.uri(in_key))
        except BatchInputError as exc:
            return Rejection(f"its job input is not valid: {str(exc).splitlines()[0]}")
        wanted = set(job.item_ids())
        id_key, model_key = ITEM_ID[step], RECORD_MODEL_FIELD[step]
        problems, seen = [], set()
        for n, r in enumerate(records, start=1):
            rid = r.get(id_key)
            if rid not in wanted:
                problems.append(f"line {n}: {id_key} {str(rid)[:40]!r} was not asked of job {job.job_id}")
            elif rid in seen:
                problems.append(f"line {n}: {id_key} {rid} answered twice")
            seen.add(rid)
            if r.get(model_key) != job.model:
                problems.append(f"line {n}: {model_key} {str(r.get(model_key))[:40]!r} is not the job's model "
                                f"{job.model!r}")
        missing = len(wanted - seen)
        if missing:
            problems.append(f"{missing} item(s) of job {job.job_id} have no record")
        if problems:
            return Rejection(f"{len(problems)} problem(s): " + "; ".join(problems[:5]), {"problems": problems})
        return None

    return check
