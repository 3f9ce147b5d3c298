"""Pod faults from the control endpoint (kill, evict, unready), seen as the real APIs report
them: pod status through the official kubernetes client, taskgroups through BCS storage."""

from __future__ import annotations

import time

import pytest
import requests
from kubernetes.client.rest import ApiException
from polling import wait_for
from test_bcs_client import bcs, ok  # noqa: F401  (bcs is a fixture)
from test_bcs_client import deployment as bcs_deployment
from test_bcs_lifecycle import HTTP_CHECK, checked
from test_kube_controllers import deployment, live_pods, ready, rolled_out


def one_pod(core, ns, selector="app=web"):
    pods = live_pods(core, ns, selector)
    assert len(pods) == 1, pods
    return pods[0]


def refused(ip: str) -> bool:
    try:
        requests.get(f"http://{ip}:8080/", timeout=2)
        return False
    except requests.ConnectionError:
        return True


# -- Kubernetes ------------------------------------------------------------------------------


def test_kill_terminates_the_container_then_the_kubelet_restarts_it(apps, core, ns, control):
    apps.create_namespaced_deployment(ns, deployment(replicas=1, image="shop/web:v1-ready-after-1.5s"))
    wait_for(rolled_out(apps, ns, "web"), timeout=5)
    pod = one_pod(core, ns)
    name, ip = pod.metadata.name, pod.status.pod_ip
    first_id = pod.status.container_statuses[0].container_id
    killed = control.kill_pod(name, down=1.0)
    assert (killed["down"], killed["ready"], killed["exits"]) == (True, False, 1)
    assert refused(ip)  # nothing listens while the container is dead
    cs = core.read_namespaced_pod(name, ns).status.container_statuses[0]
    assert cs.state.terminated.exit_code == 137 and cs.state.terminated.reason == "Error"
    assert (cs.ready, cs.restart_count) == (False, 0)
    assert not ready(core.read_namespaced_pod(name, ns))
    # a dead container cannot be killed again
    assert control.session.post(f"{control.url}/pods/{name}/kill", json={}, timeout=10).status_code == 409

    restarted = wait_for(
        lambda: (p := core.read_namespaced_pod(name, ns)).status.container_statuses[0].restart_count == 1 and p,
        timeout=5,
        what="restarted",
    )
    cs = restarted.status.container_statuses[0]
    assert cs.state.running is not None and cs.last_state.terminated.exit_code == 137
    assert cs.last_state.terminated.container_id == first_id != cs.container_id
    # listening again, but answering 503 until it is ready (after its ready-after, 1.5 s)
    assert not ready(restarted)
    assert requests.get(f"http://{ip}:8080/", timeout=5).status_code == 503
    # the same pod (no replacement), ready again
    wait_for(lambda: ready(core.read_namespaced_pod(name, ns)), timeout=5, what="ready again")
    assert requests.get(f"http://{ip}:8080/", timeout=5).json()["pod"] == name
    assert [p.metadata.name for p in core.list_namespaced_pod(ns).items] == [name]
    # an unknown pod is a 404
    reply = control.session.post(f"{control.url}/pods/nothing-here/kill", json={}, timeout=10)
    assert reply.status_code == 404


def test_evicted_pod_stays_failed_and_its_replica_set_replaces_it(apps, core, ns, control):
    apps.create_namespaced_deployment(ns, deployment(replicas=2, image="shop/web:v1-slow-stop-5s"))
    wait_for(rolled_out(apps, ns, "web"))
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    victim = live_pods(core, ns, "app=web")[0].metadata.name
    control.evict_pod(victim)

    def evicted():
        p = core.read_namespaced_pod(victim, ns)
        return p.status.phase == "Failed" and p

    pod = wait_for(evicted, timeout=3, what="Failed")
    assert pod.status.reason == "Evicted"
    assert pod.status.message.startswith("The node was low on resource: memory. ")
    assert pod.metadata.deletion_timestamp is None  # evicted, not deleted
    cond = {c.type: c for c in pod.status.conditions}
    assert (cond["DisruptionTarget"].status, cond["DisruptionTarget"].reason) == ("True", "TerminationByKubelet")
    assert (cond["Ready"].status, cond["Ready"].reason) == ("False", "PodFailed")
    assert pod.status.container_statuses[0].state.terminated.exit_code == 137
    # stopped at once, whatever the image's slow stop; the object stays (until deleted)
    wait_for(lambda: control.pod(victim) is None, timeout=2, what="the container gone")
    assert core.read_namespaced_pod(victim, ns).status.phase == "Failed"
    # a replacement; the evicted pod is no endpoint
    d = wait_for(rolled_out(apps, ns, "web"), timeout=5)
    running = [p for p in core.list_namespaced_pod(ns).items if p.status.phase == "Running"]
    assert len(running) == 2 and victim not in {p.metadata.name for p in running}
    assert d.status.available_replicas == 2
    ep = wait_for(
        lambda: (
            (e := core.read_namespaced_endpoints("web", ns)).subsets and len(e.subsets[0].addresses or []) == 2 and e
        ),
        what="two endpoints",
    )
    listed = ep.subsets[0].addresses + (ep.subsets[0].not_ready_addresses or [])
    assert victim not in {a.target_ref.name for a in listed}
    # kubectl delete pod of an evicted pod: gone at once
    core.delete_namespaced_pod(victim, ns)
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod(victim, ns)
    assert info.value.status == 404


def test_unready_for_a_while_then_ready_again(apps, core, ns, control):
    apps.create_namespaced_deployment(ns, deployment(replicas=1))
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    wait_for(rolled_out(apps, ns, "web"))
    pod = one_pod(core, ns)
    name, ip = pod.metadata.name, pod.status.pod_ip
    started = time.monotonic()
    control.unready_pod(name, 1.5)
    wait_for(lambda: not ready(core.read_namespaced_pod(name, ns)), timeout=2, what="not ready")
    assert requests.get(f"http://{ip}:8080/", timeout=5).status_code == 503
    ep = wait_for(
        lambda: (e := core.read_namespaced_endpoints("web", ns)).subsets and e.subsets[0].not_ready_addresses and e,
        timeout=2,
        what="a not-ready endpoint",
    )
    assert ep.subsets[0].addresses is None
    assert apps.read_namespaced_deployment("web", ns).status.ready_replicas is None
    wait_for(lambda: ready(core.read_namespaced_pod(name, ns)), timeout=4, what="ready again")
    assert time.monotonic() - started >= 1.4
    assert requests.get(f"http://{ip}:8080/", timeout=5).status_code == 200
    pod = core.read_namespaced_pod(name, ns)
    assert pod.status.container_statuses[0].restart_count == 0  # nothing restarted
    # errors name the field
    reply = control.session.post(f"{control.url}/pods/{name}/unready", json={}, timeout=10)
    assert reply.status_code == 400 and reply.json()["field"] == "seconds"


# -- BCS ---------------------------------------------------------------------------------------


def _taskgroup(bcs, app):
    return wait_for(
        lambda: (tgs := bcs.taskgroups(app)) and tgs[0]["status"] == "Running" and tgs[0], what=f"{app} running"
    )


def test_bcs_kill_fails_the_taskgroup_and_the_scheduler_reschedules_it(bcs, control):
    ok(bcs.create("deployment", bcs_deployment("web", bcs.ns, 1)))
    first = _taskgroup(bcs, "web")["metadata"]["name"]
    control.kill_pod(first)
    failed = wait_for(
        lambda: next((t for t in bcs.taskgroups("web") if t["status"] == "Failed"), None), what="the taskgroup failed"
    )
    assert failed["metadata"]["name"] == first
    assert failed["message"] == "container exited, exit code 137"
    new = wait_for(
        lambda: next(
            (t for t in bcs.taskgroups("web") if t["metadata"]["name"] != first and t["status"] == "Running"), None
        ),
        timeout=6,
        what="the replacement running",
    )
    assert new["containerStatuses"][0]["restartCount"] == 1
    wait_for(lambda: (a := bcs.one("application", name="web")) and a["status"] == "Running", what="app running")


def test_bcs_evict_fails_the_taskgroup_and_the_scheduler_reschedules_it(bcs, control):
    ok(bcs.create("deployment", bcs_deployment("web", bcs.ns, 1, "registry.local/shop:v1-slow-stop-5s")))
    first = _taskgroup(bcs, "web")["metadata"]["name"]
    control.evict_pod(first)
    failed = wait_for(
        lambda: next((t for t in bcs.taskgroups("web") if t["status"] == "Failed"), None), what="the taskgroup failed"
    )
    assert failed["metadata"]["name"] == first and "evicted" in failed["message"]
    assert bcs.one("application", name="web")["status"] == "Abnormal"
    wait_for(lambda: control.pod(first) is None, timeout=2, what="the container stopped at once")
    new = wait_for(
        lambda: next(
            (t for t in bcs.taskgroups("web") if t["metadata"]["name"] != first and t["status"] == "Running"), None
        ),
        timeout=6,
        what="the replacement running",
    )
    assert new["containerStatuses"][0]["restartCount"] == 1


def test_bcs_unready_fails_the_http_check_for_a_while(bcs, control):
    ok(bcs.create("deployment", bcs_deployment("web", bcs.ns, 1, container=checked(HTTP_CHECK))))
    tg = _taskgroup(bcs, "web")
    name = tg["metadata"]["name"]

    def health():
        found = bcs.taskgroups("web")
        return found and found[0]["containerStatuses"][0]["healCheckStatus"][0]["result"]

    wait_for(lambda: health() is True and control.pod(name)["ready"], timeout=5, what="checked and healthy")
    control.unready_pod(name, 4.5)
    wait_for(lambda: health() is False, timeout=5, what="the HTTP check failing")
    assert bcs.taskgroups("web")[0]["status"] == "Running"  # consecutiveFailures 0: not killed
    wait_for(lambda: health() is True, timeout=8, what="the HTTP check passing again")
    assert [t["metadata"]["name"] for t in bcs.taskgroups("web")] == [name]
