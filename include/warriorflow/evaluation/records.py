"""Evaluation results and promotion decisions in the rating store (idempotent upserts)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from warriorflow.errors import StoreError
from warriorflow.evaluation.compare import Decision
from warriorflow.evaluation.harness import BenchmarkScore
from warriorflow.store.rating_store import RatingStore


def eval_id(model_ref: str, score: BenchmarkScore) -> str:
    """hash(model, benchmark, data sha256, harness version, the evaluated task ids)."""
    tasks = hashlib.sha256("\n".join(r.task_id for r in score.results).encode()).hexdigest()
    blob = json.dumps([model_ref, score.name, score.data_sha256, score.harness_version, tasks])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def eval_row(model_ref: str, score: BenchmarkScore, extra: dict | None = None) -> dict:
    return {
        "eval_id": eval_id(model_ref, score), "model_ref": model_ref, "benchmark": score.name,
        "pass_at_1": score.pass_at_1, "n_problems": score.n_problems, "data_sha256": score.data_sha256,
        "harness_version": score.harness_version, "evaluated_at": datetime.now(UTC).replace(tzinfo=None),
        "details": {"kind": score.kind, "path": score.path, "n_total": score.n_total, "n_passed": score.n_passed,
                    "reasons": score.reasons(), "problems": [r.as_dict() for r in score.results], **(extra or {})},
    }


def write_scores(store: RatingStore, model_ref: str, scores: list[BenchmarkScore], extra: dict | None = None) -> int:
    rows = [eval_row(model_ref, s, extra) for s in scores]
    return store.upsert("eval_results", rows, key=["eval_id"],
                        update=["pass_at_1", "n_problems", "details", "evaluated_at"])


def latest_scores(store: RatingStore, model_ref: str) -> dict[str, float]:
    """benchmark -> pass@1 of the model's most recent result per benchmark."""
    rows = store.query(
        "SELECT benchmark, pass_at_1 FROM (SELECT *, row_number() OVER (PARTITION BY benchmark "
        "ORDER BY evaluated_at DESC) AS rn FROM eval_results WHERE model_ref = ?) WHERE rn = 1", [model_ref])
    return {r["benchmark"]: r["pass_at_1"] for r in rows}


def problem_score(record: Any, where: str) -> tuple[str, float]:
    """``(task_id, score)`` of one stored per-problem result (``details.problems[i]``): the fraction of samples
    that passed when it has ``n_samples``/``n_correct``, else ``passed`` as 1/0. A malformed record is a
    StoreError naming ``where``."""
    fix = "re-evaluate the model (`warriorflow evaluate`); stored results are written by the harness only"
    if not isinstance(record, dict):
        raise StoreError(where, f"is not a problem record (a {type(record).__name__})", fix)
    task_id = record.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise StoreError(where, f"has no task_id (got {task_id!r})", fix)
    where = f"{where} (task {task_id})"
    if "n_samples" in record or "n_correct" in record:
        n, k = record.get("n_samples"), record.get("n_correct")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (n, k)) or n < 1 or not 0 <= k <= n:
            raise StoreError(where, f"has n_samples={n!r}, n_correct={k!r}: need integers with 0 <= n_correct <= "
                             "n_samples and n_samples >= 1", fix)
        return task_id, k / n
    passed = record.get("passed")
    if not isinstance(passed, bool):
        raise StoreError(where, f"has passed={passed!r}, not true/false", fix)
    return task_id, 1.0 if passed else 0.0


def latest_problem_scores(store: RatingStore, model_ref: str) -> dict[str, dict[str, float]]:
    """benchmark -> task_id -> score of the model's most recent result per benchmark (``details.problems``:
    see :func:`problem_score`). A result without per-problem records, or with a malformed or duplicated one,
    is a StoreError."""
    rows = store.query(
        "SELECT eval_id, benchmark, details FROM (SELECT *, row_number() OVER (PARTITION BY benchmark "
        "ORDER BY evaluated_at DESC) AS rn FROM eval_results WHERE model_ref = ?) WHERE rn = 1", [model_ref])
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        where = f"eval_results {r['eval_id']} ({model_ref}, {r['benchmark']})"
        details = r["details"]
        try:
            details = json.loads(details) if isinstance(details, str) else details
        except ValueError:
            details = None
        problems = details.get("problems") if isinstance(details, dict) else None
        if not isinstance(problems, list):
            raise StoreError(where, "has no per-problem results (details.problems), so it cannot be paired",
                             f"re-evaluate: `warriorflow evaluate {model_ref} -b {r['benchmark']}`")
        scores: dict[str, float] = {}
        for i, p in enumerate(problems):
            task_id, score = problem_score(p, f"{where} problem #{i}")
            if task_id in scores:
                raise StoreError(f"{where} problem #{i}", f"repeats task_id {task_id!r}",
                                 f"re-evaluate: `warriorflow evaluate {model_ref} -b {r['benchmark']}`")
            scores[task_id] = score
        out[r["benchmark"]] = scores
    return out


def training_run(store: RatingStore, model_ref: str) -> dict | None:
    """The training_runs row of ``model_ref`` (None for expert:/hf: refs and unknown ids)."""
    if model_ref.startswith(("expert:", "hf:")):
        return None
    rows = store.query("SELECT training_run_id, status, output_uri FROM training_runs WHERE training_run_id = ?",
                       [model_ref])
    return rows[0] if rows else None


def champion(store: RatingStore) -> str | None:
    """The most recently promoted model, if any."""
    rows = store.query("SELECT candidate FROM model_promotions WHERE promoted ORDER BY decided_at DESC LIMIT 1")
    return rows[0]["candidate"] if rows else None


def decision_id(d: Decision) -> str:
    """hash(candidate, previous, deltas, promoted, test, statistic, p-value, evidence): new evidence, new id."""
    blob = json.dumps([d.candidate, d.previous, d.deltas, d.promoted, d.test, d.statistic, d.p_value,
                       d.evidence], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def write_decision(store: RatingStore, d: Decision, rule: dict, harness_version: str) -> str:
    did = decision_id(d)
    store.upsert("model_promotions", [{
        "decision_id": did, "candidate": d.candidate, "previous": d.previous, "promoted": d.promoted,
        "deltas": d.deltas, "mean_delta": d.mean_delta, "rule": rule, "reasons": json.dumps(d.reasons),
        "harness_version": harness_version, "test": d.test, "statistic": d.statistic, "p_value": d.p_value,
        "evidence": {**d.evidence, "n_paired": d.n_paired}}], key=["decision_id"])
    return did


def decisions(store: RatingStore) -> list[dict]:
    """Every promotion decision, newest first, with its test, statistic, p-value and reasons (parsed)."""
    rows = store.query(
        "SELECT decision_id, candidate, previous, promoted, test, statistic, p_value, mean_delta, deltas, reasons, "
        "evidence, decided_at FROM model_promotions ORDER BY decided_at DESC, decision_id")
    for r in rows:
        for k in ("deltas", "reasons", "evidence"):
            try:
                r[k] = json.loads(r[k]) if isinstance(r[k], str) else r[k]
            except ValueError:
                pass
        ev = r["evidence"] if isinstance(r["evidence"], dict) else {}
        r["n_paired"] = ev.get("n_paired")
        r["alpha"] = (ev.get("rule") or {}).get("alpha")
    return rows


def model_table(store: RatingStore) -> list[dict]:
    """Every evaluated model and training run: status, latest pass@1 per benchmark, promotion state."""
    scores = store.query(
        "SELECT model_ref, benchmark, pass_at_1, n_problems, evaluated_at FROM (SELECT *, row_number() OVER "
        "(PARTITION BY model_ref, benchmark ORDER BY evaluated_at DESC) AS rn FROM eval_results) WHERE rn = 1")
    runs = store.query("SELECT training_run_id, status, base_model, snapshot_id, started_at FROM training_runs")
    decisions = store.query(
        "SELECT candidate, promoted, previous, mean_delta, test, p_value, decided_at FROM (SELECT *, row_number() OVER "
        "(PARTITION BY candidate ORDER BY decided_at DESC) AS rn FROM model_promotions) WHERE rn = 1")
    champ = champion(store)
    models: dict[str, dict] = {}
    for r in runs:
        models[r["training_run_id"]] = {"model_ref": r["training_run_id"], "kind": "training_run",
                                        "status": r["status"], "base_model": r["base_model"],
                                        "snapshot_id": r["snapshot_id"], "scores": {}, "n_problems": {}}
    for s in scores:
        m = models.setdefault(s["model_ref"], {"model_ref": s["model_ref"], "kind": "baseline", "status": None,
                                               "base_model": None, "snapshot_id": None, "scores": {},
                                               "n_problems": {}})
        m["scores"][s["benchmark"]] = s["pass_at_1"]
        m["n_problems"][s["benchmark"]] = s["n_problems"]
        m["evaluated_at"] = max(str(s["evaluated_at"]), m.get("evaluated_at", ""))
    for d in decisions:
        if d["candidate"] in models:
            models[d["candidate"]].update(promoted=d["promoted"], compared_with=d["previous"],
                                          mean_delta=d["mean_delta"], test=d["test"], p_value=d["p_value"])
    for m in models.values():
        m["champion"] = m["model_ref"] == champ
        m.setdefault("promoted", None)
    return sorted(models.values(), key=lambda m: (m.get("evaluated_at") or "", m["model_ref"]))
