"""The provider registration and the switch's window guard, without a cluster."""

import datetime as dt
from types import SimpleNamespace

import pytest

from bluegreen.apps.windows import Window


def test_the_bcs_connection_type_is_registered_with_airflow():
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hooks = ProvidersManagerTaskRuntime().hooks
    assert "bcs" in hooks, "install the project (make does) so that Airflow sees bluegreen as a provider"
    assert hooks["bcs"].hook_class_name == "bluegreen.hooks.bcs.BcsHook"
    # the UI builds the connection form from these
    connection_type = ProvidersManager().providers["bluegreen"].data["connection-types"][0]
    assert set(connection_type["conn-fields"]) == {"cluster_id", "ca_bundle", "verify", "timeout"}


def _release(app, selector):
    calls = []
    return SimpleNamespace(
        app=app, serving_color=lambda: app.color_of(selector), run_id="r", switch=lambda plan: calls.append(plan)
    ), calls


@pytest.fixture
def windowed(app):
    import dataclasses

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    window = Window(
        days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
        start=later.strftime("%H:%M"),
        end=(later + dt.timedelta(minutes=30)).strftime("%H:%M"),
        timezone="UTC",
    )
    return lambda closes: dataclasses.replace(app, windows=(window,), window_closes=closes)


def test_the_switch_never_happens_outside_a_window(windowed):
    from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

    from bluegreen.operators import SwitchTrafficOperator
    from bluegreen.release.model import Plan

    plan = Plan(app="test", run_id="r", new_color="green", old_color="blue", image="x:v2", replicas=3, soak_seconds=5)
    op = SwitchTrafficOperator(task_id="switch_traffic", app={})
    ti = SimpleNamespace(xcom_push=lambda **kw: None)

    release, calls = _release(windowed("rollback"), {"app": "test-blue"})
    with pytest.raises(AirflowFailException, match="window closed before the switch"):
        op.step({"ti": ti}, release, plan)
    release, calls = _release(windowed("wait"), {"app": "test-blue"})
    with pytest.raises(TaskDeferred):
        op.step({"ti": ti}, release, plan)
    assert calls == [], "no switch outside the window"
    # already switched by this run (a clear after the window closed): converge, do not fail
    release, calls = _release(windowed("rollback"), {"app": "test-green"})
    op.step({"ti": ti}, release, plan)
    assert calls == [plan]
