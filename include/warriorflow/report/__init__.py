"""The flywheel report: a self-contained HTML page and PNG figures from the rating store.

``write_report(config, out_dir)`` reads the store (read-only), collects every panel's data
(``report.data``), draws the figures (``report.figures``), renders ``index.html`` (``report.html``) and
writes ``report.json`` (the same numbers, for other tools). The default folder is
``<paths.home>/reports/latest``, which the Airflow plugin serves.

The report is built in a temporary folder next to ``out_dir`` and then swapped in: on Linux with one
atomic ``renameat2(RENAME_EXCHANGE)``, elsewhere (or where the filesystem refuses) with two renames, so
a reader never sees a half-written report.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from warriorflow.config import Config
from warriorflow.errors import StoreError

__all__ = ["default_report_dir", "write_report", "build_report"]

INDEX = "index.html"
DATA_FILE = "report.json"


def default_report_dir(config: Config) -> Path:
    return config.home / "reports" / "latest"


def build_report(config: Config, store, out_dir: Path) -> Path:
    """Write index.html, report.json and the PNGs into ``out_dir`` (an existing, empty folder)."""
    from warriorflow.report import data, figures, html

    collected = data.collect(store, config)
    figs = figures.draw_all(collected, out_dir)
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    page = html.render(collected, figs, generated_at=now, store_path=str(store.path),
                       settings_name=config.settings.name)
    (out_dir / DATA_FILE).write_text(json.dumps({"generated_at": now, "figures": figs, "data": collected},
                                                indent=1, sort_keys=True, default=str), encoding="utf-8")
    (out_dir / INDEX).write_text(page, encoding="utf-8")
    return out_dir / INDEX


def write_report(config: Config, out_dir: str | Path | None = None) -> Path:
    """Build the report from the rating store and swap it into ``out_dir`` (default
    ``<paths.home>/reports/latest``); return the path of its ``index.html``."""
    from warriorflow.store.rating_store import RatingStore

    out = Path(out_dir).expanduser().resolve() if out_dir is not None else default_report_dir(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        with RatingStore(config.duckdb_path, read_only=True) as store:
            build_report(config, store, tmp)
        tmp.chmod(0o755)
        _swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out / INDEX


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False when that is not available here."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _swap_in(new: Path, out: Path) -> None:
    """Make ``new`` the content of ``out``; the old ``out`` (if any) ends up at ``new`` and is removed."""
    if not out.exists() and not out.is_symlink():
        os.rename(new, out)
        return
    if out.is_symlink() or not out.is_dir():
        raise StoreError(str(out), "exists and is not a folder", "remove it, or choose another --out folder")
    if not _exchange(new, out):
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        os.rename(new, out)
        shutil.rmtree(old, ignore_errors=True)
