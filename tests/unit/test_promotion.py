"""Promotion by evidence: paired significance tests over problems (McNemar exact, paired bootstrap), the
decision rule, per-problem records read from the store, the evidence in model_promotions, the champion alias in
the object store (manifest last, checked on read), and where the decision shows (CLI, report)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import binomtest

from warriorflow.config import PromotionSettings
from warriorflow.errors import ConfigError, StoreError
from warriorflow.evaluation import records
from warriorflow.evaluation import significance as sig
from warriorflow.evaluation.compare import NOTHING_TO_COMPARE, decide
from warriorflow.evaluation.harness import BenchmarkScore, ProblemResult
from warriorflow.store import champion as ch
from warriorflow.store.objects import LocalObjectStore, open_objects, publish
from warriorflow.store.rating_store import RatingStore

MCNEMAR = PromotionSettings()
BOOT = PromotionSettings(test="bootstrap", bootstrap_rounds=2000)


def _scores(bench: str, outcomes: list[float]) -> dict[str, dict[str, float]]:
    return {bench: {f"{bench}/{i}": float(x) for i, x in enumerate(outcomes)}}


def _flips(gain: int, loss: int, same_pass: int = 10, same_fail: int = 10) -> tuple[list[int], list[int]]:
    """Candidate/previous outcomes with ``gain`` candidate-only and ``loss`` previous-only passes."""
    cand = [1] * gain + [0] * loss + [1] * same_pass + [0] * same_fail
    prev = [0] * gain + [1] * loss + [1] * same_pass + [0] * same_fail
    return cand, prev


# ------------------------------------------------------------------ the statistics


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (0, 1), (3, 1), (7, 1), (5, 5), (12, 0), (0, 12), (20, 8),
                                      (31, 17), (60, 41), (2, 9)])
def test_mcnemar_p_values_match_scipy_binomtest(b, c):
    cand, prev = _flips(b, c)
    r = sig.mcnemar(cand, prev)
    assert (r.b, r.c, r.n, r.statistic) == (b, c, len(cand), b)
    if b + c:
        assert r.p_value == pytest.approx(binomtest(b, b + c, 0.5, alternative="greater").pvalue, rel=1e-9)
        assert r.p_two_sided == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9)
        assert r.chi2 == pytest.approx((abs(b - c) - 1) ** 2 / (b + c))
    else:
        assert r.p_value == 1.0 and r.p_two_sided == 1.0 and r.chi2 == 0.0
    assert r.mean_delta == pytest.approx((b - c) / len(cand))


def test_mcnemar_refuses_fractional_outcomes():
    with pytest.raises(ValueError, match="pass/fail"):
        sig.mcnemar([0.5, 1], [0, 1])


def test_bootstrap_is_seeded_and_deterministic():
    rng = np.random.default_rng(7)
    prev = rng.random(200) * 0.8  # fractions of samples passing: the CI ends are not ties
    cand = np.clip(prev + rng.random(200) * 0.3, 0, 1)
    a = sig.bootstrap(cand, prev, rounds=3000, seed=3)
    b = sig.bootstrap(cand, prev, rounds=3000, seed=3)
    other = sig.bootstrap(cand, prev, rounds=3000, seed=4)
    assert a == b
    assert a.ci != other.ci
    assert a.statistic == pytest.approx(float(np.mean(cand - prev)))
    assert a.p_value < 0.01 and a.ci[0] > 0  # a clear gain


def test_bootstrap_ci_covers_the_true_delta():
    """Problems drawn from a population with a known mean delta (0.55 - 0.40 = 0.15): the 95% percentile CI
    covers it in (about) 95% of the samples, and at the fixed seed in this one."""
    true_delta, covered = 0.15, 0
    for s in range(40):
        rng = np.random.default_rng(1000 + s)
        prev = rng.binomial(1, 0.40, 300).astype(float)
        cand = rng.binomial(1, 0.55, 300).astype(float)
        lo, hi = sig.bootstrap(cand, prev, rounds=1500, seed=s).ci
        covered += lo <= true_delta <= hi
    assert covered >= 34  # 40 draws of a 95% interval: 34 or more with probability > 0.99
    rng = np.random.default_rng(1000)
    prev, cand = rng.binomial(1, 0.40, 300).astype(float), rng.binomial(1, 0.55, 300).astype(float)
    lo, hi = sig.bootstrap(cand, prev, rounds=1500, seed=0).ci
    assert lo < true_delta < hi


def test_bootstrap_of_fractional_scores_and_of_no_difference():
    cand = [0.2, 0.6, 1.0, 0.0, 0.4] * 8
    same = sig.bootstrap(cand, cand, rounds=500, seed=0)
    assert same.p_value == 1.0 and same.ci == (0.0, 0.0) and same.statistic == 0.0
    up = sig.bootstrap([min(1.0, x + 0.2) for x in cand], cand, rounds=500, seed=0)
    assert up.p_value == 0.0 and up.ci[0] > 0.1


def test_pairing_counts_and_excludes_unmatched_problems():
    cand = {("mbpp", "1"): 1.0, ("mbpp", "2"): 0.0, ("mbpp", "3"): 1.0, ("humaneval", "H/0"): 1.0}
    prev = {("mbpp", "1"): 0.0, ("mbpp", "2"): 0.0, ("mbpp", "9"): 1.0, ("cruxeval-o", "c0"): 1.0}
    p = sig.pair(cand, prev)
    assert p.keys == [("mbpp", "1"), ("mbpp", "2")] and p.candidate == [1.0, 0.0] and p.previous == [0.0, 0.0]
    assert (p.unmatched_candidate, p.unmatched_previous) == (2, 2)
    only = sig.pair(cand, prev, ["mbpp"])
    assert only.n == 2 and (only.unmatched_candidate, only.unmatched_previous) == (1, 1)
    with pytest.raises(ValueError, match=r"not a number in \[0, 1\]"):
        sig.pair({("b", "t"): 1.5}, {("b", "t"): 0.0})


# ------------------------------------------------------------------ the decision rule


@pytest.mark.parametrize("rule", [MCNEMAR, BOOT], ids=["mcnemar", "bootstrap"])
@pytest.mark.parametrize("outcomes", [[0] * 12, [1, 1, 1], [1, 0, 1, 1, 0, 0, 1, 0, 1, 0]],
                         ids=["zero-vs-zero", "3/3-vs-3/3", "same-per-problem"])
def test_equal_scores_never_promote(rule, outcomes):
    scores = _scores("mbpp", outcomes)
    d = decide("run-2", scores, "run-1", scores, rule)
    assert not d.promoted
    assert d.mean_delta == 0.0 and d.p_value == 1.0 and d.n_paired == len(outcomes)
    assert any("equal scores never promote" in r for r in d.reasons)


def test_the_same_pass_at_1_with_different_problems_does_not_promote():
    cand, prev = _flips(6, 6)
    d = decide("run-2", _scores("mbpp", cand), "run-1", _scores("mbpp", prev), MCNEMAR)
    assert not d.promoted and d.evidence["pooled"]["b"] == 6 and d.evidence["pooled"]["c"] == 6
    assert d.p_value == pytest.approx(binomtest(6, 12, 0.5, alternative="greater").pvalue)


def test_nothing_to_compare_with_is_not_promoted():
    for prev_ref, prev in ((None, None), ("expert:base", {}), ("expert:base", None)):
        d = decide("run-1", _scores("mbpp", [1] * 20), prev_ref, prev, MCNEMAR)
        assert not d.promoted and d.reasons == [NOTHING_TO_COMPARE] and d.test is None and d.p_value is None


@pytest.mark.parametrize("rule", [MCNEMAR, BOOT], ids=["mcnemar", "bootstrap"])
def test_a_significant_gain_promotes(rule):
    cand, prev = _flips(12, 0)
    d = decide("run-2", _scores("mbpp", cand), "run-1", _scores("mbpp", prev), rule)
    assert d.promoted, d.reasons
    assert d.test == rule.test and d.n_paired == 32 and d.mean_delta == pytest.approx(12 / 32)
    assert d.deltas == pytest.approx({"mbpp": 12 / 32})
    if rule.test == "mcnemar":
        assert d.statistic == 12 and d.p_value == pytest.approx(0.5 ** 12)
        assert (d.evidence["pooled"]["b"], d.evidence["pooled"]["c"]) == (12, 0)
        assert "McNemar exact: candidate-only 12, previous-only 0, p=0.0002441 < alpha 0.05" in d.reasons[0]
    else:
        lo, hi = d.evidence["pooled"]["ci"]
        assert d.p_value < 0.05 and 0 < lo < 12 / 32 < hi
        assert "paired bootstrap (2000 rounds, seed 0)" in d.reasons[0] and "< alpha 0.05" in d.reasons[0]


def test_a_small_gain_is_not_significant():
    cand, prev = _flips(3, 1)
    d = decide("run-2", _scores("mbpp", cand), "run-1", _scores("mbpp", prev), MCNEMAR)
    assert not d.promoted and d.mean_delta > 0
    assert d.p_value == pytest.approx(binomtest(3, 4, 0.5, alternative="greater").pvalue) == 0.3125
    assert "candidate-only 3, previous-only 1, p=0.3125 >= alpha 0.05" in d.reasons[0]
    loose = decide("run-2", _scores("mbpp", cand), "run-1", _scores("mbpp", prev), PromotionSettings(alpha=0.5))
    assert loose.promoted  # the same evidence passes a looser alpha: alpha is what decides


def test_min_delta_is_an_extra_effect_size_floor():
    cand, prev = _flips(12, 0, same_pass=100, same_fail=100)  # significant, mean delta 12/212 ~ 0.057
    scores = (_scores("mbpp", cand), _scores("mbpp", prev))
    assert decide("run-2", scores[0], "run-1", scores[1], PromotionSettings(min_delta=0.05)).promoted
    high = decide("run-2", scores[0], "run-1", scores[1], PromotionSettings(min_delta=0.1))
    assert not high.promoted and any("not above min_delta +0.1000" in r for r in high.reasons)


def test_a_significant_guarded_regression_blocks():
    up, base_up = _flips(20, 0)
    down, base_down = _flips(0, 8)
    cand = {**_scores("mbpp", up), **_scores("humaneval", down)}
    prev = {**_scores("mbpp", base_up), **_scores("humaneval", base_down)}
    rule = PromotionSettings(must_not_regress=["humaneval"])
    d = decide("run-2", cand, "run-1", prev, rule)
    # pooled: 20 gains, 8 losses is significant on its own ...
    assert d.p_value == pytest.approx(binomtest(20, 28, 0.5, alternative="greater").pvalue) and d.p_value < 0.05
    # ... but humaneval alone regressed significantly
    assert not d.promoted
    g = d.evidence["guarded"]["humaneval"]
    assert g["regressed"] and g["p_value"] == pytest.approx(0.5 ** 8) and g["b"] == 8 and g["c"] == 0
    assert any(r.startswith("humaneval regressed significantly") and "previous-only 8, candidate-only 0" in r
               for r in d.reasons)
    # tolerance: a significant drop no larger than it is allowed
    lax = decide("run-2", cand, "run-1", prev, PromotionSettings(must_not_regress=["humaneval"], tolerance=0.5))
    assert lax.promoted and any("within tolerance 0.5" in r for r in lax.reasons)
    # an insignificant guarded drop does not block
    small, base_small = _flips(0, 2)
    d2 = decide("run-2", {**_scores("mbpp", up), **_scores("humaneval", small)}, "run-1",
                {**_scores("mbpp", base_up), **_scores("humaneval", base_small)}, rule)
    assert d2.promoted and not d2.evidence["guarded"]["humaneval"]["regressed"]
    assert d2.evidence["guarded"]["humaneval"]["p_value"] == pytest.approx(0.25)


def test_a_guarded_or_compared_benchmark_missing_on_one_model_blocks():
    cand, prev = _flips(20, 0)
    rule = PromotionSettings(must_not_regress=["humaneval"])
    d = decide("run-2", _scores("mbpp", cand), "run-1", _scores("mbpp", prev), rule)
    assert not d.promoted and "not evaluated on both models: humaneval" in d.reasons
    d = decide("run-2", _scores("mbpp", cand), "run-1", _scores("mbpp", prev),
               PromotionSettings(compare_on=["mbpp", "cruxeval-o"]))
    assert not d.promoted and "not evaluated on both models: cruxeval-o" in d.reasons


def test_compare_on_pools_only_its_benchmarks():
    up, base = _flips(12, 0)
    down, base_down = _flips(0, 12)
    cand = {**_scores("mbpp", up), **_scores("cruxeval-o", down)}
    prev = {**_scores("mbpp", base), **_scores("cruxeval-o", base_down)}
    everything = decide("run-2", cand, "run-1", prev, MCNEMAR)
    assert not everything.promoted and everything.mean_delta == 0.0  # 12 gains and 12 losses pooled
    only = decide("run-2", cand, "run-1", prev, PromotionSettings(compare_on=["mbpp"]))
    assert only.promoted and only.n_paired == 32 and only.evidence["compare_on"] == ["mbpp"]
    assert only.deltas == pytest.approx({"cruxeval-o": -12 / 32, "mbpp": 12 / 32})


def test_unmatched_problems_are_excluded_and_counted():
    cand_o, prev_o = _flips(12, 0)
    cand = _scores("mbpp", cand_o)
    prev = _scores("mbpp", prev_o)
    cand["mbpp"].update({"extra-1": 1.0, "extra-2": 1.0, "extra-3": 1.0})  # only the candidate has these
    prev["mbpp"]["old-1"] = 0.0
    d = decide("run-2", cand, "run-1", prev, MCNEMAR)
    assert d.n_paired == 32 and d.evidence["unmatched"] == {"candidate": 3, "previous": 1}
    assert d.statistic == 12  # the 3 candidate-only problems did not count as gains
    assert any("4 problem(s) evaluated on one model only were left out" in r for r in d.reasons)


def test_mcnemar_on_fractional_scores_says_to_use_the_bootstrap():
    cand = {"mbpp": {"a": 0.4, "b": 1.0}}
    prev = {"mbpp": {"a": 0.0, "b": 1.0}}
    with pytest.raises(ConfigError, match="test: bootstrap"):
        decide("run-2", cand, "run-1", prev, MCNEMAR)
    assert decide("run-2", cand, "run-1", prev, BOOT).n_paired == 2


def test_decision_id_changes_with_the_evidence():
    cand, prev = _flips(12, 0)
    c, p = _scores("mbpp", cand), _scores("mbpp", prev)
    a = decide("run-2", c, "run-1", p, MCNEMAR)
    assert records.decision_id(a) == records.decision_id(decide("run-2", c, "run-1", p, MCNEMAR))
    other = [decide("run-2", c, "run-1", p, BOOT), decide("run-2", c, "run-1", p, PromotionSettings(alpha=0.01)),
             decide("run-2", {"mbpp": {**c["mbpp"], "mbpp/31": 1.0}}, "run-1", p, MCNEMAR)]
    ids = {records.decision_id(a), *(records.decision_id(o) for o in other)}
    assert len(ids) == 4
    assert all(o.promoted for o in other)  # same verdict, different evidence: a different id


# ------------------------------------------------------------------ per-problem records in the store


def _score(bench: str, outcomes: list[int], prefix: str = "t") -> BenchmarkScore:
    return BenchmarkScore(bench, bench, "", "d" * 64, "h1",
                          [ProblemResult(f"{prefix}{i}", bool(x), "passed" if x else "failed", "", 0.0)
                           for i, x in enumerate(outcomes)], len(outcomes))


def _eval_row(model_ref: str, bench: str, problems, eval_id: str = "forged") -> dict:
    return {"eval_id": eval_id, "model_ref": model_ref, "benchmark": bench, "pass_at_1": 0.0, "n_problems": 1,
            "data_sha256": "d" * 64, "harness_version": "h1",
            "details": {} if problems is None else {"problems": problems}}


def test_stored_problem_records_read_back_as_scores(tmp_path):
    with RatingStore(tmp_path / "r.duckdb") as store:
        records.write_scores(store, "m", [_score("mbpp", [1, 0, 1]), _score("humaneval", [0])])
        store.upsert("eval_results", [_eval_row("m", "cruxeval-o", [
            {"task_id": "c0", "passed": False, "n_samples": 10, "n_correct": 3},
            {"task_id": "c1", "passed": True}])], key=["eval_id"])
        got = records.latest_problem_scores(store, "m")
    assert got == {"mbpp": {"t0": 1.0, "t1": 0.0, "t2": 1.0}, "humaneval": {"t0": 0.0},
                   "cruxeval-o": {"c0": 0.3, "c1": 1.0}}


@pytest.mark.parametrize(("problems", "message"), [
    ([{"passed": True}], "has no task_id"),
    ([{"task_id": "", "passed": True}], "has no task_id"),
    ([{"task_id": 7, "passed": True}], "has no task_id"),
    ([{"task_id": "t0", "passed": "yes"}], "passed='yes', not true/false"),
    ([{"task_id": "t0", "passed": 1}], "passed=1, not true/false"),
    ([{"task_id": "t0"}], "passed=None"),
    (["t0"], "is not a problem record"),
    ([{"task_id": "t0", "passed": True, "n_samples": 5, "n_correct": 6}], "0 <= n_correct <= n_samples"),
    ([{"task_id": "t0", "passed": True, "n_samples": 0, "n_correct": 0}], "n_samples >= 1"),
    ([{"task_id": "t0", "passed": True, "n_samples": "5", "n_correct": 1}], "need integers"),
    ([{"task_id": "t0", "passed": True}, {"task_id": "t0", "passed": False}], "repeats task_id 't0'"),
    (None, "has no per-problem results"),
    ("not a list", "has no per-problem results"),
])
def test_forged_problem_records_are_a_clear_error(tmp_path, problems, message):
    with RatingStore(tmp_path / "r.duckdb") as store:
        store.upsert("eval_results", [_eval_row("run-9", "mbpp", problems)], key=["eval_id"])
        with pytest.raises(StoreError) as err:
            records.latest_problem_scores(store, "run-9")
    text = str(err.value)
    assert message in text and "eval_results forged (run-9, mbpp)" in text and "warriorflow evaluate" in text


# ------------------------------------------------------------------ compare_and_decide, the champion alias


def _publish_model(objects, run_id: str, weights: bytes = b"weights") -> None:
    from warriorflow.training.sft import MODEL_KIND

    publish(objects, ch.model_prefix(run_id), {"model.safetensors": weights},
            {"kind": MODEL_KIND, "training_run_id": run_id})


def _setup(config, cand_ref="run-2", gain=12, publish_model=True):
    cand, prev = _flips(gain, 0)
    with RatingStore(config.duckdb_path) as store:
        records.write_scores(store, "expert:base", [_score("mbpp", prev), _score("humaneval", [0, 1])])
        records.write_scores(store, cand_ref, [_score("mbpp", cand), _score("humaneval", [0, 1])])
        if not cand_ref.startswith(("expert:", "hf:")):
            store.upsert("training_runs", [{"training_run_id": cand_ref, "snapshot_id": "snap-1", "base_model": "b",
                                            "config": {}, "status": "done",
                                            "output_uri": open_objects(config).uri(ch.model_prefix(cand_ref))}],
                         key=["training_run_id"])
    if publish_model and not cand_ref.startswith(("expert:", "hf:")):
        _publish_model(open_objects(config), cand_ref)


def test_the_alias_layout_matches_training():
    from warriorflow.training.sft import MODEL_KIND, model_prefix

    assert ch.TRAINED_MODEL_KIND == MODEL_KIND and ch.model_prefix("sft-abc") == model_prefix("sft-abc")


def test_a_promoted_training_run_becomes_the_champion_alias(config):
    from warriorflow.evaluation.run import compare_and_decide

    _setup(config)
    d = compare_and_decide(config, "run-2", "expert:base")
    assert d.promoted and d.test == "mcnemar" and d.statistic == 12 and d.p_value == pytest.approx(0.5 ** 12)
    objects = open_objects(config)
    alias = ch.read_champion(objects)
    model_raw = objects.get_bytes("models/run-2/manifest.json")
    import hashlib

    assert alias["kind"] == "warriorflow.champion" and alias["training_run_id"] == "run-2"
    assert alias["manifest_sha256"] == hashlib.sha256(model_raw).hexdigest()
    assert alias["decision_id"] == d.decision_id and alias["p_value"] == d.p_value
    assert alias["model_uri"] == objects.uri("models/run-2") and alias["promoted_at"]
    assert d.champion_alias == objects.uri("models/champion/manifest.json")
    with RatingStore(config.duckdb_path, read_only=True) as store:
        rows = store.query("SELECT decision_id, test, statistic, p_value, evidence, promoted FROM model_promotions")
        assert records.champion(store) == "run-2"
    assert len(rows) == 1 and rows[0]["decision_id"] == d.decision_id and rows[0]["promoted"]
    assert (rows[0]["test"], rows[0]["statistic"]) == ("mcnemar", 12.0)
    assert rows[0]["p_value"] == pytest.approx(0.5 ** 12)
    ev = json.loads(rows[0]["evidence"])
    assert ev["n_paired"] == 34 and ev["pooled"]["b"] == 12 and ev["pooled"]["c"] == 0
    assert ev["guarded"]["humaneval"]["regressed"] is False and "p_value" in ev["guarded"]["humaneval"]
    # the same decision again: the same row, the alias bytes untouched
    before = objects.get_bytes("models/champion/manifest.json")
    again = compare_and_decide(config, "run-2", "expert:base")
    assert again.decision_id == d.decision_id and objects.get_bytes("models/champion/manifest.json") == before
    with RatingStore(config.duckdb_path, read_only=True) as store:
        assert store.query("SELECT count(*) AS n FROM model_promotions")[0]["n"] == 1


def test_no_alias_without_promotion_or_for_a_non_training_model(config):
    from warriorflow.evaluation.run import compare_and_decide

    _setup(config, "run-3", gain=2)  # 2 gains: not significant
    d = compare_and_decide(config, "run-3", "expert:base")
    assert not d.promoted and d.champion_alias is None
    objects = open_objects(config)
    assert not objects.exists("models/champion/manifest.json") and ch.read_champion(objects) is None
    _setup(config, "hf:/somewhere")
    d = compare_and_decide(config, "hf:/somewhere", "expert:base")
    assert d.promoted and d.champion_alias is None and not objects.exists("models/champion/manifest.json")
    with RatingStore(config.duckdb_path, read_only=True) as store:
        assert records.champion(store) == "hf:/somewhere"  # the decision is recorded all the same


def test_the_alias_is_written_only_after_the_model_manifest_is_read(config, monkeypatch):
    from warriorflow.evaluation.run import compare_and_decide

    _setup(config, "run-4", publish_model=False)
    with pytest.raises(StoreError, match="has no manifest.json"):
        compare_and_decide(config, "run-4", "expert:base")
    objects = open_objects(config)
    assert not objects.exists("models/champion/manifest.json")
    _publish_model(objects, "run-4")
    calls: list[tuple[str, str]] = []
    get, put = LocalObjectStore.get_bytes, LocalObjectStore.put_bytes
    monkeypatch.setattr(LocalObjectStore, "get_bytes", lambda self, key: calls.append(("get", key)) or get(self, key))
    monkeypatch.setattr(LocalObjectStore, "put_bytes",
                        lambda self, key, data: calls.append(("put", key)) or put(self, key, data))
    d = compare_and_decide(config, "run-4", "expert:base")  # re-run: the same decision, now with the model
    assert d.promoted and d.champion_alias
    assert calls.index(("get", "models/run-4/manifest.json")) < calls.index(("put", "models/champion/manifest.json"))
    assert [c for c in calls if c[0] == "put"] == [("put", "models/champion/manifest.json")]


def test_publish_champion_refuses_a_model_of_another_run(tmp_path):
    objects = LocalObjectStore(tmp_path / "objects")
    _publish_model(objects, "run-a")
    objects.put_bytes("models/run-b/manifest.json", objects.get_bytes("models/run-a/manifest.json"))
    with pytest.raises(StoreError, match="is the model of 'run-a'"):
        ch.publish_champion(objects, "run-b", {"decision_id": "x", "p_value": 0.01})
    for bad in ("champion", "a/b", ""):
        with pytest.raises(StoreError, match="not a training run id"):
            ch.publish_champion(objects, bad, {})
    assert not objects.exists("models/champion/manifest.json")


def _forge(objects, **changes) -> None:
    doc = json.loads(objects.get_bytes("models/champion/manifest.json"))
    doc.update(changes)
    objects.put_bytes("models/champion/manifest.json", json.dumps(doc).encode())


def test_a_forged_alias_is_a_store_error(tmp_path):
    objects = LocalObjectStore(tmp_path / "objects")
    _publish_model(objects, "run-a")
    ch.publish_champion(objects, "run-a", {"decision_id": "d1", "p_value": 0.001})
    assert ch.read_champion(objects)["training_run_id"] == "run-a"
    cases = [({"training_run_id": "run-missing", "model_prefix": "models/run-missing"}, "has no manifest.json"),
             ({"manifest_sha256": "0" * 64}, "records manifest sha256 " + "0" * 64),
             ({"model_prefix": "models/run-other"}, "names model prefix"),
             ({"model_prefix": "../etc"}, "invalid model prefix"),
             ({"kind": "warriorflow.trained-model"}, "is not a champion alias"),
             ({"training_run_id": None}, "lacks training_run_id")]
    good = objects.get_bytes("models/champion/manifest.json")
    for changes, message in cases:
        objects.put_bytes("models/champion/manifest.json", good)
        _forge(objects, **changes)
        with pytest.raises(StoreError) as err:
            ch.read_champion(objects)
        assert message in str(err.value) and "models/champion/manifest.json" in str(err.value)
        assert "re-run the comparison" in err.value.fix
    objects.put_bytes("models/champion/manifest.json", b"{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        ch.read_champion(objects)
    # the model replaced after promotion: the alias no longer matches
    objects.put_bytes("models/champion/manifest.json", good)
    objects.put_bytes("models/run-a/manifest.json", objects.get_bytes("models/run-a/manifest.json") + b" ")
    with pytest.raises(StoreError, match="the model was replaced after it was promoted"):
        ch.read_champion(objects)


# ------------------------------------------------------------------ where the decision shows


def test_models_cli_and_report_show_the_test_and_p_value(config):
    from warriorflow.cli import main
    from warriorflow.evaluation.run import compare_and_decide
    from warriorflow.report import write_report

    _setup(config)
    d = compare_and_decide(config, "run-2", "expert:base")
    cli = CliRunner()
    listing = cli.invoke(main, ["models"])
    assert listing.exit_code == 0, listing.output
    line = next(x for x in listing.output.splitlines() if x.startswith("run-2"))
    assert "champion (mcnemar p=0.000244)" in line
    assert f"champion alias: {open_objects(config).uri('models/run-2')} (run-2, decision {d.decision_id[:12]}" \
        in listing.output
    rows = {r["model_ref"]: r for r in json.loads(cli.invoke(main, ["models", "--json"]).output)}
    assert rows["run-2"]["champion"] and rows["run-2"]["champion_alias"] and rows["run-2"]["test"] == "mcnemar"
    assert not rows["expert:base"]["champion_alias"]
    # a broken alias is reported, the listing still works
    open_objects(config).put_bytes("models/champion/manifest.json", b"[]")
    broken = cli.invoke(main, ["models"])
    assert broken.exit_code == 0 and "champion alias: " in broken.output and "is not a champion alias" in broken.output
    page = write_report(config).read_text()
    assert "<h3>Promotion decisions</h3>" in page
    row = page[page.index("<h3>Promotion decisions</h3>"):]
    row = row[row.index("<td>run-2</td>"):]
    row = row[:row.index("</tr>")]
    assert "<td>mcnemar</td>" in row and "0.0002441" in row and "candidate-only 12, previous-only 0" in row
    assert "<td>promoted</td>" in row and "<td class=\"n\">34</td>" in row
