"""The Airflow plugin: discovered from plugins/ by Airflow's plugins manager, mounted by the real
`airflow api-server`, and its page checked in headless Chromium (Debian `chromium`).

Screenshots are kept as test artifacts under $WARRIORFLOW_TEST_ARTIFACTS (default var/test-artifacts/).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests import ui_store
from tests.helpers import free_port
from warriorflow.store.rating_store import RatingStore

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("WARRIORFLOW_TEST_ARTIFACTS") or REPO / "var" / "test-artifacts")
PNG = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ helpers


def chromium(*args: str, user_dir: Path, timeout: float = 90) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: the UI test needs the Debian package `chromium` "
                    "(run scripts/install-system-deps.sh, or apt-get install chromium)")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={user_dir}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG, f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


class Dom(HTMLParser):
    """Table rows as lists of cell texts, and the text of every element with an id."""

    def __init__(self, text: str):
        super().__init__()
        self.rows: list[list[str]] = []
        self.by_id: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self._cell: list[str] | None = None
        self._texts: dict[str, list[str]] = {}
        self.feed(text)
        self.by_id = {k: " ".join("".join(v).split()) for k, v in self._texts.items()}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []
        if a.get("id"):
            self._texts[a["id"]] = []
        if tag not in ("br", "img", "meta", "link", "input"):
            self._open.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, ident in self._open:
            if ident:
                self._texts[ident].append(data)

    def row(self, first: str, col: int = 1) -> list[str]:
        return next(r for r in self.rows if len(r) > col and r[col] == first)


@contextmanager
def api_server(env: dict, log_path: Path):
    """The real `airflow api-server` (core API + UI + plugins) on a free port; stopped afterwards."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port",
                                 str(port), "--apps", "core", "--workers", "1"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"airflow api-server did not come up in 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def airflow_env(airflow_home: Path, warriorflow_home: Path, *, all_admins: bool) -> dict:
    dags = airflow_home / "dags"
    dags.mkdir(exist_ok=True)
    return dict(os.environ, AIRFLOW_HOME=str(airflow_home), AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
                AIRFLOW__CORE__DAGS_FOLDER=str(dags), AIRFLOW__CORE__LOAD_EXAMPLES="False",
                AIRFLOW__CORE__UNIT_TEST_MODE="False",
                AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home}/airflow.db",
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
                AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=str(all_admins),
                WARRIORFLOW_HOME=str(warriorflow_home))


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def flywheel(tmp_path_factory):
    """A fixture rating store and a report, in a WARRIORFLOW_HOME of their own (the api-server reads it)."""
    from warriorflow.config import load_config

    home = tmp_path_factory.mktemp("ui-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WARRIORFLOW_HOME", str(home))
        config = load_config()
        built = ui_store.build(config)
    report = home / "reports" / "latest"
    report.mkdir(parents=True)
    (report / "index.html").write_text("<!doctype html><title>warriorflow report</title><h1>report</h1>"
                                       "<img src='leaderboard.png'>")
    (report / "leaderboard.png").write_bytes(PNG + b"\0" * 32)
    with RatingStore(config.duckdb_path, read_only=True) as store:
        elo = {r["expert"]: r["rating"] for r in store.query(
            "SELECT expert, rating FROM rating_history WHERE method = 'elo' AND rating_version = "
            "(SELECT rating_version FROM rating_history ORDER BY computed_at DESC LIMIT 1)")}
    return {"home": home, "config": config, "elo": elo, **built}


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    env = airflow_env(home, home, all_admins=True)
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return home


@pytest.fixture(scope="module")
def open_server(airflow_home, flywheel, tmp_path_factory):
    """The api-server with every request treated as an admin (what `airflow standalone` users get)."""
    env = airflow_env(airflow_home, flywheel["home"], all_admins=True)
    with api_server(env, tmp_path_factory.mktemp("logs") / "api-server.log") as url:
        yield url


# ------------------------------------------------------------------------------------------ tests


def test_plugins_manager_discovers_the_plugin_and_loads_it_light(tmp_path):
    env = airflow_env(tmp_path, tmp_path, all_admins=False)
    code = textwrap.dedent("""
        import json, sys
        from airflow import plugins_manager
        plugins_manager.ensure_plugins_loaded()
        plugins, errors = plugins_manager._get_plugins()
        apps, _ = plugins_manager.get_fastapi_plugins()
        views, _ = plugins_manager._get_ui_plugins()
        heavy = [m for m in ("duckdb", "warriorflow.store.rating_store", "warriorflow.ui.page",
                             "warriorflow.store.vote_log",
                             "airflow.api_fastapi.core_api.security") if m in sys.modules]
        print(json.dumps({"plugins": [p.name for p in plugins], "errors": errors, "heavy": heavy,
                          "apps": [{"name": a["name"], "url_prefix": a["url_prefix"],
                                    "routes": sorted(r.path for r in a["app"].routes)} for a in apps],
                          "views": views}))
        """)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["errors"] == {}
    assert "warriorflow" in got["plugins"]
    app = next(a for a in got["apps"] if a["name"] == "warriorflow status")
    assert app["url_prefix"] == "/warriorflow"
    assert {"/", "/api/status", "/report/{name:path}"} <= set(app["routes"])
    view = next(v for v in got["views"] if v["name"] == "Flywheel")
    assert view["href"] == "warriorflow/" and view["url_route"] == "warriorflow" and view["destination"] == "nav"
    assert got["heavy"] == [], f"loading the plugin imported {got['heavy']}"


@pytest.mark.integration
def test_status_page_in_headless_chromium(open_server, flywheel, tmp_path):
    url = f"{open_server}/warriorflow/"
    dom = Dom(chromium("--dump-dom", url, user_dir=tmp_path / "chromium"))
    need = flywheel["config"].settings.flywheel.min_new_gold
    assert dom.by_id["gate-progress"] == f"{flywheel['new_gold']} / {need}"
    for expert, elo in flywheel["elo"].items():
        row = dom.row(expert)  # the expert's name is text, unescaped: "gamma<&>"
        assert row[2] == f"{elo:.1f}", (expert, row)
    assert [r[1] for r in dom.rows if len(r) == 11 and r[0].isdigit()] == sorted(
        flywheel["elo"], key=lambda e: -flywheel["elo"][e])
    assert dom.by_id["snapshot-id"] == ui_store.SNAPSHOT_ID and dom.by_id["snapshot-n"] == str(ui_store.SNAPSHOT_N)
    assert dom.row("gold examples", col=0)[1] == str(flywheel["gold"])
    assert dom.row("selected", col=0)[1] == "3"
    assert dom.by_id["report-link"] == "latest report"
    assert ui_store.DROP_REASON in [c for r in dom.rows for c in r]  # shown as text, not run as a script

    shot = ARTIFACTS / "ui-status-page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    chromium(f"--screenshot={shot}", "--window-size=1400,1000", url, user_dir=tmp_path / "chromium")
    assert png_size(shot) == (1400, 1000)
    print(f"\nscreenshot of the status page: {shot}")

    data = httpx.get(f"{open_server}/warriorflow/api/status", timeout=30).json()
    assert {r["expert"]: r["elo"] for r in data["leaderboard"]} == flywheel["elo"]
    report = httpx.get(f"{open_server}/warriorflow/report/", timeout=30)
    assert report.status_code == 200 and "<h1>report</h1>" in report.text
    fig = httpx.get(f"{open_server}/warriorflow/report/leaderboard.png", timeout=30)
    assert fig.headers["content-type"] == "image/png" and fig.content.startswith(PNG)


@pytest.mark.integration
def test_airflow_ui_lists_and_embeds_the_page(open_server, tmp_path):
    plugins = httpx.get(f"{open_server}/api/v2/plugins", timeout=30).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "warriorflow")
    assert ours["external_views"][0]["url_route"] == "warriorflow"
    assert ours["fastapi_apps"][0]["url_prefix"] == "/warriorflow"
    shot = ARTIFACTS / "ui-airflow-embedded.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    dom = chromium("--virtual-time-budget=15000", "--dump-dom", f"{open_server}/plugin/warriorflow",
                   user_dir=tmp_path / "chromium")
    assert '<iframe' in dom and 'warriorflow/' in dom, "the Airflow UI did not embed the page in an iframe"
    chromium("--virtual-time-budget=15000", f"--screenshot={shot}", "--window-size=1400,1000",
             f"{open_server}/plugin/warriorflow", user_dir=tmp_path / "chromium")
    assert png_size(shot) == (1400, 1000)
    print(f"\nscreenshot of the page inside the Airflow UI: {shot}")


@pytest.mark.integration
def test_store_locked_by_the_writer_shows_busy_through_the_api_server(open_server, flywheel):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, duckdb
        con = duckdb.connect({str(flywheel['config'].duckdb_path)!r})
        print("locked", flush=True)
        sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        j = httpx.get(f"{open_server}/warriorflow/api/status", timeout=60)
        assert j.status_code == 503 and j.json()["store"]["status"] == "busy"
        page = httpx.get(f"{open_server}/warriorflow/", timeout=60)
        assert page.status_code == 200 and "store busy (the writer task is running); refresh" in page.text
    finally:
        holder.communicate("\n", timeout=30)
    assert httpx.get(f"{open_server}/warriorflow/api/status", timeout=60).status_code == 200


@pytest.mark.integration
def test_page_requires_an_airflow_login(airflow_home, flywheel, tmp_path):
    env = airflow_env(airflow_home, flywheel["home"], all_admins=False)
    with api_server(env, tmp_path / "api-server.log") as url:
        assert httpx.get(f"{url}/warriorflow/api/status", timeout=30).status_code == 401
        assert httpx.get(f"{url}/warriorflow/", timeout=30).status_code == 401
        passwords = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
        token = httpx.post(f"{url}/auth/token", json={"username": "admin", "password": passwords["admin"]},
                           timeout=30).json()["access_token"]
        bearer = httpx.get(f"{url}/warriorflow/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert bearer.status_code == 200 and bearer.json()["gate"]["new_gold"] == flywheel["new_gold"]
        cookie = httpx.get(f"{url}/warriorflow/", cookies={"_token": token}, timeout=30)  # what the UI's iframe sends
        assert cookie.status_code == 200 and "Leaderboard" in cookie.text
        bad = httpx.get(f"{url}/warriorflow/", headers={"Authorization": "Bearer not-a-token"}, timeout=30)
        assert bad.status_code in (401, 403)
