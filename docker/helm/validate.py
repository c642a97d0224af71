"""Check Helm values for the official Apache Airflow chart, offline and strictly.

    helm repo add apache-airflow https://airflow.apache.org
    helm pull apache-airflow/airflow --version 1.19.0 --untar --untardir var/helm-chart/airflow-1.19.0
    python docker/helm/validate.py [--chart DIR|TGZ] [values.yaml ...]   # default: docker/helm/values.yaml

The chart is an input, read from the chart itself: an untarred chart directory (the `airflow/` that
`helm pull --untar` makes; its parent works too) or the chart's .tgz as `helm pull` downloads it. Default:
$AIRFLOW_CHART_DIR, else var/helm-chart/airflow-1.19.0/airflow under the repository root. The values were
written for chart CHART_VERSION; a chart whose Chart.yaml says another version is used with a warning.

What `helm install` itself checks: it merges the chart's default values.yaml with the user's files, then
validates the merged values against the chart's values.schema.json. This script does the same, plus one thing
helm does not: the official schema leaves some objects open, the top level among them, so a misspelt
`executer:` would install without a word. Here every object schema that lists its `properties` and does not
say `additionalProperties` itself is closed. What the chart declares free-form (`additionalProperties: true`
or a schema, or `type: object` with no properties: env maps, labels, annotations, nodeSelector, airflow.cfg
sections) stays open, and so do the values the chart hands to a subchart unread (PASSTHROUGH).

Prints `valid` (exit 0), or each problem as `key.path: message (hint)` (exit 1); a missing or unreadable chart
or values file is one line on stderr (exit 2). Keys the schema marks deprecated are reported as warnings on
stderr. Needs only PyYAML and jsonschema (both come with Airflow).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import os
import re
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
VALUES_FILE = HERE / "values.yaml"
CHART_VERSION = "1.19.0"  # the chart docker/helm/values.yaml was written and checked for
CHART_ENV = "AIRFLOW_CHART_DIR"
CHART_UNTARDIR = f"var/helm-chart/airflow-{CHART_VERSION}"  # relative to the repository root
DEFAULT_CHART_DIR = REPO / CHART_UNTARDIR / "airflow"
FETCH_HINT = (f"helm pull apache-airflow/airflow --version {CHART_VERSION} --untar --untardir {CHART_UNTARDIR}"
              f" (after `helm repo add apache-airflow https://airflow.apache.org`), or pass --chart DIR|TGZ"
              f" or set {CHART_ENV}")

SCHEMA_NAME = "values.schema.json"
DEFAULTS_NAME = "values.yaml"
CHART_META_NAME = "Chart.yaml"
TGZ_PREFIX = "airflow/"  # the members of `helm pull apache-airflow/airflow` (airflow-<version>.tgz)

# Object schemas left open on purpose (JSON pointers into the schema): `postgresql` is the values of the
# bundled bitnami PostgreSQL subchart, whose keys the Airflow chart's schema lists only a few of.
PASSTHROUGH = frozenset({"/properties/postgresql"})

# keywords whose value is one subschema / a list of subschemas / a map of name -> subschema (draft-07)
_ONE = ("additionalProperties", "additionalItems", "contains", "propertyNames", "not", "if", "then", "else")
_MANY = ("allOf", "anyOf", "oneOf")
_MAP = ("properties", "patternProperties", "definitions")


# --------------------------------------------------------------------------------------------- the chart

class ChartError(Exception):
    """The chart cannot be used: unreadable, malformed, or its schema is not a valid JSON schema."""


class ChartNotFound(ChartError):
    """No chart at the path given (or the default), or it lacks values.schema.json / values.yaml."""


@dataclass(eq=False)
class Chart:
    """The two files of a chart this script reads, and Chart.yaml's `version:` when the chart has one."""

    source: Path
    schema: dict
    defaults: dict
    version: str | None = None
    _validators: dict = field(default_factory=dict, repr=False)

    def validator(self, strict: bool = True) -> jsonschema.protocols.Validator:
        if strict not in self._validators:
            cls = jsonschema.validators.validator_for(self.schema, default=jsonschema.Draft7Validator)
            self._validators[strict] = cls(strict_schema(self.schema) if strict else self.schema)
        return self._validators[strict]

    def version_warning(self, expected: str = CHART_VERSION) -> str | None:
        if self.version is not None and self.version != expected:
            return (f"chart {self.source} is version {self.version}, not {expected}: the values were written and"
                    f" checked for {expected}")
        return None


def default_chart_path() -> Path:
    """$AIRFLOW_CHART_DIR when set, else var/helm-chart/airflow-<CHART_VERSION>/airflow in the repository."""
    env = os.environ.get(CHART_ENV, "").strip()
    return Path(env).expanduser() if env else DEFAULT_CHART_DIR


def load_chart(path: Path | str | None = None) -> Chart:
    """The chart at `path` (default: default_chart_path()): an untarred chart directory, the directory it was
    untarred into (holding `airflow/`), or a chart .tgz. Raises ChartNotFound or ChartError, never more."""
    path = Path(path) if path is not None else default_chart_path()
    if path.is_dir():
        if not (path / SCHEMA_NAME).is_file() and (path / "airflow" / SCHEMA_NAME).is_file():
            path = path / "airflow"  # the --untardir directory
        files = _read_dir(path)
    elif path.is_file():
        files = _read_tgz(path)
    else:
        raise ChartNotFound(f"Airflow chart not found: {path} does not exist")
    return _parse(path, *files)


def _read_dir(path: Path) -> tuple[str, str, str | None]:
    missing = [name for name in (SCHEMA_NAME, DEFAULTS_NAME) if not (path / name).is_file()]
    if missing:
        raise ChartNotFound(f"Airflow chart not found: {path} has no {' or '.join(missing)}")
    try:
        meta = path / CHART_META_NAME
        return ((path / SCHEMA_NAME).read_text(encoding="utf-8"), (path / DEFAULTS_NAME).read_text(encoding="utf-8"),
                meta.read_text(encoding="utf-8") if meta.is_file() else None)
    except (OSError, UnicodeDecodeError) as exc:
        raise ChartError(f"cannot read the Airflow chart in {path}: {exc}") from None


def _read_tgz(path: Path) -> tuple[str, str, str | None]:
    try:
        if not tarfile.is_tarfile(path):
            raise ChartError(f"{path} is neither a chart directory nor a chart .tgz")
        with tarfile.open(path, "r:*") as tar:
            def member(name: str, required: bool = True) -> str | None:
                try:
                    handle = tar.extractfile(TGZ_PREFIX + name)  # read in memory, nothing is extracted
                except KeyError:
                    handle = None
                if handle is None:
                    if required:
                        raise ChartNotFound(f"Airflow chart not found: {path} has no member {TGZ_PREFIX}{name}")
                    return None
                return handle.read().decode("utf-8")

            return member(SCHEMA_NAME), member(DEFAULTS_NAME), member(CHART_META_NAME, required=False)
    except (OSError, tarfile.TarError, UnicodeDecodeError, EOFError) as exc:
        raise ChartError(f"cannot read the Airflow chart {path}: {exc}") from None


def _parse(source: Path, schema_text: str, defaults_text: str, meta_text: str | None) -> Chart:
    try:
        schema = json.loads(schema_text)
    except ValueError as exc:
        raise ChartError(f"{source}: {SCHEMA_NAME} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ChartError(f"{source}: {SCHEMA_NAME} is not a JSON schema object")
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ChartError(f"{source}: {SCHEMA_NAME} is not a valid JSON schema: {exc.message}") from None
    defaults = _yaml(source, DEFAULTS_NAME, defaults_text) or {}
    meta = _yaml(source, CHART_META_NAME, meta_text) if meta_text is not None else None
    if not isinstance(defaults, dict):
        raise ChartError(f"{source}: {DEFAULTS_NAME} is not a mapping of values")
    version = meta.get("version") if isinstance(meta, dict) else None
    return Chart(source, schema, defaults, None if version is None else str(version))


def _yaml(source: Path, name: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ChartError(f"{source}: {name} is not YAML: {' '.join(str(exc).split())}") from None


# --------------------------------------------------------------------------------------------- merging

def merge_user_files(*docs: dict | None) -> dict:
    """Several `-f` files, as helm merges them: later files win, maps merge recursively, nulls are kept."""
    out: dict = {}
    for doc in docs:
        out = _merge_maps(out, doc or {})
    return out


def _merge_maps(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def helm_merge(defaults: dict, user: dict) -> dict:
    """The chart's defaults coalesced with user values, as helm does before validating: maps merge key by key,
    a list or scalar from the user replaces the default, and a user `null` deletes a default key."""
    out = copy.deepcopy(user)
    _coalesce(out, defaults)
    return out


def _coalesce(dst: dict, src: dict) -> None:
    for key, default in src.items():
        if key in dst:
            if dst[key] is None:
                del dst[key]
            elif isinstance(dst[key], dict) and isinstance(default, dict):
                _coalesce(dst[key], default)
            # otherwise the user's value stands (helm warns when a table meets a non-table)
        else:
            dst[key] = copy.deepcopy(default)


# --------------------------------------------------------------------------------------------- schema

def strict_schema(schema: dict, passthrough: frozenset[str] = PASSTHROUGH) -> dict:
    """A copy of `schema` in which every object schema with `properties` and no `additionalProperties` of
    its own refuses keys it does not list. Only schema positions are visited (not `default` or `examples`)."""

    def walk(node: Any, pointer: str) -> Any:
        if not isinstance(node, dict):
            return node
        out = dict(node)
        for kw in _ONE:
            if isinstance(out.get(kw), dict):
                out[kw] = walk(out[kw], f"{pointer}/{kw}")
        for kw in _MANY:
            if isinstance(out.get(kw), list):
                out[kw] = [walk(s, f"{pointer}/{kw}/{i}") for i, s in enumerate(out[kw])]
        for kw in _MAP:
            if isinstance(out.get(kw), dict):
                out[kw] = {name: walk(s, f"{pointer}/{kw}/{_escape(name)}") for name, s in out[kw].items()}
        if isinstance(out.get("items"), dict):
            out["items"] = walk(out["items"], f"{pointer}/items")
        elif isinstance(out.get("items"), list):
            out["items"] = [walk(s, f"{pointer}/items/{i}") for i, s in enumerate(out["items"])]
        if isinstance(out.get("dependencies"), dict):
            out["dependencies"] = {k: walk(v, f"{pointer}/dependencies/{_escape(k)}")
                                   for k, v in out["dependencies"].items()}
        # draft-07 ignores every keyword beside a $ref, so only a $ref-less node is closed here
        if "properties" in out and "additionalProperties" not in out and "$ref" not in out \
                and pointer not in passthrough:
            out["additionalProperties"] = False
        return out

    return walk(schema, "")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


# --------------------------------------------------------------------------------------------- checking

@dataclass(frozen=True)
class Problem:
    path: str  # dotted key path, list indexes in brackets: workers.celery.replicas, volumes[1].name
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.path or '<top level>'}: {self.message}" + (f" ({self.hint})" if self.hint else "")


def check(user: dict, chart: Chart, *, strict: bool = True) -> list[Problem]:
    """The problems of `user` values, merged over the chart's defaults the way helm merges them."""
    if not isinstance(user, dict):
        return [Problem("", f"values must be a mapping, not {type(user).__name__}")]
    merged = helm_merge(chart.defaults, user)
    problems: list[Problem] = []
    for error in chart.validator(strict).iter_errors(merged):
        problems += _explain(error)
    return sorted(set(problems), key=lambda p: (p.path, p.message))


def _explain(error: jsonschema.ValidationError) -> list[Problem]:
    if error.validator in ("anyOf", "oneOf") and error.context:
        # the alternative that got furthest says most (a mistyped key inside one object, not "no match")
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path):
            return _explain(jsonschema.exceptions.best_match(
                e for e in error.context if len(e.absolute_path) == deepest))
    path = _dotted(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and error.validator_value is False:
        listed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extras = [k for k in error.instance if k not in listed and not any(re.search(p, k) for p in patterns)]
        return [Problem(_dotted([*error.absolute_path, k]), "unknown key", _suggest(k, listed)) for k in extras]
    hint = schema.get("description", "")
    if error.validator == "type":
        hint = f"expected {_types(error.validator_value)}" + (f"; {hint}" if hint else "")
    elif error.validator == "enum":
        hint = f"one of {', '.join(map(repr, error.validator_value))}"
    return [Problem(path, error.message, _short(hint))]


def _suggest(key: str, listed: list[str]) -> str:
    close = difflib.get_close_matches(key, listed, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    shown = ", ".join(sorted(listed)[:12]) + (", ..." if len(listed) > 12 else "")
    return f"allowed here: {shown}" if listed else "no keys are allowed here"


def _types(value: str | list[str]) -> str:
    return value if isinstance(value, str) else " or ".join(value)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dotted(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def deprecated_keys(user: dict, chart: Chart) -> list[str]:
    """The keys set in `user` whose schema description says they are deprecated, with that description."""
    schema = chart.schema
    found: list[str] = []

    def walk(value: Any, node: Any, path: list) -> None:
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
            ref = node["$ref"]  # local #/definitions/... refs only, as in the Airflow chart's schema
            node = schema.get("definitions", {}).get(ref.rsplit("/", 1)[1]) \
                if ref.startswith("#/definitions/") else None
            seen += 1
        if not isinstance(node, dict):
            return
        if path and "deprecated" in str(node.get("description", "")).lower():
            found.append(f"{_dotted(path)}: {_short(node['description'])}")
        if isinstance(value, dict):
            for key, sub in value.items():
                child = node.get("properties", {}).get(key)
                if child is None and isinstance(node.get("additionalProperties"), dict):
                    child = node["additionalProperties"]
                walk(sub, child, [*path, key])
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            for i, sub in enumerate(value):
                walk(sub, node["items"], [*path, i])

    walk(user, schema, [])
    return found


# --------------------------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=[VALUES_FILE],
                        help="values files, merged in order like repeated `helm -f` (default: %(default)s)")
    parser.add_argument("--chart", type=Path, default=None,
                        help=f"the Airflow chart: an untarred chart directory or a chart .tgz"
                             f" (default: ${CHART_ENV}, else {CHART_UNTARDIR}/airflow)")
    parser.add_argument("--official-only", action="store_true",
                        help="the chart's schema as shipped (what helm checks), without closing open objects")
    args = parser.parse_args(argv)
    try:
        chart = load_chart(args.chart)
    except ChartNotFound as exc:
        print(f"error: {exc}; get it with: {FETCH_HINT}", file=sys.stderr)
        return 2
    except ChartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    warning = chart.version_warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        docs = [yaml.safe_load(f.read_text(encoding="utf-8")) for f in args.files]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"error: cannot read values: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    bad = [str(f) for f, d in zip(args.files, docs) if d is not None and not isinstance(d, dict)]
    if bad:
        print(f"error: not a mapping of values: {', '.join(bad)}", file=sys.stderr)
        return 2
    user = merge_user_files(*docs)
    for line in deprecated_keys(user, chart):
        print(f"warning: deprecated: {line}", file=sys.stderr)
    problems = check(user, chart, strict=not args.official_only)
    if not problems:
        print("valid")
        return 0
    mode = "chart schema" if args.official_only else "chart schema, unknown keys refused"
    version = f" {chart.version}" if chart.version else ""
    print(f"{len(problems)} problem(s) against the Airflow chart{version} at {chart.source} ({mode}):")
    for p in problems:
        print(f"  {p}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
