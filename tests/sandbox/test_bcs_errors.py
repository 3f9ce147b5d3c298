"""Every rejection the BCS API gives, with its exact envelope, and that it changes nothing.

Codes and messages are upstream's (driver v4http/*.go, scheduler sched/api/api.go and
sched/backend/deployment.go, bcs-common errorCode.go); logic errors are HTTP 200.
"""

from __future__ import annotations

import copy
import time

from test_bcs_client import bcs, deployment, ok, wait_for  # noqa: F401


def failed(reply, code: int, message: str, process: str = "bcs-scheduler") -> None:
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/plain")  # go-restful's Write sets none: sniffed
    assert reply.json() == {"result": False, "code": code, "message": f"({process}):{message}", "data": {}}


def settle() -> None:
    time.sleep(0.3)  # past a storage sync


def running(bcs, app: str) -> dict:
    return wait_for(
        lambda: (a := bcs.one("application", name=app)) and a["status"] == "Running" and a, what=f"{app} running"
    )


def test_create_rejections_change_nothing(bcs):
    web = deployment("web", bcs.ns)
    # CheckKind runs first: a body of another kind is 1405008 from the driver
    failed(bcs.create("deployment", dict(web, kind="service")), 1405008, "Kind service is invalid", "bcs-mesos-driver")
    # not JSON: CheckKind reports Go's syntax error
    failed(
        bcs.create("deployment", '{"kind": "deployment",}'),
        1405008,
        "Unmarshal TypeMeta failed: invalid character '}' looking for beginning of object key string",
        "bcs-mesos-driver",
    )
    failed(
        bcs.create("deployment", ""),
        1405008,
        "Unmarshal TypeMeta failed: unexpected end of JSON input",
        "bcs-mesos-driver",
    )
    # valid JSON that does not decode into BcsDeployment: the driver's bare "json decode failed!"
    bad_type = copy.deepcopy(web)
    bad_type["spec"]["instance"] = "2"
    failed(bcs.create("deployment", bad_type), 1405010, "json decode failed!", "bcs-mesos-driver")
    # no containers
    empty = copy.deepcopy(web)
    empty["spec"]["template"]["spec"]["containers"] = []
    failed(
        bcs.create("deployment", empty),
        1405231,
        "there is some error in the parametersno containers and processes",
        "bcs-mesos-driver",
    )
    # an unknown restart policy
    failed(
        bcs.create("deployment", dict(web, restartPolicy={"policy": "Sometimes"})),
        1405231,
        "there is some error in the parametersrestart policy error",
        "bcs-mesos-driver",
    )
    # a '.' in the name: MetaIsValid's plain error is the whole body
    reply = bcs.create("deployment", deployment("web.v2", bcs.ns))
    assert (reply.status_code, reply.text) == (200, "Name can't contains contains '.'")
    # no instances: the record is removed again
    failed(bcs.create("deployment", deployment("web", bcs.ns, instances=0)), 1405008, "application instances error")
    settle()
    assert bcs.query("deployment") == [] and bcs.query("application") == []


def test_create_of_an_existing_object_is_1405201(bcs):
    ok(bcs.create("deployment", deployment("web", bcs.ns, instances=1)))
    second = deployment("web", bcs.ns, instances=3, image="registry.local/shop:v9")
    failed(bcs.create("deployment", second), 1405201, f"deployment({bcs.ns}.web) already exist")
    assert bcs.definition("deployment", "web")["data"]["spec"]["instance"] == 1
    settle()
    assert bcs.one("application", name="web")["instance"] == 1

    svc = {
        "apiVersion": "v4",
        "kind": "service",
        "metadata": {"name": "web", "namespace": bcs.ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "protocol": "TCP", "servicePort": 7001}]},
    }
    ok(bcs.create("service", svc))
    failed(
        bcs.create("service", dict(svc, spec={"selector": {"app": "other"}, "ports": []})),
        1405201,
        "service already exist",
    )
    settle()
    assert bcs.one("service", name="web")["spec"]["selector"] == {"app": "web"}

    app = {
        "apiVersion": "v4",
        "kind": "application",
        "metadata": {"name": "web", "namespace": bcs.ns},
        "spec": {"instance": 1, "template": {"spec": {"containers": [{"image": "registry.local/shop:v1"}]}}},
    }
    failed(bcs.create("application", app), 1405201, "application already exist")


def test_missing_objects(bcs):
    failed(
        bcs.update(
            "deployment",
            dict(
                deployment("web", bcs.ns),
                spec=dict(
                    deployment("web", bcs.ns)["spec"],
                    strategy={"type": "RollingUpdate", "rollingupdate": {"rollingOrder": "CreateFirst"}},
                ),
            ),
        ),
        1405202,
        "deployment not exist",
    )
    failed(bcs.delete("deployment", "web"), 1405202, "deployment not exist")
    svc = {
        "apiVersion": "v4",
        "kind": "service",
        "metadata": {"name": "web", "namespace": bcs.ns},
        "spec": {"selector": {"app": "web"}, "ports": []},
    }
    failed(bcs.update("service", svc), 1405202, "service not exist")
    # both scheduler stores ignore a missing node on delete: deleting a missing service succeeds
    ok(bcs.delete("service", "web"))
    # a missing application: FetchApplication's store.ErrNoFound goes out through createResponseData
    failed(bcs.delete("application", "web"), 1405200, "store: Not Found")
    # a missing definition: GetDeployment's error as is (the scheduler's store.ErrNoFound)
    assert bcs.definition("deployment", "web") == {
        "result": False,
        "code": 1405200,
        "data": {},
        "message": "(bcs-scheduler):store: Not Found",
    }
    # storage inspect of a missing object
    assert bcs.inspect("deployment", "web") == {
        "result": False,
        "code": 1405087,
        "data": {},
        "message": "(bcs-storage):resource does not exist.",
    }
    settle()
    assert bcs.query("service") == [] and bcs.query("deployment") == []


def test_service_bodies_are_decoded_by_the_scheduler(bcs):
    svc = {
        "apiVersion": "v4",
        "kind": "service",
        "metadata": {"name": "web", "namespace": bcs.ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "servicePort": "7002"}]},
    }
    failed(
        bcs.create("service", svc),
        1405010,
        "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.servicePort of type int",
    )
    failed(
        bcs.create("service", dict(svc, kind="deployment")), 1405008, "Kind deployment is invalid", "bcs-mesos-driver"
    )
    settle()
    assert bcs.query("service") == []


def test_update_preconditions(bcs):
    rolling = {
        "type": "RollingUpdate",
        "rollingupdate": {"maxUnavilable": 1, "maxSurge": 1, "upgradeDuration": 0, "rollingOrder": "CreateFirst"},
    }
    ok(bcs.create("deployment", deployment("web", bcs.ns, instances=2)))
    # right after create the application is still staging
    failed(
        bcs.update("deployment", deployment("web", bcs.ns, instances=2, strategy=rolling)),
        1405200,
        "deployment bind application is not running, cannot update, please try later",
    )
    running(bcs, "web")
    before = bcs.definition("deployment", "web")["data"]

    failed(bcs.update("deployment", deployment("web", bcs.ns, instances=2)), 1405008, "update strategy not set")
    bad_order = copy.deepcopy(rolling)
    bad_order["rollingupdate"]["rollingOrder"] = "Sideways"
    failed(
        bcs.update("deployment", deployment("web", bcs.ns, strategy=bad_order)),
        1405008,
        "update strategy rolling order error",
    )
    failed(
        bcs.update("deployment", deployment("web", bcs.ns, strategy=rolling, selector={"app": "web"})),
        1405008,
        "deployment's selector cannot be updated'",
    )
    failed(
        bcs.update("deployment", dict(deployment("web", bcs.ns), kind="application")),
        1405008,
        "Kind application is invalid",
        "bcs-mesos-driver",
    )
    settle()
    assert bcs.definition("deployment", "web")["data"] == before
    dep = bcs.one("deployment", name="web")
    assert (dep["status"], dep["application_ext"], dep["application"]["name"]) == ("Running", None, "web")

    # while an update runs (one step, then a minute's wait), another one is refused
    slow = copy.deepcopy(rolling)
    slow["rollingupdate"]["upgradeDuration"] = 60
    ok(bcs.update("deployment", deployment("web", bcs.ns, instances=2, image="registry.local/shop:v2", strategy=slow)))
    failed(
        bcs.update("deployment", deployment("web", bcs.ns, instances=2, strategy=rolling)),
        1405200,
        "deployment is not running, cannot update",
    )
    assert bcs.op("web", "resumeupdate") == {
        "result": False,
        "code": 1405200,
        "data": {},
        "message": "(bcs-scheduler):deployment is not update paused or suspend",
    }
    ok_cancel = bcs.op("web", "cancelupdate")
    assert ok_cancel == {"result": True, "code": 0, "message": "success", "data": None}
    assert bcs.definition("deployment", "web")["data"] == before
    assert bcs.op("web", "cancelupdate")["message"] == "(bcs-scheduler):deployment is in not rollingupdate"
    assert bcs.op("web", "pauseupdate")["message"] == "(bcs-scheduler):deployment is not in updating"


def test_create_without_template_or_selector_is_refused_and_left_deploying(bcs):
    """With no template there is no version; with no selector nothing can be adopted: 1405008 and, as
    upstream, the record saved before the check stays behind (status Deploying)."""
    obj = deployment("web", bcs.ns)
    del obj["spec"]["template"]
    failed(bcs.create("deployment", obj), 1405008, "version empty or namespace error")
    dep = wait_for(lambda: bcs.one("deployment", name="web"), what="the stale record")
    assert dep["status"] == "Deploying" and dep["application"] is None
    assert bcs.query("application") == []
