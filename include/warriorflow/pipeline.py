"""The instruction pipeline over the stores: mine -> ingest -> dedup -> score -> decontaminate -> compress -> tag.

Each stage reads the instructions at its input status, decides, and moves each one on or drops it
with a reason:

    mined -> unique (dedup) -> scored (difficulty) -> clean (decontamination) -> selected (compression)

A stage works on everything at its input status, whatever run mined it. Re-running a stage (or a
whole run) therefore finds nothing left to do, and changes nothing. Work that a worker could do
(mining, judging) writes result files to the object store, which an ingest step validates (Great
Expectations) and merges. Only the process holding the rating store writes it. Every stage records its
counts per drop reason in ``stage_runs`` and returns them as a StageReport.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from warriorflow import ids
from warriorflow.config import Config, Expert
from warriorflow.errors import StoreError
from warriorflow.store.object_store import ObjectStore, object_store_from_uri
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

MINED, UNIQUE, SCORED, CLEAN, SELECTED, DROPPED = "mined", "unique", "scored", "clean", "selected", "dropped"


@dataclass
class StageReport:
    stage: str
    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        width = max([len(k) for k in self.counts] + [8])
        lines = [f"{self.stage} (run {self.run_id})"]
        lines += [f"  {k:<{width}} {v:>7}" for k, v in self.counts.items()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id() -> str:
    return "manual__" + now_utc().strftime("%Y-%m-%dT%H-%M-%S")


def open_objects(config: Config) -> ObjectStore:
    s3 = config.settings.object_store.s3
    options = {}
    if config.object_store_uri.startswith("s3://"):
        options = {k: v for k, v in {"endpoint_url": s3.endpoint_url, "region": s3.region,
                                     "addressing_style": s3.addressing_style}.items() if v is not None}
    return object_store_from_uri(config.object_store_uri, **options)


def _jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows).encode()


def _read_jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _record(store: RatingStore, report: StageReport, started: datetime) -> StageReport:
    store.upsert("stage_runs", [{"run_id": report.run_id, "stage": report.stage, "counts": report.counts,
                                 "started_at": started, "finished_at": now_utc()}],
                 key=["run_id", "stage"], update=["counts", "finished_at"])
    return report


def _drop_rows(stage: str, reason: str, rows: Iterable[dict], run_id: str) -> list[dict]:
    return [{"record_id": ids.record_id(stage, r["instruction_id"]), "stage": stage, "reason": reason,
             "expert": r.get("expert"), "instruction_id": r["instruction_id"], "raw_text": r.get("text"),
             "provenance": {k: r.get(k) for k in ("temperature", "top_p", "seed", "run_id", "duplicate_of",
                                                   "difficulty", "benchmark", "task_id") if r.get(k) is not None},
             "run_id": run_id} for r in rows]


def _drop(store: RatingStore, stage: str, drops: dict[str, list[dict]], run_id: str) -> None:
    """Mark instructions dropped, with their reason, and log each in dropped_records."""
    for reason, rows in drops.items():
        if not rows:
            continue
        store.update("instructions", "instruction_id",
                     [{"instruction_id": r["instruction_id"], "status": DROPPED, "drop_reason": reason,
                       "duplicate_of": r.get("duplicate_of")} for r in rows])
        store.upsert("dropped_records", _drop_rows(stage, reason, rows, run_id), key=["record_id"])


def _advance(store: RatingStore, rows: Iterable[dict], status: str, **extra) -> None:
    store.update("instructions", "instruction_id",
                 [{"instruction_id": r["instruction_id"], "status": status, **extra} for r in rows])


def _at_status(store: RatingStore, status: str) -> list[dict]:
    return store.query("SELECT * FROM instructions WHERE status = ? ORDER BY mined_at, instruction_id", [status])


# ------------------------------------------------------------------------------------------ mine


def mine_key(run_id: str, expert: str, dropped: bool = False) -> str:
    return f"runs/{run_id}/mine/{expert}{'.dropped' if dropped else ''}.jsonl"


def mine_to_files(config: Config, objects: ObjectStore, run_id: str, experts: list[Expert] | None = None,
                  progress: Progress = log.info) -> dict[str, dict[str, int]]:
    """Worker side of mining: sample each expert's grid and write result files. Never opens the store."""
    from warriorflow.inference.factory import backend_for
    from warriorflow.models.locate import resolve_model
    from warriorflow.stages.mine import mine_expert, sampling_grid
    from warriorflow.stages.mining_prompt import mining_prompt

    counts = {}
    for expert in experts if experts is not None else config.registry.with_role("mine"):
        if objects.exists(mine_key(run_id, expert.name)):
            progress(f"mine {expert.name}: result file for run {run_id} exists, skipping")
            continue
        t = time.monotonic()
        n = len(sampling_grid(config.settings.mining, run_id, expert.name))
        progress(f"mine {expert.name}: sampling {n} completions ...")
        resolved = resolve_model(expert.name, expert.model, config.model_cache)
        prompt = mining_prompt(expert, config, resolved.path)
        backend = backend_for(expert, config)
        try:
            result = mine_expert(backend, prompt, config.settings.mining, run_id)
        finally:
            backend.close()
        # data first, the kept records last: a batch exists once its main file does
        objects.put_bytes(mine_key(run_id, expert.name, dropped=True), _jsonl(result.dropped))
        objects.put_bytes(mine_key(run_id, expert.name), _jsonl(result.records))
        counts[expert.name] = result.counts
        progress(f"mine {expert.name}: {result.counts} in {time.monotonic() - t:.0f}s")
    return counts


def ingest_mined(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> StageReport:
    """Gate each mined batch (GX), quarantine failures, merge the rest; exact duplicates are dropped here."""
    from warriorflow.quality.gates import gate_mined, quarantine_batch
    from warriorflow.store.ingest import quarantine, record_quarantine

    started, report = now_utc(), StageReport("ingest_mined", run_id)
    m = config.settings.mining
    c: Counter = Counter()
    done = {r["uri"] for r in store.query("SELECT uri FROM ingested_files")}
    for key in sorted(objects.list(f"runs/{run_id}/mine/")):
        if not key.endswith(".jsonl") or key.endswith(".dropped.jsonl") or objects.uri(key) in done:
            continue
        data = objects.get_bytes(key)
        try:
            rows = _read_jsonl(data)
        except (ValueError, UnicodeDecodeError) as exc:
            rows, parse_error = [], str(exc)
        else:
            parse_error = None
        result = None if parse_error else gate_mined(
            rows, experts=config.registry.names(), temperatures=m.temperatures, top_ps=m.top_ps,
            min_chars=m.min_chars, max_chars=m.max_chars)
        if parse_error or not result.success:
            reason = parse_error or result.summary()
            target = quarantine_batch(objects, key, "mine", result) if result else quarantine(
                objects, key, "mine", parse_error)
            record_quarantine(store, objects, key, target, "mine", reason)
            report.notes.append(f"quarantined {key}: {reason}")
            c["quarantined_batches"] += 1
            continue
        dropped_key = key.removesuffix(".jsonl") + ".dropped.jsonl"
        if objects.exists(dropped_key):
            dropped = _read_jsonl(objects.get_bytes(dropped_key))
            store.upsert("dropped_records", dropped, key=["record_id"])
            c.update(f"dropped_{d['reason']}" for d in dropped)
        existing = {r["instruction_id"] for r in store.query(
            "SELECT instruction_id FROM instructions WHERE instruction_id IN (SELECT unnest(?))",
            [[r["instruction_id"] for r in rows]])}
        fresh, dups, seen = [], [], set(existing)
        for r in rows:
            (dups if r["instruction_id"] in seen else fresh).append(r)
            seen.add(r["instruction_id"])
        store.upsert("instructions", [dict(r, source_uri=objects.uri(key)) for r in fresh], key=["instruction_id"])
        store.upsert("dropped_records", [
            {"record_id": ids.record_id("exact", r["run_id"], r["expert"], r["temperature"], r["top_p"], r["seed"]),
             "stage": "dedup", "reason": "exact_duplicate", "expert": r["expert"],
             "instruction_id": r["instruction_id"], "raw_text": r["text"],
             "provenance": {k: r[k] for k in ("temperature", "top_p", "seed", "run_id", "prefix_sha256")},
             "run_id": run_id} for r in dups], key=["record_id"])
        store.upsert("ingested_files", [{"uri": objects.uri(key), "sha256": hashlib.sha256(data).hexdigest(),
                                         "kind": "instructions", "n_rows": len(rows)}], key=["uri"])
        c["ingested"] += len(fresh)
        c["dropped_exact_duplicate"] += len(dups)
    report.counts = {k: v for k, v in c.items() if v}
    return _record(store, report, started)


# ----------------------------------------------------------------------------------------- dedup


def dedup_stage(config: Config, store: RatingStore, run_id: str) -> StageReport:
    """Near duplicates (MinHash LSH) of everything kept before, in this run or any earlier one."""
    from warriorflow.stages.dedup import (
        ALGORITHM_VERSION,
        EMPTY_VALUE,
        MinHasher,
        find_near_duplicates,
        load_index,
        signature_to_bytes,
    )

    started, report = now_utc(), StageReport("dedup", run_id)
    d = config.settings.dedup
    todo = _at_status(store, MINED)
    stored = store.query("SELECT instruction_id, signature FROM minhash_signatures WHERE num_perm = ? AND seed = ? "
                         "AND shingle_size = ? AND algorithm = ? ORDER BY created_at, instruction_id",
                         [d.num_perm, d.seed, d.shingle_size, ALGORITHM_VERSION])
    index, known = load_index(((r["instruction_id"], r["signature"]) for r in stored), d)
    hasher = MinHasher(num_perm=d.num_perm, seed=d.seed, shingle_size=d.shingle_size)
    decisions, sigs = find_near_duplicates([r["instruction_id"] for r in todo], [r["text"] for r in todo],
                                           index, known, hasher, d.threshold)
    kept, dups = [], []
    for row, decision, sig in zip(todo, decisions, sigs):
        if decision.duplicate_of is None:
            kept.append((row, sig))
        else:
            dups.append(dict(row, duplicate_of=decision.duplicate_of))
    store.upsert("minhash_signatures", [
        {"instruction_id": r["instruction_id"], "num_perm": d.num_perm, "seed": d.seed, "shingle_size": d.shingle_size,
         "algorithm": ALGORITHM_VERSION, "signature": signature_to_bytes(s)}
        for r, s in kept if not (s == EMPTY_VALUE).all()], key=["instruction_id"])
    _advance(store, (r for r, _ in kept), UNIQUE)
    _drop(store, "dedup", {"near_duplicate": dups}, run_id)
    report.counts = {"input": len(todo), "index_size_before": len(stored), "kept": len(kept),
                     "dropped_near_duplicate": len(dups)}
    return _record(store, report, started)


# ----------------------------------------------------------------------------------------- score


def score_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str,
                progress: Progress = log.info) -> StageReport:
    """Judges score each unique instruction 1-10 (constrained); keep medians >= keep_min."""
    from warriorflow.inference.factory import backend_for
    from warriorflow.quality.gates import gate_scored, quarantine_batch
    from warriorflow.stages.difficulty import aggregate, eligible_judges, score_instructions
    from warriorflow.store.ingest import record_quarantine

    started, report = now_utc(), StageReport("score", run_id)
    s = config.settings.difficulty
    todo = _at_status(store, UNIQUE)
    judges = {j.name for ins in todo for j in eligible_judges(ins["expert"], config.registry)}
    key = f"runs/{run_id}/score/scores.jsonl"
    if todo and not objects.exists(key):
        template = config.prompt_path(s.prompt).read_text(encoding="utf-8")
        backends = {}
        try:
            for name in sorted(judges):
                backends[name] = backend_for(config.registry.get(name), config)
            progress(f"score: {len(todo)} instructions, judges {sorted(judges)} ...")
            rows = score_instructions(todo, config.registry, backends, template, config.settings.mining.language,
                                      run_id, s.max_judges)
        finally:
            for b in backends.values():
                b.close()
        objects.put_bytes(key, _jsonl(rows))
    rows = _read_jsonl(objects.get_bytes(key)) if todo else []
    gate = gate_scored(rows)
    if not gate.success:
        record_quarantine(store, objects, key, quarantine_batch(objects, key, "score", gate), "score", gate.summary())
        raise StoreError(objects.uri(key), f"failed its quality gate and was quarantined: {gate.summary()}",
                         "see the GX result JSON beside the quarantined file; fix the judge backend and re-run")
    store.upsert("difficulty_scores", rows, key=["instruction_id", "judge"])
    verdicts = aggregate([r["instruction_id"] for r in todo], rows, s.keep_min)
    by_id = {r["instruction_id"]: r for r in todo}
    kept = [v for v in verdicts if v.keep]
    store.update("instructions", "instruction_id",
                 [{"instruction_id": v.instruction_id, "difficulty": v.median} for v in verdicts])
    _advance(store, ({"instruction_id": v.instruction_id} for v in kept), SCORED)
    drops: dict[str, list[dict]] = {}
    for v in verdicts:
        if not v.keep:
            drops.setdefault(v.reason, []).append(dict(by_id[v.instruction_id], difficulty=v.median))
    _drop(store, "difficulty", drops, run_id)
    report.counts = {"input": len(todo), "scores": len(rows), "invalid_scores": sum(not r["valid"] for r in rows),
                     "kept": len(kept), **{f"dropped_{k}": len(v) for k, v in sorted(drops.items())}}
    return _record(store, report, started)


# -------------------------------------------------------------------------------- decontaminate


def decontaminate_stage(config: Config, store: RatingStore, run_id: str) -> StageReport:
    """Drop instructions sharing an n-gram with HumanEval, MBPP+ or CRUXEval; record overlaps."""
    from warriorflow.stages.decontaminate import NGramIndex, contamination_rate, decontaminate, load_benchmarks

    started, report = now_utc(), StageReport("decontaminate", run_id)
    s = config.settings.decontamination
    todo = _at_status(store, SCORED)
    index = NGramIndex(s.ngram)
    index.add(load_benchmarks(s, config.repo_path))
    decisions = decontaminate([(r["instruction_id"], r["text"]) for r in todo], index, s.min_shared)
    store.upsert("contamination", [
        {"instruction_id": d.instruction_id, "benchmark": b, "task_id": m.task_id, "ngram": s.ngram,
         "shared_ngrams": m.shared, "overlap": m.overlap, "run_id": run_id}
        for d in decisions for b, m in d.per_benchmark.items()], key=["instruction_id", "benchmark"])
    by_id = {r["instruction_id"]: r for r in todo}
    dirty = [dict(by_id[d.instruction_id], benchmark=d.best.benchmark, task_id=d.best.task_id)
             for d in decisions if d.contaminated]
    _advance(store, (by_id[d.instruction_id] for d in decisions if not d.contaminated), CLEAN)
    _drop(store, "decontaminate", {"contaminated": dirty}, run_id)
    report.counts = {"input": len(todo), "kept": len(todo) - len(dirty), "dropped_contaminated": len(dirty),
                     "contamination_rate_pct": round(100 * contamination_rate(decisions), 2) if decisions else 0}
    return _record(store, report, started)


# -------------------------------------------------------------------------------------- compress


def compress_stage(config: Config, store: RatingStore, run_id: str, progress: Progress = log.info) -> StageReport:
    """KCenterGreedy over the clean pool, warm-started from every earlier selection."""
    import numpy as np

    from warriorflow.quality.gates import gate_selected
    from warriorflow.stages.compress import embed, k_center_greedy, load_sentence_model, model_id, resolve_budget

    started, report = now_utc(), StageReport("compress", run_id)
    s = config.settings.compression
    name = model_id(s.embed_model)
    pool = _at_status(store, CLEAN)
    selected = _at_status(store, SELECTED)
    needed = pool + selected
    cached = {r["instruction_id"]: r["vector"] for r in store.query(
        "SELECT instruction_id, vector FROM embeddings WHERE model = ?", [name])}
    missing = [r for r in needed if r["instruction_id"] not in cached]
    if missing:
        progress(f"compress: embedding {len(missing)} instructions with {name} ...")
        vectors = embed(load_sentence_model(s.embed_model), [r["text"] for r in missing], batch_size=s.batch_size)
        store.upsert("embeddings", [{"instruction_id": r["instruction_id"], "model": name, "dim": int(v.shape[0]),
                                     "vector": v.tolist()} for r, v in zip(missing, vectors)],
                     key=["instruction_id", "model"])
        cached.update({r["instruction_id"]: v for r, v in zip(missing, vectors)})
    budget = resolve_budget(s.budget, len(pool))
    picks: list[int] = []
    if budget:
        X = np.asarray([cached[r["instruction_id"]] for r in pool], dtype=np.float32)
        centers = np.asarray([cached[r["instruction_id"]] for r in selected], dtype=np.float32) if selected else None
        result = k_center_greedy(X, budget, centers=centers, seed=s.seed)
        # a pick at distance 0 is a copy of an earlier selection: it adds nothing, leave it in the pool
        picks = [i for i, dist in zip(result.picks, result.min_distances) if dist > 0.0]
    base_rank = store.query("SELECT coalesce(max(pick_rank) + 1, 0) AS n FROM instruction_selections")[0]["n"]
    rows = [{"instruction_id": pool[i]["instruction_id"], "run_id": run_id, "pick_rank": base_rank + k,
             "embed_model": name} for k, i in enumerate(picks)]
    gate = gate_selected(rows, max_rows=budget)
    if not gate.success:
        raise StoreError(f"selection of run {run_id}", f"failed its quality gate: {gate.summary()}",
                         "this is a bug in compression; report it with the GX result")
    store.upsert("instruction_selections", rows, key=["instruction_id"])
    _advance(store, rows, SELECTED)
    report.counts = {"pool": len(pool), "already_selected": len(selected), "budget": budget, "selected": len(rows),
                     "not_selected_yet": len(pool) - len(rows)}
    return _record(store, report, started)


def writer_stages(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """ingest -> dedup -> score -> decontaminate -> compress -> tag, as the single writer of the store."""
    from warriorflow.stages.tagging import tag_stage

    objects = open_objects(config)
    with RatingStore(config.duckdb_path) as store:
        return [ingest_mined(config, store, objects, run_id), dedup_stage(config, store, run_id),
                score_stage(config, store, objects, run_id, progress), decontaminate_stage(config, store, run_id),
                compress_stage(config, store, run_id, progress), tag_stage(config, store, objects, run_id, progress)]


def run_all(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """One full instruction-pipeline run here: mine every expert, then the writer stages."""
    mine_to_files(config, open_objects(config), run_id, progress=progress)
    return writer_stages(config, run_id, progress)
