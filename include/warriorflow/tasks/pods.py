"""Pod specs for worker steps on Kubernetes: a battle batch, mining an expert, training, or any other
``warriorflow`` CLI command. Resources come from the experts' registry ``resources`` (or
``kubernetes.training`` for training): image, node pool (node selector), ``nvidia.com/gpu`` limits with
the matching toleration, CPU and memory. S3 credentials come from a Kubernetes secret by reference; no
secret value is ever part of a spec. The settings file and experts registry come from a ConfigMap.

The specs are plain dicts (the Kubernetes API's JSON), so they travel through XCom to a mapped
KubernetesPodOperator (``pod_template_dict``); ``docker/pod-template.yaml`` shows the fixed base every
spec starts from. The tests validate them against the real Kubernetes schema. Pure functions, no Airflow.
"""

from __future__ import annotations

import copy
import re
from pathlib import PurePosixPath
from urllib.parse import urlparse

from warriorflow.config import Config, Expert, PodResources

GPU = "nvidia.com/gpu"
BASE_CONTAINER = "base"  # the container KubernetesPodOperator follows (logs, exit code)
CONFIG_MOUNT = "/etc/warriorflow"  # where the ConfigMap with the settings and registry is mounted
S3_SECRET_KEYS = (("AWS_ACCESS_KEY_ID", "access_key_id"), ("AWS_SECRET_ACCESS_KEY", "secret_access_key"))


def pod_name(*parts: str) -> str:
    """A DNS-1123 pod name from parts (lower case, '-', at most 63 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return name[:63].rstrip("-") or "warriorflow"


def cli_pod(config: Config, name: str, args: list[str], resources: PodResources) -> dict:
    """A pod that runs ``warriorflow ARGS`` with ``resources``: the one way any CLI command runs in a pod."""
    k = config.settings.kubernetes
    requests = {r: v for r, v in (("cpu", resources.cpu), ("memory", resources.memory)) if v}
    limits = {GPU: str(resources.gpus)} if resources.gpus else {}
    env = [{"name": "WARRIORFLOW_ROLE", "value": "worker"}, {"name": "HF_HUB_OFFLINE", "value": "1"},
           {"name": "GX_ANALYTICS_ENABLED", "value": "false"}]
    mounts, volumes = [], []
    if k.config_map:
        env.append({"name": "WARRIORFLOW_CONFIG", "value": f"{CONFIG_MOUNT}/{config.settings_file.name}"})
        mounts.append({"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True})
        volumes.append({"name": "config", "configMap": {"name": k.config_map}})
    env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": k.s3_secret, "key": key}}}
            for var, key in S3_SECRET_KEYS]
    if k.models_pvc:
        mounts.append({"name": "models", "mountPath": "/models", "readOnly": True})
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": k.models_pvc, "readOnly": True}})
    if resources.gpus:  # vLLM / NCCL need a large shared-memory /dev/shm
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}})
    container = {"name": BASE_CONTAINER, "image": resources.image or k.default_image,
                 "imagePullPolicy": "IfNotPresent", "command": ["warriorflow", *args], "env": env,
                 "resources": {key: v for key, v in (("requests", requests), ("limits", limits)) if v},
                 "volumeMounts": mounts}
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
                                    "app.kubernetes.io/component": pod_name(args[0])}},
            "spec": spec}


def largest_resources(experts: list[Expert]) -> PodResources:
    """The largest resources any of ``experts`` asks for (GPUs, CPU, memory); the first image and pool named."""
    pools = sorted({e.resources.node_pool for e in experts if e.resources.node_pool})
    return PodResources(gpus=max((e.resources.gpus for e in experts), default=0),
                        node_pool=pools[0] if pools else None,
                        image=next((e.resources.image for e in experts if e.resources.image), None),
                        cpu=_max(e.resources.cpu for e in experts), memory=_max(e.resources.memory for e in experts))


def worker_pod(config: Config, name: str, command: list[str], experts: list[Expert]) -> dict:
    """A pod that runs ``warriorflow COMMAND`` with the largest resources any of ``experts`` asks for."""
    return cli_pod(config, name, command, largest_resources(experts))


def battle_batch_pod(config: Config, in_uri: str, out_uri: str, experts: list[Expert], batch: str) -> dict:
    return worker_pod(config, f"battle-{batch}", ["battle-batch", "--in", in_uri, "--out", out_uri], experts)


def battle_experts(config: Config) -> list[Expert]:
    """The experts a battle batch may load: every answerer and judge (judges are all the other experts)."""
    return [e for e in config.registry.experts if {"answer", "judge"} & {str(r) for r in e.roles}]


def batch_name(in_uri: str) -> str:
    """``.../battle/in/batch-0003.json`` -> ``batch-0003``."""
    return PurePosixPath(urlparse(in_uri).path).stem


def mine_pod(config: Config, expert: str, run_id: str) -> dict:
    """Mining one expert, on that expert's own resources (worker mode: result files only, no ingest)."""
    return worker_pod(config, f"mine-{expert}", ["mine", "--no-ingest", "--expert", expert, "--run-id", run_id],
                      [config.registry.get(expert)])


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


def _max(values) -> str | None:
    """The largest of Kubernetes quantities like '8', '500m', '64Gi' (by their numeric size)."""
    vals = [v for v in values if v]
    return max(vals, key=_quantity) if vals else None


_UNITS = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
          "Ti": 2**40}


def _quantity(q: str) -> float:
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", q)
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"not a Kubernetes quantity: {q!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]
