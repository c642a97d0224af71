"""The one prompt renderer: every prompt file (mining, difficulty, tagging, judging) is filled here.

A template names its slots as ``{name}``. :func:`render` fills the given names in a single pass, so
the texts put in are never re-scanned and every other brace (a code sample, a JSON example in a
user-edited prompt) stays verbatim; ``str.format`` would crash on those. :func:`check_template` says,
before any model is called, which required slot a prompt file lacks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from warriorflow.errors import ConfigError


def check_template(template: str, required: Sequence[str], what: str) -> None:
    """Raise ConfigError naming ``what`` unless the template has every ``{name}`` in ``required``."""
    missing = [p for p in required if "{" + p + "}" not in template]
    if missing:
        raise ConfigError(what, f"lacks the placeholder(s) {', '.join('{' + p + '}' for p in missing)}",
                          f"add {', '.join('{' + p + '}' for p in required)} to the prompt file")


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced by its text, in one pass."""
    if not values:
        return template
    pattern = re.compile(r"\{(" + "|".join(re.escape(k) for k in sorted(values, key=len, reverse=True)) + r")\}")
    return pattern.sub(lambda m: str(values[m.group(1)]), template)


def user_turn(template: str, values: Mapping[str, str]) -> list[dict]:
    """A one-message conversation: the rendered template as the user's turn."""
    return [{"role": "user", "content": render(template, values)}]
