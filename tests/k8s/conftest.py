"""These tests import Airflow (the cncf provider) in-process but need no Airflow database. Give them a
throwaway AIRFLOW_HOME unless tests/dags/conftest.py already set one up in this session (tests/dags runs
first in the default order, and Airflow keeps the home it was first imported with)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _airflow_home(tmp_path_factory):
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in os.environ:
        home = tmp_path_factory.mktemp("airflow-home-k8s")
        os.environ.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"})
