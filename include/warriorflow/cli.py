"""`warriorflow ...`: every stage runnable by hand and inside a pod."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from warriorflow import __version__
from warriorflow.errors import WarriorflowError

_MARK = {"ok": click.style("✓", fg="green"), "warn": click.style("!", fg="yellow"), "fail": click.style("✗", fg="red")}


class _Group(click.Group):
    """Turn warriorflow errors into a clear message and exit code 2, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except WarriorflowError as exc:
            click.echo(click.style("error: ", fg="red") + str(exc), err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="warriorflow")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), envvar="WARRIORFLOW_CONFIG",
              help="Settings YAML (default: $WARRIORFLOW_CONFIG, else include/config/embedded.yaml).")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, verbose: bool) -> None:
    """warriorflow: training data for code LLMs from expert battles."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "sentence_transformers", "httpx", "botocore"):  # their INFO is chatter
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    ctx.obj = {"config_file": config_file}


def _config(ctx: click.Context):
    from warriorflow.config import load_config

    if "config" not in ctx.obj:
        ctx.obj["config"] = load_config(ctx.obj["config_file"])
    return ctx.obj["config"]


@main.command()
@click.option("--init", is_flag=True, help="Create/migrate the rating store if needed.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_context
def doctor(ctx: click.Context, init: bool, as_json: bool) -> None:
    """Check models and checksums, the DuckDB schema, the object store and the sandbox; say what to fix."""
    from warriorflow.doctor import run_doctor

    checks = run_doctor(_config(ctx), init=init)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            click.echo(f"{_MARK[c.status]} {c.name:<38} {c.detail}")
        fixes = [c for c in checks if c.status != "ok" and c.fix]
        if fixes:
            click.echo("\nWhat to fix:")
            for c in fixes:
                click.echo(f"  - {c.name}: {c.fix}")
        else:
            click.echo(click.style("\nall green", fg="green"))
    if any(c.status == "fail" for c in checks):
        ctx.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@click.pass_context
def experts(ctx: click.Context, as_json: bool) -> None:
    """List the experts registry."""
    config = _config(ctx)
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in config.registry.experts], indent=2))
        return
    click.echo(f"# {config.experts_file}")
    click.echo(f"{'name':<30} {'backend':<9} {'roles':<18} {'template':<9} {'gpus':<4} model")
    for e in config.registry.experts:
        roles = ",".join(r.value for r in e.roles)
        click.echo(f"{e.name:<30} {e.backend.value:<9} {roles:<18} {e.chat_template.source:<9} "
                   f"{e.resources.gpus:<4} {e.model.describe()}")


def _run_id_option(f):
    return click.option("--run-id", default=None, help="Run id (default: manual__<UTC time>); re-using one is safe.")(f)


def _report(report) -> None:
    click.echo(report.table())


def _store(ctx: click.Context):
    from warriorflow.store.rating_store import RatingStore

    return RatingStore(_config(ctx).duckdb_path)


@main.command()
@_run_id_option
@click.option("--expert", "names", multiple=True, help="Only these experts (default: every expert with the mine role).")
@click.option("--ingest/--no-ingest", default=True, show_default=True,
              help="Validate and merge the result files into the rating store (--no-ingest: worker mode, files only).")
@click.option("--preview", type=int, default=None,
              help="Only print N instructions per expert from the first grid point; write nothing.")
@click.option("--max-tokens", type=int, default=None, help="Override mining.max_tokens.")
@click.pass_context
def mine(ctx: click.Context, run_id: str | None, names: tuple[str, ...], ingest: bool, preview: int | None,
         max_tokens: int | None) -> None:
    """Mine instructions from the experts' own chat templates (Magpie-style pre-query completion).

    Samples the temperature x top_p grid, sanitises, writes result files to the object store under
    runs/RUN_ID/mine/, then (unless --no-ingest) validates them with Great Expectations and merges them.
    """
    from warriorflow import pipeline

    config = _config(ctx)
    if max_tokens:
        config.settings = config.settings.model_copy(
            update={"mining": config.settings.mining.model_copy(update={"max_tokens": max_tokens})})
    experts_ = [config.registry.get(n) for n in names] if names else config.registry.with_role("mine")
    if preview:
        _preview(config, experts_, preview)
        return
    run_id = run_id or pipeline.new_run_id()
    objects = pipeline.open_objects(config)
    pipeline.mine_to_files(config, objects, run_id, experts_, progress=click.echo)
    if ingest:
        with _store(ctx) as store:
            _report(pipeline.ingest_mined(config, store, objects, run_id))


def _preview(config, experts_, n: int) -> None:
    from warriorflow.inference.base import Sampling
    from warriorflow.inference.factory import backend_for
    from warriorflow.models.locate import resolve_model
    from warriorflow.stages.mining_prompt import mining_prompt

    m = config.settings.mining
    for expert in experts_:
        resolved = resolve_model(expert.name, expert.model, config.model_cache)
        prompt = mining_prompt(expert, config, resolved.path)
        sampling = Sampling(max_tokens=m.max_tokens, temperature=m.temperatures[0], top_p=m.top_ps[0],
                            stop=prompt.stops)
        with backend_for(expert, config) as backend:
            gens = backend.complete([prompt.text] * n, [sampling.with_(seed=m.seed + i) for i in range(n)])
        for gen in gens:
            text = gen.text.strip()
            click.echo(click.style(f"[{expert.name} · {prompt.mode} · T={sampling.temperature} "
                                   f"top_p={sampling.top_p} · prefix {prompt.sha256[:10]}]", fg="cyan"))
            click.echo(text if text else click.style("(empty output)", fg="yellow"))
            click.echo()


@main.command()
@_run_id_option
@click.pass_context
def dedup(ctx: click.Context, run_id: str | None) -> None:
    """Drop near duplicates (MinHash LSH) of everything kept so far, in any run."""
    from warriorflow import pipeline

    with _store(ctx) as store:
        _report(pipeline.dedup_stage(_config(ctx), store, run_id or pipeline.new_run_id()))


@main.command()
@_run_id_option
@click.pass_context
def score(ctx: click.Context, run_id: str | None) -> None:
    """Judges score each instruction's difficulty 1-10 (constrained); keep medians >= difficulty.keep_min."""
    from warriorflow import pipeline

    config = _config(ctx)
    with _store(ctx) as store:
        _report(pipeline.score_stage(config, store, pipeline.open_objects(config), run_id or pipeline.new_run_id(),
                                     progress=click.echo))


@main.command()
@_run_id_option
@click.pass_context
def decontaminate(ctx: click.Context, run_id: str | None) -> None:
    """Drop instructions that share n-grams with HumanEval, MBPP+ or CRUXEval; report the rate."""
    from warriorflow import pipeline

    with _store(ctx) as store:
        _report(pipeline.decontaminate_stage(_config(ctx), store, run_id or pipeline.new_run_id()))


@main.command()
@_run_id_option
@click.pass_context
def compress(ctx: click.Context, run_id: str | None) -> None:
    """Select a diverse subset (KCenterGreedy on embeddings), warm-started from earlier selections."""
    from warriorflow import pipeline

    with _store(ctx) as store:
        _report(pipeline.compress_stage(_config(ctx), store, run_id or pipeline.new_run_id(), progress=click.echo))


@main.command("instructions")
@click.option("--json", "as_json", is_flag=True, help="Print the tables as JSON.")
@click.pass_context
def instructions_cmd(ctx: click.Context, as_json: bool) -> None:
    """Counts of instructions by expert and status, sampling config, difficulty level and drop reason."""
    from warriorflow.store.rating_store import RatingStore

    tables = {}
    with RatingStore(_config(ctx).duckdb_path, read_only=True) as store:
        for name in ("instruction_summary", "instructions_by_config", "instructions_by_level", "drop_reasons"):
            tables[name] = store.named(name)
    if as_json:
        click.echo(json.dumps(tables, indent=2, default=str))
        return
    for name, rows in tables.items():
        click.echo(click.style(f"# {name.replace('_', ' ')}", bold=True))
        if not rows:
            click.echo("  (none)\n")
            continue
        cols = list(rows[0])
        widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
        click.echo("  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths)))
        for r in rows:
            click.echo("  " + "  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
        click.echo()


@main.command("run")
@_run_id_option
@click.pass_context
def run_cmd(ctx: click.Context, run_id: str | None) -> None:
    """One full instruction-pipeline run: mine, ingest, dedup, score, decontaminate, compress."""
    from warriorflow import pipeline

    run_id = run_id or pipeline.new_run_id()
    for report in pipeline.run_all(_config(ctx), run_id, progress=click.echo):
        _report(report)


# ------------------------------------------------------------------------------------------ arena


@main.command()
@_run_id_option
@click.pass_context
def plan(ctx: click.Context, run_id: str | None) -> None:
    """Plan the missing battles of the selected instructions; write battle-batch files."""
    from warriorflow import arena, pipeline

    config = _config(ctx)
    with _store(ctx) as store:
        report, keys = arena.plan_stage(config, store, pipeline.open_objects(config), run_id or pipeline.new_run_id())
    _report(report)
    objects = pipeline.open_objects(config)
    for key in keys:
        click.echo(objects.uri(key))


@main.command("battle-batch")
@click.option("--in", "in_uri", required=True, help="Batch input: a file:// or s3:// URI of a planned batch (JSON).")
@click.option("--out", "out_uri", required=True, help="Where to write the battle results (JSON Lines).")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path), default=None,
              help="Where the batch checkpoints (default: below $WARRIORFLOW_HOME/checkpoints).")
@click.pass_context
def battle_batch(ctx: click.Context, in_uri: str, out_uri: str, checkpoint_dir: Path | None) -> None:
    """Run one battle batch, file in and file out (what a pod runs). Never opens the rating store.

    Both responses are generated batched per expert, then all judge calls batched per judge. A killed
    batch resumes from its checkpoint without redoing finished work or duplicating votes.
    """
    from warriorflow.stages.battle import run_battle_batch_uri

    records = run_battle_batch_uri(in_uri, out_uri, _config(ctx), checkpoint_dir=checkpoint_dir,
                                   progress=click.echo)
    kinds = {}
    for r in records:
        kinds[r["type"]] = kinds.get(r["type"], 0) + 1
    click.echo(f"wrote {out_uri}: " + ", ".join(f"{v} {k}s" for k, v in sorted(kinds.items())))


@main.command()
@_run_id_option
@click.pass_context
def battle(ctx: click.Context, run_id: str | None) -> None:
    """One battle cycle here: plan, run the batches as local processes' work, ingest, rate, select gold."""
    from warriorflow import arena, pipeline

    for report in arena.run_arena(_config(ctx), run_id or pipeline.new_run_id(), progress=click.echo):
        _report(report)


@main.command("ingest-battles")
@_run_id_option
@click.pass_context
def ingest_battles_cmd(ctx: click.Context, run_id: str) -> None:
    """Merge a run's battle result files into the rating store (the single writer)."""
    from warriorflow import arena, pipeline

    config = _config(ctx)
    with _store(ctx) as store:
        _report(arena.ingest_battles(config, store, pipeline.open_objects(config), run_id))


@main.command()
@click.option("--battles", "battles_file", type=click.File("r"), default=None,
              help="Re-rate an exported battle log (JSON Lines) instead of the rating store.")
@click.option("--k", type=float, default=None, help="Elo K (default: rating.k, 40).")
@click.option("--alpha", type=float, default=None, help="Final-score weight of the Elo expectation (default 0.7).")
@click.option("--init", "initial", type=float, default=None, help="Elo initial rating (default 1000).")
@click.option("--rounds", type=int, default=None, help="Bradley-Terry bootstrap rounds (default 100).")
@click.option("--json", "as_json", is_flag=True, help="Print the interchange JSON.")
@_run_id_option
@click.pass_context
def rate(ctx: click.Context, battles_file, k, alpha, initial, rounds, as_json: bool, run_id: str | None) -> None:
    """Ratings from a vote log: Elo, Bradley-Terry with CIs, final scores and gold.

    With --battles FILE: a pure computation over an exported log (one battle per line, in processing
    order: {"battle_id","instruction_id","attacker","defender","votes":{judge: verdict}}).
    Without: recompute the store's ratings and gold selections.
    """
    from warriorflow.stages import rating

    config = _config(ctx)
    r = config.settings.rating
    if battles_file is None:
        from warriorflow import arena, pipeline

        with _store(ctx) as store:
            _report(arena.rate_stage(config, store, run_id or pipeline.new_run_id()))
        return
    try:
        log_ = rating.parse_battle_log(battles_file)
    except ValueError as exc:
        raise click.ClickException(f"{battles_file.name}: {exc}") from None
    out = rating.rate(log_, k=k if k is not None else r.k, alpha=alpha if alpha is not None else r.alpha,
                      initial=initial if initial is not None else r.initial,
                      bootstrap_rounds=rounds if rounds is not None else r.bootstrap_rounds, seed=r.seed)
    if as_json:
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    for name, value in sorted(out["elo"].items(), key=lambda kv: -kv[1]):
        bt = out["bt"].get(name, {})
        click.echo(f"{name:<32} elo {value:8.1f}   bt {bt.get('rating', float('nan')):8.1f} "
                   f"[{bt.get('lo', float('nan')):.1f}, {bt.get('hi', float('nan')):.1f}]")
    click.echo(f"gold selections: {len(out['gold'])}; invalid votes: {out['invalid_votes']}")


@main.group()
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
    from warriorflow import arena
    from warriorflow.stages import rating
    from warriorflow.store.rating_store import RatingStore

    with RatingStore(_config(ctx).duckdb_path, read_only=True) as store:
        rows = arena.export_battles(store)
    if fmt == "fastchat":
        rows = rating.to_fastchat(rating.parse_battle_log(json.dumps(r) for r in rows))
    for row in rows:
        out_file.write(json.dumps(row, sort_keys=True) + "\n")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def leaderboard(ctx: click.Context, as_json: bool) -> None:
    """Elo and Bradley-Terry (95% CI), battles and win rate; per judge: invalid votes, position bias, agreement."""
    from warriorflow import arena
    from warriorflow import leaderboard as lb
    from warriorflow.store.rating_store import RatingStore

    with RatingStore(_config(ctx).duckdb_path, read_only=True) as store:
        log_ = arena.vote_log(store)
        ratings = store.query("SELECT * FROM rating_history WHERE rating_version = (SELECT rating_version FROM "
                              "rating_history ORDER BY computed_at DESC LIMIT 1)")
        votes = store.query("SELECT battle_id, judge, raw_verdict, verdict FROM votes")
    experts_ = lb.expert_table(log_, ratings)
    judges = lb.judge_table(votes, {b.battle_id: b.votes for b in log_})
    summary = lb.overall(votes, log_)
    if as_json:
        click.echo(json.dumps({"experts": experts_, "judges": judges, "overall": summary}, indent=2))
        return

    def fmt(x, spec=".1f"):
        return "-" if x is None else format(x, spec)

    click.echo(f"{'expert':<32} {'elo':>7} {'bt':>7} {'95% CI':>17} {'battles':>7} {'win rate':>8}")
    for r in experts_:
        ci = f"[{fmt(r['bt_lo'])}, {fmt(r['bt_hi'])}]"
        click.echo(f"{r['expert']:<32} {fmt(r['elo']):>7} {fmt(r['bt']):>7} {ci:>17} {r['battles']:>7} "
                   f"{fmt(r['win_rate'], '.0%'):>8}")
    click.echo(f"\n{'judge':<32} {'votes':>6} {'invalid':>8} {'1st-pos wins':>12} {'agreement':>9}")
    for j in judges:
        click.echo(f"{j['judge']:<32} {j['votes']:>6} {fmt(j['invalid_rate'], '.0%'):>8} "
                   f"{fmt(j['position_bias'], '.0%'):>12} {fmt(j['agreement'], '.0%'):>9}")
    click.echo(f"\n{summary['battles']} battles, {summary['votes']} votes, invalid-vote rate "
               f"{fmt(summary['invalid_vote_rate'], '.1%')}")


@main.command("serve-gguf")
@click.option("--expert", "name", required=True, help="Expert whose GGUF to serve.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--ready-file", type=click.Path(path_type=Path), help="Write the address here once listening.")
@click.pass_context
def serve_gguf_cmd(ctx: click.Context, name: str, host: str, port: int, ready_file: Path | None) -> None:
    """Serve an expert's GGUF over llama.cpp's OpenAI-compatible HTTP API."""
    from warriorflow.inference.server import serve_gguf
    from warriorflow.models.locate import resolve_model

    config = _config(ctx)
    expert = config.registry.get(name)
    resolved = resolve_model(expert.name, expert.model, config.model_cache)
    ll = config.settings.inference.llamacpp
    serve_gguf(resolved.path, host=host, port=port, threads=ll.threads, n_parallel=ll.n_parallel,
               ctx_per_sequence=ll.ctx_per_sequence, alias=expert.name, ready_file=ready_file)


from warriorflow.cli_snapshot import snapshot as _snapshot  # noqa: E402  (light: click only)
from warriorflow.cli_train import train as _train  # noqa: E402

main.add_command(_snapshot)
main.add_command(_train)

from warriorflow.cli_report import report as _report_cmd  # noqa: E402  (light: click only)
from warriorflow.cli_report import tag as _tag_cmd  # noqa: E402

main.add_command(_report_cmd)
main.add_command(_tag_cmd)

from warriorflow.cli_eval import evaluate_cmd as _evaluate_cmd  # noqa: E402  (click only)
from warriorflow.cli_eval import models_cmd as _models_cmd  # noqa: E402

main.add_command(_evaluate_cmd)
main.add_command(_models_cmd)

from warriorflow.cli_airflow import airflow_cmd as _airflow_cmd  # noqa: E402  (click only)

main.add_command(_airflow_cmd)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
