"""The status page's data and HTML from a real fixture store, and the app's answers when the store is missing,
locked by the writer, or the report is absent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from fastapi.testclient import TestClient

from tests import ui_store
from warriorflow.store.rating_store import RatingStore
from warriorflow.tasks import retrain as retrain_tasks
from warriorflow.ui import app as ui_app
from warriorflow.ui import page


@pytest.fixture
def built(config):
    return ui_store.build(config)


def _data(config) -> dict:
    with RatingStore(config.duckdb_path, read_only=True) as store:
        rows = page.read_rows(store, ui_app.report_dir(config))
    return page.assemble(rows, config.settings.flywheel.min_new_gold, store_path=str(config.duckdb_path))


def test_leaderboard_is_the_latest_ratings_and_the_judges_invalid_votes(config, built):
    data = _data(config)
    with RatingStore(config.duckdb_path, read_only=True) as s:
        version = s.query("SELECT rating_version FROM rating_history ORDER BY computed_at DESC LIMIT 1")[0]
        ratings = {(r["method"], r["expert"]): r for r in s.query(
            "SELECT * FROM rating_history WHERE rating_version = ?", [version["rating_version"]])}
        battles = {r["e"]: r["n"] for r in s.query(
            "SELECT e, count(*) AS n FROM (SELECT attacker AS e FROM battles WHERE status = 'done' UNION ALL "
            "SELECT defender FROM battles WHERE status = 'done') GROUP BY e")}
        invalid = {r["judge"]: (r["n"], r["bad"]) for r in s.query(
            "SELECT judge, count(*) AS n, count(*) FILTER (WHERE verdict = 'invalid') AS bad "
            "FROM votes GROUP BY judge")}
    rows = {r["expert"]: r for r in data["leaderboard"]}
    assert set(rows) == set(ui_store.EXPERTS)
    assert data["rating_version"] == version["rating_version"]
    for name, r in rows.items():
        assert r["elo"] == ratings[("elo", name)]["rating"]
        assert (r["bt"], r["bt_lo"], r["bt_hi"]) == tuple(ratings[("bt", name)][k] for k in ("rating", "lo", "hi"))
        assert (r["bt_style"], r["bt_style_lo"], r["bt_style_hi"]) == tuple(
            ratings[("bt_style", name)][k] for k in ("rating", "lo", "hi"))
        assert r["battles"] == battles[name] == ratings[("elo", name)]["n_battles"]
        assert (r["judge_votes"], r["invalid_rate"]) == (invalid[name][0], invalid[name][1] / invalid[name][0])
    assert [r["elo"] for r in data["leaderboard"]] == sorted((r["elo"] for r in rows.values()), reverse=True)
    assert sum(r["invalid_rate"] > 0 for r in rows.values()) == 1  # the one invalid vote of the fixture
    assert data["overall"]["invalid_vote_rate"] == pytest.approx(1 / built["votes"])


def test_stage_counts_snapshot_and_gate_are_the_stores(config, built):
    data = _data(config)
    with RatingStore(config.duckdb_path, read_only=True) as s:
        by_status = {r["status"]: r["n"] for r in s.query("SELECT status, count(*) AS n FROM instructions GROUP BY 1")}
        drops = s.query("SELECT stage, reason, count(*) AS n FROM dropped_records GROUP BY ALL")
    stages = data["stages"]
    got = {r["status"]: r["n"] for r in stages["instructions"]["by_status"]}
    assert {k: v for k, v in got.items() if v} == by_status
    assert got["unique"] == got["clean"] == 0  # known statuses are listed even when empty
    assert stages["instructions"]["total"] == sum(by_status.values())
    assert sorted((r["stage"], r["reason"], r["n"]) for r in stages["drop_reasons"]) == sorted(
        (r["stage"], r["reason"], r["n"]) for r in drops)
    assert {r["status"]: r["n"] for r in stages["battles"]["by_status"]} == {
        "planned": 1, "done": built["battles_done"], "failed": 0}
    assert stages["votes"] == {"total": built["votes"], "invalid": 1}
    assert stages["gold"] == built["gold"]
    runs = {r["stage"]: r for r in stages["last_runs"]}
    assert runs["dedup"]["run_id"] == "manual__fixture" and runs["dedup"]["counts"] == {"in": 7, "near_duplicate": 1}
    assert runs["gold"]["counts"]["gold"] == built["gold"]

    assert data["snapshot"]["count"] == 1
    assert data["snapshot"]["latest"] == {"snapshot_id": ui_store.SNAPSHOT_ID, "uri": ui_store.SNAPSHOT_URI,
                                          "n_examples": ui_store.SNAPSHOT_N, "rating_version": "v0",
                                          "created_at": ui_store.SNAPSHOT_AT.isoformat(sep=" ")}
    need = config.settings.flywheel.min_new_gold
    assert data["gate"]["new_gold"] == retrain_tasks.new_gold_since_last_snapshot() == built["new_gold"]
    assert data["gate"]["min_new_gold"] == need
    assert data["gate"]["open"] is (built["new_gold"] >= need)
    assert data["report"]["available"] is False


def test_gate_progress_and_ordered_counts():
    assert page.gate_progress(0, 8) == {"new_gold": 0, "min_new_gold": 8, "open": False, "percent": 0.0}
    assert page.gate_progress(3, 8)["percent"] == 37.5
    assert page.gate_progress(12, 8) == {"new_gold": 12, "min_new_gold": 8, "open": True, "percent": 100.0}
    rows = page.ordered_counts([{"s": "b", "n": 2}, {"s": "zz", "n": 1}], "s", ("a", "b"))
    assert rows == [{"s": "a", "n": 0}, {"s": "b", "n": 2}, {"s": "zz", "n": 1}]


def test_html_shows_the_numbers_and_escapes_model_text(config, built):
    data = _data(config)
    html = page.render(data)
    assert f"{built['new_gold']} / {config.settings.flywheel.min_new_gold}" in html
    for r in data["leaderboard"]:
        assert f"{r['elo']:.1f}" in html and f"{r['bt']:.1f}" in html and f"{r['bt_style']:.1f}" in html
    assert "BT (style-controlled)" in html
    assert (data["style"]["line"] in html) if data["style"]["coefficients"] else ('id="style"' not in html)
    assert "gamma&lt;&amp;&gt;" in html and "gamma<&>" not in html
    assert "&lt;script&gt;alert" in html and "<script>" not in html
    assert ui_store.SNAPSHOT_ID in html
    assert "no report yet — run <code>warriorflow report</code>" in html
    assert "http://" not in html and "https://" not in html  # nothing loaded from the network


def test_page_of_an_empty_store_says_none_yet(config):
    RatingStore(config.duckdb_path).close()
    data = ui_app.status_data(lambda: config)
    assert data["store"]["status"] == "ok" and data["leaderboard"] == [] and data["snapshot"]["latest"] is None
    html = page.render(data)
    assert "none yet" in html and "no rated battles yet" in html
    assert f"0 / {config.settings.flywheel.min_new_gold}" in html


def _client(config, **kw) -> TestClient:
    return TestClient(ui_app.create_app(lambda: config, **kw))


def test_missing_store_is_a_message_not_a_500(config):
    client = _client(config)
    r = client.get("/")
    assert r.status_code == 200 and "no rating store yet" in r.text and str(config.duckdb_path) in r.text
    assert "Retrain gate" not in r.text and "Leaderboard" not in r.text  # no zeros that look like an empty flywheel
    assert "no report yet" in r.text
    j = client.get("/api/status")
    assert j.status_code == 503 and j.json()["store"]["status"] == "missing"
    assert j.json()["gate"] is None and j.json()["leaderboard"] is None


def test_store_held_by_the_writer_is_busy_then_readable(config, built):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, duckdb
        con = duckdb.connect({str(config.duckdb_path)!r})
        print("locked", flush=True)
        sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        client = _client(config, attempts=3, delay_s=0.05)
        started = time.perf_counter()
        j = client.get("/api/status")
        assert time.perf_counter() - started >= 2 * 0.05  # it retried before giving up
        assert j.status_code == 503
        assert j.json()["store"] == {"status": "busy", "path": str(config.duckdb_path), "message": ui_app.BUSY_MESSAGE}
        r = client.get("/")
        assert r.status_code == 200 and "store busy (the writer task is running)" in r.text
        assert "Retrain gate" not in r.text
    finally:
        holder.communicate("\n", timeout=30)
    j = _client(config).get("/api/status")
    assert j.status_code == 200 and j.json()["gate"]["new_gold"] == built["new_gold"]


def test_report_is_linked_and_served_read_only(config, built):
    client = _client(config)
    assert "no report yet" in client.get("/").text
    missing = client.get("/report/")
    assert missing.status_code == 404 and "run `warriorflow report`" in missing.text
    report = ui_app.report_dir(config)
    report.mkdir(parents=True)
    (report / "index.html").write_text("<h1>warriorflow report</h1><img src='elo.png'>")
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    (report / "elo.png").write_bytes(png)
    (report.parent / "secret.txt").write_text("not for the web")
    data = client.get("/api/status").json()["report"]
    assert data["available"] is True and data["figures"] == ["elo.png"] and data["href"] == "report/"
    assert 'href="report/"' in client.get("/").text
    assert client.get("/report/").text.startswith("<h1>warriorflow report</h1>")
    redirect = client.get("/report", follow_redirects=False)
    assert redirect.status_code in (302, 307) and redirect.headers["location"] == "report/"
    img = client.get("/report/elo.png")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png" and img.content == png
    assert client.get("/report/../secret.txt").status_code == 404
    assert client.get("/report/..%2fsecret.txt").status_code == 404  # reaches the handler as ../secret.txt
    assert client.post("/report/elo.png").status_code == 405


def test_bad_config_and_corrupt_store_are_messages_not_500s(config):
    from warriorflow.errors import ConfigError

    def broken():
        raise ConfigError("settings file x.yaml", "flywheel.min_new_gold: must be >= 1", "fix the value")

    j = TestClient(ui_app.create_app(broken)).get("/api/status")
    assert j.status_code == 503 and j.json()["store"]["status"] == "error"
    assert "flywheel.min_new_gold" in j.json()["store"]["message"]
    config.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    config.duckdb_path.write_bytes(b"this is not a duckdb file" * 100)
    client = _client(config)
    j = client.get("/api/status")
    assert j.status_code == 503 and j.json()["store"]["status"] == "error"
    assert str(config.duckdb_path) in j.json()["store"]["message"]
    r = client.get("/")
    assert r.status_code == 200 and 'data-status="error"' in r.text
