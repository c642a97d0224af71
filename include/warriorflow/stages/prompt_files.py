"""Reading a prompt file of ``include/prompts`` (or a configured folder), checked for its placeholders
before any job is planned with it."""

from __future__ import annotations

from collections.abc import Callable

from warriorflow.config import Config
from warriorflow.errors import ConfigError


def read_prompt(config: Config, name: str, check: Callable[[str, str], None], setting: str) -> str:
    """The text of prompt file ``name``; ConfigError naming ``setting`` when it cannot be read, and the
    template's own error (``check(text, where)``) when a placeholder is missing."""
    path = config.prompt_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"prompt cannot be read: {exc.strerror or exc}",
                          f"check {setting} (a file in include/prompts)") from None
    check(text, str(path))
    return text
