"""A bcs-client-like helper for the BCS tests, and the API gateway's checks.

Every BCS test talks to the sandbox over real HTTPS with ``requests``, verifying
TLS against the sandbox CA, sending what bcs-client sends (client/pkg/utils/api.go:
JSON content type, ``Authorization: Bearer``, ``BCS-ClusterID``).  The other
test_bcs_* modules import ``Bcs`` and the fixtures from here.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
import requests
from polling import wait_for  # noqa: F401  (other BCS test modules import it from here)

SEED = Path(__file__).parent / "seed_bcs"
MESOS = "/bcsapi/v4/scheduler/mesos"
STORAGE = "/bcsapi/v4/storage"


class Bcs:
    def __init__(self, endpoints, namespace: str = "defaultGroup"):
        self.url = endpoints.bcs_url
        self.cluster = endpoints.bcs_cluster_id
        self.ns = namespace
        self.session = requests.Session()
        self.session.verify = str(endpoints.ca_file)
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment would override verify
        self.session.trust_env = False
        self.session.headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": f"Bearer {endpoints.token}",
                "BCS-ClusterID": endpoints.bcs_cluster_id,
            }
        )

    # -- raw -------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, **kw) -> requests.Response:
        data = body if body is None or isinstance(body, (str, bytes)) else json.dumps(body)
        return self.session.request(method, self.url + path, data=data, timeout=15, **kw)

    # -- scheduler (client/pkg/scheduler/v4/scheduler.go URLs) ----------------------------
    def create(self, kind: str, obj) -> requests.Response:
        ns = obj["metadata"]["namespace"] if isinstance(obj, dict) else self.ns
        return self.request("POST", f"{MESOS}/namespaces/{ns}/{kind}s?", obj)

    def update(self, kind: str, obj) -> requests.Response:
        ns = obj["metadata"]["namespace"] if isinstance(obj, dict) else self.ns
        return self.request("PUT", f"{MESOS}/namespaces/{ns}/{kind}s", obj)

    def delete(self, kind: str, name: str, enforce: int = 0, ns: str | None = None) -> requests.Response:
        return self.request("DELETE", f"{MESOS}/namespaces/{ns or self.ns}/{kind}s/{name}?enforce={enforce}")

    def definition(self, kind: str, name: str, ns: str | None = None) -> dict:
        return self.request("GET", f"{MESOS}/definition/{kind}/{ns or self.ns}/{name}").json()

    def op(self, name: str, op: str) -> dict:
        return self.request("PUT", f"{MESOS}/namespaces/{self.ns}/deployments/{name}/{op}").json()

    # -- storage (client/pkg/storage/v1/storage.go) -------------------------------------
    def query(self, kind: str, method: str = "POST", **filters) -> list[dict]:
        filters.setdefault("namespace", self.ns)
        path = f"{STORAGE}/query/mesos/dynamic/clusters/{self.cluster}/{kind}"
        if method == "POST":
            reply = self.request("POST", path, filters)
        else:
            reply = self.request("GET", path, params=filters)
        assert reply.status_code == 200, reply.text
        doc = reply.json()
        assert doc["code"] == 0 and doc["result"] is True, doc
        return doc["data"]

    def inspect(self, kind: str, name: str, ns: str | None = None) -> dict:
        path = (
            f"{STORAGE}/mesos/dynamic/namespace_resources/clusters/{self.cluster}/namespaces/{ns or self.ns}/"
            f"{kind}/{name}"
        )
        reply = self.request("GET", path)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def one(self, kind: str, **filters) -> dict | None:
        found = self.query(kind, **filters)
        assert len(found) <= 1, found
        return found[0]["data"] if found else None

    def taskgroups(self, app: str) -> list[dict]:
        return [d["data"] for d in self.query("taskgroup", rcName=app)]


def ok(reply: requests.Response) -> dict:
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc == {"result": True, "code": 0, "message": "success", "data": doc["data"]}, doc
    return doc


def deployment(
    name: str, ns: str, instances: int = 2, image: str = "registry.local/shop:v1", labels: dict | None = None, **extra
) -> dict:
    """A v4 deployment like the seed's, with a port named http."""
    container = {
        "type": "MESOS",
        "image": image,
        "ports": [{"containerPort": 8000, "name": "http", "protocol": "HTTP"}],
        "resources": {"limits": {"cpu": "0.1", "memory": "64"}},
    }
    container.update(extra.pop("container", {}))
    obj = {
        "apiVersion": "v4",
        "kind": "deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}},
        "spec": {"instance": instances, "template": {"spec": {"containers": [container], "networkMode": "BRIDGE"}}},
    }
    obj["spec"].update(extra)
    return obj


def seed(name: str, ns: str) -> dict:
    obj = json.loads((SEED / name).read_text())
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = ns  # each test in its own namespace; the rest is sent as is
    return obj


@pytest.fixture
def bcs(sandbox, unique_name):
    client = Bcs(sandbox, unique_name)
    yield client
    # leave the shared sandbox idle for the next test: remove what this namespace still holds
    for kind, resource in (
        ("deployment", "deployment"),
        ("application", "application"),
        ("service", "service"),
        ("configmap", "configmap"),
    ):
        for doc in client.query(resource):
            client.delete(kind, doc["resourceName"], enforce=1)


# -- the gateway -------------------------------------------------------------------------------


def _nothing_created(bcs: Bcs, name: str) -> None:
    time.sleep(0.3)  # longer than a storage sync
    assert bcs.query("deployment", name=name) == []
    assert bcs.definition("deployment", name)["code"] == 1405200


def test_missing_authorization_is_the_gateways_400(bcs):
    """bkbcs.lua construct_identity: no Authorization header -> 400 "lost Authorization"."""
    headers = {"Authorization": None}
    reply = bcs.session.post(
        f"{bcs.url}{MESOS}/namespaces/{bcs.ns}/deployments?",
        data=json.dumps(deployment("web", bcs.ns)),
        headers=headers,
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json() == {"code": 400, "result": False, "message": "Bad Request: lost Authorization"}
    _nothing_created(bcs, "web")


def test_wrong_token_is_401_and_changes_nothing(bcs):
    reply = bcs.session.post(
        f"{bcs.url}{MESOS}/namespaces/{bcs.ns}/deployments?",
        data=json.dumps(deployment("web", bcs.ns)),
        headers={"Authorization": "Bearer not-the-token"},
        timeout=10,
    )
    assert reply.status_code == 401
    assert reply.json() == {"code": 401, "result": False, "message": "Resource is Unauthorized"}
    # storage is behind the same plugin
    reply = bcs.session.get(
        f"{bcs.url}{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/deployment",
        headers={"Authorization": "Bearer not-the-token"},
        timeout=10,
    )
    assert reply.status_code == 401
    _nothing_created(bcs, "web")


def test_authorization_without_bearer_is_400(bcs):
    reply = bcs.session.get(
        f"{bcs.url}{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/deployment",
        headers={"Authorization": "Basic abc"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json()["message"] == "Bad Request: Authorization token lost"


def test_missing_cluster_id_is_checked_before_the_token(bcs):
    reply = bcs.session.post(
        f"{bcs.url}{MESOS}/namespaces/{bcs.ns}/deployments?",
        data=json.dumps(deployment("web", bcs.ns)),
        headers={"BCS-ClusterID": None, "Authorization": "Bearer wrong"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json() == {"code": 400, "result": False, "message": "Bad Request: lost BCS-ClusterID in header"}
    _nothing_created(bcs, "web")


def test_wrong_cluster_id_is_the_drivers_filter(bcs):
    reply = bcs.session.post(
        f"{bcs.url}{MESOS}/namespaces/{bcs.ns}/deployments?",
        data=json.dumps(deployment("web", bcs.ns)),
        headers={"BCS-ClusterID": "BCS-MESOS-99999"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.json() == {
        "result": False,
        "code": 1405234,
        "message": "http header BCS-ClusterID BCS-MESOS-99999 don't exist",
        "data": None,
    }
    _nothing_created(bcs, "web")


def test_storage_takes_the_cluster_from_the_path(bcs):
    """The storage route has no cluster header check; another cluster's data is simply empty."""
    reply = bcs.session.get(
        f"{bcs.url}{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/application",
        params={"namespace": bcs.ns},
        headers={"BCS-ClusterID": None},
        timeout=10,
    )
    assert reply.status_code == 200 and reply.json()["code"] == 0
    ok(bcs.create("deployment", deployment("web", bcs.ns, instances=1)))
    wait_for(lambda: bcs.query("application"), what="the application in storage")
    other = bcs.request(
        "GET", f"{STORAGE}/query/mesos/dynamic/clusters/BCS-MESOS-99999/application", params={"namespace": bcs.ns}
    ).json()
    assert other["code"] == 0 and other["data"] == []


def test_unknown_paths(bcs):
    assert bcs.request("GET", "/bcsapi/v4/nothing").json() == {"error_msg": "404 Route Not Found"}
    reply = bcs.request("GET", f"{MESOS}/namespaces/{bcs.ns}/nothing")
    assert (reply.status_code, reply.text) == (404, "404: Page Not Found")
    reply = bcs.request("GET", f"{MESOS}/namespaces/{bcs.ns}/deployments")
    assert (reply.status_code, reply.text) == (405, "405: Method Not Allowed")
    # bcs-client asks for "endpoint"; the storage server only registered "endpoints"
    reply = bcs.request("POST", f"{STORAGE}/query/mesos/dynamic/clusters/{bcs.cluster}/endpoint", {})
    assert reply.status_code == 404


def test_requests_are_counted(bcs, control):
    bcs.query("deployment")
    rows = control.request_counts("bcs")
    assert any(r["method"] == "POST" and r["path"].endswith("/deployment") and r["count"] >= 1 for r in rows)
