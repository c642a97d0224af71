"""What the Airflow tasks call. The DAG files only compose these; everything here runs without Airflow.

Worker steps (mining an expert, a battle batch) run the same CLI command a Kubernetes pod runs, as a
local process: ``python -m warriorflow.cli ...``. They never open the rating store. Writer steps
(ingest and everything after) open it; in Airflow they share the single-slot pool ``warriorflow_db``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime

from warriorflow import arena, pipeline
from warriorflow.config import Config, load_config
from warriorflow.errors import StoreError
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)

DB_POOL = "warriorflow_db"


def config() -> Config:
    return load_config()


def run_cli(*args: str) -> None:
    """Run `warriorflow ARGS` as a local process (what a pod runs in production); raise on failure."""
    cmd = [sys.executable, "-m", "warriorflow.cli", *args]
    log.info("running %s", " ".join(cmd))
    env = dict(os.environ, WARRIORFLOW_ROLE="worker")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        log.info("| %s", line)
    if proc.returncode != 0:
        raise RuntimeError(f"`warriorflow {' '.join(args)}` exited with {proc.returncode}; see the log above")


def miners() -> list[str]:
    return [e.name for e in config().registry.with_role("mine")]


def mine_expert(expert: str, run_id: str) -> None:
    run_cli("mine", "--no-ingest", "--expert", expert, "--run-id", run_id)


class QualityGateFailed(StoreError):
    """A batch failed its Great Expectations gate: it was quarantined, and the Airflow task fails."""


def _logged(reports: list[pipeline.StageReport]) -> dict[str, dict[str, int]]:
    """Log every stage's counts; fail (after the good batches went through) if any batch was quarantined, so
    the run shows red and its log names the failed expectations. Re-running is safe: the bad batch has left
    the run's inputs for quarantine/."""
    for r in reports:
        log.info("%s", r.table())
    failed = [(r.stage, note) for r in reports if r.counts.get("quarantined_batches") for note in r.notes
              if note.startswith("quarantined ")]
    if failed:
        for stage, note in failed:
            log.error("quality gate failed in %s: %s", stage, note)
        raise QualityGateFailed(f"{len(failed)} batch(es) of this run", "failed their quality gate and were "
                                "quarantined: " + " | ".join(note for _, note in failed),
                                "read the GX result (*.gx.json) beside each file under quarantine/, fix the "
                                "worker that wrote it, then clear this task: good batches were already merged")
    return {r.stage: r.counts for r in reports}


def instruction_stages(run_id: str) -> dict[str, dict[str, int]]:
    """ingest -> dedup -> score -> decontaminate -> compress, as the single writer."""
    return _logged(pipeline.writer_stages(config(), run_id))


TIMED_RUN_TYPES = ("scheduled", "backfill")  # Airflow DagRunType values of runs that own a data interval


def plan_battles(run_id: str, run_type: str, since: datetime | None, until: datetime | None) -> list[str]:
    """Plan missing battles; return batch URIs. A scheduled or backfill run plans the instructions selected
    in its data interval; any other run (asset-triggered, manual) plans everything still missing."""
    timed = str(getattr(run_type, "value", run_type)) in TIMED_RUN_TYPES
    cfg = config()
    objects = pipeline.open_objects(cfg)
    with RatingStore(cfg.duckdb_path) as store:
        report, keys = arena.plan_stage(cfg, store, objects, run_id, since=since if timed else None,
                                        until=until if timed else None)
    log.info("%s", report.table())
    return [objects.uri(k) for k in keys]


def battle_out_uri(in_uri: str) -> str:
    """Where a battle batch writes its results: ``.../battle/in/batch-N.json`` -> ``.../battle/out/batch-N.jsonl``."""
    return in_uri.replace("/battle/in/", "/battle/out/").removesuffix(".json") + ".jsonl"


def battle_batch(in_uri: str) -> str:
    out_uri = battle_out_uri(in_uri)
    run_cli("battle-batch", "--in", in_uri, "--out", out_uri)
    return out_uri


def ingest_and_rate(run_id: str) -> dict[str, dict[str, int]]:
    return _logged(arena.ingest_and_rate(config(), run_id))


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
    from warriorflow.snapshots import create_snapshot

    cfg = config()
    with RatingStore(cfg.duckdb_path) as store:
        info = create_snapshot(cfg, store, pipeline.open_objects(cfg))
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
        row = record_training_run(cfg, store, pipeline.open_objects(cfg), run_id)
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
