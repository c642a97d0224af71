"""The `warriorflow` CLI: --help everywhere, experts, doctor (green and red), clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tests.helpers import GEMMA, QWEN, SMOLLM2, write_yaml
from warriorflow.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_every_command_has_help():
    top = run("--help")
    assert top.exit_code == 0
    commands = list(main.commands)
    assert {"doctor", "experts", "mine", "serve-gguf"} <= set(commands)
    for name in commands:
        res = run(name, "--help")
        assert res.exit_code == 0 and "Usage: " in res.output and "--help" in res.output, name


def test_console_script_runs_in_a_subprocess():
    out = subprocess.run([sys.executable, "-m", "warriorflow.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("warriorflow, version ")


def test_experts_lists_the_registry():
    res = run("experts")
    assert res.exit_code == 0
    for name in (SMOLLM2, QWEN, GEMMA):
        assert name in res.output
    as_json = json.loads(run("experts", "--json").output)
    assert [e["name"] for e in as_json] == [SMOLLM2, QWEN, GEMMA, "champion"]
    assert as_json[2]["roles"] == ["mine", "judge"]
    assert as_json[3]["roles"] == ["answer"] and as_json[3]["model"]["published"] == "models/champion"


def test_doctor_all_green_on_the_embedded_default():
    res = run("doctor", "--init")
    assert res.exit_code == 0, res.output
    assert "all green" in res.output
    checks = json.loads(run("doctor", "--json").output)
    assert {c["name"] for c in checks} >= {"config", f"expert {SMOLLM2}", "rating store", "object store", "sandbox"}
    assert all(c["status"] == "ok" for c in checks)
    protections = {c["name"].removeprefix("sandbox: ") for c in checks if c["name"].startswith("sandbox: ")}
    assert protections >= {"network", "keyrings", "nested user namespaces", "mounts", "ptrace", "memfd",
                           "host files hidden", "environment cleared", "memory bound"}  # each one measured


def test_doctor_names_what_to_fix(tmp_path):
    experts = write_yaml(tmp_path / "experts.yaml", f"""
experts:
  - name: gone
    backend: llamacpp
    model: {{gguf: {tmp_path}/missing.gguf}}
  - name: corrupt
    backend: llamacpp
    model: {{gguf: {tmp_path}/corrupt.gguf, sha256: "{"0" * 64}"}}
  - name: remote
    backend: openai
    model: {{endpoint: "http://127.0.0.1:9/v1"}}
""")
    (tmp_path / "corrupt.gguf").write_bytes(b"GGUF" + b"\1" * 64)
    settings = write_yaml(tmp_path / "settings.yaml", f"experts_file: {experts}\npaths: {{home: {tmp_path}/home}}\n")
    res = run("--config", str(settings), "doctor")
    assert res.exit_code == 1
    out = res.output
    assert "✗ expert gone" in out and "missing.gguf not found" in out
    assert "✗ expert corrupt" in out and "sha256 mismatch" in out
    assert "✗ expert remote" in out and "cannot connect" in out
    assert "What to fix:" in out and "is the server running?" in out
    assert "! rating store" in out and "warriorflow doctor --init" in out


@pytest.mark.parametrize("body, words", [
    ("experts:\n  - {name: a, backend: tgi, model: {gguf: /a.gguf}}\n", "key experts[0](name=a).backend"),
    ("experts: [\n", "is not valid YAML at line"),
])
def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path, body, words):
    experts = write_yaml(tmp_path / "experts.yaml", body)
    settings = write_yaml(tmp_path / "settings.yaml", f"experts_file: {experts}\n")
    proc = subprocess.run([sys.executable, "-m", "warriorflow.cli", "--config", str(settings), "experts"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    assert str(experts) in proc.stderr and words in proc.stderr


@pytest.mark.slow
def test_mine_preview_prints_a_real_instruction_per_expert():
    res = run("mine", "--preview", "1", "--expert", SMOLLM2, "--expert", GEMMA, "--max-tokens", "40")
    assert res.exit_code == 0, res.output
    assert f"[{SMOLLM2} · chat_template" in res.output and f"[{GEMMA} · few_shot" in res.output
    blocks = [b for b in res.output.split("\n\n") if b.strip()]
    assert len(blocks) == 2 and all(len(b.splitlines()) >= 2 for b in blocks)
