"""What each app's cluster says now, for the Releases page: its Service (selector, lock, release record,
history, soak) and both colors' workloads, read through the platform adapters with the app's Airflow
connection.  Only the adapters' reads are called (``read_service``, ``observe``): the page never writes.

A cluster that does not answer must not hold the page: the apps are read concurrently on a bounded
pool, every API request has a short timeout and is not retried (the page is read again at its next
refresh), and whatever has not answered by the page's deadline shows as such on its row.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from ..apps.colors import COLORS, other
from ..apps.config import AppConfig, config_digest
from ..apps.manifests import KUBERNETES
from ..hooks.retrying import Budget
from ..platforms import platform_for
from ..release import records as rec
from ..release.model import ColorStatus

#: seconds per API request of the page (a release's own requests have the connection's, 30 s)
REQUEST_TIMEOUT = 3.0
#: how long a page waits for all its apps' clusters
DEADLINE = 5.0
#: apps read at once (each read is a handful of sequential requests)
WORKERS = 16
#: an adapter (its client, its connection's credentials) is built again after this long
ADAPTER_TTL = 300.0


@dataclass
class ColorView:
    color: str
    exists: bool
    image: str | None = None
    ready: int = 0
    desired: int = 0
    progress: str = ""
    failure: str | None = None
    complete: bool = False
    deleting: bool = False

    @classmethod
    def of(cls, color: str, status: ColorStatus) -> ColorView:
        return cls(
            color=color,
            exists=status.exists,
            image=status.image,
            ready=status.ready,
            desired=status.desired,
            progress=status.progress,
            failure=status.failure,
            complete=status.complete,
            deleting=status.deleting,
        )

    @property
    def state(self) -> str:
        """In a word or three: what a person sees of an idle (or new) color."""
        if not self.exists:
            return "not deployed"
        if self.deleting:
            return "being removed"
        if self.failure:
            return f"failing: {self.failure}"
        if self.desired == 0:
            return "scaled to zero"
        return f"{'ready' if self.complete else 'starting'} {self.ready}/{self.desired}"


@dataclass
class ClusterView:
    """One app's cluster as read now; ``error`` when it could not be read (the rest is then empty)."""

    error: str | None = None
    service_exists: bool = False
    selector: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    live: str | None = None
    colors: dict[str, ColorView] = field(default_factory=dict)
    lock: rec.Lock | None = None
    lock_held: bool = False
    last_holder: str | None = None
    record: dict | None = None
    history: list = field(default_factory=list)
    soak: dict | None = None
    preview_url: str | None = None
    seconds: float = 0.0

    @property
    def idle(self) -> str | None:
        return other(self.live) if self.live else None


# adapters by app (and config), clients by connection: (built at, object)
_adapters: dict[str, tuple[float, Any]] = {}
_adapters_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="bluegreen-releases-page")
        return _pool


def _cached(key: str, build):
    now = time.monotonic()
    with _adapters_lock:
        cached = _adapters.get(key)
        if cached and now - cached[0] < ADAPTER_TTL:
            return cached[1]
    value = build()
    with _adapters_lock:
        _adapters[key] = (now, value)
    return value


def _kubernetes_hook(connection_id: str):
    """One client per connection, shared by its apps' adapters (its connection pool sized for the
    page's threads): the first load builds one client per cluster, not one per app."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    from ..hooks.user_agent import USER_AGENT

    hook = KubernetesHook(conn_id=connection_id)
    hook.api_client.user_agent = USER_AGENT
    try:
        # the pools it makes: room for the page's threads, and no retries of their own (urllib3
        # retries a GET that timed out three times: a hung API would hold a read 4 x REQUEST_TIMEOUT)
        hook.api_client.rest_client.pool_manager.connection_pool_kw.update(maxsize=WORKERS, retries=False)
    except AttributeError:  # another client layout: its own pool settings
        pass
    return hook


def _bcs_hook(connection_id: str):
    from ..hooks.bcs import BcsHook

    connection = copy.copy(BcsHook.get_connection(connection_id))
    extra = dict(connection.extra_dejson or {})
    extra["timeout"] = min(float(extra.get("timeout", REQUEST_TIMEOUT)), REQUEST_TIMEOUT)
    connection.extra = json.dumps(extra)
    return BcsHook(connection_id, connection=connection, budget=Budget(0))


def adapter_for(app: AppConfig):
    """The app's platform adapter for the page's reads: no retries (a short budget would only delay
    the row), every request bounded by REQUEST_TIMEOUT, the client of its connection shared; kept
    for ADAPTER_TTL."""

    def build():
        if app.platform == KUBERNETES:
            adapter = platform_for(app)
            adapter.hook = _cached(
                f"hook:{KUBERNETES}:{app.connection_id}", lambda: _kubernetes_hook(app.connection_id)
            )
            adapter.request_timeout = REQUEST_TIMEOUT
        else:
            from ..platforms.bcs_mesos import BcsMesosPlatform

            hook = _cached(f"hook:{app.platform}:{app.connection_id}", lambda: _bcs_hook(app.connection_id))
            adapter = BcsMesosPlatform(app, hook=hook)
        adapter.budget = Budget(0)
        return adapter

    return _cached(f"app:{app.name}:{config_digest(app.to_json())}", build)


def forget_adapter(app: AppConfig) -> None:
    """After a failed read: the next read builds the adapter and its connection's client again (the
    connection may have changed)."""
    with _adapters_lock:
        for key in [
            k for k in _adapters if k.startswith((f"app:{app.name}:", f"hook:{app.platform}:{app.connection_id}"))
        ]:
            del _adapters[key]


def preview_url(app: AppConfig, fields: dict[str, str]) -> str | None:
    """Where a person reaches the preview Service: the app's HTTP check URL aimed at the preview
    Service (the check reaches the live Service the same way), else its cluster IP and port."""
    try:
        if app.http_check is not None:
            return app.http_check.url.format(**fields)
    except (KeyError, IndexError, ValueError):
        pass
    if fields.get("cluster_ip") and fields.get("port"):
        return f"http://{fields['cluster_ip']}:{fields['port']}/"
    return None


def read_cluster(app: AppConfig, adapter=None, now: float | None = None) -> ClusterView:
    """One app's cluster, read now (raises what the adapter raises)."""
    started = time.monotonic()
    adapter = adapter or adapter_for(app)
    svc = adapter.read_service()
    view = ClusterView()
    if svc is not None:
        view.service_exists = True
        view.selector = dict(svc.selector)
        view.annotations = dict(svc.annotations)
        view.live = app.color_of(svc.selector)
        view.lock = rec.Lock.read(svc)
        moment = rec.now_utc(lambda: now if now is not None else time.time())
        view.lock_held = bool(view.lock and view.lock.held(moment))
        view.last_holder = rec.last_holder(svc)
        view.record = rec.release_record(svc)
        view.history = [h for h in rec.history(svc) if isinstance(h, dict)]
        soak = rec.annotation_json(svc, rec.SOAK)
        view.soak = soak if isinstance(soak, dict) else None
    for color in COLORS:
        view.colors[color] = ColorView.of(color, adapter.observe(color))
    if app.preview_service and "preview" in app.manifests:
        preview = adapter.read_service(app.manifests["preview"])
        if preview is not None:
            view.preview_url = preview_url(app, preview.url_fields)
    view.seconds = time.monotonic() - started
    return view


def _safe_read(app: AppConfig) -> ClusterView:
    started = time.monotonic()
    try:
        return read_cluster(app)
    except Exception as e:  # the row says what went wrong; the page goes on
        forget_adapter(app)
        # (a TransientError's tail, about the task's retries, is not the page's)
        message = str(e).splitlines()[0].split(" (still failing after")[0][:300] if str(e) else type(e).__name__
        return ClusterView(error=f"{type(e).__name__}: {message}", seconds=time.monotonic() - started)


def start_reads(apps: list[AppConfig]) -> dict[str, Future]:
    """Every app's cluster read started on the pool (the caller reads Airflow's DB meanwhile)."""
    return {app.name: pool().submit(_safe_read, app) for app in apps}


def collect(futures: dict[str, Future], started: float, deadline: float = DEADLINE) -> dict[str, ClusterView]:
    """The reads' views; a read not done ``deadline`` seconds after ``started`` (time.monotonic())
    gets a ClusterView whose error says so (it goes on in the background, bounded by its timeouts)."""
    wait_futures(list(futures.values()), timeout=max(0.0, started + deadline - time.monotonic()))
    views = {}
    for name, future in futures.items():
        if future.done():
            views[name] = future.result()
        else:
            future.cancel()
            views[name] = ClusterView(error=f"the cluster did not answer within {deadline:g}s", seconds=deadline)
    return views


def read_clusters(apps: list[AppConfig], deadline: float = DEADLINE) -> dict[str, ClusterView]:
    """Every app's cluster, read concurrently, within ``deadline`` seconds (see collect)."""
    return collect(start_reads(apps), time.monotonic(), deadline)
