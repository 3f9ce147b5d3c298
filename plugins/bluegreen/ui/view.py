"""One row per app for the Releases page: the app config, what its cluster says, what Airflow says,
joined into what a release engineer asks first (what is live, what is in flight and where, what
happened last, who holds the app) and the links to act on it."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from .apps import AppEntry
from .cluster import ClusterView
from .runs import RunView, TaskView

#: the page's URL under the api-server (the plugin mounts its FastAPI app here)
PAGE_PREFIX = "/bluegreen/releases"
#: the page inside the Airflow UI's frame (the plugin's external view)
UI_ROUTE = "releases"


def base_path() -> str:
    """The path the Airflow UI is served under ([api] base_url), "" at the root."""
    try:
        from airflow.configuration import conf

        return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")
    except Exception:  # no configuration (a unit test): the root
        return ""


class Links:
    """Where the page's links go (the Airflow UI's own pages, and the page's)."""

    def __init__(self, base: str | None = None):
        self.base = base_path() if base is None else base.rstrip("/")

    def dag(self, dag_id: str) -> str:
        return f"{self.base}/dags/{quote(dag_id, safe='')}"

    def run(self, dag_id: str, run_id: str) -> str:
        return f"{self.dag(dag_id)}/runs/{quote(run_id, safe='')}"

    def task(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"{self.run(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"

    def approval(self, dag_id: str, run_id: str) -> str:
        return f"{self.task(dag_id, run_id, 'approve')}/required_actions"

    def required_actions(self) -> str:
        return f"{self.base}/required_actions"

    def page(self) -> str:
        return f"{self.base}{PAGE_PREFIX}/"

    def app(self, name: str) -> str:
        return f"{self.base}{PAGE_PREFIX}/app/{quote(name, safe='')}"

    def objects(self, name: str) -> str:
        return f"{self.app(name)}/objects"

    def preview(self, name: str) -> str:
        return f"{self.app(name)}/preview"

    def in_ui(self, page_url: str) -> str:
        """A page of ours inside the Airflow UI (its navigation around it): /plugin/releases/<our path>."""
        return f"{self.base}/plugin/{UI_ROUTE}{page_url[len(self.base) :]}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def ago(moment: dt.datetime | str | None, now: dt.datetime) -> str:
    if isinstance(moment, str):
        try:
            when = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return moment
    elif moment is None:
        return "-"
    else:
        when = moment
    return f"{duration((now - when).total_seconds())} ago"


@dataclass
class InFlight:
    run: RunView
    step: TaskView | None
    waits_for: str
    new_color: str | None = None
    image: str | None = None
    approval: bool = False

    def time_in_step(self, now: dt.datetime) -> float | None:
        return self.step.seconds(now) if self.step else None


@dataclass
class Row:
    entry: AppEntry
    cluster: ClusterView | None
    runs: list[RunView] = field(default_factory=list)
    in_flight: InFlight | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def last_run(self) -> RunView | None:
        return self.runs[0] if self.runs else None


def _plan_of(cluster: ClusterView | None, run_id: str) -> dict:
    """The plan of ``run_id`` as the Service records it (its lock, or its release record)."""
    if cluster is None:
        return {}
    if cluster.lock and cluster.lock.run_id == run_id:
        return cluster.lock.plan
    record = cluster.record or {}
    if record.get("run_id") == run_id and isinstance(record.get("plan"), dict):
        return record["plan"]
    return {}


def waits_for(run: RunView, step: TaskView | None, cluster: ClusterView | None, plan: dict, now: float) -> str:
    """What the release in flight waits for, in a few words (readiness x/y, soak time left, approval)."""
    if step is None:
        return "to be scheduled"
    new, old = plan.get("new_color"), plan.get("old_color")
    if step.state == "awaiting_input":
        return "approval: Browse > Required Actions"
    if step.state == "up_for_retry":
        return f"a retry of {step.task_id} (try {step.try_number} failed)"
    if step.state in ("queued", "scheduled"):
        return f"{step.task_id} to start"
    task = step.task_id
    if task == "wait_for_window":
        return "the release window"
    if task == "plan":
        return "the plan and the release lock"
    if task == "deploy_new_color":
        return f"{new or 'the new color'} to be deployed"
    if task == "wait_until_ready":
        color = cluster.colors.get(new) if cluster and new else None
        if color is None:
            return "readiness"
        if not color.exists:
            return f"readiness of {new}: not deployed yet"
        failure = f" ({color.failure})" if color.failure else ""
        return f"readiness of {new}: {color.ready}/{color.desired} ready{failure}"
    if task == "switch_traffic":
        return f"traffic to move to {new or 'the new color'}"
    if task == "soak":
        soak = cluster.soak if cluster else None
        if soak and soak.get("run_id") == run.run_id and isinstance(soak.get("ends_at"), int | float):
            left = float(soak["ends_at"]) - now
            unhealthy = soak.get("unhealthy", 0)
            return f"soak: {duration(left)} left, {unhealthy} unhealthy so far"
        return "soak"
    if task == "retire_old_color":
        return f"{old or 'the old color'} to be removed (after the drain delay)"
    if task == "finish":
        return "the release record"
    if task == "rollback":
        return f"traffic back on {old or 'the old color'}, {new or 'the new color'} removed"
    return task


def build_rows(
    entries: list[AppEntry],
    clusters: dict[str, ClusterView],
    runs: dict[str, list[RunView]],
    now: float | None = None,
) -> list[Row]:
    now = time.time() if now is None else now
    rows = []
    for entry in entries:
        cluster = clusters.get(entry.name)
        row = Row(entry, cluster, runs.get(entry.dag_id, []))
        flying = next((r for r in row.runs if r.in_flight), None)
        if flying is not None:
            step = flying.current
            plan = _plan_of(cluster, flying.run_id)
            row.in_flight = InFlight(
                run=flying,
                step=step,
                waits_for=waits_for(flying, step, cluster, plan, now),
                new_color=plan.get("new_color"),
                image=plan.get("image") or flying.image,
                approval=bool(step and step.state == "awaiting_input"),
            )
        rows.append(row)
    return rows
