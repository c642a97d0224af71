"""Bad input a user or an attacker can hand us: each gets the project's error (what, why, what to do; exit 2,
no traceback), never a crash or a silent wrong result. One test per class of the hardening issue."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import GEMMA, QWEN, SMOLLM2, write_yaml
from warriorflow.cli import main
from warriorflow.config import CONFIG_DIR
from warriorflow.errors import StoreError, excerpt, redact
from warriorflow.method.judging import parse_verdict
from warriorflow.store import snapshots
from warriorflow.store.objects import join_key, open_objects
from warriorflow.store.rating_store import RatingStore


def _cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def _clean_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "error:" in result.output.lower()
    for n in needles:
        assert n in result.output, (n, result.output)


# ------------------------------------------------------------------------------------------ verdicts


@pytest.mark.parametrize("text, verdict", [
    ("[[A]]", "A"), ("[[tie]]", "tie"),
    ("[[A]] and a stray [[tıe]]", "A"),       # dotless i is not an i
    ("[[B]] [[tİe]]", "B"),                   # nor is a dotted capital I
    ("[[ᴬ]]", "invalid"), ("[[Ａ]]", "invalid"),  # small-capital and full-width letters are not A
    ("[[\u212a]] [[B]]", "B"),                # the Kelvin sign is not a k (and not a verdict)
])
def test_the_verdict_pattern_is_ascii_only(text, verdict):
    assert parse_verdict(text) == verdict


# ------------------------------------------------------------------------------------------ CLI input


def _settings(tmp_path: Path, body: str) -> Path:
    return write_yaml(tmp_path / "s.yaml", f"experts_file: {CONFIG_DIR / 'experts.embedded.yaml'}\n{body}")


@pytest.mark.parametrize("args, needle", [
    (["rate", "--alpha", "2"], "--alpha"), (["rate", "--rounds", "-1"], "--rounds"),
    (["rate", "--init", "nan"], "--init"), (["rate", "--k", "-5"], "--k"), (["rate", "--k", "inf"], "--k"),
    (["rate", "--k", "30"], "only apply to --battles"),
])
def test_rate_options_are_validated_like_the_config(args, needle):
    _clean_error(_cli(*args), needle)


def test_a_recursive_yaml_alias_is_a_config_error(tmp_path):
    bad = write_yaml(tmp_path / "r.yaml", "a: &x [*x]\n")
    _clean_error(_cli("--config", str(bad), "experts"), "recursive YAML alias")


def test_home_pointing_at_a_file_is_a_config_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    s = _settings(tmp_path, f"paths: {{home: {tmp_path / 'afile'}}}\n")
    _clean_error(_cli("--config", str(s), "dedup"), "paths.home", "is a file")


def test_a_truncated_store_is_a_clear_error(tmp_path):
    path = tmp_path / "full.duckdb"
    RatingStore(path).close()
    data = path.read_bytes()
    (tmp_path / "half.duckdb").write_bytes(data[: len(data) // 2])
    s = _settings(tmp_path, f"paths: {{home: {tmp_path / 'home'}, duckdb: {tmp_path / 'half.duckdb'}}}\n")
    _clean_error(_cli("--config", str(s), "dedup"), "half.duckdb", "damaged")


def test_a_bad_battle_log_is_a_clear_error(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"battle_id": "b"}\n\xff\xfe\n')
    _clean_error(_cli("rate", "--battles", str(log)), "battle log")


# ------------------------------------------------------------------------------------------ secrets


def test_redaction_masks_headers_signed_urls_and_secret_values(monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEJrsessiontoken")
    monkeypatch.setenv("WARRIORFLOW_S3_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY")
    text = ("Authorization: Bearer sk-live-abcdef123456 x-amz-security-token: FQoGZXIvYXdzEJrsessiontoken "
            "https://s3/b/k?X-Amz-Credential=AKIAEXAMPLE%2F20261201&X-Amz-Signature=0123abcd "
            "{'authorization': 'AWS4-HMAC-SHA256 Credential=AKIA/2026, Signature=feed'} "
            "secret wJalrXUtnFEMI/K7MDENG/bPxRfiCY "
            'api_key="sk-proj-0123456789" max_tokens: 256')
    out = redact(text)
    for secret in ("sk-live-abcdef123456", "FQoGZXIvYXdzEJrsessiontoken", "AKIAEXAMPLE", "0123abcd", "feed",
                   "wJalrXUtnFEMI", "sk-proj-0123456789", "AKIA/2026"):
        assert secret not in out, (secret, out)
    assert "max_tokens: 256" in out  # not every word near 'token' is a secret
    assert len(excerpt("x" * 10_000)) < 300


def test_botocore_debug_output_is_redacted(monkeypatch, caplog, capsys):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEJrsessiontoken")
    from warriorflow.errors import install_redaction

    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_redaction()
        logging.getLogger("botocore.endpoint").warning("Sending http request: <AWSPreparedRequest headers={"
                                                        "'X-Amz-Security-Token': b'FQoGZXIvYXdzEJrsessiontoken'}>")
    finally:
        root.removeHandler(handler)
    assert "FQoGZXIvYXdzEJrsessiontoken" not in capsys.readouterr().err


class _Echo(BaseHTTPRequestHandler):
    """An endpoint (or a proxy) that echoes the request headers in its error body."""

    def do_GET(self):  # noqa: N802
        body = ("bad gateway; you sent:\n" + str(self.headers) * 20).encode()
        self.send_response(502)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_doctor_never_prints_an_api_key_an_endpoint_echoes(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        experts = write_yaml(tmp_path / "experts.yaml", f"""
experts:
  - name: served
    backend: openai
    model: {{endpoint: "http://127.0.0.1:{server.server_address[1]}/v1", served_name: m, api_key_env: ECHO_KEY}}
    roles: [answer, judge]
""")
        s = write_yaml(tmp_path / "s.yaml", f"experts_file: {experts}\npaths: {{home: {tmp_path / 'home'}}}\n")
        result = _cli("--config", str(s), "doctor", env={"ECHO_KEY": "sk-echo-0123456789abcdef"})
    finally:
        server.shutdown()
    assert "sk-echo-0123456789abcdef" not in result.output
    assert "expert served" in result.output and len(result.output) < 20_000


# ------------------------------------------------------------------------------------------ snapshots


def _forged_snapshot(objects, sid: str, files: dict, **manifest) -> None:
    """A manifest written by hand, as an attacker with write access to the bucket would."""
    entry = {"sha256": hashlib.sha256(b"x").hexdigest(), "size": 1}
    for name in files:
        if name and not name.startswith("/") and ".." not in name and "\\" not in name and "//" not in name:
            objects.put_bytes(join_key(snapshots.prefix(sid), name), b"x")
    doc = {"kind": snapshots.KIND, "snapshot_id": sid, "content_sha256": "0" * 64,
           "created_at": "2026-12-01T00:00:00", "counts": {"examples": 1, "battles": 1},
           "lineage": {"rating_version": "v"}, "files": dict.fromkeys(files, entry), **manifest}
    objects.put_bytes(join_key(snapshots.prefix(sid), "manifest.json"), json.dumps(doc).encode())


@pytest.mark.parametrize("name", ["../escape.txt", "data/../../escape.txt", "/abs/escape.txt", "a\\..\\b",
                                  "manifest.json", "", "data//x"])
def test_a_tampered_manifest_cannot_write_outside_the_destination(config, tmp_path, name):
    objects = open_objects(config)
    sid = "2026-12-01T00-00-00Z-aaaaaaaa"
    _forged_snapshot(objects, sid, {name: None})
    dest = tmp_path / "out" / "dl"
    with pytest.raises(StoreError, match="manifest is not valid"):
        snapshots.download_snapshot(objects, sid, dest)
    assert not (tmp_path / "out" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not dest.exists()  # nothing was created


def test_a_manifest_without_counts_is_a_clear_error(config):
    objects = open_objects(config)
    sid = "2026-12-01T00-00-00Z-bbbbbbbb"
    _forged_snapshot(objects, sid, {"data/train.jsonl": None}, counts=None)
    with pytest.raises(StoreError, match="counts"):
        snapshots.read_snapshot_manifest(objects, sid)
    result = _cli("snapshot", "list")
    _clean_error(result, "counts")


# ------------------------------------------------------------------------------------------ bookkeeping


def test_registry_timestamps_change_only_when_the_registry_does(config):
    from warriorflow.stages.plan import register_experts

    with RatingStore(config.duckdb_path) as store:
        register_experts(config, store)
        before = store.query("SELECT name, first_seen_at, updated_at FROM experts ORDER BY name")
        register_experts(config, store)
        assert store.query("SELECT name, first_seen_at, updated_at FROM experts ORDER BY name") == before
        assert {r["name"] for r in before} == {SMOLLM2, QWEN, GEMMA, "champion"}  # the default registry


# ------------------------------------------------------------------------------------------ every option


def _numeric_options():
    import click

    def walk(cmd, path=()):
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, (*path, name))
        else:
            yield path, cmd

    for path, cmd in walk(main):
        for p in cmd.params:
            if isinstance(p, click.Option) and isinstance(p.type, click.types._NumberParamTypeBase):  # noqa: SLF001
                yield path, p


NUMERIC = list(_numeric_options())


def test_every_numeric_option_declares_its_range():
    import click

    assert NUMERIC, "no numeric option found: the walk is broken"
    unranged = [(" ".join(path), p.opts[0]) for path, p in NUMERIC
                if not isinstance(p.type, click.IntRange | click.FloatRange)]
    assert unranged == []


def _required_args(path) -> list[str]:
    """Values for a command's required options and arguments, so that only the option under test is wrong."""
    import click

    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    out: list[str] = []
    for p in cmd.params:
        if isinstance(p, click.Option) and p.required:
            out += [p.opts[-1], "2026-11-20T00:00:00Z" if "date" in p.opts[-1] else "x"]
        elif isinstance(p, click.Argument):
            out.append("x")
    return out


@pytest.mark.parametrize("path, option", NUMERIC, ids=lambda x: str(getattr(x, "opts", x)))
def test_out_of_range_values_stop_every_command_before_it_runs(path, option):
    """For each numeric option of each command: below its minimum, above its maximum, NaN, infinity and a word
    are refused with exit 2 and a message naming the option, before the command does anything."""
    import click

    t = option.type
    bad = ["nan", "inf", "-inf", "twelve", "1e400"]
    if getattr(t, "min", None) is not None:
        bad.append(str(t.min - 1))
    if getattr(t, "max", None) is not None:
        bad.append(str(t.max + 1))
    for value in bad:
        result = _cli(*path, *_required_args(path), option.opts[-1], value)
        assert result.exit_code == 2, (path, option.opts, value, result.output)
        assert "Traceback" not in result.output and not isinstance(result.exception, click.ClickException)
        assert option.opts[-1] in result.output or option.opts[0] in result.output, (value, result.output)
