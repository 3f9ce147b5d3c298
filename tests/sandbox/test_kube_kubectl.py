"""The seed's own kubectl commands on the seed's manifests, with the real kubectl (v1.37)
against the sandbox: apply (create, then a changed manifest as a patch), rollout status,
the blue-green selector switch with traffic through the NodePort before and after,
delete, and kubectl's strict field validation."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests
from kubernetes import client
from polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
SEED = Path(__file__).resolve().parent / "seed"


@pytest.fixture
def kubectl(sandbox, ns):
    def run(*args: str, check: bool = True, stdin: str | None = None, timeout: float = 60):
        proc = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(sandbox.kubeconfig), "-n", ns, *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    return run


def get_json(kubectl, *what: str) -> dict:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def served_by(port: int) -> str:
    """Which deployment answers a request through 127.0.0.1:port."""
    return requests.get(f"http://127.0.0.1:{port}/", timeout=5).json()["deployment"]


def test_kubectl_is_happy_with_discovery(kubectl):
    resources = kubectl("api-resources", "-o", "name").stdout.split()
    assert {
        "deployments.apps",
        "services",
        "pods",
        "replicasets.apps",
        "namespaces",
        "endpointslices.discovery.k8s.io",
    } <= set(resources)
    version = kubectl("version", "-o", "json").stdout
    assert json.loads(version)["serverVersion"]["minor"] == "37"


def test_seed_blue_green_release_with_kubectl(kubectl, ns, tmp_path):
    """test-blue up, service on it, test-green up, selector switched by applying the
    changed service file, traffic flips; then blue goes with kubectl delete."""
    assert "deployment.apps/test-blue created" in kubectl("apply", "-f", str(SEED / "test-blue.yaml")).stdout
    assert "service/test created" in kubectl("apply", "-f", str(SEED / "test-svc.yaml")).stdout
    out = kubectl("rollout", "status", "deployment/test-blue", "--timeout=30s").stdout
    assert 'deployment "test-blue" successfully rolled out' in out

    svc = get_json(kubectl, "service", "test")
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["selector"] == {"app": "test-blue"}
    assert {served_by(node_port) for _ in range(6)} == {"test-blue"}
    # the cluster IP answers on the service port too
    cluster_ip = svc["spec"]["clusterIP"]
    assert requests.get(f"http://{cluster_ip}:18001/", timeout=5).json()["deployment"] == "test-blue"

    assert "deployment.apps/test-green created" in kubectl("apply", "-f", str(SEED / "test-green.yaml")).stdout
    kubectl("rollout", "status", "deployment/test-green", "--timeout=30s")
    assert {served_by(node_port) for _ in range(6)} == {"test-blue"}

    green_svc = tmp_path / "test-svc.yaml"
    green_svc.write_text((SEED / "test-svc.yaml").read_text().replace("app: test-blue", "app: test-green"))
    assert "service/test configured" in kubectl("apply", "-f", str(green_svc)).stdout
    switched = get_json(kubectl, "service", "test")
    assert switched["spec"]["selector"] == {"app": "test-green"}
    assert switched["spec"]["ports"][0]["nodePort"] == node_port
    assert switched["spec"]["clusterIP"] == cluster_ip
    # the endpoints follow at once; kube-proxy (the node port) once it has applied the change
    ep = get_json(kubectl, "endpoints", "test")
    wait_for(lambda: {served_by(node_port) for _ in range(6)} == {"test-green"}, timeout=5)

    green_pods = {p["metadata"]["name"] for p in get_json(kubectl, "pods", "-l", "app=test-green")["items"]}
    assert {a["targetRef"]["name"] for a in ep["subsets"][0]["addresses"]} == green_pods

    assert 'deployment.apps "test-blue" deleted' in kubectl("delete", "deployment", "test-blue").stdout
    wait_for(lambda: not get_json(kubectl, "pods", "-l", "app=test-blue")["items"])
    assert get_json(kubectl, "replicasets", "-l", "app=test-blue")["items"] == []
    assert {served_by(node_port) for _ in range(3)} == {"test-green"}


def test_reapply_of_a_changed_manifest_patches(kubectl, tmp_path):
    kubectl("apply", "-f", str(SEED / "test-blue.yaml"))
    first = get_json(kubectl, "deployment", "test-blue")
    changed = tmp_path / "test-blue.yaml"
    changed.write_text(
        (SEED / "test-blue.yaml").read_text().replace("replicas: 3", "replicas: 2").replace(":blue", ":blue-v2")
    )
    assert "deployment.apps/test-blue configured" in kubectl("apply", "-f", str(changed)).stdout
    second = get_json(kubectl, "deployment", "test-blue")
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["spec"]["replicas"] == 2 and second["metadata"]["generation"] == first["metadata"]["generation"] + 1
    container = second["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "hub.docker.com:xxxx/xxxxxx:blue-v2"
    assert container["ports"] == [{"containerPort": 8000, "protocol": "TCP"}]
    assert second["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "docker-secret"}]
    assert "unchanged" in kubectl("apply", "-f", str(changed)).stdout
    kubectl("rollout", "status", "deployment/test-blue", "--timeout=30s")
    rs = get_json(kubectl, "replicasets", "-l", "app=test-blue")["items"]
    assert sorted(r["spec"]["replicas"] for r in rs) == [0, 2]
    assert 'deployment.apps "test-blue" deleted' in kubectl("delete", "-f", str(changed)).stdout
    assert "NotFound" in kubectl("get", "deployment", "test-blue", check=False).stderr


def test_kubectl_apply_is_strict_about_unknown_fields(kubectl, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((SEED / "test-blue.yaml").read_text().replace("  replicas: 3", "  replicas: 3\n  replica: 4"))
    proc = kubectl("apply", "-f", str(bad), check=False)
    assert proc.returncode != 0
    assert (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replica"'
    ) in proc.stderr
    assert "NotFound" in kubectl("get", "deployment", "test-blue", check=False).stderr
    warned = kubectl("apply", "--validate=warn", "-f", str(bad))
    assert 'unknown field "spec.replica"' in warned.stderr
    assert get_json(kubectl, "deployment", "test-blue")["spec"]["replicas"] == 3


def test_rollout_status_fails_past_the_progress_deadline(kubectl):
    manifest = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 2
  progressDeadlineSeconds: 2
  selector:
    matchLabels: {app: stuck}
  template:
    metadata:
      labels: {app: stuck}
    spec:
      containers:
      - name: web
        image: shop/web:never-ready
"""
    kubectl("apply", "-f", "-", stdin=manifest)
    started = time.monotonic()
    proc = kubectl("rollout", "status", "deployment/stuck", "--timeout=30s", check=False)
    assert proc.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in proc.stderr
    assert time.monotonic() - started < 10
    cond = {c["type"]: c for c in get_json(kubectl, "deployment", "stuck")["status"]["conditions"]}
    assert (cond["Progressing"]["status"], cond["Progressing"]["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert (cond["Available"]["status"], cond["Available"]["reason"]) == ("False", "MinimumReplicasUnavailable")


def test_kubectl_create_scale_and_delete_namespace(sandbox, unique_name, api):
    base = [str(KUBECTL), "--kubeconfig", str(sandbox.kubeconfig)]
    name = unique_name + "-x"
    out = subprocess.run(base + ["create", "namespace", name], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    subprocess.run(
        base + ["-n", name, "apply", "-f", str(SEED / "test-blue.yaml")], check=True, timeout=30, capture_output=True
    )
    out = subprocess.run(
        base + ["-n", name, "scale", "deployment/test-blue", "--replicas=1"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "scaled" in out.stdout, out.stderr
    assert client.AppsV1Api(api).read_namespaced_deployment("test-blue", name).spec.replicas == 1
    out = subprocess.run(base + ["delete", "namespace", name], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and f'namespace "{name}" deleted' in out.stdout, out.stderr
    assert name not in {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}


def test_server_side_dry_run_and_printed_columns(kubectl):
    out = kubectl("apply", "--dry-run=server", "-f", str(SEED / "test-blue.yaml")).stdout
    assert "deployment.apps/test-blue created (server dry run)" in out
    assert "NotFound" in kubectl("get", "deployment", "test-blue", check=False).stderr
    kubectl("apply", "-f", str(SEED / "test-blue.yaml"), "-f", str(SEED / "test-svc.yaml"))
    kubectl("rollout", "status", "deployment/test-blue", "--timeout=30s")
    # kubectl asks for a server-side Table and prints its columns
    lines = kubectl("get", "deployment", "test-blue").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["test-blue", "3/3", "3", "3"]
    pods = kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert pods[0].split()[:6] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"]
    assert all(line.split()[1:3] == ["1/1", "Running"] for line in pods[1:]) and len(pods) == 4
    svc = kubectl("get", "service", "test").stdout.splitlines()[1].split()
    assert svc[1] == "NodePort" and svc[4].startswith("18001:") and svc[4].endswith("/TCP")
    kubectl("delete", "deployment", "test-blue", "--dry-run=server")
    still = get_json(kubectl, "deployment", "test-blue")
    assert "deletionTimestamp" not in still["metadata"] and still["spec"]["replicas"] == 3


def test_rollout_pause_and_resume(kubectl):
    kubectl("apply", "-f", str(SEED / "test-blue.yaml"))
    kubectl("rollout", "status", "deployment/test-blue", "--timeout=30s")
    kubectl("rollout", "pause", "deployment/test-blue")
    kubectl("set", "image", "deployment/test-blue", "test-blue=hub.docker.com:xxxx/xxxxxx:blue-v2")
    time.sleep(0.3)
    assert len(get_json(kubectl, "replicasets")["items"]) == 1  # paused: no new ReplicaSet
    progressing = {c["type"]: c for c in get_json(kubectl, "deployment", "test-blue")["status"]["conditions"]}
    assert (progressing["Progressing"]["status"], progressing["Progressing"]["reason"]) == (
        "Unknown",
        "DeploymentPaused",
    )
    kubectl("rollout", "resume", "deployment/test-blue")
    assert "successfully rolled out" in kubectl("rollout", "status", "deployment/test-blue", "--timeout=30s").stdout
    images = {
        r["spec"]["template"]["spec"]["containers"][0]["image"]: r["spec"]["replicas"]
        for r in get_json(kubectl, "replicasets")["items"]
    }
    assert images == {"hub.docker.com:xxxx/xxxxxx:blue": 0, "hub.docker.com:xxxx/xxxxxx:blue-v2": 3}
