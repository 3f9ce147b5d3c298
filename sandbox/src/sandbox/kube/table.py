"""Server-side printing: the meta.k8s.io/v1 ``Table`` that kubectl asks for with
``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` (pkg/printers/internalversion),
so ``kubectl get`` shows the real columns (READY, UP-TO-DATE, STATUS, PORT(S), ...)."""

from __future__ import annotations

import calendar
import time

from . import resources as R
from .selectors import selector_string


def wants_table(accept: str) -> bool:
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if "as=Table" in params and "g=meta.k8s.io" in params and ("v=v1" in params or "v=v1beta1" in params):
            return True
    return False


def age(timestamp: str | None) -> str:
    """duration.HumanDuration of the time since ``timestamp``."""
    if not timestamp:
        return "<unknown>"
    seconds = max(0, int(time.time() - calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m{s}s" if s else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        m = minutes % 60
        return f"{hours}h{m}m" if m else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _col(name: str, description: str = "", priority: int = 0, fmt: str = "", typ: str = "string") -> dict:
    return {"name": name, "type": typ, "format": fmt, "description": description, "priority": priority}


NAME = _col("Name", "Name must be unique within a namespace.", fmt="name")
AGE = _col("Age", "CreationTimestamp is a timestamp representing the server time when this object was created.")


def _images(template_spec: dict) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _deployment(o: dict) -> list:
    s, st = o.get("spec") or {}, o.get("status") or {}
    containers, images = _images((s.get("template") or {}).get("spec") or {})
    return [
        o["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{s.get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(o["metadata"].get("creationTimestamp")),
        containers,
        images,
        selector_string(s.get("selector")),
    ]


def _replicaset(o: dict) -> list:
    s, st = o.get("spec") or {}, o.get("status") or {}
    containers, images = _images((s.get("template") or {}).get("spec") or {})
    return [
        o["metadata"]["name"],
        s.get("replicas", 1),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        age(o["metadata"].get("creationTimestamp")),
        containers,
        images,
        selector_string(s.get("selector")),
    ]


def _pod(o: dict) -> list:
    st = o.get("status") or {}
    statuses = st.get("containerStatuses") or []
    total = len((o.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    reason = st.get("phase", "Pending")
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [
        o["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        restarts,
        age(o["metadata"].get("creationTimestamp")),
        st.get("podIP") or "<none>",
        (o.get("spec") or {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _service(o: dict) -> list:
    s = o.get("spec") or {}
    ports = []
    for p in s.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    external = "<pending>" if s.get("type") == "LoadBalancer" else "<none>"
    selector = ",".join(f"{k}={v}" for k, v in sorted((s.get("selector") or {}).items())) or "<none>"
    return [
        o["metadata"]["name"],
        s.get("type", "ClusterIP"),
        s.get("clusterIP") or "<none>",
        external,
        ",".join(ports) or "<none>",
        age(o["metadata"].get("creationTimestamp")),
        selector,
    ]


def _endpoints(o: dict) -> list:
    items = []
    for subset in o.get("subsets") or []:
        for a in subset.get("addresses") or []:
            for p in subset.get("ports") or []:
                items.append(f"{a['ip']}:{p['port']}")
    shown = ",".join(items[:3]) + (f" + {len(items) - 3} more..." if len(items) > 3 else "")
    return [o["metadata"]["name"], shown or "<none>", age(o["metadata"].get("creationTimestamp"))]


def _namespace(o: dict) -> list:
    return [
        o["metadata"]["name"],
        (o.get("status") or {}).get("phase", ""),
        age(o["metadata"].get("creationTimestamp")),
    ]


def _slice(o: dict) -> list:
    ports = ",".join(str(p.get("port")) for p in o.get("ports") or []) or "<unset>"
    addresses = [a for e in o.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
    return [
        o["metadata"]["name"],
        o.get("addressType", ""),
        ports,
        shown or "<unset>",
        age(o["metadata"].get("creationTimestamp")),
    ]


def _service_account(o: dict) -> list:
    return [o["metadata"]["name"], len(o.get("secrets") or []), age(o["metadata"].get("creationTimestamp"))]


def _role(o: dict) -> list:
    return [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")]


def _binding(o: dict) -> list:
    subjects = o.get("subjects") or []

    def of(kind: str) -> str:
        return ", ".join(
            f"{s.get('namespace', '')}/{s['name']}" if kind == "ServiceAccount" else s["name"]
            for s in subjects
            if s.get("kind") == kind
        )

    ref = o.get("roleRef") or {}
    return [
        o["metadata"]["name"],
        f"{ref.get('kind')}/{ref.get('name')}",
        age(o["metadata"].get("creationTimestamp")),
        of("User"),
        of("Group"),
        of("ServiceAccount"),
    ]


_ROLE_COLUMNS = [NAME, _col("Created At", "", fmt="date")]
_BINDING_COLUMNS = [
    NAME,
    _col("Role"),
    AGE,
    _col("Users", "", 1),
    _col("Groups", "", 1),
    _col("ServiceAccounts", "", 1),
]


def _containers_images_selector() -> list[dict]:
    return [
        _col("Containers", "Names of each container in the template.", 1),
        _col("Images", "Images referenced by each container in the template.", 1),
        _col("Selector", "Label selector for pods.", 1),
    ]


COLUMNS = {
    "deployments": (
        [
            NAME,
            _col("Ready", "Number of the pod with ready state"),
            _col(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                typ="integer",
            ),
            _col(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                typ="integer",
            ),
            AGE,
        ]
        + _containers_images_selector(),
        _deployment,
    ),
    "replicasets": (
        [
            NAME,
            _col("Desired", "Replicas is the number of desired replicas.", typ="integer"),
            _col("Current", "Replicas is the most recently observed number of replicas.", typ="integer"),
            _col("Ready", "The number of ready replicas for this replica set.", typ="integer"),
            AGE,
        ]
        + _containers_images_selector(),
        _replicaset,
    ),
    "pods": (
        [
            NAME,
            _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", "The aggregate status of the containers in this pod."),
            _col("Restarts", "The number of times the containers in this pod have been restarted.", typ="string"),
            AGE,
            _col("IP", "IP address allocated to the pod.", 1),
            _col("Node", "Name of the node.", 1),
            _col("Nominated Node", "Name of the node where the pod is nominated to run.", 1),
            _col("Readiness Gates", "Pod readiness gates.", 1),
        ],
        _pod,
    ),
    "services": (
        [
            NAME,
            _col("Type", "The type of the service."),
            _col("Cluster-IP", "The cluster IP of the service."),
            _col("External-IP", "The external IP of the service."),
            _col("Port(s)", "The ports of the service."),
            AGE,
            _col("Selector", "Route service traffic to pods with label keys and values matching this selector.", 1),
        ],
        _service,
    ),
    "endpoints": ([NAME, _col("Endpoints", "Endpoints of the resource."), AGE], _endpoints),
    "namespaces": ([NAME, _col("Status", "The status of the namespace"), AGE], _namespace),
    "endpointslices": (
        [
            NAME,
            _col("AddressType", "Type of address carried by this EndpointSlice."),
            _col("Ports", "Ports of this EndpointSlice."),
            _col("Endpoints", "Addresses of this EndpointSlice."),
            AGE,
        ],
        _slice,
    ),
    "serviceaccounts": (
        [
            NAME,
            _col(
                "Secrets",
                "Secrets is a list of the secrets in the same namespace that pods "
                "running using this ServiceAccount are allowed to use.",
                typ="integer",
            ),
            AGE,
        ],
        _service_account,
    ),
    "roles": (_ROLE_COLUMNS, _role),
    "clusterroles": (_ROLE_COLUMNS, _role),
    "rolebindings": (_BINDING_COLUMNS, _binding),
    "clusterrolebindings": (_BINDING_COLUMNS, _binding),
}


def _row(resource: R.Resource, obj: dict, include: str) -> dict:
    _, cells = COLUMNS[resource.plural]
    row: dict = {"cells": cells(obj)}
    if include == "Object":
        row["object"] = {"kind": resource.kind, "apiVersion": resource.api_version, **obj}
    elif include != "None":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
    return row


def table(resource: R.Resource, objects: list[dict], list_meta: dict | None, include: str) -> dict:
    columns, _ = COLUMNS[resource.plural]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta or {},
        "columnDefinitions": columns,
        "rows": [_row(resource, o, include) for o in objects],
    }


def watch_table(resource: R.Resource, obj: dict, include: str, first: bool) -> dict:
    """One watch event's object: a Table with one row (column definitions on the first)."""
    columns, _ = COLUMNS[resource.plural]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
        "columnDefinitions": columns if first else [],
        "rows": [_row(resource, obj, include)],
    }
