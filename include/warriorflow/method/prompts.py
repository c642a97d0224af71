"""The one prompt renderer: every prompt file (mining, difficulty, tagging, judging) is filled here.

A template names its slots as ``{name}``. :func:`fill` fills the given names in a single pass, so
the texts put in are never re-scanned and every other brace (a code sample, a JSON example in a
user-edited prompt) stays verbatim; ``str.format`` would crash on those. :func:`check_template` says,
before any model is called, which required slot a prompt file lacks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from warriorflow.errors import ConfigError


def check_template(template: str, required: Sequence[str], what: str) -> None:
    """Raise ConfigError naming ``what`` unless the template has every ``{name}`` in ``required``."""
    missing = [p for p in required if "{" + p + "}" not in template]
    if missing:
        raise ConfigError(what, f"lacks the placeholder(s) {', '.join('{' + p + '}' for p in missing)}",
                          f"add {', '.join('{' + p + '}' for p in required)} to the prompt file")


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced by its text, in one pass."""
    if not values:
        return template
    pattern = re.compile(r"\{(" + "|".join(re.escape(k) for k in sorted(values, key=len, reverse=True)) + r")\}")
    return pattern.sub(lambda m: str(values[m.group(1)]), template)


@dataclass(frozen=True)
class PromptTemplate:
    """One kind of prompt file: what it is called and the slots it must have (``optional`` may appear)."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    def check(self, template: str, what: str | None = None) -> None:
        check_template(template, self.required, what or self.name)

    def text(self, template: str, **values: str) -> str:
        """The checked template, its slots filled in one pass."""
        unknown = sorted(set(values) - set(self.required) - set(self.optional))
        if unknown:
            raise ValueError(f"{self.name}: no slot(s) {unknown}")
        self.check(template)
        return fill(template, values)

    def conversation(self, template: str, **values: str) -> list[dict]:
        """The checked template as a user turn, its slots filled in one pass."""
        return [{"role": "user", "content": self.text(template, **values)}]
