"""Where worker steps run is config, not DAG code: the same DAG files parse into local @task workers
(embedded default) or mapped KubernetesPodOperator tasks (`kubernetes.placement: kubernetes`). The
kubernetes provider is imported only in the second case. A dag.test() run drives the mapped pod tasks,
deferred through the triggerer path, against the loopback Kubernetes API stand-in (no cluster here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.dags.conftest import REPO
from tests.k8s.airflow_env import SECRET_KEY, fast_polling_settings, use_loopback, use_production
from tests.k8s.loopback_api import LoopbackKubernetes
from warriorflow.config import CONFIG_DIR

pytestmark = pytest.mark.integration
KPO = "KubernetesPodOperator"


def _dagbag(monkeypatch, settings_file):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(settings_file))
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag


WRITER_STEPS = r"^(ingest|dedup|score|decontaminate|compress|tag)$"


def _operator_class(task) -> str:
    return task.operator_class.__name__ if hasattr(task, "operator_class") else type(task).__name__


def test_embedded_placement_runs_workers_as_local_tasks(airflow_home, monkeypatch):
    bag = _dagbag(monkeypatch, CONFIG_DIR / "embedded.yaml")
    mine, battle = bag.get_dag("warriorflow_mine"), bag.get_dag("warriorflow_battle")
    assert _operator_class(mine.get_task("mine")) == "_PythonDecoratedOperator"
    assert _operator_class(battle.get_task("battle_batch")) == "_PythonDecoratedOperator"
    assert "mine_pods" not in mine.task_ids and "battle_pods" not in battle.task_ids
    assert mine.get_task("mine").upstream_task_ids == {"experts"}
    assert battle.get_task("ingest_battles").upstream_task_ids == {"battle_batch"}
    assert mine.get_task("ingest").upstream_task_ids == {"mine"}


def test_kubernetes_placement_runs_workers_as_mapped_pod_operators(airflow_home, monkeypatch):
    use_production(monkeypatch)
    bag = _dagbag(monkeypatch, CONFIG_DIR / "production.example.yaml")
    mine, battle = bag.get_dag("warriorflow_mine"), bag.get_dag("warriorflow_battle")
    for dag, worker, specs, after in ((mine, "mine", "mine_pods", "ingest"),
                                      (battle, "battle_batch", "battle_pods", "ingest_battles")):
        task = dag.get_task(worker)
        assert _operator_class(task) == KPO
        assert task.partial_kwargs["deferrable"] is True and task.partial_kwargs["on_finish_action"] == "delete_pod"
        assert task.partial_kwargs["get_logs"] is True
        assert task.partial_kwargs["kubernetes_conn_id"] == "kubernetes_default"
        assert set(task.expand_input.value) == {"pod_template_dict"}  # one pod spec per expert / batch
        assert task.upstream_task_ids == {specs} and dag.get_task(after).upstream_task_ids == {worker}
    assert mine.get_task("mine_pods").upstream_task_ids == {"experts"}
    assert battle.get_task("battle_pods").upstream_task_ids == {"plan"}


@pytest.mark.parametrize("settings, imported", [("embedded.yaml", False), ("production.example.yaml", True)])
def test_the_kubernetes_provider_is_imported_only_for_kubernetes_placement(airflow_home, settings, imported):
    code = ("import runpy, sys\n"
            "for f in ('warriorflow_mine.py', 'warriorflow_battle.py'):\n"
            f"    runpy.run_path({str(REPO / 'dags')!r} + '/' + f)\n"
            "print('airflow.providers.cncf.kubernetes.operators.pod' in sys.modules, 'kubernetes' in sys.modules)")
    env = {**__import__("os").environ, "WARRIORFLOW_CONFIG": str(CONFIG_DIR / settings)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(imported), str(imported)]


def test_mine_dag_runs_one_deferred_pod_per_expert_against_the_loopback_api(airflow_home, monkeypatch, tmp_path):
    """dag.test() of the real mine DAG with kubernetes placement: experts -> mine_pods -> mapped, deferrable
    KubernetesPodOperator pods (the trigger runs inline) against the stand-in API. The single-writer stage
    after it are marked successful instead of run: no pod wrote anything for them to ingest."""
    use_production(monkeypatch)
    with LoopbackKubernetes() as api:
        use_loopback(api, monkeypatch, tmp_path)
        dag = _dagbag(monkeypatch, fast_polling_settings(tmp_path)).get_dag("warriorflow_mine")
        run = dag.test(mark_success_pattern=WRITER_STEPS)
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}
    assert states.pop(("experts", -1)) == states.pop(("mine_pods", -1)) == "success"
    for step in ("ingest", "dedup", "score", "decontaminate", "compress", "tag"):
        assert states.pop((step, -1)) == "success"
    assert states == {("mine", i): "success" for i in range(4)}  # one pod per mining expert
    gpus = {}
    for pod in api.created():
        command = pod["spec"]["containers"][0]["command"]
        assert command[:3] == ["warriorflow", "mine", "--no-ingest"] and command[5:] == ["--run-id", run.run_id]
        gpus[command[4]] = pod["spec"]["containers"][0]["resources"].get("limits", {}).get("nvidia.com/gpu")
    assert gpus == {"qwen2.5-72b-instruct": None, "llama-3.3-70b-instruct": None,  # each expert's own resources
                    "deepseek-coder-v2-lite-instruct": "1", "qwq-32b-preview": "2"}
    assert sorted(api.deleted) == sorted(p["metadata"]["name"] for p in api.created())
    assert all(phases[-1] == "Succeeded" for phases in api.served_phases.values())
    assert SECRET_KEY not in str([r.__dict__ for r in api.requests])
