"""bcs-storage's dynamic queries and inspect, as bcs-client and our hook use them."""

from __future__ import annotations

from test_bcs_client import STORAGE, bcs, deployment, ok, wait_for  # noqa: F401


def names(docs) -> list[str]:
    return sorted(d["resourceName"] for d in docs)


def running(bcs, *apps):
    return all((a := bcs.one("application", name=n)) and a["status"] == "Running" for n in apps)


def test_filters_get_and_post(bcs):
    ok(bcs.create("deployment", deployment("web", bcs.ns, 2)))
    ok(bcs.create("deployment", deployment("api", bcs.ns, 1)))
    wait_for(lambda: running(bcs, "web", "api"), what="both running")

    # the same filters by query string (GET) and JSON body (POST); comma-joined values mean "any of"
    for method in ("GET", "POST"):
        assert names(bcs.query("application", method)) == ["api", "web"]
        assert names(bcs.query("application", method, name="web,api,nothing")) == ["api", "web"]
        assert names(bcs.query("application", method, name="web")) == ["web"]
        assert names(bcs.query("application", method, runningInstance="2")) == ["web"]
        assert names(bcs.query("application", method, status="Running,Deploying")) == ["api", "web"]
        assert names(bcs.query("deployment", method, applicationName="api")) == ["api"]
        assert names(bcs.query("deployment", method, isInRolling="false")) == ["api", "web"]
        assert names(bcs.query("deployment", method, isInRolling="true")) == []
        assert len(bcs.query("taskgroup", method, rcName="web")) == 2
        assert len(bcs.query("taskgroup", method, rcName="web", status="Staging")) == 0
        assert bcs.query("application", method, namespace=bcs.ns + "-other") == []

    # records: the watcher's documents with the object under data
    (doc,) = bcs.query("application", name="web")
    assert set(doc) == {
        "_id",
        "clusterId",
        "namespace",
        "resourceName",
        "resourceType",
        "data",
        "createTime",
        "updateTime",
    }
    assert (doc["clusterId"], doc["namespace"], doc["resourceType"]) == (bcs.cluster, bcs.ns, "application")
    assert doc["data"]["kind"] == "application" and "reportTime" in doc["data"]
    # inspect returns the same single document
    inspected = bcs.inspect("application", "web")
    assert inspected["code"] == 0 and inspected["data"]["_id"] == doc["_id"]

    # field selection (a MongoDB projection, _id always), offset and limit
    selected = bcs.query("taskgroup", field="data.status,resourceName", rcName="web")
    assert all(set(d) == {"_id", "resourceName", "data"} and d["data"] == {"status": "Running"} for d in selected)
    assert len(bcs.query("taskgroup", limit="1")) == 1
    assert len(bcs.query("taskgroup", offset="1")) == 2

    # POST values are decoded into the filter's string fields: a number fails the whole query
    path = f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/application"
    reply = bcs.request("POST", path, {"namespace": bcs.ns, "runningInstance": 2})
    assert reply.json() == {
        "result": False,
        "code": 1405085,
        "message": "(bcs-storage):list resource failed.",
        "data": [],
    }
    # the namespaces in use
    reply = bcs.request("GET", f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/namespace").json()
    assert bcs.ns in reply["data"]


def test_services_and_endpoints_in_storage(bcs):
    obj = deployment("web", bcs.ns, 2, labels={"app": "web"})
    obj["spec"]["template"]["metadata"] = {"labels": {"only-in-template": "yes"}}
    ok(bcs.create("deployment", obj))
    svc = {
        "apiVersion": "v4",
        "kind": "service",
        "metadata": {"name": "web", "namespace": bcs.ns},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "protocol": "TCP", "servicePort": 7100},
                {"name": "metrics", "servicePort": 7101},
            ],
        },
    }
    ok(bcs.create("service", svc))
    other = dict(
        svc,
        metadata={"name": "template-only", "namespace": bcs.ns},
        spec=dict(svc["spec"], selector={"only-in-template": "yes"}),
    )
    ok(bcs.create("service", other))
    wait_for(lambda: running(bcs, "web"), what="running")
    stored = wait_for(lambda: bcs.one("service", name="web"), what="the service")
    # stored as the scheduler's Go struct marshals it
    assert stored == {
        "apiVersion": "v4",
        "kind": "service",
        "metadata": {"name": "web", "namespace": bcs.ns, "creationTimestamp": "0001-01-01T00:00:00Z"},
        "spec": {
            "selector": {"app": "web"},
            "clusterIP": None,
            "ports": [
                {"name": "http", "path": "", "protocol": "TCP", "servicePort": 7100},
                {"name": "metrics", "path": "", "protocol": "", "servicePort": 7101},
            ],
        },
    }
    endpoint = wait_for(
        lambda: (e := bcs.inspect("endpoint", "web")["data"]["data"]) and len(e["eps"] or []) == 2 and e,
        what="two endpoints",
    )
    for ep in endpoint["eps"]:
        assert ep["targetRef"]["kind"] == "taskgroup" and ep["nodeIP"] == ep["containerIP"]
        # ports matched by name: "metrics" matches no container port
        assert [p["name"] for p in ep["ports"]] == ["http"]
    # the scheduler's endpoints match the application's labels (the deployment's), not the template's
    assert bcs.inspect("endpoint", "template-only")["data"]["data"]["eps"] is None
    assert len(bcs.query("endpoints")) == 2
