"""Models published in the object store (``models/<run id>/``, manifest last), and the champion alias that
names one (``models/champion``): downloaded into the model cache, every file checked against its manifest.

A download goes to a temporary directory renamed into place, so a cut-short download is never loaded; a
directory already there whose marker names the same manifest sha256 is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from warriorflow.errors import ModelError, StoreError
from warriorflow.store.hashing import sha256_file
from warriorflow.store.objects import MANIFEST_NAME, ObjectStore, join_key, read_manifest

CHAMPION_ALIAS = "models/champion"
MODEL_KIND = "warriorflow.trained-model"
_MARKER = ".warriorflow-published.json"


def resolve_alias(objects: ObjectStore, prefix: str) -> str:
    """The model prefix ``prefix`` names: itself, or for the champion alias the promoted run's prefix (the
    alias is checked against the model's manifest: a forged or stale alias is an error)."""
    prefix = prefix.strip("/")
    if prefix != CHAMPION_ALIAS:
        return prefix
    from warriorflow.store.champion import read_champion

    alias = read_champion(objects)
    if alias is None:
        raise ModelError(f"champion alias {objects.uri(CHAMPION_ALIAS)}", "no model has been promoted yet",
                         "the champion joins the arena after the first promotion; until then the planner leaves "
                         "it out of battles")
    return join_key("models", alias["training_run_id"])


def fetch_published_model(objects: ObjectStore, prefix: str, cache_dir: Path) -> Path:
    """Download the published model at ``prefix`` (or the champion alias) into ``cache_dir``; return its
    directory (config.json, safetensors, tokenizer)."""
    model_prefix = resolve_alias(objects, prefix)
    manifest_key = join_key(model_prefix, MANIFEST_NAME)
    if not objects.exists(manifest_key):
        raise ModelError(f"published model {objects.uri(model_prefix)}", "has no manifest (not published, or "
                         "deleted)", "train it again, or point model.published at a published model")
    raw = objects.get_bytes(manifest_key)
    manifest = read_manifest(objects, model_prefix)
    if manifest.get("kind") != MODEL_KIND:
        raise ModelError(f"published model {objects.uri(model_prefix)}",
                         f"is a {manifest.get('kind')!r}, not a trained model", "point at a models/<run id> prefix")
    digest = hashlib.sha256(raw).hexdigest()
    target = cache_dir / "published" / model_prefix.replace("/", "--")
    marker = target / _MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("manifest_sha256") == digest:
                return target
        except (OSError, ValueError):
            pass
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.download-", dir=target.parent))
    try:
        for name, entry in sorted(manifest["files"].items()):
            dest = tmp.joinpath(*name.split("/"))
            if not dest.resolve().is_relative_to(tmp.resolve()):
                raise StoreError(objects.uri(manifest_key), f"file name {name!r} leaves the model directory",
                                 "the manifest was tampered with; publish the model again")
            dest.parent.mkdir(parents=True, exist_ok=True)
            objects.get_file(join_key(model_prefix, name), dest)
            if dest.stat().st_size != entry["size"] or sha256_file(dest) != entry["sha256"]:
                raise StoreError(objects.uri(join_key(model_prefix, name)), "fails its checksum",
                                 "the published model is damaged; train the run again")
        (tmp / _MARKER).write_text(json.dumps({"manifest_sha256": digest, "prefix": model_prefix}))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
