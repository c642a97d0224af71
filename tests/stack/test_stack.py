"""The production stack, for real, on this machine (`make test-stack`; not part of `make test`).

`docker/local/stack.sh` builds the images (cached) and boots docker/compose.yaml under podman: Postgres, Redis,
SeaweedFS, the Airflow api-server, scheduler, dag-processor and triggerer, two Celery workers, and an embedded
expert served by llama.cpp's HTTP server. Then:

1. one full cycle (mine -> battle -> retrain) runs through the Celery workers. While the battle DAG runs, the
   worker running one of its tasks is killed (SIGKILL); Airflow fails that task on its missed heartbeats and
   retries it on the other worker. The cycle must still finish with every run successful, tasks must have run
   on both workers, and the stores must show nothing lost and nothing duplicated (tests/stack/integrity.py);
   the leaderboard and the snapshot in S3 are checked.
2. the pods: `warriorflow pods render` prints the specs the KubernetesPodOperator would submit for real jobs
   (a newly joined expert's response job, the judge jobs of its battles, and a training run); `podman play
   kube` runs them unmodified (the S3 Secret and the ConfigMap included) against the stack's S3 and model
   server; the stack ingests their results.

Everything is torn down at the end (`stack.sh down`), whatever happened.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from warriorflow.cli.local_airflow import DAG_IDS, AirflowApi, run_cycle

pytestmark = [pytest.mark.stack]

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "docker" / "local" / "stack.sh"
STACK_DIR = Path(os.environ.get("STACK_DIR", ROOT / "var" / "stack"))
PROJECT = "warriorflow"
NETWORK = f"{PROJECT}_default"
CONTAINERS_CONF = os.environ.get("CONTAINERS_CONF", str(ROOT / "docker" / "local" / "containers.conf"))
CYCLE_TIMEOUT_S = float(os.environ.get("WARRIORFLOW_STACK_CYCLE_TIMEOUT_S", 3600))
NEWCOMER = "smollm2-135m-instruct-joined"
KEEP = os.environ.get("WARRIORFLOW_STACK_KEEP") == "1"    # leave the stack up at the end (debugging)
REUSE = os.environ.get("WARRIORFLOW_STACK_REUSE") == "1"  # run against a stack that is up (debugging)


def log(msg: str) -> None:
    print(f"[test-stack {datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def sh(*args: str, timeout: float = 600, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONTAINERS_CONF": CONTAINERS_CONF}
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env,
                          input=stdin)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))[:300]} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}")
    return proc


def podman(*args: str, **kw) -> subprocess.CompletedProcess:
    return sh("podman", *args, **kw)


def containers(service: str) -> list[str]:
    out = podman("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}", "--filter",
                 f"label=com.docker.compose.service={service}", "--format", "{{.Names}}").stdout
    return sorted(out.split())


def hostname_of(container: str) -> str:
    return podman("inspect", container, "--format", "{{.Config.Hostname}}").stdout.strip()


def read_env(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


class Stack:
    def __init__(self) -> None:
        self.env = read_env(STACK_DIR / "stack.env")
        self.url = f"http://127.0.0.1:{self.env.get('AIRFLOW_API_PORT', '8080')}"
        self.api = AirflowApi(self.url, "admin", self.env["AIRFLOW_ADMIN_PASSWORD"])

    def exec(self, container: str, *args: str, timeout: float = 900,
             check: bool = True) -> subprocess.CompletedProcess:
        return podman("exec", container, *args, timeout=timeout, check=check)

    def writer(self) -> str:
        """A live worker container: where the test's own writer commands run (nothing else writes then)."""
        live = [c for c in containers("airflow-worker")
                if podman("inspect", c, "--format", "{{.State.Running}}").stdout.strip() == "true"]
        assert live, "no Celery worker container is running"
        return live[0]

    def integrity(self, settings: str | None = None) -> dict:
        c = self.writer()
        podman("cp", str(Path(__file__).with_name("integrity.py")), f"{c}:/tmp/integrity.py")
        out = self.exec(c, "python", "/tmp/integrity.py", *([settings] if settings else [])).stdout
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stack():
    start = time.monotonic()
    sh(STACK, "images", timeout=5400)
    images = (STACK_DIR / "images.tsv").read_text().replace("\n", "; ")
    log(f"images ready in {time.monotonic() - start:.0f} s: {images}")
    if REUSE and (STACK_DIR / "stack.env").is_file():  # debugging: a stack left up by WARRIORFLOW_STACK_KEEP=1
        yield Stack()
        return
    sh(STACK, "down", timeout=300, check=False)  # a previous run's leftovers
    try:
        t0 = time.monotonic()
        sh(STACK, "up", timeout=1200)
        log(f"stack up in {time.monotonic() - t0:.0f} s")
        yield Stack()
    finally:
        if KEEP:
            log("WARRIORFLOW_STACK_KEEP=1: the stack stays up (make stack-down when done)")
        else:
            teardown(start)


def teardown(start: float) -> None:
    """Keep every container's log of the run, then `stack.sh down`."""
    diag = STACK_DIR / "last-run"
    diag.mkdir(parents=True, exist_ok=True)
    for c in podman("ps", "-a", "--filter", f"label=com.docker.compose.project={PROJECT}", "--format",
                    "{{.Names}}", check=False).stdout.split():
        (diag / f"{c}.log").write_text(podman("logs", "--tail", "400", c, check=False).stdout)
    sh(STACK, "down", timeout=600, check=False)
    log(f"torn down; container logs of the run in {diag}; total {time.monotonic() - start:.0f} s")


def running_tis(api: AirflowApi) -> list[dict]:
    return api._call("GET", "/dags/~/dagRuns/~/taskInstances", params={"state": "running", "limit": 100}
                     ).get("task_instances", [])


def all_tis(api: AirflowApi, dag_id: str, run_id: str) -> list[dict]:
    return api._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
                     ).get("task_instances", [])


def test_a_full_cycle_on_two_celery_workers_survives_a_killed_worker(stack):
    workers = containers("airflow-worker")
    assert len(workers) == 2, workers
    host_to_worker = {hostname_of(w): w for w in workers}
    api = stack.api
    result: dict = {}

    def cycle() -> None:
        try:
            result["runs"] = run_cycle(api, timeout_s=CYCLE_TIMEOUT_S, log=lambda m: log(f"cycle: {m}"))
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    t0 = time.monotonic()
    thread = threading.Thread(target=cycle, daemon=True)
    thread.start()
    killed: dict = {}
    seen_hosts: set[str] = set()
    while thread.is_alive():
        thread.join(timeout=5)
        try:
            tis = running_tis(api)
        except Exception as exc:  # the api-server is busy; look again
            log(f"listing task instances: {exc}")
            continue
        seen_hosts |= {ti["hostname"] for ti in tis if ti.get("hostname")}
        if not seen_hosts and time.monotonic() - t0 > 600:
            pytest.fail("no task started within 10 minutes of the cycle: the scheduler or the Celery workers are "
                        f"not working (their logs: {STACK_DIR / 'last-run'})")
        if killed:
            continue
        # kill a worker in the middle of one of the battle's model jobs (a mapped respond / execute / judge task:
        # the most work a dead worker can take with it)
        for ti in tis:
            host = ti.get("hostname")
            if (ti["dag_id"] == "warriorflow_battle" and (ti.get("map_index") or -1) >= 0
                    and host in host_to_worker):
                container = host_to_worker[host]
                podman("kill", "--signal", "KILL", container)
                killed.update(container=container, task=ti["task_id"], map_index=ti.get("map_index"),
                              run_id=ti["dag_run_id"], at=time.monotonic() - t0)
                log(f"killed {container} (SIGKILL) while it ran {ti['task_id']}[{ti.get('map_index')}] "
                    f"of {ti['dag_run_id']}, {killed['at']:.0f} s into the cycle")
                break
    cycle_s = time.monotonic() - t0
    if "error" in result:
        raise result["error"]
    runs = result["runs"]
    states = ", ".join(f"{d}: {[r['state'] for r in rs]}" for d, rs in runs.items())
    log(f"cycle finished in {cycle_s:.0f} s: {states}")
    (STACK_DIR / "cycle.json").write_text(json.dumps({"cycle_s": cycle_s, "killed": killed}, indent=1))

    # every run of the cycle succeeded, and retraining ran
    assert all(r["state"] == "success" for rs in runs.values() for r in rs), runs
    assert runs["warriorflow_battle"] and runs["warriorflow_retrain"], runs
    assert killed, "no battle task was seen running, so no worker was killed"

    # tasks ran on both Celery workers
    hosts: dict[str, int] = {}
    for dag_id, rs in runs.items():
        for r in rs:
            for ti in all_tis(api, dag_id, r["dag_run_id"]):
                if ti.get("hostname"):
                    hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
    log(f"task instances per worker host: {hosts}")
    assert set(host_to_worker) <= set(hosts), f"tasks ran on {hosts}, workers are {host_to_worker}"

    # the killed task was retried and succeeded
    tis = all_tis(api, "warriorflow_battle", killed["run_id"])
    ti = next(t for t in tis if t["task_id"] == killed["task"] and t.get("map_index") == killed["map_index"])
    assert ti["state"] == "success" and ti["try_number"] >= 2, ti

    # nothing lost, nothing duplicated
    report = stack.integrity()
    log("integrity: " + json.dumps({k: v for k, v in report.items() if k != "snapshots"}))
    assert report["job_inputs"] > 0 and report["jobs_without_result"] == [], report
    assert report["results_not_ingested"] == [] and report["quarantined"] == [], report
    assert report["battles"] > 0 and report["battles_open"] == 0 and report["votes"] > 0, report
    assert all(v == 0 for v in report["duplicates"].values()), report["duplicates"]
    assert report["gold"] > 0, report
    assert report["snapshots"] and all(s["manifest_in_object_store"] for s in report["snapshots"]), report
    assert report["training_runs"] and all(r["status"] == "done" for r in report["training_runs"]), report

    # the leaderboard answers from the store
    board = stack.exec(stack.writer(), "warriorflow", "leaderboard", "--json").stdout
    rows = json.loads(board)
    names = {r["expert"] for r in rows["experts"]}
    assert {"qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"} <= names, board[:2000]


# ----------------------------------------------------------------------------------------------------------- pods


def pods_config(stack: Stack) -> tuple[str, str]:
    """The stack's settings with a newly joined answering expert (served by the same llama.cpp server, so it
    needs no new weights) and a 2-step training run: written into a worker container as files a ConfigMap holds."""
    c = stack.writer()
    settings = yaml.safe_load(stack.exec(c, "cat", "/etc/warriorflow/warriorflow.compose.yaml").stdout)
    experts = yaml.safe_load(stack.exec(c, "cat", "/etc/warriorflow/experts.compose.yaml").stdout)
    served = next(e for e in experts["experts"] if e["backend"] == "openai")
    experts["experts"].append({**served, "name": NEWCOMER, "roles": ["answer"], "weights_id": "smollm2-135m"})
    served["weights_id"] = "smollm2-135m"  # one model: it may not judge its twin's battles
    settings["name"] = "compose-pods"
    settings["experts_file"] = "experts.pods.yaml"
    settings["training"]["max_steps"] = 2  # another training run than the cycle's (its id hashes the config)
    stack.exec(c, "mkdir", "-p", "/tmp/pods-config")
    for name, doc in (("warriorflow.pods.yaml", settings), ("experts.pods.yaml", experts)):
        local = STACK_DIR / name
        local.write_text(yaml.safe_dump(doc, sort_keys=False))
        podman("cp", str(local), f"{c}:/tmp/pods-config/{name}")
    return c, "/tmp/pods-config/warriorflow.pods.yaml"


def play(stack: Stack, c: str, cfg: str, pods: list[dict], tag: str, timeout_s: float) -> list[dict]:
    """Run rendered pods with `podman play kube` (the ConfigMap in the same file, the S3 Secret as a podman
    secret), wait for each to finish, return {pod, exit, logs} each.

    podman 4.3 resolves a secretKeyRef from a podman secret holding a JSON map of base64 values (a `kind: Secret`
    document it stores in a shape its own lookup then cannot read), so the Secret is made that way."""
    configmap = yaml.safe_load(stack.exec(c, "warriorflow", "--config", cfg, "pods", "configmap").stdout)
    secret_name = pods[0]["spec"]["spec"]["containers"][0]["env"]
    secret_name = next(e["valueFrom"]["secretKeyRef"]["name"] for e in secret_name
                       if e["name"] == "AWS_ACCESS_KEY_ID")
    data = {"access_key_id": stack.env["S3_ACCESS_KEY"], "secret_access_key": stack.env["S3_SECRET_KEY"]}
    podman("secret", "rm", secret_name, check=False)
    podman("secret", "create", secret_name, "-",
           stdin=json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in data.items()}))
    kube = STACK_DIR / f"pods-{tag}.yaml"
    kube.write_text(yaml.safe_dump_all([configmap, *[p["spec"] for p in pods]], sort_keys=False))
    out = []
    try:
        podman("play", "kube", "--network", NETWORK, str(kube), timeout=300)
        for p in pods:
            pod = p["spec"]["metadata"]["name"]
            ctr = f"{pod}-base"
            rc = podman("wait", ctr, timeout=timeout_s).stdout.strip()
            logs = podman("logs", ctr, check=False)
            out.append({"pod": pod, "exit": int(rc) if rc.lstrip("-").isdigit() else -1,
                        "logs": logs.stdout + logs.stderr})
            log(f"pod {pod} ({p['step']}, {p['models'][0]}) exited {rc}")
    finally:
        podman("play", "kube", "--down", str(kube), timeout=300, check=False)
        podman("secret", "rm", secret_name, check=False)
        podman("volume", "rm", "-f", configmap["metadata"]["name"], check=False)
    return out


def render_jobs(stack: Stack, c: str, w: list[str], uris: list[str]) -> list[dict]:
    args = [a for u in uris for a in ("--job", u)]
    return json.loads(stack.exec(c, *w, "pods", "render", "--json", *args).stdout)


def test_rendered_pod_specs_run_as_containers_and_the_stack_ingests_their_results(stack):
    c, cfg = pods_config(stack)
    w = ["warriorflow", "--config", cfg]
    run_id = "pods-newcomer"
    # the rating store learns the newcomer; its battles are planned (single writer: nothing else runs now)
    planned = stack.exec(c, *w, "plan", "--run-id", run_id).stdout
    respond = [line.strip() for line in planned.splitlines() if line.strip().startswith("s3://")]
    if respond or not REUSE:  # (a rerun on a kept stack finds them planned and answered already)
        assert respond, planned
        rendered = render_jobs(stack, c, w, respond)
        assert {p["step"] for p in rendered} == {"respond"} and all(p["spec"]["kind"] == "Pod" for p in rendered)
        ran = play(stack, c, cfg, rendered, "respond", timeout_s=1800)
        assert all(r["exit"] == 0 for r in ran), [(r["pod"], r["logs"][-2000:]) for r in ran if r["exit"]]
        ingested = stack.exec(c, *w, "ingest-responses", "--run-id", run_id).stdout
        log(f"ingest-responses: {ingested.strip().splitlines()[-1:]}")

    # execution evidence runs on the workers' sandbox (its own jobs), then the judges' pods
    for uri in stack.exec(c, *w, "plan-executions", "--run-id", run_id, check=False).stdout.split():
        if uri.startswith("s3://"):
            stack.exec(c, *w, "job", "--in", uri, timeout=1800)
    stack.exec(c, *w, "ingest-executions", "--run-id", run_id, check=False)
    planned = stack.exec(c, *w, "plan-votes", "--run-id", run_id, "--round", "1").stdout
    judge = [line.strip() for line in planned.splitlines() if line.strip().startswith("s3://")]
    if judge or not REUSE:
        assert judge, planned
        rendered = render_jobs(stack, c, w, judge)
        assert {p["step"] for p in rendered} == {"judge"}
        ran = play(stack, c, cfg, rendered, "judge", timeout_s=1800)
        assert all(r["exit"] == 0 for r in ran), [(r["pod"], r["logs"][-2000:]) for r in ran if r["exit"]]
        stack.exec(c, *w, "ingest-votes", "--run-id", run_id)
    report = stack.integrity(cfg)
    log("after the newcomer's pods: " + json.dumps({k: report[k] for k in ("responses", "battles", "battles_open",
                                                                            "votes", "duplicates")}))
    assert report["jobs_without_result"] == [] and report["results_not_ingested"] == [], report
    assert report["battles_open"] == 0 and all(v == 0 for v in report["duplicates"].values()), report

    # the training pod on the cycle's snapshot (2 steps: a run of its own), then the stack records it
    snapshot = report["snapshots"][-1]["snapshot_id"]
    rendered = json.loads(stack.exec(c, *w, "pods", "render", "--json", "--snapshot", snapshot).stdout)
    assert [p["step"] for p in rendered] == ["train"]
    volume = rendered[0]["spec"]["spec"]["volumes"]
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in volume if v.get("persistentVolumeClaim")
                 and v["name"] != "models")
    # a StorageClass with fsGroup support would hand the pod a writable volume; podman needs it done here
    if podman("volume", "exists", claim, check=False).returncode != 0:
        podman("volume", "create", claim)
    podman("run", "--rm", "-v", f"{claim}:/c", "--entrypoint", "chown",
           stack.env.get("WARRIORFLOW_WORKER_CPU_IMAGE", "localhost/warriorflow-worker-cpu:0.1.0"), "1000:1000", "/c")
    ran = play(stack, c, cfg, rendered, "train", timeout_s=3600)
    assert ran[0]["exit"] == 0, ran[0]["logs"][-3000:]
    out = stack.exec(c, *w, "train", "--snapshot", snapshot, "--record-only", "--json").stdout
    recorded = json.loads(out[out.index("{"):])  # the row, printed last (indented)
    log(f"training run recorded: {recorded}")
    assert recorded.get("status") == "done", recorded
    runs = {r["run_id"] for r in stack.integrity(cfg)["training_runs"]}
    assert recorded["training_run_id"] in runs and len(runs) >= 2, runs


def test_teardown_leaves_nothing_behind():
    """Runs last (module order): after `stack.sh down` no container, pod, volume or network of the stack is left."""
    if KEEP:
        pytest.skip("WARRIORFLOW_STACK_KEEP=1 keeps the stack up")
    # the module fixture's finalizer runs after the last test that uses it; run `down` again here to assert on it
    sh(STACK, "down", timeout=600, check=False)
    assert podman("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}").stdout.strip() == ""
    assert podman("pod", "ls", "-q").stdout.strip() == ""
    vols = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert not [v for v in vols if v.startswith(f"{PROJECT}_")], vols
    assert NETWORK not in podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert DAG_IDS  # the DAGs the cycle ran
