"""The one JSON Lines codec: every result file, checkpoint and export is written and read here.

Lines are ASCII JSON with sorted keys, so any text (even a lone surrogate from a cut-off multibyte
token) round-trips exactly and equal records give equal bytes. Reading is strict: every line must be a
JSON object, and an error names the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence


def encode_line(record: Mapping) -> bytes:
    return (json.dumps(record, sort_keys=True, default=str) + "\n").encode("ascii")


def encode_jsonl(records: Iterable[Mapping]) -> bytes:
    return b"".join(encode_line(r) for r in records)


def decode_jsonl(data: bytes | str, required: Sequence[str] = ()) -> list[dict]:
    """The records of a JSON Lines file; ValueError naming the line for anything malformed.

    Blank lines are skipped. Every other line must be a JSON object holding each ``required`` field
    (not null)."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    rows = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {n} is not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {n} is a JSON {type(row).__name__}, not an object")
        missing = [c for c in required if row.get(c) is None]
        if missing:
            raise ValueError(f"line {n} lacks required field(s) {missing}")
        rows.append(row)
    return rows
