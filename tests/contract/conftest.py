"""The subjects of the platform contract: one app on each platform, and the few things a test
must do to a cluster that the Platform interface does not offer (make a member unready)."""

from __future__ import annotations

import copy
import itertools
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e.harness import write_app
from unit.fakes import FakePlatform

from bluegreen.apps import manifests as mf
from bluegreen.apps.config import load_app

PLATFORMS = ("fake", "kubernetes", "bcs-mesos")

# BCS servicePorts of the contract apps (the sandbox's load balancer listens on servicePort + the
# worker's offset, one listener per servicePort): e2e's MesosApp uses 300-999, chaos 1000-1999.
_SERVICE_PORTS = itertools.count(200)

# Every app field that makes a failure come fast: nothing here waits for a release's timings.
FIELDS = {"replicas": 2, "delete_timeout": "30s", "api_retry_budget": "10s", "readiness_timeout": "30s"}


def next_service_port() -> int:
    port = next(_SERVICE_PORTS)
    assert port < 300, "out of contract test service ports"
    return port


@dataclass
class Subject:
    """One platform under contract: the adapter (or the fake), its app, and a test's levers."""

    kind: str
    app: object
    platform: object
    # make one member fail its readiness for ``seconds`` (then recover by itself)
    make_unready: Callable[[str, float], None]
    # another client of the same cluster (a second bluegreen writer); the fake's world is its object
    other_client: Callable[[], object]
    # BCS refuses a scale below one instance (bcs-scheduler ScaleDeployment)
    scales_to_zero: bool = True
    # Services (by manifest) to remove after the test, beside the app's own
    previews: list = field(default_factory=list)

    def manifest(self, color: str, image: str, replicas: int = 2, **annotations: str) -> dict:
        out = mf.with_release(self.app.platform, self.app.manifests[color], image, replicas, self.app.container)
        if annotations:
            out.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
        return out

    def preview_manifest(self) -> dict:
        """A second Service (the preview one) beside the app's."""
        out = copy.deepcopy(self.app.manifests["service"])
        out["metadata"]["name"] = f"{self.app.service}-preview"
        if self.app.platform == mf.BCS_MESOS:
            out["spec"]["ports"][0]["servicePort"] = next_service_port()
        self.previews.append(out)
        return out

    def clean_up(self) -> None:
        """Remove what the test left (its pods are processes of the worker's sandbox); best effort:
        a test that failed may have left anything."""
        for action in (
            [lambda c=c: self.platform.delete_color(c) for c in ("blue", "green")]
            + [lambda m=m: self.platform.delete_service(manifest=m) for m in self.previews]
            + [lambda: self.platform.delete_service()]
        ):
            try:
                action()
            except Exception:  # noqa: BLE001 - the test's own outcome is what counts
                pass


def _write_app(tmp_path: Path, name: str, platform: str):
    path = write_app(tmp_path, name, platform, namespace=name, **FIELDS)
    if platform == mf.BCS_MESOS:
        svc = path.parent / name / "test-svc.json"
        svc.write_text(svc.read_text().replace('"servicePort": 8080', f'"servicePort": {next_service_port()}'))
        for color in ("blue", "green"):
            # a member held unready for a moment fails a check or two, and must not be killed for it
            workload = path.parent / name / f"test-{color}.json"
            raw = json.loads(workload.read_text())
            for c in mf.containers(mf.BCS_MESOS, raw):
                for check in c.get("healthChecks") or []:
                    check["consecutiveFailures"] = 10
            workload.write_text(json.dumps(raw, indent=1))
    return load_app(path)


@pytest.fixture(scope="session")
def sandbox_connections(sandbox):
    """The adapters' Airflow connections (sandbox_k8s, sandbox_bcs) point at this worker's sandbox."""
    os.environ.update(sandbox.environment())
    return sandbox


@pytest.fixture(scope="session")
def kube_client(sandbox):
    import kubernetes

    return kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))


def _fake_subject(tmp_path, name) -> Subject:
    app = _write_app(tmp_path, name, mf.KUBERNETES)
    fake = FakePlatform(app)

    def make_unready(member: str, seconds: float) -> None:
        color = member.rpartition("-")[0]
        fake.workloads[color]["ready"] -= 1

        def recover():
            w = fake.workloads.get(color)
            if w is not None:
                w["ready"] = min(w["ready"] + 1, w["desired"])

        timer = threading.Timer(seconds, recover)
        timer.daemon = True
        timer.start()

    return Subject("fake", app, fake, make_unready, other_client=lambda: fake)


@pytest.fixture(params=PLATFORMS)
def subject(request, tmp_path, unique_name):
    """The same contract, on the in-memory platform and on each adapter against the sandbox."""
    kind = request.param
    if kind == "fake":
        yield _fake_subject(tmp_path, unique_name)
        return
    subject = _sandbox_subject(request, tmp_path, unique_name, kind)
    yield subject
    subject.clean_up()


def _sandbox_subject(request, tmp_path, unique_name, kind) -> Subject:
    request.getfixturevalue("sandbox_connections")
    # the root conftest's fixture: "from conftest import Control" finds whichever conftest module
    # was imported last under that name (tests/sandbox's, in a whole run)
    control = request.getfixturevalue("control")
    if kind == "kubernetes":
        from kubernetes import client

        from bluegreen.platforms.kubernetes import KubernetesPlatform

        client.CoreV1Api(request.getfixturevalue("kube_client")).create_namespace({"metadata": {"name": unique_name}})
        app = _write_app(tmp_path, unique_name, mf.KUBERNETES)
        return Subject(
            kind,
            app,
            KubernetesPlatform(app),
            make_unready=lambda member, seconds: control.unready_pod(member, seconds),
            other_client=lambda: KubernetesPlatform(app),
        )
    from bluegreen.platforms.bcs_mesos import BcsMesosPlatform

    app = _write_app(tmp_path, unique_name, mf.BCS_MESOS)
    return Subject(
        kind,
        app,
        BcsMesosPlatform(app),
        make_unready=lambda member, seconds: control.unready_pod(member, seconds),
        other_client=lambda: BcsMesosPlatform(app),
        scales_to_zero=False,
    )
