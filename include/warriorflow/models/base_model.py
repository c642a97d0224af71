"""The model a run starts from: an expert (its GGUF dequantized to safetensors), a local Hugging Face model
directory, or a hub id. ``identity`` is cheap (no download, no conversion) and goes into the run's hash."""

from __future__ import annotations

import re
from pathlib import Path

from warriorflow.config import Config, TrainingSettings
from warriorflow.errors import ConfigError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _local_dir(cfg: Config, name: str) -> Path | None:
    p = Path(name).expanduser()
    candidates = [p] if p.is_absolute() else [cfg.path(name), Path.cwd() / p]
    return next((c for c in candidates if c.is_dir()), None)


def identity(cfg: Config, ts: TrainingSettings) -> str:
    """What the base model is, for the run's hash: expert weights id, directory path or hub id."""
    name = ts.base_model
    if name in cfg.registry.names():
        return f"expert:{name}:{cfg.registry.get(name).weights}:{ts.base_model_dtype}"
    local = _local_dir(cfg, name)
    if local is not None:
        return f"dir:{local.resolve()}"
    if _HUB_ID.match(name):
        return f"hub:{name}"
    raise ConfigError(
        f"training.base_model {name!r}",
        "is neither an expert in the registry, an existing model directory, nor a hub id (org/name)",
        f"use an expert name ({', '.join(cfg.registry.names())}), a directory saved with save_pretrained, "
        "or a hub id such as deepseek-ai/deepseek-coder-6.7b-base")


def resolve(cfg: Config, ts: TrainingSettings) -> str:
    """A path (or hub id) ``from_pretrained`` can load; dequantizes an expert's GGUF into the model cache once."""
    name = ts.base_model
    kind = identity(cfg, ts).split(":", 1)[0]
    if kind == "expert":
        from warriorflow.models.locate import resolve_model

        expert = cfg.registry.get(name)
        if expert.model.endpoint is not None:
            raise ConfigError(f"training.base_model {name!r}",
                              "is served by an endpoint: there are no weights to train",
                              "name an expert with local weights, a model directory or a hub id")
        path = resolve_model(expert.name, expert.model, cfg.model_cache).path
        if path.is_file():  # GGUF: training wants dense safetensors
            from warriorflow.models.dequantize import dequantize_gguf_to_hf

            dtype = ts.base_model_dtype
            out = cfg.model_cache / (f"{expert.name}-hf" if dtype == "float32" else f"{expert.name}-hf-{dtype}")
            path = dequantize_gguf_to_hf(path, out, dtype)
        return str(path)
    if kind == "dir":
        local = _local_dir(cfg, name)
        if not (local / "config.json").is_file():
            raise ConfigError(f"training.base_model {name!r}", f"{local} has no config.json",
                              "point it at a directory saved with save_pretrained")
        return str(local)
    return name  # a hub id: from_pretrained downloads it (or reads the HF cache when offline)
