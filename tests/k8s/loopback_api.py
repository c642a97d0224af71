"""A loopback Kubernetes API: a STAND-IN for a cluster, not a cluster.

An HTTP server on 127.0.0.1, started by the tests, that speaks the handful of core/v1 endpoints the
kubernetes client (sync) and kubernetes_asyncio (the deferrable trigger) call for a pod's life:
create, list by label selector, read, read log, list events, patch labels, delete. Nothing is scheduled
and nothing runs: every read of a pod moves it one step along ``phases`` (Pending -> Running -> the final
phase), with container statuses to match, and its log is the scripted ``log_lines``. Every request is
recorded so the tests can assert what the operator sent.

``on_create(pod)``, when given, is called as a pod is created: a test uses it to do the pod's work in
its own process (e.g. run the ``warriorflow job`` the pod would run, with scripted models), so that a
DAG of jobs can run end to end against the stand-in. That is the test doing the work, not a kubelet.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

TOKEN = "loopback-stand-in-token"  # not a credential of anything
_POD = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods(?:/(?P<name>[^/]+)(?:/(?P<sub>log))?)?$")
_EVENTS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/events$")
_OBJECTS = re.compile(r"^/(?:apis/apps/v1|api/v1)/namespaces/(?P<ns>[^/]+)/(?P<kind>deployments|services)"
                      r"(?:/(?P<name>[^/]+)(?:/(?P<sub>status))?)?$")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: dict | None


@dataclass
class LoopbackKubernetes:
    final_phase: str = "Succeeded"
    log_lines: tuple[str, ...] = ("loopback: worker started", "loopback: worker finished")
    requests: list[Request] = field(default_factory=list)
    pods: dict[tuple[str, str], dict] = field(default_factory=dict)
    served_phases: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    on_create: object = None  # a callable(pod dict), see the module doc
    objects: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (kind, ns, name): deployments, services
    removed: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) deleted
    deployments_become_ready: bool = True

    def __post_init__(self):
        self._lock = threading.Lock()
        self._reads: dict[tuple[str, str], int] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackKubernetes:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "loopback",
            "clusters": [{"name": "loopback", "cluster": {"server": self.url}}],
            "users": [{"name": "loopback", "user": {"token": TOKEN}}],
            "contexts": [{"name": "loopback", "context": {"cluster": "loopback", "user": "loopback"}}]}))
        return path

    def created(self) -> list[dict]:
        return [r.body for r in self.requests if r.method == "POST"]

    def calls(self) -> list[str]:
        """``METHOD kind`` per request, e.g. ``POST pods``, ``GET pod``, ``GET log``, ``DELETE pod``."""
        out = []
        for r in self.requests:
            m = _POD.match(r.path)
            kind = "events" if _EVENTS.match(r.path) else ("log" if m and m["sub"] else "pod" if m and m["name"]
                                                           else "pods")
            out.append(f"{r.method} {kind}")
        return out

    # ------------------------------------------------------------------ the pod's scripted life

    def _phase(self, key: tuple[str, str], advance: bool) -> str:
        phases = ["Pending", "Running", self.final_phase]
        n = self._reads.get(key, 0)
        if advance:
            self._reads[key] = n + 1
        return phases[min(n, len(phases) - 1)]

    def _with_status(self, key: tuple[str, str], advance: bool) -> dict:
        pod = json.loads(json.dumps(self.pods[key]))
        phase = self._phase(key, advance)
        if advance:
            self.served_phases.setdefault(key[1], []).append(phase)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        state = {"Pending": {"waiting": {"reason": "ContainerCreating"}},
                 "Running": {"running": {"startedAt": now}},
                 "Succeeded": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now}},
                 "Failed": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": now}}}[phase]
        pod["status"] = {
            "phase": phase,
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready":
                                   phase == "Running", "restartCount": 0, "state": state,
                                   "started": phase == "Running"} for c in pod["spec"]["containers"]]}
        return pod

    def handle(self, method: str, path: str, query: dict[str, str], body: dict | None) -> tuple[int, object]:
        with self._lock:
            self.requests.append(Request(method, path, query, body))
            if m := _EVENTS.match(path):
                return 200, {"kind": "EventList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                             "items": [{"metadata": {"name": "ev-1", "uid": "ev-1", "resourceVersion": "1"},
                                        "involvedObject": {"kind": "Pod", "fieldPath": "spec.containers{base}"},
                                        "message": "Scheduled on the loopback stand-in (no node exists)"}]}
            if m := _OBJECTS.match(path):
                return self._object(method, m, body)
            m = _POD.match(path)
            if not m:
                return 404, _status(404, f"the loopback stand-in does not serve {path}")
            ns, name, sub = m["ns"], m["name"], m["sub"]
            if name is None and method == "POST":
                name = body["metadata"]["name"]
                pod = json.loads(json.dumps(body))
                pod["metadata"].update(namespace=ns, uid=f"uid-{len(self.pods)}", resourceVersion="1",
                                       creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                self.pods[(ns, name)] = pod
                if self.on_create is not None:
                    self.on_create(pod)
                return 201, self._with_status((ns, name), advance=False)
            if name is None and method == "GET":
                items = [self._with_status(k, advance=False) for k, p in self.pods.items()
                         if k[0] == ns and _selected(p["metadata"].get("labels") or {}, query.get("labelSelector"))]
                return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                             "items": items}
            key = (ns, name)
            if key not in self.pods:
                return 404, _status(404, f'pods "{name}" not found')
            if sub == "log":
                stamp = "2026-11-22T05:00:00.000000000Z " if query.get("timestamps", "").lower() == "true" else ""
                lines = [stamp + line for line in self.log_lines]
                return 200, "\n".join(lines) + "\n"
            if method == "GET":
                return 200, self._with_status(key, advance=True)
            if method == "PATCH":
                self.pods[key]["metadata"].setdefault("labels", {}).update(
                    (body or {}).get("metadata", {}).get("labels", {}))
                return 200, self._with_status(key, advance=False)
            if method == "DELETE":
                pod = self._with_status(key, advance=False)
                del self.pods[key]
                self.deleted.append(name)
                return 200, pod
            return 405, _status(405, f"{method} not served by the loopback stand-in")


    def _object(self, method: str, m, body: dict | None) -> tuple[int, object]:
        """Deployments and Services: stored as sent; a Deployment reads as available from its second read on
        (the stand-in's idea of a vllm serve that became ready)."""
        ns, kind, name = m["ns"], m["kind"], m["name"]
        if name is None and method == "POST":
            key = (kind, ns, body["metadata"]["name"])
            if key in self.objects:
                return 409, _status(409, f'{kind} "{key[2]}" already exists')
            self.objects[key] = json.loads(json.dumps(body))
            self._reads[key] = 0
            return 201, self.objects[key]
        key = (kind, ns, name)
        if key not in self.objects:
            return 404, _status(404, f'{kind} "{name}" not found')
        if method == "PUT":
            self.objects[key] = json.loads(json.dumps(body))
            return 200, self.objects[key]
        if method == "DELETE":
            del self.objects[key]
            self.removed.append((kind, name))
            return 200, _status(200, "deleted")
        obj = json.loads(json.dumps(self.objects[key]))
        if kind == "deployments":
            self._reads[key] += 1
            ready = 1 if self.deployments_become_ready and self._reads[key] > 1 else 0
            obj["status"] = {"replicas": 1, "availableReplicas": ready, "readyReplicas": ready}
        return 200, obj


def _status(code: int, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code,
            "reason": {404: "NotFound", 405: "MethodNotAllowed", 409: "AlreadyExists"}.get(code, "BadRequest")}


def _selected(labels: dict[str, str], selector: str | None) -> bool:
    """Kubernetes label-selector equality terms: k=v, k==v, k!=v, !k, k."""
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            ok = labels.get(k) != v
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            ok = labels.get(k) == v
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True


def _handler(api: LoopbackKubernetes):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw.strip() else None
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                code, payload = 401, _status(401, "no bearer token")
            else:
                code, payload = api.handle(self.command, url.path, query, body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped following a log
                pass

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        def log_message(self, *args):  # keep the test output quiet
            pass

    return Handler
