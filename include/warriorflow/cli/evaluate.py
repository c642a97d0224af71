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
    """Evaluate MODEL_REF (expert:<name>, base:<model>, hf:<dir> or a training run id): pass@1 (and pass@k with
    evaluation.samples > 1), the code run in the bubblewrap sandbox. Runs the evaluation's jobs in this process."""
    from warriorflow.evaluation.harness import HARNESS_VERSION
    from warriorflow.evaluation.run import compare_and_decide, evaluate_model

    config = config_of(ctx)
    report = evaluate_model(config, model_ref, names=list(names) or None, limit=limit, all_problems=all_problems)
    decision = compare_and_decide(config, model_ref, against) if compare or against else None
    if as_json:
        out = {"model_ref": model_ref, "eval_id": report.eval_id, "generation_s": report.generation_s,
               "scoring_s": report.scoring_s, "harness_version": HARNESS_VERSION,
               "benchmarks": [{"name": s.name, "pass_at_1": s.pass_at_1, "pass_at_k": s.pass_at_k,
                               "n_problems": s.n_problems, "n_passed": s.n_passed, "reasons": s.reasons,
                               "data_sha256": s.data_sha256, "harness_version": HARNESS_VERSION}
                              for s in report.scores]}
        if decision is not None:
            out["decision"] = {"previous": decision.previous, "promoted": decision.promoted,
                               "deltas": decision.deltas, "mean_delta": decision.mean_delta,
                               "test": decision.test, "statistic": decision.statistic,
                               "p_value": decision.p_value, "n_paired": decision.n_paired,
                               "evidence": decision.evidence, "decision_id": decision.decision_id,
                               "champion_alias": decision.champion_alias, "reasons": decision.reasons}
        click.echo(json.dumps(out, indent=2))
        return
    ks = sorted({k for s in report.scores for k in s.pass_at_k if k != "1"}, key=int)
    click.echo(f"{'benchmark':<16} {'pass@1':>7} " + "".join(f"{'pass@' + k:>8} " for k in ks)
               + f"{'passed':>9}  reasons")
    for s in report.scores:
        reasons = ", ".join(f"{k} {v}" for k, v in s.reasons.items())
        click.echo(f"{s.name:<16} {s.pass_at_1:>7.3f} " + "".join(f"{s.pass_at_k[k]:>8.3f} " for k in ks)
                   + f"{f'{s.n_passed}/{s.n_problems}':>9}  {reasons}")
    click.echo(f"evaluation {report.eval_id}, harness {HARNESS_VERSION}; generation {report.generation_s:.1f}s, "
               f"sandboxed checking {report.scoring_s:.1f}s")
    if decision is not None:
        verdict = click.style("promoted", fg="green") if decision.promoted else click.style("not promoted", fg="red")
        deltas = ", ".join(f"{b} {d:+.3f}" for b, d in decision.deltas.items()) or "-"
        click.echo(f"vs {decision.previous or '(nothing)'}: {deltas} -> {verdict}")
        if decision.test is not None:
            click.echo(f"test {decision.test}: statistic {decision.statistic:g}, p-value {decision.p_value:.4g} "
                       f"(one-sided, {decision.n_paired} problems paired)")
        for reason in decision.reasons:
            click.echo(f"  - {reason}")
        if decision.champion_alias:
            click.echo(f"champion alias: {decision.champion_alias}")


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.pass_context
def models_cmd(ctx: click.Context, as_json: bool) -> None:
    """List training runs and evaluated models with their latest pass@1 per benchmark."""
    from warriorflow.evaluation.records import decisions, model_table
    from warriorflow.store.rating_store import RatingStore

    config = config_of(ctx)
    latest = None
    if not config.duckdb_path.exists():
        rows = []
    else:
        with RatingStore(config.duckdb_path, read_only=True) as store:
            rows = model_table(store)
            latest = next(iter(decisions(store)), None)
    alias, alias_error = _champion_alias(config) if any(r["champion"] for r in rows) else (None, None)
    for r in rows:
        r["champion_alias"] = bool(alias) and alias.get("training_run_id") == r["model_ref"]
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
        if r.get("p_value") is not None:
            promo += f" ({r['test']} p={r['p_value']:.3g})"
        click.echo(f"{r['model_ref'][:40]:<40} {r['kind']:<12} {str(r['status'] or '-'):<8} {scores}  {promo}")
    if latest is not None:
        verdict = "promoted" if latest["promoted"] else "not promoted"
        stat = f"{latest['test']}, statistic {latest['statistic']:g}, p = {latest['p_value']:.4g}" \
            if latest.get("p_value") is not None else "no test"
        click.echo(f"latest decision: {latest['candidate']} vs {latest['previous'] or '(nothing)'}: {verdict} "
                   f"({stat}; {latest['n_paired'] or 0} problems paired)")
        for reason in latest["reasons"] or []:
            click.echo(f"  - {reason}")
    if alias:
        click.echo(f"champion alias: {alias['model_uri']} ({alias['training_run_id']}, decision "
                   f"{str(alias.get('decision_id'))[:12]}, p={alias.get('p_value')})")
    elif alias_error:
        click.echo(click.style(f"champion alias: {alias_error}", fg="red"), err=True)


def _champion_alias(config) -> tuple[dict | None, str | None]:
    """The object store's champion alias (checked against its model), or the error that says why not."""
    from warriorflow.errors import WarriorflowError
    from warriorflow.store.champion import read_champion
    from warriorflow.store.objects import open_objects

    try:
        return read_champion(open_objects(config)), None
    except WarriorflowError as exc:
        return None, str(exc)


@click.group("evaluate-job")
def evaluate_job() -> None:
    """The evaluation's jobs (what the retrain DAG runs in pods or local processes): generate on the target's
    resources, check in the sandbox on CPUs. The writer plans and ingests them."""


def _request_key(config, in_uri: str) -> tuple:
    from warriorflow.errors import ConfigError
    from warriorflow.evaluation.jobs import REQUEST, ROOT
    from warriorflow.store.objects import open_objects

    objects = open_objects(config)
    root = objects.uri("").rstrip("/") + "/"
    key = in_uri[len(root):] if in_uri.startswith(root) else in_uri
    from urllib.parse import unquote

    key = key if objects.exists(key) else unquote(key)
    if not (key.startswith(ROOT + "/") and key.endswith("/" + REQUEST)) or not objects.exists(key):
        raise ConfigError(f"evaluation request {in_uri}", f"is not an evaluation request under {root}{ROOT}/",
                          "pass the URI the plan step printed, with the settings that planned it")
    return objects, key


@evaluate_job.command("generate")
@click.option("--in", "in_uri", required=True, help="URI of the evaluation request (evals/<id>/request.json).")
@click.pass_context
def generate_cmd(ctx: click.Context, in_uri: str) -> None:
    """Generate every planned prompt's samples with the evaluated model; write generations.jsonl."""
    from warriorflow.evaluation.jobs import generate

    config = config_of(ctx)
    objects, key = _request_key(config, in_uri)
    out = generate(config, objects, key, progress=click.echo)
    click.echo(objects.uri(out))


@evaluate_job.command("check")
@click.option("--in", "in_uri", required=True, help="URI of the evaluation request (evals/<id>/request.json).")
@click.pass_context
def check_cmd(ctx: click.Context, in_uri: str) -> None:
    """Run each sample's check program in the sandbox (evaluation.sandbox.workers at once); write verdicts.jsonl."""
    from warriorflow.evaluation.jobs import check

    config = config_of(ctx)
    objects, key = _request_key(config, in_uri)
    out = check(config, objects, key, progress=click.echo)
    click.echo(objects.uri(out))
