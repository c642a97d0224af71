"""The embedded run's REST client: a 503 (the api-server could not lock standalone's SQLite, and undid its work)
is asked again; other errors are reported at once, naming the call."""

from __future__ import annotations

import httpx
import pytest

from warriorflow.cli import local_airflow
from warriorflow.cli.local_airflow import AirflowApi
from warriorflow.errors import WarriorflowError


def _api(responses: list[int]) -> tuple[AirflowApi, list[str]]:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        status = responses.pop(0)
        return httpx.Response(status, json={"id": 7} if status < 400 else {"detail": "database is locked"})

    api = AirflowApi.__new__(AirflowApi)
    api.url = "http://airflow.test"
    api._client = httpx.Client(base_url=api.url, transport=httpx.MockTransport(handler))
    return api, calls


def test_a_busy_database_is_asked_again(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(local_airflow.time, "sleep", slept.append)
    api, calls = _api([503, 503, 200])
    assert api.create_backfill("warriorflow_battle", "2026-11-20", "2026-11-21", "none") == {"id": 7}
    assert calls == ["POST /api/v2/backfills"] * 3 and slept == [2.0, 4.0]


def test_a_database_that_stays_busy_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(local_airflow.time, "sleep", lambda s: None)
    api, calls = _api([503] * 4)
    with pytest.raises(WarriorflowError, match=r"POST http://airflow.test/api/v2/backfills: HTTP 503"):
        api.create_backfill("warriorflow_battle", "2026-11-20", "2026-11-21", "none")
    assert len(calls) == 4


def test_other_errors_are_not_repeated(monkeypatch):
    monkeypatch.setattr(local_airflow.time, "sleep", lambda s: pytest.fail("no retry for a 409"))
    api, calls = _api([409])
    with pytest.raises(WarriorflowError, match="HTTP 409"):
        api.create_backfill("warriorflow_battle", "2026-11-20", "2026-11-21", "none")
    assert calls == ["POST /api/v2/backfills"]
