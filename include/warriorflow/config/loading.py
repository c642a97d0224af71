"""Loading: read the settings file and its registry (``${VAR}`` expanded), validate, and wrap them in a
:class:`Config` that resolves paths. Every validation error names the file, the key and how to fix it."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from warriorflow.config.paths import (
    DEFAULT_SETTINGS_FILE,
    PROMPTS_DIR,
    REPO_ROOT,
    SETTINGS_ENV,
)
from warriorflow.config.registry import Expert, Registry
from warriorflow.config.settings import Settings
from warriorflow.errors import ConfigError


class Config:
    """The loaded settings, registry and where they came from; resolves paths."""

    def __init__(self, settings: Settings, registry: Registry, settings_file: Path, experts_file: Path):
        self.settings = settings
        self.registry = registry
        self.settings_file = settings_file
        self.experts_file = experts_file

    @property
    def home(self) -> Path:
        return Path(self.settings.paths.home).expanduser().resolve()

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.home / p

    @property
    def duckdb_path(self) -> Path:
        return self.path(self.settings.paths.duckdb)

    @property
    def model_cache(self) -> Path:
        return self.path(self.settings.paths.model_cache)

    @property
    def object_store_uri(self) -> str:
        uri = self.settings.object_store.uri
        return uri if "://" in uri else self.path(uri).as_uri()

    def config_hash(self) -> str:
        """A stable hash of the effective settings and registry (recorded in snapshots and runs)."""
        blob = self.settings.model_dump_json() + self.registry.model_dump_json()
        return hashlib.sha256(blob.encode()).hexdigest()

    def repo_path(self, value: str) -> Path:
        """A path from the settings that is relative to the project root (benchmark data)."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (REPO_ROOT / p).resolve()

    def chat_template_text(self, expert: Expert) -> str | None:
        """The expert's chat template when it comes from a file (relative to the registry file), else None."""
        if expert.chat_template.source != "file":
            return None
        path = Path(expert.chat_template.path).expanduser()
        path = path if path.is_absolute() else self.experts_file.parent / path
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"expert '{expert.name}'", f"chat_template.path {path} cannot be read ({exc})",
                              "point chat_template.path at a Jinja file (relative to the registry file)") from None

    def prompt_path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else PROMPTS_DIR / p


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any, file: Path) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(
                f"{file}",
                f"refers to ${{{var}}} but that environment variable is not set",
                f"export {var}=... or write ${{{var}:-default}}",
            )

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, file) for v in value]
    return value


def read_yaml(path: Path) -> dict:
    """Read a YAML mapping; a missing, unreadable or malformed file is a ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(str(path), "file not found", "check the path, or set WARRIORFLOW_CONFIG")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            str(path), f"is not valid YAML{where}: {problem}", "fix the YAML syntax (indentation, quotes, colons)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read: {exc}", "check the file's permissions and encoding") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), f"must hold a mapping at the top level, not {type(data).__name__}")
    try:
        return _expand_env(data, path)
    except RecursionError:
        raise ConfigError(str(path), "holds a recursive YAML alias (an anchor used inside itself)",
                          "write the value out instead of referring to the anchor from within it") from None


def _key_path(loc: tuple, data: dict) -> str:
    """experts[1](name=foo).backend from a pydantic loc, naming list items by their 'name' if any."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    label += f"(name={node['name']})"
            else:
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def _fix_hint(err: dict) -> str:
    typ = err.get("type", "")
    if typ == "extra_forbidden":
        return "remove this key or check its spelling (see docs/configuration.md)"
    if typ == "missing":
        return "add this key (see docs/configuration.md)"
    if typ == "enum":
        expected = err.get("ctx", {}).get("expected")
        return f"use one of {expected}" if expected else "use one of the allowed values"
    return "see docs/configuration.md for the allowed values"


def _validate(model: type[BaseModel], data: dict, file: Path):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _key_path(tuple(err["loc"]), data) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"key {key}: {msg} (fix: {_fix_hint(err)})")
        raise ConfigError(str(file), "invalid configuration\n  " + "\n  ".join(lines)) from None


def load_registry(path: str | Path) -> Registry:
    path = Path(path)
    return _validate(Registry, read_yaml(path), path)


CHAMPION_ALIAS = "models/champion"  # the object-store alias a promotion publishes (warriorflow.store.champion)


def with_champion(registry: Registry, settings: Settings, settings_file: Path) -> Registry:
    """The registry, plus the champion as an answering expert when ``flywheel.champion_joins_arena``: its weights
    are the object store's champion alias, read only when a job loads it (the planner leaves it out of battles
    until a model has been promoted)."""
    f = settings.flywheel
    if not f.champion_joins_arena:
        return registry
    if f.champion_name in registry.names():
        raise ConfigError(str(settings_file), f"flywheel.champion_name {f.champion_name!r} is an expert of the "
                          "registry already", "pick another flywheel.champion_name")
    champion = Expert(name=f.champion_name, backend=f.champion_backend, model={"published": CHAMPION_ALIAS},
                      roles=["answer"], weights_id=f"champion:{f.champion_name}", resources=f.champion_resources)
    return Registry(experts=[*registry.experts, champion])


def check_baseline(settings: Settings, registry: Registry, settings_file: Path) -> None:
    """``evaluation.baseline: expert:<name>`` must name an expert of this registry (a production registry has no
    embedded experts)."""
    ref = settings.evaluation.baseline
    if ref.startswith("expert:") and ref.removeprefix("expert:") not in registry.names():
        raise ConfigError(str(settings_file), f"evaluation.baseline {ref!r} is not an expert of the registry",
                          "use base (training.base_model, evaluated like the candidates), expert:<name> of "
                          f"{', '.join(registry.names())}, hf:<dir> or a training run id")


def load_config(settings_file: str | Path | None = None) -> Config:
    """Load settings (argument, else $WARRIORFLOW_CONFIG, else the embedded default) and its registry."""
    path = Path(settings_file or os.environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS_FILE).expanduser()
    settings = _validate(Settings, read_yaml(path), path)
    experts_file = Path(settings.experts_file).expanduser()
    if not experts_file.is_absolute():
        experts_file = path.parent / experts_file
    registry = with_champion(load_registry(experts_file), settings, path)
    config = Config(settings, registry, path.resolve(), experts_file.resolve())
    check_baseline(settings, registry, path)
    for key, where in (("paths.home", config.home), ("paths.model_cache", config.model_cache)):
        if where.exists() and not where.is_dir():
            raise ConfigError(str(path), f"{key} {where} is a file, not a directory",
                              f"point {key} at a directory (it is created when missing)")
    if config.duckdb_path.is_dir():
        raise ConfigError(str(path), f"paths.duckdb {config.duckdb_path} is a directory",
                          "point paths.duckdb at a file (it is created when missing)")
    return config
