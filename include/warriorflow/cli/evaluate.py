"""`warriorflow evaluate` and `warriorflow models`: sandboxed pass@1 evaluation, comparison and promotion."""

from __future__ import annotations

import json

import click

from warriorflow.cli.context import config_of


@click.command("evaluate")
@click.argument("model_ref")
@click.option("-b", "--benchmark", "names", multiple=True, help="Benchmark name (repeatable; default: all enabled).")
@click.option("-n", "--limit", type=click.IntRange(min=1),
              help="Problems per benchmark (default: evaluation.problems_per_benchmark).")
@click.option("--all", "all_problems", is_flag=True, help="Evaluate every problem of each benchmark.")
@click.option("--compare/--no-compare", default=False,
              help="Compare with the champion (else the baseline) and record the promotion decision.")
@click.option("--against", help="Compare with this model_ref instead of the champion.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores (and decision) as JSON.")
@click.pass_context
def evaluate_cmd(ctx: click.Context, model_ref: str, names: tuple[str, ...], limit: int | None, all_problems: bool,
                 compare: bool, against: str | None, as_json: bool) -> None:
    """Evaluate MODEL_REF (expert:<name>, hf:<dir> or a training run id): pass@1, greedy, code run in bwrap."""
    from warriorflow.evaluation.run import compare_and_decide, evaluate_model

    config = config_of(ctx)
    report = evaluate_model(config, model_ref, names=list(names) or None, limit=limit, all_problems=all_problems)
    decision = compare_and_decide(config, model_ref, against) if compare or against else None
    if as_json:
        out = {"model_ref": model_ref, "generation_s": report.generation_s, "scoring_s": report.scoring_s,
               "benchmarks": [{"name": s.name, "pass_at_1": s.pass_at_1, "n_problems": s.n_problems,
                               "n_passed": s.n_passed, "reasons": s.reasons(), "data_sha256": s.data_sha256,
                               "harness_version": s.harness_version} for s in report.scores]}
        if decision is not None:
            out["decision"] = {"previous": decision.previous, "promoted": decision.promoted,
                               "deltas": decision.deltas, "mean_delta": decision.mean_delta,
                               "reasons": decision.reasons}
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{'benchmark':<16} {'pass@1':>7} {'passed':>9}  reasons")
    for s in report.scores:
        reasons = ", ".join(f"{k} {v}" for k, v in s.reasons().items())
        click.echo(f"{s.name:<16} {s.pass_at_1:>7.3f} {f'{s.n_passed}/{s.n_problems}':>9}  {reasons}")
    click.echo(f"harness {report.scores[0].harness_version if report.scores else '-'}; generation "
               f"{report.generation_s:.1f}s, sandboxed scoring {report.scoring_s:.1f}s")
    if decision is not None:
        verdict = click.style("promoted", fg="green") if decision.promoted else click.style("not promoted", fg="red")
        deltas = ", ".join(f"{b} {d:+.3f}" for b, d in decision.deltas.items()) or "-"
        click.echo(f"vs {decision.previous or '(nothing)'}: {deltas} -> {verdict} ({'; '.join(decision.reasons)})")


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.pass_context
def models_cmd(ctx: click.Context, as_json: bool) -> None:
    """List training runs and evaluated models with their latest pass@1 per benchmark."""
    from warriorflow.evaluation.records import model_table
    from warriorflow.store.rating_store import RatingStore

    config = config_of(ctx)
    if not config.duckdb_path.exists():
        rows = []
    else:
        with RatingStore(config.duckdb_path, read_only=True) as store:
            rows = model_table(store)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no models yet: train one, or `warriorflow evaluate expert:<name>`")
        return
    benches = sorted({b for r in rows for b in r["scores"]})
    click.echo(f"{'model':<40} {'kind':<12} {'status':<8} " + " ".join(f"{b[:11]:>11}" for b in benches)
               + "  promotion")
    for r in rows:
        scores = " ".join(f"{r['scores'][b]:>11.3f}" if b in r["scores"] else f"{'-':>11}" for b in benches)
        promo = "champion" if r["champion"] else {True: "promoted", False: "rejected", None: "-"}[r["promoted"]]
        click.echo(f"{r['model_ref'][:40]:<40} {r['kind']:<12} {str(r['status'] or '-'):<8} {scores}  {promo}")
