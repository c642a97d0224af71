"""Judge calibration: the figures, the panel, labeled-pair files, mutants, and `warriorflow judges`."""

from __future__ import annotations

import ast
import json

import pytest

from warriorflow.errors import ConfigError
from warriorflow.method import calibration as C
from warriorflow.method import votes as V
from warriorflow.method.mutants import canonical_source, mutants
from warriorflow.stages.calibrate import calibrate, latest_calibration, read_pairs, save_calibration

AF, DF = V.ATTACKER_FIRST, V.DEFENDER_FIRST


def po(effective, first=None, second=None, probabilistic=False):
    by = {}
    if first is not None:
        by[AF] = first
    if second is not None:
        by[DF] = second
    return C.PairOutcome(effective, by, probabilistic)


def test_metrics_by_hand():
    outcomes = [
        po(V.ATTACKER, V.ATTACKER, V.ATTACKER),   # right, consistent
        po(V.TIE, V.ATTACKER, V.DEFENDER),        # a flip: both picked the first shown
        po(V.DEFENDER, V.DEFENDER, V.DEFENDER),   # wrong
        po(V.INVALID, V.INVALID, V.ATTACKER),     # invalid: wrong, left out of flips
        None,                                     # abstained: a tie, wrong against label b
        None,                                     # abstained: a tie, right against label tie
    ]
    labels = ["a", "b", "a", "a", "b", "tie"]
    m = C.metrics(outcomes, labels)
    assert m["pairs"] == 6 and m["abstained"] == 2
    assert m["accuracy"] == pytest.approx(2 / 6)
    assert m["tie_rate"] == pytest.approx(3 / 6)
    assert m["flip_rate"] == pytest.approx(1 / 3)
    # decisive one-order verdicts: A(first) A(second) A(first) D(first) D(first) D(second) A(second) -> 7
    first = sum([True, False, True, True, False, True, False])
    assert m["first_position_share"] == pytest.approx(first / 7)
    assert m["decisive_rate"] == pytest.approx(2 / 6)
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["invalid_rate"] == pytest.approx(1 / 6)
    assert C.metrics([None], ["a"])["accuracy"] == 0.0 and C.metrics([None], ["tie"])["accuracy"] == 1.0
    with pytest.raises(ValueError):
        C.metrics([None], ["a", "b"])


def test_a_pure_position_judge_is_all_flips_and_first_position():
    outcomes = [po(V.TIE, V.ATTACKER, V.DEFENDER) for _ in range(10)]
    m = C.metrics(outcomes, ["a"] * 5 + ["b"] * 5)
    assert m["flip_rate"] == 1.0 and m["first_position_share"] == 1.0 and m["accuracy"] == 0.0


def test_panel_weighs_the_execution_vote_like_ratings():
    judges = {"j1": po(V.DEFENDER, V.DEFENDER, V.DEFENDER), "j2": po(V.TIE, V.ATTACKER, V.DEFENDER),
              "execution": po(V.ATTACKER)}
    assert C.panel_outcome(judges).effective == V.TIE  # 1 vs 1
    heavy = C.panel_outcome(judges, {"execution": 2.0})
    assert heavy.effective == V.ATTACKER
    # one-order panels: in attacker-first j2 says attacker: 3 vs 1; in defender-first j2 says defender: 2 vs 2
    assert heavy.by_order == {AF: V.ATTACKER, DF: V.TIE}
    assert C.panel_outcome({"j1": None, "execution": None}).effective == V.TIE


# ------------------------------------------------------------------------------------------ pair files
def write(tmp_path, lines):
    p = tmp_path / "pairs.jsonl"
    p.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return p


GOOD = {"instruction": "Add two numbers.", "response_a": "def f(a, b): return a + b",
        "response_b": "def f(a, b): return a - b", "label": "a"}


@pytest.mark.parametrize("line, match", [
    ({**GOOD, "label": "A"}, "label"), ({**GOOD, "label": None}, "label"),
    ({k: GOOD[k] for k in GOOD if k != "response_b"}, "lacks"),
    ({**GOOD, "instruction": ""}, "non-empty"), ({**GOOD, "response_a": 5}, "non-empty"), ("[1, 2]", "JSON object"),
    ("{not json", "JSON object"),
])
def test_bad_pair_files_name_the_line(tmp_path, line, match):
    path = write(tmp_path, [GOOD, line])
    with pytest.raises(ConfigError, match=match) as e:
        read_pairs(path)
    assert "line 2" in str(e.value)


def test_missing_empty_and_binary_pair_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_pairs(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match="no pairs"):
        read_pairs(write(tmp_path, ["", "  "]))
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError):
        read_pairs(tmp_path / "bin.jsonl")
    pairs, digest = read_pairs(write(tmp_path, [GOOD]))
    assert pairs[0].label == "a" and len(digest) == 64


# ------------------------------------------------------------------------------------------ mutants
PROGRAM = '''def clip(xs, lo, hi):
    """Clip each x to [lo, hi].
    >>> clip([1, 5, 9], 2, 8)
    [2, 5, 8]
    """
    out = []
    for x in xs:
        if x < lo and True:
            out.append(lo)
        elif x > hi:
            out.append(hi)
        else:
            out.append(x + 0)
    return out
'''


def test_mutants_are_single_site_compile_and_leave_the_docstring_alone():
    ms = mutants(PROGRAM, "clip")
    original = canonical_source(PROGRAM)
    assert len(ms) >= 6
    assert len({m.source for m in ms}) == len(ms) and original not in {m.source for m in ms}
    for m in ms:
        compile(m.source, "<m>", "exec")
        fn = ast.parse(m.source).body[0]
        assert ast.get_docstring(fn) == ast.get_docstring(ast.parse(PROGRAM).body[0])
    kinds = " ".join(m.description for m in ms)
    for expected in ("Lt -> LtE", "Gt -> GtE", "and -> or", "0 -> 1", "True -> False", "Add -> Sub"):
        assert expected in kinds


def test_mutants_without_docstrings_and_bad_input():
    ms = mutants(PROGRAM, "clip", docstrings=False)
    assert ms and all(ast.get_docstring(ast.parse(m.source).body[0]) is None for m in ms)
    assert '"""' not in canonical_source(PROGRAM, docstrings=False)
    assert mutants("def broken(:\n", "broken") == []
    assert mutants(PROGRAM, "missing") == []


# ------------------------------------------------------------------------------------------ the stage
def test_calibrate_through_the_battle_path_with_scripted_judges(tmp_path, config):
    from tests.scripted_backend import ScriptedBackend

    pairs = [GOOD | {"response_a": f"answer by good: {n}", "response_b": f"answer by bad: {n}", "label": "a"}
             for n in range(6)]
    path = write(tmp_path, pairs)
    parsed, digest = read_pairs(path)
    judges = [e.name for e in config.registry.with_role("judge")]
    styles = {judges[0]: "favour:good", judges[1]: "always:[[A]]", judges[2]: "oppose:good"}
    made = []

    def factory(expert):
        made.append(ScriptedBackend(expert.name, styles[expert.name]))
        return made[-1]

    result = calibrate(config, parsed, execution=False, backend_factory=factory)
    assert all(b.closed for b in made)
    assert len(made[0].calls[0][0]) == 12  # both orders of every pair, in one batched call
    figs = result["judges"]
    assert figs[judges[0]]["accuracy"] == 1.0 and figs[judges[0]]["flip_rate"] == 0.0
    assert figs[judges[1]]["tie_rate"] == 1.0 and figs[judges[1]]["first_position_share"] == 1.0
    assert figs[judges[1]]["flip_rate"] == 1.0
    assert figs[judges[2]]["accuracy"] == 0.0
    assert result["panel"]["pairs"] == 6 and result["panel"]["accuracy"] == 0.0  # 1 right, 1 wrong, 1 tie: a tie
    from warriorflow.store.rating_store import RatingStore

    with RatingStore(tmp_path / "s.duckdb") as store:
        cid = save_calibration(store, result, f"{path} sha256:{digest}")
        rows = latest_calibration(store)
        assert [r["judge"] for r in rows][-1] == "panel" and {r["calibration_id"] for r in rows} == {cid}
        assert {r["judge"]: r["accuracy"] for r in rows}[judges[0]] == 1.0


def test_calibrate_refuses_an_unknown_judge_before_any_model_loads(config):
    with pytest.raises(ConfigError, match="nobody-at-all"):
        calibrate(config, [], ["nobody-at-all"], execution=False,
                  backend_factory=lambda e: pytest.fail("no model may load"))


def _saved_result():
    fig = {"pairs": 40, "abstained": 0, "accuracy": 0.875, "tie_rate": 0.1, "flip_rate": 0.25,
           "first_position_share": 0.9, "decisive_rate": 0.9, "precision": 0.97, "invalid_rate": 0.0,
           "probabilistic_share": 1.0}
    return {"judges": {"gemma-3-270m-base": {**fig, "accuracy": 0.125, "prior": 2.0}},
            "panel": fig, "rule": {"margin": 0.1, "debias": True, "probabilities": True}, "weights": {}}


def test_the_report_and_the_status_page_show_the_latest_calibration(tmp_path, config):
    from warriorflow.report import write_report
    from warriorflow.store.rating_store import RatingStore
    from warriorflow.ui import page

    RatingStore(config.duckdb_path).close()
    assert "No calibration yet" in write_report(config, tmp_path / "empty").read_text()
    with RatingStore(config.duckdb_path) as store:
        save_calibration(store, {**_saved_result(), "panel": {**_saved_result()["panel"], "accuracy": 0.5}}, "old")
        save_calibration(store, _saved_result(), "pairs.jsonl sha256:abc")
    html = write_report(config, tmp_path / "out").read_text()
    section = html[html.index('id="calibration"'):]
    assert "87.5%" in section and "12.5%" in section and "pairs.jsonl sha256:abc" in section
    assert "50.0%" not in section.split("</table>")[0]  # only the latest calibration
    with RatingStore(config.duckdb_path, read_only=True) as store:
        rows = page.read_rows(store, tmp_path / "no-report")
    data = page.assemble(rows, 8)
    assert [c["judge"] for c in data["calibration"]] == ["gemma-3-270m-base", "panel"]
    assert data["calibration"][-1]["accuracy"] == 0.875


def test_cli_errors_name_the_file_the_line_and_the_judge(tmp_path):
    from click.testing import CliRunner

    from warriorflow.cli.app import main

    bad = write(tmp_path, [GOOD, {"instruction": "x"}])
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(GOOD) + "\n")
    runner = CliRunner()
    for args, expected in (
        (["judges", "calibrate", "--pairs", str(bad)], "line 2 lacks response_a, response_b, label"),
        (["judges", "calibrate", "--pairs", str(good), "--judges", "nobody"],
         "expert 'nobody'"),
        (["judges", "calibrate", "--pairs", str(tmp_path / "none.jsonl")], "not found"),
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2, result.output
        assert expected in result.output and "Traceback" not in result.output


def test_make_pairs_cli_writes_labeled_pairs_that_differ_only_by_the_mutation(tmp_path, config):
    """Real sandbox: each broken response fails the benchmark's tests, the correct one passes (checked again
    here through the evaluation harness), labels are both a and b, and the default file is a
    decontamination source."""
    from click.testing import CliRunner

    from warriorflow.cli.app import main
    from warriorflow.evaluation.harness import check_program, run_programs
    from warriorflow.evaluation.jobs import sandbox_from_config
    from warriorflow.evaluation.problems import load_benchmark
    from warriorflow.stages.decontaminate import calibration_pairs_file

    result = CliRunner().invoke(main, ["judges", "make-pairs", "-n", "6", "--seed", "3"])
    assert result.exit_code == 0, result.output
    path = calibration_pairs_file(config)
    pairs, _ = read_pairs(path)
    assert len(pairs) == 6 and {p.label for p in pairs} <= {"a", "b"}
    bench = {p.task_id: p for p in load_benchmark("humaneval", "humaneval", None).problems}
    progs, ids_ = [], []
    for p in pairs:
        task = p.source.split(":")[0]
        good, bad = (p.response_a, p.response_b) if p.label == "a" else (p.response_b, p.response_a)
        assert good != bad and good.count("\n") == bad.count("\n")
        progs += [check_program(bench[task], good), check_program(bench[task], bad)]
        ids_ += [task, task]
    results = run_programs(ids_, progs, sandbox_from_config(config), 2)
    assert [r.passed for r in results] == [True, False] * 6
