"""An in-memory platform for unit tests of the release model's own logic (no cluster).

tests/contract/test_platform_contract.py holds it to what the real adapters do: every behaviour
that test checks, this fake passes exactly as the Kubernetes and BCS Mesos adapters do.
"""

from __future__ import annotations

import copy
import json

from bluegreen.apps import manifests as mf
from bluegreen.release.model import ColorStatus, Conflict, ReleaseError, ServiceView
from bluegreen.release.ports import Platform


class FakePlatform(Platform):
    name = "fake"

    def __init__(self, app):
        super().__init__(app)
        self.service: dict | None = None  # {"selector", "annotations", "version"}
        self.others: dict[str, dict] = {}  # other services (preview), by name: the same keys
        self.workloads: dict[str, dict] = {}  # color -> {"manifest", "ready", "desired", "restarts", "failure"}
        self.calls: list[str] = []
        self.conflicts_to_raise = 0
        self.backends_follow_selector = True

    # reads
    def _url_fields(self, name: str) -> dict[str, str]:
        # every field an adapter fills (an app's check URL may name any of them)
        return {
            "service": name,
            "namespace": self.app.namespace,
            "cluster_ip": "10.0.0.1",
            "port": "18001",
            "node_port": "30001",
            "lb_port": "18001",
        }

    def read_service(self, manifest=None):
        if manifest is not None:
            name = manifest["metadata"]["name"]
            other = self.others.get(name)
            return (
                ServiceView(
                    dict(other["selector"]),
                    dict(other.get("annotations") or {}),
                    str(other.get("version", 1)),
                    self._url_fields(name),
                )
                if other
                else None
            )
        if self.service is None:
            return None
        return ServiceView(
            dict(self.service["selector"]),
            dict(self.service["annotations"]),
            str(self.service["version"]),
            self._url_fields(self.app.service),
        )

    def observe(self, color):
        w = self.workloads.get(color)
        if w is None:
            return ColorStatus.missing()
        return ColorStatus(
            exists=True,
            desired=w["desired"],
            ready=w["ready"],
            restarts=w["restarts"],
            complete=w["ready"] == w["desired"] and not w["failure"],
            failure=w["failure"],
            progress=f"{w['ready']}/{w['desired']} available",
            image=mf.image_of(self.app.platform, w["manifest"], None),
        )

    def read_manifest(self, color):
        w = self.workloads.get(color)
        if not w:
            return None
        out = copy.deepcopy(w["manifest"])
        # as both adapters: bluegreen's own marks (bluegreen.io/...) are not part of the manifest
        meta = out.get("metadata") or {}
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("bluegreen.io/")}
        meta.pop("annotations", None)
        if annotations:
            meta["annotations"] = annotations
        return out

    def service_backends(self):
        if self.service is None or not self.backends_follow_selector:
            return set()
        color = self.app.color_of(self.service["selector"])
        return self.ready_members(color) if color else set()

    def ready_members(self, color):
        w = self.workloads.get(color)
        return {f"{color}-{i}" for i in range(w["ready"])} if w else set()

    # writes
    def apply_color(self, color, manifest):
        self.calls.append(f"apply {color}")
        w = self.workloads.get(color)
        desired = manifest["spec"]["replicas"]
        if w and w["manifest"] == manifest:
            return "unchanged"
        self.workloads[color] = {
            "manifest": copy.deepcopy(manifest),
            "ready": desired,
            "desired": desired,
            "restarts": 0,
            "failure": None,
        }
        return "replaced" if w else "created"

    def scale_color(self, color, replicas):
        self.calls.append(f"scale {color} {replicas}")
        w = self.workloads.get(color)
        if w is None:  # the API's 404 / "deployment not exist"
            raise ReleaseError(f"fake: deployment {self.app.deployment_name(color)} not found")
        w["desired"] = w["ready"] = replicas

    def delete_color(self, color):
        self.calls.append(f"delete {color}")
        self.workloads.pop(color, None)

    def color_gone(self, color):
        return color not in self.workloads

    def create_service(self, selector, annotations, manifest=None):
        if manifest is not None:
            name = manifest["metadata"]["name"]
            if name in self.others:
                raise Conflict(f"the Service {name} exists")
            self.others[name] = {"selector": dict(selector), "annotations": dict(annotations), "version": 1}
            return self.read_service(manifest)
        self.calls.append(f"create service {selector}")
        if self.service is not None:
            raise Conflict("exists")
        self.service = {"selector": dict(selector), "annotations": dict(annotations), "version": 1}
        return self.read_service()

    def write_service(self, current, selector, annotations, manifest=None):
        if manifest is not None:
            name = manifest["metadata"]["name"]
            other = self.others.get(name)
            if other is None:
                raise ReleaseError(f"the Service {name} disappeared")
            if current.version and str(other.get("version", 1)) != current.version:
                raise Conflict("changed")
            other["selector"] = dict(selector)
            other["annotations"] = _merged(other.get("annotations") or {}, annotations)
            other["version"] = other.get("version", 1) + 1
            return self.read_service(manifest)
        if self.service is None:
            raise ReleaseError(f"the Service {self.app.service} disappeared")
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            self.service["version"] += 1
            raise Conflict("changed")
        if str(self.service["version"]) != current.version:
            raise Conflict("changed")
        self.calls.append(f"write service {selector}")
        self.service["selector"] = dict(selector)
        self.service["annotations"] = _merged(self.service["annotations"], annotations)
        self.service["version"] += 1
        return self.read_service()

    def delete_service(self, manifest=None, current=None):
        if manifest is not None:
            name = manifest["metadata"]["name"]
            other = self.others.get(name)
            if (
                current is not None
                and current.version
                and other is not None
                and str(other.get("version", 1)) != current.version
            ):
                raise Conflict("changed")
            self.others.pop(name, None)
            return
        if current is not None and self.service is not None and str(self.service["version"]) != current.version:
            raise Conflict("changed")
        self.calls.append("delete service")
        self.service = None

    # what a person types: like the adapters', naming the object (namespace and name); the switch
    # still begins "switch to <selector>", which test_safety.py's message check matches
    def manual_switch(self, selector):
        return (
            f"switch to {selector}: fake-cli -n {self.app.namespace} set-selector service {self.app.service} "
            f"{json.dumps(selector)}"
        )

    def manual_delete(self, color):
        return f"fake-cli -n {self.app.namespace} delete workload {self.app.deployment_name(color)}"

    async def watch(self, color, heartbeat=2.0):
        import asyncio

        while True:
            yield self.observe(color)
            await asyncio.sleep(min(heartbeat, 0.01))

    async def watch_service(self, heartbeat=2.0):
        import asyncio

        while True:
            yield FakePlatform.read_service(self)  # (what the watch delivers is not a read by the model)
            await asyncio.sleep(min(heartbeat, 0.01))


def _merged(stored: dict, changes: dict) -> dict:
    """``changes`` merged into ``stored``: None removes a key (as the adapters' with_selector)."""
    out = dict(stored)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out
