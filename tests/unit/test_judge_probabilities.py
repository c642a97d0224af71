"""Probabilistic, order-debiased votes: choice probabilities from token logprobs, the first-position
prior, the decision rule, forged probabilities, weighted votes, and the vote log's SQL priors."""

from __future__ import annotations

import math

import pytest

from warriorflow.config import ArenaSettings
from warriorflow.inference.openai_format import chat_body, parse_chat, parse_completion, parse_logprobs
from warriorflow.method import votes as V
from warriorflow.method.backend import Sampling, TokenLogprobs
from warriorflow.method.battle_records import check_battle_records
from warriorflow.method.judging import VERDICT_CHOICES, choice_probabilities, verdict_probabilities
from warriorflow.method.rating import BattleVotes, battle_result, local_scores
from warriorflow.store.vote_log import battle_log_line, judge_priors, parse_battle_log, vote_log


def tl(token, lp, *alts):
    return TokenLogprobs(token, lp, tuple(alts))


# Qwen2.5-Coder-0.5B's real output on a judge prompt (llama.cpp, grammar on, raw logprobs)
QWEN = (tl("[[", -0.688, ("[[", -0.688), ("[", -1.76), ("The", -2.89), ("[T", -3.54), ("T", -4.49)),
        tl("A", -0.783, ("A", -0.783), ("B", -0.879), ("T", -2.308), ("C", -4.49)),
        tl("]]", -0.325, ("]]", -0.325), ("]]\n\n", -1.77)))


def test_choice_probabilities_from_the_divergence_token():
    p = choice_probabilities(QWEN)
    a, b, t = math.exp(-0.783), math.exp(-0.879), math.exp(-2.308)
    assert p["[[A]]"] == pytest.approx(a / (a + b + t))
    assert p["[[B]]"] == pytest.approx(b / (a + b + t))
    assert p["[[Tie]]"] == pytest.approx(t / (a + b + t))
    assert sum(p.values()) == pytest.approx(1.0)
    assert verdict_probabilities(QWEN) == pytest.approx((p["[[A]]"], p["[[B]]"], p["[[Tie]]"]))


def test_a_token_owning_one_choice_before_the_divergence_counts_with_its_own_probability():
    # "[[B" at position 0 belongs to [[B]] only; it adds P("[[B") directly, the rest flows through "[["
    gen = (tl("[[", math.log(0.5), ("[[", math.log(0.5)), ("[[B", math.log(0.25))),
           tl("A", math.log(0.5), ("A", math.log(0.5)), ("B", math.log(0.25)), ("Tie", math.log(0.25))),
           tl("]]", 0.0))
    p = choice_probabilities(gen)
    raw = {"[[A]]": 0.5 * 0.5, "[[B]]": 0.25 + 0.5 * 0.25, "[[Tie]]": 0.5 * 0.25}
    total = sum(raw.values())
    for c in VERDICT_CHOICES:
        assert p[c] == pytest.approx(raw[c] / total)


@pytest.mark.parametrize("positions", [
    None, (),
    (tl("Response", -0.1, ("Response", -0.1), ("The", -2.0)),),  # free text: never on the choices' path
    (tl("[[", float("nan"), ("[[", float("nan"))),),
    (tl("[[", -0.1), tl("C", -0.2, ("C", -0.2), ("D", -1.0))),  # left the choices at the divergence
])
def test_no_probabilities_when_the_output_never_follows_the_choices(positions):
    assert choice_probabilities(positions) is None


def test_a_choice_missing_from_the_top_alternatives_gets_half_the_smallest_reported_probability():
    gen = (tl("[[", -0.1), tl("A", -0.05, ("A", -0.05), ("Answer", -3.0)), tl("]]", 0.0))
    p = choice_probabilities(gen)
    floor = math.exp(-3.0) / 2
    total = math.exp(-0.05) + 2 * floor
    assert p["[[A]]"] == pytest.approx(math.exp(-0.05) / total)
    assert p["[[B]]"] == p["[[Tie]]"] == pytest.approx(floor / total)
    assert sum(p.values()) == pytest.approx(1.0)
    # so a judge's log-odds stay finite and bounded by what the engine reported
    assert math.log(p["[[A]]"] / p["[[B]]"]) < 3.0 + math.log(2) + 1e-9


def test_openai_chat_logprobs_are_parsed_and_asked_for():
    body = chat_body("m", [{"role": "user", "content": "x"}], Sampling(choices=VERDICT_CHOICES, top_logprobs=5),
                     "vllm")
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    assert "logprobs" not in chat_body("m", [{"role": "user", "content": "x"}], Sampling(), "vllm")
    resp = {"choices": [{"message": {"content": "[[B]]"}, "finish_reason": "stop", "logprobs": {"content": [
        {"token": "[[", "logprob": -0.1, "top_logprobs": [{"token": "[[", "logprob": -0.1}]},
        {"token": "B", "logprob": -0.2, "top_logprobs": [{"token": "B", "logprob": -0.2},
                                                          {"token": "A", "logprob": -1.9}, {"token": 7}]},
        {"token": "]]", "logprob": 0.0, "top_logprobs": []}]}}]}
    gen = parse_chat(resp, "judge")
    assert [t.token for t in gen.logprobs] == ["[[", "B", "]]"]
    assert gen.logprobs[1].top == (("B", -0.2), ("A", -1.9))  # a malformed alternative is skipped
    probs = verdict_probabilities(gen.logprobs)
    assert probs[1] > probs[0] > probs[2] > 0.0  # [[Tie]] was not reported: a floor, not zero


def test_legacy_completion_logprobs_and_garbage():
    resp = {"choices": [{"text": "[[A]]", "logprobs": {"tokens": ["[[", "A", "]]"],
                                                       "token_logprobs": [-0.1, -0.3, 0.0],
                                                       "top_logprobs": [{"[[": -0.1}, {"A": -0.3, "B": -1.4},
                                                                        {"]]": 0.0}]}}]}
    gen = parse_completion(resp, "judge")
    probs = verdict_probabilities(gen.logprobs)
    assert probs[0] == max(probs) and probs[0] > 0.6
    for bad in ({"content": [{"token": "[[", "logprob": "x"}]}, {"content": [5]}, "nope",
                {"tokens": ["a"], "token_logprobs": [None]}, {"tokens": ["a", "b"], "token_logprobs": [-1.0]}):
        assert parse_logprobs({"logprobs": bad}) is None
    assert parse_chat({"choices": [{"message": {"content": "[[A]]"}}]}, "judge").logprobs is None


# ------------------------------------------------------------------------------------------ the rule
def cast(order, p_first, p_second, p_tie=0.0, verdict=None):
    if verdict is None:
        raw = "A" if p_first >= max(p_second, p_tie) else "B" if p_second >= p_tie else "tie"
        verdict = V.to_competitor(raw, order)
    return V.CastVote(verdict, order, (p_first, p_second, p_tie))


def test_a_pure_position_bias_is_a_tie_and_content_survives_debiasing():
    rule = V.ProbabilisticRule(margin=0.1)
    # always 0.9 for whatever is shown first: no content preference at all
    biased = [cast(V.ATTACKER_FIRST, 0.9, 0.1), cast(V.DEFENDER_FIRST, 0.9, 0.1)]
    beta = V.first_position_prior([v.probs for v in biased])
    assert beta == pytest.approx(math.log(9))
    assert V.judge_vote(biased, rule, beta) == V.TIE
    assert V.effective_vote([v.verdict for v in biased]) == V.TIE  # the discrete rule sees a flip
    # biased towards the first position, but prefers the defender in both orders after the prior is removed
    judge = [cast(V.ATTACKER_FIRST, 0.7, 0.3), cast(V.DEFENDER_FIRST, 0.97, 0.03)]
    prior = V.first_position_prior([v.probs for v in judge] + [(0.9, 0.1, 0.0)] * 4)
    assert V.effective_vote([v.verdict for v in judge]) == V.TIE  # discrete: a flip, so a tie
    assert V.judge_vote(judge, rule, prior) == V.DEFENDER
    assert V.preference(judge, prior) < -0.1


def test_one_order_mode_needs_the_prior():
    rule = V.ProbabilisticRule(margin=0.2)
    one = [cast(V.ATTACKER_FIRST, 0.8, 0.2)]
    assert V.judge_vote(one, rule, 0.0) == V.ATTACKER
    assert V.judge_vote(one, rule, math.log(4)) == V.TIE  # 0.8/0.2 is exactly this judge's prior
    assert V.judge_vote(one, V.ProbabilisticRule(margin=0.2, debias=False), math.log(4)) == V.ATTACKER


def test_margin_decides_between_win_and_tie():
    votes = [cast(V.ATTACKER_FIRST, 0.6, 0.4), cast(V.DEFENDER_FIRST, 0.4, 0.6)]
    assert V.preference(votes) == pytest.approx(0.2)
    assert V.judge_vote(votes, V.ProbabilisticRule(margin=0.19)) == V.ATTACKER
    assert V.judge_vote(votes, V.ProbabilisticRule(margin=0.21)) == V.TIE
    tie_heavy = [cast(V.ATTACKER_FIRST, 0.05, 0.05, 0.9), cast(V.DEFENDER_FIRST, 0.05, 0.05, 0.9)]
    assert V.judge_vote(tie_heavy, V.ProbabilisticRule(margin=0.0)) == V.TIE


def test_votes_without_probabilities_keep_the_discrete_rule():
    rule = V.ProbabilisticRule(margin=0.0)
    mixed = [cast(V.ATTACKER_FIRST, 0.9, 0.1), V.CastVote(V.DEFENDER, V.DEFENDER_FIRST)]
    assert V.judge_vote(mixed, rule) == V.TIE  # agreement rule: attacker vs defender
    discrete = [V.CastVote(V.INVALID, V.ATTACKER_FIRST), V.CastVote(V.ATTACKER, V.DEFENDER_FIRST)]
    assert V.judge_vote(discrete, rule) == V.INVALID
    off = V.ProbabilisticRule(enabled=False)
    assert V.judge_vote([cast(V.ATTACKER_FIRST, 0.9, 0.1), cast(V.DEFENDER_FIRST, 0.2, 0.8)], off) == V.ATTACKER


@pytest.mark.parametrize("probs", [[0.5, 0.5], [0.5, 0.6, -0.1], [float("nan"), 0.5, 0.5], [True, 0, 0],
                                   ["0.5", 0.5, 0], [0.2, 0.2, 0.2], [1e308 * 10, 0, 0], "abc", {"a": 1}])
def test_forged_probabilities_are_a_bad_record(probs):
    with pytest.raises(ValueError):
        V.check_probs(probs)
    record = {"type": "vote", "vote_id": "x", "battle_id": "b", "judge": "j", "shown_order": V.ATTACKER_FIRST,
              "raw_verdict": "A", "verdict": V.ATTACKER, "probs": probs, "run_id": "r"}
    problems = check_battle_records([record])
    assert any("probs" in p for p in problems)


def test_sound_probabilities_pass_the_record_check():
    from warriorflow.method import ids

    record = {"type": "vote", "vote_id": ids.vote_id("b", "j", V.ATTACKER_FIRST), "battle_id": "b", "judge": "j",
              "shown_order": V.ATTACKER_FIRST, "raw_verdict": "A", "verdict": V.ATTACKER,
              "probs": [0.7, 0.2, 0.1], "run_id": "r"}
    assert check_battle_records([record]) == []


# ------------------------------------------------------------------------------------------ weights
def test_weights_count_in_the_local_score_and_result_and_round_trip():
    b = BattleVotes("b1", "i1", "x", "y", {"j1": V.ATTACKER, "execution": V.DEFENDER}, {"execution": 2.0})
    assert local_scores(b) == pytest.approx((1 / 3, 2 / 3))
    assert battle_result(b) == 0.0
    unweighted = BattleVotes("b1", "i1", "x", "y", {"j1": V.ATTACKER, "execution": V.DEFENDER})
    assert battle_result(unweighted) == 0.5
    back = parse_battle_log(battle_log_line(b))
    assert back == [b]
    assert "weights" not in battle_log_line(unweighted)


@pytest.mark.parametrize("weights", [{"nobody": 1.0}, {"j1": -1}, {"j1": float("inf")}, {"j1": True}, {"j1": "2"}])
def test_bad_weights_are_refused(weights):
    with pytest.raises(ValueError):
        BattleVotes("b1", "i1", "x", "y", {"j1": V.ATTACKER}, weights)


def test_a_log_line_with_bad_weights_names_the_line():
    line = '{"battle_id": "b", "instruction_id": "i", "attacker": "x", "defender": "y", "votes": {"j": "attacker"}, ' \
           '"weights": [1]}'
    with pytest.raises(ValueError, match="line 1"):
        parse_battle_log(line)


# ------------------------------------------------------------------------------------------ the store
def test_vote_log_decides_probabilistic_votes_with_the_sql_prior(tmp_path):
    from warriorflow.method import ids
    from warriorflow.store.rating_store import RatingStore

    with RatingStore(tmp_path / "s.duckdb") as store:
        store.upsert("instructions", [{"instruction_id": "i1", "text": "t", "expert": "x", "mined_at": "2026-01-01",
                                       "run_id": "r", "status": "selected"}], key=["instruction_id"])
        battles, votes = [], []
        # judge g always puts 0.9 on the first shown; judge q flips (first position) but, debiased, prefers the
        # defender in both orders
        for n in range(4):
            bid = f"b{n}"
            battles.append({"battle_id": bid, "instruction_id": "i1", "attacker": "x", "defender": "y",
                            "status": "done", "battle_order": n, "run_id": "r", "judges": ["g", "q"]})
            for judge, (pa1, pb1), (pa2, pb2) in (("g", (0.9, 0.1), (0.9, 0.1)), ("q", (0.55, 0.45), (0.9, 0.1))):
                for order, (pa, pb) in ((V.ATTACKER_FIRST, (pa1, pb1)), (V.DEFENDER_FIRST, (pa2, pb2))):
                    raw = "A" if pa > pb else "B"
                    votes.append({"vote_id": ids.vote_id(bid, judge, order), "battle_id": bid, "judge": judge,
                                  "shown_order": order, "raw_verdict": raw, "verdict": V.to_competitor(raw, order),
                                  "p_a": pa, "p_b": pb, "p_tie": 0.0, "run_id": "r"})
        store.upsert("battles", battles, key=["battle_id"])
        store.upsert("votes", votes, key=["vote_id"])
        priors = judge_priors(store)
        assert priors["g"] == pytest.approx(math.log(9))
        assert priors["q"] == pytest.approx(V.first_position_prior([(0.55, 0.45, 0), (0.9, 0.1, 0)]))
        log_ = vote_log(store, ArenaSettings())
        assert {b.votes["g"] for b in log_} == {V.TIE}
        assert {b.votes["q"] for b in log_} == {V.DEFENDER}
        discrete = vote_log(store, ArenaSettings.model_validate({"votes": {"probabilities": False}}))
        assert {b.votes["q"] for b in discrete} == {V.TIE}  # the flip the discrete rule sees


def test_doctests_in_a_prompt_quoted_up_to_its_closing_fence_are_found():
    """A HumanEval prompt quoted in a fence with no blank line before the closing ``` still gives its
    examples as tests (a fence line ends an example's output)."""
    from warriorflow.method.execution import extract_tests

    prompt = ('def same_chars(s0: str, s1: str):\n    """\n    Check if two words have the same characters.\n'
              "    >>> same_chars('abcd', 'dddddddabc')\n    True\n    >>> same_chars('eabcd', 'dddddddabc')\n"
              '    False\n    """')
    for text in (f"Complete the following Python function.\n\n```python\n{prompt}\n```", f"~~~\n{prompt}\n~~~"):
        tests = extract_tests(text, "instruction")
        assert [t.source for t in tests] == ["assert same_chars('abcd', 'dddddddabc') == True",
                                             "assert same_chars('eabcd', 'dddddddabc') == False"]


def test_the_execution_vote_joins_the_log_with_its_weight(tmp_path):
    from warriorflow.store.rating_store import RatingStore

    def row(battle, role, status, passed):
        return {"battle_id": battle, "role": role, "response_id": f"{battle}-{role}", "code_task": True,
                "has_code": True, "status": status, "tests_total": 2, "tests_passed": passed,
                "instruction_total": 2, "instruction_passed": passed, "attacker_total": 0, "attacker_passed": 0,
                "defender_total": 0, "defender_passed": 0, "runs": 1, "seconds": 0.1, "details": "{}",
                "run_id": "r"}

    with RatingStore(tmp_path / "s.duckdb") as store:
        store.upsert("instructions", [{"instruction_id": "i1", "text": "t", "expert": "x", "mined_at": "2026-01-01",
                                       "run_id": "r", "status": "selected"}], key=["instruction_id"])
        store.upsert("battles", [{"battle_id": b, "instruction_id": "i1", "attacker": "x", "defender": "y",
                                  "status": "done", "battle_order": n, "run_id": "r", "judges": ["g"]}
                                 for n, b in enumerate(("b1", "b2"))], key=["battle_id"])
        # b1: the defender passes the question's examples, the attacker does not; b2: equal evidence
        store.upsert("executions", [row("b1", "attacker", "ok", 0), row("b1", "defender", "ok", 2),
                                    row("b2", "attacker", "ok", 2), row("b2", "defender", "ok", 2)],
                     key=["battle_id", "role"])
        log_ = {b.battle_id: b for b in vote_log(store, ArenaSettings.model_validate(
            {"execution": {"vote_weight": 2.5}}))}
        assert log_["b1"].votes == {"execution": V.DEFENDER} and log_["b1"].weights == {"execution": 2.5}
        assert log_["b2"].votes == {} and log_["b2"].weights is None
        assert battle_result(log_["b1"]) == 0.0
        off = vote_log(store, ArenaSettings.model_validate({"execution": {"vote": False}}))
        assert all(not b.votes for b in off)


def test_calibrated_judge_weights_come_from_the_latest_calibration(tmp_path):
    from warriorflow.method import ids
    from warriorflow.stages.calibrate import save_calibration
    from warriorflow.store.rating_store import RatingStore

    def fig(acc):
        return {"pairs": 40, "accuracy": acc, "tie_rate": 0.0, "flip_rate": 0.0, "first_position_share": 0.5}

    with RatingStore(tmp_path / "s.duckdb") as store:
        store.upsert("instructions", [{"instruction_id": "i1", "text": "t", "expert": "x", "mined_at": "2026-01-01",
                                       "run_id": "r", "status": "selected"}], key=["instruction_id"])
        store.upsert("battles", [{"battle_id": "b1", "instruction_id": "i1", "attacker": "x", "defender": "y",
                                  "status": "done", "battle_order": 0, "run_id": "r", "judges": ["g", "q"]}],
                     key=["battle_id"])
        store.upsert("votes", [{"vote_id": ids.vote_id("b1", j, V.ATTACKER_FIRST), "battle_id": "b1", "judge": j,
                                "shown_order": V.ATTACKER_FIRST, "raw_verdict": raw, "verdict": verdict,
                                "run_id": "r"} for j, raw, verdict in (("g", "A", V.ATTACKER), ("q", "B", V.DEFENDER))],
                     key=["vote_id"])
        one_order = {"both_orders": False}
        assert battle_result(vote_log(store, ArenaSettings.model_validate(one_order))[0]) == 0.5
        rule = {"probabilities": False, "margin": 0.1, "debias": True, "top_logprobs": 10}
        save_calibration(store, {"judges": {"g": fig(0.2), "q": fig(0.3)}, "panel": fig(0.3), "rule": rule,
                                 "weights": {}}, "old")
        save_calibration(store, {"judges": {"g": fig(0.9), "q": fig(0.6)}, "panel": fig(0.9), "rule": rule,
                                 "weights": {}}, "new")
        calibrated = ArenaSettings.model_validate({**one_order, "votes": {"judge_weights": "calibrated"}})
        b = vote_log(store, calibrated)[0]
        assert b.weights == {"g": 0.9, "q": 0.6} and battle_result(b) == 1.0
        assert vote_log(store, ArenaSettings.model_validate(one_order))[0].weights is None
