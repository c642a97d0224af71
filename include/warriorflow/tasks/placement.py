"""Where worker steps run, chosen by config (``kubernetes.placement``), never by editing DAGs.

* ``local`` (the embedded default): the worker step runs ``python -m warriorflow.cli ...`` as a local
  process inside the Airflow task (``warriorflow.tasks.worker.run_cli``).
* ``kubernetes``: the same CLI command runs in a pod: a (mapped) KubernetesPodOperator per expert or
  batch, deferrable, following the pod's logs and deleting it at the end. The pod specs come from
  ``warriorflow.tasks.pods`` and are built when the task runs, with the non-secret env resolved then from
  Airflow: the S3 endpoint and region from the object store's Airflow connection and
  ``kubernetes.variables`` from Airflow Variables. Credentials stay Kubernetes secrets (secretKeyRef).

The DAG files call ``on_kubernetes()`` when they are parsed. This module imports only the standard
library at import time; the cncf provider is imported only when the placement is ``kubernetes``.
"""

from __future__ import annotations

import json
from typing import Any

LOCAL, KUBERNETES = "local", "kubernetes"


def placement(settings_file: str | None = None) -> str:
    """``local`` or ``kubernetes``: the settings file's ``kubernetes.placement``."""
    from warriorflow.config import load_config

    return load_config(settings_file).settings.kubernetes.placement


def on_kubernetes() -> bool:
    return placement() == KUBERNETES


# --------------------------------------------------------------------------- operators (parse time)


def pod_operator_options(config=None) -> dict[str, Any]:
    """The KubernetesPodOperator arguments every warriorflow pod task shares."""
    from warriorflow.config import load_config

    k = (config or load_config()).settings.kubernetes
    return {"kubernetes_conn_id": k.airflow_conn_id, "deferrable": k.deferrable, "poll_interval": k.poll_interval_s,
            "startup_check_interval_seconds": k.poll_interval_s, "base_container_status_polling_interval":
            k.poll_interval_s, "startup_timeout_seconds": k.startup_timeout_s,
            "schedule_timeout_seconds": k.startup_timeout_s,
            "get_logs": True, "log_events_on_failure": True, "on_finish_action": "delete_pod",
            "do_xcom_push": False, "random_name_suffix": True}


def pod_tasks(task_id: str, pod_specs, **task_kwargs):
    """One KubernetesPodOperator task per pod spec in ``pod_specs`` (an XComArg of a list of pod dicts).
    ``task_kwargs`` (pool, retries, timeouts...) override the shared options."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    return (KubernetesPodOperator.partial(task_id=task_id, **{**pod_operator_options(), **task_kwargs})
            .expand(pod_template_dict=pod_specs))


def pod_task(task_id: str, pod_spec, **task_kwargs):
    """A KubernetesPodOperator task running one pod spec (a dict, or an XComArg of one), e.g. training."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    options = {**pod_operator_options(), **task_kwargs}
    return KubernetesPodOperator(task_id=task_id, pod_template_dict=pod_spec, **options)


# --------------------------------------------------------------------------- pod specs (task run time)


def runtime_env(config) -> dict[str, str]:
    """Non-secret pod env, read from Airflow when the task runs: the S3 endpoint and region from the object
    store's Airflow connection (its extra; login and password stay out: pods read the Kubernetes secret)
    and every ``kubernetes.variables`` entry from its Airflow Variable."""
    from airflow.sdk import BaseHook, Variable

    from warriorflow.errors import ConfigError

    env: dict[str, str] = {}
    s3 = config.settings.object_store.s3
    if config.object_store_uri.startswith("s3://"):
        extra: dict = {}
        if s3.airflow_conn_id:
            try:
                extra = BaseHook.get_connection(s3.airflow_conn_id).extra_dejson or {}
            except Exception as exc:  # AirflowNotFoundException and friends
                raise ConfigError(f"Airflow connection {s3.airflow_conn_id!r}",
                                  f"cannot be loaded ({type(exc).__name__}) for the worker pods' S3 endpoint",
                                  f"create it: airflow connections add {s3.airflow_conn_id} --conn-type aws "
                                  """--conn-extra '{"endpoint_url": "https://...", "region_name": "..."}'""") from exc
        endpoint = extra.get("endpoint_url") or s3.endpoint_url
        region = extra.get("region_name") or s3.region
        if endpoint:
            env["WARRIORFLOW_S3_ENDPOINT_URL"] = endpoint
        if region:
            env["WARRIORFLOW_S3_REGION"] = env["AWS_REGION"] = region
    for var, key in config.settings.kubernetes.variables.items():
        value = Variable.get(key, default=None)
        if value is None:
            raise ConfigError(f"Airflow Variable {key!r}", f"is not set (kubernetes.variables.{var})",
                              f"set it: airflow variables set {key} VALUE, or drop it from kubernetes.variables")
        env[var] = str(value)
    return env


def finish_pods(config, pods: list[dict]) -> list[dict]:
    from warriorflow.tasks.pods import with_env

    env = runtime_env(config)
    pods = [with_env(p, env) for p in pods]
    refuse_secrets(config, pods)
    return pods


def refuse_secrets(config, pods: list[dict]) -> None:
    """A safety net: the S3 connection's login/password must never be part of a spec (XCom, rendered fields)."""
    conn_id = config.settings.object_store.s3.airflow_conn_id
    if not conn_id or not config.object_store_uri.startswith("s3://"):
        return
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    text = json.dumps(pods)
    if any(s and len(s) >= 4 and s in text for s in (conn.login, conn.password)):
        raise RuntimeError(f"a worker pod spec contains a credential of the Airflow connection {conn_id!r}; "
                           "pods must read credentials from the Kubernetes secret (kubernetes.s3_secret)")


def mine_pods(experts: list[str], run_id: str) -> list[dict]:
    """One pod spec per mining expert, on that expert's resources."""
    from warriorflow.config import load_config
    from warriorflow.tasks.pods import mine_pod

    config = load_config()
    return finish_pods(config, [mine_pod(config, e, run_id) for e in experts])


def battle_pods(in_uris: list[str]) -> list[dict]:
    """One pod spec per planned battle batch: ``battle-batch --in URI --out URI`` on the experts' resources."""
    from warriorflow.config import load_config
    from warriorflow.store.keys import battle_out_for
    from warriorflow.tasks.pods import batch_name, battle_batch_pod, battle_experts

    config = load_config()
    experts = battle_experts(config)
    return finish_pods(config, [battle_batch_pod(config, u, battle_out_for(u), experts, batch_name(u))
                                for u in in_uris])


def training_pod_spec(args: list[str]) -> dict:
    """The pod spec for ``warriorflow ARGS`` on the training node pool (``kubernetes.training``), for pod_task."""
    from warriorflow.config import load_config
    from warriorflow.tasks.pods import training_pod

    config = load_config()
    return finish_pods(config, [training_pod(config, list(args))])[0]
