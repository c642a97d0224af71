"""The house rules that keep the layers readable: checked on the source, so a violation fails `make test`
as well as `make lint`."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "include" / "warriorflow"
SOURCES = sorted([*PACKAGE.rglob("*.py"), *(REPO / "dags").glob("*.py"), *(REPO / "plugins").glob("*.py"),
                  *(REPO / "bench").glob("*.py"), *(REPO / "tests").rglob("*.py")])
SOURCES = [p for p in SOURCES if "fixtures/hostile" not in p.as_posix()]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _warriorflow_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    out = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "warriorflow":
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "warriorflow"]
    return out


def private_imports(path: Path) -> list[str]:
    """``from warriorflow.x import _y``, and ``m._y`` on a warriorflow module imported as ``m`` (library,
    DAGs and plugins only: tests may monkeypatch a module's tuning constants)."""
    found = [f"{path}:{line}: from {mod} import {n}" for line, mod, names in _warriorflow_imports(path)
             for n in names if n.startswith("_") and not n.startswith("__")]
    if path.is_relative_to(REPO / "tests") or path.is_relative_to(REPO / "bench"):
        return found
    tree = _tree(path)
    modules = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module and node.module.startswith("warriorflow") for a in node.names}
    modules |= {(a.asname or a.name).split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for a in node.names if a.name.startswith("warriorflow")}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_imports_a_private_name_from_another():
    offenders = [o for p in SOURCES for o in private_imports(p)]
    assert offenders == []


def test_the_checker_sees_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from warriorflow.stages.base import _drop_rows\nfrom warriorflow import cli as c\nc._x\n")
    assert len(private_imports(bad)) == 2


def test_dags_compose_tasks_only_and_the_plugin_the_ui_only():
    for dag in (REPO / "dags").glob("*.py"):
        mods = {m for _, m, _ in _warriorflow_imports(dag)}
        assert mods and all(m.startswith("warriorflow.tasks") for m in mods), (dag.name, mods)
    for plugin in (REPO / "plugins").glob("*.py"):
        assert all(m.startswith("warriorflow.ui") for _, m, _ in _warriorflow_imports(plugin)), plugin.name


def test_the_top_level_holds_only_config_errors_and_the_layers():
    modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert modules == ["errors"]
    for pkg in (p for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"):
        doc = ast.get_docstring(_tree(pkg / "__init__.py"))
        assert doc and len(doc) > 40, f"{pkg.name}/__init__.py needs a docstring saying its one job"


def test_one_definition_of_each_shared_piece():
    """One JSONL codec, one prompt renderer with check_template, one StageReport, one Progress, one way to
    open backends: each name is defined (def, class or assignment) in exactly one module."""
    shared = {"StageReport": [], "Progress": [], "check_template": [], "fill": [], "encode_jsonl": [],
              "decode_jsonl": [], "OpenBackends": [], "quarantine": [], "ingest_files": []}
    for path in PACKAGE.rglob("*.py"):
        for node in _tree(path).body:
            names = [node.name] if isinstance(node, ast.FunctionDef | ast.ClassDef) else [
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)] if isinstance(
                node, ast.Assign) else []
            for n in names:
                if n in shared and not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute)):
                    shared[n].append(path.relative_to(PACKAGE).as_posix())
    assert {n: len(where) for n, where in shared.items()} == dict.fromkeys(shared, 1), shared


@pytest.mark.skipif(shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None,
                    reason="import-linter is installed by `make setup`")
def test_the_layers_contract_holds():
    proc = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_paths_computed_from_the_package_point_into_the_repo(tmp_path):
    """Moving a module must not move what it finds: make run's Airflow reads the repo's dags/ and plugins/."""
    from warriorflow.cli.local_airflow import LocalAirflow
    from warriorflow.config import PROMPTS_DIR, REPO_ROOT, SQL_DIR

    assert REPO_ROOT == REPO and (SQL_DIR / "migrations").is_dir() and (PROMPTS_DIR / "battle_judge.txt").is_file()
    env = LocalAirflow(home=tmp_path).env()
    dags = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
    assert {p.name for p in dags.glob("*.py")} >= {"warriorflow_mine.py", "warriorflow_battle.py",
                                                   "warriorflow_retrain.py"}
    assert (Path(env["AIRFLOW__CORE__PLUGINS_FOLDER"]) / "warriorflow_plugin.py").is_file()


def test_every_warriorflow_import_resolves():
    """Imports inside functions run only when the function does: check every one of them now."""
    import importlib

    missing = []
    for path in SOURCES:
        for line, module, names in _warriorflow_imports(path):
            try:
                mod = importlib.import_module(module)
            except ImportError as exc:
                missing.append(f"{path}:{line}: {module} ({exc})")
                continue
            for name in names:
                if not hasattr(mod, name):
                    try:
                        importlib.import_module(f"{module}.{name}")
                    except ImportError:
                        missing.append(f"{path}:{line}: {module}.{name}")
    assert missing == []
