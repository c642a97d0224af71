"""The Airflow side of production for tests: the production example settings, the S3 connection and the
Variable the worker pods' env comes from, and a `kubernetes_default` connection to a loopback API."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.k8s.loopback_api import LoopbackKubernetes
from warriorflow.config import CONFIG_DIR

ACCESS_KEY, SECRET_KEY = "AKIA-never-in-a-pod-spec", "s3-secret-never-in-a-pod-spec"
VLLM_KEY = "sk-vllm-never-in-a-pod-spec"
S3_ENDPOINT, BUCKET = "http://seaweedfs.storage.svc:8333", "flywheel-bucket"


def use_production(monkeypatch) -> None:
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(CONFIG_DIR / "production.example.yaml"))
    monkeypatch.setenv("AIRFLOW_CONN_WARRIORFLOW_S3", json.dumps({
        "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
        "extra": {"endpoint_url": S3_ENDPOINT, "region_name": "eu-west-1"}}))
    monkeypatch.setenv("AIRFLOW_VAR_WARRIORFLOW_BUCKET", BUCKET)
    monkeypatch.setenv("VLLM_API_KEY", VLLM_KEY)


def fast_polling_settings(tmp_path: Path) -> Path:
    """The production example settings polling the (instant) stand-in API every 50 ms instead of every 10 s."""
    settings = yaml.safe_load((CONFIG_DIR / "production.example.yaml").read_text())
    settings["experts_file"] = str(CONFIG_DIR / settings["experts_file"])
    settings["kubernetes"]["poll_interval_s"] = 0.05
    path = tmp_path / "production.fast-polling.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def use_loopback(api: LoopbackKubernetes, monkeypatch, tmp_path: Path) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}))
