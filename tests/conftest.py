"""Fixtures every test layer shares: a running sandbox (its own process, its own ports)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def worker_index() -> int:
    """0 for the main process and xdist's gw0, 1 for gw1, ...; plus BLUEGREEN_TEST_SLOT_OFFSET, so that
    two test runs on one machine (e.g. ``BLUEGREEN_TEST_SLOT_OFFSET=4 pytest -n 2`` beside ``make test``)
    use different ports and loopback blocks (slots 0 to 6 fit the NodePort range)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0) + int(os.environ.get("BLUEGREEN_TEST_SLOT_OFFSET") or 0)


# The BCS load balancer of slot i listens on 127.0.0.1:servicePort + 12000 + 2000 * i, so the
# servicePort of a BCSGROUP service must stay below 2000, or it takes a port of another slot's block
# (a sandbox test once used 6301: slot 0's 18301 was slot 3's e2e app 301, and one of them could not
# listen).  The servicePorts in a slot's block, one service per port at a time:
#   10-79      the Releases page's benchmark and its smoke (benchmarks/releases_page.py)
#   100-101    the release benchmark's smoke (the full benchmark runs alone on slot 7: 100-299)
#   150-199    tests/sandbox (the load balancer's own tests)
#   200-299    tests/contract;  300-999 tests/e2e;  1000-1999 chaos
# The one exception is the seed's 8080 as written (tests/sandbox/test_bcs_seed.py): it is port 80
# of slot i + 4's block, which nothing uses.
LB_PORT_OFFSET, LB_PORT_BLOCK = 12000, 2000


class SandboxProcess:
    """A sandbox started with ``python -m sandbox``, exactly as ``make sandbox`` runs it."""

    def __init__(self, state_dir: Path, index: int, ready_after: float = 0.5):
        self.state_dir = state_dir
        low = 30000 + index * 400
        self.args = [
            sys.executable,
            "-m",
            "sandbox",
            "--state-dir",
            str(state_dir),
            "--kube-port",
            "0",
            "--bcs-port",
            "0",
            "--control-port",
            "0",
            "--node-port-range",
            f"{low}-{low + 399}",
            "--lb-port-offset",
            str(LB_PORT_OFFSET + index * LB_PORT_BLOCK),
            "--pod-network",
            f"127.{100 + 2 * index}.0.0/16",
            "--service-network",
            f"127.{101 + 2 * index}.0.0/16",
            "--ready-after",
            str(ready_after),
        ]
        self.log_path = state_dir.parent / f"{state_dir.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30):
        from sandbox.server import Endpoints

        self.state_dir.mkdir(parents=True, exist_ok=True)
        marker = self.state_dir / "sandbox.json"
        marker.unlink(missing_ok=True)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        self.endpoints = Endpoints.load(self.state_dir)
        return self.endpoints

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


class Control:
    """The sandbox's control endpoint, for what no real API offers (behaviours, counts, faults,
    pod faults, run-time settings, the audit log); see sandbox/control.py."""

    def __init__(self, endpoints):
        self.url = endpoints.control_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {endpoints.token}"

    def request_counts(self, api: str | None = None) -> list[dict]:
        rows = self.session.get(f"{self.url}/requests", timeout=10).json()["requests"]
        return [r for r in rows if api is None or r["api"] == api]

    def reset_counts(self) -> None:
        self.session.post(f"{self.url}/requests/reset", timeout=10).raise_for_status()

    def set_behaviour(self, image_glob: str, behaviour: str) -> None:
        self.session.post(
            f"{self.url}/behaviour", json={"image": image_glob, "behaviour": behaviour}, timeout=10
        ).raise_for_status()

    def clear_behaviours(self) -> None:
        self.session.delete(f"{self.url}/behaviour", timeout=10).raise_for_status()

    # -- API faults -----------------------------------------------------------------------
    def inject_fault(
        self, api: str, method: str, path: str, status: int, body, times: int = 1, request_body: str | None = None
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and ``body``."""
        self.fault(api, method, path, status=status, body=body, times=times, request_body=request_body)

    def fault(self, api: str, method: str = "*", path: str = "", **spec) -> dict:
        """Inject any fault (sandbox/faults.py): e.g. ``fault("kube", "GET", "/pods", status=503)``,
        ``fault("bcs", path="storage", reset=True, times=20, probability=0.3)``,
        ``fault("kube", path="/pods", cut_after=2)``; None values are left out.  Returns the
        fault as the sandbox stored it (with its ``id``); a bad spec raises HTTPError (400)."""
        body = {"api": api, "method": method, "path": path, **{k: v for k, v in spec.items() if v is not None}}
        reply = self.session.post(f"{self.url}/faults", json=body, timeout=10)
        reply.raise_for_status()
        return reply.json()["injected"]

    def faults(self) -> list[dict]:
        """The active faults; ``times`` is the number of hits still to come."""
        return self.session.get(f"{self.url}/faults", timeout=10).json()["faults"]

    def clear_faults(self) -> None:
        self.session.delete(f"{self.url}/faults", timeout=10).raise_for_status()

    def remove_fault(self, fault_id: int) -> None:
        self.session.delete(f"{self.url}/faults/{fault_id}", timeout=10).raise_for_status()

    # -- pods -----------------------------------------------------------------------------
    def pods(self) -> list[dict]:
        return self.session.get(f"{self.url}/pods", timeout=10).json()["pods"]

    def pod(self, name: str) -> dict | None:
        return next((p for p in self.pods() if p["name"] == name), None)

    def kill_pod(self, name: str, down: float = 1.0) -> dict:
        """Kill the pod's container; it is restarted ``down`` seconds later (K8s: restartCount + 1;
        BCS: the taskgroup fails and is rescheduled)."""
        return self._pod_fault(name, "kill", {"down": down})

    def evict_pod(self, name: str) -> dict:
        """Evict the pod (K8s: Failed/Evicted, replaced by its ReplicaSet; BCS: taskgroup Failed, rescheduled)."""
        return self._pod_fault(name, "evict", {})

    def unready_pod(self, name: str, seconds: float) -> dict:
        """Make the pod fail readiness (and answer 503) for ``seconds``."""
        return self._pod_fault(name, "unready", {"seconds": seconds})

    def _pod_fault(self, name: str, action: str, body: dict) -> dict:
        reply = self.session.post(f"{self.url}/pods/{name}/{action}", json=body, timeout=10)
        reply.raise_for_status()
        return reply.json()["pod"]

    def proxies(self) -> list[dict]:
        return self.session.get(f"{self.url}/proxies", timeout=10).json()["proxies"]

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> dict:
        return self.session.get(f"{self.url}/settings", timeout=10).json()

    def set_propagation_delay(self, seconds: float) -> None:
        """How long service proxies keep routing new connections by a changed selector's old value."""
        self.session.post(f"{self.url}/settings", json={"propagation_delay": seconds}, timeout=10).raise_for_status()

    # -- audit log ------------------------------------------------------------------------
    def audit(self, since: int = 0, kind: str | None = None) -> list[dict]:
        """Audit events (selector changes, workload deletes and scale-downs), oldest first."""
        params = {"since": since, **({"kind": kind} if kind else {})}
        return self.session.get(f"{self.url}/audit", params=params, timeout=10).json()["events"]

    def reset_audit(self) -> None:
        self.session.post(f"{self.url}/audit/reset", timeout=10).raise_for_status()


def airflow_environment(prefix: str) -> dict[str, str]:
    """An Airflow home of its own (in a new temporary folder) with a SQLite metadata DB, this
    checkout's DAGs and plugins, and no examples."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix=prefix))
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Make ``--dist loadgroup`` keep each ``xdist_group`` on one worker with pytest 9.2.

    xdist 3.8 marks a grouped test by appending ``@<group>`` to ``item._nodeid`` on the worker;
    pytest 9.2 keeps the node id in ``item._id`` (a NodeId) and ignores ``_nodeid``, so the
    grouping is silently lost and every worker that gets a test of a group starts that group's
    expensive fixtures (an Airflow stack, a compose stack, a fresh venv) again
    (pytest-dev/pytest-xdist#1386, fix pending in #1388).  Only grouped tests are touched, only
    on loadgroup workers, and only when xdist's own suffix is missing."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        groups = {
            str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")
        }
        if not groups:
            continue
        suffix = "@" + "_".join(sorted(groups))
        if not item.nodeid.endswith(suffix) and isinstance(getattr(item, "_id", None), NodeId):
            item._id = NodeId.parse(item.nodeid + suffix)


def pytest_configure(config):
    """Give each test process its own Airflow home and SQLite metadata DB, before anything
    imports airflow (its settings are read at import)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ.update(airflow_environment(f"bluegreen-airflow-{worker}-"))


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """One sandbox per test worker; tests keep apart by namespace."""
    proc = SandboxProcess(tmp_path_factory.mktemp("sandbox") / "state", worker_index())
    endpoints = proc.start()
    yield endpoints
    proc.stop()


@pytest.fixture(scope="session")
def control(sandbox) -> Control:
    return Control(sandbox)


@pytest.fixture
def unique_name(request) -> str:
    """A DNS-1123 label unique to this test, for namespaces and app names."""
    import hashlib

    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")[:40].strip("-")
    return f"{base}-{digest}"
