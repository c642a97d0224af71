"""docker/helm/validate.py: Helm values merged over a chart's defaults as helm merges them, validated against the
chart's values.schema.json with unknown keys refused.

The strict logic runs in every run against a small synthetic chart (tests/fixtures/helm_chart/airflow, written
for these tests). docker/helm/values.yaml against the real Apache Airflow chart 1.19.0 runs only where that chart
is present ($AIRFLOW_CHART_DIR, else var/helm-chart/airflow-1.19.0/airflow: `helm pull`, see validate.FETCH_HINT).
The values' shape and secrets are checked in test_docker_files.py."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO

HELM = REPO / "docker" / "helm"
FIXTURE_CHART = REPO / "tests" / "fixtures" / "helm_chart" / "airflow"
PULL = "helm pull apache-airflow/airflow --version 1.19.0 --untar --untardir var/helm-chart/airflow-1.19.0"

_spec = importlib.util.spec_from_file_location("helm_values_validate", HELM / "validate.py")
validate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = validate  # docker/helm is not a package; dataclasses look the module up by name
_spec.loader.exec_module(validate)


def _paths(problems) -> list[str]:
    return [p.path for p in problems]


def _tgz(dest: Path, chart_dir: Path, names=("Chart.yaml", "values.schema.json", "values.yaml")) -> Path:
    """A chart .tgz laid out as `helm pull` downloads it: members airflow/<file>."""
    with tarfile.open(dest, "w:gz") as tar:
        for name in names:
            tar.add(chart_dir / name, arcname=f"airflow/{name}")
    return dest


@pytest.fixture(scope="module")
def chart():
    return validate.load_chart(FIXTURE_CHART)


# --------------------------------------------------------------------------------------------- synthetic chart

def test_the_fixture_chart_loads_and_its_defaults_pass(chart):
    assert chart.version == "1.19.0" and chart.version_warning() is None
    assert chart.defaults["executor"] == "CeleryExecutor"
    assert validate.check({}, chart) == []
    assert validate.check({}, chart, strict=False) == []


def test_an_unknown_top_level_key_fails_naming_it(chart):
    (problem,) = validate.check({"executer": "CeleryExecutor"}, chart)
    assert (problem.path, problem.message) == ("executer", "unknown key")
    assert "'executor'" in problem.hint
    assert str(problem) == "executer: unknown key (did you mean 'executor'?)"
    # the schema leaves the top level open: helm itself would install this
    assert validate.check({"executer": "CeleryExecutor"}, chart, strict=False) == []
    (far,) = validate.check({"zzz": 1}, chart)
    assert far.hint.startswith("allowed here: config, defaultAirflowDigest, env, executor")


@pytest.mark.parametrize(("user", "path", "suggestion", "open_in_schema"), [
    ({"workers": {"replicaz": 2}}, "workers.replicaz", "replicas", True),
    ({"workers": {"celery": {"replicass": 2}}}, "workers.celery.replicass", "replicas", True),
    ({"workers": {"celery": {"persistence": {"sise": "1Gi"}}}}, "workers.celery.persistence.sise", "size", True),
    ({"workers": {"resources": {"limitz": {}}}}, "workers.resources.limitz", "limits", False),  # closed by the chart
    ({"volumeMounts": [{"name": "x", "mountPath": "/x", "readonly": True}]}, "volumeMounts[0].readonly",
     "readOnly", True),  # inside an array item reached through $ref
    ({"env": [{"name": "A", "value": "b", "valeu": "c"}]}, "env[0].valeu", "value", True),
])
def test_a_misspelt_nested_key_fails_naming_its_path(chart, user, path, suggestion, open_in_schema):
    problems = validate.check(user, chart)
    assert _paths(problems) == [path]
    assert problems[0].message == "unknown key" and repr(suggestion) in problems[0].hint
    assert (validate.check(user, chart, strict=False) == []) is open_in_schema


@pytest.mark.parametrize(("user", "path", "expected"), [
    ({"workers": {"celery": {"replicas": "two"}}}, "workers.celery.replicas", "expected integer"),
    ({"workers": {"celery": {"persistence": {"enabled": "yes"}}}}, "workers.celery.persistence.enabled",
     "expected boolean"),
    ({"env": {"A": "b"}}, "env", "expected array"),  # env is a list of name/value entries
    ({"volumeMounts": [{"name": "x"}]}, "volumeMounts[0]", ""),  # mountPath is required
    ({"executor": "CeleryExecuter"}, "executor", "one of 'CeleryExecutor'"),
])
def test_a_wrong_type_or_value_fails(chart, user, path, expected):
    problems = validate.check(user, chart)
    assert _paths(problems) == [path]
    assert expected in problems[0].hint
    assert _paths(validate.check(user, chart, strict=False)) == [path]  # the chart's own schema says so too


def test_free_form_maps_take_any_key(chart):
    user = {
        "nodeSelector": {"cloud.example.com/gpu-pool": "a100"},        # additionalProperties: a schema
        "labels": {"team": "warriorflow", "n": 3},                      # additionalProperties: true
        "workers": {"podAnnotations": {"example.com/anything": "x"}},
        "config": {"some_new_section": {"any_option": "1"}},            # type: object, no properties
        "postgresql": {"primary": {"persistence": {"size": "8Gi"}}},    # a subchart's values (PASSTHROUGH)
    }
    assert validate.check(user, chart) == []
    # free-form, not unchecked: a map of strings still wants strings
    assert _paths(validate.check({"nodeSelector": {"gpu": 1}}, chart)) == ["nodeSelector.gpu"]
    assert _paths(validate.check({"postgresql": {"enabled": "no"}}, chart)) == ["postgresql.enabled"]


def test_helm_merge_semantics():
    defaults = {"a": {"b": 1, "c": {"d": 2}}, "l": [1, 2], "s": "x", "keep": True}
    user = {"a": {"c": {"e": 3}, "b": None}, "l": [9], "s": None, "new": None}
    assert validate.helm_merge(defaults, user) == {"a": {"c": {"d": 2, "e": 3}}, "l": [9], "keep": True,
                                                   "new": None}
    assert defaults == {"a": {"b": 1, "c": {"d": 2}}, "l": [1, 2], "s": "x", "keep": True}  # untouched
    assert user["a"] == {"c": {"e": 3}, "b": None}  # untouched
    # several -f files: later wins, maps merge, a null survives to delete the chart default
    assert validate.merge_user_files({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, None) == {"a": {"b": None, "c": 2}}


def test_validation_sees_the_values_merged_over_the_chart_defaults(chart):
    """A user `null` is helm's way to unset a key, the chart's default with it. Validated alone the values would
    be refused (executor must be a string); merged first, as helm does, the key is simply gone."""
    user = {"executor": None, "workers": {"celery": {"replicas": 3}},
            "volumeMounts": [{"name": "a", "mountPath": "/a"}]}
    assert not chart.validator(strict=False).is_valid(user)
    assert validate.check(user, chart) == []
    merged = validate.helm_merge(chart.defaults, user)
    assert "executor" not in merged
    # maps merge key by key
    assert merged["workers"]["celery"] == {"replicas": 3, "persistence": {"enabled": True, "size": "10Gi"}}
    assert merged["volumeMounts"] == [{"name": "a", "mountPath": "/a"}]  # a list replaces the default's
    assert "defaultAirflowDigest" in merged and merged["defaultAirflowDigest"] is None  # a null default stays
    # a user null deletes nested defaults too; a user null for a key without a default is validated as null
    merged = validate.helm_merge(chart.defaults, {"workers": {"celery": {"persistence": None}}})
    assert merged["workers"]["celery"] == {"replicas": 1}
    assert _paths(validate.check({"workers": {"resources": {"limits": None}}}, chart)) == ["workers.resources.limits"]


def test_strict_schema_closes_only_undeclared_objects():
    schema = {
        "type": "object",
        "properties": {
            "open": {"type": "object", "properties": {"x": {}}},
            "declared": {"type": "object", "properties": {"x": {}}, "additionalProperties": True},
            "typed_map": {"type": "object", "additionalProperties": {"type": "string"}},
            "free": {"type": "object"},
            "sub": {"type": "object", "properties": {"x": {}}},
            "ref": {"$ref": "#/definitions/Thing", "properties": {"y": {}}},
            "example": {"type": "object", "default": {"properties": {"y": 1}}},
        },
        "definitions": {"Thing": {"type": "object", "properties": {"x": {}}}},
    }
    strict = validate.strict_schema(schema, passthrough=frozenset({"/properties/sub"}))
    props = strict["properties"]
    assert strict["additionalProperties"] is False and props["open"]["additionalProperties"] is False
    assert props["declared"]["additionalProperties"] is True
    assert props["typed_map"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in props["free"] and "additionalProperties" not in props["sub"]
    assert "additionalProperties" not in props["ref"]  # draft-07: keywords beside $ref are ignored
    assert strict["definitions"]["Thing"]["additionalProperties"] is False
    assert props["example"]["default"] == {"properties": {"y": 1}}  # values inside `default` are not schemas
    assert "additionalProperties" not in schema  # the input is left alone


def test_deprecated_keys_are_reported(chart):
    assert validate.deprecated_keys({"workers": {"replicas": 2}}, chart) == [
        "workers.replicas: Deprecated: use workers.celery.replicas."]
    assert validate.deprecated_keys({"workers": {"celery": {"replicas": 2}}}, chart) == []


# --------------------------------------------------------------------------------------------- loading a chart

def test_the_chart_loads_from_its_untardir_and_from_a_tgz(chart, tmp_path):
    parent = validate.load_chart(FIXTURE_CHART.parent)  # the --untardir directory, holding airflow/
    assert parent.source == FIXTURE_CHART and parent.schema == chart.schema
    tgz = validate.load_chart(_tgz(tmp_path / "airflow-1.19.0.tgz", FIXTURE_CHART))
    assert (tgz.schema, tgz.defaults, tgz.version) == (chart.schema, chart.defaults, "1.19.0")
    assert _paths(validate.check({"executer": "x"}, tgz)) == ["executer"]


@pytest.mark.parametrize("where", ["nothing", "empty dir", "dir without values.yaml", "tgz without schema"])
def test_a_missing_chart_is_chart_not_found(tmp_path, where):
    target = tmp_path / "chart"
    if where == "empty dir":
        target.mkdir()
    elif where == "dir without values.yaml":
        target.mkdir()
        shutil.copy(FIXTURE_CHART / "values.schema.json", target)
    elif where == "tgz without schema":
        target = _tgz(tmp_path / "chart.tgz", FIXTURE_CHART, names=("Chart.yaml", "values.yaml"))
    with pytest.raises(validate.ChartNotFound, match=re.escape(str(target))):
        validate.load_chart(target)


@pytest.mark.parametrize(("files", "message"), [
    ({"values.schema.json": "{not json", "values.yaml": "{}"}, "is not JSON"),
    ({"values.schema.json": '{"type": 3}', "values.yaml": "{}"}, "not a valid JSON schema"),
    ({"values.schema.json": "{}", "values.yaml": "- a\n"}, "not a mapping of values"),
    ({"values.schema.json": "{}", "values.yaml": "a: [\n"}, "values.yaml is not YAML"),
])
def test_a_malformed_chart_is_a_chart_error(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(validate.ChartError, match=message) as info:
        validate.load_chart(tmp_path)
    assert not isinstance(info.value, validate.ChartNotFound)
    (tmp_path / "junk.tgz").write_bytes(b"not a tarball")
    with pytest.raises(validate.ChartError, match="neither a chart directory nor a chart .tgz"):
        validate.load_chart(tmp_path / "junk.tgz")


def test_the_default_chart_is_the_env_var_else_var(monkeypatch, tmp_path):
    monkeypatch.delenv(validate.CHART_ENV, raising=False)
    assert validate.default_chart_path() == REPO / "var" / "helm-chart" / "airflow-1.19.0" / "airflow"
    monkeypatch.setenv(validate.CHART_ENV, str(tmp_path))
    assert validate.default_chart_path() == tmp_path
    monkeypatch.setenv(validate.CHART_ENV, str(FIXTURE_CHART))
    assert validate.load_chart().schema == validate.load_chart(FIXTURE_CHART).schema


# --------------------------------------------------------------------------------------------- the CLI

def _values(tmp_path: Path, text: str, name: str = "values.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_cli_prints_valid_and_exits_0(tmp_path, capsys):
    good = _values(tmp_path, "executor: LocalExecutor\nworkers:\n  celery:\n    replicas: 2\n")
    assert validate.main(["--chart", str(FIXTURE_CHART), good]) == 0
    out, err = capsys.readouterr()
    assert out == "valid\n" and err == ""


def test_the_cli_prints_each_problem_with_its_path_and_a_hint(tmp_path, capsys):
    bad = _values(tmp_path, "executer: CeleryExecutor\nworkers:\n  replicas: 3\n  celery:\n    replicass: 2\n")
    assert validate.main(["--chart", str(FIXTURE_CHART), bad]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"2 problem(s) against the Airflow chart 1.19.0 at {FIXTURE_CHART} (chart schema, unknown")
    assert "  executer: unknown key (did you mean 'executor'?)" in out
    assert "  workers.celery.replicass: unknown key (did you mean 'replicas'?)" in out
    assert "warning: deprecated: workers.replicas" in err
    # --official-only: what helm itself checks, the misspellings pass
    assert validate.main(["--chart", str(FIXTURE_CHART), "--official-only", bad]) == 0


def test_the_cli_merges_several_files_like_repeated_f(tmp_path, capsys):
    base = _values(tmp_path, "executor: 3\n", "base.yaml")
    fix = _values(tmp_path, "executor: LocalExecutor\n", "fix.yaml")
    assert validate.main(["--chart", str(FIXTURE_CHART), base, fix]) == 0
    assert validate.main(["--chart", str(FIXTURE_CHART), fix, base]) == 1
    assert "executor: 3 is not of type 'string'" in capsys.readouterr().out


def test_the_cli_reads_a_chart_tgz(tmp_path, capsys):
    tgz = str(_tgz(tmp_path / "airflow-1.19.0.tgz", FIXTURE_CHART))
    assert validate.main(["--chart", tgz, _values(tmp_path, "workers: {celery: {replicas: 2}}\n")]) == 0
    assert validate.main(["--chart", tgz, _values(tmp_path, "executer: x\n", "bad.yaml")]) == 1
    assert "executer: unknown key" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["--chart", "env"])
def test_a_missing_chart_exits_2_with_the_helm_pull_hint(tmp_path, monkeypatch, capsys, how):
    missing = tmp_path / "no-chart"
    values = _values(tmp_path, "{}\n")
    if how == "env":
        monkeypatch.setenv(validate.CHART_ENV, str(missing))
        argv = [values]
    else:
        argv = ["--chart", str(missing), values]
    assert validate.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and str(missing) in err and PULL in err
    assert err.startswith("error: Airflow chart not found: ")


def test_a_missing_chart_is_one_line_and_no_traceback_from_the_command_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = subprocess.run([sys.executable, str(HELM / "validate.py"), "--chart", str(empty)],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert run.returncode == 2
    assert run.stdout == "" and "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [
        f"error: Airflow chart not found: {empty} has no values.schema.json or values.yaml; get it with: {PULL}"
        f" (after `helm repo add apache-airflow https://airflow.apache.org`), or pass --chart DIR|TGZ"
        f" or set AIRFLOW_CHART_DIR"]


def test_the_cli_warns_when_the_chart_is_another_version(tmp_path, capsys):
    other = tmp_path / "airflow"
    shutil.copytree(FIXTURE_CHART, other)
    (other / "Chart.yaml").write_text("apiVersion: v2\nname: airflow\nversion: 1.18.0\n")
    assert validate.main(["--chart", str(other), _values(tmp_path, "{}\n")]) == 0
    out, err = capsys.readouterr()
    assert out == "valid\n"
    assert f"warning: chart {other} is version 1.18.0, not 1.19.0" in err
    (other / "Chart.yaml").unlink()  # no Chart.yaml: nothing to compare, no warning
    assert validate.main(["--chart", str(other), _values(tmp_path, "{}\n")]) == 0
    assert capsys.readouterr().err == ""


def test_the_cli_refuses_unreadable_values_with_exit_2(tmp_path, capsys):
    assert validate.main(["--chart", str(FIXTURE_CHART), _values(tmp_path, "- a\n")]) == 2
    assert validate.main(["--chart", str(FIXTURE_CHART), str(tmp_path / "absent.yaml")]) == 2
    assert validate.main(["--chart", str(FIXTURE_CHART), _values(tmp_path, "a: [\n", "broken.yaml")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("error: ") == 3 and "Traceback" not in err


def test_the_install_commands_name_the_chart_version_the_values_were_checked_for():
    assert validate.CHART_VERSION == "1.19.0"
    for doc in (HELM / "values.yaml", REPO / "docker" / "README.md"):
        assert f"--version {validate.CHART_VERSION}" in doc.read_text(), doc
    readme = (REPO / "docker" / "schema" / "README.md").read_text()
    assert f"chart version **{validate.CHART_VERSION}**" in readme and PULL in readme


# --------------------------------------------------------------------------------------------- the real chart

@pytest.fixture(scope="module")
def real_chart():
    """The Apache Airflow chart 1.19.0 from $AIRFLOW_CHART_DIR or var/: these tests skip without it."""
    path = validate.default_chart_path()
    try:
        return validate.load_chart(path)
    except validate.ChartNotFound:
        pytest.skip(f"needs the Airflow Helm chart 1.19.0 at {path} (${validate.CHART_ENV}, else var/): {PULL}")


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


def test_real_chart_the_repo_values_are_valid_merged_and_strict(real_chart, values, capsys):
    assert real_chart.version_warning() is None
    assert validate.check(values, real_chart) == []
    assert validate.check(values, real_chart, strict=False) == []
    assert validate.deprecated_keys(values, real_chart) == []  # e.g. workers.replicas: use workers.celery.replicas
    assert validate.main(["--chart", str(real_chart.source), str(HELM / "values.yaml")]) == 0
    assert capsys.readouterr().out == "valid\n"


def test_real_chart_is_the_1_19_0_release(real_chart):
    assert real_chart.schema["$schema"] == "http://json-schema.org/draft-07/schema"
    assert real_chart.schema["properties"]["airflowVersion"]["default"] == "3.1.7"  # chart 1.19.0's Airflow
    assert real_chart.defaults["airflowVersion"] == "3.1.7"
    assert validate.check({}, real_chart) == []  # the defaults alone pass the strict check


def test_real_chart_a_misspelt_top_level_key_fails_naming_it(real_chart, values):
    broken = {**values, "executer": "CeleryExecutor"}
    (problem,) = validate.check(broken, real_chart)
    assert (problem.path, problem.message) == ("executer", "unknown key")
    assert "'executor'" in problem.hint
    # the official schema leaves the top level open: helm itself would install this
    assert validate.check(broken, real_chart, strict=False) == []


@pytest.mark.parametrize(("patch", "path", "suggestion"), [
    ({"workers": {"replicass": 2}}, "workers.replicass", "replicas"),                  # closed by the chart
    ({"apiServer": {"serviceAccount": {"creat": True}}}, "apiServer.serviceAccount.creat", "create"),  # by us
    ({"dags": {"gitSync": {"branchh": "main"}}}, "dags.gitSync.branchh", "branch"),
])
def test_real_chart_a_misspelt_nested_key_fails_naming_its_path(real_chart, values, patch, path, suggestion):
    problems = validate.check(validate.merge_user_files(values, patch), real_chart)
    assert _paths(problems) == [path]
    assert problems[0].message == "unknown key" and repr(suggestion) in problems[0].hint


def test_real_chart_a_misspelt_key_inside_a_kubernetes_object_fails(real_chart, values):
    user = validate.merge_user_files(values, {"volumeMounts": [{"name": "x", "mountPath": "/x", "readonly": True}]})
    problems = validate.check(user, real_chart)
    assert "volumeMounts[0].readonly" in _paths(problems)
    assert any("'readOnly'" in p.hint for p in problems)


@pytest.mark.parametrize(("patch", "path", "expected"), [
    ({"workers": {"celery": {"replicas": "two"}}}, "workers.celery.replicas", "integer"),
    ({"dagProcessor": {"enabled": "yes"}}, "dagProcessor.enabled", "boolean"),
    ({"env": {"WARRIORFLOW_HOME": "/x"}}, "env", "array"),  # env is a list of name/value entries
])
def test_real_chart_a_wrong_type_fails(real_chart, values, patch, path, expected):
    problems = validate.check(validate.merge_user_files(values, patch), real_chart)
    assert _paths(problems) == [path]
    assert expected in problems[0].hint


def test_real_chart_free_form_maps_take_any_key(real_chart, values):
    patch = {
        "nodeSelector": {"cloud.example.com/gpu-pool": "a100"},
        "labels": {"team": "warriorflow"},
        "airflowPodAnnotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"},
        "scheduler": {"podAnnotations": {"example.com/anything": "x"}},
        "config": {"some_new_section": {"any_option": "1"}},                  # airflow.cfg sections and options
        "extraSecrets": {"another-secret": {"stringData": "A: b"}},
        "workers": {"podDisruptionBudget": {"config": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}}},
        "postgresql": {"primary": {"persistence": {"size": "8Gi"}}},          # the subchart's own values
    }
    assert validate.check(validate.merge_user_files(values, patch), real_chart) == []
    assert _paths(validate.check({"nodeSelector": {"gpu": 1}}, real_chart)) == ["nodeSelector.gpu"]


def test_real_chart_validation_sees_the_merged_values(real_chart, values):
    user = validate.merge_user_files(values, {"executor": None})
    assert not real_chart.validator(strict=False).is_valid(user)
    assert validate.check(user, real_chart) == []
    merged = validate.helm_merge(real_chart.defaults, user)
    assert "executor" not in merged
    assert merged["workers"]["celery"]["replicas"] == 2 and merged["workers"]["keda"]["enabled"] is False


def test_real_chart_from_a_tgz_gives_the_same_answers(real_chart, values, tmp_path):
    if not real_chart.source.is_dir():
        pytest.skip("the real chart was given as a .tgz already")
    tgz = validate.load_chart(_tgz(tmp_path / "airflow-1.19.0.tgz", real_chart.source,
                                   names=("values.schema.json", "values.yaml")))
    assert (tgz.schema, tgz.defaults) == (real_chart.schema, real_chart.defaults)
    assert validate.check(values, tgz) == []
    assert _paths(validate.check({**values, "executer": "x"}, tgz)) == ["executer"]
