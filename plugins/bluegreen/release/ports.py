"""The seam between the release model and a cluster.

The release model (``bluegreen.release``) decides what happens in which order,
what counts as ready or healthy and how to roll back.  A platform adapter only
knows how to read and write its own API: each method below is one such fact or
one such change, with no release logic in it.  Kubernetes and BCS Mesos each
implement it once.

The release model owns this interface (a port, in the ports-and-adapters sense): the adapters
in ``bluegreen.platforms`` implement it, and the release model never imports them.  The Airflow
layer picks the adapter for an app (``bluegreen.platforms.platform_for``) and hands it to
``Release``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator

from .model import ColorStatus, ServiceView


class Platform(abc.ABC):
    """One app's objects on one cluster: its Service and its two color workloads."""

    #: short name used in configs and logs ("kubernetes", "bcs-mesos")
    name: str = ""
    #: who writes through this client (the release run); an adapter that leaves marks of its
    #: own writes (BCS write claims) names it there, so that the writer's retry can take them back
    writer: str | None = None

    def __init__(self, app):
        # app: bluegreen.apps.config.AppConfig (the adapters read its names and manifests)
        self.app = app

    # -- access ---------------------------------------------------------------------
    def check_permissions(self) -> None:  # noqa: B027 (a default: nothing to check on BCS Mesos)
        """Before a release's first write: raise ``ReleaseError`` naming every permission the
        release needs and this client lacks.  Platforms without access control have nothing
        to check (BCS Mesos)."""

    # -- reads ----------------------------------------------------------------------
    # Service methods act on the app's Service, or on another one (the preview Service)
    # when its manifest is given.

    @abc.abstractmethod
    def read_service(self, manifest: dict | None = None) -> ServiceView | None:
        """The app's Service, or None when it does not exist."""

    @abc.abstractmethod
    def observe(self, color: str) -> ColorStatus:
        """One observation of a color's workload, judged by this platform's readiness rule."""

    @abc.abstractmethod
    def service_backends(self) -> set[str]:
        """The members (pods, taskgroups) the Service sends traffic to right now."""

    @abc.abstractmethod
    def ready_members(self, color: str) -> set[str]:
        """The members of a color that are ready to take traffic right now."""

    # -- writes (each converges: calling it twice is the same as once) ---------------
    @abc.abstractmethod
    def read_manifest(self, color: str) -> dict | None:
        """The color's workload as applied (its manifest, without server-set fields), or None."""

    @abc.abstractmethod
    def apply_color(self, color: str, manifest: dict) -> str:
        """Make the color's workload match ``manifest``: create it, replace a leftover, or
        leave it when it already matches.  Returns what was done ("created", ...)."""

    @abc.abstractmethod
    def scale_color(self, color: str, replicas: int) -> None:
        """Set the color's replica count (0 keeps it for a fast rollback)."""

    @abc.abstractmethod
    def delete_color(self, color: str) -> None:
        """Ask for the color's workload to be deleted; already gone is fine."""

    @abc.abstractmethod
    def color_gone(self, color: str) -> bool:
        """True once the workload and every one of its members are gone."""

    @abc.abstractmethod
    def create_service(
        self, selector: dict[str, str], annotations: dict[str, str], manifest: dict | None = None
    ) -> ServiceView:
        """Create the Service from the app's manifest, selecting ``selector`` (nothing, when
        empty).  Raises ``Conflict`` when it exists: a create is the one atomic claim every
        API offers (a first release's lock rests on it)."""

    @abc.abstractmethod
    def write_service(
        self,
        current: ServiceView,
        selector: dict[str, str],
        annotations: dict[str, str | None],
        manifest: dict | None = None,
    ) -> ServiceView:
        """Set the Service's selector to exactly ``selector`` (no stale keys) and merge
        ``annotations`` (None removes a key), keeping everything else on it.  Raises
        ``Conflict`` when the Service changed since ``current`` was read: the write is
        conditional, between two bluegreen writers always (the release lock rests on it)."""

    @abc.abstractmethod
    def delete_service(self, manifest: dict | None = None, current: ServiceView | None = None) -> None:
        """Delete the Service (only a failed first release does this, and the preview Service);
        gone is fine.  With ``current``: only if it has not changed since (else ``Conflict``),
        where the API can say so."""

    # -- for people: what to type when a person must finish by hand ------------------
    @abc.abstractmethod
    def manual_switch(self, selector: dict[str, str]) -> str:
        """A command that points the app's Service at ``selector``."""

    @abc.abstractmethod
    def manual_delete(self, color: str) -> str:
        """A command that deletes the color's workload."""

    # -- waiting (inside triggers, on the triggerer's event loop) --------------------
    @abc.abstractmethod
    def watch(self, color: str, heartbeat: float = 2.0) -> AsyncGenerator[ColorStatus, None]:
        """Yield a fresh observation of the color whenever it may have changed (a watch
        where the API has one, polling where it does not), and at least every ``heartbeat``
        seconds."""

    def watch_service(self, heartbeat: float = 2.0) -> AsyncGenerator[ServiceView | None, None] | None:
        """Yield the app's Service (None: it does not exist) as the API has it, whenever it may have
        changed, and at least every ``heartbeat`` seconds: what a long soak looks at between its
        reads.  None: this platform's API cannot watch it (its readers read it when they need it)."""
        return None

    def close(self) -> None:  # noqa: B027 (a default: only adapters with resources close them)  # pragma: no cover - adapters with resources override it
        pass


class Metrics(abc.ABC):
    """A metrics server the release's analysis asks (``bluegreen.hooks.prometheus``)."""

    #: for messages: which server, through which connection (never its credentials)
    where: str = ""

    @abc.abstractmethod
    def query(self, promql: str) -> list[float]:
        """The values of an instant query's series (a scalar answer: one value; no series: none).
        Raises ``TransientError`` when the server cannot be reached or keeps failing (after the
        client's retries), ``ReleaseError`` with the server's message when it refuses the query
        (bad PromQL, no access)."""
