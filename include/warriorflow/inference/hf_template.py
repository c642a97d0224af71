"""Read a model's chat template and special tokens out of a Hugging Face model folder
(``tokenizer_config.json``, ``chat_template.jinja``, ``chat_template.json``, ``config.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warriorflow.errors import ModelError
from warriorflow.method.chat_template import TemplateInfo
from warriorflow.method.magpie import eot_from_template

__all__ = ["read_hf_chat_template"]


def _token_str(value: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ModelError(str(path), f"cannot read {what}: {e}", "check the model folder") from None
    except json.JSONDecodeError as e:
        raise ModelError(str(path), f"{what} is not valid JSON: {e}", "re-download the model folder") from None


def read_hf_chat_template(model_dir: str | os.PathLike) -> TemplateInfo:
    """Chat template and special tokens from a Hugging Face model folder.

    The template comes from ``chat_template.jinja`` when present (newer transformers save it there),
    else from ``tokenizer_config.json``'s ``chat_template`` (a string, or a list of
    ``{"name", "template"}`` where ``default`` is the main one), else from ``chat_template.json``.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelError(str(d), "model folder not found", "check the model path (and that the download finished)")
    cfg_path = d / "tokenizer_config.json"
    jinja_path = d / "chat_template.jinja"
    if not cfg_path.is_file() and not jinja_path.is_file():
        raise ModelError(str(d), "no tokenizer_config.json or chat_template.jinja in the model folder",
                         "download the tokenizer files along with the weights")
    cfg: dict = {}
    if cfg_path.is_file():
        loaded = _read_json(cfg_path, "tokenizer_config.json")
        if not isinstance(loaded, dict):
            raise ModelError(str(cfg_path), "tokenizer_config.json is not a JSON object",
                             "re-download the model folder")
        cfg = loaded

    template: str | None = None
    named: dict[str, str] = {}
    raw = cfg.get("chat_template")
    if isinstance(raw, str):
        template = raw
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and isinstance(item.get("template"), str):
                named[str(item.get("name", "default"))] = item["template"]
        template = named.pop("default", None)
        if template is None and named:
            first = next(iter(named))
            template = named.pop(first)
    if jinja_path.is_file():
        try:
            template = jinja_path.read_text(encoding="utf-8")
        except OSError as e:
            raise ModelError(str(jinja_path), f"cannot read the chat template: {e}", "check the model folder") from None
    extra_dir = d / "additional_chat_templates"
    if extra_dir.is_dir():
        for f in sorted(extra_dir.glob("*.jinja")):
            named.setdefault(f.stem, f.read_text(encoding="utf-8"))
    if template is None and (d / "chat_template.json").is_file():
        ct = _read_json(d / "chat_template.json", "chat_template.json")
        if isinstance(ct, Mapping) and isinstance(ct.get("chat_template"), str):
            template = ct["chat_template"]

    bos = _token_str(cfg.get("bos_token"))
    eos = _token_str(cfg.get("eos_token"))
    specials = [
        _token_str(v) for v in (cfg.get("added_tokens_decoder") or {}).values()
        if isinstance(v, Mapping) and v.get("special")
    ]
    eot = eot_from_template(template, [s for s in specials if s], bos, eos)

    arch = name = None
    if (d / "config.json").is_file():
        mc = _read_json(d / "config.json", "config.json")
        if isinstance(mc, Mapping):
            archs = mc.get("architectures")
            arch = archs[0] if isinstance(archs, list) and archs else mc.get("model_type")
            name = mc.get("_name_or_path") or None
    add_bos = cfg.get("add_bos_token")
    return TemplateInfo(
        source=str(d),
        chat_template=template,
        bos_token=bos,
        eos_token=eos,
        eot_token=eot,
        architecture=arch,
        name=name or d.name,
        add_bos_token=bool(add_bos) if isinstance(add_bos, bool) else None,
        named_templates=named,
    )
