"""The progress callback every long step takes: a function of one line of text (``click.echo``, a logger)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """A Progress that says nothing."""
