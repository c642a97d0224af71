"""backend_for builds what the registry asks for, with the settings applied."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import write_yaml
from warriorflow.config import load_config
from warriorflow.errors import BackendError
from warriorflow.inference.factory import backend_for
from warriorflow.inference.openai_http import OpenAIHTTPBackend


def _config(tmp_path, experts: str):
    e = write_yaml(tmp_path / "experts.yaml", experts)
    s = write_yaml(tmp_path / "settings.yaml", f"experts_file: {e}\ninference:\n  http: {{concurrency: 3, retries: 1, "
                   "constraint_style: none}\n")
    return load_config(s)


def test_openai_expert_gets_the_http_backend_with_settings(tmp_path):
    cfg = _config(tmp_path, 'experts:\n  - {name: r, backend: openai, model: {endpoint: "http://h:8000", '
                            'served_name: org/model}}\n')
    b = backend_for(cfg.registry.get("r"), cfg)
    assert isinstance(b, OpenAIHTTPBackend)
    assert (b.base_url, b.model, b.concurrency, b.retries, b.constraint_style) == (
        "http://h:8000/v1", "org/model", 3, 1, "none")
    b.close()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="checks the message when vllm is absent")
def test_vllm_expert_without_vllm_says_how_to_install(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    cfg = _config(tmp_path, f"experts:\n  - {{name: v, backend: vllm, model: {{hf_dir: {tmp_path}/hf}}}}\n")
    with pytest.raises(BackendError, match=r"pip install '\.\[vllm\]'"):
        backend_for(cfg.registry.get("v"), cfg)
