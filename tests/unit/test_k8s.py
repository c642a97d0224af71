"""Job pod specs, rendered from the production example registry and validated against the real Kubernetes
schema (kubernetes-validate, strict), and `warriorflow pods render`. Kubernetes itself cannot run here;
this checks what can be."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from click.testing import CliRunner

from warriorflow.cli import main
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.tasks.pods import GPU, job_pod, job_pools, pod_name, pool_for

K8S = "1.33"
PROD = CONFIG_DIR / "production.example.yaml"


@pytest.fixture
def prod(monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "sk-never-in-a-spec")
    return load_config(PROD)


def test_an_offline_gpu_expert_job_holds_its_own_gpus_only(prod):
    pod = job_pod(prod, "s3://b/runs/r/jobs/respond/in/respond-qwq-32b-preview-s0000.json", "respond",
                  "qwq-32b-preview", "respond-qwq-32b-preview-s0000")
    kubernetes_validate.validate(pod, K8S, strict=True)  # raises on any schema violation
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {GPU: "2"}  # its own 2 GPUs, not the largest expert's
    assert container["resources"]["requests"] == {"cpu": "16", "memory": "128Gi"}
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "gpu-a100"}
    assert spec["tolerations"] == [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    assert container["command"] == ["warriorflow", "job", "--in",
                                    "s3://b/runs/r/jobs/respond/in/respond-qwq-32b-preview-s0000.json"]
    env = {e["name"]: e for e in container["env"]}
    assert env["WARRIORFLOW_ROLE"]["value"] == "worker"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "warriorflow-s3"
    assert "VLLM_API_KEY" not in env  # an offline expert needs no endpoint key
    assert "sk-never-in-a-spec" not in json.dumps(pod)
    assert pool_for(prod.registry.get("qwq-32b-preview").resources) == "warriorflow_pool_gpu-a100"


def test_a_served_expert_job_is_a_cpu_pod_with_its_key_by_reference(prod):
    pod = job_pod(prod, "s3://b/in.json", "judge", "qwen2.5-72b-instruct", "judge-r01-qwen-s0000")
    kubernetes_validate.validate(pod, K8S, strict=True)
    container = pod["spec"]["containers"][0]
    assert "tolerations" not in pod["spec"] and "limits" not in container["resources"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}  # kubernetes.cpu_job
    env = {e["name"]: e for e in container["env"]}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "warriorflow-endpoints", "key": "VLLM_API_KEY"}
    assert "sk-never-in-a-spec" not in json.dumps(pod)


def test_service_account_credentials_put_no_keys_in_pods(tmp_path, prod):
    import yaml

    data = yaml.safe_load(PROD.read_text())
    data["experts_file"] = str(CONFIG_DIR / data["experts_file"])
    data["kubernetes"].update({"s3_credentials": "service_account", "service_account": "warriorflow-irsa"})
    settings = tmp_path / "s.yaml"
    settings.write_text(yaml.safe_dump(data))
    cfg = load_config(settings)
    pod = job_pod(cfg, "s3://b/in.json", "respond", "qwq-32b-preview", "x")
    names = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert pod["spec"]["serviceAccountName"] == "warriorflow-irsa"
    data["kubernetes"].pop("service_account")
    settings.write_text(yaml.safe_dump(data))
    from warriorflow.errors import ConfigError

    with pytest.raises(ConfigError, match="service_account"):
        load_config(settings)


def test_jobs_are_split_by_airflow_pool(prod):
    assert job_pools(prod, "respond") == {
        "warriorflow_pool_cpu": ["qwen2.5-72b-instruct", "llama-3.3-70b-instruct"],
        "warriorflow_pool_gpu-a100": ["deepseek-coder-v2-lite-instruct", "qwq-32b-preview"]}
    assert list(job_pools(prod, "embed")) == ["warriorflow_pool_cpu"]


def test_an_invalid_spec_is_caught_by_the_schema(prod):
    pod = job_pod(prod, "s3://b/in.json", "respond", "qwq-32b-preview", "x")
    pod["spec"]["containers"][0]["gpus"] = 2  # not a Kubernetes field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S, strict=True)


def test_pod_names_are_dns_labels():
    assert pod_name("battle", "Manual__2026-11-22T04:21:55", "0000") == "battle-manual-2026-11-22t04-21-55-0000"
    assert len(pod_name("x" * 100)) == 63


def test_pods_render_shows_one_model_per_pod_and_no_llm_step_in_the_writer_pool(monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "sk-never-in-a-spec")
    result = CliRunner().invoke(main, ["--config", str(PROD), "pods", "render", "--json"])
    assert result.exit_code == 0, result.output
    pods = json.loads(result.output)
    assert "sk-never-in-a-spec" not in result.output
    assert {p["step"] for p in pods} == {"mine", "score", "embed", "tag", "respond", "execute", "judge"}
    [execute] = [p for p in pods if p["step"] == "execute"]  # the sandbox: no model, no GPU, the CPU pool
    assert execute["models"] == ["sandbox"] and execute["gpus"] == 0 and execute["pool"] == "warriorflow_pool_cpu"
    for p in pods:
        assert {"task", "step", "models", "gpus", "pool", "spec"} <= set(p)
        kubernetes_validate.validate(p["spec"], K8S, strict=True)
        assert len(p["models"]) == 1 and p["pool"] != "warriorflow_db"
        limits = p["spec"]["spec"]["containers"][0]["resources"].get("limits", {})
        assert int(limits.get(GPU, 0)) == p["gpus"]
        if p["gpus"]:
            assert p["tensor_parallel"] == p["gpus"]  # vLLM's tensor parallelism is the pod's GPUs
    cfg = load_config(PROD)
    answerers = len(cfg.registry.with_role("answer"))
    judges = len(cfg.registry.with_role("judge"))
    assert sum(p["step"] == "respond" for p in pods) == answerers  # one pod (per shard) per answering model
    assert sum(p["step"] == "judge" for p in pods) == judges
    table = CliRunner().invoke(main, ["--config", str(PROD), "pods", "render"])
    assert table.exit_code == 0 and "model loads per battle cycle" in table.output
    with_training = json.loads(CliRunner().invoke(main, ["--config", str(PROD), "pods", "render", "--json",
                                                         "--training"]).output)
    [train] = [p for p in with_training if p["step"] == "train"]
    assert train["gpus"] == 8 and train["data_parallel"] == 8 and train["tensor_parallel"] is None


def test_pods_render_refuses_a_secret_in_a_spec(monkeypatch):
    from warriorflow.cli import pods as pods_cli

    cfg = load_config(PROD)
    monkeypatch.setenv("VLLM_API_KEY", "sk-planted-secret")
    rendered = pods_cli.render(cfg)
    rendered[0]["spec"]["metadata"]["labels"]["leak"] = "sk-planted-secret"
    assert any("secret" in p for p in pods_cli.problems(cfg, rendered))
    rendered[1]["spec"]["spec"]["containers"][0]["gpus"] = 1
    assert any(rendered[1]["task"] in p for p in pods_cli.problems(cfg, rendered))
