"""Where the project's files are: the package, include/config, include/prompts, sql/ and the default settings."""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # include/warriorflow
INCLUDE_DIR = PACKAGE_ROOT.parent  # include/
CONFIG_DIR = INCLUDE_DIR / "config"
PROMPTS_DIR = INCLUDE_DIR / "prompts"
REPO_ROOT = INCLUDE_DIR.parent
SQL_DIR = REPO_ROOT / "sql"  # the project's sql/ (schema migrations and named queries)
DEFAULT_SETTINGS_FILE = CONFIG_DIR / "embedded.yaml"
SETTINGS_ENV = "WARRIORFLOW_CONFIG"
TRAINING_DIR_ENV = "WARRIORFLOW_TRAINING_DIR"  # training's local work dir (a pod's checkpoint volume)
