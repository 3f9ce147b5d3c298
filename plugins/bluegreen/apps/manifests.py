"""What each platform's manifests look like, in the few places the app configs (checked at load),
the release model and the adapters read them.

Pure data, kept free of client libraries: the DAG file imports this at parse time.
"""

from __future__ import annotations

import copy
import hashlib
import json

KUBERNETES = "kubernetes"
BCS_MESOS = "bcs-mesos"
PLATFORMS = (KUBERNETES, BCS_MESOS)

# Written by each adapter on the workload it applies: the fingerprint of the manifest as applied,
# so that applying the same manifest again sees that it matches and changes nothing.
APPLIED = "bluegreen.io/applied-manifest-hash"


def fingerprint(data: dict) -> str:
    """A short, stable fingerprint of a manifest (or of any JSON data; key order does not matter)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def workload_name(platform: str, manifest: dict) -> str:
    return (manifest.get("metadata") or {}).get("name", "")


def selectable_labels(platform: str, manifest: dict) -> dict[str, str]:
    """The labels a Service's selector is matched against.

    Kubernetes matches pod labels (the pod template's); BCS Mesos matches the
    deployment's own metadata.labels (bk-bcs service_mgr.go getApplicationServiceLabel).
    """
    if platform == KUBERNETES:
        return dict(((manifest.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})
    return dict((manifest.get("metadata") or {}).get("labels") or {})


def containers(platform: str, manifest: dict) -> list[dict]:
    return list((((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])


def service_selector(platform: str, manifest: dict) -> dict[str, str]:
    return dict((manifest.get("spec") or {}).get("selector") or {})


def with_release(platform: str, manifest: dict, image: str, replicas: int, container: str | None) -> dict:
    """The color's manifest with the release's image and replica count set."""
    out = copy.deepcopy(manifest)
    spec = out.setdefault("spec", {})
    spec["replicas" if platform == KUBERNETES else "instance"] = replicas
    for c in containers(platform, out):
        if container is None or c.get("name") == container:
            c["image"] = image
    return out


def replicas_of(platform: str, manifest: dict) -> int | None:
    """How many replicas (Kubernetes) or instances (BCS Mesos) the manifest asks for."""
    value = (manifest.get("spec") or {}).get("replicas" if platform == KUBERNETES else "instance")
    return value if isinstance(value, int) else None


def image_of(platform: str, manifest: dict, container: str | None) -> str | None:
    for c in containers(platform, manifest):
        if container is None or c.get("name") == container:
            return c.get("image")
    return None


def service_body(manifest: dict, namespace: str, selector: dict[str, str], annotations: dict[str, str]) -> dict:
    """A Service to create from its manifest: in the app's namespace, selecting ``selector``,
    with ``annotations`` added."""
    body = copy.deepcopy(manifest)
    meta = body.setdefault("metadata", {})
    meta["namespace"] = namespace
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    body.setdefault("spec", {})["selector"] = dict(selector)
    return body


def with_selector(stored: dict, selector: dict[str, str], annotations: dict[str, str | None]) -> dict:
    """The stored Service with exactly ``selector`` (no stale keys) and ``annotations`` merged in
    (None removes a key); everything else as stored."""
    body = copy.deepcopy(stored)
    meta = body.setdefault("metadata", {})
    merged = dict(meta.get("annotations") or {})
    for key, value in annotations.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    meta["annotations"] = merged
    body.setdefault("spec", {})["selector"] = dict(selector)
    return body
