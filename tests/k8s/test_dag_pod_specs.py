"""Every pod spec the DAGs create with `kubernetes.placement: kubernetes` (mine per expert, a job per
model and shard, training), built the way the DAG tasks build them -- env resolved from the Airflow
connection and Variable -- and rendered through the real KubernetesPodOperator's dry-run build,
validated strictly against the Kubernetes 1.33 schema. Plus the pod template, the runtime env and the secret guard."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.tasks.pods import GPU

K8S = "1.33"


@pytest.fixture
def prod(monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "sk-never-in-a-spec")
    return load_config(CONFIG_DIR / "production.example.yaml")


def _dry_run(spec: dict) -> dict:
    """What the real KubernetesPodOperator would send for ``spec`` (its dry-run build, no cluster needed)."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import ApiClient

    from warriorflow.tasks.placement import pod_operator_options

    op = KubernetesPodOperator(task_id="dry_run", pod_template_dict=spec, **pod_operator_options())
    return ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))


@pytest.fixture
def airflow_prod(monkeypatch):
    from tests.k8s.airflow_env import use_production

    use_production(monkeypatch)
    return load_config()


def test_every_pod_the_dags_create_renders_and_is_valid(airflow_prod):
    from tests.k8s.airflow_env import ACCESS_KEY, BUCKET, SECRET_KEY, VLLM_KEY
    from warriorflow.tasks.placement import job_pods, mine_pods, training_pod_spec
    from warriorflow.tasks.pods import job_pools

    miners = [e.name for e in airflow_prod.registry.with_role("mine")]
    jobs = [{"key": f"runs/r1/jobs/judge/in/judge-r01-{m}-s{i:04d}.json", "step": "judge", "model": m, "items": 9}
            for m in [e.name for e in airflow_prod.registry.with_role("judge")] for i in range(2)]
    by_pool = {pool: job_pods(jobs, pool) for pool in job_pools(airflow_prod, "judge")}
    assert {pool: len(v) for pool, v in by_pool.items()} == {"warriorflow_pool_cpu": 4,
                                                              "warriorflow_pool_gpu-a100": 4}
    specs = {"mine": mine_pods(miners, "scheduled__2026-11-22T00:00:00+00:00"),
             "job": [p for v in by_pool.values() for p in v],
             "train": [training_pod_spec(["train", "--snapshot", f"s3://{BUCKET}/flywheel/snapshots/s1"])]}
    assert [len(v) for v in specs.values()] == [4, 8, 1]
    for kind, pods in specs.items():
        for spec in pods:
            kubernetes_validate.validate(spec, K8S, strict=True)
            rendered = _dry_run(spec)
            kubernetes_validate.validate(rendered, K8S, strict=True)
            container = rendered["spec"]["containers"][0]
            command = container["command"]
            assert container["name"] == "base"
            assert command[1] == kind if command[0] == "warriorflow" else command[7:9] == ["warriorflow.cli", kind]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["WARRIORFLOW_BUCKET"] == BUCKET and env["WARRIORFLOW_ROLE"] == "worker"
            text = json.dumps(rendered)
            assert not any(s in text for s in (ACCESS_KEY, SECRET_KEY, VLLM_KEY))
    train = _dry_run(specs["train"][0])
    assert train["spec"]["containers"][0]["resources"]["limits"] == {GPU: "8"}  # kubernetes.training
    assert train["spec"]["containers"][0]["command"][:6] == ["torchrun", "--standalone", "--nnodes", "1",
                                                             "--nproc-per-node", "8"]  # one process per GPU
    assert {v["name"]: v for v in train["spec"]["volumes"]}["checkpoints"]["persistentVolumeClaim"] == {
        "claimName": "warriorflow-checkpoints"}
    assert train["spec"]["nodeSelector"] == {"cloud.google.com/gke-nodepool": "gpu-a100"}
    mine_gpus = {p["spec"]["containers"][0]["command"][4]: p["spec"]["containers"][0]["resources"].get("limits")
                 for p in specs["mine"]}
    assert mine_gpus["qwq-32b-preview"] == {GPU: "2"} and mine_gpus["qwen2.5-72b-instruct"] is None


def test_the_pod_template_is_valid_and_every_spec_keeps_its_fixed_parts(prod):
    import yaml

    from warriorflow.config import REPO_ROOT
    from warriorflow.tasks.pods import mine_pod, training_pod

    template = yaml.safe_load((REPO_ROOT / "docker" / "pod-template.yaml").read_text())
    kubernetes_validate.validate(template, K8S, strict=True)
    tc = template["spec"]["containers"][0]
    for pod in (mine_pod(prod, "qwq-32b-preview", "r"), training_pod(prod, ["train"])):
        spec, c = pod["spec"], pod["spec"]["containers"][0]
        assert spec["securityContext"] == template["spec"]["securityContext"]
        assert spec["restartPolicy"] == template["spec"]["restartPolicy"] and c["name"] == tc["name"]
        assert {v["name"]: v for v in template["spec"]["volumes"]}.items() <= {v["name"]: v
                                                                             for v in spec["volumes"]}.items()
        assert [m for m in tc["volumeMounts"] if m not in c["volumeMounts"]] == []
        assert [e for e in tc["env"] if e not in c["env"]] == []


def test_runtime_env_comes_from_the_connection_and_variables_never_the_credentials(airflow_prod):
    from tests.k8s.airflow_env import BUCKET, S3_ENDPOINT
    from warriorflow.tasks.placement import runtime_env

    assert runtime_env(airflow_prod) == {"WARRIORFLOW_S3_ENDPOINT_URL": S3_ENDPOINT, "WARRIORFLOW_S3_REGION":
                                         "eu-west-1", "AWS_REGION": "eu-west-1", "WARRIORFLOW_BUCKET": BUCKET}


def test_a_missing_connection_or_variable_is_a_clear_error(airflow_prod, monkeypatch):
    from warriorflow.errors import ConfigError
    from warriorflow.tasks.placement import runtime_env

    monkeypatch.delenv("AIRFLOW_VAR_WARRIORFLOW_BUCKET")
    with pytest.raises(ConfigError, match="airflow variables set warriorflow_bucket"):
        runtime_env(airflow_prod)
    monkeypatch.delenv("AIRFLOW_CONN_WARRIORFLOW_S3")
    with pytest.raises(ConfigError, match="airflow connections add warriorflow_s3"):
        runtime_env(airflow_prod)


def test_a_spec_carrying_a_credential_is_refused(airflow_prod):
    from tests.k8s.airflow_env import SECRET_KEY
    from warriorflow.tasks.placement import refuse_secrets
    from warriorflow.tasks.pods import training_pod, with_env

    leaky = with_env(training_pod(airflow_prod, ["train"]), {"AWS_SECRET_ACCESS_KEY_COPY": SECRET_KEY})
    with pytest.raises(RuntimeError, match="Kubernetes secret"):
        refuse_secrets(airflow_prod, [leaky])
    with pytest.raises(ValueError, match="already set"):
        with_env(leaky, {"WARRIORFLOW_ROLE": "writer"})


def test_embedded_default_places_workers_locally(monkeypatch):
    from warriorflow.tasks.placement import on_kubernetes, placement

    assert placement() == "local" and not on_kubernetes()
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(CONFIG_DIR / "production.example.yaml"))
    assert placement() == "kubernetes" and on_kubernetes()
