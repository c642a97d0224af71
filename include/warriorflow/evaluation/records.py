"""Evaluation results and promotion decisions in the rating store (idempotent upserts)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

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


def champion(store: RatingStore) -> str | None:
    """The most recently promoted model, if any."""
    rows = store.query("SELECT candidate FROM model_promotions WHERE promoted ORDER BY decided_at DESC LIMIT 1")
    return rows[0]["candidate"] if rows else None


def decision_id(d: Decision) -> str:
    blob = json.dumps([d.candidate, d.previous, d.deltas, d.promoted], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def write_decision(store: RatingStore, d: Decision, rule: dict, harness_version: str) -> str:
    did = decision_id(d)
    store.upsert("model_promotions", [{
        "decision_id": did, "candidate": d.candidate, "previous": d.previous, "promoted": d.promoted,
        "deltas": d.deltas, "mean_delta": d.mean_delta, "rule": rule, "reasons": json.dumps(d.reasons),
        "harness_version": harness_version}], key=["decision_id"])
    return did


def model_table(store: RatingStore) -> list[dict]:
    """Every evaluated model and training run: status, latest pass@1 per benchmark, promotion state."""
    scores = store.query(
        "SELECT model_ref, benchmark, pass_at_1, n_problems, evaluated_at FROM (SELECT *, row_number() OVER "
        "(PARTITION BY model_ref, benchmark ORDER BY evaluated_at DESC) AS rn FROM eval_results) WHERE rn = 1")
    runs = store.query("SELECT training_run_id, status, base_model, snapshot_id, started_at FROM training_runs")
    decisions = store.query(
        "SELECT candidate, promoted, previous, mean_delta, decided_at FROM (SELECT *, row_number() OVER "
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
                                          mean_delta=d["mean_delta"])
    for m in models.values():
        m["champion"] = m["model_ref"] == champ
        m.setdefault("promoted", None)
    return sorted(models.values(), key=lambda m: (m.get("evaluated_at") or "", m["model_ref"]))
