"""The report from a fixture store: each figure exists and carries the right numbers, computed here on
our own from what the fixture wrote; the page references every figure relatively; empty stores and
atomic replacement."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import write_yaml
from tests.report_fixture import DROPS, QUARANTINED, build_store
from warriorflow.config import CONFIG_DIR, load_config
from warriorflow.report import figures, write_report
from warriorflow.store.rating_store import RatingStore

ALL_FIGURES = {"win_rates.png", "elo.png", "bt.png", "difficulty.png", "categories.png", "drop_reasons.png",
               "overlap.png", "judges.png", "balance.png", "evals.png"}


def _cfg(home: Path):
    return load_config(write_yaml(home.parent / f"{home.name}-settings.yaml", f"""
experts_file: {CONFIG_DIR / "experts.embedded.yaml"}
paths: {{home: {home}}}
rating: {{bootstrap_rounds: 50}}
"""))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    home = tmp_path_factory.mktemp("report") / "home"
    cfg = _cfg(home)
    truth = build_store(cfg)
    index = write_report(cfg)
    return cfg, truth, index


def _png_data(path: Path) -> dict:
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 400 and im.height >= 200
        im.load()
        return json.loads(im.text[figures.DATA_KEY])


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if "href" in a or ("src" in a and tag != "img"):
            self.links.append(a.get("href") or a.get("src"))
        self.scripts += tag == "script"


# ------------------------------------------------------------------------------------------ independent numbers


def _effective(truth) -> dict[str, dict[str, str]]:
    done = {b["battle_id"] for b in truth.battles if b["done"]}
    per: dict[str, dict[str, str]] = defaultdict(dict)
    for v in truth.votes:
        if v["battle_id"] in done:
            per[v["battle_id"]][v["judge"]] = v["verdict"]  # one vote per judge in the fixture
    return per


def _result(votes: dict[str, str]) -> float:
    a, d = sum(x == "attacker" for x in votes.values()), sum(x == "defender" for x in votes.values())
    return 1.0 if a > d else 0.0 if a < d else 0.5


def _elo(truth, n_battles: int, k=40.0, r0=1000.0) -> dict[str, float]:
    eff, r = _effective(truth), {}
    for b in [b for b in truth.battles if b["done"]][:n_battles]:
        ra, rd = r.setdefault(b["attacker"], r0), r.setdefault(b["defender"], r0)
        delta = k * (_result(eff[b["battle_id"]]) - 1 / (1 + 10 ** ((rd - ra) / 400)))
        r[b["attacker"]], r[b["defender"]] = ra + delta, rd - delta
    return r


def _kappa(items: list[list[str]], cats=("attacker", "defender", "tie")) -> float:
    rows = [[it.count(c) for c in cats] for it in items if len(it) >= 2]
    p_i = [(sum(x * x for x in r) - sum(r)) / (sum(r) * (sum(r) - 1)) for r in rows]
    total = sum(map(sum, rows))
    p_e = sum((sum(r[j] for r in rows) / total) ** 2 for j in range(len(cats)))
    return (sum(p_i) / len(p_i) - p_e) / (1 - p_e)


# ------------------------------------------------------------------------------------------ figures


def test_every_figure_is_written_and_referenced_relatively(built):
    _, _, index = built
    out = index.parent
    assert {p.name for p in out.glob("*.png")} == ALL_FIGURES
    refs = _Refs()
    refs.feed(index.read_text())
    srcs = {i["src"] for i in refs.imgs}
    assert srcs == ALL_FIGURES and all(i.get("alt") for i in refs.imgs)
    assert refs.scripts == 0 and all(link.startswith("#") for link in refs.links)  # nothing external, no scripts
    assert all((out / s).is_file() for s in srcs)
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["figures"].values()) == ALL_FIGURES
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temp folders left


def test_win_rate_heatmap(built):
    _, truth, index = built
    d = _png_data(index.parent / "win_rates.png")
    eff = _effective(truth)
    won, met = Counter(), Counter()
    for b in truth.battles:
        if b["done"]:
            s = _result(eff[b["battle_id"]])
            won[(b["attacker"], b["defender"])] += s
            won[(b["defender"], b["attacker"])] += 1 - s
            met[(b["attacker"], b["defender"])] += 1
            met[(b["defender"], b["attacker"])] += 1
    experts = sorted({b["attacker"] for b in truth.battles} | {b["defender"] for b in truth.battles})
    assert d["experts"] == experts
    for i, x in enumerate(experts):
        for j, y in enumerate(experts):
            if x == y:
                assert d["rates"][i][j] is None
            else:
                assert d["rates"][i][j] == pytest.approx(won[(x, y)] / met[(x, y)]) and d["counts"][i][j] == met[(x, y)]


def test_the_heatmap_draws_those_rates(built):
    import numpy as np

    cfg, _, index = built
    d = _png_data(index.parent / "win_rates.png")
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        from warriorflow.report import data

        fig, _ = figures.fig_win_rates(data.win_rates(store))
    shown = fig.axes[0].images[0].get_array()
    expected = np.array([[np.nan if x is None else x for x in row] for row in d["rates"]])
    assert np.allclose(shown.filled(np.nan), expected, equal_nan=True)


def test_elo_and_bt_over_rating_versions(built):
    cfg, truth, index = built
    elo = _png_data(index.parent / "elo.png")
    assert len(elo["versions"]) == 2
    first, last = _elo(truth, 12), _elo(truth, 24)
    for expert, ys in elo["elo"].items():
        assert ys == pytest.approx([first[expert], last[expert]])
    bt = _png_data(index.parent / "bt.png")
    assert bt["versions"] == elo["versions"]
    with RatingStore(cfg.duckdb_path, read_only=True) as store:
        rows = store.query("SELECT rating_version, expert, rating, lo, hi FROM rating_history WHERE method = 'bt'")
    for r in rows:
        k = bt["versions"].index(r["rating_version"])
        got = bt["bt"][r["expert"]]
        assert (got["rating"][k], got["lo"][k], got["hi"][k]) == pytest.approx((r["rating"], r["lo"], r["hi"]))
        assert got["lo"][k] < got["rating"][k] < got["hi"][k]
    ranked = sorted(bt["bt"], key=lambda e: -bt["bt"][e]["rating"][-1])
    assert ranked[0] == "alpha" and ranked[-1] in ("charlie", "delta")  # the fixture's strengths show through


def test_style_controlled_ratings_beside_bt(built):
    from warriorflow.report.html import latest_ratings

    _, _, index = built
    data = json.loads((index.parent / "report.json").read_text())["data"]
    rows = latest_ratings(data)
    assert rows and all(r["bt_style"] is not None and r["style_lo"] <= r["bt_style"] <= r["style_hi"] for r in rows)
    # the fixture's two answers in a battle differ only in the expert's name: no style difference, so
    # style control changes nothing and there is no style coefficient to show
    assert all(abs(r["bt_style"] - r["bt"]) < 1e-6 for r in rows)
    assert data["style"] == {"coefficients": [], "line": ""}
    page = index.read_text()
    assert "<th>Bradley-Terry</th><th>95% CI</th><th>BT (style-controlled)</th><th>95% CI</th>" in page
    assert f"{rows[0]['bt_style']:.1f}" in page and "Style effects" not in page


def test_difficulty_levels_and_scores(built):
    _, truth, index = built
    d = _png_data(index.parent / "difficulty.png")

    def lvl(m):
        return "no valid score" if m is None else "excellent" if m >= 9 else "good" if m >= 6 else (
            "average" if m >= 3 else "poor")

    assert d["levels"] == {k: Counter(map(lvl, truth.medians.values()))[k]
                           for k in ("excellent", "good", "average", "poor", "no valid score")}
    assert d["scores"] == [truth.judge_scores.count(s) for s in range(1, 11)]
    assert d["invalid_scores"] == truth.judge_scores.count(None)


def test_categories_drops_overlap_balance(built):
    _, truth, index = built
    out = index.parent
    cats = _png_data(out / "categories.png")
    tally = Counter(truth.tags.values())
    assert dict(zip(cats["categories"], cats["counts"])) == {
        **{c: tally[c] for c in ("code generation", "debugging", "optimisation", "reasoning", "analysis", "theory",
                                 "transpile")}, "invalid": tally[None]}

    drops = _png_data(out / "drop_reasons.png")
    expected = {f"{s}: {r}": n for (s, r), n in DROPS.items()}
    expected.update({f"quarantine: {s} batch": n for s, n in QUARANTINED.items()})
    assert dict(zip(drops["labels"], drops["counts"])) == expected
    order = [label.split(":")[0] for label in drops["labels"]]
    assert order == sorted(order, key=["mine", "dedup", "score", "decontaminate", "quarantine"].index)

    ov = _png_data(out / "overlap.png")
    edges = ov["edges"]
    assert edges[0] == 0 and edges[-1] == 1 and len(edges) == 21
    for bench, values in truth.overlaps.items():
        mine = [sum(edges[k] <= v < edges[k + 1] or (k == 19 and v == 1.0) for v in values) for k in range(20)]
        assert ov["counts"][bench] == mine and sum(mine) == 20

    bal = _png_data(out / "balance.png")
    att, dfn = Counter(b["attacker"] for b in truth.battles), Counter(b["defender"] for b in truth.battles)
    assert bal["attacks"] == [att[e] for e in bal["experts"]] and bal["defences"] == [dfn[e] for e in bal["experts"]]
    assert sum(bal["attacks"]) == 26  # 24 fought + 2 only planned


def test_judge_quality(built):
    _, truth, index = built
    d = _png_data(index.parent / "judges.png")
    done = {b["battle_id"] for b in truth.battles if b["done"]}
    votes = [v for v in truth.votes if v["battle_id"] in done]
    for k, judge in enumerate(d["judges"]):
        mine = [v for v in votes if v["judge"] == judge]
        a, b = sum(v["raw_verdict"] == "A" for v in mine), sum(v["raw_verdict"] == "B" for v in mine)
        assert d["position_bias"][k] == pytest.approx(a / (a + b))
        assert d["invalid_rate"][k] == pytest.approx(sum(v["verdict"] == "invalid" for v in mine) / len(mine))
    items = [[x for x in by_judge.values() if x != "invalid"] for by_judge in _effective(truth).values()]
    assert d["fleiss_kappa"] == pytest.approx(_kappa(items))
    page = index.read_text()
    assert f"{_kappa(items):.3f}" in page


def test_model_scores_across_retrains_and_latest_snapshot(built):
    _, truth, index = built
    d = _png_data(index.parent / "evals.png")
    assert d["models"] == ["base", "run-1"]
    assert d["pass_at_1"] == {b: {e["model_ref"]: e["pass_at_1"] for e in truth.evals if e["benchmark"] == b}
                              for b in ("humaneval", "mbpp")}
    page = index.read_text()
    assert "snap-1" in page and "s3://b/snapshots/snap-1" in page and "No retrain yet" not in page


# ------------------------------------------------------------------------------------------ empty and atomic


def test_an_empty_store_gives_clear_empty_panels(tmp_path):
    cfg = _cfg(tmp_path / "home")
    RatingStore(cfg.duckdb_path).close()
    index = write_report(cfg, tmp_path / "out")
    assert index == tmp_path / "out" / "index.html"
    page = index.read_text()
    refs = _Refs()
    refs.feed(page)
    assert refs.imgs == [] and not list(index.parent.glob("*.png"))
    for message in ("No battles fought yet", "No ratings yet", "No votes yet", "No instruction has been scored yet",
                    "No instruction has been tagged yet", "Nothing dropped", "No decontamination check",
                    "No retrain yet"):
        assert message in page


def test_a_snapshot_without_evaluations(tmp_path):
    cfg = _cfg(tmp_path / "home")
    with RatingStore(cfg.duckdb_path) as store:
        store.upsert("snapshots", [{"snapshot_id": "snap-9", "uri": "file:///s/snap-9", "manifest_sha256": "f" * 64,
                                    "n_examples": 3, "config_hash": "c" * 64}], key=["snapshot_id"])
    page = write_report(cfg).read_text()
    assert "No retrain yet" not in page and "Latest snapshot" in page and "snap-9" in page
    assert "evals.png" not in page and "<h3>Evaluation results</h3>" not in page


def test_the_folder_is_replaced_whole_and_the_store_is_read_only(tmp_path, monkeypatch):
    import warriorflow.report as report

    cfg = _cfg(tmp_path / "home")
    RatingStore(cfg.duckdb_path).close()
    out = report.default_report_dir(cfg)
    assert out == cfg.home / "reports" / "latest"
    write_report(cfg)
    (out / "stale.txt").write_text("from an older report")
    write_report(cfg)
    assert not (out / "stale.txt").exists() and (out / "index.html").is_file()
    monkeypatch.setattr(report, "_exchange", lambda a, b: False)  # the two-rename fallback
    (out / "stale.txt").write_text("again")
    write_report(cfg)
    assert not (out / "stale.txt").exists() and (out / "index.html").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["latest"]
    (tmp_path / "file").write_text("x")
    from warriorflow.errors import StoreError

    with pytest.raises(StoreError, match="not a folder"):
        write_report(cfg, tmp_path / "file")
    with pytest.raises(StoreError, match="does not exist"):
        write_report(_cfg(tmp_path / "nothing"))


def test_cli_report_and_tag(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tests.scripted_backend import ScriptedBackend
    from warriorflow.cli import main
    from warriorflow.inference import factory

    cfg = _cfg(tmp_path / "home")
    with RatingStore(cfg.duckdb_path) as store:
        store.upsert("instructions", [{"instruction_id": "i1", "text": "Port to Go", "expert": "gemma-3-270m-base",
                                       "mined_at": "2026-11-20 00:00:00", "run_id": "m", "status": "selected"}],
                     key=["instruction_id"])
    monkeypatch.setattr(factory, "backend_for", lambda e, c: ScriptedBackend(e.name, "always:transpile"))
    res = CliRunner().invoke(main, ["--config", str(cfg.settings_file), "tag", "--run-id", "t1"])
    assert res.exit_code == 0, res.output
    assert "category_transpile" in res.output
    res = CliRunner().invoke(main, ["--config", str(cfg.settings_file), "report", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "categories.png").is_file()
    assert _png_data(tmp_path / "r" / "categories.png")["counts"][-2:] == [1, 0]  # transpile 1, invalid 0
