"""Start the served experts' own ``vllm serve`` for a cycle and remove it afterwards (optional: experts
with a ``deployment`` in the registry, Kubernetes placement only).

``start`` creates (or replaces) each expert's Deployment and Service (:func:`warriorflow.tasks.pods.
serve_manifests`) and waits until the Deployment has an available replica (its /health readiness probe
passed), within the expert's ``ready_timeout_s``; ``stop`` deletes them, and runs when the cycle's last
step is done, failed or not, so GPUs are never left holding an idle server.
"""

from __future__ import annotations

import logging
import time

from warriorflow.errors import BackendError

log = logging.getLogger(__name__)


def _clients(config):
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    hook = KubernetesHook(conn_id=config.settings.kubernetes.airflow_conn_id)
    from kubernetes import client

    return client.AppsV1Api(hook.api_client), hook.core_v1_client


def start(config, poll_s: float = 5.0) -> list[str]:
    """Create or replace every managed expert's Deployment and Service, then wait until each is ready."""
    from warriorflow.tasks.placement import create_or_replace
    from warriorflow.tasks.pods import managed_experts, serve_manifests

    names = managed_experts(config)
    if not names:
        return []
    apps, core = _clients(config)
    ns = config.settings.kubernetes.namespace
    deployments = {}
    for name in names:
        deployment, service = serve_manifests(config, name)
        create_or_replace(apps.create_namespaced_deployment, apps.replace_namespaced_deployment, ns, deployment)
        create_or_replace(core.create_namespaced_service, core.replace_namespaced_service, ns, service)
        deployments[name] = deployment
        log.info("started vllm serve for %s (%s)", name, deployment["metadata"]["name"])
    for name, deployment in deployments.items():
        timeout = config.registry.get(name).deployment.ready_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            status = apps.read_namespaced_deployment_status(deployment["metadata"]["name"], ns).status
            if (status.available_replicas or 0) >= 1:
                log.info("vllm serve for %s is ready", name)
                break
            if time.monotonic() > deadline:
                raise BackendError(f"vllm serve of expert '{name}'", f"not ready after {timeout} s",
                                   f"kubectl -n {ns} describe deployment {deployment['metadata']['name']}; raise "
                                   "its deployment.ready_timeout_s if the model is still loading")
            time.sleep(poll_s)
    return names


def stop(config) -> list[str]:
    """Delete every managed expert's Deployment and Service (a missing one is fine)."""
    from kubernetes.client.exceptions import ApiException

    from warriorflow.tasks.pods import managed_experts, served_name

    names = managed_experts(config)
    if not names:
        return []
    apps, core = _clients(config)
    ns = config.settings.kubernetes.namespace
    for name in names:
        for delete in (apps.delete_namespaced_deployment, core.delete_namespaced_service):
            try:
                delete(served_name(name), ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        log.info("stopped vllm serve for %s", name)
    return names
