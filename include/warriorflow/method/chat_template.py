"""Chat templates as data and text: :class:`TemplateInfo` (a model's template and special tokens) and
:func:`render_chat`, which renders a template as ``transformers``' ``apply_chat_template(...,
tokenize=False)`` does (sandboxed jinja2 with transformers' globals, filter and extensions).

Pure: no file I/O. Reading a template out of a model lives in :mod:`warriorflow.inference.gguf` and
:mod:`warriorflow.inference.hf_template`; the Magpie prefix and stop strings in
:mod:`warriorflow.method.magpie`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from warriorflow.errors import ConfigError

__all__ = [
    "TemplateInfo",
    "GGUFTemplateInfo",
    "compile_template",
    "render_raw",
    "render_chat",
    "template_sha256",
]


def template_sha256(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------
# Template info


@dataclass(frozen=True)
class TemplateInfo:
    """The chat template of one model and the special tokens it is rendered with.

    ``eot_token`` is the end-of-turn marker (``<|im_end|>``, ``<end_of_turn>``, ``<|eot_id|>``,
    ``<|EOT|>``); ``add_bos_token`` whether the tokenizer adds BOS itself (None: not recorded).
    ``named_templates`` holds extra templates (GGUF ``tokenizer.chat_template.<name>``, HF list form).
    """

    source: str
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    eot_token: str | None
    architecture: str | None
    name: str | None
    add_bos_token: bool | None = None
    named_templates: Mapping[str, str] = field(default_factory=dict)

    @property
    def template_sha256(self) -> str | None:
        return template_sha256(self.chat_template) if self.chat_template is not None else None

    def require_template(self) -> str:
        if self.chat_template is None:
            raise ConfigError(
                self.source,
                "the model carries no chat template (a base model?)",
                "use an instruct/chat model, or pass a chat template explicitly",
            )
        return self.chat_template


# The name the GGUF reader is documented under; both readers return the same type.
GGUFTemplateInfo = TemplateInfo


# --------------------------------------------------------------------------------------------------
# Rendering (as transformers' apply_chat_template)


def _raise_exception(message: str) -> None:
    import jinja2

    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    # transformers overrides jinja's tojson: no HTML escaping, and indent/separators/sort_keys options.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=1)
def _environment():
    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _GenerationTag(Extension):
        """``{% generation %}...{% endgeneration %}`` (transformers' assistant-mask marker): renders its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body, lineno=lineno)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_GenerationTag, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


@lru_cache(maxsize=64)
def _compile(template: str):
    return _environment().from_string(template)


def compile_template(template: str, source: str):
    """The compiled template (cached); :class:`ConfigError` naming ``source`` when it is not a string or
    does not compile."""
    import jinja2

    if not isinstance(template, str):
        raise ConfigError(source, f"chat template is {type(template).__name__}, not a string",
                          "pass the template text")
    try:
        return _compile(template)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(source, f"chat template does not compile: {e.message} (line {e.lineno})",
                          "fix the template or use the model's own tokenizer template") from None


def render_raw(template: str, source: str, messages: Sequence[Mapping[str, Any]], bos_token: str,
               eos_token: str, add_generation_prompt: bool, extra: Mapping[str, Any]) -> str:
    """Render; jinja2 runtime errors (including raise_exception) propagate as jinja2 exceptions.

    A template that is not a string or does not compile raises :class:`ConfigError`. :func:`render_chat`
    is the checked form; this one is for callers that handle (or deliberately ignore) render errors."""
    compiled = compile_template(template, source)
    ctx = {"tools": None, "documents": None}
    ctx.update(extra)
    return compiled.render(messages=[dict(m) for m in messages], bos_token=bos_token, eos_token=eos_token,
                           add_generation_prompt=add_generation_prompt, **ctx)


def render_chat(template: str, messages: Sequence[Mapping[str, Any]], *, bos_token: str = "",
                eos_token: str = "", add_generation_prompt: bool = False, source: str = "<chat template>",
                **extra: Any) -> str:
    """Render ``messages`` with ``template`` as ``tokenizer.apply_chat_template(..., tokenize=False)`` does.

    Sandboxed jinja2 (``trim_blocks``/``lstrip_blocks``), with transformers' ``raise_exception`` and
    ``strftime_now`` globals, its ``tojson`` filter and the ``loopcontrols`` extension; ``tools`` and
    ``documents`` default to None. ``extra`` becomes further template variables. ``source`` names the
    template in errors. A template that does not compile, or fails or raises while rendering, raises
    :class:`ConfigError`.
    """
    import jinja2

    try:
        return render_raw(template, source, messages, bos_token, eos_token, add_generation_prompt, extra)
    except ConfigError:
        raise
    except jinja2.TemplateError as e:
        raise ConfigError(source, f"chat template failed to render: {e}",
                          "check the messages (roles, order) against what the template accepts") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise ConfigError(source, f"chat template failed to render: {type(e).__name__}: {e}",
                          "check the messages (roles, order) against what the template accepts") from None
