"""The instruction steps by hand: mine, dedup, filter, score, decontaminate, compress, the whole cycle (`run`), and
`instructions` (counts by expert, status, config, level and drop reason)."""

from __future__ import annotations

import json

import click

from warriorflow.cli.context import config_of, echo_report, run_id_option, run_model_step, run_step, store_of


@click.command()
@run_id_option
@click.option("--expert", "names", multiple=True, help="Only these experts (default: every expert with the mine role).")
@click.option("--ingest/--no-ingest", default=True, show_default=True,
              help="Validate and merge the result files into the rating store (--no-ingest: worker mode, files only).")
@click.option("--preview", type=click.IntRange(min=1), default=None,
              help="Only print N instructions per expert from the first grid point; write nothing.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Override mining.max_tokens.")
@click.pass_context
def mine(ctx: click.Context, run_id: str | None, names: tuple[str, ...], ingest: bool, preview: int | None,
         max_tokens: int | None) -> None:
    """Mine instructions from the experts' own chat templates (Magpie-style pre-query completion).

    Samples the temperature x top_p grid, sanitises, writes result files to the object store under
    runs/RUN_ID/mine/, then (unless --no-ingest) validates them with Great Expectations and merges them.
    """
    from warriorflow.stages.base import new_run_id
    from warriorflow.stages.ingest import ingest_stage
    from warriorflow.stages.mine import mine_to_files
    from warriorflow.store.objects import open_objects

    config = config_of(ctx)
    if max_tokens:
        config.settings = config.settings.model_copy(
            update={"mining": config.settings.mining.model_copy(update={"max_tokens": max_tokens})})
    experts_ = [config.registry.get(n) for n in names] if names else config.registry.with_role("mine")
    if preview:
        print_preview(config, experts_, preview)
        return
    run_id = run_id or new_run_id()
    objects = open_objects(config)
    mine_to_files(config, objects, run_id, experts_, progress=click.echo)
    if ingest:
        with store_of(ctx) as store:
            echo_report(ingest_stage(config, store, objects, run_id))


def print_preview(config, experts_, n: int) -> None:
    from warriorflow.inference.base import Sampling
    from warriorflow.inference.factory import OpenBackends
    from warriorflow.models.locate import resolve_model
    from warriorflow.stages.mining_prompt import mining_prompt

    m = config.settings.mining
    for expert in experts_:
        resolved = resolve_model(expert.name, expert.model, config.model_cache)
        prompt = mining_prompt(expert, config, resolved.path)
        sampling = Sampling(max_tokens=m.max_tokens, temperature=m.temperatures[0], top_p=m.top_ps[0],
                            stop=prompt.stops)
        with OpenBackends(config) as backends:
            samplings = [sampling.with_(seed=m.seed + i) for i in range(n)]
            gens = backends[expert.name].complete([prompt.text] * n, samplings)
        for gen in gens:
            text = gen.text.strip()
            click.echo(click.style(f"[{expert.name} · {prompt.mode} · T={sampling.temperature} "
                                   f"top_p={sampling.top_p} · prefix {prompt.sha256[:10]}]", fg="cyan"))
            click.echo(text if text else click.style("(empty output)", fg="yellow"))
            click.echo()


@click.command()
@run_id_option
@click.pass_context
def dedup(ctx: click.Context, run_id: str | None) -> None:
    """Drop near duplicates (MinHash LSH) of everything kept so far, in any run."""
    run_step(ctx, "dedup:dedup_stage", run_id)


@click.command("filter")
@run_id_option
@click.pass_context
def filter_cmd(ctx: click.Context, run_id: str | None) -> None:
    """Drop unique instructions that fail the filters (filters.*): the model answering itself, no task, too few
    words, markup or number junk, another language; prints the drops per rule."""
    run_step(ctx, "filter:filter_stage", run_id)


@click.command()
@run_id_option
@click.pass_context
def score(ctx: click.Context, run_id: str | None) -> None:
    """Judges score each instruction's difficulty 1-10 (constrained); keep medians >= difficulty.keep_min.
    Plans the score jobs (one per judge and shard), runs them here one after another, ingests them."""
    run_model_step(ctx, "score", run_id)


@click.command()
@run_id_option
@click.pass_context
def decontaminate(ctx: click.Context, run_id: str | None) -> None:
    """Drop instructions that share n-grams with HumanEval, MBPP+ or CRUXEval; report the rate."""
    run_step(ctx, "decontaminate:decontaminate_stage", run_id)


@click.command()
@run_id_option
@click.pass_context
def compress(ctx: click.Context, run_id: str | None) -> None:
    """Select a diverse subset (KCenterGreedy on embeddings), warm-started from earlier selections. Plans the
    embed job, runs it here, ingests the vectors, selects."""
    run_model_step(ctx, "compress", run_id)


@click.command("instructions")
@click.option("--json", "as_json", is_flag=True, help="Print the tables as JSON.")
@click.pass_context
def instructions_cmd(ctx: click.Context, as_json: bool) -> None:
    """Counts of instructions by expert and status, sampling config, difficulty level and drop reason."""
    from warriorflow.store.rating_store import RatingStore

    tables = {}
    with RatingStore(config_of(ctx).duckdb_path, read_only=True) as store:
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


@click.command("run")
@run_id_option
@click.pass_context
def run_cmd(ctx: click.Context, run_id: str | None) -> None:
    """One full instruction-pipeline run: mine, ingest, dedup, filter, score, decontaminate, compress, tag."""
    from warriorflow.stages.base import new_run_id
    from warriorflow.stages.cycles import instruction_cycle

    run_id = run_id or new_run_id()
    for report in instruction_cycle(config_of(ctx), run_id, progress=click.echo):
        echo_report(report)
