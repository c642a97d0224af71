"""Chat templates: read them from GGUF / Hugging Face model folders, render them like
``transformers``' ``apply_chat_template``, and derive the Magpie instruction-mining prefix.

Completion-based instruction mining (Magpie, used by WarriorCoder) gives a chat model only the
*prefix* of its chat template -- an optional system turn, then the opening of a user turn -- and
samples: the model writes a user instruction. The prefix is derived from the model's own template,
never hard-coded per family: :func:`magpie_prefix` renders ``[system?, user=SENTINEL]`` and cuts the
text at the sentinel.

System turns. Some templates have no system role:

* Gemma-3's template folds the system text into the first user turn itself
  (``<start_of_turn>user\\nSYS\\n\\n<user text>``); the sentinel lands after ``SYS\\n\\n`` and the cut
  is taken as is (``system_mode == "native"``).
* Gemma-2's template raises ``System role not supported``; some templates silently drop the system
  message. In both cases :func:`magpie_prefix` folds the system text into the user message the way
  Gemma-3 does -- ``SYS + "\\n\\n" + SENTINEL`` -- and cuts there (``system_mode == "folded"``). So the
  system text always comes before the cut, and the prefix always ends where the user's own words
  would start. For Gemma-2 and Gemma-3 this gives the same prefix.

BOS. Templates such as Llama-3's, Gemma's and DeepSeek-Coder's emit ``bos_token`` as text. A backend
that adds BOS itself when tokenizing a raw prompt (llama.cpp when the GGUF says
``tokenizer.ggml.add_bos_token``; HF tokenizers with a BOS post-processor) would then see two. Pass
``backend_adds_bos=True`` and the leading BOS is stripped from :attr:`MagpiePrefix.text`;
:attr:`MagpiePrefix.has_bos` / :attr:`MagpiePrefix.bos_stripped` tell the caller what happened. BOS is
detected by rendering with a marker in place of ``bos_token``, not by comparing strings, so a model
whose BOS string is also its turn opener (SmolLM2: ``bos_token == "<|im_start|>"``) is not damaged.

GGUF metadata is read by a small parser over a read-only memory map: the key/value section only,
never the tensors. (``gguf.GGUFReader`` parses the whole vocabulary into numpy views and takes 2 to
11 seconds on small models; this takes milliseconds. The value types and key names come from the
``gguf`` package.)
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from warriorflow.errors import ConfigError, ModelError

__all__ = [
    "SENTINEL",
    "TemplateInfo",
    "GGUFTemplateInfo",
    "MagpiePrefix",
    "read_gguf_chat_template",
    "read_hf_chat_template",
    "render_chat",
    "magpie_prefix",
    "magpie_prefix_for",
    "end_of_turn_stops",
    "template_sha256",
]

# Stands in for the user's words; a template is expected to copy it through unchanged (``trim`` is
# harmless: no whitespace at either end).
SENTINEL = "WFMAGPIE7c3e91a0d5SENTINEL"
_BOS_MARK = "WFBOS4b8f02e6c1MARK"
_ASSISTANT_MARK = "WFASSISTANT91d3a7c0MARK"
_USER2_MARK = "WFUSERTWO2e5b8d14MARK"

# Well-known end-of-turn tokens, used only when neither the GGUF (eot_token_id) nor the template
# (the control token right after an assistant message) tells us.
_KNOWN_EOT = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|EOT|>", "<|end|>", "<|end_of_turn|>")


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
# GGUF metadata


class _Truncated(Exception):
    pass


class _GGUFMeta:
    """Key/value metadata of a GGUF file, read from a memory map (tensors are never touched)."""

    def __init__(self, buf: Any, path: str):
        import gguf  # value types, magic and key names

        self._vt = gguf.GGUFValueType
        self.path = path
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.values: dict[str, Any] = {}
        self.tokens: list[str] | None = None
        self.token_types: list[int] | None = None

        magic = self._unpack("<I", 4)[0]
        if magic != gguf.GGUF_MAGIC:
            raise ModelError(path, f"not a GGUF file (starts with {bytes(buf[:4])!r}, expected b'GGUF')",
                             "point at a .gguf model file")
        version = self._unpack("<I", 4)[0]
        self.e = "<"
        if version & 0xFFFF == 0:  # written on a big-endian machine
            self.e = ">"
            version = struct.unpack(">I", struct.pack("<I", version))[0]
        if version < 2:
            raise ModelError(path, f"GGUF version {version} is not supported (need 2 or later)",
                             "re-convert the model with a current llama.cpp")
        self.version = version
        self.tensor_count, kv_count = self._unpack(self.e + "QQ", 16)
        for _ in range(kv_count):
            key = self._string()
            vtype = self._unpack(self.e + "I", 4)[0]
            if key == gguf.Keys.Tokenizer.LIST:
                self.tokens = self._array(keep=True)
            elif key == gguf.Keys.Tokenizer.TOKEN_TYPE:
                self.token_types = self._array(keep=True)
            elif vtype == self._vt.ARRAY:
                self._array(keep=False)  # vocab scores, merges, ...: skipped
            else:
                self.values[key] = self._scalar(vtype)

    # -- primitive readers
    def _unpack(self, fmt: str, size: int) -> tuple:
        if self.pos + size > self.end:
            raise _Truncated()
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def _string(self) -> str:
        (n,) = self._unpack(self.e + "Q", 8)
        if self.pos + n > self.end:
            raise _Truncated()
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    _FMT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def _scalar(self, vtype: int) -> Any:
        if vtype == self._vt.STRING:
            return self._string()
        fmt = self._FMT.get(int(vtype))
        if fmt is None:
            raise ModelError(self.path, f"unknown GGUF value type {vtype} in the metadata",
                             "the file is corrupt or newer than this reader")
        return self._unpack(self.e + fmt, struct.calcsize(fmt))[0]

    def _array(self, keep: bool) -> list | None:
        etype, count = self._unpack(self.e + "IQ", 12)
        if etype == self._vt.STRING:
            if not keep:
                for _ in range(count):
                    (n,) = self._unpack(self.e + "Q", 8)
                    self.pos += n
                if self.pos > self.end:
                    raise _Truncated()
                return None
            out = []
            buf, pos, e = self.buf, self.pos, self.e + "Q"
            for _ in range(count):
                (n,) = struct.unpack_from(e, buf, pos)
                pos += 8
                out.append(buf[pos:pos + n].decode("utf-8", errors="replace"))
                pos += n
            if pos > self.end:
                raise _Truncated()
            self.pos = pos
            return out
        if etype == self._vt.ARRAY:  # nested arrays: walk them
            items = [self._array(keep) for _ in range(count)]
            return items if keep else None
        fmt = self._FMT.get(int(etype))
        if fmt is None:
            raise ModelError(self.path, f"unknown GGUF array element type {etype}",
                             "the file is corrupt or newer than this reader")
        size = struct.calcsize(fmt) * count
        if self.pos + size > self.end:
            raise _Truncated()
        out = list(struct.unpack_from(f"{self.e}{count}{fmt}", self.buf, self.pos)) if keep else None
        self.pos += size
        return out

    # -- lookups
    def token(self, key: str) -> str | None:
        tid = self.values.get(key)
        if tid is None or self.tokens is None or not 0 <= int(tid) < len(self.tokens):
            return None
        return self.tokens[int(tid)]

    def control_tokens(self) -> list[str]:
        if self.tokens is None:
            return []
        if self.token_types is None or len(self.token_types) != len(self.tokens):
            return []
        return [t for t, ty in zip(self.tokens, self.token_types) if ty == 3]  # gguf.TokenType.CONTROL


def read_gguf_chat_template(path: str | os.PathLike) -> TemplateInfo:
    """Chat template, BOS/EOS/end-of-turn tokens, architecture and name from a GGUF file's metadata.

    Only the metadata section is read (through a read-only memory map); tensors are never loaded.
    A missing file, a non-GGUF file or truncated metadata raises :class:`ModelError` naming the path.
    """
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ConfigError("gguf", "the gguf package is not installed", "pip install gguf") from None
    p = Path(path)
    shown = str(p)
    if not p.is_file():
        raise ModelError(shown, "file not found" if not p.exists() else "not a regular file",
                         "check the model path (and that the download finished)")
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise ModelError(shown, f"not a GGUF file (only {size} bytes)", "point at a .gguf model file")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                try:
                    meta = _GGUFMeta(mm, shown)
                except _Truncated:
                    raise ModelError(shown, "GGUF metadata is truncated or corrupt",
                                     "re-download the model file") from None
                except (struct.error, OverflowError, MemoryError) as e:
                    raise ModelError(shown, f"GGUF metadata could not be parsed: {e}",
                                     "re-download the model file") from None
    except OSError as e:
        raise ModelError(shown, f"cannot read the file: {e}", "check permissions and the path") from None

    from gguf import Keys

    template = meta.values.get(Keys.Tokenizer.CHAT_TEMPLATE)
    named: dict[str, str] = {}
    prefix = Keys.Tokenizer.CHAT_TEMPLATE + "."
    for k, v in meta.values.items():
        if k.startswith(prefix) and isinstance(v, str):
            named[k[len(prefix):]] = v
    bos = meta.token(Keys.Tokenizer.BOS_ID)
    eos = meta.token(Keys.Tokenizer.EOS_ID)
    eot = meta.token(Keys.Tokenizer.EOT_ID)
    if eot is None:
        eot = _eot_from_template(template, meta.control_tokens(), bos, eos)
    add_bos = meta.values.get(Keys.Tokenizer.ADD_BOS)
    return TemplateInfo(
        source=shown,
        chat_template=template if isinstance(template, str) else None,
        bos_token=bos,
        eos_token=eos,
        eot_token=eot,
        architecture=meta.values.get(Keys.General.ARCHITECTURE),
        name=meta.values.get(Keys.General.NAME),
        add_bos_token=bool(add_bos) if add_bos is not None else None,
        named_templates=named,
    )


# --------------------------------------------------------------------------------------------------
# Hugging Face model folders


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
    eot = _eot_from_template(template, [s for s in specials if s], bos, eos)

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


def _compiled(template: str, source: str):
    import jinja2

    if not isinstance(template, str):
        raise ConfigError(source, f"chat template is {type(template).__name__}, not a string",
                          "pass the template text")
    try:
        return _compile(template)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(source, f"chat template does not compile: {e.message} (line {e.lineno})",
                          "fix the template or use the model's own tokenizer template") from None


def _render_raw(template: str, source: str, messages: Sequence[Mapping[str, Any]], bos_token: str,
                eos_token: str, add_generation_prompt: bool, extra: Mapping[str, Any]) -> str:
    """Render; jinja2 runtime errors (including raise_exception) propagate as jinja2 exceptions."""
    compiled = _compiled(template, source)
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
        return _render_raw(template, source, messages, bos_token, eos_token, add_generation_prompt, extra)
    except ConfigError:
        raise
    except jinja2.TemplateError as e:
        raise ConfigError(source, f"chat template failed to render: {e}",
                          "check the messages (roles, order) against what the template accepts") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
        raise ConfigError(source, f"chat template failed to render: {type(e).__name__}: {e}",
                          "check the messages (roles, order) against what the template accepts") from None


# --------------------------------------------------------------------------------------------------
# Magpie prefix


@dataclass(frozen=True)
class MagpiePrefix:
    """The text to send as a raw completion prompt to mine one user instruction.

    ``text``: the prefix, ending where the user's words start (leading BOS removed when
    ``bos_stripped``). ``full_text``: the prefix exactly as the template renders it.
    ``has_bos``: the template emits ``bos_token`` at the start. ``system_mode``: ``"native"`` (the
    template took the system message; Gemma-3 folds it into the user turn itself), ``"folded"`` (the
    template refused or dropped it, so the system text was put at the head of the user message,
    followed by a blank line), or ``None`` (no system text given).
    """

    text: str
    full_text: str
    template_sha256: str
    has_bos: bool
    bos_stripped: bool
    bos_token: str
    system_mode: str | None


def _cut(rendered: str, source: str) -> str:
    i = rendered.find(SENTINEL)
    if i < 0:
        raise ConfigError(
            source,
            "the chat template ignores the user message: a user turn rendered without its content, "
            "so no instruction-mining prefix can be cut from it",
            "use a chat template that renders message content (the model's own tokenizer template)",
        )
    return rendered[:i]


def magpie_prefix(template: str, *, system: str | None, bos_token: str = "", eos_token: str = "",
                  backend_adds_bos: bool = False, source: str = "<chat template>",
                  **extra: Any) -> MagpiePrefix:
    """The Magpie instruction-mining prefix of ``template``: a system turn (if ``system`` is given)
    and the opening of a user turn, nothing after.

    Derived by rendering ``[system?, user=SENTINEL]`` and cutting at the sentinel. Templates that
    reject or drop the system role get the system text folded into the user message
    (``system + "\\n\\n"`` before the sentinel, as Gemma-3's own template does). With
    ``backend_adds_bos`` a leading BOS emitted by the template is stripped from ``text``.
    Raises :class:`ConfigError` when the template does not compile, fails for both forms, or does not
    render the user content.
    """
    import jinja2

    _RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, LookupError, AttributeError)
    if not isinstance(template, str):
        raise ConfigError(source, f"chat template is {type(template).__name__}, not a string", "pass the template text")
    if SENTINEL in template:
        raise ConfigError(source, "the chat template contains the mining sentinel string", "rename the sentinel")

    def render(msgs: list[dict], bos: str) -> str:
        return _render_raw(template, source, msgs, bos, eos_token, False, extra)

    def messages(folded: bool) -> list[dict]:
        if system is None:
            return [{"role": "user", "content": SENTINEL}]
        if folded:
            return [{"role": "user", "content": system + "\n\n" + SENTINEL}]
        return [{"role": "system", "content": system}, {"role": "user", "content": SENTINEL}]

    _compiled(template, source)  # a template that does not compile fails here, whatever the messages
    errors: list[str] = []
    mode: str | None = None
    full: str | None = None
    chosen: list[dict] | None = None
    for folded in ((False,) if system is None else (False, True)):
        try:
            candidate = _cut(render(messages(folded), bos_token), source)
        except _RENDER_ERRORS as e:
            errors.append(f"{type(e).__name__}: {e}" if not isinstance(e, jinja2.TemplateError) else str(e))
            continue
        except ConfigError:
            if folded or system is None:
                raise
            continue  # the system message swallowed the user turn: try folding
        if system is not None and not folded and system.strip() not in candidate:
            continue  # the template dropped the system text: fold it in
        full, chosen = candidate, messages(folded)
        mode = None if system is None else ("folded" if folded else "native")
        break
    if full is None or chosen is None:
        if errors:
            raise ConfigError(source, "the chat template failed to render a user turn: " + " / ".join(errors),
                              "check the template (it must accept a single user message)")
        raise ConfigError(source, "the chat template renders neither a system turn nor the system text",
                          "use a chat template that renders message content")

    # Did the template emit bos_token at the start? Render again with a marker in its place.
    has_bos = bool(bos_token) and _cut(render(chosen, _BOS_MARK), source).startswith(_BOS_MARK)
    text = full
    stripped = False
    if has_bos and backend_adds_bos and full.startswith(bos_token):
        text = full[len(bos_token):]
        stripped = True
    return MagpiePrefix(text=text, full_text=full, template_sha256=template_sha256(template), has_bos=has_bos,
                        bos_stripped=stripped, bos_token=bos_token, system_mode=mode)


def magpie_prefix_for(info: TemplateInfo, *, system: str | None, backend_adds_bos: bool | None = None,
                      **extra: Any) -> MagpiePrefix:
    """:func:`magpie_prefix` with a model's template and tokens; ``backend_adds_bos`` defaults to the
    tokenizer's own ``add_bos_token`` flag (what llama.cpp does with a raw prompt)."""
    if backend_adds_bos is None:
        backend_adds_bos = bool(info.add_bos_token)
    return magpie_prefix(info.require_template(), system=system, bos_token=info.bos_token or "",
                         eos_token=info.eos_token or "", backend_adds_bos=backend_adds_bos, source=info.source,
                         **extra)


# --------------------------------------------------------------------------------------------------
# End-of-turn detection and stop strings


def _after(rendered: str, mark: str) -> str | None:
    i = rendered.find(mark)
    return None if i < 0 else rendered[i + len(mark):]


def _eot_from_template(template: str | None, specials: Iterable[str], bos: str | None,
                       eos: str | None) -> str | None:
    """The end-of-turn token: the first special token the template writes after an assistant message."""
    specials = [s for s in specials if s and s not in (bos,)]
    if template:
        try:
            rendered = _render_raw(
                template, "<chat template>",
                [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _ASSISTANT_MARK}],
                bos or "", eos or "", False, {})
        except Exception:  # noqa: BLE001 - detection is best effort
            rendered = ""
        tail = _after(rendered, _ASSISTANT_MARK)
        if tail:
            found = [(tail.find(s), -len(s), s) for s in (*specials, *_KNOWN_EOT) if s and s in tail]
            if found:
                return min(found)[2]
            if eos and eos in tail:
                return eos
        for s in _KNOWN_EOT:  # template text mentions a well-known one
            if s in template:
                return s
    return None


def _opener(between: str | None, eot: str | None, eos: str | None) -> str | None:
    if between is None:
        return None
    for end in (eot, eos):
        if end and end in between:
            between = between.rsplit(end, 1)[1]
    between = between.strip()
    return between or None


def end_of_turn_stops(info: TemplateInfo) -> list[str]:
    """Stop strings that end one mined instruction: the end-of-turn token, EOS, and the template's
    user and assistant turn openers where they can be derived by rendering (ChatML:
    ``["<|im_end|>", "<|im_start|>user", "<|im_start|>assistant"]``)."""
    stops: list[str] = []
    for s in (info.eot_token, info.eos_token):
        if s and s not in stops:
            stops.append(s)
    template = info.chat_template
    if template:
        bos, eos = info.bos_token or "", info.eos_token or ""
        openers: list[str | None] = []
        try:  # what stands between an assistant message and the next user message
            r = _render_raw(template, info.source, [
                {"role": "user", "content": "hi"}, {"role": "assistant", "content": _ASSISTANT_MARK},
                {"role": "user", "content": _USER2_MARK}], bos, eos, False, {})
            tail = _after(r, _ASSISTANT_MARK)
            openers.append(_opener(tail.split(_USER2_MARK, 1)[0] if tail and _USER2_MARK in tail else None,
                                   info.eot_token, info.eos_token))
        except Exception:  # noqa: BLE001 - best effort
            pass
        try:  # what follows a user message when the assistant is prompted
            r = _render_raw(template, info.source, [{"role": "user", "content": _USER2_MARK}], bos, eos, True, {})
            openers.append(_opener(_after(r, _USER2_MARK), info.eot_token, info.eos_token))
        except Exception:  # noqa: BLE001
            pass
        for o in openers:
            if o and o not in stops and not re.fullmatch(r"\s*", o):
                stops.append(o)
    return stops
