"""``python -m benchmarks readiness`` (the first ``make bench``): readiness by watch (what the sensors do)
against polling, side by side.

On one sandbox, the same deployment (3 replicas, ready BENCH_READY_AFTER=13 s after they start) is created
in separate namespaces at the same moment; one is awaited through the Kubernetes adapter's
watch, the others by polling ``observe()`` every 1 s and every 5 s.  Printed: how long
after its creation each method saw the deployment ready, how many API requests it cost,
and the ratios.  Repeated a few rounds; medians reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
READY_AFTER = float(os.environ.get("BENCH_READY_AFTER", "13"))


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bluegreen-bench-"))
    from conftest import SandboxProcess  # the same launcher the tests use

    state = Path(tempfile.mkdtemp(prefix="bluegreen-bench-sandbox-")) / "state"
    proc = SandboxProcess(state, index=7, ready_after=READY_AFTER)
    endpoints = proc.start()
    os.environ.update(endpoints.environment())
    try:
        results = [asyncio.run(one_round(endpoints, r)) for r in range(ROUNDS)]
    finally:
        proc.stop()
    report(results)


async def one_round(endpoints, round_no: int) -> dict:
    import kubernetes

    from bluegreen.apps import manifests as mf
    from bluegreen.apps.config import load_app
    from bluegreen.platforms.kubernetes import KubernetesPlatform

    api = kubernetes.config.new_client_from_config(config_file=str(endpoints.kubeconfig))
    core = kubernetes.client.CoreV1Api(api)
    methods = {"watch": None, "poll 1s": 1.0, "poll 5s": 5.0}
    platforms = {}
    for name in methods:
        ns = f"bench-{round_no}-{name.replace(' ', '-')}"
        core.create_namespace({"metadata": {"name": ns}})
        app = load_app(ROOT / "dags" / "apps" / "test.yaml")
        app = type(app).from_json({**app.to_json(), "namespace": ns})
        platforms[name] = KubernetesPlatform(app)
    control = requests.Session()
    control.headers["Authorization"] = f"Bearer {endpoints.token}"
    control.post(f"{endpoints.control_url}/requests/reset", timeout=10).raise_for_status()

    async def await_ready(name: str, platform, interval):
        created = time.monotonic()
        manifest = mf.with_release("kubernetes", platform.app.manifests["green"], "registry.local/test:bench", 3, None)
        await asyncio.to_thread(platform.apply_color, "green", manifest)
        if interval is None:
            async for status in platform.watch("green"):
                if status.complete:
                    break
        else:
            while not (await asyncio.to_thread(platform.observe, "green")).complete:
                await asyncio.sleep(interval)
        return name, time.monotonic() - created

    seen = dict(await asyncio.gather(*(await_ready(n, platforms[n], i) for n, i in methods.items())))
    counts = control.get(f"{endpoints.control_url}/requests", timeout=10).json()["requests"]
    requests_by = {
        name: sum(
            r["count"]
            for r in counts
            if f"/namespaces/{platforms[name].app.namespace}/" in r["path"]
            and not (r["method"] == "POST" and r["path"].endswith("/deployments"))
        )
        for name in methods
    }
    return {"seen": seen, "requests": requests_by}


def report(results: list[dict]) -> None:
    methods = list(results[0]["seen"])
    print(
        f"readiness of a 3-replica deployment whose pods are ready {READY_AFTER:g}s after they start "
        f"({len(results)} rounds, medians)"
    )
    print(f"{'method':<10} {'seen ready after':>18} {'API requests':>13}")
    med = {}
    for m in methods:
        seen = statistics.median(r["seen"][m] for r in results)
        reqs = statistics.median(r["requests"][m] for r in results)
        med[m] = (seen, reqs)
        print(f"{m:<10} {seen:>17.2f}s {reqs:>13.0f}")
    watch_seen, watch_reqs = med["watch"]
    for m in methods:
        if m == "watch":
            continue
        seen, reqs = med[m]
        print(f"{m} vs watch: {reqs / max(watch_reqs, 1):.1f}x the requests, seen {seen - watch_seen:+.2f}s later")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
