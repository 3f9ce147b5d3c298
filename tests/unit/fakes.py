"""An in-memory platform for unit tests of the release model's own logic (no cluster)."""

from __future__ import annotations

import copy

from bluegreen.release.ports import Platform
from bluegreen.apps import manifests as mf
from bluegreen.release.model import ColorStatus, Conflict, ServiceView


class FakePlatform(Platform):
    name = "fake"

    def __init__(self, app):
        super().__init__(app)
        self.service: dict | None = None  # {"selector", "annotations", "version"}
        self.others: dict[str, dict] = {}   # other services (preview), by name
        self.workloads: dict[str, dict] = {}  # color -> {"manifest", "ready", "desired", "restarts", "failure"}
        self.calls: list[str] = []
        self.conflicts_to_raise = 0
        self.backends_follow_selector = True

    # reads
    def read_service(self, manifest=None):
        if manifest is not None:
            other = self.others.get(manifest["metadata"]["name"])
            return ServiceView(dict(other["selector"]), {}, "1") if other else None
        if self.service is None:
            return None
        return ServiceView(dict(self.service["selector"]), dict(self.service["annotations"]),
                           str(self.service["version"]), {"node_port": "30001"})

    def observe(self, color):
        w = self.workloads.get(color)
        if w is None:
            return ColorStatus.missing()
        return ColorStatus(exists=True, desired=w["desired"], ready=w["ready"], restarts=w["restarts"],
                           complete=w["ready"] == w["desired"] and not w["failure"], failure=w["failure"],
                           progress=f"{w['ready']}/{w['desired']} available",
                           image=mf.image_of(self.app.platform, w["manifest"], None))

    def read_manifest(self, color):
        w = self.workloads.get(color)
        return copy.deepcopy(w["manifest"]) if w else None

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
        self.workloads[color] = {"manifest": copy.deepcopy(manifest), "ready": desired, "desired": desired,
                                 "restarts": 0, "failure": None}
        return "replaced" if w else "created"

    def scale_color(self, color, replicas):
        self.calls.append(f"scale {color} {replicas}")
        w = self.workloads[color]
        w["desired"] = w["ready"] = replicas

    def delete_color(self, color):
        self.calls.append(f"delete {color}")
        self.workloads.pop(color, None)

    def color_gone(self, color):
        return color not in self.workloads

    def create_service(self, selector, annotations, manifest=None):
        if manifest is not None:
            self.others[manifest["metadata"]["name"]] = {"selector": dict(selector)}
            return self.read_service(manifest)
        self.calls.append(f"create service {selector}")
        if self.service is not None:
            raise Conflict("exists")
        self.service = {"selector": dict(selector), "annotations": dict(annotations), "version": 1}
        return self.read_service()

    def write_service(self, current, selector, annotations, manifest=None):
        if manifest is not None:
            self.others[manifest["metadata"]["name"]] = {"selector": dict(selector)}
            return self.read_service(manifest)
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            self.service["version"] += 1
            raise Conflict("changed")
        if str(self.service["version"]) != current.version:
            raise Conflict("changed")
        self.calls.append(f"write service {selector}")
        self.service["selector"] = dict(selector)
        for k, v in annotations.items():
            if v is None:
                self.service["annotations"].pop(k, None)
            else:
                self.service["annotations"][k] = v
        self.service["version"] += 1
        return self.read_service()

    def delete_service(self, manifest=None, current=None):
        if manifest is not None:
            self.others.pop(manifest["metadata"]["name"], None)
            return
        if current is not None and self.service is not None and str(self.service["version"]) != current.version:
            raise Conflict("changed")
        self.calls.append("delete service")
        self.service = None

    def manual_switch(self, selector):
        return f"switch to {selector}"

    def manual_delete(self, color):
        return f"delete {color}"

    async def watch(self, color, heartbeat=2.0):
        import asyncio

        while True:
            yield self.observe(color)
            await asyncio.sleep(min(heartbeat, 0.01))
