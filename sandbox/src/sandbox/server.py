"""Start the sandbox: the runtime, the Kubernetes and BCS front ends, the control endpoint,
and the files that let clients find it (kubeconfig, CA, Airflow connections)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from aiohttp import web

from . import control, tls
from .bcs import create_app as create_bcs_app
from .kube import create_app as create_kube_app
from .prometheus import ScrapeTargets
from .runtime.runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)

K8S_CONN_ID = "sandbox_k8s"
BCS_CONN_ID = "sandbox_bcs"


@dataclass
class Endpoints:
    """Where a running sandbox answers; also written to ``state_dir/sandbox.json``."""

    kube_url: str
    bcs_url: str
    control_url: str
    token: str
    bcs_cluster_id: str
    state_dir: Path
    # A BCS service labelled BCSGROUP is served on 127.0.0.1:servicePort + this.
    lb_port_offset: int = 10000

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "ca.crt"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "env"

    @property
    def prometheus_config(self) -> Path:
        """A Prometheus configuration that scrapes every pod (``sandbox/prometheus.py``)."""
        return self.state_dir / "prometheus" / "prometheus.yml"

    @property
    def prometheus_targets(self) -> Path:
        """The pods as Prometheus file_sd targets, rewritten as pods come and go."""
        return self.state_dir / "prometheus" / "targets.json"

    def connections(self) -> dict[str, dict]:
        """The Airflow connections (as JSON documents) that point at this sandbox."""
        bcs_host, _, bcs_port = self.bcs_url.removeprefix("https://").partition(":")
        return {
            K8S_CONN_ID: {
                "conn_type": "kubernetes",
                "extra": {"kube_config_path": str(self.kubeconfig.resolve()), "namespace": "default"},
            },
            BCS_CONN_ID: {
                "conn_type": "bcs",
                "host": bcs_host,
                "port": int(bcs_port),
                "schema": "https",
                "password": self.token,
                "extra": {"cluster_id": self.bcs_cluster_id, "ca_bundle": str(self.ca_file.resolve())},
            },
        }

    def environment(self) -> dict[str, str]:
        env = {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(doc) for conn_id, doc in self.connections().items()}
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig.resolve()),
                "BLUEGREEN_SANDBOX_CONTROL": self.control_url,
                "BLUEGREEN_SANDBOX_TOKEN": self.token,
            }
        )
        return env

    def to_json(self) -> dict:
        return {
            "kube_url": self.kube_url,
            "bcs_url": self.bcs_url,
            "control_url": self.control_url,
            "token": self.token,
            "bcs_cluster_id": self.bcs_cluster_id,
            "state_dir": str(self.state_dir),
            "lb_port_offset": self.lb_port_offset,
        }

    @classmethod
    def load(cls, state_dir: Path) -> Endpoints:
        data = json.loads((Path(state_dir) / "sandbox.json").read_text())
        data["state_dir"] = Path(data["state_dir"])
        data.pop("pid", None)
        return cls(**data)


class Sandbox:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.runtime = Runtime(
            default_ready_after=self.settings.ready_after,
            pod_network=self.settings.pod_network,
            propagation_delay=self.settings.propagation_delay,
        )
        self._runners: list[web.AppRunner] = []
        self.endpoints: Endpoints | None = None
        self.scrape_targets: ScrapeTargets | None = None

    async def start(self) -> Endpoints:
        s = self.settings
        self.runtime.loop = asyncio.get_running_loop()
        state_dir = Path(s.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        certs = tls.generate((s.host, "localhost"))
        ssl_context = certs.server_context(state_dir)
        kube_port = await self._serve(create_kube_app(self.runtime, s), s.kube_port, ssl_context)
        bcs_port = await self._serve(create_bcs_app(self.runtime, s), s.bcs_port, ssl_context)
        control_port = await self._serve(control.create_app(self.runtime, s), s.control_port, None)
        self.endpoints = Endpoints(
            kube_url=f"https://{s.host}:{kube_port}",
            bcs_url=f"https://{s.host}:{bcs_port}",
            control_url=f"http://{s.host}:{control_port}",
            token=s.token,
            bcs_cluster_id=s.bcs_cluster_id,
            state_dir=state_dir,
            lb_port_offset=s.lb_port_offset,
        )
        self.scrape_targets = ScrapeTargets(self.runtime, self.endpoints.prometheus_config.parent)
        self.scrape_targets.start(self.runtime.loop)
        self._write_files(certs)
        return self.endpoints

    async def _serve(self, app: web.Application, port: int, ssl_context) -> int:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        self._runners.append(runner)
        return site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        await self.runtime.shutdown()
        if self.scrape_targets is not None:
            self.scrape_targets.stop()
        if self.endpoints is not None:
            # clients find a running sandbox by this file: it goes with the sandbox
            (self.endpoints.state_dir / "sandbox.json").unlink(missing_ok=True)

    def _write_files(self, certs: tls.Certificates) -> None:
        e = self.endpoints
        assert e is not None
        e.ca_file.write_bytes(certs.ca_pem)
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sandbox",
                    "cluster": {
                        "server": e.kube_url,
                        "certificate-authority-data": base64.b64encode(certs.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": "sandbox", "user": {"token": e.token}}],
            "contexts": [
                {"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox", "namespace": "default"}}
            ],
            "current-context": "sandbox",
            "preferences": {},
        }
        _write_private(e.kubeconfig, yaml.safe_dump(kubeconfig, sort_keys=False))
        lines = ["# Source this file: it points kubectl and Airflow at the running sandbox."]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in e.environment().items()]
        _write_private(e.env_file, "\n".join(lines) + "\n")
        _write_private(e.state_dir / "sandbox.json", json.dumps({**e.to_json(), "pid": os.getpid()}, indent=2))


def _write_private(path: Path, text: str) -> None:
    """Write a file that holds the token: readable by its owner only."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class SandboxThread:
    """Run a sandbox on its own event loop in a background thread (for embedding)."""

    def __init__(self, settings: Settings | None = None):
        self.sandbox = Sandbox(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox", daemon=True)

    def start(self) -> Endpoints:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.sandbox.start(), self._loop).result(30)

    def call(self, coro, timeout: float = 30):
        """Run a coroutine on the sandbox's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        try:
            self.call(self.sandbox.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
