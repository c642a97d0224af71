"""The one JSON Lines codec: every result file, checkpoint and export is written and read here.

Lines are ASCII JSON with sorted keys, so any text (even a lone surrogate from a cut-off multibyte
token) round-trips exactly and equal records give equal bytes. Reading is strict: every line must be a
JSON object, and an error names the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence

# json.dumps(record, sort_keys=True, default=str, ensure_ascii=...) without building an encoder per line
_ENCODERS = {ascii_only: json.JSONEncoder(sort_keys=True, default=str, ensure_ascii=ascii_only, check_circular=False)
             for ascii_only in (True, False)}


def encode_line(record: Mapping, ascii_only: bool = True) -> bytes:
    """One record as a line. ``ascii_only=False`` writes UTF-8 text as is (dataset files people read); a
    line holding text UTF-8 cannot carry (a lone surrogate) is then written escaped, so it still round-trips."""
    line = _ENCODERS[ascii_only].encode(record) + "\n"
    try:
        return line.encode("utf-8")
    except UnicodeEncodeError:
        return (_ENCODERS[True].encode(record) + "\n").encode("ascii")


def encode_jsonl(records: Iterable[Mapping], ascii_only: bool = True) -> bytes:
    return b"".join(encode_line(r, ascii_only) for r in records)


class JSONLError(ValueError):
    """A line that is not a JSON object: ``line`` (1-based), ``kind`` ("json" | "type") and the detail."""

    def __init__(self, line: int, kind: str, detail: str, message: str):
        super().__init__(message)
        self.line, self.kind, self.detail = line, kind, detail


def _text(data: bytes | str) -> str:
    return data.decode("utf-8") if isinstance(data, bytes | bytearray) else data


def _parse_line(n: int, line: str) -> dict:
    """Line ``n`` as a JSON object; :class:`JSONLError` when it is not one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise JSONLError(n, "json", f"{exc.msg} at column {exc.colno}", f"line {n} is not JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise JSONLError(n, "type", type(row).__name__, f"line {n} is a JSON {type(row).__name__}, not an object")
    return row


def _require(n: int, row: dict, required: Sequence[str]) -> dict:
    missing = [c for c in required if row.get(c) is None]
    if missing:
        raise ValueError(f"line {n} lacks required field(s) {missing}")
    return row


def iter_jsonl(data: bytes | str | Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line of a JSON Lines text (bytes, str, or its lines);
    :class:`JSONLError` for a line that is not a JSON object."""
    lines = _text(data).splitlines() if isinstance(data, bytes | bytearray | str) else data
    for n, line in enumerate(lines, start=1):
        if line.strip():
            yield n, _parse_line(n, line)


def decode_jsonl(data: bytes | str, required: Sequence[str] = ()) -> list[dict]:
    """The records of a JSON Lines file; ValueError naming the line for anything malformed.

    Blank lines are skipped. Every other line must be a JSON object holding each ``required`` field
    (not null)."""
    return [_require(n, row, required) for n, row in iter_jsonl(data)]


def line_problems(data: bytes | str, required: Sequence[str] = ()) -> list[str]:
    """Every bad line of a JSON Lines text, one problem each (``decode_jsonl`` stops at the first)."""
    try:
        text = _text(data)
    except UnicodeDecodeError as exc:
        return [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]
    problems = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            _require(n, _parse_line(n, line), required)
        except ValueError as exc:
            problems.append(str(exc))
    return problems
