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
        # the champion (flywheel.champion_joins_arena) answers on its own resources, like an offline expert
        "warriorflow_pool_gpu-a100": ["deepseek-coder-v2-lite-instruct", "qwq-32b-preview", "champion"]}
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
    result = CliRunner().invoke(main, ["--config", str(PROD), "pods", "render", "--json", "--no-training"])
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
    # by default the retrain DAG's pods come too (the issue's "pods render --json" shows them)
    with_training = json.loads(CliRunner().invoke(main, ["--config", str(PROD), "pods", "render", "--json"]).output)
    [train] = [p for p in with_training if p["step"] == "train"]
    assert train["gpus"] == 8 and train["data_parallel"] == 8 and train["tensor_parallel"] is None
    # the evaluation: generation on the target's GPUs, the sandbox on CPUs, neither in the writer pool
    [gen] = [p for p in with_training if p["step"] == "eval-generate"]
    [chk] = [p for p in with_training if p["step"] == "eval-check"]
    assert gen["gpus"] == 1 and gen["pool"] == "warriorflow_pool_gpu-a100" and gen["tensor_parallel"] == 1
    assert gen["spec"]["spec"]["containers"][0]["command"][:3] == ["warriorflow", "evaluate-job", "generate"]
    assert chk["gpus"] == 0 and chk["pool"] == "warriorflow_pool_cpu" and chk["sandbox_workers"] >= 1
    assert chk["spec"]["spec"]["containers"][0]["command"][:3] == ["warriorflow", "evaluate-job", "check"]
    for p in (gen, chk):
        kubernetes_validate.validate(p["spec"], K8S, strict=True)
        env = {e["name"]: e.get("value") for e in p["spec"]["spec"]["containers"][0]["env"]}
        assert env["WARRIORFLOW_ROLE"] == "worker"  # never the rating store
        assert any(m["mountPath"] == "/models" for m in p["spec"]["spec"]["containers"][0]["volumeMounts"])


def test_pods_render_refuses_a_secret_in_a_spec(monkeypatch):
    from warriorflow.cli import pods as pods_cli

    cfg = load_config(PROD)
    monkeypatch.setenv("VLLM_API_KEY", "sk-planted-secret")
    rendered = pods_cli.render(cfg)
    rendered[0]["spec"]["metadata"]["labels"]["leak"] = "sk-planted-secret"
    assert any("secret" in p for p in pods_cli.problems(cfg, rendered))
    rendered[1]["spec"]["spec"]["containers"][0]["gpus"] = 1
    assert any(rendered[1]["task"] in p for p in pods_cli.problems(cfg, rendered))


# --------------------------------------------------------------------------------------------------- training


def test_the_training_pod_runs_one_process_per_gpu_with_deepspeed_from_the_config_map(prod):
    from warriorflow.tasks.pods import CHECKPOINT_MOUNT, CONFIG_MOUNT, config_files, training_pod

    assert prod.settings.kubernetes.training.gpus == 8 and prod.settings.training.deepspeed == "deepspeed_zero3.json"
    pod = training_pod(prod, ["train", "--snapshot", "S", "--no-record"])
    kubernetes_validate.validate(pod, K8S, strict=True)
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["torchrun", "--standalone", "--nnodes", "1", "--nproc-per-node", "8",
                                    "-m", "warriorflow.cli", "train", "--snapshot", "S", "--no-record"]
    assert container["resources"]["limits"] == {GPU: "8"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WARRIORFLOW_CONFIG"] == f"{CONFIG_MOUNT}/production.example.yaml"
    assert env["WARRIORFLOW_TRAINING_DIR"] == CHECKPOINT_MOUNT == "/checkpoints"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mounts["checkpoints"] == {"name": "checkpoints", "mountPath": "/checkpoints"}  # writable
    assert volumes["checkpoints"]["persistentVolumeClaim"] == {"claimName": "warriorflow-checkpoints"}
    assert mounts["dshm"]["mountPath"] == "/dev/shm"  # NCCL between the 8 processes
    # the ConfigMap's files land at their paths relative to the settings file: deepspeed and the template too
    items = volumes["config"]["configMap"]["items"]
    assert items == [{"key": "production.example.yaml", "path": "production.example.yaml"},
                     {"key": "experts.production.example.yaml", "path": "experts.production.example.yaml"},
                     {"key": "templates__sft_plain.jinja", "path": "templates/sft_plain.jinja"},
                     {"key": "deepspeed_zero3.json", "path": "deepspeed_zero3.json"}]
    assert [{"key": f.key, "path": f.path} for f in config_files(prod)] == items
    # the settings the pod loads from there resolve deepspeed to /etc/warriorflow/deepspeed_zero3.json
    assert f"{CONFIG_MOUNT}/{items[-1]['path']}" == "/etc/warriorflow/deepspeed_zero3.json"
    # other jobs mount the same ConfigMap the same way, and only training gets the checkpoint volume
    job = job_pod(prod, "s3://b/in.json", "respond", "qwq-32b-preview", "x")
    assert {v["name"]: v for v in job["spec"]["volumes"]}["config"] == volumes["config"]
    assert "checkpoints" not in {v["name"] for v in job["spec"]["volumes"]}


def test_a_training_pod_without_gpus_is_one_process_and_a_null_checkpoint_pvc_is_an_empty_dir(tmp_path):
    import yaml

    from warriorflow.config import PodResources
    from warriorflow.tasks.pods import training_command, training_pod

    data = yaml.safe_load(PROD.read_text())
    data["experts_file"] = str(CONFIG_DIR / data["experts_file"])
    data["training"].update(chat_template=str(CONFIG_DIR / "templates" / "sft_plain.jinja"),
                            deepspeed=str(CONFIG_DIR / "deepspeed_zero3.json"))
    data["kubernetes"].update(checkpoint_pvc=None, training={"cpu": "8", "memory": "32Gi"})
    settings = tmp_path / "cpu.yaml"
    settings.write_text(yaml.safe_dump(data))
    cfg = load_config(settings)
    pod = training_pod(cfg, ["train", "--snapshot", "S"])
    kubernetes_validate.validate(pod, K8S, strict=True)
    assert pod["spec"]["containers"][0]["command"] == ["warriorflow", "train", "--snapshot", "S"]
    assert {v["name"]: v for v in pod["spec"]["volumes"]}["checkpoints"] == {"name": "checkpoints", "emptyDir": {}}
    # absolute paths are not ConfigMap files: they must exist in the pod (image or volume)
    items = {v["name"]: v for v in pod["spec"]["volumes"]}["config"]["configMap"]["items"]
    assert items == [{"key": "cpu.yaml", "path": "cpu.yaml"}]
    assert training_command(["train", "--record-only"], PodResources(gpus=4))[0] == "warriorflow"
    assert training_command(["evaluate"], PodResources(gpus=4))[0] == "warriorflow"
    assert training_command(["train"], PodResources(gpus=1))[:6] == ["torchrun", "--standalone", "--nnodes", "1",
                                                                     "--nproc-per-node", "1"]


def test_the_config_map_holds_the_settings_and_every_file_they_refer_to(prod):
    from warriorflow.tasks.pods import config_map

    cm = config_map(prod)
    kubernetes_validate.validate(cm, K8S, strict=True)
    assert cm["metadata"] == {"name": "warriorflow-config", "namespace": "warriorflow",
                              "labels": {"app.kubernetes.io/name": "warriorflow-config",
                                         "app.kubernetes.io/managed-by": "warriorflow"}}
    assert cm["data"] == {
        "production.example.yaml": PROD.read_text(),
        "experts.production.example.yaml": (CONFIG_DIR / "experts.production.example.yaml").read_text(),
        "templates__sft_plain.jinja": (CONFIG_DIR / "templates" / "sft_plain.jinja").read_text(),
        "deepspeed_zero3.json": (CONFIG_DIR / "deepspeed_zero3.json").read_text()}
    assert "sk-never-in-a-spec" not in json.dumps(cm)  # the files as written: ${VAR}s expand in the pod


def _settings_copy(tmp_path, **training):
    """The production example and its files in a folder of their own, with ``training`` changes."""
    import shutil

    import yaml

    for name in ("experts.production.example.yaml", "deepspeed_zero3.json", "templates/sft_plain.jinja"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CONFIG_DIR / name, tmp_path / name)
    data = yaml.safe_load(PROD.read_text())
    data["training"].update(training)
    settings = tmp_path / "prod.yaml"
    settings.write_text(yaml.safe_dump(data))
    return settings


def test_config_map_files_that_are_missing_or_outside_the_settings_folder_are_config_errors(tmp_path):
    from warriorflow.errors import ConfigError
    from warriorflow.tasks.pods import config_map, training_pod

    cfg = load_config(_settings_copy(tmp_path, deepspeed="ds/zero3.json"))
    training_pod(cfg, ["train"])  # the spec itself only names the file
    with pytest.raises(ConfigError, match=r"training.deepspeed: file .*ds/zero3.json not found"):
        config_map(cfg)
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "prod.yaml"), "pods", "configmap"])
    assert result.exit_code == 2 and "ds/zero3.json not found" in result.output and "Traceback" not in result.output
    cfg = load_config(_settings_copy(tmp_path, chat_template="../sft_plain.jinja"))
    with pytest.raises(ConfigError, match="outside the settings file's folder"):
        config_map(cfg)


def test_pods_configmap_prints_yaml_or_json_for_kubectl_apply(monkeypatch, tmp_path):
    import yaml

    monkeypatch.setenv("VLLM_API_KEY", "sk-never-in-a-spec")
    as_yaml = CliRunner().invoke(main, ["--config", str(PROD), "pods", "configmap"])
    assert as_yaml.exit_code == 0, as_yaml.output
    cm = yaml.safe_load(as_yaml.stdout)
    assert cm["kind"] == "ConfigMap" and cm["data"]["templates__sft_plain.jinja"] == (
        CONFIG_DIR / "templates" / "sft_plain.jinja").read_text()
    assert "templates__sft_plain.jinja -> /etc/warriorflow/templates/sft_plain.jinja" in as_yaml.stderr
    as_json = CliRunner().invoke(main, ["--config", str(PROD), "pods", "configmap", "--json",
                                        "--namespace", "airflow"])
    assert as_json.exit_code == 0
    cm_json = json.loads(as_json.stdout)
    assert cm_json["metadata"]["namespace"] == "airflow" and cm_json["data"] == cm["data"]


def test_pods_render_training_shows_processes_deepspeed_checkpoints_and_retries(monkeypatch, tmp_path):
    monkeypatch.setenv("VLLM_API_KEY", "sk-never-in-a-spec")
    result = CliRunner().invoke(main, ["--config", str(PROD), "pods", "render", "--json", "--training"])
    assert result.exit_code == 0, result.output
    [train] = [p for p in json.loads(result.stdout) if p["step"] == "train"]
    kubernetes_validate.validate(train["spec"], K8S, strict=True)
    assert train["processes"] == train["data_parallel"] == train["gpus"] == 8
    assert train["command"][:6] == ["torchrun", "--standalone", "--nnodes", "1", "--nproc-per-node", "8"]
    assert train["command"] == train["spec"]["spec"]["containers"][0]["command"]
    assert train["deepspeed"] == {"setting": "deepspeed_zero3.json", "config_map_key": "deepspeed_zero3.json",
                                  "pod_path": "/etc/warriorflow/deepspeed_zero3.json", "present": True}
    assert train["checkpoints"] == {"mount": "/checkpoints", "env": "WARRIORFLOW_TRAINING_DIR",
                                    "volume": {"persistentVolumeClaim": {"claimName": "warriorflow-checkpoints"}}}
    assert train["retries"] == {"retries": 3, "exponential_backoff": True, "first_delay_s": 60.0}
    # a DeepSpeed file the ConfigMap cannot hold fails the render
    settings = _settings_copy(tmp_path)
    (tmp_path / "deepspeed_zero3.json").unlink()
    bad = CliRunner().invoke(main, ["--config", str(settings), "pods", "render", "--json", "--training"])
    assert bad.exit_code == 1 and "training.deepspeed deepspeed_zero3.json not found" in bad.stderr


def test_pods_render_for_real_jobs_and_a_snapshot(monkeypatch, tmp_path):
    """`pods render --job URI --snapshot ID`: the pods of jobs that were planned (step and model read from each
    input file), exactly as the battle DAG's pod tasks build them, and the retrain DAG's training pod."""
    import yaml

    from warriorflow.method.jobs import JobInput
    from warriorflow.store.keys import job_in_key
    from warriorflow.store.objects import open_objects

    data = yaml.safe_load(PROD.read_text())
    data["experts_file"] = str(CONFIG_DIR / data["experts_file"])
    data["training"].update(chat_template=str(CONFIG_DIR / "templates" / "sft_plain.jinja"),
                            deepspeed=str(CONFIG_DIR / "deepspeed_zero3.json"))
    data["object_store"] = {"uri": "objects"}
    data["paths"] = {**data.get("paths", {}), "home": str(tmp_path / "home")}
    settings = tmp_path / "prod.yaml"
    settings.write_text(yaml.safe_dump(data))
    cfg = load_config(settings)
    objects = open_objects(cfg)
    answerer = cfg.registry.with_role("answer")[0].name
    item = {"response_id": "r1", "instruction_id": "i1", "instruction": "Write a function.", "expert": answerer,
            "seed": 0}
    job = JobInput(job_id="respond-x-s0000", step="respond", model=answerer, run_id="R", round=None,
                   params={"arena": {}}, items=(item,))
    key = job_in_key("R", "respond", job.job_id)
    objects.put_bytes(key, job.to_json())
    uri = objects.uri(key)
    result = CliRunner().invoke(main, ["--config", str(settings), "pods", "render", "--json", "--job", uri,
                                       "--snapshot", "snap-1"])
    assert result.exit_code == 0, result.output
    pods = json.loads(result.output)
    assert [p["step"] for p in pods] == ["respond", "train"]
    assert pods[0]["spec"] == job_pod(cfg, uri, "respond", answerer, job.job_id)  # what the DAG submits
    assert pods[0]["spec"]["spec"]["containers"][0]["command"] == ["warriorflow", "job", "--in", uri]
    assert pods[0]["input"] == uri and pods[0]["models"] == [answerer]
    assert pods[1]["command"][-4:] == ["train", "--snapshot", "snap-1", "--no-record"]
    for p in pods:
        kubernetes_validate.validate(p["spec"], K8S, strict=True)
    # a job that was never planned is a clear error, not a traceback
    missing = CliRunner().invoke(main, ["--config", str(settings), "pods", "render", "--job",
                                        objects.uri(job_in_key("R", "respond", "nope"))])
    assert missing.exit_code != 0 and "does not exist in the object store" in missing.output
    assert "Traceback" not in missing.output
