"""sha256 of files, read in chunks (weights, result files, snapshot files)."""

from __future__ import annotations

import hashlib
import os

CHUNK = 8 << 20


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
