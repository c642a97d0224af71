"""Run one model job (``warriorflow job --in URI``): read its input, load its one model, do the items,
write the result file and a receipt. What one pod (or, locally, one process) runs; it never opens the
rating store.

* **One model.** The job loads exactly its input's ``model`` (an expert's backend, or the embedding
  model) once, and the receipt lists what it loaded (``models_loaded``), so a test can assert it. An
  ``execute`` job (model ``sandbox``) loads none: it runs the responses' code in the sandbox
  (:mod:`warriorflow.stages.execute`) and its receipt lists no model.
* **Checkpoints in the object store.** Every ``jobs.checkpoint_items`` items, the finished records go to
  ``.../ckpt/JOB/part-N.jsonl``. A rerun (an evicted pod's retry) loads them, skips those items and
  carries on; the parts are deleted once the result file is written.
* **Idempotent.** When the result file exists, nothing runs.
* **Tensor parallelism.** An offline vLLM expert is loaded with ``resources.gpus`` GPUs of tensor
  parallelism (its pod gets exactly those GPUs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from warriorflow.config import ArenaSettings, Config
from warriorflow.errors import ConfigError
from warriorflow.method import battle_jobs, difficulty, tagging
from warriorflow.method.battle_jobs import BatchInputError
from warriorflow.method.jobs import ITEM_ID, JobInput
from warriorflow.method.progress import Progress, quiet
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.keys import job_checkpoint_prefix, job_out_for, job_receipt_for
from warriorflow.store.objects import ObjectStore


@dataclass
class JobResult:
    job_id: str
    out_key: str
    records: int
    resumed: int = 0
    skipped: bool = False
    receipt: dict = field(default_factory=dict)


def _arena(job: JobInput) -> ArenaSettings:
    from pydantic import ValidationError

    try:
        return ArenaSettings.model_validate(job.params["arena"])
    except ValidationError as exc:
        problems = "; ".join(f"arena.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BatchInputError(f"job {job.job_id}", problems, "re-plan the step that wrote this job") from None


def _work(job: JobInput, model: Any, arena: ArenaSettings | None,
          config: Config | None = None) -> Callable[[Sequence[dict]], list[dict]]:
    """The function that turns a chunk of the job's items into records, with the loaded model (``arena``: the
    respond and judge jobs' checked arena settings; ``model``: the sandbox for an execute job)."""
    p = job.params
    if job.step == "execute":
        from warriorflow.stages.execute import execute_items

        return lambda items: execute_items(config, job, model, items)
    if job.step == "respond":
        return lambda items: battle_jobs.answer([battle_jobs.ResponseRequest(**i) for i in items], model, arena,
                                                job.run_id)
    if job.step == "judge":
        return lambda items: battle_jobs.cast_votes([battle_jobs.VoteRequest(**i) for i in items], model,
                                                    p["template"], arena, job.run_id)
    if job.step == "score":
        return lambda items: difficulty.score_with(job.model, model, items, p["template"], p["language"], job.run_id)
    if job.step == "tag":
        return lambda items: tagging.tag_with(job.model, model, items, p["template"], p["categories"], p["language"],
                                              job.run_id, max_tokens=p["max_tokens"])
    from warriorflow.models.embedder import embed

    def vectors(items: Sequence[dict]) -> list[dict]:
        got = embed(model, [i["text"] for i in items], batch_size=int(p.get("batch_size", 64)))
        return [{"instruction_id": i["instruction_id"], "model": job.model, "dim": int(v.shape[0]),
                 "vector": [float(x) for x in v]} for i, v in zip(items, got, strict=True)]

    return vectors


def _record_item_id(step: str, record: dict) -> str:
    return record[ITEM_ID[step]]


def load_model(config: Config, job: JobInput) -> tuple[Any, Callable[[], None]]:
    """The job's one model and how to release it: an expert's backend, or the embedding model."""
    if job.step == "embed":
        from warriorflow.models.embedder import load_sentence_model, unload_sentence_models

        return load_sentence_model(job.params["model_spec"]), unload_sentence_models
    from warriorflow.inference.factory import backend_for

    expert = config.registry.get(job.model)
    role = "answer" if job.step == "respond" else "judge"
    if not expert.has_role(role):
        raise ConfigError(f"expert '{job.model}'", f"cannot run a {job.step} job (roles: "
                          f"{', '.join(r.value for r in expert.roles)})", "re-plan the step with the current registry")
    backend = backend_for(expert, config)
    return backend, backend.close


def job_location(config: Config, in_uri: str) -> tuple[ObjectStore, str]:
    """The configured object store and the key of a job input URI under it (results and checkpoints go
    beside it, under the same run's prefix)."""
    from warriorflow.store.objects import open_objects

    objects = open_objects(config)
    root = objects.uri("").rstrip("/") + "/"
    if not in_uri.startswith(root) or "/jobs/" not in in_uri[len(root):]:
        raise ConfigError(f"job input {in_uri}", f"is not a job input under the configured object store {root}",
                          "run the job with the settings that planned it (WARRIORFLOW_CONFIG), on a URI it printed")
    from urllib.parse import unquote

    rel = in_uri[len(root):]
    key = unquote(rel)  # a file:// URI quotes its path (a run id has ':' and '+')
    return objects, key if objects.uri(key) == in_uri else rel


def run_job(config: Config, objects: ObjectStore, in_key: str, progress: Progress = quiet,
            loader: Callable[[Config, JobInput], tuple[Any, Callable[[], None]]] = load_model) -> JobResult:
    """Run the job whose input is at ``in_key`` (see the module doc)."""
    out_key = job_out_for(in_key)
    job = JobInput.from_json(objects.get_bytes(in_key), objects.uri(in_key))
    if objects.exists(out_key):
        progress(f"{job.job_id}: {objects.uri(out_key)} exists, nothing to do")
        return JobResult(job.job_id, out_key, 0, skipped=True)
    arena = _arena(job) if job.step in ("respond", "judge") else None  # a bad input fails before any load
    started = time.monotonic()
    ckpt = job_checkpoint_prefix(in_key)
    done: dict[str, dict] = {}
    parts = sorted(objects.list(ckpt))
    for part in parts:
        for r in decode_jsonl(objects.get_bytes(part)):
            done.setdefault(_record_item_id(job.step, r), r)
    wanted = set(job.item_ids())
    done = {k: v for k, v in done.items() if k in wanted}
    todo = [i for i in job.items if i[ITEM_ID[job.step]] not in done]
    if done:
        progress(f"{job.job_id}: resuming, {len(done)} of {len(job.items)} items done before")
    loaded: list[str] = []
    if todo:
        if job.step == "execute":  # no model: the sandbox, with the job's checked limits
            from warriorflow.stages.execute import load_executor

            model, release = load_executor(config, job)
        else:
            model, release = loader(config, job)
            loaded.append(job.model)
        try:
            work = _work(job, model, arena, config)
            step = config.settings.jobs.checkpoint_items
            n_part = len(parts)
            for start in range(0, len(todo), step):
                records = work(todo[start:start + step])
                objects.put_bytes(f"{ckpt}part-{n_part:05d}.jsonl", encode_jsonl(records))
                n_part += 1
                done.update({_record_item_id(job.step, r): r for r in records})
                progress(f"{job.job_id}: {len(done)}/{len(job.items)} items")
        finally:
            release()
    records = [done[i] for i in job.item_ids()]
    receipt = {"job_id": job.job_id, "step": job.step, "model": job.model, "run_id": job.run_id,
               "round": job.round, "models_loaded": loaded, "items": len(job.items), "records": len(records),
               "resumed_items": len(job.items) - len(todo), "input_sha256": job.digest(),
               "seconds": round(time.monotonic() - started, 3)}
    objects.put_bytes(out_key, encode_jsonl(records))  # the result first: its existence means done
    objects.put_bytes(job_receipt_for(out_key), json.dumps(receipt, sort_keys=True).encode())
    for part in list(objects.list(ckpt)):
        objects.delete(part)
    progress(f"{job.job_id}: wrote {len(records)} records to {objects.uri(out_key)}")
    return JobResult(job.job_id, out_key, len(records), len(job.items) - len(todo), receipt=receipt)
