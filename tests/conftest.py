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


class SandboxProcess:
    """A sandbox started with ``python -m sandbox``, exactly as ``make sandbox`` runs it."""

    def __init__(self, state_dir: Path, index: int, ready_after: float = 0.5):
        self.state_dir = state_dir
        low = 30000 + index * 400
        self.args = [
            sys.executable, "-m", "sandbox", "--state-dir", str(state_dir),
            "--kube-port", "0", "--bcs-port", "0", "--control-port", "0",
            "--node-port-range", f"{low}-{low + 399}",
            "--lb-port-offset", str(12000 + index * 2000),
            "--pod-network", f"127.{100 + 2 * index}.0.0/16",
            "--service-network", f"127.{101 + 2 * index}.0.0/16",
            "--ready-after", str(ready_after),
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
    """The sandbox's control endpoint, for what no real API offers (behaviours, counts)."""

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
        self.session.post(f"{self.url}/behaviour", json={"image": image_glob, "behaviour": behaviour},
                          timeout=10).raise_for_status()

    def clear_behaviours(self) -> None:
        self.session.delete(f"{self.url}/behaviour", timeout=10).raise_for_status()

    def inject_fault(self, api: str, method: str, path: str, status: int, body, times: int = 1,
                     request_body: str | None = None) -> None:
        self.session.post(f"{self.url}/faults", json={"api": api, "method": method, "path": path, "status": status,
                                                       "body": body, "times": times, "request_body": request_body},
                          timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        self.session.delete(f"{self.url}/faults", timeout=10).raise_for_status()

    def pods(self) -> list[dict]:
        return self.session.get(f"{self.url}/pods", timeout=10).json()["pods"]

    def proxies(self) -> list[dict]:
        return self.session.get(f"{self.url}/proxies", timeout=10).json()["proxies"]


def pytest_configure(config):
    """Give each test process its own Airflow home and SQLite metadata DB, before anything
    imports airflow (its settings are read at import)."""
    import tempfile

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    home = Path(tempfile.mkdtemp(prefix=f"bluegreen-airflow-{worker}-"))
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    })


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
