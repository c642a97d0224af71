"""A served expert's own `vllm serve` for the cycle (registry `deployment`): the Deployment and Service are
valid Kubernetes objects carrying only references to secrets; `start` creates them and waits until the
Deployment is available, `stop` removes them, both against the loopback Kubernetes API (a STAND-IN:
it stores the objects and reports the Deployment available; nothing is scheduled); a server that never
gets ready is a clear error; the DAGs start the servers before the cycle's model work and stop them
after it, whatever happened."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from tests.k8s.airflow_env import VLLM_KEY, use_loopback, use_production
from tests.k8s.loopback_api import LoopbackKubernetes
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.errors import BackendError
from warriorflow.tasks import serving
from warriorflow.tasks.pods import GPU, managed_experts, serve_manifests

QWEN72 = "qwen2.5-72b-instruct"


@pytest.fixture
def managed(tmp_path, monkeypatch):
    use_production(monkeypatch)
    registry = yaml.safe_load((CONFIG_DIR / "experts.production.example.yaml").read_text())
    for e in registry["experts"]:
        if e["name"] == QWEN72:
            e["model"]["endpoint"] = "http://vllm-qwen2-5-72b-instruct.warriorflow.svc:8000/v1"
            e["deployment"] = {"model_path": "/models/Qwen2.5-72B-Instruct", "ready_timeout_s": 5,
                               "args": ["--max-model-len", "8192"]}
            e["resources"] = {"gpus": 4, "node_pool": "gpu-h100", "cpu": "32", "memory": "256Gi"}
    (tmp_path / "experts.yaml").write_text(yaml.safe_dump(registry))
    settings = yaml.safe_load((CONFIG_DIR / "production.example.yaml").read_text())
    settings["experts_file"] = str(tmp_path / "experts.yaml")
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(path))
    return load_config(path)


def test_the_manifests_are_valid_and_hold_no_secret(managed):
    assert managed_experts(managed) == [QWEN72]
    deployment, service = serve_manifests(managed, QWEN72)
    kubernetes_validate.validate(deployment, "1.33", strict=True)
    kubernetes_validate.validate(service, "1.33", strict=True)
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][:3] == ["vllm", "serve", "/models/Qwen2.5-72B-Instruct"]
    assert c["command"][c["command"].index("--tensor-parallel-size") + 1] == "4"  # its GPUs
    assert c["resources"]["limits"] == {GPU: "4"} and c["readinessProbe"]["httpGet"]["path"] == "/health"
    env = {e["name"]: e for e in c["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "warriorflow-endpoints",
                                                                 "key": "VLLM_API_KEY"}
    assert VLLM_KEY not in json.dumps([deployment, service])
    assert service["metadata"]["name"] == deployment["metadata"]["name"] == "vllm-qwen2-5-72b-instruct"


def test_start_waits_for_the_server_and_stop_removes_it(managed, monkeypatch, tmp_path):
    with LoopbackKubernetes() as api:
        use_loopback(api, monkeypatch, tmp_path)
        assert serving.start(managed, poll_s=0.01) == [QWEN72]
        assert {(k, n) for k, _, n in api.objects} == {("deployments", "vllm-qwen2-5-72b-instruct"),
                                                       ("services", "vllm-qwen2-5-72b-instruct")}
        assert serving.start(managed, poll_s=0.01) == [QWEN72]  # again: replaced, not duplicated
        assert len(api.objects) == 2
        assert serving.stop(managed) == [QWEN72]
        assert api.objects == {} and sorted(api.removed) == [("deployments", "vllm-qwen2-5-72b-instruct"),
                                                             ("services", "vllm-qwen2-5-72b-instruct")]
        assert serving.stop(managed) == [QWEN72]  # nothing left to delete is fine


def test_a_server_that_never_gets_ready_is_a_clear_error(managed, monkeypatch, tmp_path):
    with LoopbackKubernetes(deployments_become_ready=False) as api:
        use_loopback(api, monkeypatch, tmp_path)
        with pytest.raises(BackendError, match="not ready after 5 s") as err:
            serving.start(managed, poll_s=0.5)
        assert "kubectl -n warriorflow describe deployment vllm-qwen2-5-72b-instruct" in str(err.value)


def test_the_dags_start_servers_before_model_work_and_stop_them_after(managed):
    from airflow.dag_processing.dagbag import DagBag

    from tests.helpers import REPO

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    battle, mine = bag.dags["warriorflow_battle"], bag.dags["warriorflow_mine"]
    for dag, firsts, last in ((battle, ("respond_cpu", "respond_gpu_a100"), "ingest_votes_r1"),
                              (mine, ("mine",), "tag")):
        start, stop = dag.get_task("start_served_experts"), dag.get_task("stop_served_experts")
        for first in firsts:  # every pod of the first model step waits for the servers
            assert "start_served_experts" in dag.get_task(first).upstream_task_ids
        assert stop.trigger_rule == "all_done" and last in stop.upstream_task_ids
        assert start.pool != "warriorflow_db"
