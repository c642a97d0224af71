"""THE REAL KubernetesPodOperator (cncf provider) runs a warriorflow job pod spec (a response job of an
offline GPU expert) through its whole
execute lifecycle -- create, poll Pending -> Running -> Succeeded/Failed, fetch logs, delete -- against a
loopback Kubernetes API served by the test (tests/k8s/loopback_api.py). That server is a STAND-IN for a
cluster: it speaks the API the kubernetes clients use but schedules and runs nothing. What it checks is
the operator and our spec, wiring and env, not Kubernetes itself.

Both ways the operator waits are driven: synchronously in the task, and deferred (the trigger's async run
loop against the same server with kubernetes_asyncio, then the operator's re-entry method)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import kubernetes_validate
import pytest

from tests.k8s.airflow_env import ACCESS_KEY, BUCKET, S3_ENDPOINT, SECRET_KEY, VLLM_KEY, use_loopback, use_production
from tests.k8s.loopback_api import LoopbackKubernetes
from warriorflow.tasks.pods import GPU

JOB = {"key": "runs/manual__2026-11-22/jobs/respond/in/respond-qwq-32b-preview-s0003.json", "step": "respond",
       "model": "qwq-32b-preview", "items": 12}
RUN_ID = "manual__2026-11-22T04:21:55+00:00"


@pytest.fixture
def prod(monkeypatch):
    use_production(monkeypatch)


def _api(request, tmp_path, monkeypatch, final_phase: str) -> LoopbackKubernetes:
    api = LoopbackKubernetes(final_phase=final_phase)
    api.__enter__()
    request.addfinalizer(api.__exit__)
    use_loopback(api, monkeypatch, tmp_path)
    return api


@pytest.fixture
def api(request, tmp_path, monkeypatch):
    return _api(request, tmp_path, monkeypatch, "Succeeded")


@pytest.fixture
def failing_api(request, tmp_path, monkeypatch):
    return _api(request, tmp_path, monkeypatch, "Failed")


class _TaskInstance:
    """The few task-instance attributes the operator reads (labels, XCom of the pod's name)."""

    dag_id, task_id, map_index, try_number = "warriorflow_battle", "respond_gpu_a100", 3, 1

    def __init__(self):
        self.start_date = datetime.now(UTC)
        self.xcom: dict = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def _context():
    ti = _TaskInstance()
    return {"ti": ti, "run_id": RUN_ID, "dag": SimpleNamespace(dag_id=ti.dag_id)}, ti


def _operator(**overrides):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from warriorflow.tasks.placement import job_pods, pod_operator_options

    # what the DAG's respond_pods_gpu_a100 task returns, env resolved from Airflow now; a CPU job is not its pool's
    [spec] = job_pods([JOB, {**JOB, "model": "qwen2.5-72b-instruct", "key": JOB["key"].replace("qwq", "qwen")}],
                      "warriorflow_pool_gpu-a100")
    fast = {"startup_check_interval_seconds": 0.05, "poll_interval": 0.05,
            "base_container_status_polling_interval": 0.05}
    return KubernetesPodOperator(task_id="respond_gpu_a100", pod_template_dict=spec,
                                 **{**pod_operator_options(), **fast, **overrides})


def _in_uri() -> str:
    from warriorflow.config import load_config
    from warriorflow.store.objects import open_objects

    return open_objects(load_config()).uri(JOB["key"])


def _assert_the_pod_sent(api: LoopbackKubernetes, task_log: str) -> dict:
    [body] = api.created()
    kubernetes_validate.validate(body, "1.33", strict=True)  # what the operator really sent is a valid Pod
    spec, container = body["spec"], body["spec"]["containers"][0]
    assert body["metadata"]["namespace"] == "warriorflow"
    assert body["metadata"]["name"].startswith("respond-qwq-32b-preview-s0003")
    assert container["command"] == ["warriorflow", "job", "--in", _in_uri()]
    assert container["resources"]["limits"] == {GPU: "2"}  # the job's one model's GPUs (its tensor parallelism)
    assert spec["tolerations"] == [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "gpu-a100"}
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "warriorflow-s3",
                                                                         "key": "secret_access_key"}
    assert env["WARRIORFLOW_S3_ENDPOINT_URL"]["value"] == S3_ENDPOINT  # the connection
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert env["WARRIORFLOW_BUCKET"]["value"] == BUCKET  # the Airflow Variable
    assert env["WARRIORFLOW_CONFIG"]["value"] == "/etc/warriorflow/production.example.yaml"
    labels = body["metadata"]["labels"]
    assert labels["dag_id"] == "warriorflow_battle" and labels["map_index"] == "3"  # the operator's own labels
    seen = json.dumps([r.__dict__ for r in api.requests]) + task_log
    for secret in (ACCESS_KEY, SECRET_KEY, VLLM_KEY):
        assert secret not in seen
    return body


def test_sync_lifecycle_creates_polls_logs_and_deletes(prod, api, capfd):
    op = _operator(deferrable=False)
    context, ti = _context()
    op.execute(context)
    task_log = "".join(capfd.readouterr())  # Airflow 3 task logging goes through structlog to the console
    body = _assert_the_pod_sent(api, task_log)
    name = body["metadata"]["name"]
    assert api.served_phases[name][:3] == ["Pending", "Running", "Succeeded"]
    calls = api.calls()
    assert calls[0] == "GET pods" and "POST pods" in calls and "GET log" in calls  # reattach lookup, create, logs
    assert calls[-1] == "DELETE pod" and api.deleted == [name] and not api.pods  # on_finish_action=delete_pod
    assert "[base] loopback: worker finished" in task_log  # the pod's log reached the task log
    assert ti.xcom["pod_name"] == name and ti.xcom["pod_namespace"] == "warriorflow"


def test_sync_failed_pod_fails_the_task_and_is_still_deleted(prod, failing_api):
    op = _operator(deferrable=False)
    context, _ = _context()
    with pytest.raises(Exception, match="returned a failure") as failure:
        op.execute(context)
    assert "secret_access_key" in str(failure.value) and SECRET_KEY not in str(failure.value)  # the spec, no values
    [body] = failing_api.created()
    name = body["metadata"]["name"]
    assert failing_api.served_phases[name][-1] == "Failed"
    assert "PATCH pod" in failing_api.calls()  # marked already_checked, so a retry never reattaches to it
    assert failing_api.deleted == [name]


def _run_deferred(op, context):
    """execute -> TaskDeferred; run the trigger's async loop to its first event; resume the operator."""
    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert deferred.value.method_name == "trigger_reentry"

    async def first_event():
        async for event in deferred.value.trigger.run():
            return event

    event = asyncio.run(first_event())
    return event, lambda: getattr(op, deferred.value.method_name)(context, event.payload)


def test_deferrable_lifecycle_through_the_trigger(prod, api, capfd):
    op = _operator()
    assert op.deferrable  # the production example config's kubernetes.deferrable
    context, _ = _context()
    event, resume = _run_deferred(op, context)
    assert event.payload["status"] == "success"
    assert "DELETE pod" not in api.calls()  # the trigger only watches; the operator cleans up on re-entry
    resume()
    task_log = "".join(capfd.readouterr())
    body = _assert_the_pod_sent(api, task_log)
    name = body["metadata"]["name"]
    assert "Running" in api.served_phases[name] and api.served_phases[name][-1] == "Succeeded"
    assert "[base] logs: loopback: worker finished" in task_log and "GET log" in api.calls()
    assert api.deleted == [name] and not api.pods


def test_deferrable_failed_pod_fails_on_reentry(prod, failing_api):
    op = _operator()
    context, _ = _context()
    event, resume = _run_deferred(op, context)
    assert event.payload["status"] == "failed"
    with pytest.raises(Exception, match="returned a failure") as failure:
        resume()
    assert SECRET_KEY not in str(failure.value)  # the failure message carries the whole pod spec
    assert failing_api.deleted == [failing_api.created()[0]["metadata"]["name"]]
