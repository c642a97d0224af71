"""The warriorflow Airflow plugin: the flywheel status page, wiring only.

* a FastAPI app mounted on the api-server under ``/warriorflow`` (the page, ``/warriorflow/api/status``
  as JSON, ``/warriorflow/report/`` for the latest `warriorflow report`); the app is
  ``warriorflow.ui.app.create_app``;
* a "Flywheel" entry in the UI's Browse menu (an external view) that shows the page inside Airflow;
* Airflow's own authentication in front of every route: the UI's session cookie or a bearer token, and the
  user's permission to view plugins (Airflow does not protect plugin apps by itself).

Every Airflow process that loads plugins imports this file, so it imports only fastapi and
warriorflow.ui.app; Airflow's security module, the store, duckdb and jinja2 load on the first request.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, HTTPException, Request, status

from warriorflow.ui.app import create_app

URL_PREFIX = "/warriorflow"


async def airflow_user(request: Request) -> None:
    """Authenticate the request as the api-server does (bearer token, else the UI's cookie); require PLUGINS view."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPAuthorizationCredentials
    from fastapi.security.utils import get_authorization_scheme_param

    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None
    user = await get_user(request, None, bearer)  # raises 401 when there is no valid token
    if not get_auth_manager().is_authorized_view(access_view=AccessView.PLUGINS, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed to view plugins")


class WarriorflowPlugin(AirflowPlugin):
    name = "warriorflow"
    fastapi_apps = [{"name": "warriorflow status", "url_prefix": URL_PREFIX,
                     "app": create_app(dependencies=[Depends(airflow_user)])}]
    external_views = [{
        "name": "Flywheel",
        "href": URL_PREFIX.lstrip("/") + "/",  # relative to the UI's base URL (works behind a path prefix)
        "destination": "nav",
        "category": "browse",
        "url_route": "warriorflow",
    }]
