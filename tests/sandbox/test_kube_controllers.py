"""What runs behind the API: the deployment controller (ReplicaSets per template, rolling
update bounds, Recreate, status and conditions), pods (shape, replacement, termination),
garbage collection by propagation policy, endpoints, service traffic, and watches through
the Python client and kubernetes_asyncio."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import requests
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from polling import wait_for


def deployment(name="web", replicas=2, image="shop/web:v1", **spec):
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]}]
                },
            },
            **spec,
        },
    }


def rolled_out(apps, ns, name):
    def check():
        d = apps.read_namespaced_deployment(name, ns)
        s = d.status
        return (
            s.observed_generation == d.metadata.generation
            and s.updated_replicas == d.spec.replicas
            and s.replicas == d.spec.replicas
            and s.available_replicas == d.spec.replicas
        ) and d

    return check


def live_pods(core, ns, selector):
    return [p for p in core.list_namespaced_pod(ns, label_selector=selector).items if not p.metadata.deletion_timestamp]


def ready(pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


# -- deployments ------------------------------------------------------------------------------


def test_replica_sets_pods_and_status_as_the_controller_writes_them(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=3))
    d = wait_for(rolled_out(apps, ns, "web"))
    rs_list = apps.list_namespaced_replica_set(ns).items
    assert len(rs_list) == 1
    rs = rs_list[0]
    h = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{h}" and rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": h}
    assert rs.metadata.owner_references[0].kind == "Deployment" and rs.metadata.owner_references[0].controller
    assert rs.metadata.owner_references[0].uid == d.metadata.uid
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert (rs.status.replicas, rs.status.ready_replicas, rs.status.available_replicas) == (3, 3, 3)
    s = d.status
    assert (s.ready_replicas, s.unavailable_replicas) == (3, None)
    cond = {c.type: c for c in s.conditions}
    assert (cond["Available"].status, cond["Available"].reason) == ("True", "MinimumReplicasAvailable")
    assert cond["Available"].message == "Deployment has minimum availability."
    assert (cond["Progressing"].status, cond["Progressing"].reason) == ("True", "NewReplicaSetAvailable")
    assert cond["Progressing"].message == f'ReplicaSet "web-{h}" has successfully progressed.'
    assert cond["Progressing"].last_update_time and cond["Progressing"].last_transition_time
    pods = core.list_namespaced_pod(ns).items
    assert len(pods) == 3
    for p in pods:
        assert p.metadata.name.startswith(f"web-{h}-") and len(p.metadata.name) == len(f"web-{h}-") + 5
        assert p.metadata.labels == {"app": "web", "pod-template-hash": h}
        ref = p.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.controller) == ("ReplicaSet", rs.metadata.name, True)
        assert p.spec.node_name == "sandbox" and p.status.phase == "Running"
        assert {c.type: c.status for c in p.status.conditions} == {
            "PodReadyToStartContainers": "True",
            "Initialized": "True",
            "Ready": "True",
            "ContainersReady": "True",
            "PodScheduled": "True",
        }
        cs = p.status.container_statuses[0]
        assert (cs.name, cs.ready, cs.started, cs.restart_count) == ("web", True, True, 0)
        assert cs.state.running.started_at
        # each pod listens on its own IP at its container port
        answer = requests.get(f"http://{p.status.pod_ip}:8080/", timeout=5).json()
        assert answer["pod"] == p.metadata.name and answer["deployment"] == "web"
    assert len({p.status.pod_ip for p in pods}) == 3


def test_pod_template_hash_is_stable_per_template(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("a"))
    wait_for(rolled_out(apps, ns, "a"))
    first = apps.list_namespaced_replica_set(ns).items[0].metadata.name
    apps.patch_namespaced_deployment(
        "a", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop/web:v2"}]}}}}
    )
    wait_for(rolled_out(apps, ns, "a"))
    apps.patch_namespaced_deployment(
        "a", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop/web:v1"}]}}}}
    )
    d = wait_for(rolled_out(apps, ns, "a"))
    names = {rs.metadata.name: rs for rs in apps.list_namespaced_replica_set(ns).items}
    assert len(names) == 2 and names[first].spec.replicas == 2  # back on the first template's RS
    assert names[first].metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def test_rolling_update_stays_within_surge_and_unavailability(apps, core, ns):
    apps.create_namespaced_deployment(
        ns,
        deployment(
            replicas=4, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        ),
    )
    wait_for(rolled_out(apps, ns, "web"))
    apps.patch_namespaced_deployment(
        "web",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop/web:v2-ready-after-0.3s"}]}}}},
    )
    seen_total, seen_ready, images = [], [], set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pods = live_pods(core, ns, "app=web")
        seen_total.append(len(pods))
        seen_ready.append(sum(1 for p in pods if ready(p)))
        images |= {p.spec.containers[0].image for p in pods}
        if rolled_out(apps, ns, "web")() and all(
            p.spec.containers[0].image.endswith("v2-ready-after-0.3s") for p in pods
        ):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("rollout did not finish")
    assert max(seen_total) <= 5, seen_total  # replicas + maxSurge
    assert min(seen_ready) >= 4 - 0 - 1, seen_ready  # old pods go only once a new one is available
    assert images == {"shop/web:v1", "shop/web:v2-ready-after-0.3s"}
    rs = {r.spec.template.spec.containers[0].image: r.spec.replicas for r in apps.list_namespaced_replica_set(ns).items}
    assert rs == {"shop/web:v1": 0, "shop/web:v2-ready-after-0.3s": 4}


def test_scaling_mid_rollout_is_proportional(apps, ns):
    """The example of the Deployment docs: 10 replicas, maxSurge 3, maxUnavailable 2, a new
    image that never gets ready (the rollout stalls at 8 old + 5 new), then a scale to 15:
    the 5 extra replicas go 3 to the old ReplicaSet and 2 to the new one."""
    apps.create_namespaced_deployment(
        ns,
        deployment(
            replicas=10, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
        ),
    )
    wait_for(rolled_out(apps, ns, "web"))
    apps.patch_namespaced_deployment(
        "web",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop/web:v2-never-ready"}]}}}},
    )

    def sizes():
        return sorted(
            (rs.spec.template.spec.containers[0].image, rs.spec.replicas)
            for rs in apps.list_namespaced_replica_set(ns).items
        )

    stalled = [("shop/web:v1", 8), ("shop/web:v2-never-ready", 5)]
    wait_for(lambda: sizes() == stalled)
    time.sleep(0.3)
    assert sizes() == stalled  # blocked by maxUnavailable
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 15}})
    wait_for(lambda: sizes() == [("shop/web:v1", 11), ("shop/web:v2-never-ready", 7)])


def test_recreate_stops_every_old_pod_first(apps, core, ns):
    apps.create_namespaced_deployment(
        ns, deployment(replicas=2, image="shop/web:v1-slow-stop-0.5s", strategy={"type": "Recreate"})
    )
    wait_for(rolled_out(apps, ns, "web"))
    apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "shop/web:v2"}]}}}}
    )
    overlap = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(ns).items
        images = {p.spec.containers[0].image for p in pods}
        overlap |= len(images) > 1
        if rolled_out(apps, ns, "web")() and images == {"shop/web:v2"}:
            break
        time.sleep(0.02)
    assert not overlap
    assert {p.spec.containers[0].image for p in core.list_namespaced_pod(ns).items} == {"shop/web:v2"}


def test_min_ready_seconds_delays_availability(apps, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=1, minReadySeconds=1))
    wait_for(lambda: apps.read_namespaced_deployment("web", ns).status.ready_replicas == 1)
    d = apps.read_namespaced_deployment("web", ns)
    assert not d.status.available_replicas and d.status.unavailable_replicas == 1
    started = time.monotonic()
    wait_for(rolled_out(apps, ns, "web"))
    assert time.monotonic() - started > 0.3


def test_scaling_up_and_down(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=1))
    wait_for(rolled_out(apps, ns, "web"))
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 3}})
    wait_for(rolled_out(apps, ns, "web"))
    assert len(live_pods(core, ns, "app=web")) == 3
    apps.patch_namespaced_deployment("web", ns, {"spec": {"replicas": 0}})
    wait_for(lambda: not core.list_namespaced_pod(ns).items)
    d = wait_for(lambda: (d := apps.read_namespaced_deployment("web", ns)).status.observed_generation == 3 and d)
    assert d.status.replicas is None and d.status.available_replicas is None  # zeros are omitted


def test_deleted_pod_is_replaced_and_terminates_for_its_stop_delay(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=2, image="shop/web:v1-slow-stop-4s"))
    wait_for(rolled_out(apps, ns, "web"))
    victim = core.list_namespaced_pod(ns).items[0].metadata.name
    deleted = core.delete_namespaced_pod(victim, ns, _preload_content=False)
    body = json.loads(deleted.data)
    assert body["kind"] == "Pod" and body["metadata"]["deletionTimestamp"]
    pods = {p.metadata.name: p for p in core.list_namespaced_pod(ns).items}
    assert pods[victim].metadata.deletion_timestamp is not None
    assert not ready(pods[victim])
    wait_for(
        lambda: (
            len(live_pods(core, ns, "app=web")) == 2
            and victim not in {p.metadata.name for p in live_pods(core, ns, "app=web")}
        )
    )
    assert victim in {p.metadata.name for p in core.list_namespaced_pod(ns).items}  # still stopping
    wait_for(lambda: victim not in {p.metadata.name for p in core.list_namespaced_pod(ns).items}, timeout=10)
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod(victim, ns)
    assert info.value.status == 404


def test_crashlooping_pod_reports_back_off(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=1, image="shop/web:crashloop"))

    def restarted():
        pods = core.list_namespaced_pod(ns).items
        return pods and (pods[0].status.container_statuses[0].restart_count or 0) >= 1 and pods[0]

    pod = wait_for(restarted, timeout=5)
    cs = pod.status.container_statuses[0]
    assert cs.state.waiting.reason == "CrashLoopBackOff" and cs.ready is False
    assert pod.status.phase == "Running" and not ready(pod)
    d = apps.read_namespaced_deployment("web", ns)
    assert d.status.unavailable_replicas == 1


# -- deletion and garbage collection --------------------------------------------------------------


def test_background_deletion_collects_replica_sets_and_pods(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=2))
    wait_for(rolled_out(apps, ns, "web"))
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Background")
    with pytest.raises(ApiException):
        apps.read_namespaced_deployment("web", ns)
    wait_for(lambda: not apps.list_namespaced_replica_set(ns).items and not core.list_namespaced_pod(ns).items)


def test_foreground_deletion_waits_for_dependents(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=2, image="shop/web:v1-slow-stop-1s"))
    wait_for(rolled_out(apps, ns, "web"))
    resp = apps.delete_namespaced_deployment(
        "web", ns, body=client.V1DeleteOptions(propagation_policy="Foreground"), _preload_content=False
    )
    body = json.loads(resp.data)
    assert body["kind"] == "Deployment" and "foregroundDeletion" in body["metadata"]["finalizers"]
    d = apps.read_namespaced_deployment("web", ns)
    assert d.metadata.deletion_timestamp is not None and d.metadata.finalizers == ["foregroundDeletion"]
    pods = core.list_namespaced_pod(ns).items
    assert pods and all(p.metadata.deletion_timestamp for p in pods)
    started = time.monotonic()
    wait_for(lambda: not apps.list_namespaced_deployment(ns).items, timeout=6)
    assert time.monotonic() - started > 0.4  # it waited for the pods' stop delay
    assert not core.list_namespaced_pod(ns).items and not apps.list_namespaced_replica_set(ns).items


def test_orphan_deletion_keeps_replica_sets_and_pods(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=2))
    wait_for(rolled_out(apps, ns, "web"))
    apps.delete_namespaced_deployment("web", ns, propagation_policy="Orphan")
    rs = apps.list_namespaced_replica_set(ns).items
    assert len(rs) == 1 and not rs[0].metadata.owner_references
    time.sleep(0.2)
    assert len(live_pods(core, ns, "app=web")) == 2
    # a new deployment with the same selector adopts the orphan
    apps.create_namespaced_deployment(ns, deployment(replicas=2))
    d = wait_for(rolled_out(apps, ns, "web"))
    rs = apps.list_namespaced_replica_set(ns).items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].uid == d.metadata.uid


# -- services and endpoints -----------------------------------------------------------------------


def test_endpoints_and_slices_follow_readiness_and_selector(apps, core, api, ns):
    discovery = client.DiscoveryV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("slow", replicas=1, image="shop/web:v1-ready-after-1s"))
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "slow"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    )
    ep = wait_for(lambda: (e := core.read_namespaced_endpoints("web", ns)).subsets and e)
    subset = ep.subsets[0]
    assert subset.addresses is None and len(subset.not_ready_addresses) == 1
    assert (subset.ports[0].name, subset.ports[0].port, subset.ports[0].protocol) == ("http", 8080, "TCP")
    slices = discovery.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web").items
    assert len(slices) == 1 and slices[0].address_type == "IPv4"
    assert slices[0].endpoints[0].conditions.ready is False
    assert slices[0].metadata.owner_references[0].kind == "Service"
    ep = wait_for(lambda: (e := core.read_namespaced_endpoints("web", ns)).subsets[0].addresses and e)
    pod = core.list_namespaced_pod(ns).items[0]
    assert ep.subsets[0].addresses[0].ip == pod.status.pod_ip
    assert ep.subsets[0].addresses[0].target_ref.name == pod.metadata.name
    wait_for(lambda: discovery.list_namespaced_endpoint_slice(ns).items[0].endpoints[0].conditions.ready)
    apps.create_namespaced_deployment(ns, deployment("fast", replicas=2))
    wait_for(rolled_out(apps, ns, "fast"))
    core.patch_namespaced_service("web", ns, [{"op": "replace", "path": "/spec/selector", "value": {"app": "fast"}}])
    ep = wait_for(
        lambda: (
            (e := core.read_namespaced_endpoints("web", ns)).subsets and len(e.subsets[0].addresses or []) == 2 and e
        )
    )
    fast = {p.status.pod_ip for p in core.list_namespaced_pod(ns, label_selector="app=fast").items}
    assert {a.ip for a in ep.subsets[0].addresses} == fast


def test_service_traffic_follows_the_selector(apps, core, ns):
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
    svc = core.read_namespaced_service("web", ns)
    node_port = svc.spec.ports[0].node_port

    def served(host, port):
        return {requests.get(f"http://{host}:{port}/", timeout=5).json()["deployment"] for _ in range(4)}

    assert served("127.0.0.1", node_port) == {"blue"}
    assert served(svc.spec.cluster_ip, 18080) == {"blue"}
    core.patch_namespaced_service("web", ns, {"spec": {"selector": {"app": "green"}}})
    # new connections move once kube-proxy has applied the change (the propagation delay)
    wait_for(lambda: served("127.0.0.1", node_port) == {"green"}, timeout=5)
    apps.patch_namespaced_deployment("green", ns, {"spec": {"replicas": 0}})
    wait_for(lambda: not core.list_namespaced_pod(ns, label_selector="app=green").items)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{node_port}/", timeout=5)  # no endpoints: refused
    core.delete_namespaced_service("web", ns)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", node_port)) != 0  # the node port is closed with the service


# -- watches ----------------------------------------------------------------------------------


def test_python_client_watch_sees_pod_readiness_promptly(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment(replicas=1))
    events = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, ns, timeout_seconds=10):
        events.append((event["type"], ready(event["object"]), time.monotonic()))
        if ready(event["object"]):
            w.stop()
    assert events[0][:2] == ("ADDED", False) and events[-1][:2] == ("MODIFIED", True)
    # the sandbox makes pods ready after 0.5 s; the event follows within well under a second
    assert events[-1][2] - events[0][2] < 1.5


def test_watch_resumes_from_a_resource_version(apps, ns):
    d = apps.create_namespaced_deployment(ns, deployment("a", replicas=0))
    apps.create_namespaced_deployment(ns, deployment("b", replicas=0))
    seen = []
    w = watch.Watch()
    for event in w.stream(
        apps.list_namespaced_deployment, ns, resource_version=d.metadata.resource_version, timeout_seconds=2
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if ("ADDED", "b") in seen:
            w.stop()
    assert ("ADDED", "a") not in seen and ("ADDED", "b") in seen


def test_watch_with_selectors_sends_added_and_deleted_on_transitions(sandbox, core, ns):
    core.create_namespaced_service(
        ns, {"metadata": {"name": "s", "labels": {"track": "no"}}, "spec": {"ports": [{"port": 80}]}}
    )
    start = core.list_namespaced_service(ns).metadata.resource_version
    core.patch_namespaced_service("s", ns, {"metadata": {"labels": {"track": "yes"}}})
    core.patch_namespaced_service("s", ns, {"metadata": {"labels": {"track": "no"}}})
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_service, ns, label_selector="track=yes", resource_version=start, timeout_seconds=1
    ):
        seen.append(event["type"])
        if len(seen) == 2:
            w.stop()
    assert seen == ["ADDED", "DELETED"]


def test_too_old_resource_version_gets_410_expired(sandbox, core, unique_name):
    """After more writes than the watch history keeps, resuming from the first version
    answers the way the watch cache does: an in-stream ERROR event with a 410 Expired."""
    from sandbox.settings import Settings

    core.create_namespace({"metadata": {"name": unique_name}})
    first = core.read_namespace(unique_name).metadata.resource_version
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_file)
    session.headers.update({"Authorization": f"Bearer {sandbox.token}", "Content-Type": "application/merge-patch+json"})
    url = f"{sandbox.kube_url}/api/v1/namespaces/{unique_name}"
    for i in range(Settings().kube_watch_history + 1):
        assert session.patch(url, data=json.dumps({"metadata": {"labels": {"i": str(i)}}}), timeout=10).ok
    r = session.get(f"{sandbox.kube_url}/api/v1/namespaces?watch=true&resourceVersion={first}", timeout=10, stream=True)
    assert r.status_code == 200
    event = json.loads(next(r.iter_lines()))
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {first}")
    r.close()
    w = watch.Watch()
    with pytest.raises(ApiException) as info:
        for _ in w.stream(core.list_namespace, resource_version=first, timeout_seconds=2):
            pass
    assert info.value.status == 410
    core.delete_namespace(unique_name)


def test_kubernetes_asyncio_watch_follows_a_rollout(sandbox, ns):
    from kubernetes_asyncio import client as aclient
    from kubernetes_asyncio import config as aconfig
    from kubernetes_asyncio import watch as awatch

    async def run():
        api = await aconfig.new_client_from_config(config_file=str(sandbox.kubeconfig))
        try:
            apps = aclient.AppsV1Api(api)
            start = (await apps.list_namespaced_deployment(ns)).metadata.resource_version
            await apps.create_namespaced_deployment(ns, deployment(replicas=2))
            reasons = []
            w = awatch.Watch()
            async for event in w.stream(
                apps.list_namespaced_deployment,
                ns,
                field_selector="metadata.name=web",
                resource_version=start,
                timeout_seconds=10,
            ):
                d = event["object"]
                progressing = [c.reason for c in d.status.conditions or [] if c.type == "Progressing"]
                reasons += [r for r in progressing if not reasons or reasons[-1] != r]
                if (d.status.available_replicas or 0) == 2 and d.status.observed_generation == d.metadata.generation:
                    w.stop()
            return reasons
        finally:
            await api.close()

    reasons = asyncio.run(run())
    assert reasons[0] == "NewReplicaSetCreated" and reasons[-1] == "NewReplicaSetAvailable"
