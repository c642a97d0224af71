"""The vote log built in SQL (store/vote_log.py open_log) against the reference: the per-battle Python reading of
the log it replaced (judge_vote per judge, execution_verdicts, calibrated weights), on random stores that mix
probabilistic and discrete votes, invalid halves, competitor votes, execution evidence, calibrated weights,
missing battle orders and awkward names. Everything the rate and gold steps use must be identical: the
effective votes and weights, the version hash, Elo, the Bradley-Terry cells and the final scores."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from warriorflow.config import ArenaSettings
from warriorflow.method import ids
from warriorflow.method import votes as V
from warriorflow.method.battle_jobs import vote_rule
from warriorflow.method.rating import BattleVotes, battle_table, elo_fold, response_scores
from warriorflow.store.executions import execution_verdicts
from warriorflow.store.rating_store import RatingStore
from warriorflow.store.vote_log import (
    calibrated_weights,
    cast_vote,
    judge_priors,
    log_version,
    open_log,
    vote_counts,
    vote_log,
)


def reference_vote_log(store: RatingStore, arena: ArenaSettings) -> list[BattleVotes]:
    """The vote log as warriorflow read it before it was built in SQL, object by object."""
    rule = vote_rule(arena)
    priors = judge_priors(store) if rule.enabled and rule.debias else {}
    calibrated = calibrated_weights(store) if arena.votes.judge_weights == "calibrated" else {}
    ex = arena.execution
    executed = execution_verdicts(store) if ex.enabled and ex.vote else {}
    battles = store.query("SELECT battle_id, instruction_id, attacker, defender FROM battles "
                          "WHERE status = 'done' ORDER BY battle_order, battle_id")
    per: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for v in store.query("SELECT v.battle_id, v.judge, v.verdict, v.shown_order, v.p_a, v.p_b, v.p_tie "
                         "FROM votes v JOIN battles b USING (battle_id) "
                         "WHERE v.judge NOT IN (b.attacker, b.defender) AND b.status = 'done' "
                         "ORDER BY v.battle_id, v.judge, v.shown_order"):
        per[v["battle_id"]][v["judge"]].append(cast_vote(v))
    out = []
    for b in battles:
        votes = {j: V.judge_vote(vs, rule, priors.get(j, 0.0)) for j, vs in sorted(per[b["battle_id"]].items())}
        weights = {j: calibrated[j] for j in votes if j in calibrated}
        if b["battle_id"] in executed and V.EXECUTION_JUDGE not in votes:
            votes[V.EXECUTION_JUDGE] = executed[b["battle_id"]]
            if ex.vote_weight != 1.0:
                weights[V.EXECUTION_JUDGE] = ex.vote_weight
        out.append(BattleVotes(b["battle_id"], b["instruction_id"], b["attacker"], b["defender"], votes,
                               weights or None))
    return out


EXPERTS = ["alpha", "beta", "gämma", 'q"uote', "zeta"]
STATUSES = ["ok", "ok", "ok", "error", "timeout", "sandbox_error", "no_code", "syntax_error"]


def random_store(store: RatingStore, seed: int) -> None:
    rnd = random.Random(seed)
    n_ins, n_battles = 12, 60
    store.upsert("instructions", [{"instruction_id": f"i{i}", "text": f"t{i}", "expert": rnd.choice(EXPERTS),
                                   "mined_at": "2026-01-01", "run_id": "r", "status": "selected"}
                                  for i in range(n_ins)], key=["instruction_id"])
    battles, votes, executions, responses = [], [], [], []
    for n in range(n_battles):
        att, dfn = rnd.sample(EXPERTS, 2)
        bid = rnd.choice([f"b{n:03d}", f"b{n}-ü", f'b{n}"\\x', f"b{n}"])
        iid = f"i{rnd.randrange(n_ins)}"
        order = None if rnd.random() < 0.1 else rnd.randrange(40)
        status = "done" if rnd.random() < 0.9 else "planned"
        battles.append({"battle_id": bid, "instruction_id": iid, "attacker": att, "defender": dfn, "status": status,
                        "battle_order": order, "run_id": "r", "judges": [],
                        "attacker_response_id": f"{iid}-{att}", "defender_response_id": f"{iid}-{dfn}"})
        for judge in rnd.sample(EXPERTS + ["execution"], rnd.randrange(0, 5)):
            probabilistic = rnd.random() < 0.6
            for shown in rnd.sample([V.ATTACKER_FIRST, V.DEFENDER_FIRST], rnd.choice([1, 2])):
                raw = rnd.choice(["A", "B", "tie", "invalid"] if not probabilistic else ["A", "B", "tie"])
                probs = (None, None, None)
                if probabilistic and rnd.random() < 0.9:
                    x = [rnd.choice([0.0, 1e-9, 0.05, 0.25, 0.45, 0.5, 0.55, 0.9]) for _ in range(3)]
                    if sum(x) == 0:
                        x = [1.0, 0.0, 0.0]
                    probs = tuple(v / sum(x) for v in x)
                votes.append({"vote_id": ids.vote_id(bid, judge, shown), "battle_id": bid, "judge": judge,
                              "shown_order": shown, "raw_verdict": raw, "verdict": V.to_competitor(raw, shown),
                              "p_a": probs[0], "p_b": probs[1], "p_tie": probs[2], "run_id": "r"})
        if rnd.random() < 0.6:
            for role in ("attacker", "defender"):
                total = rnd.randrange(0, 4)
                executions.append({
                    "battle_id": bid, "role": role, "response_id": f"{bid}-{role}", "code_task": rnd.random() < 0.9,
                    "has_code": rnd.random() < 0.8, "status": rnd.choice(STATUSES), "tests_total": total,
                    "tests_passed": rnd.randrange(0, total + 1), "instruction_total": total,
                    "instruction_passed": rnd.randrange(0, total + 1), "attacker_total": 0, "attacker_passed": 0,
                    "defender_total": 0, "defender_passed": 0, "runs": 1, "seconds": 0.1, "details": "{}",
                    "run_id": "r"})
        for e in (att, dfn):
            responses.append({"response_id": f"{iid}-{e}", "instruction_id": iid, "expert": e,
                              "text": "x" * rnd.randrange(1, 5), "sampling": "{}", "run_id": "r"})
    store.upsert("battles", battles, key=["battle_id"])
    store.upsert("votes", votes, key=["vote_id"])
    store.upsert("executions", executions, key=["battle_id", "role"])
    store.upsert("responses", responses, key=["response_id"])
    for judge in rnd.sample(EXPERTS + ["execution"], 3):
        store.upsert("judge_calibrations", [{"calibration_id": "c1", "judge": judge, "pairs": 10,
                                             "accuracy": rnd.choice([0.55, 0.7, 0.85, 1.0, 0.1 + 0.2]),
                                             "metrics": {}, "pairs_source": "p"}],
                     key=["calibration_id", "judge"])


ARENAS = [
    {},
    {"votes": {"probabilities": False}},
    {"votes": {"debias": False, "margin": 0.0}},
    {"votes": {"judge_weights": "calibrated"}, "execution": {"vote_weight": 2.5}},
    {"votes": {"judge_weights": "calibrated", "margin": 0.3}, "execution": {"vote": False}},
    {"execution": {"enabled": False}},
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("arena", ARENAS)
def test_the_sql_log_is_the_reference_log(tmp_path, seed, arena):
    settings = ArenaSettings.model_validate(arena)
    with RatingStore(tmp_path / "s.duckdb") as store:
        random_store(store, seed)
        want = reference_vote_log(store, settings)
        got = vote_log(store, settings)
        assert got == want
        assert [dict(b.votes) for b in got] == [dict(b.votes) for b in want]  # and in the same order
        assert [b.weights and list(b.weights.items()) for b in got] == [b.weights and list(b.weights.items())
                                                                        for b in want]
        with open_log(store, settings) as log:
            assert log.version() == log_version(want)
            assert log.elo(k=32.0, initial=1000.0) == elo_fold(want, k=32.0, initial=1000.0)
            assert list(log.elo(k=32.0, initial=1000.0)) == list(elo_fold(want, k=32.0, initial=1000.0))
            if want:
                table, cells = battle_table(want), log.cells()
                assert table.experts == cells.experts
                for f in ("a", "b", "s", "count"):
                    assert np.array_equal(getattr(table, f), getattr(cells, f))
            counts = log.counts()
            assert {k: counts[k] for k in vote_counts(store, want)} == vote_counts(store, want)
            assert counts["invalid_effective_votes"] == sum(v == "invalid" for b in want for v in b.votes.values())
            elo = elo_fold(want)
            assert log.response_scores(elo, alpha=0.7) == response_scores(want, elo, alpha=0.7)


def test_an_empty_log(tmp_path):
    with RatingStore(tmp_path / "s.duckdb") as store, open_log(store) as log:
        assert log.n_battles == 0 and log.experts == ()
        assert log.version() == log_version([])
        assert log.elo(k=40.0, initial=1000.0) == {}
        assert log.counts()["battles"] == 0
        assert log.response_scores({}, alpha=0.7) == {}


@pytest.mark.parametrize("seed", range(4))
def test_rate_and_gold_steps_store_the_reference_numbers(tmp_path, config, seed):
    """The rate and gold steps, run on the log in SQL, store what the object-by-object functions give on the
    reference log: Elo, Bradley-Terry with its bootstrap CI, every response's scores and the gold choice."""
    from warriorflow.method.rating import bt_bootstrap, select_gold
    from warriorflow.stages.gold import gold_stage
    from warriorflow.stages.rate import rate_stage

    r = config.settings.rating
    with RatingStore(tmp_path / "s.duckdb") as store:
        random_store(store, seed)
        want = reference_vote_log(store, config.settings.arena)
        version = rate_stage(config, store, "run").value
        assert version == log_version(want)
        rows = {(x["method"], x["expert"]): x for x in store.query(
            "SELECT * FROM rating_history WHERE rating_version = ?", [version])}
        elo = elo_fold(want, k=r.k, initial=r.initial)
        assert {e: rows[("elo", e)]["rating"] for e in elo} == elo
        for e, v in bt_bootstrap(want, rounds=r.bootstrap_rounds, seed=r.seed, initial=r.initial).items():
            assert (rows[("bt", e)]["rating"], rows[("bt", e)]["lo"], rows[("bt", e)]["hi"]) == (
                v["rating"], v["lo"], v["hi"])
        gold_stage(config, store, "run")
        scores = response_scores(want, elo, alpha=r.alpha)
        stored = {(x["instruction_id"], x["expert"]): x for x in store.query("SELECT * FROM response_scores")}
        assert set(stored) == {(i, e) for i, per in scores.items() for e in per}
        for (i, e), x in stored.items():
            s = scores[i][e]
            assert (x["final_score"], x["elo_expectation"], x["local_score"], x["n_battles"]) == (
                s.final, s.elo_expectation, s.local, s.battles)
        lengths = {(x["instruction_id"], x["expert"]): x["n"] for x in store.query(
            "SELECT instruction_id, expert, length(text) AS n FROM responses")}
        gold = select_gold({i: {e: s.final for e, s in per.items()} for i, per in scores.items()}, lengths)
        got = {x["instruction_id"]: x["expert"] for x in store.query("SELECT * FROM gold_selections")}
        assert got == gold


def test_style_controlled_rows_are_bt_style_on_the_reference_log(tmp_path, config):
    from warriorflow.method.style_control import bt_style, style_features
    from warriorflow.stages.rate import rate_stage

    r = config.settings.rating
    with RatingStore(tmp_path / "s.duckdb") as store:
        random_store(store, 11)
        store.con.execute("UPDATE responses SET text = repeat('word ', length(response_id)) || "
                          "CASE WHEN hash(response_id) % 3 = 0 THEN '\n# head\n- a\n- b **bold**' ELSE '' END")
        want = reference_vote_log(store, config.settings.arena)
        texts = {x["response_id"]: x["text"] for x in store.query("SELECT response_id, text FROM responses")}
        pairs = {x["battle_id"]: (style_features(texts[x["attacker_response_id"]]),
                                  style_features(texts[x["defender_response_id"]]))
                 for x in store.query("SELECT * FROM battles WHERE status = 'done'")}
        version = rate_stage(config, store, "run").value
        styled = bt_style(want, pairs, rounds=r.bootstrap_rounds, seed=r.seed, initial=r.initial)
        rows = {x["expert"]: x for x in store.query(
            "SELECT * FROM rating_history WHERE rating_version = ? AND method = 'bt_style'", [version])}
        assert set(rows) == set(styled.ratings)
        for e, v in styled.ratings.items():
            assert (rows[e]["rating"], rows[e]["lo"], rows[e]["hi"], rows[e]["n_battles"]) == (
                v["rating"], v["lo"], v["hi"], styled.battles_per_expert[e])
        assert rate_stage(config, store, "again").counts["style_counts_computed"] == 0  # computed once


def test_gold_reads_the_log_rate_saved_only_while_its_inputs_are_unchanged(tmp_path, config):
    from warriorflow.errors import StoreError
    from warriorflow.stages.gold import gold_stage
    from warriorflow.stages.rate import rate_stage
    from warriorflow.store.vote_log import log_fingerprint, open_saved_log

    with RatingStore(tmp_path / "s.duckdb") as store:
        random_store(store, 5)
        version = rate_stage(config, store, "run").value
        fingerprint = log_fingerprint(store, config.settings.arena)
        with open_saved_log(store, fingerprint) as saved:
            assert saved is not None and saved.version() == version
            assert saved.n_battles == len(reference_vote_log(store, config.settings.arena))
        other = config.settings.arena.model_copy(update={"votes": config.settings.arena.votes.model_copy(
            update={"margin": 0.3})})
        assert log_fingerprint(store, other) != fingerprint  # the rules are part of it
        gold_stage(config, store, "run")
        battle = store.query("SELECT battle_id FROM battles WHERE status = 'done' LIMIT 1")[0]["battle_id"]
        store.upsert("votes", [{"vote_id": "new-vote", "battle_id": battle, "judge": "zeta2", "shown_order":
                                V.ATTACKER_FIRST, "raw_verdict": "A", "verdict": V.ATTACKER, "run_id": "r"}],
                     key=["vote_id"])
        assert log_fingerprint(store, config.settings.arena) != fingerprint
        with open_saved_log(store, log_fingerprint(store, config.settings.arena)) as saved:
            assert saved is None
        with pytest.raises(StoreError, match="have not been computed"):
            gold_stage(config, store, "run")  # a new vote: a new log, not rated yet
