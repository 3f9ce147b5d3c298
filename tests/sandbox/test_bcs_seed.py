"""The seed's manual Mesos blue-green release, step by step, as bcs-client sends it.

bcs-blue-green.md: create test-blue, create the service (BCSGROUP test-lb, port
8080), create test-green, point the service's selector at test-green, delete
test-blue.  Traffic goes through the load balancer port (servicePort +
lb_port_offset) before and after the switch.  The JSON is the seed's, corrected
(see seed_bcs/README.md).
"""

from __future__ import annotations

import collections

import requests
from test_bcs_client import SEED, bcs, ok, seed, wait_for  # noqa: F401  (bcs is a fixture)


def lb_address(control, bcs, service: str, port: int) -> tuple[str, int]:
    key = f"bcs/{bcs.cluster}/{bcs.ns}/{service}/{port}"
    proxy = wait_for(
        lambda: next((p for p in control.proxies() if p["name"] == key), None), what=f"load balancer {key}"
    )
    return proxy["host"], proxy["port"]


def colors(address: tuple[str, int], n: int = 6) -> collections.Counter:
    seen = collections.Counter()
    for _ in range(n):
        answer = requests.get(f"http://{address[0]}:{address[1]}/", timeout=5, headers={"Connection": "close"}).json()
        seen[(answer["deployment"], answer["color"])] += 1
    return seen


def running(bcs, app: str, instances: int) -> bool:
    found = bcs.one("application", name=app)
    return bool(found) and found["status"] == "Running" and found["runningInstance"] == instances


def test_seed_blue_green_release(bcs, control):
    # The seed as published is not JSON: the driver's CheckKind rejects it, nothing is created.
    broken = (
        (SEED / "test-blue.json")
        .read_text()
        .replace(
            '"memory": "2048"\n                            }\n                        }\n',
            '"memory": "2048"\n                            }\n                        },\n',
        )
    )
    assert '},\n                    }' in broken
    reply = bcs.create("deployment", broken)
    assert reply.json() == {
        "result": False,
        "code": 1405008,
        "data": {},
        "message": "(bcs-mesos-driver):Unmarshal TypeMeta failed: invalid character '}' "
        "looking for beginning of object key string",
    }

    # bcs-client create -t deployment -f test-blue.json
    ok(bcs.create("deployment", seed("test-blue.json", bcs.ns)))
    # bcs-client create -t service -f test-svc.json
    ok(bcs.create("service", seed("test-svc.json", bcs.ns)))
    wait_for(lambda: running(bcs, "test-blue", 3), what="test-blue running")
    lb = lb_address(control, bcs, "test", 8080)
    assert colors(lb) == {("test-blue", "blue"): 6}

    # bcs-client create -t deployment -f test-green.json; traffic stays on blue meanwhile
    ok(bcs.create("deployment", seed("test-green.json", bcs.ns)))
    wait_for(lambda: running(bcs, "test-green", 3), what="test-green running")
    assert colors(lb) == {("test-blue", "blue"): 6}

    # bcs-client update -t service -f test-svc.json (selector now test-green): new connections move
    # once bcs-loadbalance has applied it (the sandbox's propagation delay)
    ok(bcs.update("service", seed("test-svc-green.json", bcs.ns)))
    wait_for(lambda: colors(lb) == {("test-green", "green"): 6}, what="traffic on green", timeout=5)
    stored = wait_for(
        lambda: (s := bcs.one("service", name="test")) and s["spec"]["selector"] == {"appname": "test-green"} and s,
        what="the updated service",
    )
    assert stored["metadata"]["labels"] == {"BCSGROUP": "test-lb"}
    assert stored["spec"]["ports"] == [{"name": "test-port", "path": "", "protocol": "HTTP", "servicePort": 8080}]
    endpoint = wait_for(
        lambda: (
            (e := bcs.inspect("endpoint", "test")["data"]["data"])
            and e["eps"]
            and {ep["targetRef"]["name"].rsplit("-", 1)[0] for ep in e["eps"]} == {"test-green"}
            and e
        ),
        what="endpoints on test-green",
    )
    assert len(endpoint["eps"]) == 3
    assert all(
        ep["ports"][0]["name"] == "test-port" and ep["ports"][0]["containerPort"] == 8000 for ep in endpoint["eps"]
    )

    # bcs-client delete -t deployment -ns NS -n test-blue
    ok(bcs.delete("deployment", "test-blue"))
    wait_for(lambda: bcs.query("deployment", name="test-blue") == [], what="test-blue's record gone")
    wait_for(lambda: bcs.query("application", name="test-blue") == [], what="test-blue's application gone")
    assert colors(lb) == {("test-green", "green"): 6}

    # tidy up: deleting the service closes its load balancer port
    ok(bcs.delete("service", "test"))
    wait_for(
        lambda: all(p["name"] != f"bcs/{bcs.cluster}/{bcs.ns}/test/8080" for p in control.proxies()),
        what="the load balancer closed",
    )
    ok(bcs.delete("deployment", "test-green"))
