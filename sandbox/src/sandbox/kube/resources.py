"""The resource types this API server serves, as discovery describes them.

Writes are offered only where the sandbox implements them; discovery lists exactly the
verbs that work, so a client that asks discovery (kubectl does) never tries one that
answers 405.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ = ["get", "list", "watch"]
CRUD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: list[str]
    short_names: list[str] = field(default_factory=list)
    # subresource -> verbs
    subresources: dict[str, list[str]] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    # the kubernetes Python client model describing the object (for schemas and field checks)
    model: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def can(self, verb: str) -> bool:
        return verb in self.verbs


NAMESPACES = Resource(
    "",
    "v1",
    "namespaces",
    "namespace",
    "Namespace",
    False,
    ["create", "delete", "get", "list", "patch", "update", "watch"],
    ["ns"],
    {"status": ["get", "patch", "update"]},
    model="V1Namespace",
)
PODS = Resource(
    "",
    "v1",
    "pods",
    "pod",
    "Pod",
    True,
    ["delete", "get", "list", "watch"],
    ["po"],
    {"status": ["get"]},
    ["all"],
    model="V1Pod",
)
SERVICES = Resource(
    "",
    "v1",
    "services",
    "service",
    "Service",
    True,
    ["create", "delete", "get", "list", "patch", "update", "watch"],
    ["svc"],
    {"status": ["get", "patch", "update"]},
    ["all"],
    model="V1Service",
)
ENDPOINTS = Resource("", "v1", "endpoints", "endpoints", "Endpoints", True, READ, ["ep"], model="V1Endpoints")
DEPLOYMENTS = Resource(
    "apps",
    "v1",
    "deployments",
    "deployment",
    "Deployment",
    True,
    CRUD,
    ["deploy"],
    {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"]},
    ["all"],
    model="V1Deployment",
)
REPLICASETS = Resource(
    "apps",
    "v1",
    "replicasets",
    "replicaset",
    "ReplicaSet",
    True,
    READ,
    ["rs"],
    {"status": ["get"]},
    ["all"],
    model="V1ReplicaSet",
)
ENDPOINTSLICES = Resource(
    "discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True, READ, model="V1EndpointSlice"
)
# Identities and RBAC (kube/auth.py, kube/rbac.py): service accounts with the TokenRequest
# subresource, the four RBAC kinds, and the two self reviews (created, answered, never stored).
SERVICEACCOUNTS = Resource(
    "",
    "v1",
    "serviceaccounts",
    "serviceaccount",
    "ServiceAccount",
    True,
    CRUD,
    ["sa"],
    {"token": ["create"]},
    model="V1ServiceAccount",
)
RBAC = "rbac.authorization.k8s.io"
ROLES = Resource(RBAC, "v1", "roles", "role", "Role", True, CRUD, model="V1Role")
ROLEBINDINGS = Resource(RBAC, "v1", "rolebindings", "rolebinding", "RoleBinding", True, CRUD, model="V1RoleBinding")
CLUSTERROLES = Resource(RBAC, "v1", "clusterroles", "clusterrole", "ClusterRole", False, CRUD, model="V1ClusterRole")
CLUSTERROLEBINDINGS = Resource(
    RBAC,
    "v1",
    "clusterrolebindings",
    "clusterrolebinding",
    "ClusterRoleBinding",
    False,
    CRUD,
    model="V1ClusterRoleBinding",
)
SELFSUBJECTACCESSREVIEWS = Resource(
    "authorization.k8s.io",
    "v1",
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    "SelfSubjectAccessReview",
    False,
    ["create"],
    model="V1SelfSubjectAccessReview",
)
SELFSUBJECTRULESREVIEWS = Resource(
    "authorization.k8s.io",
    "v1",
    "selfsubjectrulesreviews",
    "selfsubjectrulesreview",
    "SelfSubjectRulesReview",
    False,
    ["create"],
    model="V1SelfSubjectRulesReview",
)
SELFSUBJECTREVIEWS = Resource(
    "authentication.k8s.io",
    "v1",
    "selfsubjectreviews",
    "selfsubjectreview",
    "SelfSubjectReview",
    False,
    ["create"],
    model="V1SelfSubjectReview",
)

ALL = [
    NAMESPACES,
    PODS,
    SERVICES,
    ENDPOINTS,
    DEPLOYMENTS,
    REPLICASETS,
    ENDPOINTSLICES,
    SERVICEACCOUNTS,
    ROLES,
    ROLEBINDINGS,
    CLUSTERROLES,
    CLUSTERROLEBINDINGS,
    SELFSUBJECTACCESSREVIEWS,
    SELFSUBJECTRULESREVIEWS,
    SELFSUBJECTREVIEWS,
]
# Answered on create, never stored (list/get/watch are not offered, as on a real server).
REVIEWS = (SELFSUBJECTACCESSREVIEWS, SELFSUBJECTRULESREVIEWS, SELFSUBJECTREVIEWS)

# group -> version -> plural -> Resource
BY_PATH: dict[str, dict[str, dict[str, Resource]]] = {}
for _r in ALL:
    BY_PATH.setdefault(_r.group, {}).setdefault(_r.version, {})[_r.plural] = _r

GROUP_VERSIONS = [
    ("", "v1"),
    ("apps", "v1"),
    ("discovery.k8s.io", "v1"),
    (RBAC, "v1"),
    ("authorization.k8s.io", "v1"),
    ("authentication.k8s.io", "v1"),
]

# Subresource kinds (discovery's APIResource.kind for "deployments/scale" is Scale of autoscaling/v1).
SUBRESOURCE_KIND = {"scale": ("autoscaling", "v1", "Scale"), "token": ("authentication.k8s.io", "v1", "TokenRequest")}


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return BY_PATH.get(group, {}).get(version, {}).get(plural)
