"""The retrain DAG's steps: gate on new gold -> snapshot -> train (a worker) -> record the run ->
evaluate and compare -> report."""

from __future__ import annotations

import logging

from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore
from warriorflow.tasks.worker import config, run_cli

log = logging.getLogger(__name__)


def new_gold_since_last_snapshot() -> int:
    """The gate reads only: it runs outside the writer pool, so it opens the store read-only."""
    cfg = config()
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        return store.named("new_gold_since_snapshot")[0]["n"]


def retrain_gate(min_new_gold: int) -> tuple[bool, str]:
    """(go, why): retrain only once at least ``min_new_gold`` new gold examples exist since the last snapshot."""
    n = new_gold_since_last_snapshot()
    if n < min_new_gold:
        return False, f"retrain gate closed: {n} new gold examples since the last snapshot, need {min_new_gold}"
    return True, f"retrain gate open: {n} new gold examples since the last snapshot (need {min_new_gold})"


# ------------------------------------------------------------------ retraining (gate -> snapshot -> train ...)


def snapshot() -> str:
    """Publish a snapshot of every gold example (data files first, manifest last); return its id."""
    from warriorflow.store.snapshots import create_snapshot

    cfg = config()
    with RatingStore(cfg.duckdb_path) as store:
        info = create_snapshot(cfg, store, open_objects(cfg))
    log.info("snapshot %s (%s): %s", info.snapshot_id, "new" if info.created else "existing", info)
    return info.snapshot_id


def train_args(snapshot_id: str) -> list[str]:
    """The worker command that trains on a snapshot (a local process, or a pod on the training node pool)."""
    return ["train", "--snapshot", snapshot_id, "--no-record"]


def train_local(snapshot_id: str) -> None:
    run_cli(*train_args(snapshot_id))


def record_training(snapshot_id: str) -> str:
    """Record the training run a worker finished for ``snapshot_id`` (the single writer); return its id."""
    from warriorflow.training.sft import record_training_run, training_run_id_for

    cfg = config()
    run_id = training_run_id_for(cfg, snapshot_id)
    with RatingStore(cfg.duckdb_path) as store:
        row = record_training_run(cfg, store, open_objects(cfg), run_id)
    log.info("training run %s: step %s, model %s", run_id, row["global_step"], row["output_uri"])
    return run_id


def plan_evaluations(training_run_id: str) -> list[str]:
    """The writer plans the evaluation jobs: the baseline's (until its verdicts on the same plan are in) and the
    new model's; return their request URIs (the generate and check jobs' inputs)."""
    from warriorflow.evaluation.jobs import REQUEST, baseline_ref, eval_key, plan_evaluation

    cfg = config()
    objects = open_objects(cfg)
    uris = []
    for ref in (baseline_ref(cfg), training_run_id):
        req = plan_evaluation(cfg, objects, ref)
        with RatingStore(cfg.duckdb_path, read_only=True) as store:
            done = store.query("SELECT count(*) AS n FROM eval_results WHERE model_ref = ? AND "
                               "json_extract_string(details, '$.eval_job') = ?", [ref, req.eval_id])[0]["n"]
        if ref == training_run_id or done < len(req.benchmarks):
            uris.append(objects.uri(eval_key(req.eval_id, REQUEST)))
            log.info("evaluation of %s planned: %s", ref, uris[-1])
        else:
            log.info("%s is evaluated on this plan already (%s)", ref, req.eval_id)
    return uris


def eval_job_local(step: str, uri: str) -> str:
    """``warriorflow evaluate-job STEP --in URI`` as a local worker process (a pod on Kubernetes)."""
    run_cli("evaluate-job", step, "--in", uri)
    return uri


def ingest_and_decide(training_run_id: str, uris: list[str]) -> dict:
    """The writer ingests the evaluations' verdicts, then compares the new model with the champion (else the
    baseline) by the paired test of ``evaluation.promotion`` and records the decision."""
    from warriorflow.evaluation.jobs import ingest
    from warriorflow.evaluation.run import compare_and_decide

    cfg = config()
    objects = open_objects(cfg)
    root = objects.uri("").rstrip("/") + "/"
    with RatingStore(cfg.duckdb_path) as store:
        for uri in uris:
            for s in ingest(cfg, store, objects, uri[len(root):] if uri.startswith(root) else uri):
                log.info("%s: pass@1 %.3f (%d problems) %s", s.name, s.pass_at_1, s.n_problems,
                         " ".join(f"pass@{k} {v:.3f}" for k, v in s.pass_at_k.items() if k != "1"))
    d = compare_and_decide(cfg, training_run_id)
    log.info("vs %s: %s -> %s (%s)", d.previous or "(nothing)", d.deltas, "PROMOTED" if d.promoted else "not promoted",
             "; ".join(d.reasons))
    return {"model": training_run_id, "previous": d.previous, "promoted": d.promoted, "deltas": d.deltas,
            "reasons": list(d.reasons)}


def report() -> str:
    """Regenerate the flywheel report (HTML + PNG) the status page links to; return its index.html path."""
    from warriorflow.report import write_report

    path = write_report(config())
    log.info("report: %s", path)
    return str(path)
