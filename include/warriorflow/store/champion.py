"""The champion alias: ``models/champion/manifest.json`` names the promoted training run's published model.

Written by the promotion step (evaluation/run.py ``compare_and_decide``) only after the model's own
``models/<run id>/manifest.json`` was read (manifest-last: an alias never points at a model that is not
published). The alias holds kind ``warriorflow.champion``, ``training_run_id``, ``model_prefix``,
``model_uri``, ``manifest_sha256`` (the sha256 of the model's manifest.json bytes), ``decision_id``,
``p_value`` and ``promoted_at``, plus an empty ``files`` map so that it is a valid manifest to any reader.

:func:`read_champion` checks the alias against the model's manifest: an alias pointing at a missing model,
or whose sha256 no longer matches, is a StoreError (a forged or stale alias is never followed).
The rating store's view of the champion (the latest promoted decision) stays in evaluation/records.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from warriorflow.errors import StoreError
from warriorflow.store.objects import MANIFEST_NAME, ObjectNotFoundError, ObjectStore, join_key, normalize_key

CHAMPION_PREFIX = "models/champion"
CHAMPION_KIND = "warriorflow.champion"
# the same values as training/sft.py model_prefix() and MODEL_KIND (the store layer cannot import training;
# tests/unit/test_promotion.py checks they agree)
MODELS_ROOT = "models"
TRAINED_MODEL_KIND = "warriorflow.trained-model"
_FIX = (f"delete {CHAMPION_PREFIX}/{MANIFEST_NAME} and re-run the comparison that promoted the champion "
        "(`warriorflow evaluate <run id> --compare`)")


def model_prefix(run_id: str) -> str:
    return join_key(MODELS_ROOT, run_id)


def alias_key() -> str:
    return join_key(CHAMPION_PREFIX, MANIFEST_NAME)


def _model_manifest(objects: ObjectStore, prefix: str, who: str) -> tuple[bytes, dict]:
    key = join_key(prefix, MANIFEST_NAME)
    try:
        raw = objects.get_bytes(key)
    except ObjectNotFoundError:
        raise StoreError(who, f"points at {objects.uri(prefix)}, which has no {MANIFEST_NAME} (not published, "
                         "or deleted)", _FIX) from None
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("kind") != TRAINED_MODEL_KIND:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        raise StoreError(who, f"points at {objects.uri(key)}, which is not a trained model's manifest "
                         f"(kind {kind!r})", _FIX)
    return raw, doc


def publish_champion(objects: ObjectStore, run_id: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """Point the alias at training run ``run_id``'s published model; return the alias document.

    ``info``: ``decision_id`` and ``p_value`` (``promoted_at`` defaults to now). The model's manifest must
    exist and be a trained model of that run, else StoreError and the alias is left as it was. Publishing the
    same decision for the same model again leaves the alias (and its ``promoted_at``) unchanged."""
    if not isinstance(run_id, str) or not run_id or "/" in run_id or run_id == "champion":
        raise StoreError(f"champion alias for {run_id!r}", "is not a training run id",
                         "only a promoted training run (models/<run id>) can be the champion")
    prefix = model_prefix(run_id)
    who = f"champion alias {objects.uri(alias_key())} for {run_id}"
    raw, manifest = _model_manifest(objects, prefix, who)
    if manifest.get("training_run_id") != run_id:
        raise StoreError(who, f"{objects.uri(prefix)} is the model of {manifest.get('training_run_id')!r}, not "
                         f"{run_id!r}", "publish the run's model under models/<run id> (warriorflow train)")
    sha = hashlib.sha256(raw).hexdigest()
    doc = {"kind": CHAMPION_KIND, "training_run_id": run_id, "model_prefix": prefix,
           "model_uri": objects.uri(prefix), "manifest_sha256": sha, "decision_id": info.get("decision_id"),
           "p_value": info.get("p_value"),
           "promoted_at": info.get("promoted_at") or datetime.now(UTC).isoformat(timespec="seconds"),
           "files": {}}
    if objects.exists(alias_key()):
        try:
            current = json.loads(objects.get_bytes(alias_key()))
        except ValueError:
            current = None
        same = ("training_run_id", "manifest_sha256", "decision_id")
        if isinstance(current, dict) and all(current.get(k) == doc[k] for k in same):
            return current  # the same decision again: idempotent
    objects.put_bytes(alias_key(), json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n")
    return doc


def read_champion(objects: ObjectStore) -> dict[str, Any] | None:
    """The alias document, checked against the model it names; None when no model has been promoted."""
    key = alias_key()
    who = f"champion alias {objects.uri(key)}"
    try:
        raw = objects.get_bytes(key)
    except ObjectNotFoundError:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise StoreError(who, "is not valid JSON", _FIX) from None
    if not isinstance(doc, dict) or doc.get("kind") != CHAMPION_KIND:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        raise StoreError(who, f"is not a champion alias (kind {kind!r}, expected {CHAMPION_KIND!r})", _FIX)
    run_id, sha = doc.get("training_run_id"), doc.get("manifest_sha256")
    if not isinstance(run_id, str) or not run_id or not isinstance(sha, str):
        raise StoreError(who, "lacks training_run_id or manifest_sha256", _FIX)
    prefix = doc.get("model_prefix", model_prefix(run_id))
    try:
        normalize_key(prefix)
    except StoreError:
        raise StoreError(who, f"names an invalid model prefix {prefix!r}", _FIX) from None
    if prefix != model_prefix(run_id):
        raise StoreError(who, f"names model prefix {prefix!r}, not {model_prefix(run_id)!r} of run {run_id}", _FIX)
    raw_model, manifest = _model_manifest(objects, prefix, who)
    actual = hashlib.sha256(raw_model).hexdigest()
    if actual != sha:
        raise StoreError(who, f"records manifest sha256 {sha} but {objects.uri(join_key(prefix, MANIFEST_NAME))} "
                         f"has sha256 {actual}: the model was replaced after it was promoted, or the alias was "
                         "forged", _FIX)
    if manifest.get("training_run_id") != run_id:
        raise StoreError(who, f"names run {run_id} but its model's manifest is run "
                         f"{manifest.get('training_run_id')!r}", _FIX)
    return doc
