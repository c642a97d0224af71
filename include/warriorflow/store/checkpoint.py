"""The battle batch's checkpoint: an append-only JSON Lines file of finished response and vote records.

Each append is written, flushed and fsynced; an exclusive lock stops two processes sharing one file.
On open the file is loaded: records are deduplicated by id, and a torn last line (a kill mid-write)
is cut off. The file's name hashes the batch input and the judge prompt, so a checkpoint is never
applied to other work. It lives on the job's volume (``$WARRIORFLOW_HOME/checkpoints``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from warriorflow.errors import WarriorflowError
from warriorflow.store.jsonl import encode_jsonl

RESPONSE, VOTE = "response", "vote"
CHECKPOINT_PREFIX = "battle-batch-"


class CheckpointError(WarriorflowError):
    """A checkpoint file is damaged (other than a torn last line) or in use by another process."""


def checkpoint_key(batch: Any, template: str) -> str:
    """A hash of the batch input (a mapping, or an object with ``to_dict()``) and the judge prompt."""
    data = batch.to_dict() if hasattr(batch, "to_dict") else dict(batch)
    blob = json.dumps([data, template], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def checkpoint_path(checkpoint_dir: Path, batch: Any, template: str) -> Path:
    """The checkpoint file of a batch run with ``template``."""
    return Path(checkpoint_dir) / f"{CHECKPOINT_PREFIX}{checkpoint_key(batch, template)}.jsonl"


class Checkpoint:
    """Append-only JSONL of finished response and vote records, locked while open."""

    def __init__(self, path: Path):
        self.path = path
        self.responses: dict[str, dict] = {}
        self.votes: dict[str, dict] = {}
        self.cut_bytes = 0  # torn tail removed on load
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        self._fh = open(path, "ab+")  # noqa: SIM115 - held open (and locked) for the whole batch
        if new:  # make the new directory entry durable too
            with contextlib.suppress(OSError):
                dir_fd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise CheckpointError(str(path), "is locked by another battle-batch process",
                                  "wait for it to finish, or give this batch its own checkpoint dir") from None
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        self._fh.seek(0)
        data = self._fh.read()
        end = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
        lines = data[:end].split(b"\n")[:-1]
        good = end
        for i, raw in enumerate(lines):
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or record.get("type") not in (RESPONSE, VOTE):
                    raise ValueError("not a response or vote record")
                key = record["response_id"] if record["type"] == RESPONSE else record["vote_id"]
            except (ValueError, KeyError, UnicodeDecodeError) as exc:
                if i == len(lines) - 1:  # a damaged final line: drop it like a torn one
                    good = end - len(raw) - 1
                    break
                raise CheckpointError(f"{self.path} line {i + 1}", f"is not a checkpoint record ({exc})",
                                      "delete the checkpoint file to redo the batch from the start") from None
            (self.responses if record["type"] == RESPONSE else self.votes).setdefault(key, record)
        if good < len(data):
            self.cut_bytes = len(data) - good
            self._fh.truncate(good)
            self._sync()

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def append(self, records: Sequence[dict]) -> None:
        """Append records not yet present (by response_id / vote_id), then flush and fsync."""
        fresh = []
        for r in records:
            store, key = (self.responses, r["response_id"]) if r["type"] == RESPONSE else (self.votes, r["vote_id"])
            if key not in store:
                store[key] = r
                fresh.append(r)
        if fresh:
            self._fh.seek(0, os.SEEK_END)
            self._fh.write(encode_jsonl(fresh))
            self._sync()

    def close(self) -> None:
        if not self._fh.closed:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
