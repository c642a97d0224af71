"""Pod specs for worker steps (a battle batch, mining an expert) on Kubernetes, from the expert's
registry resources: image, node pool (node selector), ``nvidia.com/gpu`` limits with the matching
toleration, CPU and memory. S3 credentials come from a Kubernetes secret by reference; no secret
value is ever part of a spec. The specs are plain dicts (the Kubernetes API's JSON) and are validated
against the real Kubernetes schema in the tests."""

from __future__ import annotations

import re

from warriorflow.config import Config, Expert

GPU = "nvidia.com/gpu"


def pod_name(*parts: str) -> str:
    """A DNS-1123 pod name from parts (lower case, '-', at most 63 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return name[:63].rstrip("-") or "warriorflow"


def worker_pod(config: Config, name: str, command: list[str], experts: list[Expert]) -> dict:
    """A pod that runs ``warriorflow COMMAND`` with the largest resources any of ``experts`` asks for."""
    k = config.settings.kubernetes
    gpus = max((e.resources.gpus for e in experts), default=0)
    image = next((e.resources.image for e in experts if e.resources.image), k.default_image)
    pools = sorted({e.resources.node_pool for e in experts if e.resources.node_pool})
    requests = {r: v for r, v in (("cpu", _max(e.resources.cpu for e in experts)),
                                  ("memory", _max(e.resources.memory for e in experts))) if v}
    resources: dict = {}
    if requests:
        resources["requests"] = requests
    if gpus:
        resources["limits"] = {GPU: str(gpus)}
    env = [{"name": "WARRIORFLOW_ROLE", "value": "worker"}, {"name": "HF_HUB_OFFLINE", "value": "1"},
           {"name": "GX_ANALYTICS_ENABLED", "value": "false"}]
    env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": k.s3_secret, "key": key}}}
            for var, key in (("AWS_ACCESS_KEY_ID", "access_key_id"), ("AWS_SECRET_ACCESS_KEY", "secret_access_key"))]
    container = {"name": "base", "image": image, "command": ["warriorflow", *command], "env": env,
                 "resources": resources}
    spec: dict = {"restartPolicy": "Never", "containers": [container],
                  "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}}
    if pools:
        spec["nodeSelector"] = {k.node_pool_label: pools[0]}
    if gpus:
        spec["tolerations"] = [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    if k.models_pvc:
        container["volumeMounts"] = [{"name": "models", "mountPath": "/models", "readOnly": True}]
        spec["volumes"] = [{"name": "models", "persistentVolumeClaim": {"claimName": k.models_pvc,
                                                                          "readOnly": True}}]
    if k.service_account:
        spec["serviceAccountName"] = k.service_account
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(name), "namespace": k.namespace,
                         "labels": {"app.kubernetes.io/name": "warriorflow-worker",
                                    "app.kubernetes.io/component": pod_name(command[0])}},
            "spec": spec}


def battle_batch_pod(config: Config, in_uri: str, out_uri: str, experts: list[Expert], batch: str) -> dict:
    return worker_pod(config, f"battle-{batch}", ["battle-batch", "--in", in_uri, "--out", out_uri], experts)


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
