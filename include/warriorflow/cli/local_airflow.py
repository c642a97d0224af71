"""The embedded flywheel under a real ``airflow standalone`` on 127.0.0.1 (what ``make run`` starts).

:class:`LocalAirflow` starts standalone (scheduler, dag-processor, triggerer, api-server; SQLite and the
LocalExecutor) in its own process group with:

* ``AIRFLOW_HOME`` below the flywheel's home (``var/airflow``), the dags and plugins folders of this repo;
* the api-server bound to 127.0.0.1 (the log server of the LocalExecutor's workers, serve-logs, still
  binds 0.0.0.0:8793: Airflow has no setting for its host);
* a known admin password (``SimpleAuthManager``'s password file, written before start);
* parallelism limited for a small machine (2 task slots, one parsing process, one api worker);
* the single-writer pool ``warriorflow_db`` with one slot.

:class:`AirflowApi` is a small client of the public REST API v2 (a JWT from ``/auth/token``):
unpause, trigger, list runs, create backfills, wait. :func:`run_cycle` is the "one full cycle" of
``make run``: trigger the mine DAG and wait until the asset-triggered battle and retrain runs it
causes have finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from warriorflow.config.paths import REPO_ROOT
from warriorflow.errors import WarriorflowError

REPO = REPO_ROOT
DAG_IDS = ("warriorflow_mine", "warriorflow_battle", "warriorflow_retrain")
DB_POOL = "warriorflow_db"
TERMINAL = {"success", "failed"}


class AirflowLocalError(WarriorflowError):
    """The embedded Airflow did not start, answer or finish what it was asked to."""


def _error(what: str, problem: str, fix: str) -> AirflowLocalError:
    return AirflowLocalError(what, problem, fix)


@dataclass
class LocalAirflow:
    """One ``airflow standalone`` for this checkout; its state lives in ``home`` (pid file, log, SQLite)."""

    home: Path
    port: int = 8080
    username: str = "admin"
    password: str = "warriorflow"
    parallelism: int = 2
    log_port: int = 8793            # serve-logs of the LocalExecutor's workers (binds 0.0.0.0)
    trigger_log_port: int = 8794    # the triggerer's log server
    repo: Path = REPO
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "standalone.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "standalone.log"

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.repo / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.repo / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.password_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
            "HF_HUB_OFFLINE": "1",
            "GX_ANALYTICS_ENABLED": "false",
            # standalone starts its components as `airflow ...` from PATH: put this interpreter's bin first
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join(p for p in (str(self.repo / "include"), env.get("PYTHONPATH", "")) if p),
        })
        env.update(self.extra_env)
        return env

    def _airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env(), capture_output=True,
                              text=True)
        if check and proc.returncode != 0:
            raise _error(f"`airflow {' '.join(args)}`", f"exited with {proc.returncode}: {proc.stderr.strip()[-800:]}",
                         f"see {self.home} and fix the Airflow setup, then retry")
        return proc

    def pid(self) -> int | None:
        """The process group of a running standalone started from here, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def start(self, timeout_s: float = 240.0, log: Callable[[str], None] = print) -> None:
        """Start standalone (or reuse the one already running) and wait until its API and jobs are healthy."""
        self.home.mkdir(parents=True, exist_ok=True)
        if self.pid() is not None:
            log(f"airflow standalone already running (pid {self.pid()}); reusing it")
            self.wait_healthy(timeout_s)
            return
        if _port_in_use(self.port):
            raise _error(f"127.0.0.1:{self.port}", "is already in use by another program",
                         "stop it, or choose another port: WARRIORFLOW_AIRFLOW_PORT=8081 make run")
        self.password_file.write_text(json.dumps({self.username: self.password}))
        self.password_file.chmod(0o600)
        log("airflow db migrate (first start takes a minute)")
        self._airflow("db", "migrate")
        self._airflow("pools", "set", DB_POOL, "1", "single writer of the warriorflow rating store")
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self.home)
        self.pid_file.write_text(str(proc.pid))
        log(f"airflow standalone started (pid {proc.pid}); log: {self.log_file}")
        try:
            self.wait_healthy(timeout_s, proc=proc)
        except AirflowLocalError:
            self.stop()
            raise

    def wait_healthy(self, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
        deadline, last = time.monotonic() + timeout_s, "no answer yet"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise _error("airflow standalone", f"exited with {proc.returncode} while starting",
                             f"read {self.log_file}")
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                states = {k: (v or {}).get("status") for k, v in health.items()}
                if all(states.get(k) == "healthy" for k in ("metadatabase", "scheduler", "triggerer",
                                                              "dag_processor")):
                    return
                last = f"components {states}"
            except (httpx.HTTPError, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(2)
        raise _error(f"airflow standalone at {self.url}", f"not healthy after {timeout_s:.0f}s ({last})",
                     f"read {self.log_file}; `make stop` and retry")

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the standalone started from here and everything it started. Its components and the task
        processes they fork (which make their own process groups) all stay in the session ``start`` opened,
        so every member of that session is signalled. True if one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
            for member in session_members(pid):
                try:
                    os.kill(member, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and session_members(pid):
                _reap(pid)
                time.sleep(0.5)
            if not session_members(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        return True

    def api(self) -> AirflowApi:
        return AirflowApi(self.url, self.username, self.password)


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes in session ``sid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(stat.parent.name))
    return members


def _reap(pid: int) -> None:
    """Collect the standalone process if it is our own exited child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class AirflowApi:
    """The few REST API v2 calls the embedded run needs, with a JWT from SimpleAuthManager."""

    def __init__(self, url: str, username: str, password: str, timeout_s: float = 30.0):
        self.url = url
        self._client = httpx.Client(base_url=url, timeout=timeout_s)
        resp = self._client.post("/auth/token", json={"username": username, "password": password})
        if resp.status_code not in (200, 201):
            raise _error(f"{url}/auth/token", f"login as {username!r} failed with HTTP {resp.status_code}",
                         "check the password file in AIRFLOW_HOME (make stop; make run writes it)")
        self._client.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        for delay in (2.0, 4.0, 8.0, None):
            resp = self._client.request(method, f"/api/v2{path}", **kwargs)
            # 503: the api-server could not take a database lock (standalone's SQLite is busy with the
            # scheduler) and undid what it had started, a backfill included: asking again is safe
            if resp.status_code != 503 or delay is None:
                break
            time.sleep(delay)
        if resp.status_code >= 400:
            raise _error(f"{method} {self.url}/api/v2{path}", f"HTTP {resp.status_code}: {resp.text[:500]}",
                         "see the api-server log in AIRFLOW_HOME")
        return resp.json() if resp.content else {}

    def wait_for_dags(self, dag_ids: Iterable[str] = DAG_IDS, timeout_s: float = 180.0) -> None:
        """Wait until the dag-processor has parsed every DAG (and none has an import error)."""
        deadline, missing = time.monotonic() + timeout_s, list(dag_ids)
        while time.monotonic() < deadline:
            errors = self._call("GET", "/importErrors").get("import_errors", [])
            if errors:
                raise _error(errors[0].get("filename", "a DAG file"), f"failed to import: "
                             f"{errors[0].get('stack_trace', '')[-800:]}", "fix the DAG file")
            missing = [d for d in dag_ids if self._client.get(f"/api/v2/dags/{d}").status_code != 200]
            if not missing:
                return
            time.sleep(3)
        raise _error("the dag-processor", f"has not parsed {missing} after {timeout_s:.0f}s",
                     "read the standalone log")

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, note: str = "") -> str:
        run = self._call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "note": note or None})
        return run["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "run_after"})[
            "dag_runs"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 200})
        return {f"{t['task_id']}[{t['map_index']}]" if t.get("map_index", -1) >= 0 else t["task_id"]: t["state"]
                for t in tis["task_instances"]}

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, reprocess: str, max_active_runs: int = 1
                        ) -> dict:
        return self._call("POST", "/backfills", json={"dag_id": dag_id, "from_date": from_date, "to_date": to_date,
                                                      "reprocess_behavior": reprocess,
                                                      "max_active_runs": max_active_runs})

    def wait_quiet(self, dag_ids: Iterable[str], since: datetime, timeout_s: float, settle_s: float = 20.0,
                   log: Callable[[str], None] = print) -> dict[str, list[dict]]:
        """Wait until every run of ``dag_ids`` created after ``since`` is finished and no new one has appeared
        for ``settle_s`` (asset-triggered runs follow their producers after a scheduler loop)."""
        deadline, quiet_since, seen = time.monotonic() + timeout_s, None, ""
        while time.monotonic() < deadline:
            runs = {d: [r for r in self.runs(d) if _after(r, since)] for d in dag_ids}
            states = ", ".join(f"{d.removeprefix('warriorflow_')}: {'/'.join(r['state'] for r in rs) or '-'}"
                               for d, rs in runs.items())
            if states != seen:
                log(f"  {time.strftime('%H:%M:%S')}  {states}")
                seen, quiet_since = states, None
            if all(r["state"] in TERMINAL for rs in runs.values() for r in rs):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle_s:
                    return runs
            time.sleep(5)
        raise _error("the flywheel cycle", f"not finished after {timeout_s:.0f}s ({seen})",
                     "open the Airflow UI to see which task is slow or stuck")


def _after(run: dict, since: datetime) -> bool:
    stamp = run.get("queued_at") or run.get("run_after") or run.get("start_date")
    return stamp is not None and datetime.fromisoformat(stamp.replace("Z", "+00:00")) >= since


def run_cycle(api: AirflowApi, timeout_s: float = 3600.0, log: Callable[[str], None] = print) -> dict[str, list]:
    """Unpause the three DAGs, trigger the mine DAG and wait for everything it sets off (the battle run on
    the selected-instructions asset, the retrain run on the gold asset, and any scheduled run that
    unpausing created). Raise if any of those runs failed."""
    since = datetime.now(UTC)
    api.wait_for_dags()
    for dag_id in DAG_IDS:
        api.unpause(dag_id)
    # Unpausing a periodic DAG makes the scheduler create the run of its latest interval at once; that run
    # is the cycle. Trigger one only when none comes (the latest interval already ran earlier).
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not [r for r in api.runs("warriorflow_mine") if _after(r, since)]:
        time.sleep(3)
    started = [r for r in api.runs("warriorflow_mine") if _after(r, since)]
    if started:
        log(f"the scheduler started warriorflow_mine {started[0]['dag_run_id']} on unpause; following it")
    else:
        run_id = api.trigger("warriorflow_mine", note="make run: one full cycle")
        log(f"triggered warriorflow_mine {run_id}")
    log("waiting for mine -> battle (on the selected asset) -> retrain (on the gold asset)")
    runs = api.wait_quiet(DAG_IDS, since, timeout_s, log=log)
    failed = [(d, r["dag_run_id"]) for d, rs in runs.items() for r in rs if r["state"] == "failed"]
    if failed:
        details = "; ".join(f"{d} {rid}: {api.task_states(d, rid)}" for d, rid in failed)
        raise _error("the flywheel cycle", f"runs failed: {details}", "open the failed tasks' logs in the UI")
    if not runs["warriorflow_battle"]:
        raise _error("the flywheel cycle", "the mine run finished but no battle run followed",
                     "check that the mine run emitted warriorflow://instructions/selected")
    return runs


def wait_backfill(api: AirflowApi, dag_id: str, since: datetime, timeout_s: float = 3600.0,
                  log: Callable[[str], None] = print) -> list[dict]:
    """Wait until the runs of ``dag_id`` created after ``since`` (its backfill runs among them) are finished;
    return the backfill runs. Raise if one failed or none appeared. The DAG must be unpaused: Airflow starts
    no run of a paused DAG, backfill runs included."""
    runs = api.wait_quiet((dag_id,), since, timeout_s, log=log)
    backfill_runs = [r for r in runs[dag_id] if r["run_type"] == "backfill"]
    if not backfill_runs:
        raise _error(f"the backfill of {dag_id}", "created no runs",
                     "check the dates: a run is created for each schedule tick in [from, to]; with "
                     "--reprocess-behavior none, intervals that already ran are skipped")
    failed = [r["dag_run_id"] for r in backfill_runs if r["state"] == "failed"]
    if failed:
        raise _error(f"the backfill of {dag_id}", f"runs failed: {failed}", "open the failed tasks' logs in the UI")
    return backfill_runs


def run_backfill(api: AirflowApi, dag_id: str, from_date: str, to_date: str, reprocess: str = "completed",
                 timeout_s: float = 3600.0, log: Callable[[str], None] = print) -> list[dict]:
    """What the UI's backfill (and `airflow backfill create`) does: create the backfill, then wait for its runs.
    ``reprocess="completed"`` re-runs intervals that already ran too; the planner only plans what is missing,
    so re-running an interval costs nothing but the newcomer's battles."""
    since = datetime.now(UTC)
    api.wait_for_dags((dag_id,))
    api.unpause(dag_id)
    backfill = api.create_backfill(dag_id, from_date, to_date, reprocess)
    log(f"backfill {backfill.get('id')} of {dag_id} from {from_date} to {to_date} created; waiting for its runs")
    return wait_backfill(api, dag_id, since, timeout_s, log=log)
