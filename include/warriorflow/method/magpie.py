"""The Magpie instruction-mining prefix of a chat template, and the stop strings that end one mined
instruction (the end-of-turn token, EOS, the template's turn openers).

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

Pure: templates are rendered with :mod:`warriorflow.method.chat_template`; nothing is read from files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from warriorflow.errors import ConfigError
from warriorflow.method.chat_template import TemplateInfo, compile_template, render_raw, template_sha256

__all__ = [
    "SENTINEL",
    "MagpiePrefix",
    "magpie_prefix",
    "magpie_prefix_for",
    "end_of_turn_stops",
    "eot_from_template",
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
        return render_raw(template, source, msgs, bos, eos_token, False, extra)

    def messages(folded: bool) -> list[dict]:
        if system is None:
            return [{"role": "user", "content": SENTINEL}]
        if folded:
            return [{"role": "user", "content": system + "\n\n" + SENTINEL}]
        return [{"role": "system", "content": system}, {"role": "user", "content": SENTINEL}]

    compile_template(template, source)  # a template that does not compile fails here, whatever the messages
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


def eot_from_template(template: str | None, specials: Iterable[str], bos: str | None,
                      eos: str | None) -> str | None:
    """The end-of-turn token: the first special token the template writes after an assistant message.

    Used by the GGUF and Hugging Face readers when the model does not name its end-of-turn token."""
    specials = [s for s in specials if s and s not in (bos,)]
    if template:
        try:
            rendered = render_raw(
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
            r = render_raw(template, info.source, [
                {"role": "user", "content": "hi"}, {"role": "assistant", "content": _ASSISTANT_MARK},
                {"role": "user", "content": _USER2_MARK}], bos, eos, False, {})
            tail = _after(r, _ASSISTANT_MARK)
            openers.append(_opener(tail.split(_USER2_MARK, 1)[0] if tail and _USER2_MARK in tail else None,
                                   info.eot_token, info.eos_token))
        except Exception:  # noqa: BLE001 - best effort
            pass
        try:  # what follows a user message when the assistant is prompted
            r = render_raw(template, info.source, [{"role": "user", "content": _USER2_MARK}], bos, eos, True, {})
            openers.append(_opener(_after(r, _USER2_MARK), info.eot_token, info.eos_token))
        except Exception:  # noqa: BLE001
            pass
        for o in openers:
            if o and o not in stops and not re.fullmatch(r"\s*", o):
                stops.append(o)
    return stops
