"""Worker pod specs, rendered from the production example registry and validated against the real
Kubernetes schema (kubernetes-validate, strict). Kubernetes itself cannot run here; this checks what can be."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.tasks.pods import GPU, battle_batch_pod, pod_name

K8S = "1.33"


@pytest.fixture
def prod(monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "sk-never-in-a-spec")
    return load_config(CONFIG_DIR / "production.example.yaml")


def test_gpu_battle_pod_is_valid_and_carries_the_experts_resources(prod):
    experts = [prod.registry.get("deepseek-coder-v2-lite-instruct"), prod.registry.get("qwq-32b-preview")]
    pod = battle_batch_pod(prod, "s3://b/runs/r/battle/in/batch-0000.json", "s3://b/runs/r/battle/out/batch-0000.jsonl",
                           experts, "r-0000")
    kubernetes_validate.validate(pod, K8S, strict=True)  # raises on any schema violation
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {GPU: "2"}  # the larger of 1 and 2 GPUs
    assert container["resources"]["requests"] == {"cpu": "16", "memory": "128Gi"}
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "gpu-a100"}
    assert spec["tolerations"] == [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    assert container["command"][:2] == ["warriorflow", "battle-batch"]
    env = {e["name"]: e for e in container["env"]}
    assert env["WARRIORFLOW_ROLE"]["value"] == "worker"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "warriorflow-s3"
    assert "sk-never-in-a-spec" not in json.dumps(pod)


def test_cpu_only_pod_has_no_gpu_bits_and_is_valid(prod):
    pod = battle_batch_pod(prod, "s3://b/in.json", "s3://b/out.jsonl", [prod.registry.get("qwen2.5-72b-instruct")],
                           "x")
    kubernetes_validate.validate(pod, K8S, strict=True)
    assert "tolerations" not in pod["spec"] and "limits" not in pod["spec"]["containers"][0]["resources"]


def test_an_invalid_spec_is_caught_by_the_schema(prod):
    pod = battle_batch_pod(prod, "s3://b/in.json", "s3://b/out.jsonl", [prod.registry.get("qwq-32b-preview")], "x")
    pod["spec"]["containers"][0]["gpus"] = 2  # not a Kubernetes field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S, strict=True)


def test_pod_names_are_dns_labels():
    assert pod_name("battle", "Manual__2026-11-22T04:21:55", "0000") == "battle-manual-2026-11-22t04-21-55-0000"
    assert len(pod_name("x" * 100)) == 63
