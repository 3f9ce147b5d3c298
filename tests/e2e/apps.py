"""One test app per platform, with the same questions asked of the cluster.

The release behaviours are tested once, for both platforms; only how a test reads
the cluster differs: the official kubernetes client for Kubernetes, plain
``requests`` against the BCS API for BCS Mesos (not our hook, so that a bug there
cannot hide itself).
"""

from __future__ import annotations

import itertools
import json

import requests

from bluegreen.apps.config import load_app
from bluegreen.dags import release_dag

from .harness import TrafficLoop, run_dag, write_app

# defer_after 0: the sensors defer at once, so that dag.test() runs the triggers (inline).
BASE = {
    "soak": "2s",
    "readiness_timeout": "30s",
    "check_interval": "0.5s",
    "delete_timeout": "30s",
    "switch_timeout": "20s",
    "defer_after": "0s",
    # the sandbox's proxies apply a switch 0.3 s after it (its --propagation-delay)
    "drain_delay": "1s",
}


class TestApp:
    platform = ""

    def __init__(self, tmp_path, namespace, **fields):
        self.ns = namespace
        self.path = write_app(
            tmp_path, namespace, self.platform, namespace=namespace, **{**BASE, **self.defaults(), **fields}
        )
        self.app = load_app(self.path)

    def defaults(self) -> dict:
        return {}

    def reload(self):
        self.app = load_app(self.path)

    def manifest_path(self, color):
        raise NotImplementedError

    def edit_manifest(self, color, edit):
        path = self.manifest_path(color)
        path.write_text(edit(path.read_text()))
        self.reload()

    def dag(self):
        return release_dag(self.app)

    def release(self, image, **conf):
        return run_dag(self.dag(), {"image": image, **conf})

    def service_url(self) -> str:
        raise NotImplementedError

    def traffic(self):
        return TrafficLoop(self.service_url())

    def serves(self, image) -> bool:
        answers = {
            requests.get(self.service_url(), timeout=5, headers={"Connection": "close"}).json()["image"]
            for _ in range(6)
        }
        return answers == {image}

    # each platform answers these
    def selector(self) -> dict | None: ...
    def deployments(self) -> dict[str, str]: ...
    def annotations(self) -> dict: ...
    def members(self, color) -> list: ...


class K8sApp(TestApp):
    platform = "kubernetes"

    def __init__(self, tmp_path, namespace, kube, **fields):
        from kubernetes import client

        self.apps_api, self.core = client.AppsV1Api(kube), client.CoreV1Api(kube)
        super().__init__(tmp_path, namespace, **fields)

    def manifest_path(self, color):
        return self.path.parent / self.ns / f"test-{color}.yaml"

    def service(self):
        from kubernetes.client import ApiException

        try:
            return self.core.read_namespaced_service("test", self.ns)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def selector(self):
        svc = self.service()
        return svc.spec.selector if svc else None

    def annotations(self):
        return dict(self.service().metadata.annotations or {})

    def service_url(self):
        return f"http://127.0.0.1:{self.service().spec.ports[0].node_port}/"

    def deployments(self):
        return {
            d.metadata.name: d.spec.template.spec.containers[0].image
            for d in self.apps_api.list_namespaced_deployment(self.ns).items
        }

    def members(self, color):
        return self.core.list_namespaced_pod(self.ns, label_selector=f"app=test-{color}").items

    def member_name(self, color) -> str:
        """A ready member of the color, by the name the sandbox's control endpoint knows it by."""
        return next(
            p.metadata.name
            for p in self.members(color)
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        )

    def break_selector(self, selector=None):
        """Point the Service elsewhere by hand (default: at pods of somebody else's)."""
        self.core.patch_namespaced_service(
            "test",
            self.ns,
            [{"op": "replace", "path": "/spec/selector", "value": selector or {"app": "somebody-else"}}],
        )

    def service_version(self):
        return self.service().metadata.resource_version


# Each BCS test app gets its own servicePort (the load balancer listens on servicePort +
# the worker's offset, one port per servicePort), from a band no other test uses.
_SERVICE_PORTS = itertools.count(300)


class MesosApp(TestApp):
    platform = "bcs-mesos"

    def __init__(self, tmp_path, namespace, sandbox, **fields):
        self.sandbox = sandbox
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(sandbox.ca_file)
        self.http.headers.update({"Authorization": f"Bearer {sandbox.token}", "BCS-ClusterID": sandbox.bcs_cluster_id})
        self.service_port = next(_SERVICE_PORTS)
        assert self.service_port < 1000, "out of test service ports"
        self.lb_port = self.service_port + sandbox.lb_port_offset
        super().__init__(tmp_path, namespace, **fields)
        svc = self.path.parent / self.ns / "test-svc.json"
        svc.write_text(svc.read_text().replace('"servicePort": 8080', f'"servicePort": {self.service_port}'))
        self.reload()

    def defaults(self):
        return {"poll_interval": "0.3s", "http_check": {"url": f"http://127.0.0.1:{self.lb_port}/", "timeout": "5s"}}

    def manifest_path(self, color):
        return self.path.parent / self.ns / f"test-{color}.json"

    def _storage(self, kind, **filters):
        storage = f"{self.sandbox.bcs_url}/bcsapi/v4/storage/query/mesos/dynamic"
        url = f"{storage}/clusters/{self.sandbox.bcs_cluster_id}/{kind}"
        body = self.http.post(url, json={"namespace": self.ns, **filters}, timeout=10).json()
        assert body["code"] == 0, body
        return [r["data"] for r in body["data"]]

    def service(self):
        found = self._storage("service", name="test")
        return found[0] if found else None

    def selector(self):
        svc = self.service()
        return svc["spec"]["selector"] if svc else None

    def annotations(self):
        return dict(self.service()["metadata"].get("annotations") or {})

    def service_url(self):
        return f"http://127.0.0.1:{self.lb_port}/"

    def deployments(self):
        out = {}
        for d in self._storage("deployment"):
            out[d["metadata"]["name"]] = d["raw_json"]["spec"]["template"]["spec"]["containers"][0]["image"]
        return out

    def members(self, color):
        return self._storage("taskgroup", rcName=f"test-{color}")

    def member_name(self, color) -> str:
        """A running member (taskgroup) of the color, by its ID (the sandbox's control endpoint knows it so)."""
        return next(t["metadata"]["name"] for t in self.members(color) if t.get("status") == "Running")

    def break_selector(self, selector=None):
        """Point the Service elsewhere by hand (default: at taskgroups of somebody else's)."""
        selector = selector or {"appname": "somebody-else"}
        svc = self.service()
        svc["spec"]["selector"] = selector
        url = f"{self.sandbox.bcs_url}/bcsapi/v4/scheduler/mesos/namespaces/{self.ns}/services"
        assert self.http.put(url, data=json.dumps(svc), timeout=10).json()["code"] == 0
        import time

        deadline = time.monotonic() + 10
        while self.selector() != selector and time.monotonic() < deadline:
            time.sleep(0.1)

    def service_version(self):
        return json.dumps(self.service(), sort_keys=True)
