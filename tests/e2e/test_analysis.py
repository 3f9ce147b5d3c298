"""Metric analysis, end to end: Airflow (dag.test(), triggers inline) releases through a real
Prometheus that scrapes the sandbox's pods (their /metrics, found through the sandbox's file_sd
targets).  A healthy release passes; a new version that answers 5xx is stopped before it takes
traffic; one that turns bad under traffic is rolled back from its soak; no data and an
unreachable Prometheus follow the config's rules; a query Prometheus refuses stops the plan."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time

import pytest
import requests

from .harness import task_states, xcom

pytestmark = [pytest.mark.e2e]

V1 = "registry.local/test:v1"
CONN_ID = "prometheus_e2e"
# the new color's share of 5xx over the last 5 s; NaN (no data) while it served nothing
ERROR_RATE = (
    'sum(rate(http_requests_total{namespace="{namespace}",deployment="{deployment}",code=~"5.."}[5s]))'
    ' / sum(rate(http_requests_total{namespace="{namespace}",deployment="{deployment}"}[5s]))'
)


@pytest.fixture(scope="module")
def prometheus(sandbox):
    """A real Prometheus scraping this worker's sandbox (every second), and the Airflow connection
    the apps name."""
    from sandbox.prometheus import running_prometheus

    with socket.socket() as s:  # a free port (Prometheus cannot be asked for one and tell it)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with running_prometheus(sandbox.prometheus_config, port) as url:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({"conn_type": "http", "host": url})
        yield url
        os.environ.pop(f"AIRFLOW_CONN_{CONN_ID.upper()}", None)


def analysis(**changes) -> dict:
    # the first measurement 7 s in: Prometheus' service discovery passes new targets on at most every
    # 5 s, and a rate needs two scrapes of them
    check = {"name": "error-rate", "query": ERROR_RATE, "condition": "< 0.1", "interval": "2s", "initial_delay": "7s"}
    check.update(changes.pop("check", {}))
    return {"connection_id": CONN_ID, "before_switch": "8s", "timeout": "10s", "checks": [check], **changes}


def analysed(app, **changes):
    """The app, released once already, now with an analysis in its config."""
    import yaml

    raw = yaml.safe_load(app.path.read_text())
    raw["analysis"] = analysis(**changes)
    app.path.write_text(yaml.safe_dump(raw, sort_keys=False))
    app.reload()
    return app


def queries_served(url: str) -> float:
    """How many instant queries Prometheus has answered: its own counter, read from its /metrics."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    counts = re.findall(r'^prometheus_http_requests_total\{[^}]*handler="/api/v1/query"[^}]*\} (\S+)$', text, re.M)
    return sum(float(c) for c in counts)  # no line before its first query


class PodLoad:
    """Requests straight to an app's pods (found in the sandbox's scrape targets), as testers or a
    load test reach a new color before the switch; answers recorded by deployment."""

    def __init__(self, sandbox, namespace: str):
        self.targets, self.namespace = sandbox.prometheus_targets, namespace
        self.codes: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        while not self._stop.is_set():
            try:
                groups = json.loads(self.targets.read_text())
            except (OSError, ValueError):
                groups = []
            for group in groups:
                labels = group["labels"]
                if labels["namespace"] == self.namespace:
                    try:
                        resp = requests.get(f"http://{group['targets'][0]}/", timeout=2)
                        self.codes.setdefault(labels["deployment"], []).append(resp.status_code)
                    except requests.RequestException:
                        pass
            self._stop.wait(0.05)


def test_a_healthy_release_passes_its_analysis_before_the_switch_and_during_the_soak(release_app, prometheus, sandbox):
    app = release_app(soak="4s")
    assert app.release(V1).state == "success"
    analysed(app)
    queries_before = queries_served(prometheus)
    started = time.monotonic()
    with app.traffic() as traffic, PodLoad(sandbox, app.ns):
        run = app.release("registry.local/test:v2")
    took = time.monotonic() - started
    states = task_states(run)
    assert run.state == "success", states
    assert app.serves("registry.local/test:v2") and not traffic.failures, traffic.summary()
    ready = xcom(run, "wait_until_ready", "analysis")
    soak = xcom(run, "soak", "analysis")
    assert ready and "analysis before the switch passed: error-rate < 0.1:" in ready, ready
    assert soak and "analysis during the soak passed: error-rate < 0.1:" in soak, soak
    queries = queries_served(prometheus) - queries_before
    print(f"analysed release took {took:.1f}s; {queries:.0f} Prometheus queries; {ready}; {soak}")
    assert queries >= 4, "the checks asked Prometheus before the switch and during the soak"


def test_a_version_that_answers_errors_is_stopped_before_it_takes_traffic(k8s_app, prometheus, sandbox, control):
    app = k8s_app()
    assert app.release(V1).state == "success"
    analysed(app)
    audit_from = max((e["seq"] for e in control.audit()), default=0)
    with app.traffic() as traffic, PodLoad(sandbox, app.ns) as load:
        run = app.release("registry.local/test:v2-error-rate-20")  # one answer in five is a 500
    states = task_states(run)
    assert run.state == "failed" and states["wait_until_ready"] == "failed", states
    assert states["switch_traffic"] == "upstream_failed" and states["rollback"] == "success", states
    failure = xcom(run, "wait_until_ready", "failure")
    assert "analysis before the switch failed: error-rate = " in failure and "wanted < 0.1" in failure, failure
    # the value (about one in five: the rate's window holds whole seconds of requests) and the query
    assert re.search(r"error-rate = 0\.[12]\d*, wanted < 0\.1", failure) and ERROR_RATE in failure, failure
    assert 500 in load.codes["test-green"], "the bad version was reached before the switch (and answered errors)"
    # it never took traffic: the Service never pointed at it, and every client got v1
    switches = [e for e in control.audit(since=audit_from, kind="service_selector") if e["namespace"] == app.ns]
    assert not switches, switches
    assert {image for _, image in traffic.ok} == {V1} and not traffic.failures, traffic.summary()
    assert app.deployments() == {"test-blue": V1}, "the rollback removed the bad version"


def test_a_version_that_turns_bad_under_traffic_is_rolled_back_from_its_soak(k8s_app, prometheus, control, sandbox):
    bad_later = "registry.local/test:v2-turns-bad"
    app = k8s_app(soak="30s", http_check=None)  # the analysis, not the HTTP check, is to notice
    assert app.release(V1).state == "success"
    analysed(app, before_switch="0s", check={"initial_delay": "2s", "no_data": "wait"})

    def turn_bad_after_the_switch():
        deadline = time.monotonic() + 60
        while app.selector() != app.app.selector_for("green") and time.monotonic() < deadline:
            time.sleep(0.1)
        control.set_behaviour(bad_later, "error-rate-50")

    saboteur = threading.Thread(target=turn_bad_after_the_switch, daemon=True)
    started = time.monotonic()
    try:
        with app.traffic() as traffic:
            saboteur.start()
            run = app.release(bad_later)
    finally:
        saboteur.join(5)
        control.clear_behaviours()
    took = time.monotonic() - started
    states = task_states(run)
    assert states["switch_traffic"] == "success" and states["soak"] == "failed", states
    assert states["rollback"] == "success" and states["retire_old_color"] == "upstream_failed", states
    failure = xcom(run, "soak", "failure")
    assert "analysis during the soak failed: error-rate = " in failure, failure
    assert took < 25, f"rolled back at the analysis' first failed measurement, not at the soak's end ({took:.1f}s)"
    assert app.selector() == app.app.selector_for("blue") and app.serves(V1)
    assert traffic.versions()[-1] == V1, traffic.summary()


def test_no_data_under_wait_holds_the_switch_until_the_analysis_timeout(k8s_app, prometheus, sandbox):
    # a query that selects nothing (no pod has this label): no data, however long one waits
    nothing = 'sum(rate(http_requests_total{deployment="{deployment}",tier="nonexistent"}[5s]))'
    check = {"query": nothing, "no_data": "wait", "initial_delay": None}
    app = k8s_app(analysis=analysis(before_switch="1s", timeout="3s", check=check))
    started = time.monotonic()
    run = app.release(V1)
    states = task_states(run)
    assert states["wait_until_ready"] == "failed" and states["rollback"] == "success", states
    failure = xcom(run, "wait_until_ready", "failure")
    assert "error-rate: no data for " in failure and "analysis timeout 3s" in failure, failure
    assert time.monotonic() - started > 4, "it waited the phase (1 s) and the timeout (3 s) for data"
    assert app.service() is None and not app.deployments(), "the first release was removed"


def test_prometheus_unreachable_or_a_query_it_refuses_stops_the_plan_before_any_change(k8s_app, prometheus, control):
    os.environ["AIRFLOW_CONN_PROMETHEUS_DOWN"] = json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9"})
    try:
        app = k8s_app(analysis={**analysis(unreachable="fail"), "connection_id": "prometheus_down"})
        run = app.release(V1)
    finally:
        os.environ.pop("AIRFLOW_CONN_PROMETHEUS_DOWN", None)
    assert task_states(run)["plan"] == "failed", task_states(run)
    failure = xcom(run, "plan", "failure")
    assert "Prometheus at http://127.0.0.1:9 (connection prometheus_down) is unreachable" in failure, failure
    assert app.service() is None, "nothing was created"

    bad = k8s_app(
        analysis=analysis(check={"query": 'sum(rate(http_requests_total{deployment="{deployment}"}[5s])) by'})
    )
    run = bad.release(V1)
    assert task_states(run)["plan"] == "failed", task_states(run)
    failure = xcom(run, "plan", "failure")
    assert "analysis.checks[0].query=" in failure and "parse error" in failure, failure
    assert bad.service() is None


def test_prometheus_unreachable_under_wait_holds_the_release_until_the_analysis_timeout(k8s_app):
    os.environ["AIRFLOW_CONN_PROMETHEUS_GONE"] = json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9"})
    try:
        gone = {
            **analysis(before_switch="1s", timeout="2s", check={"initial_delay": None}),
            "connection_id": "prometheus_gone",
        }
        app = k8s_app(analysis=gone, api_retry_budget="1s")
        started = time.monotonic()
        run = app.release(V1)
    finally:
        os.environ.pop("AIRFLOW_CONN_PROMETHEUS_GONE", None)
    states = task_states(run)
    assert states["plan"] == "success" and states["wait_until_ready"] == "failed", states
    failure = xcom(run, "wait_until_ready", "failure")
    assert "error-rate: Prometheus (connection prometheus_gone) is unreachable: " in failure, failure
    assert "cannot reach Prometheus at http://127.0.0.1:9" in failure and "analysis timeout 2s" in failure, failure
    assert time.monotonic() - started > 3, "it waited the phase (1 s) and the timeout (2 s)"
    assert app.service() is None, "the first release was removed"
