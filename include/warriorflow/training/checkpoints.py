"""Training checkpoints in the object store: ``training/<run_id>/checkpoints/checkpoint-<step>/``.

Each checkpoint directory the Trainer saves (weights, optimizer, scheduler, RNG state, trainer_state.json
with the loss log; with DeepSpeed the sharded ``global_step*/`` states) is published manifest-last, so a
checkpoint whose upload was cut short by a kill does not exist. A restarted run downloads the latest
complete one, checking every file's sha256, and resumes from it. Older checkpoints beyond the number
to keep are deleted, manifest first.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from warriorflow.errors import StoreError
from warriorflow.store.hashing import sha256_file
from warriorflow.store.objects import (
    MANIFEST_NAME,
    ObjectStore,
    join_key,
    list_published,
    publish,
    read_manifest,
)

KIND = "warriorflow.training-checkpoint"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def run_prefix(run_id: str) -> str:
    return join_key("training", run_id)


def checkpoints_prefix(run_id: str) -> str:
    return join_key(run_prefix(run_id), "checkpoints")


def checkpoint_prefix(run_id: str, step: int) -> str:
    return join_key(checkpoints_prefix(run_id), f"checkpoint-{step}")


def local_files(directory: Path) -> dict[str, Path]:
    """Every file below ``directory`` as {relative '/' name: path}."""
    return {p.relative_to(directory).as_posix(): p for p in sorted(directory.rglob("*")) if p.is_file()}


def published_steps(objects: ObjectStore, run_id: str) -> list[int]:
    """Steps of the run's complete (manifest-bearing) checkpoints, ascending."""
    steps = []
    for p in list_published(objects, checkpoints_prefix(run_id)):
        m = _STEP.match(p.rsplit("/", 1)[-1])
        if m and p == checkpoint_prefix(run_id, int(m.group(1))):
            steps.append(int(m.group(1)))
    return sorted(steps)


def publish_checkpoint(objects: ObjectStore, run_id: str, directory: Path, step: int,
                       info: dict[str, Any]) -> str:
    """Upload a saved checkpoint directory, manifest last; return the manifest URI."""
    files = local_files(directory)
    if not files:
        raise StoreError(str(directory), "checkpoint directory is empty", "check the Trainer's output_dir")
    return publish(objects, checkpoint_prefix(run_id, step), files, {"kind": KIND, "run_id": run_id, "step": step,
                                                                     **info})


def prune_checkpoints(objects: ObjectStore, run_id: str, keep: int) -> list[int]:
    """Delete all but the newest ``keep`` published checkpoints (manifest first); return the deleted steps."""
    steps = published_steps(objects, run_id)
    doomed = steps[:-keep] if keep > 0 else steps
    for step in doomed:
        p = checkpoint_prefix(run_id, step)
        objects.delete(join_key(p, MANIFEST_NAME))  # from here on the checkpoint does not exist
        for key in list(objects.list(p + "/")):
            objects.delete(key)
    return doomed


def latest_checkpoint(objects: ObjectStore, run_id: str) -> tuple[int, dict[str, Any]] | None:
    steps = published_steps(objects, run_id)
    if not steps:
        return None
    return steps[-1], read_manifest(objects, checkpoint_prefix(run_id, steps[-1]))


def download_checkpoint(objects: ObjectStore, run_id: str, step: int, dest: Path) -> Path:
    """Download checkpoint ``step`` into ``dest`` (atomically: a temp dir renamed into place), verifying
    each file against the manifest; return ``dest``."""
    p = checkpoint_prefix(run_id, step)
    manifest = read_manifest(objects, p)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
    try:
        for name, entry in sorted(manifest["files"].items()):
            target = tmp.joinpath(*name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            objects.get_file(join_key(p, name), target)
            if target.stat().st_size != entry["size"] or sha256_file(target) != entry["sha256"]:
                raise StoreError(objects.uri(join_key(p, name)), f"checkpoint file {name!r} fails its checksum",
                                 f"delete {objects.uri(join_key(p, MANIFEST_NAME))} to resume from the one before")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
