"""The BCSGROUP load balancer: what gets traffic, and what does not."""

from __future__ import annotations

import pytest
import requests
from test_bcs_client import MESOS, bcs, deployment, ok, wait_for  # noqa: F401


# servicePorts 150-199 of the worker's load balancer block (tests/conftest.py LB_PORT_OFFSET)
def service(name: str, ns: str, port: int, selector: dict, port_name: str = "http", group: bool = True) -> dict:
    assert 150 <= port < 200, f"servicePort {port}: the sandbox tests' load balancer ports are 150-199"
    return {
        "apiVersion": "v4",
        "kind": "service",
        "metadata": {"name": name, "namespace": ns, "labels": {"BCSGROUP": "lb"} if group else {}},
        "spec": {"selector": selector, "ports": [{"name": port_name, "protocol": "TCP", "servicePort": port}]},
    }


def lb(control, bcs, name: str, port: int):
    key = f"bcs/{bcs.cluster}/{bcs.ns}/{name}/{port}"
    proxy = wait_for(lambda: next((p for p in control.proxies() if p["name"] == key), None), what=key)
    return f"http://{proxy['host']}:{proxy['port']}/"


def running(bcs, name, n):
    return (a := bcs.one("application", name=name)) and (a["status"], a["runningInstance"]) == ("Running", n)


def test_health_is_not_consulted_but_ports_are_matched_by_name(bcs, control):
    # a never-ready pod still gets traffic once its taskgroup runs: neither the scheduler's
    # endpoints nor the watcher's exportservice look at health check results
    ok(bcs.create("deployment", deployment("web", bcs.ns, 2, "registry.local/shop:v1-never-ready")))
    ok(bcs.create("service", service("web", bcs.ns, 151, {"app": "web"})))
    ok(bcs.create("service", service("misnamed", bcs.ns, 152, {"app": "web"}, port_name="http-port")))
    ok(bcs.create("service", service("internal", bcs.ns, 153, {"app": "web"}, group=False)))
    wait_for(lambda: running(bcs, "web", 2), what="running")
    answer = requests.get(lb(control, bcs, "web", 151), timeout=5, headers={"Connection": "close"}).json()
    assert answer["deployment"] == "web"
    # a service port whose name matches no container port has no backend: the connection is refused
    with pytest.raises(requests.ConnectionError):
        requests.get(lb(control, bcs, "misnamed", 152), timeout=5)
    # no BCSGROUP label: not exported
    assert all(p["name"] != f"bcs/{bcs.cluster}/{bcs.ns}/internal/153" for p in control.proxies())


def test_the_exportservice_matches_taskgroup_labels_template_included(bcs, control):
    obj = deployment("web", bcs.ns, 1, labels={"app": "web"})
    obj["spec"]["template"]["metadata"] = {"labels": {"release": "r1"}}
    ok(bcs.create("deployment", obj))
    ok(bcs.create("service", service("by-template", bcs.ns, 154, {"release": "r1"})))
    wait_for(lambda: running(bcs, "web", 1), what="running")
    answer = requests.get(lb(control, bcs, "by-template", 154), timeout=5, headers={"Connection": "close"}).json()
    assert answer["deployment"] == "web"
    # while the scheduler's endpoints (bcs-dns) only look at the application's labels
    assert bcs.inspect("endpoint", "by-template")["data"]["data"]["eps"] is None


def test_the_url_namespace_is_not_read(bcs):
    """The driver posts to the scheduler with metadata.namespace; the {ns} in the URL is ignored."""
    reply = bcs.request("POST", f"{MESOS}/namespaces/somewhere-else/deployments?", deployment("web", bcs.ns, 1))
    ok(reply)
    assert wait_for(lambda: bcs.one("deployment", name="web"), what="created in the body's namespace")
    assert bcs.query("deployment", namespace="somewhere-else") == []
