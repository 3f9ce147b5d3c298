"""The Releases page's FastAPI app, mounted by the plugin at /bluegreen/releases on the api-server.

Only for logged-in users, as the rest of the UI: the user is the one of the Airflow UI's own session
(its JWT cookie, or an ``Authorization: Bearer`` token), resolved by the api-server's ``get_user``
and the configured auth manager; without one, a browser is sent to the auth manager's login page
(and back), anything else gets 401.  Each user sees the apps whose DAG they may read.

    GET /                     every app: one row each
    GET /app/{app}            one app: its row, the timeline of its last runs, the analysis results
    GET /app/{app}/objects    its Service and both colors' workloads as read now
    GET /app/{app}/preview    to the preview Service's URL (read now)
    GET /icon.svg             the navigation's icon
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations (``Request``),
# which are imported inside create_app, when the routes are defined.
import datetime as dt
import logging
import threading
import time
from html import escape
from typing import Annotated, Any

ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="24" height="24">'
    '<rect x="2" y="5" width="9" height="14" rx="2" fill="#2563eb"/>'
    '<rect x="13" y="5" width="9" height="14" rx="2" fill="#15803d"/></svg>'
)
#: runs per app: on the list (the one in flight, the last one) and on an app's page (the timeline)
LIST_RUNS = 3
DETAIL_RUNS = 10


def create_app():
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, RedirectResponse, Response

    from . import apps as app_configs
    from .cluster import collect, start_reads
    from .page import app_page, objects_page, releases_page
    from .runs import read_notes, read_runs
    from .view import Links, build_rows

    api = FastAPI(title="bluegreen releases", docs_url=None, redoc_url=None, openapi_url=None)

    class LoginRequired(Exception):
        def __init__(self, request: Request):
            self.request = request

    @api.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired):
        from airflow.api_fastapi.app import get_auth_manager

        if "text/html" in (request.headers.get("accept") or ""):
            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=302)
        return Response("Not authenticated", status_code=401, media_type="text/plain")

    async def viewer(request: Request) -> Any:
        """The logged-in user (the UI's session cookie, or a bearer token), else LoginRequired."""
        from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

        try:
            return await get_user(request, None, await bearer_scheme(request))
        except HTTPException as e:
            if e.status_code in (401, 403):
                raise LoginRequired(request) from None
            raise

    User = Annotated[Any, Depends(viewer)]

    def visible(user) -> list[app_configs.AppEntry]:
        """The apps whose DAG the user may read (a config that does not validate: with its placeholder)."""
        from airflow.api_fastapi.app import get_auth_manager

        allowed = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
        return [
            entry
            for entry in app_configs.load_entries()
            if entry.dag_id in allowed or (entry.app is None and "bluegreen_invalid_app_configs" in allowed)
        ]

    def one(user, name: str) -> app_configs.AppEntry:
        for entry in visible(user):
            if entry.name == name:
                return entry
        raise HTTPException(404, f"no app {name!r} (or no access to its DAG)")

    def rows_for(entries, per_dag: int, tasks_of: str, analysis: bool = False):
        started = time.monotonic()
        reads = start_reads([e.app for e in entries if e.app is not None])
        runs = read_runs([e.dag_id for e in entries], per_dag, tasks_of=tasks_of, analysis=analysis)
        clusters = collect(reads, started)
        return build_rows(entries, clusters, runs), time.monotonic() - started

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    @api.get("/", response_class=HTMLResponse)
    def releases(user: User, refresh: int = 1) -> HTMLResponse:
        rows, seconds = rows_for(visible(user), LIST_RUNS, "latest")
        return HTMLResponse(releases_page(rows, Links(), now(), seconds, refresh=bool(refresh)))

    @api.get("/app/{name}", response_class=HTMLResponse)
    def app_detail(name: str, user: User, refresh: int = 1) -> HTMLResponse:
        entry = one(user, name)
        [row], _ = rows_for([entry], DETAIL_RUNS, "all", analysis=True)
        notes = read_notes(entry.dag_id, [r.run_id for r in row.runs])
        return HTMLResponse(app_page(row, Links(), now(), notes, refresh=bool(refresh)))

    @api.get("/app/{name}/objects", response_class=HTMLResponse)
    def app_objects(name: str, user: User) -> HTMLResponse:
        entry = one(user, name)
        [row], _ = rows_for([entry], 1, "none")
        return HTMLResponse(objects_page(row, Links()))

    @api.get("/app/{name}/preview")
    def app_preview(name: str, user: User) -> Response:
        entry = one(user, name)
        [row], _ = rows_for([entry], 1, "none")
        if row.cluster and row.cluster.preview_url:
            return RedirectResponse(row.cluster.preview_url, status_code=307)
        reason = (
            row.cluster.error
            if row.cluster and row.cluster.error
            else "no preview Service is running (the app has none, or no release deployed one)"
        )
        return HTMLResponse(f"<p>{escape(reason)}</p>", status_code=404)

    @api.get("/icon.svg")
    def icon() -> Response:
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    return api


class WarmUp:
    """A pass-through middleware of the api-server (only the api-server builds its middlewares, when
    it starts): a background thread imports the platform clients the page reads with (the Kubernetes
    provider's hook alone takes ~0.8 s to import), so that the page's first load does not wait."""

    def __init__(self, app):
        self.app = app
        threading.Thread(target=self.warm, name="bluegreen-releases-warm-up", daemon=True).start()

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)

    @staticmethod
    def warm() -> None:
        try:
            import airflow.providers.cncf.kubernetes.hooks.kubernetes  # noqa: F401

            from ..hooks import bcs  # noqa: F401
            from ..platforms import bcs_mesos, kubernetes  # noqa: F401
            from . import page, runs  # noqa: F401
        except Exception:  # the first load imports them then, and says what is wrong
            logging.getLogger(__name__).debug("warm-up of the Releases page failed", exc_info=True)


class LazyApp:
    """An ASGI app built on its first request: the plugin is loaded by every Airflow process (the
    scheduler, the workers), and only the api-server serves the page."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)
