"""`warriorflow doctor` and `warriorflow experts`: is everything in place, and who is in the arena."""

from __future__ import annotations

import json

import click

from warriorflow.cli.context import MARK, config_of


@click.command()
@click.option("--init", is_flag=True, help="Create/migrate the rating store if needed.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_context
def doctor(ctx: click.Context, init: bool, as_json: bool) -> None:
    """Check models and checksums, the DuckDB schema, the object store and the sandbox; say what to fix."""
    from warriorflow.cli.checks import run_doctor

    checks = run_doctor(config_of(ctx), init=init)
    if as_json:
        click.echo(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            click.echo(f"{MARK[c.status]} {c.name:<38} {c.detail}")
        fixes = [c for c in checks if c.status != "ok" and c.fix]
        if fixes:
            click.echo("\nWhat to fix:")
            for c in fixes:
                click.echo(f"  - {c.name}: {c.fix}")
        else:
            click.echo(click.style("\nall green", fg="green"))
    if any(c.status == "fail" for c in checks):
        ctx.exit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
@click.pass_context
def experts(ctx: click.Context, as_json: bool) -> None:
    """List the experts registry."""
    config = config_of(ctx)
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in config.registry.experts], indent=2))
        return
    click.echo(f"# {config.experts_file}")
    click.echo(f"{'name':<30} {'backend':<9} {'roles':<18} {'template':<9} {'gpus':<4} model")
    for e in config.registry.experts:
        roles = ",".join(r.value for r in e.roles)
        click.echo(f"{e.name:<30} {e.backend.value:<9} {roles:<18} {e.chat_template.source:<9} "
                   f"{e.resources.gpus:<4} {e.model.describe()}")
