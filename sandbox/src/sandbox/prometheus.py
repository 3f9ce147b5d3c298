"""Prometheus and the sandbox: the scrape configuration the sandbox keeps, and a launcher for a
real Prometheus that reads it.

The sandbox writes, beside its kubeconfig (``Endpoints.prometheus_config``)::

    <state_dir>/prometheus/prometheus.yml   scrape and evaluation every 1 s, one job ("sandbox-pods")
                                            reading targets.json (file_sd, refreshed every 1 s)
    <state_dir>/prometheus/targets.json     one target per pod, ``ip:port`` of its first container
                                            port, labelled namespace, pod, deployment, color, image,
                                            platform ("kubernetes" or "bcs-mesos")

``targets.json`` is rewritten atomically (a temporary file, then ``os.replace``) at most
``DEBOUNCE`` seconds after pods come and go.  A pod is a target from the moment it listens until
it is gone, also while its container is dead (killed: Prometheus sees it down, ``up == 0``, as it
sees a real pod whose container died).  What a pod serves on ``/metrics``: ``runtime/metrics.py``.

``running_prometheus(config, port)`` starts the ``prometheus`` binary (Debian's package, which
``make install`` installs) on 127.0.0.1 with its data in a temporary folder, waits until it is
ready and stops it afterwards::

    with running_prometheus(endpoints.prometheus_config, 19090) as url:
        instant_query(url, 'sum(rate(http_requests_total{code=~"5.."}[5s]))')
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    import asyncio

    from .runtime.pod import Pod
    from .runtime.runtime import Runtime

JOB = "sandbox-pods"
# how long after a pod change targets.json is rewritten (changes within it are written at once)
DEBOUNCE = 0.1


class ScrapeTargets:
    """Keeps ``prometheus.yml`` and ``targets.json`` in ``directory`` up to date with the runtime's pods."""

    def __init__(self, runtime: Runtime, directory: Path):
        self.runtime = runtime
        self.directory = Path(directory)
        self.config_path = self.directory / "prometheus.yml"
        self.targets_path = self.directory / "targets.json"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = False
        self._written: list[dict] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.directory.mkdir(parents=True, exist_ok=True)
        self.flush()
        _write_atomic(self.config_path, yaml.safe_dump(scrape_config(self.targets_path.resolve()), sort_keys=False))
        self.runtime.pod_watchers.append(self.pod_changed)

    def stop(self) -> None:
        """No targets any more: a Prometheus still running stops scraping the sandbox's pods."""
        if self.pod_changed in self.runtime.pod_watchers:
            self.runtime.pod_watchers.remove(self.pod_changed)
        self._write([])

    def pod_changed(self, _pod: Pod) -> None:
        if self._pending or self._loop is None:
            return
        self._pending = True
        self._loop.call_soon_threadsafe(self._loop.call_later, DEBOUNCE, self.flush)

    def flush(self) -> None:
        self._pending = False
        self._write(self.targets())

    def targets(self) -> list[dict]:
        groups = []
        for pod in sorted(self.runtime.pods.values(), key=lambda p: (p.spec.namespace, p.name)):
            if pod.scrape_port is None or pod.state not in ("Running", "Terminating"):
                continue
            groups.append({"targets": [f"{pod.ip}:{pod.scrape_port}"], "labels": target_labels(pod)})
        return groups

    def _write(self, groups: list[dict]) -> None:
        if groups == self._written:
            return
        _write_atomic(self.targets_path, json.dumps(groups, indent=1) + "\n")
        self._written = groups


def target_labels(pod: Pod) -> dict[str, str]:
    return {
        "namespace": pod.spec.namespace,
        "pod": pod.name,
        "deployment": pod.spec.workload,
        "color": pod.color,
        "image": pod.image,
        "platform": pod.spec.platform,
    }


def scrape_config(targets_path: Path) -> dict:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": JOB,
                "file_sd_configs": [{"files": [str(targets_path)], "refresh_interval": "1s"}],
            }
        ],
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- a real Prometheus ------------------------------------------------------------------


class PrometheusError(RuntimeError):
    pass


INSTALL_HINT = (
    "the prometheus binary is not installed: run `make install` (it installs Debian's prometheus package), "
    "or `apt-get install prometheus`"
)


@contextlib.contextmanager
def running_prometheus(
    config_path: Path | str,
    port: int = 9090,
    data_dir: Path | str | None = None,
    *,
    retention: str = "1h",
    timeout: float = 30.0,
    binary: str | None = None,
) -> Iterator[str]:
    """Run Prometheus on ``127.0.0.1:port`` with ``config_path``; yields its URL once ``/-/ready``
    answers 200.  Its TSDB (and its log, ``prometheus.log``) go to ``data_dir``, by default a
    temporary folder removed afterwards.  Stopped on exit: SIGTERM, then SIGKILL after 10 s.
    Raises PrometheusError when the binary is missing, or when it exits or is not ready within
    ``timeout`` seconds (with the end of its log: a taken port shows there)."""
    executable = binary or shutil.which("prometheus")
    if executable is None:
        raise PrometheusError(INSTALL_HINT)
    own_dir = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="bluegreen-prometheus-") if own_dir else data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    args = [
        executable,
        f"--config.file={Path(config_path).resolve()}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(proc, url, log_path, timeout)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen, url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise PrometheusError(f"prometheus exited ({proc.returncode}) before it was ready: {_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise PrometheusError(f"prometheus was not ready at {url} within {timeout:g} s: {_tail(log_path)}")
        time.sleep(0.1)


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return "(no log)"


def instant_query(url: str, expr: str, timeout: float = 10.0) -> list[dict]:
    """``GET /api/v1/query``: the result vector, e.g. ``[{"metric": {...}, "value": [t, "0.5"]}]``."""
    query = urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=timeout) as reply:
            body = json.load(reply)
    except urllib.error.HTTPError as e:  # a bad expression: 400 with Prometheus's error in JSON
        raise PrometheusError(f"query {expr!r} failed: {e.code} {e.read()[:500]!r}") from e
    if body.get("status") != "success":
        raise PrometheusError(f"query {expr!r} failed: {body}")
    return body["data"]["result"]


def active_targets(url: str, timeout: float = 10.0) -> list[dict]:
    """``GET /api/v1/targets``: the active targets with their labels, health and last scrape."""
    with urllib.request.urlopen(f"{url}/api/v1/targets?state=active", timeout=timeout) as reply:
        return json.load(reply)["data"]["activeTargets"]
