"""mine -> battle -> retrain with dag.test() on the embedded experts (real tiny models, short generations):
each DAG runs to success and emits the asset event that triggers the next."""

from __future__ import annotations

import pytest

from tests.helpers import write_yaml
from warriorflow.config import CONFIG_DIR

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def tiny_flywheel(tmp_path, monkeypatch):
    settings = write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {CONFIG_DIR / "experts.embedded.yaml"}
paths: {{home: {tmp_path / "home"}}}
inference: {{llamacpp: {{threads: 2, n_parallel: 4, ctx_per_sequence: 1536}}}}
mining: {{temperatures: [1.0], top_ps: [0.99], samples_per_config: 2, max_tokens: 64, min_chars: 15}}
difficulty: {{keep_min: 1}}
compression: {{budget: 1.0}}
arena: {{response_max_tokens: 32, both_orders: true}}
rating: {{bootstrap_rounds: 10}}
flywheel: {{min_new_gold: 1}}
training: {{max_steps: 1, save_steps: 1, max_seq_length: 256}}
evaluation: {{problems_per_benchmark: 1, max_tokens: 48, benchmarks: [{{name: humaneval, kind: humaneval}}]}}
""")
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(settings))
    return settings


def _states(run) -> dict[str, str]:
    out = {}
    for ti in run.get_task_instances():
        out.setdefault(ti.task_id, set()).add(str(ti.state).rsplit(".", 1)[-1].lower())
    return {k: "|".join(sorted(v)) for k, v in out.items()}


def _asset_events(uri: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
            AssetModel.uri == uri).count()


def test_mine_then_battle_then_retrain(dagbag, tiny_flywheel):
    from warriorflow.config import load_config
    from warriorflow.store.rating_store import RatingStore

    mine = dagbag.get_dag("warriorflow_mine").test()
    assert _states(mine) == {"experts": "success", "mine": "success", **dict.fromkeys(
        ["ingest", "dedup", "filter", "plan_scores", "score_jobs", "score", "decontaminate", "plan_embeddings",
         "embed", "compress", "plan_tags", "tag_jobs", "tag"], "success"), "run_failed_if_a_task_failed": "skipped"}
    assert _asset_events("warriorflow://instructions/selected") >= 1

    battle = dagbag.get_dag("warriorflow_battle").test()
    assert set(_states(battle).values()) == {"success", "skipped"}
    assert _states(battle)["run_failed_if_a_task_failed"] == "skipped"  # nothing failed
    assert _asset_events("warriorflow://battles/gold") >= 1

    with RatingStore(load_config().duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM battles WHERE status = 'done'")[0]["n"] >= 1
        assert store.query("SELECT count(*) AS n FROM sft")[0]["n"] >= 1

    retrain = dagbag.get_dag("warriorflow_retrain").test()
    assert set(_states(retrain).values()) == {"success"}, _states(retrain)
    assert _asset_events("warriorflow://snapshots/latest") >= 1
    with RatingStore(load_config().duckdb_path, read_only=True) as store:
        snap = store.query("SELECT snapshot_id, n_examples FROM snapshots")
        runs = store.query("SELECT training_run_id, snapshot_id, status, global_step FROM training_runs")
        evals = store.query("SELECT model_ref, benchmark FROM eval_results ORDER BY model_ref")
        decisions = store.query("SELECT candidate, previous, promoted, test, p_value FROM model_promotions")
    assert len(snap) == 1 and snap[0]["n_examples"] >= 1
    assert runs == [{"training_run_id": runs[0]["training_run_id"], "snapshot_id": snap[0]["snapshot_id"],
                     "status": "done", "global_step": 1}]
    # the evaluation ran as jobs (generate, check) and the writer ingested them: the base model is the baseline
    assert {e["model_ref"] for e in evals} == {runs[0]["training_run_id"], "base:smollm2-135m-instruct"}
    [d] = decisions
    assert (d["candidate"], d["previous"], d["test"]) == (runs[0]["training_run_id"], "base:smollm2-135m-instruct",
                                                          "mcnemar")
    assert not d["promoted"] and d["p_value"] >= 0.5  # one problem cannot be evidence: never promoted
    assert (load_config().home / "reports" / "latest" / "index.html").exists()
