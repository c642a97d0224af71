"""Integration-test fixtures: a real SeaweedFS S3 server for the whole session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_helper():
    """Load ./seaweedfs.py by path under a private name: works in every pytest import mode and
    cannot be shadowed by (or shadow) an installed package called `seaweedfs`."""
    name = "_warriorflow_tests_seaweedfs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("seaweedfs.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look the module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


_seaweedfs = _load_helper()


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs real services started by the tests (e.g. SeaweedFS)")


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """A running SeaweedFS (S3 gateway with auth) on 127.0.0.1; stopped at session end.

    Fails (does not skip) when the `weed` binary is missing: these tests must run in CI."""
    try:
        server = _seaweedfs.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    except _seaweedfs.SeaweedFSError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
