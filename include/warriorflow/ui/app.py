"""The status page as a FastAPI app: the Airflow plugin mounts it on the api-server (plugins/warriorflow_plugin.py).

Routes (relative to where it is mounted, ``/warriorflow`` in Airflow):

* ``/``: the HTML page;
* ``/api/status``: the same data as JSON (HTTP 503 while the store cannot be read);
* ``/report/...``: the latest ``warriorflow report`` (``<paths.home>/reports/latest/``), read-only.

The rating store is opened **read-only** for each request, read in one short pass and closed. DuckDB
takes a shared lock for a reader: while the writer (an ingest task) holds the file, a read-only open
fails; it is retried briefly, then the page says the store is busy instead of failing. Conversely a
writer that opens the file while a reader holds it fails at once, so a request holds the store only
for its SELECTs (milliseconds); rendering happens after the store is closed.

Only fastapi and the standard library are imported at module load (the api-server imports plugins at
startup); warriorflow's store, duckdb and jinja2 are imported inside the handlers.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

log = logging.getLogger(__name__)

BUSY_MESSAGE = "store busy (the writer task is running); refresh in a moment"
LOCK_PROBLEM = "is open for writing by another process"  # RatingStore's wording for DuckDB's lock conflict
NO_REPORT = "no report yet — run `warriorflow report`"


def report_dir(config) -> Path:
    """Where `warriorflow report` writes the latest report (index.html with its PNGs beside it)."""
    return config.home / "reports" / "latest"


def open_read_only(path: Path, attempts: int, delay_s: float):
    """Open the rating store read-only, retrying while a writer holds the lock; raise StoreError after that."""
    from warriorflow.errors import StoreError
    from warriorflow.store.rating_store import RatingStore

    for attempt in range(1, attempts + 1):
        try:
            return RatingStore(path, read_only=True)
        except StoreError as exc:
            if LOCK_PROBLEM not in exc.problem or attempt == attempts:
                raise
            time.sleep(delay_s)
    raise AssertionError("unreachable")


def status_data(config_loader: Callable[[], Any], attempts: int = 5, delay_s: float = 0.2) -> dict:
    """The page data, or the page data of an unavailable store (missing, busy, error) with its message."""
    from warriorflow.errors import StoreError, WarriorflowError
    from warriorflow.ui import page

    try:
        config = config_loader()
    except WarriorflowError as exc:
        return page.unavailable("error", f"cannot load the warriorflow config: {exc}", 1)
    need = config.settings.flywheel.min_new_gold
    path, reports = config.duckdb_path, report_dir(config)
    report = page.report_info(reports)
    if not path.exists():
        return page.unavailable("missing", f"no rating store yet at {path}: run the flywheel once "
                                "(`make run`, or trigger the mine DAG)", need, store_path=str(path), report=report)
    try:
        started = time.perf_counter()
        store = open_read_only(path, attempts, delay_s)
        try:
            rows = page.read_rows(store, reports)
        finally:
            store.close()
        log.debug("read the rating store in %.1f ms", 1000 * (time.perf_counter() - started))
    except StoreError as exc:
        if LOCK_PROBLEM in exc.problem:
            return page.unavailable("busy", BUSY_MESSAGE, need, store_path=str(path), report=report)
        return page.unavailable("error", str(exc), need, store_path=str(path), report=report)
    except Exception as exc:  # a page that explains beats a 500
        log.exception("reading the rating store %s failed", path)
        return page.unavailable("error", f"cannot read the rating store {path}: {exc}", need,
                                store_path=str(path), report=report)
    return page.assemble(rows, need, store_path=str(path))


def _default_config():
    from warriorflow.config import load_config

    return load_config()


def create_app(config_loader: Callable[[], Any] | None = None, *, attempts: int = 5, delay_s: float = 0.2,
               dependencies: Sequence[Any] = ()) -> FastAPI:
    """The status app.

    ``config_loader``: default ``load_config()`` per request, so the environment and files are current.
    ``dependencies``: FastAPI dependencies run before every route (the plugin passes Airflow's authentication).
    """
    loader = config_loader or _default_config
    app = FastAPI(title="warriorflow status", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=list(dependencies))
    no_store = {"Cache-Control": "no-store"}

    @app.get("/", response_class=HTMLResponse)
    def status_page() -> HTMLResponse:
        from warriorflow.ui import page

        data = status_data(loader, attempts, delay_s)
        return HTMLResponse(page.render(data), headers=no_store)

    @app.get("/api/status")
    def status_json() -> JSONResponse:
        data = status_data(loader, attempts, delay_s)
        return JSONResponse(data, status_code=200 if data["store"]["status"] == "ok" else 503, headers=no_store)

    @app.get("/report")
    def report_root() -> Response:
        return RedirectResponse("report/")  # relative: the report's PNG links resolve below it

    @app.get("/report/{name:path}")
    def report_file(name: str) -> Response:
        root = report_dir(loader()).resolve()
        target = (root / (name or "index.html")).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            message = NO_REPORT if not (root / "index.html").is_file() else f"no such report file: {name}"
            return HTMLResponse(f"<!doctype html><title>warriorflow report</title><p>{html.escape(message)}</p>",
                                status_code=404)
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, media_type=media, headers=no_store)

    return app
