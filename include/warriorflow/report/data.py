"""What the report shows, as plain data read from the rating store (one function per panel).

Every function takes an open ``RatingStore`` (read-only is enough) and returns JSON-serialisable
dicts and lists; nothing here draws or writes. Scores come from the stages' own code: the win-rate
matrix from ``stages.rating``, the judge table from ``leaderboard``, rubric levels from
``stages.difficulty``; Fleiss' kappa is in ``report.stats``. An empty store gives empty panels.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

from warriorflow.report.stats import fleiss_kappa, histogram, rating_table

LEVELS = ("excellent", "good", "average", "poor")
NO_VALID_SCORE = "no valid score"
STAGE_ORDER = ("mine", "ingest", "dedup", "filter", "score", "decontaminate", "compress", "tag", "quarantine")
OVERLAP_EDGES = [round(0.05 * k, 2) for k in range(21)]  # 20 bins over [0, 1]
VOTE_OUTCOMES = ("attacker", "defender", "tie")
INVALID_TAG = "invalid"


def _iso(x):
    return x.isoformat(sep=" ", timespec="seconds") if isinstance(x, datetime) else x


def _plain(rows: Sequence[dict]) -> list[dict]:
    return [{k: _iso(v) for k, v in r.items()} for r in rows]


def overview(store) -> dict:
    counts = {r["table_name"]: r["n"] for r in store.named("table_counts")}
    by_status = {r["status"]: r["n"] for r in store.query(
        "SELECT status, count(*) AS n FROM instructions GROUP BY ALL ORDER BY status")}
    return {"schema_version": store.schema_version(), "tables": counts, "instructions_by_status": by_status}


# ------------------------------------------------------------------------------------------ arena


def win_rates(store, arena=None) -> dict:
    """experts (sorted), rates[i][j] = share of i's battles against j that i won (ties half), counts[i][j]."""
    from warriorflow.method.rating import battle_counts, win_rate_matrix
    from warriorflow.store.vote_log import vote_log

    log_ = vote_log(store, arena)
    if not log_:  # win_rate_matrix cannot reshape an empty table
        return {"experts": [], "rates": [], "counts": [], "battles": 0}
    experts, rates = win_rate_matrix(log_)
    _, counts = battle_counts(log_)
    return {"experts": experts, "rates": rates, "counts": counts, "battles": len(log_)}


def rating_series(store, method: str) -> dict:
    """The ratings of ``method`` (elo | bt | bt_style) per rating version, oldest version first.

    versions: [{rating_version, computed_at}]; series: expert -> [{version, rating, lo, hi, n_battles}]."""
    rows = store.query(
        "SELECT rating_version, expert, rating, lo, hi, n_battles, "
        "min(computed_at) OVER (PARTITION BY rating_version) AS first_at FROM rating_history WHERE method = ? "
        "ORDER BY first_at, rating_version, expert", [method])
    versions: list[dict] = []
    series: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if not versions or versions[-1]["rating_version"] != r["rating_version"]:
            versions.append({"rating_version": r["rating_version"], "computed_at": _iso(r["first_at"])})
        series[r["expert"]].append({"version": len(versions) - 1, "rating": r["rating"], "lo": r["lo"],
                                    "hi": r["hi"], "n_battles": r["n_battles"]})
    return {"method": method, "versions": versions, "series": dict(sorted(series.items()))}


def style_control(store) -> dict:
    """The style coefficients of the latest rating version (``leaderboard.style_coefficients``): Elo points per
    std of each feature behind the style-controlled ratings, and the same as one line of text."""
    from warriorflow.method import leaderboard as lb

    rows = store.query(
        "SELECT * FROM rating_history WHERE method = ? AND rating_version = (SELECT rating_version FROM "
        "rating_history ORDER BY computed_at DESC, rating_version LIMIT 1)", [lb.STYLE_COEF_METHOD])
    coefficients = lb.style_coefficients(rows)
    return {"coefficients": coefficients, "line": lb.style_line(coefficients)}


def balance(store) -> list[dict]:
    """Attacks and defences per expert over every battle in the store (planned or fought)."""
    from warriorflow.method.planning import Plan

    rows = store.query("SELECT attacker, defender FROM battles")
    plan = Plan(attacks=Counter(r["attacker"] for r in rows), defences=Counter(r["defender"] for r in rows))
    return [{"expert": name, **c} for name, c in plan.balance().items()]


def judge_quality(store, arena=None) -> dict:
    """Per judge: votes, invalid-vote rate, position bias, agreement (leaderboard); overall Fleiss' kappa.

    Kappa treats each fought battle as an item and each judge's effective vote (attacker, defender,
    tie) as one rating; invalid votes are left out and battles with fewer than 2 ratings are skipped."""
    from warriorflow.method import leaderboard as lb
    from warriorflow.store.vote_log import vote_counts, vote_log

    log_ = vote_log(store, arena)
    votes = store.query("SELECT battle_id, judge, raw_verdict, verdict FROM votes")
    effective = {b.battle_id: dict(b.votes) for b in log_}
    table = [row for row in rating_table(effective.values(), VOTE_OUTCOMES) if sum(row) >= 2]
    summary = lb.overall(votes, log_)
    return {"judges": lb.judge_table(votes, effective), "fleiss_kappa": fleiss_kappa(table),
            "kappa_items": len(table), "categories": list(VOTE_OUTCOMES),
            "votes": summary["votes"], "invalid_vote_rate": summary["invalid_vote_rate"],
            **vote_counts(store, log_)}


def calibration(store) -> dict:
    """The latest `warriorflow judges calibrate`: one row per judge, then the panel (empty when never run)."""
    rows = store.named("latest_calibration")
    out = []
    for r in rows:
        metrics = json.loads(r["metrics"]) if isinstance(r["metrics"], str) else (r["metrics"] or {})
        out.append({**{k: r[k] for k in ("judge", "pairs", "accuracy", "tie_rate", "flip_rate",
                                          "first_position_share", "pairs_source")},
                    "decisive_rate": metrics.get("decisive_rate"), "precision": metrics.get("precision"),
                    "created_at": str(r["created_at"])})
    return {"rows": out, "calibration_id": rows[0]["calibration_id"] if rows else None}


# ------------------------------------------------------------------------------------------ instructions


def difficulty(store) -> dict:
    """Instructions by the rubric level of their median judge score, and the histogram of every judge score."""
    from warriorflow.method.difficulty import level

    medians = store.query(
        "SELECT i.difficulty FROM instructions i WHERE i.difficulty IS NOT NULL OR EXISTS "
        "(SELECT 1 FROM difficulty_scores s WHERE s.instruction_id = i.instruction_id)")
    levels = Counter(level(r["difficulty"]) for r in medians)
    by_level = {name: levels[name] for name in LEVELS}
    by_level[NO_VALID_SCORE] = levels["invalid"]
    scores = store.query("SELECT score, valid FROM difficulty_scores")
    per_score = Counter(r["score"] for r in scores if r["valid"])
    return {"levels": by_level, "scores": {str(s): per_score[s] for s in range(1, 11)},
            "invalid_scores": sum(not r["valid"] for r in scores), "instructions": len(medians)}


def categories(store, configured: Sequence[str]) -> dict:
    """Valid task tags per category (configured order, then any other stored category) and invalid tags."""
    rows = store.query("SELECT t.category, t.valid, i.expert AS miner FROM task_tags t "
                       "LEFT JOIN instructions i USING (instruction_id)")
    counts = Counter(r["category"] for r in rows if r["valid"])
    names = list(configured) + sorted(c for c in counts if c not in configured)
    by_miner: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by_miner[r["miner"] or "?"][r["category"] if r["valid"] else INVALID_TAG] += 1
    return {"categories": names, "counts": {c: counts[c] for c in names},
            "invalid": sum(not r["valid"] for r in rows), "tagged": len(rows),
            "by_miner": {m: dict(c) for m, c in sorted(by_miner.items())}}


def drop_reasons(store) -> list[dict]:
    """Dropped records per (stage, reason), and quarantined batches per stage as stage 'quarantine'."""
    rows = store.query("SELECT stage, reason, count(*) AS n FROM dropped_records GROUP BY ALL")
    rows += [{"stage": "quarantine", "reason": f"{r['stage']} batch", "n": r["n"]}
             for r in store.query("SELECT stage, count(*) AS n FROM quarantine GROUP BY ALL")]

    def key(r):
        s = r["stage"]
        return (STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER), s, -r["n"], r["reason"])

    return sorted(rows, key=key)


def overlap(store, min_shared: int = 1) -> dict:
    """The best n-gram overlap of each checked instruction per benchmark: histogram counts and a summary."""
    rows = store.query("SELECT benchmark, overlap, shared_ngrams FROM contamination ORDER BY benchmark")
    per: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        per[r["benchmark"]].append(r)
    hist = {b: histogram([r["overlap"] for r in rs], OVERLAP_EDGES) for b, rs in per.items()}
    summary = [{"benchmark": b, "checked": len(rs), "mean_overlap": sum(r["overlap"] for r in rs) / len(rs),
                "max_overlap": max(r["overlap"] for r in rs),
                "contaminated": sum(r["shared_ngrams"] >= min_shared for r in rs)} for b, rs in per.items()]
    return {"edges": OVERLAP_EDGES, "counts": hist, "summary": summary}


# ------------------------------------------------------------------------------------------ retrains


def retrains(store) -> dict:
    """Snapshots (latest first), training runs, and eval results with pass@1 per benchmark across models.

    series: benchmark -> [{model_ref, pass_at_1}], models in the order of their first evaluation."""
    snapshots = _plain(store.query("SELECT * FROM snapshots ORDER BY created_at DESC, snapshot_id"))
    runs = _plain(store.query("SELECT * FROM training_runs ORDER BY started_at, training_run_id"))
    evals = store.query("SELECT * FROM eval_results ORDER BY evaluated_at, model_ref, benchmark")
    models: list[str] = []
    for e in evals:
        if e["model_ref"] not in models:
            models.append(e["model_ref"])
    latest: dict[tuple[str, str], dict] = {}
    for e in evals:  # the newest result per (model, benchmark)
        latest[(e["model_ref"], e["benchmark"])] = e
    series: dict[str, list[dict]] = defaultdict(list)
    for m in models:
        for (model, bench), e in sorted(latest.items(), key=lambda kv: kv[0][1]):
            if model == m:
                series[bench].append({"model_ref": m, "pass_at_1": e["pass_at_1"], "n_problems": e["n_problems"]})
    return {"latest_snapshot": snapshots[0] if snapshots else None, "snapshots": snapshots, "training_runs": runs,
            "eval_results": _plain(evals), "models": models, "series": dict(sorted(series.items())),
            "decisions": promotion_decisions(store)}


def promotion_decisions(store) -> list[dict]:
    """Promotion decisions, newest first: verdict, the paired test with its statistic and p-value, the problems
    paired, McNemar's b/c or the bootstrap CI, and the reasons."""
    rows = store.query("SELECT candidate, previous, promoted, test, statistic, p_value, mean_delta, reasons, evidence, "
                       "decided_at FROM model_promotions ORDER BY decided_at DESC, decision_id")
    out = []
    for r in rows:
        ev = _loads(r["evidence"]) or {}
        pooled = ev.get("pooled") or {}
        out.append({"candidate": r["candidate"], "previous": r["previous"], "promoted": r["promoted"],
                    "test": r["test"], "statistic": r["statistic"], "p_value": r["p_value"],
                    "alpha": (ev.get("rule") or {}).get("alpha"), "n_paired": ev.get("n_paired"),
                    "b": pooled.get("b"), "c": pooled.get("c"), "ci": pooled.get("ci"),
                    "mean_delta": r["mean_delta"], "reasons": _loads(r["reasons"]) or [],
                    "decided_at": _iso(r["decided_at"])})
    return out


def champion_in_arena(store, name: str | None) -> list[dict]:
    """The champion expert's Elo and Bradley-Terry rating per rating version, oldest first, with the training run
    that was champion when each version was computed (``flywheel.champion_joins_arena``)."""
    if not name:
        return []
    rows = store.query(
        "SELECT h.rating_version, min(h.computed_at) AS computed_at, "
        "max(h.rating) FILTER (WHERE h.method = 'elo') AS elo, max(h.rating) FILTER (WHERE h.method = 'bt') AS bt, "
        "max(h.n_battles) FILTER (WHERE h.method = 'elo') AS n_battles, "
        "(SELECT p.candidate FROM model_promotions p WHERE p.promoted AND p.decided_at <= min(h.computed_at) "
        " ORDER BY p.decided_at DESC LIMIT 1) AS champion_run "
        "FROM rating_history h WHERE h.expert = ? GROUP BY h.rating_version ORDER BY computed_at, h.rating_version",
        [name])
    return _plain(rows)


def _loads(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def collect(store, config) -> dict:
    """Every panel's data."""
    return {
        "overview": overview(store),
        "win_rates": win_rates(store, config.settings.arena),
        "elo": rating_series(store, "elo"),
        "bt": rating_series(store, "bt"),
        "bt_style": rating_series(store, "bt_style"),
        "style": style_control(store),
        "difficulty": difficulty(store),
        "categories": categories(store, config.settings.tagging.categories),
        "drop_reasons": drop_reasons(store),
        "overlap": overlap(store, config.settings.decontamination.min_shared),
        "judges": judge_quality(store, config.settings.arena),
        "calibration": calibration(store),
        "balance": balance(store),
        "retrains": retrains(store),
        "champion": champion_in_arena(store, config.settings.flywheel.champion_name
                                      if config.settings.flywheel.champion_joins_arena else None),
    }
