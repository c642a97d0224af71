"""End to end on the real embedded baseline: SmolLM2 (llama.cpp) answers 2 problems per benchmark, the code
runs in the real bubblewrap sandbox, results land in eval_results with data sha256 and harness version,
and `warriorflow models` lists the model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from warriorflow.evaluation.harness import HARNESS_VERSION
from warriorflow.sandbox import REASONS
from warriorflow.store.rating_store import RatingStore


@pytest.mark.slow
def test_evaluate_smollm2_through_the_cli(config, tmp_path, monkeypatch):
    from warriorflow.cli import main

    settings = config.settings_file.read_text().replace("max_tokens: 384", "max_tokens: 48")
    small = tmp_path / "settings.yaml"
    small.write_text(settings)
    (tmp_path / "experts.embedded.yaml").write_text(config.experts_file.read_text())
    monkeypatch.setenv("WARRIORFLOW_CONFIG", str(small))
    cli = CliRunner()
    # every kind, the embedded default's disabled CRUXEval included (named benchmarks run even when disabled)
    every = [x for n in ("humaneval", "mbpp", "mbppplus", "cruxeval-i", "cruxeval-o") for x in ("-b", n)]
    result = cli.invoke(main, ["evaluate", "expert:smollm2-135m-instruct", *every, "-n", "2", "--compare", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    names = {b["name"] for b in doc["benchmarks"]}
    assert names == {"humaneval", "mbpp", "mbppplus", "cruxeval-i", "cruxeval-o"}
    for b in doc["benchmarks"]:
        assert b["n_problems"] == 2 and 0.0 <= b["pass_at_1"] <= 1.0
        assert set(b["reasons"]) <= set(REASONS) | {"ground_truth_error"}
        assert len(b["data_sha256"]) == 64 and b["harness_version"] == HARNESS_VERSION
    with RatingStore(config.duckdb_path, read_only=True) as store:
        rows = store.query("SELECT benchmark, n_problems, data_sha256, harness_version, details FROM eval_results "
                           "WHERE model_ref = 'expert:smollm2-135m-instruct'")
    assert len(rows) == 5 and all(r["harness_version"] == HARNESS_VERSION for r in rows)
    assert all(len(json.loads(r["details"])["problems"]) == 2 for r in rows)
    listing = cli.invoke(main, ["models"])
    assert listing.exit_code == 0 and "expert:smollm2-135m-instruct" in listing.output
