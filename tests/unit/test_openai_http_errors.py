"""The HTTP backend's failure modes, against real local sockets: a server that is down, one that
answers HTML, one that answers JSON of the wrong shape, and one that fails then recovers (retries)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import free_port
from warriorflow.errors import BackendError
from warriorflow.inference.base import Sampling
from warriorflow.inference.openai_http import OpenAIHTTPBackend


class _Scripted(BaseHTTPRequestHandler):
    """Answers each POST with the next scripted (status, content-type, body); records requests."""

    script: list = []
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, body, self.headers.get("Authorization")))
        status, ctype, payload = type(self).script.pop(0) if len(type(self).script) > 1 else type(self).script[0]
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    def start(script):
        handler = type("H", (_Scripted,), {"script": list(script), "seen": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", handler

    servers: list = []
    yield start
    for s in servers:
        s.shutdown()


OK_COMPLETION = {"choices": [{"text": "hi", "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": 1}}


def test_server_down_is_a_clear_error_after_retries():
    backend = OpenAIHTTPBackend("x", f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    t = time.monotonic()
    with pytest.raises(BackendError) as exc:
        backend.complete(["p"], Sampling())
    msg = str(exc.value)
    assert "expert 'x' at http://127.0.0.1:" in msg and "no answer after 3 attempts" in msg
    assert "is the server running" in msg and time.monotonic() - t < 10


def test_html_answer_is_named_as_non_json(scripted_server):
    url, _ = scripted_server([(200, "text/html", "<html>nginx welcome</html>")])
    with pytest.raises(BackendError) as exc:
        OpenAIHTTPBackend("x", url, retries=0).chat([[{"role": "user", "content": "q"}]], Sampling())
    assert "non-JSON (text/html)" in str(exc.value) and "nginx welcome" in str(exc.value)
    assert "/chat/completions" in str(exc.value)


def test_json_without_choices_is_an_error(scripted_server):
    url, _ = scripted_server([(200, "application/json", {"result": "??"})])
    with pytest.raises(BackendError, match="without 'choices'"):
        OpenAIHTTPBackend("x", url, retries=0).complete(["p"], Sampling())


def test_server_error_message_is_passed_on(scripted_server):
    url, _ = scripted_server([(400, "application/json", {"error": {"message": "model 'zz' not found"}})])
    with pytest.raises(BackendError, match="HTTP 400: model 'zz' not found"):
        OpenAIHTTPBackend("x", url, retries=0).complete(["p"], Sampling())


def test_transient_503_is_retried_then_succeeds(scripted_server):
    url, handler = scripted_server([(503, "text/plain", "busy"), (200, "application/json", OK_COMPLETION)])
    out = OpenAIHTTPBackend("x", url, retries=3, backoff_s=0.01).complete(["p"], Sampling())
    assert out[0].text == "hi" and len(handler.seen) == 2


def test_requests_carry_sampling_constraint_and_key_but_repr_hides_key(scripted_server, monkeypatch):
    url, handler = scripted_server([(200, "application/json", OK_COMPLETION)])
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    b = OpenAIHTTPBackend("x", url, model="served", api_key_env="MY_KEY", constraint_style="vllm")
    s = Sampling(max_tokens=5, temperature=0.5, seed=7, stop=("</s>",), choices=("[[A]]", "[[B]]"))
    b.complete(["p1", "p2", "p3"], [s, s.with_(seed=8), s.with_(seed=9)])
    bodies = sorted((body for _, body, _ in handler.seen), key=lambda b: b["seed"])
    assert [b["prompt"] for b in bodies] == ["p1", "p2", "p3"] and [b["seed"] for b in bodies] == [7, 8, 9]
    assert bodies[0]["structured_outputs"] == {"choice": ["[[A]]", "[[B]]"]} and bodies[0]["model"] == "served"
    assert all(auth == "Bearer sk-secret-123" for _, _, auth in handler.seen)
    assert "sk-secret" not in repr(b)
    b2 = OpenAIHTTPBackend("x", url, constraint_style="llamacpp")
    b2.complete(["p"], s)
    assert handler.seen[-1][1]["grammar"] == 'root ::= "[[A]]" | "[[B]]"\n'


def test_batch_must_be_a_list():
    b = OpenAIHTTPBackend("x", "http://127.0.0.1:9")
    with pytest.raises(TypeError, match="takes a list"):
        b.complete("just a string", Sampling())
    with pytest.raises(ValueError, match="one per item"):
        b.complete(["a", "b"], [Sampling()])
