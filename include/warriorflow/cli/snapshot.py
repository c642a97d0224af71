"""`warriorflow snapshot create|list|show|verify|download`: versioned, immutable dataset snapshots (sft,
preferences and responses)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from warriorflow.cli.context import config_of


def _objects(ctx: click.Context):
    from warriorflow.store.objects import open_objects

    return open_objects(config_of(ctx))


@click.group("snapshot")
def snapshot() -> None:
    """Versioned, immutable snapshots of the arena's data (sft, preferences, responses) in the object store."""


@snapshot.command("create")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot as JSON.")
@click.pass_context
def create_cmd(ctx: click.Context, as_json: bool) -> None:
    """Snapshot every gold instruction with all its scored responses (data first, manifest last). Identical
    content returns the existing one."""
    from warriorflow.store.rating_store import RatingStore
    from warriorflow.store.snapshots import create_snapshot

    cfg = config_of(ctx)
    with RatingStore(cfg.duckdb_path) as store:
        info = create_snapshot(cfg, store, _objects(ctx))
    if as_json:
        click.echo(json.dumps(info.as_dict(), indent=2))
        return
    state = "created" if info.created else "unchanged content: existing snapshot"
    click.echo(f"{info.snapshot_id} ({state})\n  {info.n_examples} examples, {info.n_preferences} preference pairs, "
               f"{info.n_responses} responses, {info.n_battles} battles, rating version {info.rating_version}\n"
               f"  {info.uri}")


@snapshot.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Published snapshots, oldest first (a prefix without manifest is not listed)."""
    from warriorflow.store.snapshots import list_snapshots

    snaps = list_snapshots(_objects(ctx))
    if as_json:
        click.echo(json.dumps(snaps, indent=2))
        return
    if not snaps:
        click.echo("no snapshots yet: `warriorflow snapshot create`")
        return
    click.echo(f"{'snapshot':<31} {'examples':>8} {'battles':>8}  rating version")
    for s in snaps:
        click.echo(f"{s['snapshot_id']:<31} {s['examples']:>8} {s['battles']:>8}  {s['rating_version']}")


@snapshot.command("show")
@click.argument("snapshot_id")
@click.pass_context
def show_cmd(ctx: click.Context, snapshot_id: str) -> None:
    """Print a snapshot's manifest (JSON)."""
    from warriorflow.store.snapshots import read_snapshot_manifest

    click.echo(json.dumps(read_snapshot_manifest(_objects(ctx), snapshot_id), indent=2, sort_keys=True))


@snapshot.command("verify")
@click.argument("snapshot_id")
@click.pass_context
def verify_cmd(ctx: click.Context, snapshot_id: str) -> None:
    """Re-hash every file against the manifest; exit 2 naming the first file that fails."""
    from warriorflow.store.snapshots import verify_snapshot

    manifest = verify_snapshot(_objects(ctx), snapshot_id)
    for name, entry in sorted(manifest["files"].items()):
        click.echo(f"ok  {name}  {entry['size']:>10}  sha256 {entry['sha256'][:16]}")
    click.echo(f"{snapshot_id}: {len(manifest['files'])} files verified")


@snapshot.command("download")
@click.argument("snapshot_id")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def download_cmd(ctx: click.Context, snapshot_id: str, dest: Path) -> None:
    """Copy a snapshot to DEST, checking every file (then: datasets.load_dataset(DEST, "preferences"), or
    datasets.load_dataset("parquet", data_files=...))."""
    from warriorflow.store.objects import MANIFEST_NAME
    from warriorflow.store.snapshots import dataset_file, download_snapshot

    out = download_snapshot(_objects(ctx), snapshot_id, dest)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    click.echo(str(out))
    for name in manifest.get("datasets") or ["sft"]:  # format 1: sft only
        click.echo(f"  {name}: datasets.load_dataset('parquet', data_files='{out / dataset_file(manifest, name)}')")
    if manifest.get("card"):
        click.echo(f"  or by name (README.md configs): datasets.load_dataset('{out}', 'preferences')")
