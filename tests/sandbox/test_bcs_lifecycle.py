"""The Mesos state machines as storage shows them: deployment, application, taskgroup, health checks,
rolling update, deletion."""

from __future__ import annotations

import re
import time

from test_bcs_client import bcs, deployment, ok, wait_for  # noqa: F401

HTTP_CHECK = {
    "type": "HTTP",
    "delaySeconds": 1,
    "gracePeriodSeconds": 1,
    "intervalSeconds": 2,
    "timeoutSeconds": 1,
    "consecutiveFailures": 0,
    "http": {"portName": "http", "path": "/healthz", "scheme": "http"},
}


def checked(check: dict, **changes) -> dict:
    return {"healthChecks": [dict(check, **changes)]}


def statuses(bcs, name: str):
    app = bcs.one("application", name=name)
    return app and (app["status"], app["runningInstance"])


def test_create_runs_the_application_through_its_states(bcs):
    obj = deployment("web", bcs.ns, instances=2, labels={"app": "web", "tier": "front"})
    obj["spec"]["template"]["metadata"] = {"labels": {"tier": "back", "color": "blue"}}
    ok(bcs.create("deployment", obj))
    seen_deployment, seen_app, seen_tg = [], [], {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        dep, app = bcs.one("deployment", name="web"), bcs.one("application", name="web")
        if dep and app:
            seen_deployment.append(dep["status"])
            seen_app.append(app["status"])
            for tg in bcs.taskgroups("web"):
                seen_tg.setdefault(tg["metadata"]["name"], []).append(tg["status"])
            if app["status"] == "Running":
                break
        time.sleep(0.03)
    # the deployment is Running as soon as its application exists, not when the pods are up
    assert set(seen_deployment) == {"Running"}
    assert seen_app[-1] == "Running" and seen_app[0] in ("Staging", "Deploying")
    assert [s for i, s in enumerate(seen_app) if i == 0 or s != seen_app[i - 1]] in (
        ["Staging", "Deploying", "Running"],
        ["Deploying", "Running"],
        ["Staging", "Running"],
    )
    assert len(seen_tg) == 2
    for history in seen_tg.values():
        changes = [s for i, s in enumerate(history) if i == 0 or s != history[i - 1]]
        assert changes[-1] == "Running" and changes == [s for s in ("Staging", "Starting", "Running") if s in changes]

    app = bcs.one("application", name="web")
    assert (app["instance"], app["buildedInstance"], app["runningInstance"]) == (2, 2, 2)
    assert app["message"] == "application is running" and app["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert sorted(p["name"] for p in app["pods"]) == sorted(seen_tg)
    dep = bcs.one("deployment", name="web")
    assert dep["application"] == {"name": "web", "curr_target_instances": 0, "CurrentRollingInstances": 0}
    assert dep["application_ext"] is None and "raw_json" in dep

    for tg in bcs.taskgroups("web"):
        assert re.fullmatch(rf"[01]\.web\.{bcs.ns}\.{bcs.cluster}\.\d{{19}}", tg["metadata"]["name"])
        assert tg["rcname"] == "web" and tg["message"] == "pod is running"
        assert tg["podIP"] == tg["hostIP"] and tg["podIP"].startswith("127.")
        # deployment labels, overridden by the template's (create.go setVersionWithPodSpec)
        assert tg["metadata"]["labels"] == {"app": "web", "tier": "back", "color": "blue"}
        (container,) = tg["containerStatuses"]
        assert container["status"] == "Running" and container["restartCount"] == 0
        assert "healCheckStatus" not in container  # no checks configured: omitted (omitempty)
        assert container["containerPort"][0]["containerPort"] == 8000


def test_health_checks_start_true_then_follow_the_probe(bcs):
    # two local checks: only the first is kept; the remote one is never reported
    checks = [
        HTTP_CHECK,
        dict(HTTP_CHECK, type="TCP", tcp={"portName": "http"}),
        {"type": "REMOTE_HTTP", "http": {"portName": "http", "path": "/"}},
    ]
    ok(bcs.create("deployment", deployment("good", bcs.ns, 1, container={"healthChecks": checks})))
    ok(
        bcs.create(
            "deployment",
            deployment("bad", bcs.ns, 1, "registry.local/shop:never-ready", container={"healthChecks": checks}),
        )
    )

    def health(name):
        tgs = bcs.taskgroups(name)
        return tgs and tgs[0]["status"] == "Running" and tgs[0]["containerStatuses"][0]["healCheckStatus"]

    # before the first check (gracePeriodSeconds after the container runs) every result is true
    early = wait_for(lambda: health("bad"), what="bad running")
    assert early == [
        {"type": "HTTP", "result": True, "message": "http check by executor"},
        {"type": "REMOTE_HTTP", "result": True, "message": "remote http check, not reported"},
    ]
    # then the probe: a never-ready pod fails its HTTP check; consecutiveFailures 0 never kills it
    late = wait_for(lambda: (h := health("bad")) and not h[0]["result"] and h, timeout=6, what="bad unhealthy")
    assert late[1]["result"] is True  # the remote check is not reported
    assert health("good")[0]["result"] is True
    time.sleep(2.2)  # another check
    assert bcs.taskgroups("bad")[0]["status"] == "Running"
    # health is not part of the application's status
    assert statuses(bcs, "bad") == ("Running", 1)


def test_failing_health_check_fails_and_replaces_the_taskgroup(bcs):
    ok(
        bcs.create(
            "deployment",
            deployment(
                "web",
                bcs.ns,
                1,
                "registry.local/shop:never-ready",
                container=checked(HTTP_CHECK, consecutiveFailures=1),
            ),
        )
    )
    first = wait_for(lambda: bcs.taskgroups("web"), what="a taskgroup")[0]["metadata"]["name"]
    failed = wait_for(
        lambda: next((t for t in bcs.taskgroups("web") if t["status"] == "Failed"), None),
        timeout=8,
        what="the taskgroup failed",
    )
    assert failed["metadata"]["name"] == first
    assert failed["message"] == "health check consecutive failure times over, kill by scheduler"
    assert failed["containerStatuses"][0]["healCheckStatus"][0]["result"] is False
    app = bcs.one("application", name="web")
    assert (app["status"], app["message"]) == ("Abnormal", "application has failed pods")
    # rescheduled: the same index, a new taskgroup, restartCount 1
    new = wait_for(
        lambda: next((t for t in bcs.taskgroups("web") if t["metadata"]["name"] != first), None),
        timeout=5,
        what="the replacement",
    )
    assert new["metadata"]["name"].startswith(f"0.web.{bcs.ns}.")
    assert new["containerStatuses"][0]["restartCount"] == 1
    assert [t["metadata"]["name"] for t in bcs.taskgroups("web")] == [new["metadata"]["name"]]


def test_crash_looping_image_fails_and_is_rescheduled_again_and_again(bcs):
    ok(bcs.create("deployment", deployment("web", bcs.ns, 1, "registry.local/shop:crashloop")))
    failed = wait_for(
        lambda: next((t for t in bcs.taskgroups("web") if t["status"] == "Failed"), None), what="a failed taskgroup"
    )
    assert failed["message"] == "container exited, exit code 1"
    wait_for(
        lambda: any(t["containerStatuses"][0]["restartCount"] >= 2 for t in bcs.taskgroups("web")),
        timeout=10,
        what="two reschedules",
    )


def test_a_checker_the_executor_cannot_build_fails_the_launch(bcs):
    """bcs-container-executor: interval must exceed timeout (default 20 s), else TASK_FAILED."""
    ok(
        bcs.create(
            "deployment",
            deployment("web", bcs.ns, 1, container=checked(HTTP_CHECK, intervalSeconds=5, timeoutSeconds=0)),
        )
    )
    failed = wait_for(
        lambda: next((t for t in bcs.taskgroups("web") if t["status"] == "Failed"), None), what="the failed launch"
    )
    assert failed["message"] == "create healcheck failed, Interval Seconds must larger than Timeout Seconds"
    assert failed["podIP"] == ""  # no container ever ran


def test_delete_passes_through_deleting_until_the_applications_are_gone(bcs):
    ok(bcs.create("deployment", deployment("web", bcs.ns, 2, "registry.local/shop:slow-stop-2s")))
    wait_for(lambda: statuses(bcs, "web") == ("Running", 2), what="running")
    ok(bcs.delete("deployment", "web"))
    dep = wait_for(
        lambda: (d := bcs.one("deployment", name="web")) and d["status"] == "Deleting" and d, what="Deleting"
    )
    assert dep["message"] in ("waiting applications to be deleted", "application still not deleted: web")
    app = bcs.one("application", name="web")
    assert (app["status"], app["message"]) == ("Operating", "application in deleting")
    assert {t["status"] for t in bcs.taskgroups("web")} == {"Killing"}
    ok(bcs.delete("deployment", "web"))  # still there, so a second delete is accepted too
    wait_for(lambda: bcs.query("deployment", name="web") == [], timeout=8, what="the record gone")
    assert bcs.query("application") == [] and bcs.query("taskgroup") == []
    assert bcs.inspect("deployment", "web")["code"] == 1405087


def test_enforced_delete_does_not_wait_for_the_containers(bcs):
    ok(bcs.create("deployment", deployment("web", bcs.ns, 1, "registry.local/shop:slow-stop-5s")))
    wait_for(lambda: statuses(bcs, "web") == ("Running", 1), what="running")
    started = time.monotonic()
    ok(bcs.delete("deployment", "web", enforce=1))
    wait_for(lambda: bcs.query("deployment", name="web") == [], timeout=5, what="the record gone")
    assert time.monotonic() - started < 4


def test_rolling_update_steps_by_surge_and_unavailable(bcs):
    rolling = {
        "type": "RollingUpdate",
        "rollingupdate": {"maxUnavilable": 1, "maxSurge": 1, "upgradeDuration": 0, "rollingOrder": "CreateFirst"},
    }
    ok(bcs.create("deployment", deployment("web", bcs.ns, 3)))
    wait_for(lambda: statuses(bcs, "web") == ("Running", 3), what="running")
    v2 = deployment("web", bcs.ns, 3, "registry.local/shop:v2", strategy=rolling)
    ok(bcs.update("deployment", v2))
    dep = wait_for(lambda: (d := bcs.one("deployment", name="web")) and d["status"] == "Update" and d, what="Update")
    ext = dep["application_ext"]["name"]
    assert re.fullmatch(r"web-v\d{10}", ext) and dep["application"]["name"] == "web"
    assert dep["strategy"]["rollingupdate"]["maxUnavilable"] == 1
    assert dep["raw_json_backup"]["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/shop:v1"
    assert {bcs.one("application", name=n)["status"] for n in ("web", ext)} == {"RollingUpdate"}
    # never more than instance + maxSurge taskgroups, never fewer than instance - maxUnavilable running
    highest, lowest_running = 0, 3
    while (d := bcs.one("deployment", name="web"))["status"] == "Update":
        tgs = bcs.query("taskgroup")
        highest = max(highest, len(tgs))
        lowest_running = min(lowest_running, sum(t["data"]["status"] == "Running" for t in tgs))
        time.sleep(0.05)
    assert d["status"] == "Running" and d["application"]["name"] == ext and d["application_ext"] is None
    assert highest == 4 and lowest_running >= 2
    wait_for(lambda: bcs.query("application", name="web") == [], what="the old application gone")
    new = wait_for(
        lambda: (a := bcs.one("application", name=ext)) and a["status"] == "Running" and a,
        what="the new application running",
    )
    assert new["runningInstance"] == 3
    images = {t["containerStatuses"][0]["image"] for t in bcs.taskgroups(ext)}
    assert images == {"registry.local/shop:v2"}
    assert (
        bcs.definition("deployment", "web")["data"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.local/shop:v2"
    )


def test_rolling_manually_pauses_after_each_step(bcs):
    rolling = {
        "type": "RollingUpdate",
        "rollingupdate": {
            "maxUnavilable": 1,
            "maxSurge": 1,
            "upgradeDuration": 0,
            "rollingOrder": "DeleteFirst",
            "rollingManually": True,
        },
    }
    ok(bcs.create("deployment", deployment("web", bcs.ns, 2)))
    wait_for(lambda: statuses(bcs, "web") == ("Running", 2), what="running")
    ok(bcs.update("deployment", deployment("web", bcs.ns, 2, "registry.local/shop:v2", strategy=rolling)))
    paused = wait_for(
        lambda: (d := bcs.one("deployment", name="web")) and d["status"] == "UpdatePaused" and d,
        what="paused after one step",
    )
    assert paused["message"] == "rollingupdate paused"
    ext = paused["application_ext"]["name"]
    assert len(bcs.taskgroups(ext)) == 1
    time.sleep(1.2)  # paused: no further step
    assert bcs.one("deployment", name="web")["status"] == "UpdatePaused" and len(bcs.taskgroups(ext)) == 1
    assert bcs.op("web", "resumeupdate")["code"] == 0
    # the last step ends the update (finishRollingUpdate runs right after the step that pauses)
    done = wait_for(
        lambda: (d := bcs.one("deployment", name="web")) and d["status"] == "Running" and d, what="finished"
    )
    assert done["application"]["name"] == ext and len(bcs.taskgroups(ext)) == 2


def test_applications_and_scaling(bcs):
    app = {
        "apiVersion": "v4",
        "kind": "application",
        "metadata": {"name": "batch", "namespace": bcs.ns, "labels": {"app": "batch"}},
        "spec": {
            "instance": 1,
            "template": {
                "spec": {
                    "containers": [
                        {"image": "registry.local/shop:v1", "ports": [{"containerPort": 9000, "name": "http"}]}
                    ]
                }
            },
        },
    }
    ok(bcs.create("application", app))
    definition = bcs.definition("application", "batch")["data"]
    assert definition["kind"] == "application" and definition["restartPolicy"] == {"policy": "OnFailure"}
    wait_for(lambda: statuses(bcs, "batch") == ("Running", 1), what="running")
    ok(bcs.request("PUT", f"/bcsapi/v4/scheduler/mesos/namespaces/{bcs.ns}/applications/batch/scale/3"))
    wait_for(lambda: statuses(bcs, "batch") == ("Running", 3), what="scaled up")
    ok(bcs.create("deployment", deployment("web", bcs.ns, 1)))
    assert (
        bcs.definition("application", "web")["message"]
        == "(bcs-scheduler):application's definition not exist, maybe the application was created by deployment"
    )
    wait_for(lambda: statuses(bcs, "web") == ("Running", 1), what="web running")
    ok(bcs.request("PUT", f"/bcsapi/v4/scheduler/mesos/namespaces/{bcs.ns}/deployments/web/scale/2"))
    wait_for(lambda: statuses(bcs, "web") == ("Running", 2), what="web scaled")
    ok(bcs.delete("application", "batch"))
    wait_for(lambda: bcs.query("application", name="batch") == [], what="batch gone")
