"""One chaos run's app: its config (written like tests/e2e/harness.write_app writes the seed's),
and the cluster as the chaos sees it, through clients that are not bluegreen's:

  reads        the official kubernetes client / plain requests to bcs-storage (User-Agent
               ``chaos-checker``): a bug in bluegreen's adapters cannot hide itself here
  a person     the real kubectl (Kubernetes) or raw BCS scheduler calls (User-Agent
               ``bcs-client/chaos``): scale a color, switch the selector, delete a color
  cleanup      the run's namespace (Kubernetes) or objects (BCS) go after the run

Each run has its own namespace and its own images (``registry.local/c<seed>/test:v1``...), so
that runs can share one sandbox: faults are scoped to the namespace, pods are told apart by image.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .env import BCS_CONN, K8S_CONN, ROOT, importable

KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
CHECKER_AGENT = "chaos-checker/1.0"
PERSON_AGENT = "bcs-client/chaos-person"
CLEANUP_AGENT = "chaos-cleanup/1.0"
# BCS servicePorts of chaos runs (the load balancer listens on servicePort + the sandbox's offset);
# tests/e2e's MesosApp uses 300-999.
BCS_PORT_BASE, BCS_PORT_COUNT = 1000, 1000

_kube_clients: dict[tuple[str, str], object] = {}
_kube_lock = threading.Lock()


def kube_client(kubeconfig: Path, agent: str):
    """One official kubernetes ApiClient per kubeconfig and User-Agent (thread-safe to share)."""
    import kubernetes

    key = (str(kubeconfig), agent)
    with _kube_lock:
        if key not in _kube_clients:
            api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
            api.user_agent = agent
            _kube_clients[key] = api
        return _kube_clients[key]


class PersonError(Exception):
    """A person's command kept failing (the API's injected faults hit people too)."""


@dataclass
class ChaosApp:
    seed: int
    platform: str
    endpoints: object
    directory: Path
    fields: dict = field(default_factory=dict)

    def __post_init__(self):
        importable()
        from e2e.harness import write_app

        from bluegreen.apps.config import load_app

        self.name = f"c{self.seed}"
        self.namespace = f"chaos-{self.seed}"
        repo = f"registry.local/c{self.seed}/test"
        self.image_prefix = repo + ":"
        self.images = {"v1": f"{repo}:v1", "v2": f"{repo}:v2", "v3": f"{repo}:v3"}
        self.service_port = BCS_PORT_BASE + self.seed % BCS_PORT_COUNT
        fields = dict(self.fields)
        if self.platform == "kubernetes":
            fields.update(connection_id=K8S_CONN, http_check={"url": "http://127.0.0.1:{node_port}/", "timeout": "2s"})
        else:
            self.lb_port = self.service_port + self.endpoints.lb_port_offset
            fields.update(
                connection_id=BCS_CONN, http_check={"url": f"http://127.0.0.1:{self.lb_port}/", "timeout": "2s"}
            )
        self.path = write_app(self.directory, self.name, self.platform, namespace=self.namespace, **fields)
        if self.platform == "bcs-mesos":
            svc = self.path.parent / self.name / "test-svc.json"
            svc.write_text(svc.read_text().replace('"servicePort": 8080', f'"servicePort": {self.service_port}'))
        self.app = load_app(self.path)
        self.http = requests.Session()
        self.http.trust_env = False
        if self.platform == "bcs-mesos":
            self.http.verify = str(self.endpoints.ca_file)
            self.http.headers.update(
                {
                    "Authorization": f"Bearer {self.endpoints.token}",
                    "BCS-ClusterID": self.endpoints.bcs_cluster_id,
                    "User-Agent": CHECKER_AGENT,
                }
            )

    # -- names ----------------------------------------------------------------------------------
    @property
    def service(self) -> str:
        return self.app.service

    def workload(self, color: str) -> str:
        return self.app.deployment_name(color)

    def selector_for(self, color: str) -> dict:
        return self.app.selector_for(color)

    def color_of(self, selector: dict | None) -> str | None:
        try:
            return self.app.color_of(selector or {})
        except Exception:  # matches both: neither is "the" color
            return None

    @property
    def api(self) -> str:
        return "kube" if self.platform == "kubernetes" else "bcs"

    # -- set-up and clean-up --------------------------------------------------------------------
    def create_namespace(self) -> None:
        if self.platform == "kubernetes":
            from kubernetes import client

            client.CoreV1Api(kube_client(self.endpoints.kubeconfig, CHECKER_AGENT)).create_namespace(
                {"metadata": {"name": self.namespace}}
            )

    def cleanup(self) -> None:
        """Remove what the run left (best effort: the sandbox is shared by the runs after it), and its
        config (an Airflow run's DAG goes with it)."""
        self.path.unlink(missing_ok=True)
        try:
            if self.platform == "kubernetes":
                from kubernetes import client

                client.CoreV1Api(kube_client(self.endpoints.kubeconfig, CLEANUP_AGENT)).delete_namespace(
                    self.namespace, _request_timeout=10
                )
                return
            headers = {"User-Agent": CLEANUP_AGENT}
            base = f"{self.endpoints.bcs_url}/bcsapi/v4/scheduler/mesos/namespaces/{self.namespace}"
            for color in ("blue", "green"):
                self.http.delete(
                    f"{base}/deployments/{self.workload(color)}",
                    params={"enforce": "1"},
                    headers=headers,
                    timeout=10,
                    verify=self.http.verify,
                )
            self.http.delete(f"{base}/services/{self.service}", headers=headers, timeout=10, verify=self.http.verify)
            for cm in self._storage("configmap"):
                self.http.delete(
                    f"{base}/configmaps/{cm['metadata']['name']}", headers=headers, timeout=10, verify=self.http.verify
                )
        except Exception:  # noqa: BLE001 - cleanup never fails a run
            pass

    # -- reads (not bluegreen's code) -------------------------------------------------------------
    def _core(self, agent: str = CHECKER_AGENT):
        from kubernetes import client

        return client.CoreV1Api(kube_client(self.endpoints.kubeconfig, agent))

    def _apps(self, agent: str = CHECKER_AGENT):
        from kubernetes import client

        return client.AppsV1Api(kube_client(self.endpoints.kubeconfig, agent))

    def _storage(self, kind: str, **filters) -> list[dict]:
        url = (
            f"{self.endpoints.bcs_url}/bcsapi/v4/storage/query/mesos/dynamic/clusters/"
            f"{self.endpoints.bcs_cluster_id}/{kind}"
        )
        body = self.http.post(
            url, json={"namespace": self.namespace, **filters}, timeout=10, verify=self.http.verify
        ).json()
        if body.get("code") != 0:
            raise RuntimeError(f"bcs-storage {kind}: {body}")
        return [r["data"] for r in body.get("data") or []]

    def read_service(self) -> dict | None:
        """{"selector", "annotations", "node_port"} of the app's Service, or None."""
        if self.platform == "kubernetes":
            from kubernetes.client import ApiException

            try:
                svc = self._core().read_namespaced_service(self.service, self.namespace, _request_timeout=10)
            except ApiException as e:
                if e.status == 404:
                    return None
                raise
            return {
                "selector": dict(svc.spec.selector or {}),
                "annotations": dict(svc.metadata.annotations or {}),
                "node_port": svc.spec.ports[0].node_port,
            }
        found = [s for s in self._storage("service", name=self.service)]
        if not found:
            return None
        return {
            "selector": dict(found[0]["spec"].get("selector") or {}),
            "annotations": dict(found[0]["metadata"].get("annotations") or {}),
            "node_port": None,
        }

    def read_workloads(self) -> dict[str, dict]:
        """Each workload of the namespace: {image, replicas, complete}.  Complete: kubectl rollout
        status's rule (Kubernetes); deployment and application Running with every instance
        running (BCS)."""
        out = {}
        if self.platform == "kubernetes":
            for d in self._apps().list_namespaced_deployment(self.namespace, _request_timeout=10).items:
                st, replicas = d.status, d.spec.replicas
                complete = (
                    not d.metadata.deletion_timestamp
                    and (d.status.observed_generation or 0) >= (d.metadata.generation or 0)
                    and (st.updated_replicas or 0) == replicas
                    and (st.replicas or 0) == replicas
                    and (st.available_replicas or 0) == replicas
                    and (st.ready_replicas or 0) == replicas
                )
                out[d.metadata.name] = {
                    "image": d.spec.template.spec.containers[0].image,
                    "replicas": replicas,
                    "complete": bool(complete),
                }
            return out
        apps = {a["metadata"]["name"]: a for a in self._storage("application")}
        for d in self._storage("deployment"):
            name = d["metadata"]["name"]
            app = apps.get((d.get("application") or {}).get("name") or name) or {}
            replicas = int(app.get("instance") or 0)
            complete = (
                d.get("status") == "Running"
                and app.get("status") == "Running"
                and int(app.get("runningInstance") or 0) == replicas
                and replicas > 0
            )
            out[name] = {
                "image": d["raw_json"]["spec"]["template"]["spec"]["containers"][0]["image"],
                "replicas": replicas,
                "complete": complete,
            }
        return out

    def traffic_url(self) -> str:
        if self.platform == "kubernetes":
            svc = self.read_service()
            return f"http://127.0.0.1:{svc['node_port']}/"
        return f"http://127.0.0.1:{self.lb_port}/"

    # -- a person ---------------------------------------------------------------------------------
    def _kubectl(self, *args: str) -> str:
        home = self.directory / ".person"  # kubectl's discovery cache goes here, not into the checkout
        home.mkdir(exist_ok=True)
        proc = subprocess.run(
            [str(KUBECTL), "--request-timeout=3s", "-n", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=home,
            env={"KUBECONFIG": str(self.endpoints.kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(home)},
        )
        if proc.returncode != 0:
            raise PersonError(f"kubectl {' '.join(args)}: {proc.stderr.strip()[:300]}")
        return proc.stdout

    def _bcs(self, method: str, path: str, **kwargs):
        url = f"{self.endpoints.bcs_url}/bcsapi/v4/scheduler/mesos{path}"
        resp = self.http.request(
            method, url, headers={"User-Agent": PERSON_AGENT}, timeout=3, verify=self.http.verify, **kwargs
        )
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not isinstance(body, dict) or body.get("code") != 0:
            raise PersonError(f"BCS {method} {path}: HTTP {resp.status_code} {resp.text[:300]}")
        return body.get("data")

    def person(self, action: str, color: str, replicas: int | None = None, attempts: int = 6) -> str:
        """A person's command, typed again (a moment later) when the API fails it, as people do."""
        last = None
        for _ in range(attempts):
            try:
                return self._person_once(action, color, replicas)
            except (PersonError, requests.RequestException, ValueError, subprocess.TimeoutExpired) as e:
                last = e
                time.sleep(0.5)
        raise PersonError(f"gave up after {attempts} attempts: {last}")

    def _person_once(self, action: str, color: str, replicas: int | None) -> str:
        ns, name = self.namespace, self.workload(color)
        if self.platform == "kubernetes":
            if action == "scale":
                return self._kubectl("scale", "deployment", name, f"--replicas={replicas}")
            if action == "switch":
                patch = json.dumps([{"op": "replace", "path": "/spec/selector", "value": self.selector_for(color)}])
                return self._kubectl("patch", "service", self.service, "--type=json", "-p", patch)
            if action == "delete":
                return self._kubectl("delete", "deployment", name, "--wait=false", "--ignore-not-found")
            raise ValueError(action)
        if action == "scale":
            return json.dumps(self._bcs("PUT", f"/namespaces/{ns}/deployments/{name}/scale/{int(replicas)}"))
        if action == "switch":
            found = self._storage("service", name=self.service)
            if not found:
                raise PersonError("no service to switch")
            svc = found[0]
            svc["spec"]["selector"] = self.selector_for(color)
            return json.dumps(self._bcs("PUT", f"/namespaces/{ns}/services", data=json.dumps(svc)))
        if action == "delete":
            try:
                return json.dumps(self._bcs("DELETE", f"/namespaces/{ns}/deployments/{name}", params={"enforce": "0"}))
            except PersonError as e:
                if "1405202" in str(e):  # not found: nothing to delete
                    return "not found"
                raise
        raise ValueError(action)
