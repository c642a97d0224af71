"""Pod specs for worker steps on Kubernetes: a model job (one model each), mining an expert, training, or
any other ``warriorflow`` CLI command. Resources come from the job's model: an offline expert's registry
``resources`` (image, node pool as a node selector, exactly its ``nvidia.com/gpu`` with the matching
toleration, CPU and memory; its vLLM engine runs with that many GPUs of tensor parallelism), a served
expert's CPU job (``kubernetes.cpu_job``: it only calls the endpoint), ``kubernetes.cpu_job`` too for an
execute job (the sandbox: its image needs bubblewrap and unprivileged user namespaces),
``compression.resources`` for the embed job, ``kubernetes.training`` for training. Each pod runs in the
Airflow pool of its node pool.

Credentials are never values in a spec: S3 keys come from ``kubernetes.s3_secret`` by reference (or none
at all with ``s3_credentials: service_account``: IRSA / Workload Identity), a served expert's API key
from ``kubernetes.endpoint_secret`` (key: its ``api_key_env`` name). The settings file and experts
registry come from a ConfigMap.

The specs are plain dicts (the Kubernetes API's JSON), so they travel through XCom to a mapped
KubernetesPodOperator (``pod_template_dict``); ``docker/pod-template.yaml`` shows the fixed base every
spec starts from. The tests validate them against the real Kubernetes schema. Pure functions, no Airflow.
"""

from __future__ import annotations

import copy
import re

from warriorflow.config import BackendKind, Config, PodResources

GPU = "nvidia.com/gpu"
BASE_CONTAINER = "base"  # the container KubernetesPodOperator follows (logs, exit code)
CONFIG_MOUNT = "/etc/warriorflow"  # where the ConfigMap with the settings and registry is mounted
S3_SECRET_KEYS = (("AWS_ACCESS_KEY_ID", "access_key_id"), ("AWS_SECRET_ACCESS_KEY", "secret_access_key"))


def pod_name(*parts: str) -> str:
    """A DNS-1123 pod name from parts (lower case, '-', at most 63 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return name[:63].rstrip("-") or "warriorflow"


def cli_pod(config: Config, name: str, args: list[str], resources: PodResources,
            secret_env: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict:
    """A pod that runs ``warriorflow ARGS`` with ``resources``: the one way any CLI command runs in a pod.
    ``secret_env``: env var -> key in ``kubernetes.endpoint_secret`` (served experts' API keys)."""
    k = config.settings.kubernetes
    env = [{"name": "WARRIORFLOW_ROLE", "value": "worker"}, {"name": "HF_HUB_OFFLINE", "value": "1"},
           {"name": "GX_ANALYTICS_ENABLED", "value": "false"}]
    mounts, volumes = [], []
    if k.config_map:
        env.append({"name": "WARRIORFLOW_CONFIG", "value": f"{CONFIG_MOUNT}/{config.settings_file.name}"})
        mounts.append({"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True})
        volumes.append({"name": "config", "configMap": {"name": k.config_map}})
    if k.s3_credentials != "service_account":  # IRSA / Workload Identity: no keys at all
        env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": k.s3_secret, "key": key}}}
                for var, key in S3_SECRET_KEYS]
    env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": k.endpoint_secret, "key": key}}}
            for var, key in sorted((secret_env or {}).items())]
    more_mounts, more_volumes = model_volumes(config, resources)
    mounts += more_mounts
    volumes += more_volumes
    container = {"name": BASE_CONTAINER, "image": resources.image or k.default_image,
                 "imagePullPolicy": "IfNotPresent", "command": ["warriorflow", *args], "env": env,
                 "resources": container_resources(resources), "volumeMounts": mounts}
    spec: dict = {"restartPolicy": "Never", "containers": [container], "volumes": volumes,
                  "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}}
    if resources.node_pool:
        spec["nodeSelector"] = {k.node_pool_label: resources.node_pool}
    if resources.gpus:
        spec["tolerations"] = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    if k.service_account:
        spec["serviceAccountName"] = k.service_account
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(name), "namespace": k.namespace,
                         "labels": {"app.kubernetes.io/name": "warriorflow-worker",
                                    "app.kubernetes.io/component": pod_name(args[0]), **(labels or {})}},
            "spec": spec}


def container_resources(resources: PodResources) -> dict:
    """A container's ``resources``: CPU and memory requests, exactly ``resources.gpus`` GPUs as its limit."""
    requests = {key: v for key, v in (("cpu", resources.cpu), ("memory", resources.memory)) if v}
    limits = {GPU: str(resources.gpus)} if resources.gpus else {}
    return {key: v for key, v in (("requests", requests), ("limits", limits)) if v}


def model_volumes(config: Config, resources: PodResources) -> tuple[list[dict], list[dict]]:
    """(volumeMounts, volumes) every model pod gets: the weights volume at /models (read-only) and, on GPUs, a
    memory-backed /dev/shm (vLLM / NCCL need a large one)."""
    k = config.settings.kubernetes
    mounts, volumes = [], []
    if k.models_pvc:
        mounts.append({"name": "models", "mountPath": "/models", "readOnly": True})
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": k.models_pvc, "readOnly": True}})
    if resources.gpus:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}})
    return mounts, volumes


def job_resources(config: Config, step: str, model: str) -> PodResources:
    """What a job's pod asks for: its model's resources (see the module doc)."""
    if step == "embed":
        return config.settings.compression.resources
    if step == "execute":  # the sandbox on CPUs: no model
        return config.settings.kubernetes.cpu_job
    expert = config.registry.get(model)
    if expert.backend is BackendKind.openai:  # served: the job only calls the endpoint
        return config.settings.kubernetes.cpu_job
    return expert.resources


def pool_for(resources: PodResources) -> str:
    """The Airflow pool of a pod with ``resources``: one per node pool (``warriorflow_pool_<node pool>``), else
    ``warriorflow_pool_gpu`` / ``warriorflow_pool_cpu``."""
    name = resources.node_pool or ("gpu" if resources.gpus else "cpu")
    return "warriorflow_pool_" + re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def pool_task_suffix(pool: str) -> str:
    """``warriorflow_pool_gpu-a100`` -> ``gpu_a100``: the suffix of a step's mapped pod task in that pool."""
    return re.sub(r"[^A-Za-z0-9_]", "_", pool.removeprefix("warriorflow_pool_"))


def job_pod(config: Config, in_uri: str, step: str, model: str, job_name: str) -> dict:
    """The pod of one model job: ``warriorflow job --in URI`` with its model's resources and secrets."""
    resources = job_resources(config, step, model)
    secret_env = {}
    if step not in ("embed", "execute"):
        expert = config.registry.get(model)
        if expert.backend is BackendKind.openai and expert.model.api_key_env:
            secret_env[expert.model.api_key_env] = expert.model.api_key_env
    labels = {"warriorflow.dev/step": pod_name(step), "warriorflow.dev/model": pod_name(model)}
    return cli_pod(config, job_name, ["job", "--in", in_uri], resources, secret_env, labels)


def job_models(config: Config, step: str) -> list[str]:
    """The models a step's jobs may load (the embed step's single model is named by its spec)."""
    if step == "respond":
        return [e.name for e in config.registry.with_role("answer")]
    if step == "tag":
        from warriorflow.method.tagging import tagging_judges

        return [e.name for e in tagging_judges(config.registry, config.settings.tagging.judges)]
    if step in ("judge", "score"):
        return [e.name for e in config.registry.with_role("judge")]
    if step == "execute":
        from warriorflow.method.jobs import EXECUTOR

        return [EXECUTOR]
    return [config.settings.compression.embed_model]


def job_pools(config: Config, step: str) -> dict[str, list[str]]:
    """Airflow pool -> the models of ``step`` whose jobs run in it (one mapped pod task per pool)."""
    out: dict[str, list[str]] = {}
    for model in job_models(config, step):
        out.setdefault(pool_for(job_resources(config, step, model)), []).append(model)
    return dict(sorted(out.items()))


def mine_pod(config: Config, expert: str, run_id: str) -> dict:
    """Mining one expert, on that expert's own resources (worker mode: result files only, no ingest)."""
    resources = job_resources(config, "mine", expert)
    e = config.registry.get(expert)
    secret_env = {e.model.api_key_env: e.model.api_key_env} if e.backend is BackendKind.openai and \
        e.model.api_key_env else {}
    return cli_pod(config, f"mine-{expert}", ["mine", "--no-ingest", "--expert", expert, "--run-id", run_id],
                   resources, secret_env, {"warriorflow.dev/step": "mine", "warriorflow.dev/model": pod_name(expert)})


def training_pod(config: Config, args: list[str], resources: PodResources | None = None) -> dict:
    """``warriorflow ARGS`` (e.g. ``train ...``) on the training node pool: ``kubernetes.training`` resources."""
    return cli_pod(config, args[0], args, resources or config.settings.kubernetes.training)


def with_env(pod: dict, env: dict[str, str]) -> dict:
    """A copy of ``pod`` whose base container also has ``env`` (plain values, set when the task runs)."""
    out = copy.deepcopy(pod)
    container = next(c for c in out["spec"]["containers"] if c["name"] == BASE_CONTAINER)
    taken = {e["name"] for e in container["env"]}
    clash = sorted(taken & set(env))
    if clash:
        raise ValueError(f"pod env {clash} is already set by the spec; rename the Airflow-side variables")
    container["env"] += [{"name": k, "value": v} for k, v in sorted(env.items())]
    return out


# --------------------------------------------------------------------------- a served expert's own vllm serve


def served_name(expert_name: str) -> str:
    """The Deployment and Service name of an expert's managed ``vllm serve``."""
    return pod_name("vllm", expert_name)


def serve_manifests(config: Config, expert_name: str) -> tuple[dict, dict]:
    """(Deployment, Service) that serve ``expert_name`` with ``vllm serve`` for a cycle: its ``resources``
    (GPUs as tensor parallelism), the models volume, its API key by reference, a /health readiness probe."""
    k = config.settings.kubernetes
    expert = config.registry.get(expert_name)
    d = expert.deployment
    if d is None:
        raise ValueError(f"expert {expert_name!r} has no deployment")
    name = served_name(expert.name)
    labels = {"app.kubernetes.io/name": "warriorflow-vllm", "warriorflow.dev/model": pod_name(expert.name)}
    r = expert.resources
    command = ["vllm", "serve", d.model_path, "--served-model-name", expert.model.served_name or expert.name,
               "--host", "0.0.0.0", "--port", str(d.port)]
    if r.gpus:
        command += ["--tensor-parallel-size", str(r.gpus)]
    env = [{"name": "HF_HUB_OFFLINE", "value": "1"}]
    if expert.model.api_key_env:  # vllm serve reads its key from VLLM_API_KEY
        env.append({"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": k.endpoint_secret,
                                                                            "key": expert.model.api_key_env}}})
    mounts, volumes = model_volumes(config, r)
    container = {"name": "vllm", "image": d.image, "imagePullPolicy": "IfNotPresent",
                 "command": [*command, *d.args], "env": env,
                 "ports": [{"name": "http", "containerPort": d.port}],
                 "readinessProbe": {"httpGet": {"path": "/health", "port": d.port}, "periodSeconds": 10,
                                    "failureThreshold": 3},
                 "resources": container_resources(r), "volumeMounts": mounts}
    pod: dict = {"containers": [container], "volumes": volumes}
    if r.node_pool:
        pod["nodeSelector"] = {k.node_pool_label: r.node_pool}
    if r.gpus:
        pod["tolerations"] = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    if k.service_account:
        pod["serviceAccountName"] = k.service_account
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "namespace": k.namespace, "labels": labels},
                  "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                           "template": {"metadata": {"labels": labels}, "spec": pod}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": k.namespace,
                                                                  "labels": labels},
               "spec": {"selector": labels, "ports": [{"name": "http", "port": d.port, "targetPort": d.port}]}}
    return deployment, service


def managed_experts(config: Config) -> list[str]:
    """The experts whose ``vllm serve`` warriorflow starts per cycle (Kubernetes placement only)."""
    if config.settings.kubernetes.placement != "kubernetes":
        return []
    return [e.name for e in config.registry.experts if e.deployment is not None]
