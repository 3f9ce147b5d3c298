"""The audit log (GET /audit): selector changes with what the new selector matched at that
moment, and workload deletes / scale-downs with the Services selecting them, on both APIs."""

from __future__ import annotations

import time

import kubernetes
import pytest
from kubernetes import client
from polling import wait_for
from test_bcs_client import bcs, ok  # noqa: F401  (bcs is a fixture)
from test_bcs_client import deployment as bcs_deployment
from test_bcs_lifecycle import HTTP_CHECK, checked
from test_bcs_loadbalancer import running
from test_bcs_loadbalancer import service as bcs_service
from test_kube_controllers import deployment, rolled_out

AGENT = "chaos-suite/1.0 (audit test)"


@pytest.fixture
def slow_proxies(control):
    """A propagation delay long enough that the proxies still route by the old selector
    while the test looks."""
    before = control.settings()["propagation_delay"]
    control.set_propagation_delay(30)
    yield
    control.set_propagation_delay(before)


@pytest.fixture
def since(control):
    events = control.audit()
    return events[-1]["seq"] if events else 0


def mine(control, since, ns):
    return [e for e in control.audit(since) if e["namespace"] == ns]


def test_kubernetes_selector_changes_and_workload_deletes(sandbox, ns, control, since, slow_proxies):
    api = kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))
    api.user_agent = AGENT
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("blue", replicas=2))
    apps.create_namespaced_deployment(ns, deployment("green", replicas=2, image="shop/web:v2-never-ready"))
    wait_for(rolled_out(apps, ns, "blue"))
    started = time.time()

    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "blue"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    core.patch_namespaced_service("web", ns, {"metadata": {"labels": {"tier": "front"}}})  # selector unchanged
    wait_for(lambda: len(core.list_namespaced_pod(ns, label_selector="app=green").items) == 2)
    core.patch_namespaced_service("web", ns, {"spec": {"selector": {"app": "green"}}})
    apps.patch_namespaced_deployment_scale("blue", ns, {"spec": {"replicas": 1}})
    body = apps.read_namespaced_deployment("blue", ns)
    body.spec.replicas = 0
    apps.replace_namespaced_deployment("blue", ns, body)
    apps.delete_namespaced_deployment("blue", ns)
    apps.delete_namespaced_deployment("green", ns, propagation_policy="Foreground")
    core.delete_namespaced_service("web", ns)
    wait_for(lambda: not apps.list_namespaced_deployment(ns).items, what="green gone")

    events = mine(control, since, ns)
    assert [(e["kind"], e.get("verb")) for e in events] == [
        ("service_selector", "create"),
        ("service_selector", "update"),
        ("workload_scale_down", None),
        ("workload_scale_down", None),
        ("workload_delete", None),
        ("workload_delete", None),
        ("service_selector", "delete"),
    ]
    assert all(e["actor"] == AGENT and e["api"] == "kube" for e in events)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert started <= events[0]["time"] <= events[-1]["time"] <= time.time()

    create, switch = events[0], events[1]
    assert (create["service"], create["old_selector"], create["new_selector"]) == ("web", None, {"app": "blue"})
    assert create["matched"] == {
        "pods": 2,
        "ready": 2,
        "workloads": [{"kind": "Deployment", "name": "blue", "replicas": 2, "rolled_out": True, "pods": 2, "ready": 2}],
    }
    # switched to a color that is not ready: what an invariant check must catch
    assert (switch["old_selector"], switch["new_selector"]) == ({"app": "blue"}, {"app": "green"})
    assert switch["matched"] == {
        "pods": 2,
        "ready": 0,
        "workloads": [
            {"kind": "Deployment", "name": "green", "replicas": 2, "rolled_out": False, "pods": 2, "ready": 0}
        ],
    }

    scale, replace, delete_blue, delete_green = events[2:6]
    assert (scale["name"], scale["replicas"], scale["workload_kind"]) == ("blue", {"from": 2, "to": 1}, "Deployment")
    assert replace["replicas"] == {"from": 1, "to": 0}
    # the Service no longer selects blue, but kube-proxy still routes to it (the delay)
    assert scale["selected_by"] == [
        {
            "service": "web",
            "selector": {"app": "green"},
            "routed_selector": {"app": "blue"},
            "selects": False,
            "routes": True,
            "selector_changed_at": switch["time"],
        }
    ]
    assert delete_blue["name"] == "blue" and delete_blue["selected_by"][0]["routes"] is True
    assert delete_green["name"] == "green" and delete_green["selected_by"][0]["selects"] is True
    assert events[6]["new_selector"] is None and events[6]["matched"]["pods"] == 0


def test_bcs_selector_changes_and_workload_deletes(bcs, control, since, slow_proxies):
    bcs.session.headers["User-Agent"] = AGENT
    ok(bcs.create("deployment", bcs_deployment("web-blue", bcs.ns, 2)))
    ok(
        bcs.create(
            "deployment",
            bcs_deployment(
                "web-green",
                bcs.ns,
                1,
                "registry.local/shop:never-ready",
                container=checked(HTTP_CHECK, gracePeriodSeconds=60),
            ),
        )
    )
    wait_for(lambda: running(bcs, "web-blue", 2) and running(bcs, "web-green", 1), what="both running")
    ok(bcs.create("service", bcs_service("web", bcs.ns, 171, {"app": "web-blue"})))
    ok(bcs.update("service", bcs_service("web", bcs.ns, 171, {"app": "web-blue"})))  # no change: no event
    ok(bcs.update("service", bcs_service("web", bcs.ns, 171, {"app": "web-green"})))
    ok(bcs.request("PUT", f"/bcsapi/v4/scheduler/mesos/namespaces/{bcs.ns}/deployments/web-blue/scale/1"))
    ok(bcs.delete("deployment", "web-blue"))
    ok(bcs.delete("service", "web"))

    events = mine(control, since, bcs.ns)
    assert [(e["kind"], e.get("verb")) for e in events] == [
        ("service_selector", "create"),
        ("service_selector", "update"),
        ("workload_scale_down", None),
        ("workload_delete", None),
        ("service_selector", "delete"),
    ]
    assert all(e["actor"] == AGENT and e["api"] == "bcs" for e in events)
    create, switch, scale, delete, gone = events
    assert create["matched"] == {
        "pods": 2,
        "ready": 2,
        "workloads": [
            {"kind": "deployment", "name": "web-blue", "replicas": 2, "rolled_out": True, "pods": 2, "ready": 2}
        ],
    }
    # Running but its HTTP check has not run yet (grace period): not healthy, not rolled out
    assert switch["matched"] == {
        "pods": 1,
        "ready": 0,
        "workloads": [
            {"kind": "deployment", "name": "web-green", "replicas": 1, "rolled_out": False, "pods": 1, "ready": 0}
        ],
    }
    assert (scale["name"], scale["replicas"], scale["workload_kind"]) == (
        "web-blue",
        {"from": 2, "to": 1},
        "deployment",
    )
    assert scale["selected_by"] == [
        {
            "service": "web",
            "selector": {"app": "web-green"},
            "routed_selector": {"app": "web-blue"},
            "selects": False,
            "routes": True,
            "selector_changed_at": switch["time"],
        }
    ]
    assert delete["replicas"] == 1 and delete["selected_by"][0]["routes"] is True
    assert gone["old_selector"] == {"app": "web-green"} and gone["new_selector"] is None


def test_filters_and_reset(control, core, ns):
    core.create_namespaced_service(
        ns, {"metadata": {"name": "a"}, "spec": {"selector": {"x": "1"}, "ports": [{"port": 80}]}}
    )
    events = control.audit(kind="service_selector")
    assert events and all(e["kind"] == "service_selector" for e in events)
    last = events[-1]
    assert (last["namespace"], last["service"], last["matched"]) == (ns, "a", {"pods": 0, "ready": 0, "workloads": []})
    assert control.audit(since=last["seq"]) == []
    control.reset_audit()
    assert control.audit() == []
    core.delete_namespaced_service("a", ns)
    (event,) = control.audit()
    assert event["seq"] > last["seq"] and event["verb"] == "delete"
    reply = control.session.get(f"{control.url}/audit", params={"since": "x"}, timeout=10)
    assert reply.status_code == 400 and reply.json()["field"] == "since"
