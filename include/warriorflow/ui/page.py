"""What the flywheel status page shows, and its HTML.

The page is built in two steps, so that the rating store is held open only for a few quick SELECTs
(a reader's shared lock makes a writer's open fail, see ``app``):

1. ``read_rows(store, report_dir)``: every row the page needs, read in one pass (``StoreRows``);
2. ``assemble(rows, min_new_gold)``: the page data as a plain dict (pure; also the JSON endpoint's body);
3. ``render(data)``: the HTML, from ``templates/status.html.j2`` with autoescaping on (expert names,
   drop reasons and URIs are escaped). Everything is inline: the page loads nothing from the network.

Sections: the leaderboard (Elo, Bradley-Terry and style-controlled Bradley-Terry with their bootstrap CIs
and the style coefficients, battles, win rate, and the expert's invalid-vote rate as a judge), counts per
stage (instructions by status, drop reasons, battles by status, votes, gold), the latest dataset snapshot,
the retrain gate's progress (n new gold examples since the last snapshot out of ``flywheel.min_new_gold``)
and the latest ``warriorflow report``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TEMPLATE = "status.html.j2"
TEMPLATES_DIR = Path(__file__).parent / "templates"

# Where instructions stand, in step order (stages/base.py): mined -> unique -> scored -> clean -> selected.
INSTRUCTION_STATUSES = ("mined", "unique", "scored", "clean", "selected", "dropped")
BATTLE_STATUSES = ("planned", "done", "failed")

LATEST_RATINGS_SQL = ("SELECT * FROM rating_history WHERE rating_version = (SELECT rating_version FROM "
                      "rating_history ORDER BY computed_at DESC, rating_version LIMIT 1)")
LATEST_SNAPSHOT_SQL = ("SELECT snapshot_id, uri, n_examples, created_at, rating_version FROM snapshots "
                       "ORDER BY created_at DESC, snapshot_id LIMIT 1")
LAST_RUNS_SQL = ("SELECT stage, run_id, counts, started_at, finished_at FROM stage_runs "
                 "QUALIFY row_number() OVER (PARTITION BY stage ORDER BY finished_at DESC, run_id DESC) = 1 "
                 "ORDER BY finished_at DESC, stage")


@dataclass
class StoreRows:
    """The raw rows behind the page, read in one short read-only pass."""

    log: list = field(default_factory=list)                # store.vote_log: done battles, effective votes
    ratings: list[dict] = field(default_factory=list)      # rating_history rows of the latest version
    votes: list[dict] = field(default_factory=list)        # judge, raw_verdict, verdict
    instruction_status: list[dict] = field(default_factory=list)
    drop_reasons: list[dict] = field(default_factory=list)
    battle_status: list[dict] = field(default_factory=list)
    responses: int = 0
    gold: int = 0
    new_gold: int = 0
    snapshots: int = 0
    latest_snapshot: dict | None = None
    last_runs: list[dict] = field(default_factory=list)
    report: dict | None = None                            # the latest report, if one was written
    calibration: list[dict] = field(default_factory=list)  # the latest judge calibration, judges then the panel


def report_info(report_dir: Path) -> dict | None:
    """The latest `warriorflow report` (``<home>/reports/latest/index.html``), or None if there is none."""
    index = report_dir / "index.html"
    if not index.is_file():
        return None
    written = datetime.fromtimestamp(index.stat().st_mtime, UTC).replace(tzinfo=None)
    figures = sorted(p.name for p in report_dir.glob("*.png"))
    return {"written_at": written, "figures": figures}


CALIBRATION_COLUMNS = ("judge", "pairs", "accuracy", "tie_rate", "flip_rate", "first_position_share", "pairs_source",
                       "created_at")


def read_rows(store, report_dir: Path) -> StoreRows:
    """Read what the page needs from an open (read-only) ``RatingStore``. Only SELECTs; nothing computed."""
    from warriorflow.store.vote_log import vote_log

    q = store.query
    return StoreRows(
        log=vote_log(store),
        ratings=q(LATEST_RATINGS_SQL),
        votes=q("SELECT battle_id, judge, raw_verdict, verdict FROM votes"),
        instruction_status=q("SELECT status, count(*) AS n FROM instructions GROUP BY ALL"),
        drop_reasons=store.named("drop_reasons"),
        battle_status=q("SELECT status, count(*) AS n FROM battles GROUP BY ALL"),
        responses=q("SELECT count(*) AS n FROM responses")[0]["n"],
        gold=q("SELECT count(*) AS n FROM gold_selections")[0]["n"],
        new_gold=store.named("new_gold_since_snapshot")[0]["n"],  # the retrain gate's own query
        snapshots=q("SELECT count(*) AS n FROM snapshots")[0]["n"],
        latest_snapshot=next(iter(q(LATEST_SNAPSHOT_SQL)), None),
        last_runs=q(LAST_RUNS_SQL),
        report=report_info(report_dir),
        calibration=store.named("latest_calibration"),
    )


# ----------------------------------------------------------------------------------------------- pure


def leaderboard(log_, ratings: list[dict], votes: list[dict]) -> list[dict]:
    """Rows per expert, best Elo first: the expert table plus the expert's votes and invalid-vote rate as a judge."""
    from warriorflow.method import leaderboard as lb

    experts = lb.expert_table(log_, ratings)
    judges = {j["judge"]: j for j in lb.judge_table(votes, {b.battle_id: b.votes for b in log_})}
    rows = []
    for r in experts:
        j = judges.pop(r["expert"], {})
        rows.append({**r, "judge_votes": j.get("votes", 0), "invalid_rate": j.get("invalid_rate")})
    for name, j in sorted(judges.items()):  # judges that never fought (a judge-only expert)
        rows.append({"expert": name, "elo": None, "bt": None, "bt_lo": None, "bt_hi": None, "bt_style": None,
                     "bt_style_lo": None, "bt_style_hi": None, "battles": 0, "win_rate": None,
                     "judge_votes": j["votes"], "invalid_rate": j["invalid_rate"]})
    return rows


def style_summary(ratings: list[dict]) -> dict:
    """The style coefficients behind the style-controlled ratings (Elo points per std of each feature), and the
    same as one line of text (empty when the ratings have none)."""
    from warriorflow.method import leaderboard as lb

    coefficients = lb.style_coefficients(ratings)
    return {"coefficients": coefficients, "line": lb.style_line(coefficients)}


def ordered_counts(rows: list[dict], key: str, order: tuple[str, ...]) -> list[dict]:
    """``[{key, n}]`` with every known value (0 when absent) in ``order``, then any unknown ones by name."""
    got = {r[key]: int(r["n"]) for r in rows}
    known = [{key: k, "n": got.pop(k, 0)} for k in order]
    return known + [{key: k, "n": n} for k, n in sorted(got.items())]


def gate_progress(new_gold: int, min_new_gold: int) -> dict:
    """The retrain gate: n of N new gold examples since the last snapshot."""
    return {"new_gold": new_gold, "min_new_gold": min_new_gold, "open": new_gold >= min_new_gold,
            "percent": round(100.0 * min(new_gold, min_new_gold) / min_new_gold, 1)}


def _json_counts(value: Any) -> dict:
    if isinstance(value, str):
        import json

        return json.loads(value)
    return dict(value or {})


def assemble(rows: StoreRows, min_new_gold: int, *, store_path: str = "") -> dict:
    """The page data: a JSON-ready dict (times as ISO strings)."""
    from warriorflow.method import leaderboard as lb

    instructions = ordered_counts(rows.instruction_status, "status", INSTRUCTION_STATUSES)
    battles = ordered_counts(rows.battle_status, "status", BATTLE_STATUSES)
    overall = lb.overall(rows.votes, rows.log)
    snapshot = dict(rows.latest_snapshot) if rows.latest_snapshot else None
    data = {
        "store": {"status": "ok", "path": store_path, "message": None},
        "rating_version": rows.ratings[0]["rating_version"] if rows.ratings else None,
        "leaderboard": leaderboard(rows.log, rows.ratings, rows.votes),
        "style": style_summary(rows.ratings),
        "overall": overall,
        "stages": {
            "instructions": {"total": sum(r["n"] for r in instructions), "by_status": instructions},
            "drop_reasons": [{"stage": r["stage"], "reason": r["reason"], "n": int(r["n"])} for r in rows.drop_reasons],
            "battles": {"total": sum(r["n"] for r in battles), "by_status": battles},
            "votes": {"total": overall["votes"],
                      "invalid": sum(v["verdict"] == "invalid" for v in rows.votes)},
            "responses": rows.responses,
            "gold": rows.gold,
            "last_runs": [{"stage": r["stage"], "run_id": r["run_id"], "counts": _json_counts(r["counts"]),
                           "finished_at": r["finished_at"]} for r in rows.last_runs],
        },
        "snapshot": {"latest": snapshot, "count": rows.snapshots},
        "calibration": [{k: r[k] for k in CALIBRATION_COLUMNS} for r in rows.calibration],
        "gate": gate_progress(rows.new_gold, min_new_gold),
        "report": ({"available": True, "href": "report/", **rows.report} if rows.report
                   else {"available": False, "href": None, "written_at": None, "figures": []}),
        "generated_at": datetime.now(UTC).replace(tzinfo=None),
    }
    return _jsonable(data)


def unavailable(status: str, message: str, min_new_gold: int, *, store_path: str = "",
                report: dict | None = None) -> dict:
    """Page data when the store cannot be read (``missing``, ``busy`` or ``error``): the message and the report;
    the store's sections are null (not zeros, which would look like an empty flywheel)."""
    data = assemble(StoreRows(report=report), min_new_gold, store_path=store_path)
    data.update({key: None for key in ("rating_version", "leaderboard", "style", "overall", "stages", "snapshot",
                                       "gate", "calibration")})
    data["store"] = {"status": status, "path": store_path, "message": message}
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if hasattr(value, "__dataclass_fields__"):
        return _jsonable(asdict(value))
    return value


# ----------------------------------------------------------------------------------------------- HTML


def fmt(value: Any, spec: str = ".1f") -> str:
    """A number for the page: ``-`` for missing."""
    return "-" if value is None else format(value, spec)


def render(data: dict) -> str:
    """The page's HTML. Its links are relative (``api/status``, ``report/``): it is served at its app's root."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    return env.get_template(TEMPLATE).render(d=data)
