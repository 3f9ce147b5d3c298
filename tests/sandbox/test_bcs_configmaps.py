"""BCS configmaps: the scheduler's create/update/delete (sched/api/api.go) and what
bcs-mesos-watch puts in storage, through requests as bcs-client sends them."""

from __future__ import annotations

import json
import threading

import requests
from test_bcs_client import MESOS, bcs, ok, wait_for  # noqa: F401  (bcs is a fixture)
from test_bcs_errors import failed


def configmap(name: str, ns: str, content: str = "a=1", **extra) -> dict:
    obj = {
        "apiVersion": "v4",
        "kind": "configmap",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
        "datas": {"app.conf": {"type": "file", "content": content}},
    }
    obj.update(extra)
    return obj


def stored(bcs, name: str):
    return bcs.one("configmap", name=name)


def test_create_update_delete_and_storage(bcs):
    ok(bcs.create("configmap", configmap("web", bcs.ns)))
    data = wait_for(lambda: stored(bcs, "web"), what="the configmap in storage")
    # the BcsConfigMap marshalled back: TypeMeta inline, every item field (RemoteUser under its Go
    # name: its tag says `josn`), creationTimestamp's zero time
    assert data == {
        "apiVersion": "v4",
        "kind": "configmap",
        "metadata": {
            "name": "web",
            "namespace": bcs.ns,
            "creationTimestamp": "0001-01-01T00:00:00Z",
            "labels": {"app": "web"},
        },
        "datas": {"app.conf": {"type": "file", "content": "a=1", "RemoteUser": ""}},
    }
    inspected = bcs.inspect("configmap", "web")
    assert inspected["code"] == 0 and inspected["data"]["resourceType"] == "configmap"
    assert inspected["data"]["data"] == data
    namespaces = bcs.request("GET", f"/bcsapi/v4/storage/query/mesos/dynamic/clusters/{bcs.cluster}/namespace")
    assert bcs.ns in namespaces.json()["data"]

    # create of an existing one: 1405201, nothing changes
    failed(bcs.create("configmap", configmap("web", bcs.ns, "a=2")), 1405201, "configmap already exist")
    # update replaces the whole object (labels included, unlike services)
    ok(bcs.update("configmap", configmap("web", bcs.ns, "a=3", metadata={"name": "web", "namespace": bcs.ns})))
    data = wait_for(
        lambda: (d := stored(bcs, "web")) and d["datas"]["app.conf"]["content"] == "a=3" and d,
        what="the update in storage",
    )
    assert "labels" not in data["metadata"]
    failed(bcs.update("configmap", configmap("other", bcs.ns)), 1405202, "configmap not exist")

    ok(bcs.delete("configmap", "web"))
    wait_for(lambda: stored(bcs, "web") is None, what="gone from storage")
    assert bcs.inspect("configmap", "web")["code"] == 1405087
    # both scheduler stores ignore a missing node on delete: success
    ok(bcs.delete("configmap", "web"))


def test_rejections(bcs):
    failed(
        bcs.create("configmap", configmap("web", bcs.ns, kind="service")),
        1405008,
        "Kind service is invalid",
        "bcs-mesos-driver",
    )
    failed(
        bcs.create("configmap", '{"kind": "configmap",}'),
        1405008,
        "Unmarshal TypeMeta failed: invalid character '}' looking for beginning of object key string",
        "bcs-mesos-driver",
    )
    # the scheduler decodes it: Go's own message, 1405010
    failed(
        bcs.create("configmap", configmap("web", bcs.ns, datas=["a=1"])),
        1405010,
        "json: cannot unmarshal array into Go struct field BcsConfigMap.datas of type "
        "map[string]types.BcsConfigMapItem",
    )
    reply = bcs.request("GET", f"{MESOS}/namespaces/{bcs.ns}/configmaps")
    assert (reply.status_code, reply.text) == (405, "405: Method Not Allowed")
    assert bcs.query("configmap") == []


def test_concurrent_creates_exactly_one_wins(bcs):
    barrier = threading.Barrier(8)
    codes = []

    def create(i):
        session = requests.Session()  # one connection per writer, all sent at once
        session.trust_env, session.verify = False, bcs.session.verify
        session.headers.update(bcs.session.headers)
        body = json.dumps(configmap("race", bcs.ns, f"writer={i}"))
        barrier.wait()
        reply = session.post(f"{bcs.url}{MESOS}/namespaces/{bcs.ns}/configmaps?", data=body, timeout=15)
        codes.append((reply.json()["code"], i))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(c for c, _ in codes) == [0] + [1405201] * 7
    winner = next(i for c, i in codes if c == 0)
    data = wait_for(lambda: stored(bcs, "race"), what="stored")
    assert data["datas"]["app.conf"]["content"] == f"writer={winner}"
