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


def evaluate_and_decide(training_run_id: str) -> dict:
    """Evaluate the new model (and the baseline once, so there is something to compare with), compare it with
    the champion (else the baseline) per benchmark, and record the promotion decision."""
    from warriorflow.evaluation.records import latest_scores
    from warriorflow.evaluation.run import compare_and_decide, evaluate_model

    cfg = config()
    baseline = cfg.settings.evaluation.baseline
    if baseline:
        with RatingStore(cfg.duckdb_path) as store:
            evaluated = bool(latest_scores(store, baseline))
        if not evaluated:
            log.info("evaluating the baseline %s first", baseline)
            evaluate_model(cfg, baseline)
    report = evaluate_model(cfg, training_run_id)
    for s in report.scores:
        log.info("%s %s: pass@1 %.3f (%d/%d)", training_run_id, s.name, s.pass_at_1, s.n_passed, s.n_problems)
    d = compare_and_decide(cfg, training_run_id)
    log.info("vs %s: %s -> %s (%s)", d.previous or "(nothing)", d.deltas, "PROMOTED" if d.promoted else "not promoted",
             "; ".join(d.reasons))
    return {"model": training_run_id, "previous": d.previous, "promoted": d.promoted, "deltas": d.deltas}


def report() -> str:
    """Regenerate the flywheel report (HTML + PNG) the status page links to; return its index.html path."""
    from warriorflow.report import write_report

    path = write_report(config())
    log.info("report: %s", path)
    return str(path)
