"""The local-directory object store (the embedded default): atomic writes, nothing half-written is listed."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from warriorflow.errors import StoreError
from warriorflow.store.objects.base import (
    TMP_MARK,
    ObjectNotFoundError,
    normalize_key,
    normalize_prefix,
)


def atomic_write(dest: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temp file beside ``dest``, then os.replace it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_MARK}{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- local directory


class LocalObjectStore:
    """Objects as files under ``root``. Writes are atomic (temp file + os.replace)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    def _join(self, key: str) -> Path:
        return self.root.joinpath(*normalize_key(key).split("/"))

    def _path(self, key: str) -> Path:
        path = self._join(key)
        if not path.resolve().is_relative_to(self.root):  # a symlink pointing out of the root
            raise StoreError(self.uri(key), "resolves outside the store root", "remove the symlink or use another key")
        return path

    def _os_error(self, key: str, action: str, exc: OSError) -> StoreError:
        return StoreError(
            self.uri(key),
            f"cannot {action}: {exc.strerror or exc}",
            f"check that {self.root} is a writable directory with free space",
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            atomic_write(self._path(key), lambda tmp: _write_synced(tmp, data))
        except OSError as exc:
            raise self._os_error(key, "write", exc) from exc

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        src = Path(path)
        if not src.is_file():
            raise StoreError(str(src), "local file to upload does not exist", "check the path")
        try:
            atomic_write(self._path(key), lambda tmp: shutil.copyfile(src, tmp))
        except OSError as exc:
            raise self._os_error(key, "write", exc) from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(
                self.uri(key), "no such object", "check the key, or list the prefix to see what exists"
            ) from exc
        except OSError as exc:
            raise self._os_error(key, "read", exc) from exc

    def get_file(self, key: str, path: str | os.PathLike[str]) -> None:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFoundError(
                self.uri(key), "no such object", "check the key, or list the prefix to see what exists"
            )
        try:
            atomic_write(Path(path), lambda tmp: shutil.copyfile(src, tmp))
        except OSError as exc:
            raise StoreError(
                str(path), f"cannot write download target: {exc.strerror or exc}", "check the destination directory"
            ) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "", page_size: int | None = None) -> Iterator[str]:
        """Keys under ``prefix`` (a plain string prefix, as in S3), sorted. ``page_size`` is ignored."""
        prefix = normalize_prefix(prefix)
        start = self.root.joinpath(*prefix.split("/")[:-1])  # deepest directory the prefix names
        keys = []
        for dirpath, _dirs, files in os.walk(start):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                key = name if rel == "." else f"{rel}/{name}"
                if not name.startswith(TMP_MARK) and key.startswith(prefix):
                    keys.append(key)
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise self._os_error(key, "delete", exc) from exc
        for parent in path.parents:  # prune now-empty directories, never the root
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def uri(self, key: str = "") -> str:
        return (self._join(key) if key else self.root).as_uri()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=TMP_MARK, dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(
                self.root.as_uri(),
                f"object store directory is not writable: {exc.strerror or exc}",
                "create the directory and make it writable, or set another store URI",
            ) from exc


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
