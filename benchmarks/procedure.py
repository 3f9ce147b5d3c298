"""The seed's own blue-green procedure (shared/docs/bcs-blue-green.md), as a person's script: the
yardstick the release DAGs are compared with.

Kubernetes (``kubectl.sh``, the real kubectl in the venv against the sandbox's kubeconfig)::

    kubectl apply -f <new color>.yaml            # the new color, its image and replicas set
    kubectl rollout status deployment/<new color>
    kubectl patch service test -p '{"spec":{"selector":{"app":"<new color>"}}}'
    sleep <soak>
    kubectl delete deployment <old color>

BCS Mesos (``python -m benchmarks.procedure bcs ...``): the same steps as bcs-client's HTTP calls
(client/pkg/scheduler/v4 and client/pkg/storage/v1; shared/docs/bcs-mesos-api.md):
``bcs-client create -t deployment`` (POST), then ``bcs-client list -t taskgroup`` every 0.5 s until
every instance is Running with its health checks passed (what a person reads before the switch),
``bcs-client update -t service`` with the new selector (PUT), ``sleep <soak>``,
``bcs-client delete -t deployment`` of the old color.

Each script prints ``ready <seconds>`` (the new color's creation to seen ready) and
``done <seconds>``; a failing step fails the script.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
SEED_K8S = ROOT / "dags" / "apps" / "test" / "kubernetes"
SEED_BCS = ROOT / "dags" / "apps" / "test" / "bcs-mesos"

KUBECTL_SCRIPT = r"""#!/usr/bin/env bash
# The seed's blue-green release by hand: $1 namespace, $2 new color's manifest, $3 new color,
# $4 old color, $5 soak seconds.  KUBECTL and KUBECONFIG come from the environment.
set -euo pipefail
ns=$1 manifest=$2 new=$3 old=$4 soak=$5
start=$(date +%s%N)
since() { local now; now=$(date +%s%N); echo "$(( (now - start) / 1000000 ))e-3"; }
"$KUBECTL" -n "$ns" apply -f "$manifest" >/dev/null
"$KUBECTL" -n "$ns" rollout status "deployment/test-$new" --timeout=300s >/dev/null
echo "ready $(since)"
"$KUBECTL" -n "$ns" patch service test -p "{\"spec\":{\"selector\":{\"app\":\"test-$new\"}}}" >/dev/null
sleep "$soak"
"$KUBECTL" -n "$ns" delete deployment "test-$old" >/dev/null
echo "done $(since)"
"""


def k8s_manifest(color: str, image: str, replicas: int) -> str:
    doc = yaml.safe_load((SEED_K8S / f"test-{color}.yaml").read_text())
    doc["spec"]["replicas"] = replicas
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return yaml.safe_dump(doc, sort_keys=False)


def bcs_manifest(color: str, namespace: str, image: str, replicas: int) -> dict:
    doc = json.loads((SEED_BCS / f"test-{color}.json").read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["instance"] = replicas
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return doc


def bcs_service(namespace: str, service_port: int, color: str) -> dict:
    doc = json.loads((SEED_BCS / "test-svc.json").read_text())
    doc["metadata"]["namespace"] = namespace
    doc["spec"]["selector"] = {"appname": f"test-{color}"}
    doc["spec"]["ports"][0]["servicePort"] = service_port
    return doc


class Bcs:
    """What bcs-client sends (client/pkg/utils/api.go): JSON, ``Authorization: Bearer``,
    ``BCS-ClusterID``; TLS verified against the sandbox's CA."""

    MESOS = "/bcsapi/v4/scheduler/mesos"
    STORAGE = "/bcsapi/v4/storage"

    def __init__(self, url: str, token: str, cluster: str, ca_file: str):
        import requests

        self.url, self.cluster = url, cluster
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = ca_file
        self.http.headers.update(
            {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token}",
                "BCS-ClusterID": cluster,
                "User-Agent": "bcs-client/bench",
            }
        )

    def call(self, method: str, path: str, body=None) -> dict:
        reply = self.http.request(method, self.url + path, data=None if body is None else json.dumps(body), timeout=30)
        doc = reply.json()
        if reply.status_code != 200 or doc.get("code") != 0:
            raise RuntimeError(f"{method} {path}: {reply.status_code} {doc}")
        return doc

    def create(self, kind: str, obj: dict) -> None:
        self.call("POST", f"{self.MESOS}/namespaces/{obj['metadata']['namespace']}/{kind}s", obj)

    def update(self, kind: str, obj: dict) -> None:
        self.call("PUT", f"{self.MESOS}/namespaces/{obj['metadata']['namespace']}/{kind}s", obj)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.call("DELETE", f"{self.MESOS}/namespaces/{namespace}/{kind}s/{name}?enforce=0")

    def taskgroups(self, namespace: str, name: str) -> list[dict]:
        path = f"{self.STORAGE}/query/mesos/dynamic/clusters/{self.cluster}/taskgroup"
        return [d["data"] for d in self.call("POST", path, {"namespace": namespace, "rcName": name})["data"]]


def _go_time(value: str | None) -> float | None:
    """A Go time (RFC 3339, up to nanoseconds) as epoch seconds."""
    import re
    from datetime import datetime

    if not value or value.startswith("0001-"):
        return None
    value = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def bcs_all_healthy(taskgroups: list[dict], instances: int, grace: float, now: float) -> bool:
    """What a person reads in ``bcs-client list -t taskgroup``: every instance Running, every health
    check passed, and run: BCS reports ``result: true`` before the first check, which runs the
    check's ``gracePeriodSeconds`` after the container started."""
    if len(taskgroups) < instances:
        return False
    for tg in taskgroups:
        if tg.get("status") != "Running":
            return False
        for cs in tg.get("containerStatuses") or []:
            checks = cs.get("healCheckStatus") or []
            if not checks or not all(h.get("result") for h in checks):
                return False
            started = _go_time(cs.get("startTime")) or _go_time(tg.get("startTime"))
            if started is None or now - started < grace:
                return False
    return True


def bcs_release(args: list[str]) -> None:
    """``bcs <namespace> <new color> <old color> <image> <replicas> <service port> <soak>``; the
    sandbox's address from BENCH_BCS_URL, BENCH_BCS_TOKEN, BENCH_BCS_CLUSTER, BENCH_BCS_CA."""
    import os

    ns, new, old, image, replicas, port, soak = args
    bcs = Bcs(
        os.environ["BENCH_BCS_URL"],
        os.environ["BENCH_BCS_TOKEN"],
        os.environ["BENCH_BCS_CLUSTER"],
        os.environ["BENCH_BCS_CA"],
    )
    start = time.monotonic()
    manifest = bcs_manifest(new, ns, image, int(replicas))
    checks = manifest["spec"]["template"]["spec"]["containers"][0].get("healthChecks") or [{}]
    grace = float(checks[0].get("gracePeriodSeconds") or 0)
    bcs.create("deployment", manifest)
    deadline = start + 300
    while not bcs_all_healthy(bcs.taskgroups(ns, f"test-{new}"), int(replicas), grace, time.time()):
        if time.monotonic() > deadline:
            raise SystemExit(f"test-{new} in {ns} not healthy within 300 s")
        time.sleep(0.5)
    print(f"ready {time.monotonic() - start:.3f}", flush=True)
    bcs.update("service", bcs_service(ns, int(port), new))
    time.sleep(float(soak))
    bcs.delete("deployment", ns, f"test-{old}")
    print(f"done {time.monotonic() - start:.3f}", flush=True)


def run_all(commands: list[tuple[list[str], dict[str, str]]]) -> dict:
    """Start every command at the same moment; wait for all.  {"T", "durations", "ready", "failed"}."""
    start = time.monotonic()
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv, env in commands
    ]
    durations, ready, failed = [], [], []
    for (argv, _), proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=900)
        ended = time.monotonic() - start
        durations.append(ended)
        for line in out.splitlines():
            if line.startswith("ready "):
                ready.append(float(line.split()[1]))
        if proc.returncode != 0:
            failed.append(f"{' '.join(argv[:4])}... exited {proc.returncode}: {err[-500:]}")
    return {"T": max(durations) if durations else 0.0, "durations": durations, "ready": ready, "failed": failed}


if __name__ == "__main__":
    if sys.argv[1:2] == ["bcs"]:
        bcs_release(sys.argv[2:])
    else:
        raise SystemExit("usage: python -m benchmarks.procedure bcs <ns> <new> <old> <image> <replicas> <port> <soak>")
