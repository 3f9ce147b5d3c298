"""The Releases page's load time with many apps (issue 14: under 1 s for 50), through the real
api-server, against the sandbox.

``python -m benchmarks releases_page`` starts a sandbox and the Airflow services (as ``make bench``
does), writes N app configs (``PAGE_BENCH_N``, 50: four in five on Kubernetes, the rest on BCS
Mesos), creates each app's live color and its Service directly on the sandbox (blue live, the
Service with a release history of ``history_limit`` entries and its release record, as a released
app has), waits until Airflow serves their DAGs (the page shows the apps whose DAG the user may
read), logs in, and times ``GET /bluegreen/releases/``: the first load (the platform clients built
for the first time) and ``PAGE_BENCH_REPEATS`` (10) loads after it; per load, the time to the last
byte as a browser's request sees it.  Each load reads every app's Service and both colors from the
sandbox (about five API requests an app) and the last runs from the metadata DB.

:func:`run_page_benchmark` takes a running stack; the services test smokes it with 3 apps.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
# BCS servicePorts 10-79 (the sandbox's load balancer block: tests/conftest.py LB_PORT_OFFSET)
BCS_PORT_BASE, BCS_PORT_COUNT = 10, 70


@dataclass
class PageBenchConfig:
    n: int = 50
    repeats: int = 10
    prefix: str = "pagebench"
    bcs_share: float = 0.2


def _history(n: int) -> str:
    entries = []
    for i in range(n):
        entries.append(
            {
                "run_id": f"manual__2026-11-{i + 1:02d}T02:00:00",
                "from": "green" if i % 2 == 0 else "blue",
                "from_image": f"registry.local/test:v{i}",
                "to": "blue" if i % 2 == 0 else "green",
                "image": f"registry.local/test:v{i + 1}",
                "outcome": "released" if i % 4 else "rolled back: soak: 2 unhealthy observations",
                "at": f"2026-11-{i + 1:02d}T02:10:00.000Z",
            }
        )
    return json.dumps(entries, separators=(",", ":"))


def create_apps(services, endpoints, cfg: PageBenchConfig, echo=print) -> list[str]:
    """N apps, released once (blue live): configs in the services' apps dir, objects on the sandbox."""
    import kubernetes
    import yaml
    from e2e.harness import write_app
    from kubernetes import client
    from kubernetes.client import ApiException

    from .procedure import Bcs, bcs_manifest, bcs_service, k8s_manifest

    kube = kubernetes.config.new_client_from_config(config_file=str(endpoints.kubeconfig))
    core, apps_api = client.CoreV1Api(kube), client.AppsV1Api(kube)
    bcs = Bcs(endpoints.bcs_url, endpoints.token, endpoints.bcs_cluster_id, str(endpoints.ca_file))
    annotations = {
        "bluegreen.io/history": _history(10),
        "bluegreen.io/release": json.dumps(
            {"run_id": "manual__2026-11-10T02:00:00", "from": "green", "to": "blue", "state": "complete"}
        ),
    }
    image = "registry.local/test:v10"
    names = []
    n_bcs = round(cfg.n * cfg.bcs_share)
    if n_bcs > BCS_PORT_COUNT:
        raise ValueError(f"PAGE_BENCH_N={cfg.n}: {n_bcs} BCS apps, more than the {BCS_PORT_COUNT} servicePorts it has")
    for i in range(cfg.n):
        platform = "bcs-mesos" if i < n_bcs else "kubernetes"
        name = f"{cfg.prefix}-{'m' if platform == 'bcs-mesos' else 'k'}{i}"
        fields: dict[str, Any] = {"namespace": name, "replicas": 2}
        if platform == "kubernetes":
            try:
                core.create_namespace({"metadata": {"name": name}})
            except ApiException as e:
                if e.status != 409:
                    raise
            apps_api.create_namespaced_deployment(name, yaml.safe_load(k8s_manifest("blue", image, 2)))
            svc = yaml.safe_load((ROOT / "dags/apps/test/kubernetes/test-svc.yaml").read_text())
            svc["metadata"]["annotations"] = annotations
            core.create_namespaced_service(name, svc)
        else:
            port = BCS_PORT_BASE + i
            bcs.create("deployment", bcs_manifest("blue", name, image, 2))
            svc = bcs_service(name, port, "blue")
            svc["metadata"].setdefault("annotations", {}).update(annotations)
            bcs.create("service", svc)
        path = write_app(Path(services.apps_dir), name, platform, **fields)
        if platform == "bcs-mesos":
            manifest = Path(services.apps_dir) / name / "test-svc.json"
            manifest.write_text(manifest.read_text().replace('"servicePort": 8080', f'"servicePort": {port}'))
            path.touch()
        names.append(name)
    started = time.monotonic()
    for name in names:
        services.rest.wait_for_dag(services.dag_id(name), timeout=180)
    echo(f"page bench: {len(names)} apps created, their DAGs served {time.monotonic() - started:.1f}s after")
    return names


def load_page(url: str, token: str, timeout: float = 60) -> tuple[float, str]:
    session = requests.Session()
    session.trust_env = False
    session.cookies.set("_token", token)  # the UI's session cookie, as a logged-in browser sends it
    started = time.perf_counter()
    resp = session.get(f"{url}/bluegreen/releases/", params={"refresh": 0}, timeout=timeout)
    seconds = time.perf_counter() - started
    resp.raise_for_status()
    return seconds, resp.text


def run_page_benchmark(services, endpoints, cfg: PageBenchConfig, echo=print) -> dict:
    names = create_apps(services, endpoints, cfg, echo)
    token = services.rest.login()
    cold, text = load_page(services.url, token)
    shown = [n for n in names if f'data-app="{n}"' in text]
    errors = text.count('data-field="cluster-error"')
    times = [load_page(services.url, token)[0] for _ in range(cfg.repeats)]
    times.sort()
    result = {
        "apps": len(names),
        "shown": len(shown),
        "cluster_errors": errors,
        "cold": cold,
        "median": statistics.median(times),
        "p90": times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))],
        "max": times[-1],
        "repeats": len(times),
    }
    result["line"] = (
        f"releases page: {result['apps']} apps, first load {cold:.3f}s, then median {result['median']:.3f}s, "
        f"p90 {result['p90']:.3f}s, max {result['max']:.3f}s over {len(times)} loads"
    )
    return result


def main(slot: int) -> None:
    import os
    import sys
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bluegreen-pagebench-"))
    from conftest import SandboxProcess  # the launcher the tests use
    from services.conftest import running_services

    cfg = PageBenchConfig(
        n=int(os.environ.get("PAGE_BENCH_N", "50")), repeats=int(os.environ.get("PAGE_BENCH_REPEATS", "10"))
    )
    base = Path(tempfile.mkdtemp(prefix="bluegreen-pagebench-stack-"))
    sandbox = SandboxProcess(base / "sandbox" / "state", index=slot)
    endpoints = sandbox.start()
    try:
        with running_services(base / "airflow", endpoints.environment()) as services:
            result = run_page_benchmark(services, endpoints, cfg)
    finally:
        sandbox.stop()
    print(json.dumps({k: v for k, v in result.items() if k != "line"}, indent=1))
    print(result["line"])
