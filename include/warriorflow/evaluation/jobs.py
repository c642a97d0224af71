"""Evaluation as jobs: the writer plans, a job on the target's resources generates, a CPU job checks the code in
the sandbox, and the writer ingests the verdicts. Nothing but the writer opens the rating store.

::

    evals/<eval_id>/request.json        the plan: model, sampling, benchmarks (data sha256, task ids), prompts
    evals/<eval_id>/generations.jsonl   the generate job's samples, one line per prompt (+ .receipt.json)
    evals/<eval_id>/verdicts.jsonl      the check job's verdicts, one line per (benchmark, task), n samples each

* **generate** (``warriorflow evaluate-job generate --in URI``): loads the one model (an expert through its
  backend; a training run or the base model with vLLM offline on GPUs, transformers on CPU) and samples every
  prompt ``evaluation.samples`` times (greedy when 1). Identical prompts (MBPP and MBPP+) are asked once.
* **check** (``warriorflow evaluate-job check --in URI``): reads the benchmark data itself (it must have the
  planned sha256), builds each check program from the benchmark and the sample, and runs it in the sandbox with
  ``evaluation.sandbox.workers`` in parallel. The sample is data to the check program, never its verdict.
* **ingest** (the writer): the verdict file must answer exactly the plan (each task once, n samples each, typed
  fields); a file that does not is quarantined whole and the step fails naming it. pass@1 is the mean share of
  passing samples; pass@k (Chen et al.) for every k <= n in ``evaluation.pass_k``.

Every step is idempotent: an existing output is not redone, and ingesting again upserts the same rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warriorflow.config import Config
from warriorflow.errors import ConfigError, ModelError, StoreError
from warriorflow.evaluation import answers
from warriorflow.evaluation.harness import HARNESS_VERSION, ground_truth, score_benchmark
from warriorflow.evaluation.pass_at_k import mean_pass_at_k, reported_ks
from warriorflow.evaluation.problems import LoadedBenchmark, load_benchmark
from warriorflow.inference.base import Backend, Sampling
from warriorflow.method.progress import Progress, quiet
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.objects import ObjectStore

log = logging.getLogger(__name__)
ROOT = "evals"
REQUEST, GENERATIONS, VERDICTS = "request.json", "generations.jsonl", "verdicts.jsonl"
KIND = "warriorflow.eval-request"
BASE = "base"


def eval_key(eval_id: str, name: str) -> str:
    return f"{ROOT}/{eval_id}/{name}"


# ------------------------------------------------------------------------------------------ model refs


def baseline_ref(config: Config) -> str:
    """``evaluation.baseline`` as a model_ref: ``base`` becomes ``base:<training.base_model>``."""
    ref = config.settings.evaluation.baseline
    return f"{BASE}:{config.settings.training.base_model}" if ref == BASE else ref


def model_identity(config: Config, model_ref: str) -> str:
    """What the model_ref's weights are (for the eval id): expert weights, base-model identity, dir or run id."""
    if model_ref.startswith("expert:"):
        e = config.registry.get(model_ref.removeprefix("expert:"))
        return f"expert:{e.name}:{e.weights}"
    if model_ref.startswith(f"{BASE}:"):
        from warriorflow.models import base_model

        ts = config.settings.training.model_copy(update={"base_model": model_ref.split(":", 1)[1]})
        return f"base:{base_model.identity(config, ts)}"
    return model_ref


def open_model(config: Config, model_ref: str, objects: ObjectStore) -> Backend:
    """The backend that generates for ``model_ref``: ``expert:<name>`` (its own backend), ``base:<model>`` (the
    training base model), ``hf:<dir>``, or a training run id (its published model, downloaded and checked)."""
    if model_ref.startswith("expert:"):
        from warriorflow.inference.factory import backend_for

        return backend_for(config.registry.get(model_ref.removeprefix("expert:")), config)
    if model_ref.startswith(f"{BASE}:"):
        from warriorflow.models import base_model

        ts = config.settings.training.model_copy(update={"base_model": model_ref.split(":", 1)[1]})
        return _hf(config, model_ref, base_model.resolve(config, ts))
    if model_ref.startswith("hf:"):
        return _hf(config, model_ref, model_ref.removeprefix("hf:"))
    if not re.fullmatch(r"[a-z]+-[0-9a-f]{16}", model_ref):
        raise ModelError(f"model '{model_ref}'", "is not expert:<name>, base:<model>, hf:<dir> or a training run id",
                         "list the runs with `warriorflow models`")
    from warriorflow.models.published import fetch_published_model
    from warriorflow.store.objects import join_key

    return _hf(config, model_ref, fetch_published_model(objects, join_key("models", model_ref), config.model_cache))


def _hf(config: Config, name: str, model_dir: str | Path) -> Backend:
    from warriorflow.inference.factory import gguf_backend, transformers_backend, vllm_backend

    ev = config.settings.evaluation
    if ev.backend == "llamacpp":
        return gguf_backend(name, model_dir, config)
    if ev.backend == "vllm" or (ev.backend == "auto" and _gpu_vllm()):
        return vllm_backend(name, model_dir, config, max(ev.resources.gpus, 1))
    return transformers_backend(name, model_dir, config, ev.batch_size)


def _gpu_vllm() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


# ------------------------------------------------------------------------------------------ benchmarks


def benchmark_path(config: Config, path: str | None, name: str) -> Path | None:
    """A benchmark's data file: absolute, or relative to ``evaluation.benchmarks_dir`` (else
    ``$WARRIORFLOW_BENCHMARKS``); None for humaneval's packaged data."""
    import os

    if path is None:
        return None
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    folder = config.settings.evaluation.benchmarks_dir or os.environ.get("WARRIORFLOW_BENCHMARKS")
    if not folder:
        raise ConfigError(f"evaluation benchmark '{name}'", f"its path {path!r} is relative and no benchmarks folder "
                          "is set", "set evaluation.benchmarks_dir or WARRIORFLOW_BENCHMARKS to the folder holding "
                          "mbppplus/ and cruxeval/ (the worker image's /data/benchmarks in production)")
    return config.repo_path(str(Path(folder).expanduser() / p))


def load_benchmarks(config: Config, names: list[str] | None = None, limit: int | None = None,
                    all_problems: bool = False) -> list[LoadedBenchmark]:
    """The selected benchmarks (default: the enabled ones): every problem with ``all_problems``, else the first
    ``limit`` when given, else the benchmark's ``task_ids``, else the first ``evaluation.problems_per_benchmark``."""
    ev = config.settings.evaluation
    known = {b.name: b for b in ev.benchmarks}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ConfigError(f"benchmark(s) {', '.join(unknown)}", "not in evaluation.benchmarks",
                          f"use one of {', '.join(known)}")
    chosen = [known[n] for n in names] if names else [b for b in ev.benchmarks if b.enabled]
    n = None if all_problems else (limit or ev.problems_per_benchmark)
    out = []
    for b in chosen:
        fix = (f"set evaluation.benchmarks[{b.name}].path, evaluation.benchmarks_dir or WARRIORFLOW_BENCHMARKS "
               "(the folder holding mbppplus/ and cruxeval/)")
        loaded = load_benchmark(b.name, b.kind, benchmark_path(config, b.path, b.name), None, fix)
        problems = loaded.problems
        if b.task_ids and not all_problems and limit is None:  # an explicit -n N takes the first N instead
            by_id = {p.task_id: p for p in problems}
            missing = [t for t in b.task_ids if t not in by_id]
            if missing:
                raise ConfigError(f"evaluation benchmark '{b.name}'", f"task_ids {missing[:5]} are not in "
                                  f"{loaded.path}", "fix evaluation.benchmarks[].task_ids")
            problems = [by_id[t] for t in b.task_ids]
        elif n is not None:
            problems = problems[:n]
        out.append(LoadedBenchmark(loaded.name, loaded.kind, loaded.path, loaded.data_sha256, problems,
                                   loaded.n_total))
    return out


# ------------------------------------------------------------------------------------------ plan


@dataclass(frozen=True)
class EvalRequest:
    eval_id: str
    model_ref: str
    sampling: dict          # samples, temperature, top_p, max_tokens, seed
    pass_k: list[int]
    benchmarks: list[dict]  # name, kind, data_sha256, tasks: [{task_id, prompt_id}]
    prompts: list[dict]     # prompt_id, conversation

    def to_json(self) -> bytes:
        return json.dumps({"kind": KIND, "eval_id": self.eval_id, "model_ref": self.model_ref,
                           "sampling": self.sampling, "pass_k": self.pass_k, "benchmarks": self.benchmarks,
                           "prompts": self.prompts}, sort_keys=True, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> EvalRequest:
        try:
            d = json.loads(data)
            if d.get("kind") != KIND:
                raise ValueError(f"kind is {d.get('kind')!r}, not {KIND!r}")
            req = cls(str(d["eval_id"]), str(d["model_ref"]), dict(d["sampling"]), [int(k) for k in d["pass_k"]],
                      list(d["benchmarks"]), list(d["prompts"]))
            int(req.sampling["samples"]), int(req.sampling["max_tokens"])
            for b in req.benchmarks:
                str(b["name"]), str(b["kind"]), str(b["data_sha256"])
                for t in b["tasks"]:
                    str(t["task_id"]), str(t["prompt_id"])
            for p in req.prompts:
                str(p["prompt_id"]), list(p["conversation"])
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise StoreError(where, f"is not a valid evaluation request ({exc})",
                             "plan the evaluation again (`warriorflow evaluate`, or the retrain DAG)") from None
        return req


def plan_evaluation(config: Config, objects: ObjectStore, model_ref: str, *, names: list[str] | None = None,
                    limit: int | None = None, all_problems: bool = False) -> EvalRequest:
    """Write the evaluation request of ``model_ref`` (kept when it exists: the same plan is the same id)."""
    ev = config.settings.evaluation
    benchmarks = load_benchmarks(config, names, limit, all_problems)
    prompts: list[dict] = []
    index: dict[str, str] = {}
    planned = []
    for b in benchmarks:
        tasks = []
        for p in b.problems:
            conv = answers.conversation(p)
            key = json.dumps(conv, sort_keys=True)
            if key not in index:
                index[key] = f"p{len(prompts):05d}"
                prompts.append({"prompt_id": index[key], "conversation": conv})
            tasks.append({"task_id": p.task_id, "prompt_id": index[key]})
        planned.append({"name": b.name, "kind": b.kind, "data_sha256": b.data_sha256, "n_total": b.n_total,
                        "tasks": tasks})
    greedy = ev.samples == 1
    sampling = {"samples": ev.samples, "temperature": 0.0 if greedy else ev.temperature,
                "top_p": 1.0 if greedy else ev.top_p, "max_tokens": ev.max_tokens, "seed": ev.seed,
                "stop": list(ev.stop)}
    body = json.dumps([model_identity(config, model_ref), sampling, planned, prompts], sort_keys=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model_ref).strip("-.")[:48] or "model"
    eval_id = f"{safe}-{hashlib.sha256(body.encode()).hexdigest()[:12]}"
    req = EvalRequest(eval_id, model_ref, sampling, reported_ks(ev.samples, ev.pass_k), planned, prompts)
    key = eval_key(eval_id, REQUEST)
    if not objects.exists(key):
        objects.put_bytes(key, req.to_json())
    return req


def read_request(objects: ObjectStore, key: str) -> EvalRequest:
    return EvalRequest.from_json(objects.get_bytes(key), objects.uri(key))


# ------------------------------------------------------------------------------------------ generate


def generate(config: Config, objects: ObjectStore, request_key: str, *, backend: Backend | None = None,
             progress: Progress = quiet) -> str:
    """The generate job: every prompt's samples; return the generations key (existing: nothing to do)."""
    req = read_request(objects, request_key)
    out_key = eval_key(req.eval_id, GENERATIONS)
    if objects.exists(out_key):
        progress(f"{req.eval_id}: {objects.uri(out_key)} exists, nothing to do")
        return out_key
    s = req.sampling
    n = int(s["samples"])
    own = backend is None
    started = time.monotonic()
    backend = backend or open_model(config, req.model_ref, objects)
    try:
        convs, params = [], []
        for p in req.prompts:
            for j in range(n):
                convs.append(p["conversation"])
                params.append(Sampling(max_tokens=int(s["max_tokens"]), temperature=float(s["temperature"]),
                                       top_p=float(s["top_p"]), seed=int(s["seed"]) + j,
                                       stop=tuple(str(x) for x in s.get("stop") or ())))
        texts: list[str] = []
        batch = config.settings.evaluation.batch_size
        for start in range(0, len(convs), batch):
            texts.extend(g.text for g in backend.chat(convs[start:start + batch], params[start:start + batch]))
            progress(f"{req.eval_id}: {len(texts)}/{len(convs)} samples")
    finally:
        if own:
            backend.close()
    lines = [{"prompt_id": p["prompt_id"], "samples": texts[i * n:(i + 1) * n]} for i, p in enumerate(req.prompts)]
    objects.put_bytes(out_key, encode_jsonl(lines))
    receipt = {"eval_id": req.eval_id, "model_ref": req.model_ref, "prompts": len(lines), "samples": n,
               "seconds": round(time.monotonic() - started, 3)}
    objects.put_bytes(out_key.removesuffix(".jsonl") + ".receipt.json", json.dumps(receipt).encode())
    progress(f"{req.eval_id}: wrote {len(lines)} prompts x {n} samples to {objects.uri(out_key)}")
    return out_key


def read_generations(objects: ObjectStore, req: EvalRequest) -> dict[str, list[str]]:
    """prompt_id -> samples, checked against the request (every prompt once, n strings each)."""
    key = eval_key(req.eval_id, GENERATIONS)
    if not objects.exists(key):
        raise StoreError(objects.uri(key), "does not exist: the generate job has not finished",
                         "run the generate job first (`warriorflow evaluate-job generate --in ...`)")
    n = int(req.sampling["samples"])
    wanted = {p["prompt_id"] for p in req.prompts}
    out: dict[str, list[str]] = {}
    problems = []
    try:
        lines = decode_jsonl(objects.get_bytes(key))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(objects.uri(key), f"is not JSON Lines ({exc})", "run the generate job again") from None
    for i, line in enumerate(lines, start=1):
        pid = line.get("prompt_id") if isinstance(line, dict) else None
        samples = line.get("samples") if isinstance(line, dict) else None
        if pid not in wanted or pid in out:
            problems.append(f"line {i}: prompt_id {str(pid)[:40]!r} was not asked or is repeated")
        elif not isinstance(samples, list) or len(samples) != n or not all(isinstance(t, str) for t in samples):
            problems.append(f"line {i}: samples must be {n} strings")
        else:
            out[pid] = samples
    if wanted - set(out):
        problems.append(f"{len(wanted - set(out))} prompt(s) have no samples")
    if problems:
        raise StoreError(objects.uri(key), "does not answer its request: " + "; ".join(problems[:5]),
                         "delete it and run the generate job again")
    return out


# ------------------------------------------------------------------------------------------ check


def sandbox_from_config(config: Config):
    """The bubblewrap sandbox with ``evaluation.sandbox``'s limits."""
    from warriorflow.sandbox import Sandbox, SandboxLimits

    sb = config.settings.evaluation.sandbox
    limits = SandboxLimits(memory_mb=sb.memory_mb, cpu_s=sb.cpu_s, wall_s=sb.wall_s, nproc=sb.nproc,
                           file_size_mb=sb.file_size_mb, tmpfs_mb=sb.tmpfs_mb, stdout_bytes=sb.stdout_kb << 10)
    return Sandbox(limits, python=sb.python, sandbox_uid=sb.sandbox_uid, memory_cgroup=sb.memory_cgroup)


def check(config: Config, objects: ObjectStore, request_key: str, *, sandbox=None, progress: Progress = quiet) -> str:
    """The check job: each sample's check program in the sandbox; return the verdicts key."""
    req = read_request(objects, request_key)
    out_key = eval_key(req.eval_id, VERDICTS)
    if objects.exists(out_key):
        progress(f"{req.eval_id}: {objects.uri(out_key)} exists, nothing to do")
        return out_key
    samples = read_generations(objects, req)
    n = int(req.sampling["samples"])
    sandbox = sandbox or sandbox_from_config(config)
    workers = config.settings.evaluation.sandbox.workers
    loaded = {b.name: b for b in load_benchmarks(config, [b["name"] for b in req.benchmarks], all_problems=True)}
    lines = []
    for planned in req.benchmarks:
        bench = loaded[planned["name"]]
        if bench.data_sha256 != planned["data_sha256"] or bench.kind != planned["kind"]:
            raise ConfigError(f"evaluation benchmark '{bench.name}'", f"data here ({bench.path}, sha256 "
                              f"{bench.data_sha256[:12]}) is not the planned data (sha256 "
                              f"{planned['data_sha256'][:12]})", "give the check job the same benchmark files "
                              "as the planner (evaluation.benchmarks_dir / WARRIORFLOW_BENCHMARKS)")
        by_id = {p.task_id: p for p in bench.problems}
        problems = [by_id[t["task_id"]] for t in planned["tasks"]]
        chosen = LoadedBenchmark(bench.name, bench.kind, bench.path, bench.data_sha256, problems, bench.n_total)
        expected = ground_truth(chosen, sandbox, config.home / "eval_cache", workers=workers)
        per_sample = [score_benchmark(chosen, [samples[t["prompt_id"]][j] for t in planned["tasks"]], sandbox,
                                      workers=workers, expected=expected) for j in range(n)]
        for i, t in enumerate(planned["tasks"]):
            lines.append({"benchmark": bench.name, "task_id": t["task_id"],
                          "results": [{"passed": s.results[i].passed, "reason": s.results[i].reason,
                                       "detail": s.results[i].detail[:300],
                                       "duration_s": round(s.results[i].duration_s, 4)} for s in per_sample]})
        progress(f"{req.eval_id}: {bench.name} checked ({len(problems)} problems x {n} samples)")
    objects.put_bytes(out_key, encode_jsonl([{"harness_version": HARNESS_VERSION}, *lines]))
    return out_key


# ------------------------------------------------------------------------------------------ ingest


@dataclass(frozen=True)
class IngestedScore:
    name: str
    pass_at_1: float
    pass_at_k: dict[str, float]
    n_problems: int
    n_passed: int           # problems whose first sample passed
    reasons: dict[str, int]
    data_sha256: str = ""


def _bad(objects: ObjectStore, key: str, problems: list[str]) -> StoreError:
    from warriorflow.store.keys import quarantine_key

    q = quarantine_key("evaluate", key)
    objects.put_bytes(q, objects.get_bytes(key))
    objects.put_bytes(q + ".report.json", json.dumps({"source": objects.uri(key), "problems": problems}).encode())
    objects.delete(key)
    return StoreError(objects.uri(key), f"does not answer its evaluation request ({len(problems)} problem(s): "
                      + "; ".join(problems[:3]) + f"); quarantined whole at {objects.uri(q)}",
                      "run the check job again (it writes a new verdict file)")


def read_verdicts(objects: ObjectStore, req: EvalRequest) -> tuple[str, dict[tuple[str, str], list[dict]]]:
    """(harness version, (benchmark, task_id) -> n results), checked against the request; a file that does not
    answer it exactly is quarantined whole (StoreError)."""
    key = eval_key(req.eval_id, VERDICTS)
    if not objects.exists(key):
        raise StoreError(objects.uri(key), "does not exist: the check job has not finished",
                         "run the check job first (`warriorflow evaluate-job check --in ...`)")
    try:
        lines = decode_jsonl(objects.get_bytes(key))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(objects, key, [f"not JSON Lines: {exc}"]) from None
    n = int(req.sampling["samples"])
    wanted = {(b["name"], t["task_id"]) for b in req.benchmarks for t in b["tasks"]}
    head = lines[0] if lines else None
    harness = head.get("harness_version") if isinstance(head, dict) else None
    problems = [] if isinstance(harness, str) and harness else ["the first line must name the harness_version"]
    got: dict[tuple[str, str], list[dict]] = {}
    for i, line in enumerate(lines[1:], start=2):
        if not isinstance(line, dict):
            problems.append(f"line {i}: not an object")
            continue
        k = (line.get("benchmark"), line.get("task_id"))
        results = line.get("results")
        if k not in wanted or k in got:
            problems.append(f"line {i}: {str(k)[:80]} was not asked or is repeated")
        elif (not isinstance(results, list) or len(results) != n
              or not all(isinstance(r, dict) and type(r.get("passed")) is bool and isinstance(r.get("reason"), str)
                         for r in results)):
            problems.append(f"line {i}: results must be {n} objects with a boolean passed and a reason")
        else:
            got[k] = results
    if wanted - set(got):
        problems.append(f"{len(wanted - set(got))} planned task(s) have no verdict")
    if problems:
        raise _bad(objects, key, problems)
    return harness, got


def ingest(config: Config, store, objects: ObjectStore, request_key: str) -> list[IngestedScore]:
    """The writer: record the verdicts as eval_results rows (one per benchmark); return the scores."""
    req = read_request(objects, request_key)
    harness, got = read_verdicts(objects, req)
    scores, rows = [], []
    for b in req.benchmarks:
        per = [(t["task_id"], got[(b["name"], t["task_id"])]) for t in b["tasks"]]
        counts = [(len(rs), sum(r["passed"] for r in rs)) for _, rs in per]
        reasons: dict[str, int] = {}
        for _, rs in per:
            reasons[rs[0]["reason"]] = reasons.get(rs[0]["reason"], 0) + 1
        pak = {str(k): mean_pass_at_k(counts, k) for k in req.pass_k}
        score = IngestedScore(b["name"], pak["1"], pak, len(per), sum(rs[0]["passed"] for _, rs in per),
                              dict(sorted(reasons.items())), b["data_sha256"])
        scores.append(score)
        problems = [{"task_id": tid, "passed": rs[0]["passed"], "reason": rs[0]["reason"],
                     "detail": str(rs[0].get("detail", ""))[:300], "n_samples": len(rs),
                     "n_correct": sum(r["passed"] for r in rs)} for tid, rs in per]
        rows.append(_row(req, b, harness, score.pass_at_1, problems, {
            "eval_job": req.eval_id, "pass_at_k": pak, "sampling": req.sampling, "n_passed": score.n_passed,
            "reasons": score.reasons, "n_total": b.get("n_total")}))
    store.upsert("eval_results", rows, key=["eval_id"],
                 update=["pass_at_1", "n_problems", "details", "evaluated_at", "harness_version"])
    return scores


def _row(req: EvalRequest, b: dict, harness: str, pass_at_1: float, problems: list[dict], extra: dict) -> dict:
    """An eval_results row: its id is (model, benchmark, data, harness, tasks, sampling), so ingesting again
    upserts the same row."""
    from datetime import UTC, datetime

    blob = json.dumps([req.model_ref, b["name"], b["data_sha256"], harness, [p["task_id"] for p in problems],
                       req.sampling], sort_keys=True)
    return {"eval_id": hashlib.sha256(blob.encode()).hexdigest()[:32], "model_ref": req.model_ref,
            "benchmark": b["name"], "pass_at_1": pass_at_1, "n_problems": len(problems),
            "data_sha256": b["data_sha256"], "harness_version": harness,
            "evaluated_at": datetime.now(UTC).replace(tzinfo=None),
            "details": {"kind": b["kind"], "problems": problems, **extra}}


def evaluate_in_process(config: Config, store_path, objects: ObjectStore, model_ref: str, *,
                        backend: Backend | None = None, sandbox=None, progress: Progress = quiet,
                        **selection: Any) -> tuple[EvalRequest, list[IngestedScore], float, float]:
    """Plan, generate, check and ingest in this process (``warriorflow evaluate``): the same steps the retrain
    DAG runs as jobs. Returns (request, scores, generation seconds, checking seconds)."""
    from warriorflow.store.rating_store import RatingStore

    req = plan_evaluation(config, objects, model_ref, **selection)
    key = eval_key(req.eval_id, REQUEST)
    t0 = time.monotonic()
    generate(config, objects, key, backend=backend, progress=progress)
    t1 = time.monotonic()
    check(config, objects, key, sandbox=sandbox, progress=progress)
    t2 = time.monotonic()
    with RatingStore(store_path) as store:
        scores = ingest(config, store, objects, key)
    return req, scores, t1 - t0, t2 - t1
