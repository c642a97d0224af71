"""Style-controlled Bradley-Terry (method/style_control.py) and the rate stage's bt_style rows: the features
on hostile markdown, the fit against plain Bradley-Terry, scikit-learn and a direct scipy optimisation, a
judge that only rewards length, and the rows the stage writes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import log_expit

from warriorflow.method import leaderboard as lb
from warriorflow.method.rating import PRIOR_TIES, BattleVotes, battle_result, bt_mle
from warriorflow.method.style_control import (
    STYLE_PRIOR,
    StyleFeatures,
    bt_style,
    fit_style_bt,
    standardize,
    style_differences,
    style_features,
)

ELO = 400 / math.log(10)


def bv(bid: str, a: str, d: str, verdict: str) -> BattleVotes:
    return BattleVotes(bid, f"i-{bid}", a, d, {"judge": verdict})


def random_log(n: int = 300, experts=("a", "b", "c", "d"), seed: int = 3) -> list[BattleVotes]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        i, j = rng.choice(len(experts), 2, replace=False)
        verdict = ("attacker", "defender", "tie")[rng.choice(3, p=[0.45 + 0.05 * (i - j), 0.45 - 0.05 * (i - j), 0.1])]
        out.append(bv(f"b{k}", experts[i], experts[j], verdict))
    return out


def words(n: int) -> str:
    return " ".join(["word"] * n)


# ------------------------------------------------------------------------------------------ features


def test_code_fences_hide_markdown_but_not_length():
    text = ("# Title\n\nSome **bold** and __also bold__ text.\n\n- one\n  - nested\n1. first\n\n"
            "```python\n# a comment, not a header\n- not a list\n**not bold**\nx = `tick`\n```\n"
            "~~~\n## still code\n~~~\n## Real header\n")
    f = style_features(text)
    assert (f.headers, f.lists, f.bold) == (2, 3, 2)
    assert f.length == style_features(text.replace("```python", "```")).length + 1  # code counts in the length


def test_fences_close_only_on_a_matching_run_and_an_unclosed_fence_runs_to_the_end():
    assert style_features("````\n```\n# inside\n````\n# outside").headers == 1  # ``` cannot close ````
    assert style_features("~~~\n```\n# inside\n~~~\n# outside").headers == 1     # ``` cannot close ~~~
    assert style_features("```\n# a\n``` not a close\n# b\n```\n# c").headers == 1
    # tokens: ` ` ` sh | # ! / bin / sh | # never closed | - x | * * y * *
    assert style_features("```sh\n#!/bin/sh\n# never closed\n- x\n**y**") == (20, 0, 0, 0)
    assert style_features("``` inline `code` ```\n# header").headers == 1  # a backtick info string: no fence
    assert style_features("    ```\n# in").headers == 1  # indented 4 spaces: not a fence


def test_inline_code_is_not_bold_and_near_misses_do_not_count():
    f = style_features("`__init__` calls **setup** and ``a ` __b__``, then __main__ runs")
    assert f.bold == 2  # **setup** and the bare __main__
    f = style_features("#hashtag\n####### seven\n-dash\n1.5 is a number\n**\n****\n#\n* * *\n+ plus")
    assert (f.headers, f.lists, f.bold) == (1, 2, 0)  # '#' alone is a header; '* * *' and '+ plus' list items


def test_empty_unicode_and_windows_line_endings():
    assert style_features("") == StyleFeatures(0, 0, 0, 0)
    assert style_features("   \n\n\t") == StyleFeatures(0, 0, 0, 0)
    f = style_features("# Überschrift\r\n- déjà vu\r\n- 变量名 = 1 🙂\r\n**粗体**")
    # tokens: # Überschrift | - déjà vu | - 变量名 = 1 🙂 | * * 粗体 * *
    assert f == StyleFeatures(length=15, headers=1, lists=2, bold=1)
    assert style_features("＃ full-width hash\n• bullet").headers == 0
    with pytest.raises(ValueError, match="must be a string"):
        style_features(None)  # type: ignore[arg-type]


def test_normalised_difference_and_standardization():
    d = style_differences([((3, 0, 0, 5), (1, 0, 2, 5))])
    assert d.tolist() == [[2 / 5, 0.0, -2 / 3, 0.0]]
    z, mean, std, varies = standardize(np.array([[1.0, 0.2], [3.0, 0.2]]))
    assert varies.tolist() == [True, False]
    assert z.tolist() == [[-1.0, 0.0], [1.0, 0.0]] and mean.tolist() == [2.0, 0.2] and std[0] == 1.0
    with pytest.raises(ValueError, match="4 counts"):
        style_differences([((1, 2), (3, 4))])


# ------------------------------------------------------------------------------------------ the fit


def test_without_style_differences_it_is_plain_bradley_terry():
    log_ = random_log()
    same = {b.battle_id: (StyleFeatures(10 + k, k % 3, 1, 0),) * 2 for k, b in enumerate(log_)}
    got = bt_style(log_, same)
    want = bt_mle(log_)
    assert set(got.ratings) == set(want)
    assert max(abs(got.ratings[e]["rating"] - want[e]) for e in want) < 1e-6
    assert all(c == {"log_odds": None, "elo": None, "lo": None, "hi": None} for c in got.coefficients.values())
    assert (got.n_battles, got.left_out) == (len(log_), 0)


def length_judge_texts() -> tuple[list[BattleVotes], dict[str, tuple[str, str]]]:
    """X writes the longer answer in 4 of 5 battles and wins only then (6 in 7 times); Y and Z write longer
    answers half the time, and the longer wins 6 in 7 times whoever wrote it. Every third attacker's answer
    starts with a header and a list item."""
    log_, texts = [], {}

    def add(att: str, dfn: str, att_len: int, dfn_len: int, winner: str) -> None:
        bid = f"b{len(log_):03d}"
        log_.append(bv(bid, att, dfn, "attacker" if winner == att else "defender"))
        md = "## Plan\n- step\n" if len(log_) % 3 == 0 else ""
        texts[bid] = (md + words(att_len), words(dfn_len))

    for other in ("Y", "Z"):
        for r in range(70):  # X longer: X wins 60, loses 10
            winner = "X" if r < 60 else other
            add("X", other, 200, 100, winner) if r % 2 == 0 else add(other, "X", 100, 200, winner)
        for r in range(18):  # X shorter: X loses every time
            add("X", other, 100, 200, other) if r % 2 else add(other, "X", 200, 100, other)
    for r in range(70):
        longer, shorter = ("Y", "Z") if r % 2 else ("Z", "Y")
        add(longer, shorter, 200, 100, longer if r % 7 else shorter)
    return log_, texts


def length_judge_log() -> tuple[list[BattleVotes], dict]:
    log_, texts = length_judge_texts()
    return log_, {bid: (style_features(a), style_features(d)) for bid, (a, d) in texts.items()}


def test_a_judge_that_rewards_length_ranks_x_first_raw_but_not_style_controlled():
    log_, features = length_judge_log()
    raw = bt_mle(log_)
    assert max(raw, key=raw.get) == "X"
    styled = bt_style(log_, features)
    ratings = {e: v["rating"] for e, v in styled.ratings.items()}
    assert max(ratings, key=ratings.get) != "X"
    assert ratings["X"] < min(ratings["Y"], ratings["Z"])
    assert styled.coefficients["length"]["log_odds"] > 0.5
    assert styled.coefficients["length"]["elo"] == pytest.approx(styled.coefficients["length"]["log_odds"] * ELO)
    assert styled.coefficients["bold"]["elo"] is None  # no answer has bold text
    assert sum(ratings.values()) / 3 == pytest.approx(1000.0)


def _sklearn_fit(log_, x):
    """FastChat's layout: every battle twice; a decisive result is two rows for the winner, a tie one row
    each way; expert columns +1 / -1 plus the style columns; (almost) no penalty."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    experts = sorted({e for b in log_ for e in (b.attacker, b.defender)})
    m = len(experts)
    rows, ys = [], []
    for b, xi in zip(log_, x):
        row = np.zeros(m + x.shape[1])
        row[experts.index(b.attacker)], row[experts.index(b.defender)] = 1.0, -1.0
        row[m:] = xi
        s = battle_result(b)
        rows += [row, row]
        ys += [1, 1] if s == 1 else [0, 0] if s == 0 else [1, 0]
    lr = linear_model.LogisticRegression(fit_intercept=False, C=1e10, tol=1e-12, max_iter=10_000)
    lr.fit(np.array(rows), np.array(ys))
    coef = lr.coef_[0]
    return experts, coef[:m] - coef[:m].mean(), coef[m:]


def test_fit_matches_scikit_learn_without_priors():
    log_ = random_log(400, seed=11)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(len(log_), 2))
    experts = sorted({e for b in log_ for e in (b.attacker, b.defender)})
    idx = {e: i for i, e in enumerate(experts)}
    a = np.array([idx[b.attacker] for b in log_])
    d = np.array([idx[b.defender] for b in log_])
    s = np.array([battle_result(b) for b in log_])
    theta, beta = fit_style_bt(a, d, s, x, len(experts), prior=0, style_prior=0)
    names, theta_sk, beta_sk = _sklearn_fit(log_, x)
    assert names == experts
    assert np.allclose(theta * ELO, theta_sk * ELO, atol=0.05)  # Elo points
    assert np.allclose(beta, beta_sk, atol=1e-4)
    assert abs(theta.sum()) < 1e-9


def test_fit_with_its_priors_maximises_the_documented_objective():
    log_ = random_log(40, seed=2)  # small: the priors matter
    rng = np.random.default_rng(9)
    x = rng.normal(size=(len(log_), 3))
    experts = sorted({e for b in log_ for e in (b.attacker, b.defender)})
    m = len(experts)
    idx = {e: i for i, e in enumerate(experts)}
    a = np.array([idx[b.attacker] for b in log_])
    d = np.array([idx[b.defender] for b in log_])
    s = np.array([battle_result(b) for b in log_])

    def neg(p):
        theta, beta = p[:m], p[m:]
        z = theta[a] - theta[d] + x @ beta
        ll = np.sum(s * log_expit(z) + (1 - s) * log_expit(-z))
        diff = theta[:, None] - theta[None, :]
        ll += np.sum((PRIOR_TIES / 2) * (1 - np.eye(m)) * log_expit(diff))  # virtual ties
        return -(ll - STYLE_PRIOR / 2 * beta @ beta)

    res = minimize(neg, np.zeros(m + 3), method="BFGS", options={"gtol": 1e-9})
    want = res.x[:m] - res.x[:m].mean()
    theta, beta = fit_style_bt(a, d, s, x, m)
    assert np.allclose(theta, want, atol=1e-4) and np.allclose(beta, res.x[m:], atol=1e-4)
    assert neg(np.concatenate([theta, beta])) <= res.fun + 1e-9


def test_it_exists_on_a_tiny_separable_log_and_the_plain_mle_says_when_it_does_not():
    log_ = [bv("b1", "a", "b", "attacker"), bv("b2", "b", "a", "defender")]
    features = {"b1": (StyleFeatures(9, 0, 0, 0), StyleFeatures(1, 0, 0, 0)),
                "b2": (StyleFeatures(1, 0, 0, 0), StyleFeatures(9, 0, 0, 0))}
    got = bt_style(log_, features)
    assert all(math.isfinite(v["rating"]) for v in got.ratings.values())
    assert math.isfinite(got.coefficients["length"]["elo"])
    with pytest.raises(ValueError, match="prior > 0"):
        bt_style(log_, features, prior=0, style_prior=0)


def test_bootstrap_is_deterministic_and_brackets_the_estimate_and_missing_texts_are_left_out():
    log_, features = length_judge_log()
    del features[log_[0].battle_id]
    one = bt_style(log_, features, rounds=30, seed=4)
    assert one == bt_style(log_, features, rounds=30, seed=4)
    assert (one.n_battles, one.left_out) == (len(log_) - 1, 1)
    for v in one.ratings.values():
        assert v["lo"] <= v["rating"] <= v["hi"]
    c = one.coefficients["length"]
    assert 0 < c["lo"] <= c["elo"] <= c["hi"]
    assert sum(one.battles_per_expert.values()) == 2 * one.n_battles
    assert bt_style(log_, {}).ratings == {}
    with pytest.raises(ValueError, match="rounds"):
        bt_style(log_, features, rounds=-1)


def test_leaderboard_rows_and_style_line():
    ratings = [{"expert": "a", "method": "bt", "rating": 1010.0, "lo": 1000.0, "hi": 1020.0, "n_battles": 3},
               {"expert": "a", "method": "bt_style", "rating": 990.0, "lo": 980.0, "hi": 1000.0, "n_battles": 3},
               {"expert": "a", "method": "elo", "rating": 1005.0, "lo": None, "hi": None, "n_battles": 3},
               {"expert": "bold", "method": "bt_style_coef", "rating": -3.0, "lo": None, "hi": None, "n_battles": 3},
               {"expert": "length", "method": "bt_style_coef", "rating": 35.2, "lo": 20.1, "hi": 50.3,
                "n_battles": 3}]
    rows = lb.expert_table([], ratings)
    assert [r["expert"] for r in rows] == ["a"]  # coefficients are not experts
    assert (rows[0]["bt_style"], rows[0]["bt_style_lo"], rows[0]["bt_style_hi"]) == (990.0, 980.0, 1000.0)
    coefs = lb.style_coefficients(ratings)
    assert [c["feature"] for c in coefs] == ["length", "bold"]
    assert lb.style_line(coefs) == "length +35.2 [+20.1, +50.3], bold -3.0 Elo per std"
    assert lb.style_line([]) == ""


# ------------------------------------------------------------------------------------------ the stage


def test_rate_stage_writes_style_controlled_rows(config):
    from warriorflow.stages.rate import rate_stage
    from warriorflow.store.rating_store import RatingStore

    log_, texts = length_judge_texts()
    responses, battles, votes = [], [], []
    for order, b in enumerate(log_):
        for side, expert, text in (("a", b.attacker, texts[b.battle_id][0]), ("d", b.defender, texts[b.battle_id][1])):
            responses.append({"response_id": f"r-{b.battle_id}-{side}", "instruction_id": b.instruction_id,
                              "expert": expert, "text": text, "sampling": {}, "run_id": "r1"})
        battles.append({"battle_id": b.battle_id, "instruction_id": b.instruction_id, "attacker": b.attacker,
                        "defender": b.defender, "attacker_response_id": f"r-{b.battle_id}-a",
                        "defender_response_id": f"r-{b.battle_id}-d", "battle_order": order, "status": "done",
                        "run_id": "r1"})
    # a battle whose responses were never stored (an imported log): rated, but not style-controlled
    battles.append({"battle_id": "no-texts", "instruction_id": "i-x", "attacker": "Y", "defender": "Z",
                    "battle_order": len(log_), "status": "done", "run_id": "r1"})
    for b in [*log_, bv("no-texts", "Y", "Z", "attacker")]:
        verdict = b.votes["judge"]
        votes.append({"vote_id": f"v-{b.battle_id}", "battle_id": b.battle_id, "judge": "judge",
                      "shown_order": "attacker_first", "verdict": verdict,
                      "raw_verdict": "A" if verdict == "attacker" else "B", "run_id": "r1"})
    with RatingStore(config.duckdb_path) as store:
        store.upsert("responses", responses, key=["response_id"])
        store.upsert("battles", battles, key=["battle_id"])
        store.upsert("votes", votes, key=["vote_id"])
        out = rate_stage(config, store, "r1")
        rows = store.query("SELECT method, expert, rating, lo, hi, n_battles FROM rating_history")
    assert out.counts["battles"] == len(log_) + 1 and out.counts["style_controlled_battles"] == len(log_)
    by = {(r["method"], r["expert"]): r for r in rows}
    assert {e for m, e in by if m == "bt_style"} == {"X", "Y", "Z"}
    assert {e for m, e in by if m == "bt_style_coef"} == {"length", "headers", "lists"}  # no bold anywhere
    for e in ("X", "Y", "Z"):
        r = by[("bt_style", e)]
        assert r["lo"] <= r["rating"] <= r["hi"]  # the default settings bootstrap
        assert r["n_battles"] == by[("bt", e)]["n_battles"] - (e != "X")  # the text-less battle is left out
    assert by[("bt_style", "X")]["rating"] < by[("bt", "X")]["rating"]  # X's long answers no longer count
    length = by[("bt_style_coef", "length")]
    assert length["n_battles"] == len(log_) and length["lo"] > 0
