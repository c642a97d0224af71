"""`warriorflow leaderboard`: ratings and the health of the panel, as pure functions over stored rows.

* per expert: Elo, Bradley-Terry with its bootstrap CI, style-controlled Bradley-Terry (``bt_style``,
  the answers' length and markdown held fixed, ``method.style_control``) with its CI, battles, win rate
  (ties count half);
* the style coefficients behind ``bt_style``: Elo points per std of each feature (``style_coefficients``);
* per judge: votes, invalid-vote rate, position bias (the share of decisive verdicts that went to the
  response shown first; 0.5 is unbiased), and agreement with the other judges on the same battles.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

from warriorflow.method.votes import ATTACKER, DEFENDER, INVALID

EXPERT_METHODS = ("elo", "bt", "bt_style")  # rating_history methods whose rows are experts
STYLE_COEF_METHOD = "bt_style_coef"         # ... and the one whose rows are style features


def expert_table(log_: Sequence, ratings: Iterable[Mapping]) -> list[dict]:
    """Rows per expert: elo, bt, bt_lo, bt_hi, bt_style, bt_style_lo, bt_style_hi, battles, win_rate; best
    Elo first."""
    from warriorflow.method.rating import battle_result

    rating = defaultdict(dict)
    for r in ratings:
        if r["method"] in EXPERT_METHODS:
            rating[r["expert"]][r["method"]] = r
    battles, score = Counter(), Counter()
    for b in log_:
        s = battle_result(b)
        battles[b.attacker] += 1
        battles[b.defender] += 1
        score[b.attacker] += s
        score[b.defender] += 1 - s
    rows = []
    for name in sorted(set(rating) | set(battles)):
        elo, bt, sc = (rating[name].get(m, {}) for m in EXPERT_METHODS)
        rows.append({"expert": name, "elo": elo.get("rating"), "bt": bt.get("rating"), "bt_lo": bt.get("lo"),
                     "bt_hi": bt.get("hi"), "bt_style": sc.get("rating"), "bt_style_lo": sc.get("lo"),
                     "bt_style_hi": sc.get("hi"), "battles": battles[name],
                     "win_rate": score[name] / battles[name] if battles[name] else None})
    return sorted(rows, key=lambda r: -(r["elo"] if r["elo"] is not None else float("-inf")))


def style_coefficients(ratings: Iterable[Mapping]) -> list[dict]:
    """The style coefficients among rating rows: [{feature, elo, lo, hi, battles}] in feature order (length,
    headers, lists, bold). ``elo``: the Elo points an answer gains per std of the feature's normalised
    difference to its opponent's; a feature that never varied has no row."""
    from warriorflow.method.style_control import FEATURES

    rows = {r["expert"]: r for r in ratings if r["method"] == STYLE_COEF_METHOD}
    order = [f for f in FEATURES if f in rows] + sorted(set(rows) - set(FEATURES))
    return [{"feature": f, "elo": rows[f]["rating"], "lo": rows[f]["lo"], "hi": rows[f]["hi"],
             "battles": rows[f]["n_battles"]} for f in order]


def style_line(coefs: Sequence[Mapping]) -> str:
    """One line for the style coefficients, e.g. ``length +35.2 [20.1, 50.3], bold -3.0 Elo per std``;
    empty when there are none."""
    if not coefs:
        return ""

    def one(c: Mapping) -> str:
        ci = f" [{c['lo']:+.1f}, {c['hi']:+.1f}]" if c.get("lo") is not None and c.get("hi") is not None else ""
        return f"{c['feature']} {c['elo']:+.1f}{ci}"

    return ", ".join(one(c) for c in coefs) + " Elo per std"


def judge_table(votes: Iterable[Mapping], effective: Mapping[str, Mapping[str, str]]) -> list[dict]:
    """Rows per judge: votes, invalid_rate, position_bias, agreement.

    ``votes``: raw vote rows (judge, raw_verdict, verdict). ``effective``: battle_id -> {judge: verdict}.
    Agreement: over battles the judge shared with another judge, the share of judge pairs whose
    effective votes agree (invalid votes left out).
    """
    n, invalid, first, decisive = Counter(), Counter(), Counter(), Counter()
    for v in votes:
        j = v["judge"]
        n[j] += 1
        invalid[j] += v["verdict"] == INVALID
        if v["raw_verdict"] in ("A", "B"):
            decisive[j] += 1
            first[j] += v["raw_verdict"] == "A"
    agree, pairs = Counter(), Counter()
    for by_judge in effective.values():
        valid = {j: x for j, x in by_judge.items() if x != INVALID}
        for (j1, x1), (j2, x2) in combinations(sorted(valid.items()), 2):
            for j in (j1, j2):
                pairs[j] += 1
                agree[j] += x1 == x2
    return [{"judge": j, "votes": n[j], "invalid_rate": invalid[j] / n[j],
             "position_bias": first[j] / decisive[j] if decisive[j] else None,
             "agreement": agree[j] / pairs[j] if pairs[j] else None} for j in sorted(n)]


def overall(votes: Sequence[Mapping], log_: Sequence) -> dict:
    total = len(votes)
    decisive = [b for b in log_ if any(v in (ATTACKER, DEFENDER) for v in b.votes.values())]
    return {"battles": len(log_), "votes": total,
            "invalid_vote_rate": sum(v["verdict"] == INVALID for v in votes) / total if total else None,
            "battles_with_a_decisive_vote": len(decisive)}
