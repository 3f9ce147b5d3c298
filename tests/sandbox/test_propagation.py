"""Selector changes reach the service proxies late (kube-proxy, bcs-loadbalance), while the
API objects (Endpoints, EndpointSlices, BCS endpoint records) change at once."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from kubernetes import client
from polling import wait_for
from test_bcs_client import bcs, ok  # noqa: F401  (bcs is a fixture)
from test_bcs_client import deployment as bcs_deployment
from test_bcs_loadbalancer import lb, running
from test_bcs_loadbalancer import service as bcs_service
from test_kube_controllers import deployment, rolled_out

from sandbox.__main__ import parse

DELAY = 1.5


@pytest.fixture
def delay(control):
    before = control.settings()["propagation_delay"]
    control.set_propagation_delay(DELAY)
    yield DELAY
    control.set_propagation_delay(before)


class ClientLoop:
    """A client opening a new connection every 20 ms and noting who answered, and when."""

    def __init__(self, url: str):
        self.url = url
        self.answers: list[tuple[float, str]] = []
        self.errors: list[tuple[float, Exception]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                answer = requests.get(self.url, timeout=5, headers={"Connection": "close"}).json()
                self.answers.append((time.monotonic(), answer["deployment"]))
            except (requests.RequestException, ValueError) as e:
                self.errors.append((time.monotonic(), e))
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def between(self, start: float, end: float) -> set[str]:
        return {who for t, who in self.answers if start <= t <= end}


def test_node_port_keeps_the_old_color_for_the_delay_endpoints_do_not(apps, core, api, ns, control, delay):
    for color in ("blue", "green"):
        apps.create_namespaced_deployment(ns, deployment(color, replicas=2))
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "selector": {"app": "blue"}, "ports": [{"port": 18080, "targetPort": "http"}]},
        },
    )
    wait_for(rolled_out(apps, ns, "blue"))
    wait_for(rolled_out(apps, ns, "green"))
    node_port = core.read_namespaced_service("web", ns).spec.ports[0].node_port
    green_ips = {p.status.pod_ip for p in core.list_namespaced_pod(ns, label_selector="app=green").items}

    with ClientLoop(f"http://127.0.0.1:{node_port}/") as loop:
        time.sleep(0.3)
        before = time.monotonic()
        core.patch_namespaced_service("web", ns, {"spec": {"selector": {"app": "green"}}})
        after = time.monotonic()
        # the API objects follow at once
        endpoints = core.read_namespaced_endpoints("web", ns)
        assert {a.ip for a in endpoints.subsets[0].addresses} == green_ips
        slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(ns).items
        assert {e.addresses[0] for e in slices[0].endpoints if e.conditions.ready} == green_ips
        time.sleep(delay + 1.0)
    assert not loop.errors, loop.errors[:3]
    # during the delay new connections still reach blue; after it, only green
    assert loop.between(after, before + delay - 0.15) == {"blue"}
    assert loop.between(after + delay + 0.15, time.monotonic()) == {"green"}
    assert loop.between(0, before) == {"blue"}


def test_two_quick_changes_reach_the_proxy_one_after_the_other(apps, core, ns, control, delay):
    for color in ("blue", "green"):
        apps.create_namespaced_deployment(ns, deployment(color, replicas=1))
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "selector": {"app": "blue"}, "ports": [{"port": 18080, "targetPort": "http"}]},
        },
    )
    wait_for(rolled_out(apps, ns, "blue"))
    wait_for(rolled_out(apps, ns, "green"))
    node_port = core.read_namespaced_service("web", ns).spec.ports[0].node_port
    with ClientLoop(f"http://127.0.0.1:{node_port}/") as loop:
        first = time.monotonic()
        core.patch_namespaced_service("web", ns, {"spec": {"selector": {"app": "green"}}})
        time.sleep(0.7)
        second = time.monotonic()
        core.patch_namespaced_service("web", ns, {"spec": {"selector": {"app": "blue"}}})
        time.sleep(delay + 1.0)
    assert not loop.errors
    assert loop.between(first + 0.1, first + delay - 0.15) == {"blue"}
    assert loop.between(first + delay + 0.15, second + delay - 0.15) == {"green"}  # the first change, applied
    assert loop.between(second + delay + 0.15, time.monotonic()) == {"blue"}


def test_the_bcs_load_balancer_lags_the_endpoint_records_do_not(bcs, control, delay):
    for color in ("blue", "green"):
        ok(bcs.create("deployment", bcs_deployment(f"web-{color}", bcs.ns, 1)))
    ok(bcs.create("service", bcs_service("web", bcs.ns, 161, {"app": "web-blue"})))
    wait_for(lambda: running(bcs, "web-blue", 1) and running(bcs, "web-green", 1), what="both running")
    url = lb(control, bcs, "web", 161)
    with ClientLoop(url) as loop:
        time.sleep(0.3)
        before = time.monotonic()
        ok(bcs.update("service", bcs_service("web", bcs.ns, 161, {"app": "web-green"})))
        after = time.monotonic()

        def green_endpoint():
            eps = bcs.inspect("endpoint", "web")["data"]["data"]["eps"] or []
            return {ep["targetRef"]["name"].rsplit("-", 1)[0] for ep in eps} == {"web-green"}

        wait_for(green_endpoint, timeout=1, what="the endpoint record on green")
        assert time.monotonic() - after < delay - 0.3  # well before the load balancer moved
        time.sleep(delay + 1.0)
    assert not loop.errors, loop.errors[:3]
    assert loop.between(after, before + delay - 0.15) == {"web-blue"}
    assert loop.between(after + delay + 0.15, time.monotonic()) == {"web-green"}


def test_settings_at_run_time_and_on_the_command_line(control):
    reply = control.session.get(f"{control.url}/settings", timeout=10)
    assert reply.json() == {"propagation_delay": 0.3}  # the default
    for bad, field in (
        ({"propagation_delay": -1}, "propagation_delay"),
        ({"propagation_delay": "1"}, "propagation_delay"),
        ({"ready_after": 1}, "ready_after"),
    ):
        reply = control.session.post(f"{control.url}/settings", json=bad, timeout=10)
        assert reply.status_code == 400 and reply.json()["field"] == field
    assert control.settings() == {"propagation_delay": 0.3}
    settings, _ = parse(["--propagation-delay", "2.5"])
    assert settings.propagation_delay == 2.5
    assert parse([])[0].propagation_delay == 0.3
    with pytest.raises(SystemExit):
        parse(["--propagation-delay", "-1"])
