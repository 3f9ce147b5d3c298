"""Releases against an API that fails the way real ones do, and traffic that is still on its way
after a switch.  Faults come from the sandbox's control endpoint; each test checks the cluster
afterwards.  The numbers in docstrings are the defects of issue 9 each test was written for
(each failed before its fix)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from .harness import task_states, xcom

pytestmark = [pytest.mark.e2e]

V1, V2 = "registry.local/test:v1", "registry.local/test:v2"

# The switch's write of the Service, per platform: (method, path regex for the app's namespace)
SERVICE_WRITE = {
    "kubernetes": ("PUT", "/api/v1/namespaces/{ns}/services/test$"),
    "bcs-mesos": ("PUT", "/bcsapi/v4/scheduler/mesos/namespaces/{ns}/services$"),
}
API = {"kubernetes": "kube", "bcs-mesos": "bcs"}


@pytest.mark.parametrize("status", [503, 429, 504])
def test_one_transient_answer_to_the_switch_is_retried_not_rolled_back(release_app, control, status):
    """7: a single 503 (or 429, or 504) answered to one Service write no longer fails the release."""
    app = release_app()
    assert app.release(V1).state == "success"
    method, path = SERVICE_WRITE[app.platform]
    control.fault(
        API[app.platform],
        method,
        path.format(ns=app.ns),
        status=status,
        times=1,
        **({"headers": {"Retry-After": "1"}} if status == 429 else {}),
    )
    try:
        run = app.release(V2)
    finally:
        control.clear_faults()
    assert run.state == "success", task_states(run)
    assert app.selector() == app.app.selector_for("green") and app.serves(V2)


def test_a_storm_of_resets_and_errors_on_every_call_is_survived(release_app, control):
    """7: transient faults on a third of all calls, spread over the whole release."""
    app = release_app()
    assert app.release(V1).state == "success"
    api = API[app.platform]
    # the client loop finds the Service's port before the storm: the test's own reads are not retried
    with app.traffic() as traffic:
        control.fault(api, "*", f"/namespaces/{app.ns}/", reset=True, probability=0.15, times=12)
        control.fault(api, "*", f"/namespaces/{app.ns}/", status=503, probability=0.15, times=12)
        try:
            run = app.release(V2)
        finally:
            control.clear_faults()
    assert run.state == "success", task_states(run)
    assert app.selector() == app.app.selector_for("green") and app.deployments() == {"test-green": V2}
    assert not traffic.failures, traffic.summary()


def test_a_rollback_that_meets_a_blip_is_retried_and_finishes(release_app, control):
    """7: the rollback retries its calls too."""
    app = release_app(readiness_timeout="10s")  # v1's readiness takes seconds on a busy machine
    assert app.release(V1).state == "success"
    api = API[app.platform]
    delete = {
        "kube": f"/apis/apps/v1/namespaces/{app.ns}/deployments/test-green$",
        "bcs": f"/scheduler/mesos/namespaces/{app.ns}/deployments/test-green$",
    }[api]
    control.fault(api, "DELETE", delete, status=502, times=2)
    try:
        run = app.release("registry.local/test:v2-never-ready")
    finally:
        control.clear_faults()
    states = task_states(run)
    assert states["wait_until_ready"] == "failed" and states["rollback"] == "success", states
    assert app.selector() == app.app.selector_for("blue") and app.deployments() == {"test-blue": V1}


def test_kubernetes_calls_time_out_instead_of_hanging(k8s_app, sandbox, control, monkeypatch):
    """6: an API server that accepts a request and never answers ends the call at the connection's
    request timeout (then the retry budget), not never."""
    from bluegreen.platforms.kubernetes import KubernetesPlatform
    from bluegreen.release.model import TransientError

    conn = sandbox.connections()["sandbox_k8s"]
    conn["extra"]["request_timeout"] = 1
    monkeypatch.setenv("AIRFLOW_CONN_SLOW_K8S", json.dumps(conn))
    app = k8s_app(connection_id="slow_k8s", api_retry_budget="2s")
    control.fault("kube", "GET", f"/namespaces/{app.ns}/deployments/test-blue$", hang=True, times=50)
    outcome = []

    def observe():
        try:
            outcome.append(KubernetesPlatform(app.app).observe("blue"))
        except Exception as e:  # what we expect
            outcome.append(e)

    started = time.monotonic()
    thread = threading.Thread(target=observe, daemon=True)
    thread.start()
    thread.join(30)
    control.clear_faults()
    assert not thread.is_alive(), "the call hung"
    assert isinstance(outcome[0], TransientError), outcome
    assert time.monotonic() - started < 20


def test_readiness_keeps_its_deadline_while_the_watch_hangs(k8s_app, control):
    """6: a list that hangs inside the trigger does not stop the readiness deadline."""
    app = k8s_app(readiness_timeout="3s")
    assert app.release(V1).state == "success"
    # the trigger's list of deployments (the steps read the deployment by name, not by a list)
    control.fault("kube", "GET", f"/apis/apps/v1/namespaces/{app.ns}/deployments$", watch=False, hang=True, times=5)
    started = time.monotonic()
    try:
        run = app.release(V2)
    finally:
        control.clear_faults()
    states = task_states(run)
    assert states["wait_until_ready"] == "failed", states
    assert "did not answer" in xcom(run, "wait_until_ready", "failure")
    assert time.monotonic() - started < 25
    assert app.selector() == app.app.selector_for("blue") and app.serves(V1)


def test_two_bcs_writers_of_one_version_cannot_both_write(mesos_app, control):
    """5: BCS has no conditional write.  Two writers read the same service; the first one's update is
    slow to arrive (a 2 s delay on its PUT), so the second one's comparison with storage still passes.
    Before, both updates went through and the slow one overwrote the other; now the second writer
    cannot claim the version the first one claimed, and gets Conflict."""
    from bluegreen.platforms.bcs_mesos import BcsMesosPlatform
    from bluegreen.release.model import Conflict

    app = mesos_app()
    assert app.release(V1).state == "success"
    one, two = BcsMesosPlatform(app.app), BcsMesosPlatform(app.app)
    seen = one.read_service()
    assert two.read_service().version == seen.version
    control.fault("bcs", "PUT", f"/scheduler/mesos/namespaces/{app.ns}/services$", delay=2, times=1)
    outcome: dict[str, object] = {}

    def write(name, platform):
        try:
            platform.write_service(seen, seen.selector, {"bluegreen.io/lock": name})
            outcome[name] = "written"
        except Conflict as e:
            outcome[name] = e

    first = threading.Thread(target=write, args=("one", one))
    first.start()
    time.sleep(0.5)  # one's update is on its way (delayed); two reads storage before it lands
    write("two", two)
    first.join(30)
    control.clear_faults()
    assert sorted(k for k, v in outcome.items() if v == "written") == ["one"], outcome
    assert isinstance(outcome["two"], Conflict), outcome
    time.sleep(1)
    assert app.annotations()["bluegreen.io/lock"] == "one"
    # and the next write, from what is stored now, goes through
    two.write_service(two.read_service(), seen.selector, {"bluegreen.io/lock": None})
    assert "bluegreen.io/lock" not in app.annotations()


def test_a_bcs_write_that_failed_leaves_no_claim_behind(mesos_app, control):
    """bcs-claim (found by the chaos suite): a write of the Service whose update kept failing (503s past
    the retry budget) left its claim on the next version, and every later write of that version was
    refused as "kept changing" until the claim went stale (two minutes by default).  Now a claim names
    its run, whose retry writes under it (the failed write may have landed: other writers still wait),
    and a write the API refused takes its claim back at once."""
    from bluegreen.platforms.bcs_mesos import BcsMesosPlatform, ClaimedWrites
    from bluegreen.release.model import ReleaseError, TransientError

    def writer(run_id):
        platform = BcsMesosPlatform(app.app)
        platform.writer = run_id
        return platform

    app = mesos_app(api_retry_budget="2s")
    assert app.release(V1).state == "success"
    put = f"/scheduler/mesos/namespaces/{app.ns}/services$"
    seen = writer("run-one").read_service()
    control.fault("bcs", "PUT", put, status=503, times=1000)
    with pytest.raises(TransientError):
        writer("run-one").write_service(seen, seen.selector, {"bluegreen.io/note": "one"})
    control.clear_faults()
    # the same run's retry (a new process) writes at once, under the claim its try left
    retry = writer("run-one")
    retry.write_service(retry.read_service(), seen.selector, {"bluegreen.io/note": "one, again"})
    assert app.annotations()["bluegreen.io/note"] == "one, again"
    # a write the API refuses takes its claim back: another run writes that version at once
    now = writer("run-two").read_service()
    control.fault("bcs", "PUT", put, status=400, times=1)
    with pytest.raises(ReleaseError):
        writer("run-two").write_service(now, now.selector, {"bluegreen.io/note": "two"})
    control.clear_faults()
    three = writer("run-three")
    three.write_service(three.read_service(), seen.selector, {"bluegreen.io/note": "three"})
    assert app.annotations()["bluegreen.io/note"] == "three"
    # a try that died between its claim and its write (SIGKILL): the same run's retry writes under it
    now = three.read_service()
    ClaimedWrites(three, "test").claim(int(now.annotations["bluegreen.io/version"]) + 1)
    three.write_service(now, now.selector, {"bluegreen.io/note": "three, again"})
    assert app.annotations()["bluegreen.io/note"] == "three, again"


@pytest.mark.parametrize("drain, failures_expected", [("5s", False), ("0s", True)], ids=["drained", "no-drain"])
def test_a_rollback_waits_for_traffic_still_on_its_way(release_app, control, drain, failures_expected):
    """The proxies apply the switch back 3 s late; the new color must outlive that (the drain delay)."""
    app = release_app(soak="20s", drain_delay=drain, soak_tolerance=0)
    assert app.release(V1).state == "success"
    green = app.app.selector_for("green")
    control.set_propagation_delay(3)
    stop = threading.Event()

    def fail_the_soak():
        # once green is live, one of its members dies: the soak fails and the release rolls back
        while not stop.is_set():
            if app.selector() == green:
                time.sleep(1)
                name = app.member_name("green")
                control.kill_pod(name, down=60)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=fail_the_soak, daemon=True)
    killer.start()
    try:
        with app.traffic() as traffic:
            run = app.release(V2)
            time.sleep(4)
    finally:
        stop.set()
        control.set_propagation_delay(0.3)
    states = task_states(run)
    assert states["soak"] == "failed" and states["rollback"] == "success", states
    assert app.selector() == app.app.selector_for("blue") and app.deployments() == {"test-blue": V1}
    if failures_expected:
        # the proxies reach green 3 s after the switch: it is gone by then
        assert traffic.failures, f"without the drain delay requests fail: {traffic.summary()}"
    else:
        assert not traffic.failures, traffic.summary()
        assert V2 in traffic.versions(), f"green served until the switch back reached the proxies: {traffic.summary()}"
