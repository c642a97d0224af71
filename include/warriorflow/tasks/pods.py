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
registry come from a ConfigMap (``config_map``: the settings file, the registry and every file they refer to by a
relative path, e.g. ``training.deepspeed``; ``warriorflow pods configmap`` prints it), projected with
``items`` so each file lands at its relative path below /etc/warriorflow.

Training (``training_pod``) runs one process per GPU under ``torchrun`` (data parallel: DeepSpeed ZeRO-3
as ``training.deepspeed`` says) with its work dir on ``kubernetes.checkpoint_pvc`` at /checkpoints.

The specs are plain dicts (the Kubernetes API's JSON), so they travel through XCom to a mapped
KubernetesPodOperator (``pod_template_dict``); ``docker/pod-template.yaml`` shows the fixed base every
spec starts from. The tests validate them against the real Kubernetes schema. Pure functions, no Airflow.
"""

from __future__ import annotations

import copy
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from warriorflow.config import BackendKind, Config, PodResources
from warriorflow.config.paths import TRAINING_DIR_ENV
from warriorflow.errors import ConfigError

GPU = "nvidia.com/gpu"
BASE_CONTAINER = "base"  # the container KubernetesPodOperator follows (logs, exit code)
CONFIG_MOUNT = "/etc/warriorflow"  # where the ConfigMap with the settings and registry is mounted
CHECKPOINT_MOUNT = "/checkpoints"  # the training pod's work dir: snapshot, local checkpoints, final model
CONFIG_MAP_MAX_BYTES = 1024 * 1024  # what Kubernetes lets a ConfigMap hold
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
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
        volumes.append({"name": "config", "configMap": {
            "name": k.config_map, "items": [{"key": f.key, "path": f.path} for f in config_files(config)]}})
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


def training_processes(resources: PodResources) -> int:
    """Processes of a training pod: one per GPU (data parallel), one on CPUs."""
    return max(resources.gpus, 1)


def training_command(args: list[str], resources: PodResources) -> list[str]:
    """``warriorflow train ...`` launched once per GPU by torchrun on this one node (``RANK``/``WORLD_SIZE``
    for each process; DeepSpeed as ``training.deepspeed`` says); any other command, or no GPU: one process."""
    if not resources.gpus or args[:1] != ["train"] or "--record-only" in args:
        return ["warriorflow", *args]
    return ["torchrun", "--standalone", "--nnodes", "1", "--nproc-per-node", str(training_processes(resources)),
            "-m", "warriorflow.cli", *args]


def checkpoint_volume(config: Config) -> dict:
    """The training work dir's volume (without its name): ``kubernetes.checkpoint_pvc``, else an emptyDir."""
    pvc = config.settings.kubernetes.checkpoint_pvc
    return {"persistentVolumeClaim": {"claimName": pvc}} if pvc else {"emptyDir": {}}


def training_pod(config: Config, args: list[str], resources: PodResources | None = None) -> dict:
    """``warriorflow ARGS`` (e.g. ``train ...``) on the training node pool (``kubernetes.training`` resources):
    torchrun with one process per GPU, the work dir (``WARRIORFLOW_TRAINING_DIR``) on the checkpoint volume.
    Checkpoints are also published to the object store: a retried pod resumes from the latest one."""
    resources = resources or config.settings.kubernetes.training
    pod = cli_pod(config, args[0], args, resources)
    container = next(c for c in pod["spec"]["containers"] if c["name"] == BASE_CONTAINER)
    container["command"] = training_command(args, resources)
    container["env"].append({"name": TRAINING_DIR_ENV, "value": CHECKPOINT_MOUNT})
    container["volumeMounts"].append({"name": "checkpoints", "mountPath": CHECKPOINT_MOUNT})
    pod["spec"]["volumes"].append({"name": "checkpoints", **checkpoint_volume(config)})
    return pod


# --------------------------------------------------------------------------- the ConfigMap


@dataclass(frozen=True)
class ConfigFile:
    """A file of the ConfigMap: its key ('/' flattened to '__'), where it lands below CONFIG_MOUNT, the local
    file and the setting that refers to it."""

    key: str
    path: str
    source: Path
    setting: str


def _relative(value: str, anchor: str, setting: str) -> str | None:
    """``value`` (relative to the folder ``anchor``, itself relative to the settings file's folder) as a path
    below CONFIG_MOUNT; None for an absolute path (it must exist in the pod: image or volume)."""
    if value.startswith(("/", "~")):
        return None
    rel = posixpath.normpath(posixpath.join(anchor, value))
    if rel == ".." or rel.startswith("../"):
        raise ConfigError(setting, f"{value} is outside the settings file's folder, which is all the ConfigMap "
                          f"mounts at {CONFIG_MOUNT}",
                          "move the file beside (or below) the settings file, or give a path that exists in the pod")
    return rel


def config_files(config: Config) -> list[ConfigFile]:
    """Every file the pods read from the ConfigMap, at the same relative path below CONFIG_MOUNT as beside the
    settings file here (so relative references resolve the same in a pod): the settings file, the experts
    registry, the files the settings refer to relative to the settings file (``training.chat_template``,
    ``training.deepspeed``) and the chat templates the registry refers to relative to itself. Absolute paths
    are left out: they must exist in the pod. Does not read the files (``config_map`` does)."""
    s = config.settings
    base = config.settings_file.parent
    refs: list[tuple[str | None, str]] = [(config.settings_file.name, "the settings file"),
                                          (_relative(s.experts_file, ".", "experts_file"), "experts_file")]
    experts_dir = posixpath.dirname(refs[1][0]) if refs[1][0] else None
    for key in ("chat_template", "deepspeed"):
        value = getattr(s.training, key)
        if value:
            refs.append((_relative(value, ".", f"training.{key}"), f"training.{key}"))
    for e in config.registry.experts:
        if e.chat_template.source == "file" and experts_dir is not None:
            setting = f"expert '{e.name}' chat_template.path"
            refs.append((_relative(e.chat_template.path, experts_dir or ".", setting), setting))
    out: dict[str, ConfigFile] = {}
    for rel, setting in refs:
        if rel is None or any(f.path == rel for f in out.values()):
            continue
        key = rel.replace("/", "__")
        if not _CONFIG_KEY.match(key):
            raise ConfigError(setting, f"file name {rel!r} cannot be a ConfigMap key (letters, digits, '-', '_', '.')",
                              "rename the file")
        if key in out:
            raise ConfigError(setting, f"{rel!r} and {out[key].path!r} flatten to the same ConfigMap key {key!r}",
                              "rename one of the files")
        out[key] = ConfigFile(key, rel, base / rel, setting)
    return list(out.values())


def config_pod_path(config: Config, value: str | None) -> str | None:
    """Where a pod finds a file the settings name relative to the settings file (an absolute path as is)."""
    if not value:
        return None
    if value.startswith(("/", "~")) or not config.settings.kubernetes.config_map:
        return value
    return f"{CONFIG_MOUNT}/{_relative(value, '.', value)}"


def config_map(config: Config) -> dict:
    """The ConfigMap ``kubernetes.config_map`` every pod mounts: each of ``config_files`` under its key (the
    files as they are: ``${VAR}`` references expand in the pod). A missing file is a ConfigError."""
    k = config.settings.kubernetes
    if not k.config_map:
        raise ConfigError("kubernetes.config_map", "is not set, so pods read no settings from a ConfigMap",
                          "set kubernetes.config_map (e.g. warriorflow-config)")
    data = {}
    for f in config_files(config):
        if not f.source.is_file():
            raise ConfigError(f.setting, f"file {f.source} not found",
                              "create it, or fix the path (relative to the settings file)")
        try:
            data[f.key] = f.source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f.setting, f"file {f.source} cannot be read as UTF-8 text ({exc})",
                              "a ConfigMap holds text files only") from None
    size = sum(len(key.encode()) + len(text.encode()) for key, text in data.items())
    if size > CONFIG_MAP_MAX_BYTES:
        raise ConfigError(f"ConfigMap {k.config_map}", f"would hold {size} bytes, over Kubernetes' 1 MiB",
                          "keep large files on a volume and refer to them by an absolute path")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": k.config_map, "namespace": k.namespace,
                         "labels": {"app.kubernetes.io/name": "warriorflow-config",
                                    "app.kubernetes.io/managed-by": "warriorflow"}},
            "data": data}


def eval_pod(config: Config, step: str, in_uri: str, eval_id: str) -> dict:
    """An evaluation job: ``generate`` on the target's resources (``evaluation.resources``: its GPUs, vLLM
    offline), ``check`` on CPUs (``kubernetes.cpu_job``: the sandbox, ``evaluation.sandbox.workers`` at once).
    Neither opens the rating store: the writer plans and ingests."""
    if step not in ("generate", "check"):
        raise ValueError(f"an evaluation job is generate or check, not {step!r}")
    resources = config.settings.evaluation.resources if step == "generate" else config.settings.kubernetes.cpu_job
    labels = {"warriorflow.dev/step": f"eval-{step}", "warriorflow.dev/eval": pod_name(eval_id)}
    return cli_pod(config, f"eval-{step}-{eval_id}", ["evaluate-job", step, "--in", in_uri], resources,
                   labels=labels)


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
