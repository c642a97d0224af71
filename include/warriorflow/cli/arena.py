"""The arena steps by hand: plan, job (one model job: what a pod runs), battle (a whole cycle),
ingest-responses, plan-executions, ingest-executions, plan-votes, ingest-votes, rate (and select gold), export,
the leaderboard, and battle-batch (the single-process reference batch)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from warriorflow.cli.context import FiniteFloatRange, config_of, echo_report, run_id_option, run_step, store_of


@click.command()
@run_id_option
@click.pass_context
def plan(ctx: click.Context, run_id: str | None) -> None:
    """Plan the missing battles of the selected instructions; write their response jobs (printed, one URI each)."""
    from warriorflow.stages.base import new_run_id
    from warriorflow.stages.plan import plan_stage
    from warriorflow.store.objects import open_objects

    config = config_of(ctx)
    objects = open_objects(config)
    with store_of(ctx) as store:
        report = plan_stage(config, store, objects, run_id or new_run_id())
    echo_report(report)
    for job in report.value:
        click.echo(objects.uri(job["key"]))


@click.command("job")
@click.option("--in", "in_uri", required=True, help="The job's input: a file:// or s3:// URI under runs/RUN/jobs/.")
@click.pass_context
def job(ctx: click.Context, in_uri: str) -> None:
    """Run one model job, file in and file out (what a pod or a local worker process runs): load the job's one
    model, answer, judge, score, tag or embed its items, write the result file and its receipt. Never opens the
    rating store; resumes from its checkpoints in the object store; does nothing when its result exists."""
    from warriorflow.stages.jobs import job_location, run_job

    config = config_of(ctx)
    objects, key = job_location(config, in_uri)
    result = run_job(config, objects, key, progress=click.echo)
    click.echo(json.dumps(result.receipt or {"job_id": result.job_id, "skipped": result.skipped}, sort_keys=True))


@click.command("plan-votes")
@click.option("--round", "round_no", type=click.IntRange(min=1), default=1, show_default=True,
              help="The judging round (job ids carry it).")
@run_id_option
@click.pass_context
def plan_votes_cmd(ctx: click.Context, round_no: int, run_id: str | None) -> None:
    """Write a judging round's judge jobs: the votes every open battle still needs (the single writer)."""
    from warriorflow.stages.base import new_run_id, run_as_writer
    from warriorflow.stages.judging import plan_votes_stage
    from warriorflow.store.objects import open_objects

    config = config_of(ctx)
    report = run_as_writer(config, plan_votes_stage, run_id or new_run_id(), round_no=round_no)
    echo_report(report)
    objects = open_objects(config)
    for j in report.value:
        click.echo(objects.uri(j["key"]))


@click.command("plan-executions")
@run_id_option
@click.pass_context
def plan_executions_cmd(ctx: click.Context, run_id: str | None) -> None:
    """Write the execute jobs: every open battle whose two responses' code has not run in the sandbox yet (the
    single writer); each job's URI is printed. Run them with `warriorflow job --in URI`."""
    from warriorflow.stages.base import new_run_id, run_as_writer
    from warriorflow.stages.execute import plan_executions_stage
    from warriorflow.store.objects import open_objects

    config = config_of(ctx)
    report = run_as_writer(config, plan_executions_stage, run_id or new_run_id())
    echo_report(report)
    objects = open_objects(config)
    for j in report.value or []:
        click.echo(objects.uri(j["key"]))


@click.command("ingest-executions")
@run_id_option
@click.pass_context
def ingest_executions_cmd(ctx: click.Context, run_id: str) -> None:
    """Merge a run's execute job results (the sandbox's evidence for the judges) into the store (the single writer)."""
    run_step(ctx, "execute:ingest_executions_stage", run_id)


@click.command("battle-batch")
@click.option("--in", "in_uri", required=True, help="Batch input: a file:// or s3:// URI of a planned batch (JSON).")
@click.option("--out", "out_uri", required=True, help="Where to write the battle results (JSON Lines).")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path), default=None,
              help="Where the batch checkpoints (default: below $WARRIORFLOW_HOME/checkpoints).")
@click.pass_context
def battle_batch(ctx: click.Context, in_uri: str, out_uri: str, checkpoint_dir: Path | None) -> None:
    """Run one battle batch in one process with every expert it needs: the single-process reference the
    job-based cycle is checked against (and the benchmarks' workload). Never opens the rating store.

    Both responses are generated batched per expert, then all judge calls batched per judge. A killed
    batch resumes from its checkpoint without redoing finished work or duplicating votes.
    """
    from warriorflow.stages.battle import run_battle_batch_uri

    records = run_battle_batch_uri(in_uri, out_uri, config_of(ctx), checkpoint_dir=checkpoint_dir,
                                   progress=click.echo)
    kinds = {}
    for r in records:
        kinds[r["type"]] = kinds.get(r["type"], 0) + 1
    click.echo(f"wrote {out_uri}: " + ", ".join(f"{v} {k}s" for k, v in sorted(kinds.items())))


@click.command()
@run_id_option
@click.pass_context
def battle(ctx: click.Context, run_id: str | None) -> None:
    """One battle cycle here: plan, run the response jobs, judge in rounds (jobs), ingest, rate, select gold.
    Jobs run one after another in this process, each with its one model."""
    from warriorflow.stages.base import new_run_id
    from warriorflow.stages.cycles import battle_cycle

    for report in battle_cycle(config_of(ctx), run_id or new_run_id(), progress=click.echo):
        echo_report(report)


@click.command("ingest-responses")
@run_id_option
@click.pass_context
def ingest_responses_cmd(ctx: click.Context, run_id: str) -> None:
    """Merge a run's response job results into the rating store (the single writer)."""
    run_step(ctx, "ingest_battles:ingest_responses_stage", run_id)


@click.command("ingest-votes")
@run_id_option
@click.pass_context
def ingest_votes_cmd(ctx: click.Context, run_id: str) -> None:
    """Merge a run's judge job results, then close the battles whose judging is over (the single writer)."""
    run_step(ctx, "ingest_battles:ingest_votes_stage", run_id)


@click.command()
@click.option("--battles", "battles_file", type=click.File("r"), default=None,
              help="Re-rate an exported battle log (JSON Lines) instead of the rating store.")
@click.option("--k", type=FiniteFloatRange(min=0, min_open=True), default=None, help="Elo K (default: rating.k, 40).")
@click.option("--alpha", type=FiniteFloatRange(0, 1), default=None,
              help="Final-score weight of the Elo expectation (default 0.7).")
@click.option("--init", "initial", type=FiniteFloatRange(-1e9, 1e9), default=None,
              help="Elo initial rating (default 1000).")
@click.option("--rounds", type=click.IntRange(min=0), default=None,
              help="Bradley-Terry bootstrap rounds (default 100).")
@click.option("--json", "as_json", is_flag=True, help="Print the interchange JSON.")
@run_id_option
@click.pass_context
def rate(ctx: click.Context, battles_file, k, alpha, initial, rounds, as_json: bool, run_id: str | None) -> None:
    """Ratings from a vote log: Elo, Bradley-Terry with CIs, final scores and gold.

    With --battles FILE: a pure computation over an exported log (one battle per line, in processing
    order: {"battle_id","instruction_id","attacker","defender","votes":{judge: verdict}}).
    Without: recompute the store's ratings and gold selections.
    """
    from pydantic import ValidationError

    from warriorflow.config import RatingSettings
    from warriorflow.errors import ConfigError
    from warriorflow.method import rating
    from warriorflow.store.vote_log import parse_battle_log

    config = config_of(ctx)
    overrides = {k_: v for k_, v in {"k": k, "alpha": alpha, "initial": initial, "bootstrap_rounds": rounds}.items()
                 if v is not None}
    try:
        r = RatingSettings.model_validate({**config.settings.rating.model_dump(), **overrides})
    except ValidationError as exc:
        names = {"k": "--k", "alpha": "--alpha", "initial": "--init", "bootstrap_rounds": "--rounds"}
        raise ConfigError("warriorflow rate", "; ".join(f"{names.get(e['loc'][0], e['loc'][0])}: {e['msg']}"
                                                         for e in exc.errors()),
                          "use K > 0, 0 <= alpha <= 1, a finite initial rating and rounds >= 0") from None
    if battles_file is None and overrides:
        raise ConfigError("warriorflow rate", f"{', '.join(sorted(overrides))} only apply to --battles FILE",
                          "set rating.* in the settings file to change how the store is rated")
    if battles_file is None:
        from warriorflow.stages.base import new_run_id
        from warriorflow.stages.gold import gold_stage
        from warriorflow.stages.rate import rate_stage

        run_id = run_id or new_run_id()
        with store_of(ctx) as store:
            echo_report(rate_stage(config, store, run_id))
            echo_report(gold_stage(config, store, run_id))
        return
    try:
        log_ = parse_battle_log(battles_file)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"battle log {battles_file.name}", str(exc),
                          "write one battle per line, as `warriorflow export battles` does") from None
    out = rating.rate(log_, k=r.k, alpha=r.alpha, initial=r.initial, bootstrap_rounds=r.bootstrap_rounds,
                      seed=r.seed)
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    for name, value in sorted(out["elo"].items(), key=lambda kv: -kv[1]):
        bt = out["bt"].get(name, {})
        click.echo(f"{name:<32} elo {value:8.1f}   bt {bt.get('rating', float('nan')):8.1f} "
                   f"[{bt.get('lo', float('nan')):.1f}, {bt.get('hi', float('nan')):.1f}]")
    click.echo(f"gold selections: {len(out['gold'])}; invalid votes: {out['invalid_votes']}")


@click.group()
def export() -> None:
    """Export data in formats other tools read."""


@export.command("battles")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "fastchat"]), default="jsonl", show_default=True,
              help="jsonl: our interchange log (input of `rate --battles`); fastchat: Chatbot Arena battles "
                   "(model_a, model_b, winner).")
@click.option("--out", "out_file", type=click.File("w"), default="-", help="Output file (default: stdout).")
@click.pass_context
def export_battles_cmd(ctx: click.Context, fmt: str, out_file) -> None:
    """Export the battle log."""
    from warriorflow.method import rating
    from warriorflow.store.jsonl import encode_line
    from warriorflow.store.rating_store import RatingStore
    from warriorflow.store.vote_log import export_battles, parse_battle_log

    with RatingStore(config_of(ctx).duckdb_path, read_only=True) as store:
        rows = export_battles(store)
    if fmt == "fastchat":
        rows = rating.to_fastchat(parse_battle_log(encode_line(r).decode() for r in rows))
    for row in rows:
        out_file.write(encode_line(row).decode())


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def leaderboard(ctx: click.Context, as_json: bool) -> None:
    """Elo, Bradley-Terry and style-controlled Bradley-Terry (95% CIs), battles and win rate, the style coefficients;
    per judge: invalid votes, position bias, agreement."""
    from warriorflow.method import leaderboard as lb
    from warriorflow.store.rating_store import RatingStore
    from warriorflow.store.vote_log import vote_log

    with RatingStore(config_of(ctx).duckdb_path, read_only=True) as store:
        log_ = vote_log(store)
        ratings = store.query("SELECT * FROM rating_history WHERE rating_version = (SELECT rating_version FROM "
                              "rating_history ORDER BY computed_at DESC LIMIT 1)")
        votes = store.query("SELECT battle_id, judge, raw_verdict, verdict FROM votes")
    experts_ = lb.expert_table(log_, ratings)
    judges = lb.judge_table(votes, {b.battle_id: b.votes for b in log_})
    summary = lb.overall(votes, log_)
    style = lb.style_coefficients(ratings)
    if as_json:
        click.echo(json.dumps({"experts": experts_, "judges": judges, "overall": summary, "style": style},
                              indent=2))
        return

    def fmt(x, spec=".1f"):
        return "-" if x is None else format(x, spec)

    click.echo(f"{'expert':<32} {'elo':>7} {'bt':>7} {'95% CI':>17} {'bt style':>8} {'95% CI':>17} {'battles':>7} "
               f"{'win rate':>8}")
    for r in experts_:
        ci = f"[{fmt(r['bt_lo'])}, {fmt(r['bt_hi'])}]"
        ci_style = f"[{fmt(r['bt_style_lo'])}, {fmt(r['bt_style_hi'])}]"
        click.echo(f"{r['expert']:<32} {fmt(r['elo']):>7} {fmt(r['bt']):>7} {ci:>17} {fmt(r['bt_style']):>8} "
                   f"{ci_style:>17} {r['battles']:>7} {fmt(r['win_rate'], '.0%'):>8}")
    if style:
        click.echo(f"bt style: Bradley-Terry with length and markdown held fixed; style effects {lb.style_line(style)}")
    click.echo(f"\n{'judge':<32} {'votes':>6} {'invalid':>8} {'1st-pos wins':>12} {'agreement':>9}")
    for j in judges:
        click.echo(f"{j['judge']:<32} {j['votes']:>6} {fmt(j['invalid_rate'], '.0%'):>8} "
                   f"{fmt(j['position_bias'], '.0%'):>12} {fmt(j['agreement'], '.0%'):>9}")
    click.echo(f"\n{summary['battles']} battles, {summary['votes']} votes, invalid-vote rate "
               f"{fmt(summary['invalid_vote_rate'], '.1%')}")
