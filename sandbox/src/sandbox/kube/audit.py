"""The Kubernetes front end's entries in the audit log (sandbox/audit.py).

Fed from the store's event stream (Cluster._on_event), synchronously inside the write,
so the facts are those of the moment the API call changed the cluster:

* a Service ADDED, MODIFIED with another selector, or DELETED: a ``service_selector``
  event with what the new selector matches;
* a Deployment whose deletion starts (DELETED, or a foreground deletion's
  deletionTimestamp appearing) or whose spec.replicas goes down (scale subresource,
  update, patch): a ``workload_delete`` / ``workload_scale_down`` event with the
  Services that select its pods right then.

"Fully rolled out" is kubectl's ``rollout status`` rule (DeploymentStatusViewer) applied
to the stored Deployment: the spec change observed, no ProgressDeadlineExceeded,
updatedReplicas == replicas, no old replicas left, availableReplicas == updatedReplicas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.runtime.runtime import matches

from . import resources as R
from .store import Event
from .workloads import controller_of

if TYPE_CHECKING:
    from .cluster import Cluster


def rolled_out(d: dict) -> bool:
    """kubectl rollout status: would it say 'successfully rolled out'?"""
    spec, status = d.get("spec") or {}, d.get("status") or {}
    if int(d["metadata"].get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return False
    if any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in status.get("conditions") or []
    ):
        return False
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    return (
        updated >= replicas
        and (status.get("replicas") or 0) <= updated
        and (status.get("availableReplicas") or 0) >= updated
    )


def _deployment_of(c: Cluster, ns: str, rs_name: str) -> str | None:
    rs = c.store.peek(R.REPLICASETS, ns, rs_name)
    ref = controller_of(rs) if rs is not None else None
    return ref["name"] if ref and ref.get("kind") == "Deployment" else None


def _live_pods(c: Cluster, ns: str):
    """Pods that run and are not being deleted (or evicted): the ones a Service can mean."""
    return [
        r for r in c.workloads.records.values() if r.namespace == ns and r.deletion_timestamp is None and not r.evicted
    ]


def matched(c: Cluster, ns: str, selector: dict | None) -> dict:
    """What a selector matches now: pods (ready ones), and each Deployment whose pods or pod
    template it matches, with its desired replicas and whether it is fully rolled out."""
    pods = [r for r in _live_pods(c, ns) if matches(selector or {}, r.pod.labels)]
    by_deployment: dict[str, list] = {}
    for r in pods:
        by_deployment.setdefault(_deployment_of(c, ns, r.rs_name) or "", []).append(r)
    for d in c.store.list(R.DEPLOYMENTS, ns):
        template = ((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        if matches(selector or {}, template):
            by_deployment.setdefault(d["metadata"]["name"], [])
    workloads = []
    for name in sorted(n for n in by_deployment if n):
        d = c.store.peek(R.DEPLOYMENTS, ns, name)
        if d is None:
            continue
        mine = by_deployment[name]
        workloads.append(
            {
                "kind": "Deployment",
                "name": name,
                "replicas": d["spec"].get("replicas", 1),
                "rolled_out": rolled_out(d),
                "pods": len(mine),
                "ready": sum(1 for r in mine if r.pod.ready),
            }
        )
    return {"pods": len(pods), "ready": sum(1 for r in pods if r.pod.ready), "workloads": workloads}


def selecting(c: Cluster, d: dict) -> list[dict]:
    """Services of the Deployment's namespace whose selector (stored, or still routed by the
    proxies) matches its pods or its pod template, with when that selector last changed."""
    ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
    labels = [((d["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}]
    labels += [r.pod.labels for r in _live_pods(c, ns) if _deployment_of(c, ns, r.rs_name) == name]
    out = []
    for svc in c.store.list(R.SERVICES, ns):
        svc_name = svc["metadata"]["name"]
        stored = svc["spec"].get("selector") or None
        key = ("kube", ns, svc_name)
        routed = c.runtime.propagation.routed(key, stored)
        selects = any(matches(stored or {}, lab) for lab in labels)
        routes = any(matches(routed or {}, lab) for lab in labels)
        if selects or routes:
            out.append(
                {
                    "service": svc_name,
                    "selector": stored,
                    "routed_selector": routed,
                    "selects": selects,
                    "routes": routes,
                    "selector_changed_at": c.runtime.audit.selector_changed.get(key),
                }
            )
    return out


def on_event(c: Cluster, resource: R.Resource, event: Event) -> None:
    if resource is R.SERVICES:
        _service(c, event)
    elif resource is R.DEPLOYMENTS:
        _deployment(c, event)


def _service(c: Cluster, event: Event) -> None:
    meta = event.obj["metadata"]
    ns, name = meta["namespace"], meta["name"]
    new = None if event.type == "DELETED" else (event.obj["spec"].get("selector") or None)
    old = None if event.type == "ADDED" or event.old is None else (event.old["spec"].get("selector") or None)
    if event.type == "MODIFIED" and old == new:
        return
    verb = {"ADDED": "create", "MODIFIED": "update", "DELETED": "delete"}[event.type]
    c.runtime.audit.selector_change(
        "kube", ns, name, verb, old, new, matched(c, ns, new) if new else {"pods": 0, "ready": 0, "workloads": []}
    )


def _deployment(c: Cluster, event: Event) -> None:
    d, old = event.obj, event.old
    meta = d["metadata"]
    audit = c.runtime.audit
    fields = dict(api="kube", namespace=meta["namespace"], name=meta["name"], workload_kind="Deployment")
    if event.type == "DELETED":
        if old is not None and not old["metadata"].get("deletionTimestamp"):
            audit.record(
                "workload_delete", **fields, replicas=old["spec"].get("replicas", 1), selected_by=selecting(c, old)
            )
        return
    if event.type != "MODIFIED" or old is None:
        return
    if meta.get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
        audit.record("workload_delete", **fields, replicas=d["spec"].get("replicas", 1), selected_by=selecting(c, d))
        return
    before, after = old["spec"].get("replicas", 1), d["spec"].get("replicas", 1)
    if after < before:
        audit.record(
            "workload_scale_down", **fields, replicas={"from": before, "to": after}, selected_by=selecting(c, d)
        )
