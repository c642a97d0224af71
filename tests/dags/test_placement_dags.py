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


WRITER_STEPS = (r"^(ingest|dedup|filter|plan_scores|score|decontaminate|plan_embeddings|compress|plan_tags|tag|"
                r"score_jobs_pods_.*|embed_pods_.*|tag_jobs_pods_.*)$")


def _operator_class(task) -> str:
    return task.operator_class.__name__ if hasattr(task, "operator_class") else type(task).__name__


def test_embedded_placement_runs_workers_as_local_tasks(airflow_home, monkeypatch):
    bag = _dagbag(monkeypatch, CONFIG_DIR / "embedded.yaml")
    mine, battle = bag.get_dag("warriorflow_mine"), bag.get_dag("warriorflow_battle")
    for dag, task in ((mine, "mine"), (mine, "score_jobs"), (mine, "embed"), (battle, "respond"),
                      (battle, "execute"), (battle, "judge_r1")):
        assert _operator_class(dag.get_task(task)) == "_PythonDecoratedOperator", task
    assert not any(t.endswith("_pods") or "_pods_" in t for t in mine.task_ids + battle.task_ids)
    assert mine.get_task("mine").upstream_task_ids == {"experts"}
    assert battle.get_task("ingest_responses").upstream_task_ids == {"respond"}
    assert battle.get_task("ingest_executions").upstream_task_ids == {"execute"}
    assert mine.get_task("ingest").upstream_task_ids == {"mine"}


def test_kubernetes_placement_runs_jobs_as_mapped_pod_operators_one_pool_per_node_pool(airflow_home, monkeypatch):
    use_production(monkeypatch)
    bag = _dagbag(monkeypatch, CONFIG_DIR / "production.example.yaml")
    mine, battle = bag.get_dag("warriorflow_mine"), bag.get_dag("warriorflow_battle")
    workers = [(mine, "mine", "mine_pods", "ingest", None)]
    for pool in ("cpu", "gpu_a100"):
        workers += [(battle, f"respond_{pool}", f"respond_pods_{pool}", "ingest_responses", pool),
                    (battle, f"judge_r1_{pool}", f"judge_r1_pods_{pool}", "ingest_votes_r1", pool),
                    (mine, f"score_jobs_{pool}", f"score_jobs_pods_{pool}", "score", pool)]
    workers.append((battle, "execute_cpu", "execute_pods_cpu", "ingest_executions", "cpu"))  # the sandbox: CPUs
    for dag, worker, specs, after, pool in workers:
        task = dag.get_task(worker)
        assert _operator_class(task) == KPO
        assert task.partial_kwargs["deferrable"] is True and task.partial_kwargs["on_finish_action"] == "delete_pod"
        assert task.partial_kwargs["get_logs"] is True
        assert task.partial_kwargs["kubernetes_conn_id"] == "kubernetes_default"
        assert set(task.expand_input.value) == {"pod_template_dict"}  # one pod spec per expert / job
        assert task.upstream_task_ids == {specs} and worker in dag.get_task(after).upstream_task_ids
        if pool:
            assert task.partial_kwargs["pool"] == f"warriorflow_pool_{pool.replace('_', '-')}"
            assert task.partial_kwargs["retries"] == 3 and task.partial_kwargs["retry_exponential_backoff"]
    assert mine.get_task("mine_pods").upstream_task_ids == {"experts"}
    assert battle.get_task("respond_pods_gpu_a100").upstream_task_ids == {"plan"}
    train = bag.get_dag("warriorflow_retrain").get_task("train")  # a retry resumes from the published checkpoint
    assert _operator_class(train) == KPO and train.upstream_task_ids == {"training_pod"}
    assert train.retries == 3 and train.retry_exponential_backoff and train.retry_delay.total_seconds() == 60
    writers = {t.task_id for d in (mine, battle) for t in d.tasks if t.pool == "warriorflow_db"}
    assert not any(w.startswith(("respond", "execute", "judge_r", "score_jobs", "embed", "tag_jobs")) for w in writers)


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
    for step in ("ingest", "dedup", "filter", "score", "decontaminate", "compress", "tag"):
        assert states.pop((step, -1)) == "success"
    # one pod per mining expert (the jobs after it had no planned input here: the battle test runs jobs)
    assert {k: v for k, v in states.items() if k[0] == "mine"} == {("mine", i): "success" for i in range(4)}
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


BATTLE_EXPERTS = """experts:
  - {name: c1, backend: llamacpp, model: {gguf: /nonexistent/c1.gguf}, roles: [mine, answer, judge],
     resources: {gpus: 1, node_pool: gpu-a, cpu: "4", memory: 16Gi}}
  - {name: c2, backend: llamacpp, model: {gguf: /nonexistent/c2.gguf}, roles: [mine, answer, judge]}
  - {name: j1, backend: llamacpp, model: {gguf: /nonexistent/j1.gguf}, roles: [judge],
     resources: {gpus: 2, node_pool: gpu-a}}
"""


def test_battle_dag_runs_a_mapped_response_then_judge_cycle_of_pods_against_the_loopback_api(
        airflow_home, monkeypatch, tmp_path):
    """dag.test() of the real battle DAG with kubernetes placement: plan -> respond pods (one mapped
    KubernetesPodOperator per Airflow pool, deferred through the trigger) -> ingest -> judge pods -> ingest ->
    rate -> gold, against the loopback STAND-IN API. As each pod is created, the stand-in's on_create does
    the pod's `warriorflow job` in this process with scripted models (no kubelet exists here)."""
    import yaml

    from tests.helpers import write_yaml
    from tests.k8s.airflow_env import use_loopback
    from tests.scripted_backend import ScriptedBackend
    from tests.unit.test_battle_cycle_jobs import seed_selected
    from warriorflow.config import load_config
    from warriorflow.stages.jobs import job_location, run_job
    from warriorflow.store.rating_store import RatingStore

    experts = write_yaml(tmp_path / "experts.yaml", BATTLE_EXPERTS)
    settings = write_yaml(tmp_path / "settings.yaml", yaml.safe_dump({
        "experts_file": str(experts), "paths": {"home": str(tmp_path / "home")},
        "arena": {"both_orders": True, "seed": 1}, "jobs": {"respond_items": 2, "judge_items": 3},
        "rating": {"bootstrap_rounds": 0},
        "kubernetes": {"placement": "kubernetes", "poll_interval_s": 0.05, "config_map": None, "models_pvc": None,
                       "pools": {"gpu-a": 2, "cpu": 4}}}))
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(settings))
    config = load_config(settings)
    seed_selected(config, 4)
    ran: list[tuple[str, str]] = []

    errors: list[str] = []

    def do_the_pods_job(pod: dict) -> None:
        try:
            run_the_pods_job(pod)
        except Exception:  # the stand-in must answer; the test reports it below
            import traceback

            errors.append(traceback.format_exc())

    def run_the_pods_job(pod: dict) -> None:
        command = pod["spec"]["containers"][0]["command"]
        assert command[:3] == ["warriorflow", "job", "--in"]
        objects, key = job_location(config, command[3])

        def scripted(cfg, job):
            ran.append((job.step, job.model))
            backend = ScriptedBackend(job.model, "hash")
            return backend, backend.close

        run_job(config, objects, key, loader=scripted)

    with LoopbackKubernetes(on_create=do_the_pods_job) as api:
        use_loopback(api, monkeypatch, tmp_path)
        run = _dagbag(monkeypatch, settings).get_dag("warriorflow_battle").test()
    assert errors == [], errors[0][-1500:]
    states = {}
    for ti in run.get_task_instances():
        states.setdefault(ti.task_id, set()).add(str(ti.state).rsplit(".", 1)[-1].lower())
    # a pool with no job this run maps no pod (c1 and c2 battle; only j1, on gpu-a, can judge them)
    assert {k: v for k, v in states.items() if v != {"success"}} == {
        "judge_r1_cpu": {"skipped"}, "run_failed_if_a_task_failed": {"skipped"}}, states
    assert states["respond_cpu"] == states["respond_gpu_a"] == states["judge_r1_gpu_a"] == {"success"}
    pods = api.created()
    gpu = [p for p in pods if p["spec"].get("nodeSelector")]
    assert gpu and all(len(p["spec"]["containers"][0]["resources"]["limits"]) == 1 for p in gpu)
    model_pods = [p for p in pods if p["metadata"]["labels"]["warriorflow.dev/step"] != "execute"]
    assert {s for s, _ in ran} == {"respond", "judge"} and len(ran) == len(model_pods)  # one model per pod
    assert len(pods) > len(model_pods)  # and the execute pods ran the sandbox (no model)
    assert sorted(api.deleted) == sorted(p["metadata"]["name"] for p in pods)
    with RatingStore(config.duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM battles WHERE status <> 'done'")[0]["n"] == 0
        assert store.query("SELECT count(*) AS n FROM gold_selections")[0]["n"] >= 1
