"""What only the BCS Mesos release meets: the gateway's headers, envelope errors on each call,
slow deletes, health checks judged over time."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from .harness import task_states, xcom

pytestmark = [pytest.mark.e2e]

V1, V2 = "registry.local/test:v1", "registry.local/test:v2"


def with_connection(monkeypatch, sandbox, conn_id, **changes):
    """A copy of the sandbox's BCS connection with some fields changed."""
    conn = sandbox.connections()["sandbox_bcs"]
    conn = {**conn, **{k: v for k, v in changes.items() if k != "extra"}}
    if "extra" in changes:
        conn["extra"] = {k: v for k, v in {**conn["extra"], **changes["extra"]}.items() if v is not None}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.mark.parametrize(
    "conn, expected",
    [
        ({"password": "not-the-token"}, "HTTP 401, code 401): Resource is Unauthorized"),
        ({"extra": {"cluster_id": "BCS-MESOS-99999"}}, "HTTP 400, code 1405234"),
        ({"extra": {"cluster_id": None}}, "extra cluster_id is not set"),
    ],
    ids=["wrong-token", "wrong-cluster-id", "missing-cluster-id"],
)
def test_gateway_refusals_fail_the_release_before_anything_changes(mesos_app, sandbox, monkeypatch, conn, expected):
    app = mesos_app()
    assert app.release(V1).state == "success"
    before = (app.deployments(), app.service_version())
    with_connection(monkeypatch, sandbox, "bad_bcs", **conn)
    # the wrong cluster id only matters to the scheduler: make the first call one that goes there
    app.path.write_text(app.path.read_text().replace("connection_id: sandbox_bcs", "connection_id: bad_bcs"))
    app.reload()
    run = app.release(V2)
    assert run.state == "failed"
    failed = [t for t, s in task_states(run).items() if s == "failed"]
    reasons = " ".join(str(xcom(run, t, "failure")) for t in failed) + " " + str(xcom(run, "rollback") or "")
    assert expected in reasons, (task_states(run), reasons)
    assert (app.deployments(), app.service_version()) == before


# (the task that makes the call, the call, what its body says) for every kind of call a release makes
CALLS = [
    ("plan", "GET", r"/storage/mesos/dynamic/namespace_resources/.*/service/test$", None),
    ("deploy_new_color", "POST", r"/scheduler/mesos/namespaces/[^/]+/deployments$", None),
    ("wait_until_ready", "POST", r"/storage/query/mesos/dynamic/clusters/[^/]+/taskgroup$", "test-green"),
    ("switch_traffic", "PUT", r"/scheduler/mesos/namespaces/[^/]+/services$", r'"appname": ?"test-green"'),
    ("retire_old_color", "DELETE", r"/scheduler/mesos/namespaces/[^/]+/deployments/test-blue$", None),
]


@pytest.mark.parametrize("task_id, method, path, request_body", CALLS, ids=[c[0] for c in CALLS])
def test_an_envelope_error_fails_the_task_with_the_bcs_code_and_message(
    mesos_app, control, task_id, method, path, request_body
):
    app = mesos_app()
    assert app.release(V1).state == "success"
    message = f"(bcs-scheduler):injected failure for {task_id}"
    # HTTP 200 with a non-zero code: BCS's way of failing, and a permanent one: the task fails at its first
    # answer.  Only that answer: more would hit the rollback's reads of the same objects, which retries
    # with backoff until they are used up (20 of them kept this test busy for almost six minutes).
    control.inject_fault(
        "bcs",
        method,
        path.replace("namespaces/[^/]+", f"namespaces/{app.ns}"),
        200,
        {"result": False, "code": 1405200, "message": message, "data": None},
        times=1,
        request_body=request_body,
    )
    try:
        run = app.release(V2)
    finally:
        control.clear_faults()
    states = task_states(run)
    assert run.state == "failed" and states[task_id] == "failed", states
    failure = xcom(run, task_id, "failure")
    assert "code 1405200" in failure and message in failure, failure
    # nothing lost: one fully ready color serves
    if task_id == "retire_old_color":
        assert app.selector() == {"appname": "test-green"} and app.serves(V2)
        assert states["rollback"] == "skipped", "the release itself succeeded; only removing blue failed"
    else:
        assert app.selector() == {"appname": "test-blue"} and app.serves(V1)
        assert app.deployments() == {"test-blue": V1}


def test_a_delete_that_stays_deleting_for_a_while_is_waited_out(mesos_app):
    app = mesos_app()
    assert app.release("registry.local/test:v1-slow-stop-3s").state == "success"
    seen, stop = [], threading.Event()

    def watch_blue():
        while not stop.is_set():
            for d in app._storage("deployment", name="test-blue"):
                if not seen or seen[-1] != d["status"]:
                    seen.append(d["status"])
            time.sleep(0.2)

    thread = threading.Thread(target=watch_blue, daemon=True)
    thread.start()
    try:
        run = app.release(V2)
    finally:
        stop.set()
        thread.join()
    assert run.state == "success", task_states(run)
    assert "Deleting" in seen, seen
    assert app.deployments() == {"test-green": V2} and not app.members("blue")


def test_a_health_check_failing_during_readiness_fails_it_at_once(mesos_app):
    app = mesos_app(readiness_timeout="120s")
    assert app.release(V1).state == "success"
    started = time.monotonic()
    run = app.release("registry.local/test:v2-fail-after-0.3s")
    elapsed = time.monotonic() - started
    assert run.state == "failed" and task_states(run)["wait_until_ready"] == "failed"
    failure = xcom(run, "wait_until_ready", "failure")
    assert "health check" in failure and "Failed" in failure, failure
    assert elapsed < 60, f"took {elapsed:.0f}s: the failed health check should end readiness at once"
    assert app.selector() == {"appname": "test-blue"} and app.deployments() == {"test-blue": V1}


def test_the_switch_changes_only_the_selector_and_records_the_release(mesos_app):
    app = mesos_app()
    assert app.release(V1).state == "success"
    before = app.service()
    assert app.release(V2).state == "success"
    after = app.service()
    assert after["spec"]["selector"] == {"appname": "test-green"}
    assert after["spec"]["ports"] == before["spec"]["ports"] and after["metadata"]["labels"] == {"BCSGROUP": "test-lb"}
    annotations = after["metadata"]["annotations"]
    assert json.loads(annotations["bluegreen.io/previous-selector"]) == {"appname": "test-blue"}
    assert annotations["bluegreen.io/run-id"].startswith("manual__")
    assert os.environ.get("AIRFLOW_CONN_SANDBOX_BCS"), "the release used the sandbox's connection"


def test_scale_to_zero_is_refused_for_bcs_with_the_reason(mesos_app):
    """bcs-scheduler refuses to scale a deployment below one instance (the sandbox answers as it
    does), so keeping the old color at zero is a config error on BCS, found before any release."""
    from bluegreen.release.model import ConfigError

    with pytest.raises(ConfigError, match="old_color='scale-to-zero': BCS Mesos cannot keep a deployment at zero"):
        mesos_app(old_color="scale-to-zero")
