"""Content-addressed ids. The same content always gets the same id, so writes are upserts and
re-running any step leaves the store unchanged (DESIGN.md section 5)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC, lower case, whitespace collapsed, trimmed: the text exact-dedup and ids compare."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def _digest(kind: str, *parts: Any) -> str:
    payload = json.dumps([kind, *parts], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def instruction_id(text: str) -> str:
    return _digest("instruction", normalize_text(text))


def response_id(instruction: str, expert: str, sampling: dict, seed: int | None) -> str:
    return _digest("response", instruction, expert, sampling, seed)


def battle_id(instruction: str, attacker: str, defender: str) -> str:
    return _digest("battle", instruction, attacker, defender)


def vote_id(battle: str, judge: str, shown_order: str) -> str:
    return _digest("vote", battle, judge, shown_order)


def record_id(*parts: Any) -> str:
    """An id for anything else (dropped records, runs): a hash of its defining parts."""
    return _digest("record", *parts)
