"""Evaluate a model end to end (the steps the retrain DAG and ``warriorflow evaluate`` call).

``model_ref`` names what is evaluated:

* ``expert:<name>``: a registry expert through its inference backend (the embedded baseline is the
  SmolLM2 expert on llama.cpp);
* ``hf:<directory>``: a local Hugging Face model directory (transformers on CPU);
* anything else: a ``training_run_id``; its ``output_uri`` (an object-store prefix published
  manifest-last) is downloaded, verified, and run with transformers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from warriorflow.config import Config, EvalBenchmark
from warriorflow.errors import ConfigError, ModelError
from warriorflow.evaluation import answers, records
from warriorflow.evaluation.compare import Decision, decide
from warriorflow.evaluation.harness import HARNESS_VERSION, BenchmarkScore, ground_truth, score_benchmark
from warriorflow.evaluation.problems import LoadedBenchmark, load_benchmark
from warriorflow.inference.base import Backend, Sampling
from warriorflow.sandbox import Sandbox, SandboxLimits
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationReport:
    model_ref: str
    scores: list[BenchmarkScore]
    generation_s: float
    scoring_s: float

    def pass_at_1(self) -> dict[str, float]:
        return {s.name: s.pass_at_1 for s in self.scores}


def sandbox_from_config(config: Config) -> Sandbox:
    sb = config.settings.evaluation.sandbox
    limits = SandboxLimits(memory_mb=sb.memory_mb, cpu_s=sb.cpu_s, wall_s=sb.wall_s, nproc=sb.nproc,
                           file_size_mb=sb.file_size_mb, tmpfs_mb=sb.tmpfs_mb, stdout_bytes=sb.stdout_kb << 10)
    return Sandbox(limits, python=sb.python, sandbox_uid=sb.sandbox_uid, memory_cgroup=sb.memory_cgroup)


def select_benchmarks(config: Config, names: list[str] | None = None) -> list[EvalBenchmark]:
    configured = config.settings.evaluation.benchmarks
    if not names:
        return [b for b in configured if b.enabled]
    known = {b.name: b for b in configured}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"benchmark(s) {', '.join(unknown)}", "not in evaluation.benchmarks",
                          f"use one of {', '.join(known)}")
    return [known[n] for n in names]


def load_benchmarks(config: Config, names: list[str] | None = None, limit: int | None = None,
                    all_problems: bool = False) -> list[LoadedBenchmark]:
    n = None if all_problems else (limit or config.settings.evaluation.problems_per_benchmark)
    out = []
    for i, b in enumerate(select_benchmarks(config, names)):
        fix = (f"set evaluation.benchmarks[{i}](name={b.name}).path, or WARRIORFLOW_BENCHMARKS to the folder "
               "holding mbppplus/ and cruxeval/")
        out.append(load_benchmark(b.name, b.kind, config.repo_path(b.path) if b.path else None, n, fix))
    return out


def open_model(config: Config, model_ref: str) -> Backend:
    """The backend that answers for ``model_ref`` (see the module docstring)."""
    ev = config.settings.evaluation
    if model_ref.startswith("expert:"):
        from warriorflow.inference.factory import backend_for

        return backend_for(config.registry.get(model_ref.removeprefix("expert:")), config)
    from warriorflow.evaluation.hf_backend import TransformersBackend

    threads = config.settings.inference.llamacpp.threads
    if model_ref.startswith("hf:"):
        return TransformersBackend(model_ref, Path(model_ref.removeprefix("hf:")), batch_size=ev.batch_size,
                                   threads=threads)
    return TransformersBackend(model_ref, fetch_training_run(config, model_ref), batch_size=ev.batch_size,
                               threads=threads)


def fetch_training_run(config: Config, run_id: str) -> Path:
    """Download (and verify) a training run's published model directory into the model cache."""
    from warriorflow.store.objects import object_store_from_uri, open_objects, read_published

    if not config.duckdb_path.exists():
        raise ModelError(f"model '{run_id}'", "no rating store yet, so no training runs",
                         "use expert:<name> or hf:<dir>, or train a model first")
    with RatingStore(config.duckdb_path, read_only=True) as store:
        rows = store.query("SELECT status, output_uri FROM training_runs WHERE training_run_id = ?", [run_id])
    if not rows:
        raise ModelError(f"model '{run_id}'", "is neither expert:<name>, hf:<dir> nor a training run id",
                         "list the runs with `warriorflow models`")
    uri = rows[0]["output_uri"]
    if not uri:
        raise ModelError(f"training run {run_id}", f"has no output_uri (status {rows[0]['status']})",
                         "wait for the run to finish, or re-run training")
    base = config.object_store_uri.rstrip("/")
    if uri.startswith(base + "/"):
        store, prefix = open_objects(config), uri[len(base) + 1:]
    else:
        store, prefix = object_store_from_uri(uri), ""
    manifest, files = read_published(store, prefix, verify=True)
    target = config.model_cache / "runs" / run_id
    for name, data in files.items():
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.is_file() or dest.stat().st_size != len(data):
            dest.write_bytes(data)
    return target


def generate_replies(backend: Backend, benchmarks: list[LoadedBenchmark], max_tokens: int,
                     batch_size: int) -> list[list[str]]:
    """Greedy replies, one per problem; identical prompts (MBPP and MBPP+) are generated once."""
    convs, index = [], {}
    keys = []
    for b in benchmarks:
        row = []
        for p in b.problems:
            conv = answers.conversation(p)
            key = repr(conv)
            if key not in index:
                index[key] = len(convs)
                convs.append(conv)
            row.append(index[key])
        keys.append(row)
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0, top_p=1.0, seed=0)
    texts: list[str] = []
    for start in range(0, len(convs), batch_size):
        texts.extend(g.text for g in backend.chat(convs[start:start + batch_size], sampling))
    return [[texts[i] for i in row] for row in keys]


def evaluate_model(config: Config, model_ref: str, *, names: list[str] | None = None, limit: int | None = None,
                   all_problems: bool = False, backend: Backend | None = None, record: bool = True,
                   sandbox: Sandbox | None = None) -> EvaluationReport:
    """Generate (greedy) and score every selected benchmark; record the results in eval_results."""
    ev = config.settings.evaluation
    benchmarks = load_benchmarks(config, names, limit, all_problems)
    sandbox = sandbox or sandbox_from_config(config)
    own = backend is None
    backend = backend or open_model(config, model_ref)
    try:
        t0 = time.monotonic()
        replies = generate_replies(backend, benchmarks, ev.max_tokens, ev.batch_size)
        t1 = time.monotonic()
    finally:
        if own:
            backend.close()
    scores = []
    for bench, rep in zip(benchmarks, replies):
        expected = ground_truth(bench, sandbox, config.home / "eval_cache", workers=ev.sandbox.workers)
        score = score_benchmark(bench, rep, sandbox, workers=ev.sandbox.workers, expected=expected)
        log.info("%s %s: pass@1 %.3f (%d/%d) %s", model_ref, bench.name, score.pass_at_1, score.n_passed,
                 score.n_problems, score.reasons())
        scores.append(score)
    report = EvaluationReport(model_ref, scores, t1 - t0, time.monotonic() - t1)
    if record:
        with RatingStore(config.duckdb_path) as store:
            records.write_scores(store, model_ref, scores, {"max_tokens": ev.max_tokens, "greedy": True})
    return report


def compare_and_decide(config: Config, candidate: str, previous: str | None = None) -> Decision:
    """Compare ``candidate``'s recorded scores with ``previous`` (default: the champion, else the baseline),
    decide by ``evaluation.promotion`` and record the decision."""
    rule = config.settings.evaluation.promotion
    with RatingStore(config.duckdb_path) as store:
        cand = records.latest_scores(store, candidate)
        if not cand:
            raise ConfigError(f"model '{candidate}'", "has no evaluation results", "run `warriorflow evaluate` first")
        if previous is None:
            champ = records.champion(store)
            previous = champ if champ and champ != candidate else config.settings.evaluation.baseline
        prev = records.latest_scores(store, previous) if previous != candidate else {}
        if previous and previous != candidate and not prev:
            log.warning("previous model %s has no evaluation results; evaluate it to compare", previous)
        decision = decide(candidate, cand, previous if prev else None, prev or None, rule)
        records.write_decision(store, decision, rule.model_dump(), HARNESS_VERSION)
    return decision
