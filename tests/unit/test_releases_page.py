"""The Releases page's own logic: what it reads of a cluster (over the in-memory platform, after real
release steps), how it bounds a cluster that does not answer, what a row says of a release in
flight, the HTML (escaped; rollbacks marked) and the release tasks' extra links.  The page in a
browser, logged in to a real api-server: tests/services/test_releases_page.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bluegreen.ui import apps as app_configs
from bluegreen.ui import cluster as cl
from bluegreen.ui.page import app_page, releases_page, timeline_svg
from bluegreen.ui.runs import RunView, TaskView
from bluegreen.ui.view import Links, build_rows, duration

from .test_release_steps import IMAGE1, IMAGE2, full_release, green_deployed

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def at(seconds_ago: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds_ago)


def run(run_id: str, state: str, tasks: dict[str, tuple[str, float, float | None]], **kw) -> RunView:
    """A run whose tasks are {task: (state, started seconds ago, ended seconds ago or None)}."""
    views = {t: TaskView(t, s, at(start), None if end is None else at(end), 1) for t, (s, start, end) in tasks.items()}
    return RunView("release_test", run_id, state, at(100), None, at(100), tasks=views, **kw)


def test_the_cluster_as_a_release_left_it(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    r, plan = green_deployed(app, platform)

    view = cl.read_cluster(app, adapter=platform)

    assert view.error is None and view.service_exists
    assert view.live == "blue" and view.idle == "green"
    assert view.colors["blue"].image == IMAGE1 and view.colors["blue"].state == "ready 3/3"
    assert view.colors["green"].image == IMAGE2
    assert view.lock is not None and view.lock.run_id == "run2" and view.lock.plan["new_color"] == "green"
    assert [h["image"] for h in view.history] == [IMAGE1]
    assert platform.calls[-1] == "apply green", "the page only reads"


def test_a_cluster_that_does_not_answer_shows_on_its_row_and_holds_nothing(app, platform, monkeypatch):
    full_release(app, platform, "run1", IMAGE1)
    released = threading.Event()

    class Hangs:
        def read_service(self, manifest=None):
            released.wait(5)
            raise TimeoutError("read timed out")

    slow_app = dataclasses.replace(app, name="slow")
    monkeypatch.setattr(cl, "adapter_for", lambda a: Hangs() if a.name == "slow" else platform)
    started = time.monotonic()
    views = cl.read_clusters([app, slow_app], deadline=0.3)
    elapsed = time.monotonic() - started
    released.set()

    assert elapsed < 1.5, elapsed
    assert views["test"].error is None and views["test"].live == "blue"
    assert views["slow"].error == "the cluster did not answer within 0.3s"


def test_a_failed_read_is_the_rows_error(app, monkeypatch):
    class Refuses:
        def read_service(self, manifest=None):
            raise PermissionError("403 services is forbidden")

    monkeypatch.setattr(cl, "adapter_for", lambda a: Refuses())
    views = cl.read_clusters([app])
    assert views["test"].error == "PermissionError: 403 services is forbidden"


def test_what_a_release_in_flight_waits_for(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    r, plan = green_deployed(app, platform)
    platform.workloads["green"]["ready"] = 1
    entry = app_configs.AppEntry(Path(app.source), app)
    cluster = cl.read_cluster(app, adapter=platform)
    now = NOW.timestamp()

    def row_for(tasks):
        return build_rows([entry], {"test": cluster}, {"release_test": [run("run2", "running", tasks)]}, now=now)[0]

    ready = row_for(
        {
            "plan": ("success", 60, 55),
            "deploy_new_color": ("success", 55, 50),
            "wait_until_ready": ("deferred", 50, None),
        }
    )
    assert ready.in_flight is not None
    assert ready.in_flight.step is not None and ready.in_flight.step.task_id == "wait_until_ready"
    assert ready.in_flight.waits_for == "readiness of green: 1/3 ready"
    assert ready.in_flight.new_color == "green" and ready.in_flight.image == IMAGE2
    assert duration(ready.in_flight.time_in_step(NOW)) == "50s"

    approval = row_for({"wait_until_ready": ("success", 50, 40), "approve": ("awaiting_input", 40, None)})
    assert approval.in_flight is not None and approval.in_flight.approval
    assert approval.in_flight.waits_for == "approval: Browse > Required Actions"

    cluster.soak = {"run_id": "run2", "ends_at": now + 125, "unhealthy": 1}
    soak = row_for({"switch_traffic": ("success", 30, 20), "soak": ("deferred", 20, None)})
    assert soak.in_flight is not None and soak.in_flight.waits_for == "soak: 2m05s left, 1 unhealthy so far"


def test_the_page_escapes_what_it_shows_and_marks_a_rollback(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    entry = app_configs.AppEntry(Path(app.source), app)
    cluster = cl.read_cluster(app, adapter=platform)
    cluster.history.append(
        {"run_id": "<b>x</b>", "to": "green", "image": "<script>alert(1)</script>", "outcome": "rolled back: soak"}
    )
    runs = [
        run(
            "run3",
            "failed",
            {"soak": ("failed", 50, 40), "rollback": ("success", 40, 30), "finish": ("upstream_failed", 30, 30)},
        ),
        run("run1", "success", {"plan": ("success", 90, 80), "rollback": ("skipped", 80, 80)}),
    ]
    [row] = build_rows([entry], {"test": cluster}, {"release_test": runs}, now=NOW.timestamp())

    page = releases_page([row], Links(""), NOW, 0.1)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-outcome="rolled back"' in page
    assert "none; last run </span>" in page and ">run3</a>" in page and "rolled back" in page
    assert 'href="/dags/release_test"' in page and 'href="/bluegreen/releases/app/test"' in page

    svg = timeline_svg(runs, NOW)
    assert svg.count("<rect") == 2 + 3, "a background per run, and only the steps that ran"
    assert "⟲ rolled back" in svg and ">released<" in svg
    detail = app_page(row, Links("/airflow"), NOW, {"run3": "test: rolled back"})
    assert 'href="/airflow/dags/release_test/runs/run3"' in detail and "test: rolled back" in detail


def test_extra_links_name_the_apps_page_for_its_dags_only(tmp_path, monkeypatch):
    shutil.copy(ROOT / "dags/apps/test.yaml", tmp_path / "test.yaml")
    shutil.copytree(ROOT / "dags/apps/test", tmp_path / "test")
    (tmp_path / "broken.yaml").write_text("app: broken\nplatform: nowhere\n")
    monkeypatch.setenv("BLUEGREEN_APPS_DIR", str(tmp_path))
    from bluegreen.ui.links import PreviewLink, ReleasesPageLink, ServiceLink

    key = SimpleNamespace(dag_id="release_test", task_id="soak", run_id="r", map_index=-1)
    assert ReleasesPageLink().get_link(None, ti_key=key) == "/plugin/releases/bluegreen/releases/app/test"
    assert ServiceLink().get_link(None, ti_key=key) == "/plugin/releases/bluegreen/releases/app/test/objects"
    assert PreviewLink().get_link(None, ti_key=key) == "", "the test app has no preview Service"
    other = SimpleNamespace(dag_id="some_other_dag", task_id="t", run_id="r", map_index=-1)
    assert ReleasesPageLink().get_link(None, ti_key=other) == ""
    entries = {e.name: e for e in app_configs.load_entries()}
    assert entries["test"].app is not None and entries["broken"].app is None
    assert "platform='nowhere'" in (entries["broken"].error or "")


@pytest.mark.parametrize(
    "seconds, text", [(None, "-"), (1.25, "1.2s"), (42, "42s"), (125, "2m05s"), (7260, "2h01m"), (200000, "2d7h")]
)
def test_durations_read_as_people_write_them(seconds, text):
    assert duration(seconds) == text
