"""Extra links on the release tasks (the task's **Extra Links** in the Airflow UI): the app's row on
the Releases page, its Service and deployments as read now, and its preview Service.

Registered by the plugin as *global* operator extra links: the api-server computes them when the
task's panel asks, from the task's DAG (``release_<app>`` of an app config), while the task runs
too.  (Links an operator class declares are computed by the worker once the task has finished and
stored as XComs: not there for a step in progress.)  Every other DAG's tasks get none.
"""

from __future__ import annotations

from typing import ClassVar

from airflow.sdk import BaseOperatorLink

from .apps import AppEntry, by_dag_id
from .view import Links


class _ReleaseLink(BaseOperatorLink):
    label: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.label

    def get_link(self, operator, *, ti_key) -> str:
        entry = by_dag_id().get(ti_key.dag_id)
        if entry is None or entry.app is None:
            return ""
        return self.url(entry, Links())

    def url(self, entry: AppEntry, links: Links) -> str:  # pragma: no cover - each link says
        raise NotImplementedError


class ReleasesPageLink(_ReleaseLink):
    """The app on the Releases page (in the Airflow UI's frame)."""

    label = "Releases page"

    def url(self, entry: AppEntry, links: Links) -> str:
        return links.in_ui(links.app(entry.name))


class ServiceLink(_ReleaseLink):
    """The app's Service and both colors' deployments, as read from the cluster now."""

    label = "Service and deployments"

    def url(self, entry: AppEntry, links: Links) -> str:
        return links.in_ui(links.objects(entry.name))


class PreviewLink(_ReleaseLink):
    """The preview Service (apps with a ``preview`` manifest): redirected to its URL, read at the click."""

    label = "Preview"

    def url(self, entry: AppEntry, links: Links) -> str:
        app = entry.app
        if app is None or "preview" not in app.manifests:
            return ""
        return links.preview(entry.name)


RELEASE_LINKS = [ReleasesPageLink(), ServiceLink(), PreviewLink()]
