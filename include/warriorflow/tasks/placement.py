"""Where worker steps run, chosen by config (``kubernetes.placement``), never by editing DAGs.

* ``local`` (the embedded default): the worker step runs ``python -m warriorflow.cli ...`` as a local
  process inside the Airflow task (``warriorflow.tasks.worker.run_cli``); a step's mapped job tasks run
  one at a time, so one CPU process holds one model at a time.
* ``kubernetes``: the same CLI command runs in a pod: a mapped KubernetesPodOperator per job (or per
  mining expert), deferrable, following the pod's logs and deleting it at the end, retried with
  exponential backoff. A step's jobs are split by Airflow pool at parse time (one pool per node pool,
  ``kubernetes.pools`` slots each), so at most N pods run on a node pool at once. The pod specs come
  from ``warriorflow.tasks.pods`` and are built when the task runs, with the non-secret env resolved then
  from Airflow: the S3 endpoint and region from the object store's Airflow connection and
  ``kubernetes.variables`` from Airflow Variables. Credentials stay Kubernetes secrets (secretKeyRef);
  with ``kubernetes.s3_credentials: airflow_connection`` the pods task first copies the connection's
  login and password into that secret.

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


def retry_options(config=None) -> dict[str, Any]:
    """Retries of a worker pod: ``kubernetes.retries`` with exponential backoff from ``retry_delay_s``."""
    from datetime import timedelta

    from warriorflow.config import load_config

    k = (config or load_config()).settings.kubernetes
    return {"retries": k.retries, "retry_exponential_backoff": True, "retry_delay": timedelta(seconds=k.retry_delay_s)}


def pod_tasks(task_id: str, pod_specs, **task_kwargs):
    """One KubernetesPodOperator task per pod spec in ``pod_specs`` (an XComArg of a list of pod dicts), retried
    with backoff. ``task_kwargs`` (pool, retries, timeouts...) override the shared options."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    options = {**pod_operator_options(), **retry_options(), **task_kwargs}
    return KubernetesPodOperator.partial(task_id=task_id, **options).expand(pod_template_dict=pod_specs)


def pod_task(task_id: str, pod_spec, **task_kwargs):
    """A KubernetesPodOperator task running one pod spec (a dict, or an XComArg of one), e.g. training (which
    resumes from its published checkpoints on a retry)."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    options = {**pod_operator_options(), **retry_options(), **task_kwargs}
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


def job_pods(jobs: list[dict], pool: str) -> list[dict]:
    """One pod spec per job of ``jobs`` (dicts: key, step, model, items) whose model runs in ``pool``."""
    from warriorflow.config import load_config
    from warriorflow.method.jobs import Job
    from warriorflow.store.objects import open_objects
    from warriorflow.tasks.pods import job_pod, job_resources, pool_for

    config = load_config()
    objects = open_objects(config)
    mine = [j for j in map(Job.from_dict, jobs) if pool_for(job_resources(config, j.step, j.model)) == pool]
    sync_s3_secret(config)
    return finish_pods(config, [job_pod(config, objects.uri(j.key), j.step, j.model,
                                        j.key.rsplit("/", 1)[-1].removesuffix(".json")) for j in mine])


def sync_s3_secret(config) -> None:
    """With ``kubernetes.s3_credentials: airflow_connection``: write the object store connection's login and
    password into ``kubernetes.s3_secret`` (create or replace), so pods read them by reference only."""
    k = config.settings.kubernetes
    conn_id = config.settings.object_store.s3.airflow_conn_id
    if k.s3_credentials != "airflow_connection":
        return
    from warriorflow.errors import ConfigError

    if not conn_id:
        raise ConfigError("kubernetes.s3_credentials", "is airflow_connection but object_store.s3.airflow_conn_id "
                          "is not set", "name the Airflow connection holding the S3 keys")
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": k.s3_secret, "namespace": k.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "warriorflow"}},
            "stringData": {"access_key_id": conn.login or "", "secret_access_key": conn.password or ""}}
    api = KubernetesHook(conn_id=k.airflow_conn_id).core_v1_client
    create_or_replace(api.create_namespaced_secret, api.replace_namespaced_secret, k.namespace, body)


def create_or_replace(create, replace, namespace: str, body: dict) -> None:
    """Create a Kubernetes object, or replace it when it exists already (``create``/``replace``: a kubernetes
    client's ``create_namespaced_X`` / ``replace_namespaced_X``)."""
    from kubernetes.client.exceptions import ApiException

    try:
        create(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        replace(body["metadata"]["name"], namespace, body)


WATCHER = "run_failed_if_a_task_failed"


def watch_failures(dag) -> None:
    """Parse time: a last task that fails the run when any task of it failed. An ingesting step runs after
    failed jobs (``all_done``) and the steps after it go on with what finished, so the run's leaves can
    succeed while a job failed; this keeps such a run red in the UI (Airflow's "watcher" pattern)."""
    from airflow.sdk import task

    with dag:
        @task(task_id=WATCHER, trigger_rule="one_failed", retries=0)
        def watcher() -> None:
            raise RuntimeError("a task of this run failed (see the grid): the steps after it merged what had "
                               "finished, and the failed work is planned again by the next run")

        last = watcher()
        for t in list(dag.tasks):
            if t.task_id != WATCHER:
                t >> last


def with_served_experts(start_after, first, last) -> None:
    """Parse time: when experts have a managed ``vllm serve`` (registry ``deployment``, Kubernetes placement),
    start them after ``start_after`` and before ``first`` (tasks), and stop them after ``last``, whatever
    happened (trigger_rule all_done). Nothing is added otherwise."""
    from airflow.sdk import task

    from warriorflow.config import load_config
    from warriorflow.tasks.pods import managed_experts

    if not managed_experts(load_config()):
        return

    @task(task_id="start_served_experts")
    def start_served() -> list[str]:
        from warriorflow.config import load_config
        from warriorflow.tasks import serving

        return serving.start(load_config())

    @task(task_id="stop_served_experts", trigger_rule="all_done")
    def stop_served() -> list[str]:
        from warriorflow.config import load_config
        from warriorflow.tasks import serving

        return serving.stop(load_config())

    up = start_served()
    start_after >> up >> first
    last >> stop_served()


def model_jobs(task_id: str, step: str, jobs):
    """Parse time: the mapped tasks that run ``jobs`` (an XComArg of job dicts) of ``step``: locally one mapped
    task running them one at a time; on Kubernetes a mapped pod task per Airflow pool, retried with backoff.
    Returns the tasks (the ingest step after them uses trigger_rule all_done)."""
    from airflow.sdk import task

    from warriorflow.config import load_config

    config = load_config()
    if config.settings.kubernetes.placement != KUBERNETES:
        @task(task_id=task_id, max_active_tis_per_dagrun=1)
        def run_local(job: dict) -> str:
            from warriorflow.tasks.jobs import run_local_job

            return run_local_job(job)

        return [run_local.expand(job=jobs)]
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from warriorflow.tasks.pods import job_pools, pool_task_suffix

    out = []
    for pool in job_pools(config, step):
        suffix = pool_task_suffix(pool)

        @task(task_id=f"{task_id}_pods_{suffix}")
        def specs(jobs: list[dict], pool: str = pool) -> list[dict]:
            return job_pods(jobs, pool)

        out.append(KubernetesPodOperator.partial(
            task_id=f"{task_id}_{suffix}", pool=pool, **retry_options(config), **pod_operator_options(config))
            .expand(pod_template_dict=specs(jobs)))
    return out


def training_pod_spec(args: list[str]) -> dict:
    """The pod spec for ``warriorflow ARGS`` on the training node pool (``kubernetes.training``), for pod_task."""
    from warriorflow.config import load_config
    from warriorflow.tasks.pods import training_pod

    config = load_config()
    return finish_pods(config, [training_pod(config, list(args))])[0]


def eval_pod_specs(step: str, uris: list[str]) -> list[dict]:
    """One pod spec per evaluation request URI for ``step`` (generate: the target's resources; check: CPUs)."""
    from warriorflow.config import load_config
    from warriorflow.tasks.pods import eval_pod

    config = load_config()
    sync_s3_secret(config)
    return finish_pods(config, [eval_pod(config, step, u, u.rstrip("/").rsplit("/", 2)[-2]) for u in uris])


def eval_pool(step: str) -> str:
    """Parse time: the Airflow pool of an evaluation job's pods (its node pool's, as for model jobs)."""
    from warriorflow.config import load_config
    from warriorflow.tasks.pods import pool_for

    config = load_config()
    ev = config.settings.evaluation
    return pool_for(ev.resources if step == "generate" else config.settings.kubernetes.cpu_job)
