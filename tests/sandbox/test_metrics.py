"""Pods' Prometheus metrics, the error-rate and latency behaviours, the scrape targets the sandbox
writes, and a real Prometheus scraping the sandbox through them (sandbox/prometheus.py)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest
import requests
from polling import wait_for
from prometheus_client.parser import text_string_to_metric_families
from test_bcs_client import bcs, deployment, ok  # noqa: F401

from sandbox.prometheus import PrometheusError, active_targets, instant_query, running_prometheus

# A port per test slot (tests/conftest.py's worker_index(): the xdist worker's number plus
# BLUEGREEN_TEST_SLOT_OFFSET; that conftest cannot be imported by name from here, the sandbox
# tests' own conftest shadows it), clear of a system Prometheus's 9090.
PROMETHEUS_PORT = (
    19090
    + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    + int(os.environ.get("BLUEGREEN_TEST_SLOT_OFFSET") or 0)
)


# -- helpers -----------------------------------------------------------------------------------


def deploy(apps, ns: str, name: str, image: str, replicas: int = 1) -> None:
    apps.create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": image, "ports": [{"containerPort": 8000, "name": "http"}]}
                        ]
                    },
                },
            },
        },
    )


def ready_pods(control, image: str, count: int = 1, timeout: float = 10) -> list[dict]:
    """The sandbox's pods of ``image`` once ``count`` of them are ready (control endpoint's view)."""
    return wait_for(
        lambda: (
            (found := [p for p in control.pods() if p["image"] == image and p["ready"]])
            and len(found) == count
            and found
        ),
        timeout=timeout,
        what=f"{count} ready pods of {image}",
    )


def url(pod: dict, path: str = "/") -> str:
    return f"http://{pod['host']}:{pod['port']}{path}"


def scrape(pod: dict) -> dict[tuple[str, frozenset], float]:
    """GET /metrics, parsed by prometheus_client's parser: {(sample name, labels): value}."""
    reply = requests.get(url(pod, "/metrics"), timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def requests_total(samples, code: str, method: str = "GET") -> float:
    return samples.get(("http_requests_total", frozenset({("code", code), ("method", method)})), 0)


def bucket(samples, le: str) -> float:
    return samples[("http_request_duration_seconds_bucket", frozenset({("le", le)}))]


def k8s_ready(core, ns: str, name: str) -> bool:
    pod = core.read_namespaced_pod(name, ns)
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def targets(sandbox) -> list[dict]:
    return json.loads(sandbox.prometheus_targets.read_text())


# -- /metrics ----------------------------------------------------------------------------------


def test_metrics_count_ordinary_requests_by_code_and_method(apps, control, ns):
    image = f"registry.local/{ns}:v1"
    deploy(apps, ns, "web", image)
    (pod,) = ready_pods(control, image)
    before = scrape(pod)
    assert requests_total(before, "200") == 0 and requests_total(before, "500") == 0
    for _ in range(3):
        assert requests.get(url(pod), timeout=5).status_code == 200
    assert requests.head(url(pod), timeout=5).status_code == 200
    for _ in range(2):  # neither readiness probes nor scrapes are counted
        assert requests.get(url(pod, "/healthz"), timeout=5).status_code == 200
        scrape(pod)
    samples = scrape(pod)
    assert requests_total(samples, "200") == 3
    assert requests_total(samples, "200", "HEAD") == 1
    assert requests_total(samples, "500") == 0
    assert samples[("http_request_duration_seconds_count", frozenset())] == 4
    assert bucket(samples, "+Inf") == 4 and bucket(samples, "10.0") == 4
    assert 0 < samples[("http_request_duration_seconds_sum", frozenset())] < 4 * 0.1
    les = sorted(
        (float(le), v) for (name, labels), v in samples.items() if name.endswith("_bucket") for _, le in labels
    )
    assert [v for _, v in les] == sorted(v for _, v in les), "buckets are cumulative"
    assert les[0][0] == 0.005 and len(les) == 12
    assert samples[("process_start_time_seconds", frozenset())] <= time.time()


def test_error_rate_20_fails_exactly_a_fifth_and_readiness_cannot_see_it(apps, core, control, ns):
    image = f"registry.local/{ns}:v2-error-rate-20"
    deploy(apps, ns, "web", image)
    (pod,) = ready_pods(control, image)
    codes = [requests.get(url(pod), timeout=5).status_code for _ in range(50)]
    assert [i for i, c in enumerate(codes) if c == 500] == list(range(4, 50, 5))
    assert set(codes) == {200, 500}
    assert requests.get(url(pod, "/healthz"), timeout=5).status_code == 200
    assert k8s_ready(core, ns, pod["name"])
    samples = scrape(pod)
    assert (requests_total(samples, "200"), requests_total(samples, "500")) == (40, 10)


def test_error_rate_may_be_fractional():
    from sandbox.runtime.behaviour import Behaviour

    b = Behaviour.from_image("shop:v3-error-rate-2.5-latency-1.5s")
    assert (b.error_rate, b.latency) == (2.5, 1.5)
    assert sum(b.errors(n) for n in range(400)) == 10
    assert Behaviour.from_image("shop:latency-300ms.v1").latency == 0.3
    assert Behaviour.from_image("shop:v1").error_rate == 0 and not any(Behaviour().errors(n) for n in range(100))
    assert Behaviour.from_image("shop:error-rate-100").errors(0)


def test_latency_300ms_slows_ordinary_requests_only(apps, control, ns):
    image = f"registry.local/{ns}:v2-latency-300ms"
    deploy(apps, ns, "web", image)
    (pod,) = ready_pods(control, image)
    for path, slow in (("/", True), ("/healthz", False), ("/metrics", False), ("/anything", True)):
        started = time.monotonic()
        assert requests.get(url(pod, path), timeout=5).status_code == 200
        elapsed = time.monotonic() - started
        assert (elapsed >= 0.3) if slow else (elapsed < 0.2), (path, elapsed)
    samples = scrape(pod)
    assert bucket(samples, "0.25") == 0 and bucket(samples, "0.5") == 2
    assert samples[("http_request_duration_seconds_sum", frozenset())] >= 0.6


def test_behaviour_override_turns_a_running_pod_bad_and_back(apps, control, ns):
    image = f"registry.local/{ns}:v1"
    deploy(apps, ns, "web", image)
    (pod,) = ready_pods(control, image)
    assert {requests.get(url(pod), timeout=5).status_code for _ in range(4)} == {200}
    try:
        control.set_behaviour(f"registry.local/{ns}:*", "error-rate-50-latency-100ms")
        started = time.monotonic()
        codes = [requests.get(url(pod), timeout=5).status_code for _ in range(10)]
        assert time.monotonic() - started >= 10 * 0.1
        # the container's 5th..14th ordinary requests: every other one fails
        assert codes.count(500) == 5 and codes.count(200) == 5
        assert requests.get(url(pod, "/healthz"), timeout=5).status_code == 200
        assert control.pod(pod["name"])["ready"]
    finally:
        control.clear_behaviours()
    assert {requests.get(url(pod), timeout=5).status_code for _ in range(6)} == {200}
    samples = scrape(pod)
    assert (requests_total(samples, "200"), requests_total(samples, "500")) == (15, 5)


def test_metrics_live_as_long_as_the_container(apps, control, ns):
    image = f"registry.local/{ns}:v1-ready-after-2s"  # a restarted container warms up for 2 s
    deploy(apps, ns, "web", image)
    (pod,) = ready_pods(control, image)
    for _ in range(3):
        requests.get(url(pod), timeout=5)
    assert requests_total(scrape(pod), "200") == 3
    control.kill_pod(pod["name"], down=1.0)
    with pytest.raises(requests.ConnectionError):  # a dead container: nothing listens, no /metrics
        requests.get(url(pod, "/metrics"), timeout=2)
    # restarted, warming (503 until ready): /metrics answers, counting from zero
    warming = wait_for(lambda: (p := control.pod(pod["name"])) and not p["down"] and p["port"] and p, timeout=5)
    assert requests.get(url(warming), timeout=5).status_code == 503
    assert requests.get(url(warming, "/healthz"), timeout=5).status_code == 503  # not counted
    samples = scrape(warming)
    assert not control.pod(pod["name"])["ready"]
    assert requests_total(samples, "200") == 0 and requests_total(samples, "503") == 1


# -- scrape targets ----------------------------------------------------------------------------


def test_targets_list_pods_with_their_labels_and_drop_deleted_ones(sandbox, apps, control, ns):
    assert f"files:\n    - {sandbox.prometheus_targets.resolve()}" in sandbox.prometheus_config.read_text()
    image = f"registry.local/{ns}:v1"
    deploy(apps, ns, "web-green", image, replicas=2)
    pods = ready_pods(control, image, 2)
    listed = wait_for(
        lambda: len(mine := [t for t in targets(sandbox) if t["labels"]["namespace"] == ns]) == 2 and mine,
        timeout=2,
        what="2 targets",
    )
    assert sorted(t["targets"] for t in listed) == sorted([[f"{p['host']}:{p['port']}"] for p in pods])
    for target in listed:
        labels = target["labels"]
        assert labels == {
            "namespace": ns,
            "pod": labels["pod"],
            "deployment": "web-green",
            "color": "green",
            "image": image,
            "platform": "kubernetes",
        }
        assert labels["pod"] in {p["name"] for p in pods}
    apps.delete_namespaced_deployment("web-green", ns)
    started = time.monotonic()
    wait_for(lambda: not [t for t in targets(sandbox) if t["labels"]["namespace"] == ns], timeout=5, what="no targets")
    assert time.monotonic() - started < 3


def test_bcs_pods_are_targets_too(sandbox, bcs):  # noqa: F811
    ok(bcs.create("deployment", deployment("web-blue", bcs.ns, instances=1, image="registry.local/shop:v1")))
    (target,) = wait_for(
        lambda: [t for t in targets(sandbox) if t["labels"]["namespace"] == bcs.ns], timeout=5, what="a BCS target"
    )
    (tg,) = wait_for(lambda: (tgs := bcs.taskgroups("web-blue")) and tgs[0]["podIP"] and tgs, timeout=5)
    assert target["labels"] == {
        "namespace": bcs.ns,
        "pod": tg["metadata"]["name"],
        "deployment": "web-blue",
        "color": "blue",
        "image": "registry.local/shop:v1",
        "platform": "bcs-mesos",
    }
    assert target["targets"][0].startswith(tg["podIP"] + ":")
    assert requests.get(f"http://{target['targets'][0]}/metrics", timeout=5).status_code == 200


# -- a real Prometheus -------------------------------------------------------------------------


def test_prometheus_scrapes_the_pods_and_sees_the_error_rate(sandbox, apps, control, ns):
    image = f"registry.local/{ns}:v2-error-rate-50"
    deploy(apps, ns, "web-green", image, replicas=2)
    started = time.monotonic()
    with running_prometheus(sandbox.prometheus_config, PROMETHEUS_PORT) as prom:
        ready_in = time.monotonic() - started
        pods = ready_pods(control, image, 2)
        stop = threading.Event()

        def load():  # bounded: at most 25 s of traffic, ~25 requests a second to each pod
            deadline = time.monotonic() + 25
            with requests.Session() as session:
                while not stop.is_set() and time.monotonic() < deadline:
                    for pod in pods:
                        session.get(url(pod), timeout=5)
                    time.sleep(0.04)

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        try:
            up = wait_for(
                lambda: len(r := instant_query(prom, f'up{{namespace="{ns}"}} == 1')) == 2 and r,
                timeout=10,
                interval=0.2,
                what="both pods scraped",
            )
            first_scrape = time.monotonic() - started
            assert {r["metric"]["pod"] for r in up} == {p["name"] for p in pods}
            for r in up:
                assert r["metric"]["deployment"] == "web-green" and r["metric"]["color"] == "green"
                assert r["metric"]["platform"] == "kubernetes" and r["metric"]["image"] == image
            scoped = f'deployment="web-green",namespace="{ns}"'
            expr = (
                f'sum(rate(http_requests_total{{{scoped},code=~"5.."}}[5s]))'
                f" / sum(rate(http_requests_total{{{scoped}}}[5s]))"
            )

            def ratio():
                result = instant_query(prom, expr)
                return result and float(result[0]["value"][1])

            value = wait_for(lambda: (v := ratio()) and abs(v - 0.5) < 0.05 and v, timeout=15, interval=0.5)
            judged = time.monotonic() - started
            assert all(t["health"] == "up" for t in active_targets(prom) if t["labels"].get("namespace") == ns)
        finally:
            stop.set()
            worker.join(10)
    print(
        f"prometheus ready in {ready_in:.1f} s; both pods queryable {first_scrape:.1f} s after start;"
        f" error ratio {value:.3f} at {judged:.1f} s"
    )


def test_launcher_says_what_is_wrong(sandbox, monkeypatch):
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the last test's TIME_WAIT
        taken.bind(("127.0.0.1", PROMETHEUS_PORT))
        taken.listen()
        with pytest.raises(PrometheusError, match="address already in use"):
            with running_prometheus(sandbox.prometheus_config, PROMETHEUS_PORT):
                pass
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrometheusError, match="make install"):
        with running_prometheus(sandbox.prometheus_config, PROMETHEUS_PORT):
            pass
