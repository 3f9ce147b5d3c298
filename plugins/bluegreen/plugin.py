"""Registers bluegreen with Airflow as a plugin: the release-window timetable (Airflow deserializes
only custom timetables a plugin registers), the Releases page (a FastAPI app on the api-server and
its entry in the UI's navigation) and the release tasks' extra links.  Found through the package's
``airflow.plugins`` entry point (pyproject.toml), so nothing is copied into a plugins folder."""

from airflow.plugins_manager import AirflowPlugin

from bluegreen.timetable import ReleaseWindowTimetable
from bluegreen.ui.links import RELEASE_LINKS
from bluegreen.ui.view import PAGE_PREFIX, UI_ROUTE, base_path
from bluegreen.ui.web import LazyApp, WarmUp


class BluegreenPlugin(AirflowPlugin):
    name = "bluegreen"
    timetables = [ReleaseWindowTimetable]
    # The Releases page: served by the api-server under PAGE_PREFIX, shown inside the UI (its frame,
    # at /plugin/releases) from the navigation bar.
    fastapi_apps = [{"app": LazyApp(), "url_prefix": PAGE_PREFIX, "name": "bluegreen releases"}]
    # imports what the page reads with while the api-server starts (a pass-through otherwise)
    fastapi_root_middlewares = [{"middleware": WarmUp, "args": [], "kwargs": {}, "name": "bluegreen releases warm-up"}]
    external_views = [
        {
            "name": "Releases",
            "href": f"{base_path()}{PAGE_PREFIX}/",
            "url_route": UI_ROUTE,
            "destination": "nav",
            "icon": f"{base_path()}{PAGE_PREFIX}/icon.svg",
            "nav_top_level": True,
        }
    ]
    global_operator_extra_links = RELEASE_LINKS
