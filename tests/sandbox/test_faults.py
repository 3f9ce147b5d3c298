"""Injected API faults (the control endpoint's /faults, sandbox/faults.py), seen through real
clients: the official kubernetes client, kubernetes_asyncio for watches, requests for BCS."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import requests
from kubernetes import watch
from kubernetes.client.rest import ApiException
from test_bcs_client import STORAGE, bcs  # noqa: F401  (bcs is a fixture)


@pytest.fixture(autouse=True)
def no_faults_left(control):
    yield
    control.clear_faults()


@pytest.fixture
def kube(sandbox):
    """requests on the Kubernetes API, for what the official client hides (bodies, headers)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    session.headers["Authorization"] = f"Bearer {sandbox.token}"
    session.base = sandbox.kube_url
    return session


def services_path(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/services"


# -- status faults ---------------------------------------------------------------------------


def test_kube_status_fault_with_the_apiservers_own_bodies(core, kube, ns, control):
    control.fault("kube", "GET", services_path(ns) + "$", status=503, watch=False)
    with pytest.raises(ApiException) as info:
        core.list_namespaced_service(ns)
    assert info.value.status == 503
    assert json.loads(info.value.body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server is currently unable to handle the request",
        "reason": "ServiceUnavailable",
        "code": 503,
    }
    core.list_namespaced_service(ns)  # times defaults to 1: the next call is served

    # the max-in-flight / priority-and-fairness filters answer 429 with http.Error and Retry-After
    control.fault("kube", "GET", services_path(ns), status=429)
    reply = kube.get(kube.base + services_path(ns), timeout=10)
    assert (reply.status_code, reply.text, reply.headers["Retry-After"]) == (
        429,
        "Too many requests, please try again later.\n",
        "1",
    )
    assert reply.headers["Content-Type"].startswith("text/plain")
    # a Retry-After of the test's choosing
    control.fault("kube", "GET", services_path(ns), status=429, headers={"Retry-After": "2"})
    assert kube.get(kube.base + services_path(ns), timeout=10).headers["Retry-After"] == "2"
    # the timeout filter encodes the bare ErrStatus: no kind, no apiVersion
    control.fault("kube", "GET", services_path(ns), status=504)
    reply = kube.get(kube.base + services_path(ns), timeout=10)
    assert reply.status_code == 504 and "kind" not in reply.json()
    assert reply.json()["reason"] == "Timeout" and reply.json()["message"].startswith("Timeout: request did not")
    control.fault("kube", "GET", services_path(ns), status=500)
    assert kube.get(kube.base + services_path(ns), timeout=10).json()["reason"] == "InternalError"
    # a body of the test's choosing: JSON as given, a string as text
    control.fault("kube", "*", services_path(ns), status=502, body="<html>502 Bad Gateway</html>")
    reply = kube.get(kube.base + services_path(ns), timeout=10)
    assert (reply.status_code, reply.text) == (502, "<html>502 Bad Gateway</html>")


def test_bcs_status_faults_keep_the_envelope(bcs, control):
    path = f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/deployment"
    control.fault("bcs", "POST", "/deployment$", status=200)
    reply = bcs.request("POST", path, {"namespace": bcs.ns})
    assert reply.status_code == 200 and reply.headers["Content-Type"].startswith("text/plain")
    assert reply.json() == {
        "result": False,
        "code": 1405200,
        "data": {},
        "message": "(bcs-scheduler):sandbox: injected fault",
    }
    control.fault("bcs", "POST", "/deployment$", status=502)
    reply = bcs.request("POST", path, {"namespace": bcs.ns})
    assert reply.status_code == 502
    assert reply.json() == {"result": False, "code": 502, "message": "Bad Gateway", "data": None}
    # the old form (status and body), as the e2e tests use it, still works
    control.inject_fault(
        "bcs",
        "PUT",
        "/services$",
        200,
        {"result": False, "code": 1405202, "data": None, "message": "(bcs-scheduler):service not exist"},
    )
    reply = bcs.request("PUT", f"/bcsapi/v4/scheduler/mesos/namespaces/{bcs.ns}/services", {"kind": "service"})
    assert reply.json()["code"] == 1405202
    assert bcs.query("deployment") == []  # faults used up: served normally


def test_request_body_match(bcs, control):
    control.fault("bcs", "POST", "/deployment$", request_body='"name": *"web"', status=503)
    path = f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/deployment"
    assert bcs.request("POST", path, {"namespace": bcs.ns, "name": "api"}).status_code == 200
    assert bcs.request("POST", path, {"namespace": bcs.ns, "name": "web"}).status_code == 503


# -- delay, hang, reset -----------------------------------------------------------------------


def test_delay_then_the_normal_answer_or_the_given_status(core, ns, control):
    control.fault("kube", "GET", services_path(ns), delay=0.6)
    started = time.monotonic()
    core.list_namespaced_service(ns)
    assert time.monotonic() - started >= 0.6
    control.fault("kube", "GET", services_path(ns), delay=0.4, status=503)
    started = time.monotonic()
    with pytest.raises(ApiException) as info:
        core.list_namespaced_service(ns)
    assert info.value.status == 503 and time.monotonic() - started >= 0.4


def test_hang_holds_the_request_while_others_are_served(bcs, core, ns, control):
    path = f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/application"
    control.fault("bcs", "POST", "/application$", hang=True)
    outcome = {}

    def hanging_client():
        started = time.monotonic()
        try:
            bcs.session.post(bcs.url + path, data=json.dumps({"namespace": bcs.ns}), timeout=1.5)
            outcome["error"] = None
        except requests.Timeout as e:
            outcome["error"] = e
        outcome["waited"] = time.monotonic() - started

    client = threading.Thread(target=hanging_client)
    client.start()
    time.sleep(0.3)
    core.list_namespaced_service(ns)  # the sandbox goes on serving everyone else
    assert bcs.query("deployment") == []
    client.join(10)
    assert isinstance(outcome["error"], requests.ReadTimeout) and outcome["waited"] >= 1.5
    assert control.faults() == []  # its one hit was made
    assert bcs.query("application") == []


def test_reset_drops_the_connection_without_an_answer(bcs, control):
    path = f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/service"
    control.fault("bcs", "*", "/service$", reset=True)
    # over TLS the client reports the RST as a connection aborted or an EOF in violation of the
    # protocol (SSLError, a ConnectionError too), depending on where its TLS layer was
    with pytest.raises(requests.ConnectionError) as info:
        bcs.request("POST", path, {"namespace": bcs.ns})
    assert info.value.response is None  # no HTTP answer at all
    assert bcs.query("service") == []


def test_a_storm_of_resets_on_a_share_of_the_calls(bcs, control):
    """ "Resets on 30% of calls, 20 times": exactly 20 calls fail, spread among the others."""
    fault = control.fault("bcs", "POST", "/taskgroup$", reset=True, probability=0.3, times=20)
    assert (fault["times"], fault["probability"], fault["reset"]) == (20, 0.3, True)
    path = f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/taskgroup"
    outcomes = []
    for i in range(150):
        try:
            bcs.request("POST", path, {"namespace": bcs.ns})
            outcomes.append(True)
        except requests.ConnectionError:
            outcomes.append(False)
        if i == 9:
            left = control.faults()
            assert left and left[0]["times"] == 20 - outcomes.count(False) and left[0]["hits"] == outcomes.count(False)
    assert outcomes.count(False) == 20
    assert outcomes[:20] != [False] * 20  # spread among the calls, not the first twenty in a row
    assert control.faults() == []


# -- watches ------------------------------------------------------------------------------------


def _services(core, ns, n):
    for i in range(n):
        core.create_namespaced_service(ns, {"metadata": {"name": f"s{i}"}, "spec": {"ports": [{"port": 80 + i}]}})


def test_watch_cut_after_n_events(sandbox, core, ns, control):
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio import config as aconfig
    from kubernetes_asyncio import watch as awatch

    _services(core, ns, 3)
    control.fault("kube", "GET", services_path(ns), cut_after=2)
    # cut_after targets watches only: the list on the same path is not hit
    assert len(core.list_namespaced_service(ns).items) == 3
    assert control.faults()[0]["watch"] is True

    async def run():
        api = await aconfig.new_client_from_config(config_file=str(sandbox.kubeconfig))
        seen = []
        try:
            w = awatch.Watch()
            async for event in w.stream(aclient.CoreV1Api(api).list_namespaced_service, ns, timeout_seconds=5):
                seen.append(event["object"].metadata.name)
        except Exception as e:  # noqa: BLE001 - which exception a cut stream raises is the client's business
            return seen, e
        finally:
            await api.close()
        return seen, None

    seen, error = asyncio.run(run())
    assert seen == ["s0", "s1"]
    assert error is not None, "the stream ended cleanly: not a cut"
    # the next watch is not hit: all three
    w = watch.Watch()
    names = [e["object"].metadata.name for e in w.stream(core.list_namespaced_service, ns, timeout_seconds=1)]
    assert names == ["s0", "s1", "s2"]


def test_watch_gone_is_the_watch_caches_410(core, kube, ns, control):
    _services(core, ns, 1)
    rv = core.list_namespaced_service(ns).metadata.resource_version
    control.fault("kube", "GET", services_path(ns), gone=True, times=2)
    assert core.list_namespaced_service(ns).items  # lists pass
    reply = kube.get(
        kube.base + services_path(ns), params={"watch": "true", "resourceVersion": rv}, timeout=10, stream=True
    )
    assert reply.status_code == 200
    lines = [json.loads(line) for line in reply.iter_lines() if line]
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    status = lines[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {rv} (")
    # the official client turns it into an ApiException 410, so that informers relist
    with pytest.raises(ApiException) as info:
        for _ in watch.Watch().stream(core.list_namespaced_service, ns, resource_version=rv, timeout_seconds=2):
            pass
    assert info.value.status == 410


# -- the control endpoint's side -------------------------------------------------------------------


def test_faults_are_listed_and_removed(control):
    a = control.fault("kube", "GET", "/nothing-a", status=500, times=3)
    b = control.fault("bcs", "put", "/nothing-b", delay=1, status=503, body={"x": 1}, headers={"X-Why": "test"})
    listed = control.faults()
    assert [f["id"] for f in listed] == [a["id"], b["id"]]
    assert listed[0] == {**a, "times": 3, "hits": 0}
    assert (listed[1]["method"], listed[1]["delay"], listed[1]["body"], listed[1]["headers"]) == (
        "PUT",
        1.0,
        {"x": 1},
        {"X-Why": "test"},
    )
    control.remove_fault(a["id"])
    assert [f["id"] for f in control.faults()] == [b["id"]]
    reply = control.session.delete(f"{control.url}/faults", timeout=10)
    assert reply.json() == {"cleared": 1} and control.faults() == []


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"method": "GET", "path": "/x", "status": 500}, "api"),
        ({"api": "k8s", "status": 500}, "api"),
        ({"api": "kube", "status": 500, "colour": "red"}, "colour"),
        ({"api": "kube", "path": "(", "status": 500}, "path"),
        ({"api": "kube", "status": "500"}, "status"),
        ({"api": "kube", "status": 200}, "body"),
        ({"api": "kube", "status": 500, "times": 0}, "times"),
        ({"api": "kube", "status": 500, "probability": 1.5}, "probability"),
        ({"api": "kube"}, "status"),
        ({"api": "kube", "reset": True, "hang": True}, "reset"),
        ({"api": "kube", "delay": -1}, "delay"),
        ({"api": "bcs", "cut_after": 2}, "cut_after"),
        ({"api": "bcs", "watch": True, "status": 500}, "watch"),
        ({"api": "kube", "gone": True, "watch": False}, "watch"),
        ({"api": "kube", "hang": True, "body": {}}, "body"),
        ({"api": "kube", "status": 503, "headers": ["Retry-After"]}, "headers"),
    ],
)
def test_a_bad_fault_is_a_400_naming_the_field(control, spec, field):
    reply = control.session.post(f"{control.url}/faults", json=spec, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["field"] == field and reply.json()["error"].startswith(f"{field}: ")
    assert control.faults() == []
