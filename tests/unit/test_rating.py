"""Scoring (WarriorCoder step 5): local scores, Elo, final scores, gold, Bradley-Terry, interchange."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from warriorflow.method import rating as R
from warriorflow.method.rating import BattleTable, BattleVotes
from warriorflow.store import vote_log

A, D, T, X = "attacker", "defender", "tie", "invalid"


def bv(bid: str, att: str, dfd: str, *verdicts: str, inst: str = "i1") -> BattleVotes:
    return BattleVotes(bid, inst, att, dfd, {f"j{n}": v for n, v in enumerate(verdicts)})


def synthetic(strengths: np.ndarray, n: int, seed: int, tie_share: float = 0.3) -> tuple[np.ndarray, ...]:
    """Battles whose expected result is exactly the BT probability (so BT with half-ties is unbiased):
    P(tie) = tie_share * min(p, 1 - p), P(win) = p - P(tie)/2."""
    rng = np.random.default_rng(seed)
    m = len(strengths)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    p = 1.0 / (1.0 + 10.0 ** ((strengths[b] - strengths[a]) / 400.0))
    tie = tie_share * np.minimum(p, 1 - p)
    u = rng.random(n)
    s = np.where(u < p - tie / 2, 1.0, np.where(u < p + tie / 2, 0.5, 0.0))
    return a, b, s


def names(m: int) -> list[str]:
    return [f"e{i}" for i in range(m)]


# ---------------------------------------------------------------- local scores and battle results

@pytest.mark.parametrize("verdicts, local, result", [
    ((A, A, D), (2 / 3, 1 / 3), 1.0),
    ((D, D, A, T), (1 / 3, 2 / 3), 0.0),
    ((A, D, T, X), (0.5, 0.5), 0.5),
    ((T, T), (0.5, 0.5), 0.5),          # no decisive vote
    ((X, X, X), (0.5, 0.5), 0.5),       # every vote invalid
    ((), (0.5, 0.5), 0.5),              # no vote at all
    ((A, X, X, T), (1.0, 0.0), 1.0),    # ties and invalids are not counted
])
def test_local_scores_and_result(verdicts, local, result):
    b = bv("b", "p", "q", *verdicts)
    assert R.local_scores(b) == pytest.approx(local)
    assert R.battle_result(b) == result


def test_battle_votes_validates():
    with pytest.raises(ValueError, match="both"):
        bv("b", "p", "p", A)
    with pytest.raises(ValueError, match="unknown verdict"):
        bv("b", "p", "q", "A")


# ---------------------------------------------------------------- Elo

def three_battles() -> list[BattleVotes]:
    return [bv("b1", "a", "b", A, A, D), bv("b2", "b", "c", T, X), bv("b3", "c", "a", D, D, A)]


def test_elo_hand_computed():
    # b1: a beats b at 1000/1000: X = 0.5, delta = 40 * 0.5 = 20 -> a 1020, b 980.
    # b2: b (980) ties c (1000): X_b = 1 / (1 + 10^0.05) = 1 / 2.1220185 = 0.4712494,
    #     delta = 40 * (0.5 - 0.4712494) = 1.1500226 -> b 981.1500226, c 998.8499774.
    # b3: c (998.8499774) loses to a (1020): X_c = 1 / (1 + 10^(21.1500226 / 400)) = 0.4696015,
    #     delta = 40 * (0 - 0.4696015) = -18.784060 -> c 980.0659690, a 1038.7840085.
    elo = R.elo_fold(three_battles(), k=40, initial=1000)
    assert elo == pytest.approx({"a": 1038.7840085, "b": 981.1500226, "c": 980.0659690}, abs=1e-6)
    assert sum(elo.values()) == pytest.approx(3000)  # zero-sum updates


def test_elo_history_and_expected():
    hist = R.elo_history(three_battles())
    assert len(hist) == 3
    assert hist[0] == {"a": 1020.0, "b": 980.0}
    assert hist[-1] == R.elo_fold(three_battles())
    assert R.expected(1000, 1000) == 0.5
    assert R.expected(1400, 1000) == pytest.approx(10 / 11)
    assert R.expected(1100, 1000) + R.expected(1000, 1100) == pytest.approx(1.0)


def test_elo_order_matters_and_k_initial():
    fwd = R.elo_fold(three_battles())
    rev = R.elo_fold(three_battles()[::-1])
    assert fwd != rev
    assert R.elo_fold([bv("b", "a", "b", A)], k=10, initial=1500) == {"a": 1505.0, "b": 1495.0}
    assert R.elo_fold([]) == {}


# ---------------------------------------------------------------- final scores and gold

def test_final_scores_average_over_opponents():
    battles = [bv("b1", "a", "b", A, A, D), bv("b2", "a", "c", T), bv("b3", "b", "c", A, inst="i2")]
    elo = {"a": 1100.0, "b": 1000.0, "c": 1000.0}
    final = R.final_scores(battles, elo, alpha=0.7)
    x = 1 / (1 + 10 ** -0.25)  # a's Elo expectation against b or c: 0.6400650
    assert final["i1"]["a"] == pytest.approx(((0.7 * x + 0.3 * 2 / 3) + (0.7 * x + 0.3 * 0.5)) / 2)
    assert final["i1"]["b"] == pytest.approx(0.7 * (1 - x) + 0.3 / 3)
    assert final["i1"]["c"] == pytest.approx(0.7 * (1 - x) + 0.3 * 0.5)
    assert final["i2"] == pytest.approx({"b": 0.7 * 0.5 + 0.3, "c": 0.7 * 0.5})
    assert R.final_scores(battles, elo, alpha=1.0)["i2"] == {"b": 0.5, "c": 0.5}
    assert R.final_scores(battles, elo, alpha=0.0)["i1"]["b"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no Elo rating"):
        R.final_scores(battles, {"a": 1000.0})


def test_response_scores_are_the_final_scores_and_their_parts():
    battles = [bv("b1", "a", "b", A, A, D), bv("b2", "a", "c", T), bv("b3", "b", "c", A, inst="i2")]
    elo = {"a": 1100.0, "b": 1000.0, "c": 1000.0}
    scores = R.response_scores(battles, elo, alpha=0.7)
    assert {i: {e: s.final for e, s in per.items()} for i, per in scores.items()} == R.final_scores(battles, elo, 0.7)
    x = 1 / (1 + 10 ** -0.25)
    a = scores["i1"]["a"]
    assert a.battles == 2 and a.elo_expectation == pytest.approx(x) and a.local == pytest.approx((2 / 3 + 0.5) / 2)
    assert scores["i2"]["c"] == R.ResponseScore(0.7 * 0.5, 0.5, 0.0, 1)
    for per in scores.values():
        for s in per.values():
            assert s.final == pytest.approx(0.7 * s.elo_expectation + 0.3 * s.local)


def test_gold_ties_go_to_shorter_then_name():
    final = {"i1": {"b": 0.6, "a": 0.6, "c": 0.2}, "i2": {"x": 0.7, "y": 0.6}, "i3": {"p": 0.5, "q": 0.5 + 1e-13}}
    assert R.select_gold(final) == {"i1": "a", "i2": "x", "i3": "p"}
    lengths = {("i1", "a"): 90, ("i1", "b"): 40, ("i1", "c"): 1, ("i3", "q"): 5, ("i3", "p"): 6}
    assert R.select_gold(final, lengths) == {"i1": "b", "i2": "x", "i3": "q"}
    assert R.select_gold(final, {("i1", "b"): 40}) == {"i1": "b", "i2": "x", "i3": "p"}  # unknown length last
    assert R.select_gold({"i": {"a": 0.5, "b": 0.5 + 1e-9}}, {("i", "a"): 1}) == {"i": "b"}  # not a tie


# ---------------------------------------------------------------- Bradley-Terry

def test_bt_recovers_known_strengths():
    true = np.array([1200.0, 1100.0, 1000.0, 950.0, 750.0])
    a, b, s = synthetic(true, 400_000, seed=3)
    table = BattleTable.from_arrays(a, b, s, names(5))
    est = R.bt_mle(table)
    want = true - true.mean() + 1000
    got = np.array([est[f"e{i}"] for i in range(5)])
    assert sorted(est, key=est.get, reverse=True) == names(5)
    assert np.abs(got - want).max() < 4.0
    assert got.mean() == pytest.approx(1000)


def fastchat_mle(a, b, s, m):
    """FastChat compute_mle_elo, independently: rows duplicated, a tie is one win each way."""
    rows_a = np.concatenate([a, a])
    rows_b = np.concatenate([b, b])
    y = np.concatenate([s >= 0.5, s > 0.5]).astype(float)  # win twice, tie once, loss never
    def loss(w):
        z = math.log(10) * (w[rows_a] - w[rows_b])
        g = y - expit(z)
        grad = np.zeros(m)
        np.add.at(grad, rows_a, -g * math.log(10))
        np.add.at(grad, rows_b, g * math.log(10))
        return -(y * log_expit(z) + (1 - y) * log_expit(-z)).sum(), grad
    res = minimize(loss, np.zeros(m), jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15,
                                                                             "maxiter": 10_000})
    r = 400 * res.x
    return r - r.mean() + 1000


def test_bt_matches_fastchat_mle_with_ties_counting_half():
    a, b, s = synthetic(np.array([1100.0, 1000.0, 900.0, 1050.0]), 3000, seed=5, tie_share=0.6)
    battles = [BattleVotes(f"b{n}", "i", f"e{x}", f"e{y}", {"j": {1.0: A, 0.5: T, 0.0: D}[v]})
               for n, (x, y, v) in enumerate(zip(a, b, s))]
    ours = R.bt_mle(battles, prior=0)
    ref = fastchat_mle(a, b, s, 4)
    assert [ours[f"e{i}"] for i in range(4)] == pytest.approx(list(ref), abs=1e-3)
    # the default prior (0.01 virtual ties per pair) moves ratings by far less than a point here
    assert R.bt_mle(battles) == pytest.approx(ours, abs=0.05)
    # the table from BattleVotes equals the one from arrays
    assert R.bt_mle(BattleTable.from_arrays(a, b, s, names(4)), prior=0) == pytest.approx(ours, abs=1e-9)


def test_bt_undefeated_expert_needs_prior():
    battles = [bv("1", "a", "b", A), bv("2", "b", "c", A), bv("3", "c", "b", A), bv("4", "a", "c", D, A, A)]
    with pytest.raises(ValueError, match="does not exist"):
        R.bt_mle(battles, prior=0)
    est = R.bt_mle(battles)
    assert all(math.isfinite(v) for v in est.values())
    assert est["a"] > est["b"] and est["a"] > est["c"]
    assert sum(est.values()) / 3 == pytest.approx(1000)


def test_bt_anchor_and_disconnected_groups():
    battles = [bv("1", "a", "b", A), bv("2", "b", "a", T), bv("3", "c", "d", D), bv("4", "d", "c", T)]
    est = R.bt_mle(battles, anchor=("b", 1114.0))
    assert est["b"] == pytest.approx(1114.0)
    assert est["a"] - est["b"] == pytest.approx(R.bt_mle(battles)["a"] - R.bt_mle(battles)["b"])
    assert est["a"] > est["b"] and est["d"] > est["c"]
    with pytest.raises(ValueError):
        R.bt_mle(battles, prior=0)  # two groups that never met: no MLE
    with pytest.raises(ValueError, match="anchor"):
        R.bt_mle(battles, anchor=("zz", 1000.0))
    assert R.bt_mle([]) == {}


def test_bootstrap_ci_contains_estimate_narrows_and_is_deterministic():
    true = np.array([1100.0, 1000.0, 950.0])
    widths = []
    for n in (2_000, 32_000):
        a, b, s = synthetic(true, n, seed=7)
        table = BattleTable.from_arrays(a, b, s, names(3))
        boot = R.bt_bootstrap(table, rounds=200, seed=1)
        mle = R.bt_mle(table)
        for name, v in boot.items():
            assert v["rating"] == pytest.approx(mle[name], abs=1e-9)
            assert v["lo"] < v["rating"] < v["hi"]
        widths.append(np.mean([v["hi"] - v["lo"] for v in boot.values()]))
        assert R.bt_bootstrap(table, rounds=200, seed=1) == boot
        assert R.bt_bootstrap(table, rounds=200, seed=2) != boot
    assert widths[1] < widths[0] / 2.5  # 16x the data: about 1/4 the width
    none = R.bt_bootstrap(table, rounds=0)
    assert all(v["lo"] is None and v["hi"] is None for v in none.values())


def test_bootstrap_counts_are_multinomial_resamples():
    a, b, s = synthetic(np.array([1000.0, 1100.0, 900.0]), 5000, seed=2)
    table = BattleTable.from_arrays(a, b, s, names(3))
    counts = R.bootstrap_counts(table, 4, seed=0)
    assert counts.shape == (4, len(table.count)) and (counts.sum(axis=1) == 5000).all()
    # a round fitted from counts equals the MLE of the same resample given as battles
    rows = np.repeat(np.arange(len(table.count)), counts[0])
    resample = BattleTable.from_arrays(table.a[rows], table.b[rows], table.s[rows], list(table.experts))
    per_round = R.fit_bt_counts(table, counts)
    assert per_round[0] == pytest.approx(R.fit_bt_counts(resample), abs=1e-8)


# ---------------------------------------------------------------- win rates

def test_win_rate_matrix_and_counts():
    battles = [bv("1", "a", "b", A), bv("2", "b", "a", D), bv("3", "b", "a", T, X), bv("4", "c", "a", D, A, A),
               bv("5", "a", "c", X)]
    experts, wr = R.win_rate_matrix(battles)
    assert experts == ["a", "b", "c"]
    assert wr[0][1] == pytest.approx(2.5 / 3) and wr[1][0] == pytest.approx(0.5 / 3)
    assert wr[0][2] == pytest.approx(0.5 / 2) and wr[2][0] == pytest.approx(1.5 / 2)
    assert wr[1][2] is None and wr[2][1] is None and wr[0][0] is None
    assert R.battle_counts(battles) == (["a", "b", "c"], [[0, 3, 2], [3, 0, 0], [2, 0, 0]])


# ---------------------------------------------------------------- interchange

def log_lines(battles) -> list[str]:
    return [vote_log.battle_log_line(b) for b in battles]


def test_parse_battle_log_round_trip():
    battles = three_battles()
    assert vote_log.parse_battle_log(log_lines(battles) + ["", "  \n"]) == battles


@pytest.mark.parametrize("line, match", [
    ('{"battle_id": "x"', "line 2: bad JSON"),
    ('[1, 2]', "line 2: expected a JSON object"),
    ('{"battle_id": "x", "instruction_id": "i", "attacker": "a", "defender": "b"}', "line 2: missing key.*votes"),
    ('{"battle_id": "x", "instruction_id": "i", "attacker": "a", "defender": "b", "votes": {"j": "A"}}',
     "line 2: .*unknown verdict 'A'"),
    ('{"battle_id": "x", "instruction_id": "i", "attacker": "a", "defender": "a", "votes": {}}', "line 2: .*both"),
    ('{"battle_id": "x", "instruction_id": "i", "attacker": "a", "defender": "b", "votes": ["tie"]}',
     "line 2: votes must be an object"),
    ('{"battle_id": 3, "instruction_id": "i", "attacker": "a", "defender": "b", "votes": {}}',
     "line 2: battle_id must be a string"),
    ('{"battle_id": "b1", "instruction_id": "i", "attacker": "a", "defender": "b", "votes": {}}',
     "line 2: battle_id 'b1' repeats line 1"),
])
def test_parse_errors_name_the_line(line, match):
    with pytest.raises(ValueError, match=match):
        vote_log.parse_battle_log([vote_log.battle_log_line(three_battles()[0]), line])


def test_fastchat_round_trip():
    battles = three_battles() + [bv("b4", "a", "c", X, X)]
    rows = R.to_fastchat(battles)
    assert [r["winner"] for r in rows] == ["model_a", "tie", "model_b", "tie"]
    assert rows[0] == {"model_a": "a", "model_b": "b", "winner": "model_a", "question_id": "i1", "battle_id": "b1",
                       "votes": {"j0": A, "j1": A, "j2": D}}
    assert R.from_fastchat(rows) == battles
    bare = [{k: v for k, v in r.items() if k != "votes"} for r in rows]
    back = R.from_fastchat(bare + [{"model_a": "x", "model_b": "y", "winner": "tie (bothbad)"}])
    assert [R.battle_result(b) for b in back] == [1.0, 0.5, 0.0, 0.5, 0.5]
    assert back[-1].battle_id == "fastchat-4" and back[-1].votes == {"fastchat": T}
    assert R.elo_fold(back[:4]) == R.elo_fold(battles)
    with pytest.raises(ValueError, match="unknown winner"):
        R.from_fastchat([{"model_a": "x", "model_b": "y", "winner": "model_c"}])
    with pytest.raises(ValueError, match="disagrees"):
        R.from_fastchat([dict(rows[0], winner="model_b")])


# ---------------------------------------------------------------- rate()

def test_rate_output_schema():
    battles = three_battles() + [bv("b4", "a", "c", A, X, inst="i2")]
    out = R.rate(battles, k=40, alpha=0.7, initial=1000, bootstrap_rounds=20, seed=0)
    assert set(out) == {"elo", "bt", "final", "gold", "invalid_votes"}
    assert out["elo"] == R.elo_fold(battles)
    assert set(out["bt"]) == {"a", "b", "c"}
    assert all(set(v) == {"rating", "lo", "hi"} for v in out["bt"].values())
    assert out["final"] == R.final_scores(battles, out["elo"], 0.7)
    assert set(out["final"]) == set(out["gold"]) == {"i1", "i2"}
    assert out["gold"] == R.select_gold(out["final"])
    assert out["invalid_votes"] == 2
    assert json.loads(json.dumps(out)) == out
    assert R.rate(battles, bootstrap_rounds=20, seed=0) == out
    assert R.rate([], bootstrap_rounds=5) == {"elo": {}, "bt": {}, "final": {}, "gold": {}, "invalid_votes": 0}


def test_pair_tables_of_an_empty_battle_log_are_empty():
    from warriorflow.method.rating import battle_counts, win_rate_matrix

    assert win_rate_matrix([]) == ([], [])
    assert battle_counts([]) == ([], [])
