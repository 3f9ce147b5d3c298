"""RBAC as kube-apiserver's authorizer chain evaluates it.

* ``attributes``: a request's authorizer attributes, as RequestInfoFactory derives them
  (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go): verb from the method (GET is
  get, list or watch; DELETE without a name is deletecollection), namespace, resource,
  subresource, name (for a list/watch also from a ``metadata.name=`` field selector), or a
  non-resource path (/api, /apis/..., /version, /openapi/...).
* ``authorize``: the privileged group (system:masters) first, then RBAC: every
  ClusterRoleBinding, then the RoleBindings of the request's namespace, whose subjects
  include the user (User, Group, ServiceAccount), each rule matched as
  plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows does (``*`` verbs, groups and
  resources, ``*/subresource``, resourceNames, nonResourceURLs with a trailing ``*``).
  Allowed: the reason names the binding (``RBAC: allowed by RoleBinding "b/ns" of Role "r"
  to ServiceAccount "sa/ns"``); denied: no reason, or the bindings' resolution errors
  (``RBAC: role.rbac.authorization.k8s.io "r" not found``).  ``visit`` walks the bindings
  for both (pkg/registry/rbac/validation/rule.go VisitRulesFor).
* ``rules_for``: RBACAuthorizer.RulesFor, what a SelfSubjectRulesReview lists: the rules of
  those bindings for one namespace, resource and non-resource apart, and the errors.
* ``forbidden``: the 403 Status the authorization filter writes
  (responsewriters.Forbidden: apierrors.NewForbidden with forbiddenMessage).
* ``BOOTSTRAP``: the default ClusterRoles and ClusterRoleBindings every cluster has that
  matter here: discovery and the self reviews for every authenticated user, cluster-admin
  for system:masters.
* ``validate``: the rbac registry's validation (pkg/apis/rbac/validation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from . import errors
from . import resources as R

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    uid: str = ""

    @property
    def privileged(self) -> bool:
        return MASTERS in self.groups


@dataclass
class Attributes:
    user: User
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


# -- request attributes ----------------------------------------------------------------
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def attributes(user: User, method: str, path: str, query) -> Attributes:
    verb = _METHOD_VERBS.get(method.upper(), "")
    parts = [p for p in path.strip("/").split("/") if p]
    # a non-resource request's verb is the method itself, lower-cased ("get", "post", ...)
    nonresource = Attributes(user, method.lower(), False, path=path)
    if len(parts) < 2 or parts[0] not in ("api", "apis"):
        return nonresource
    if parts[0] == "apis":
        if len(parts) < 3:
            return nonresource
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        group, version, rest = "", parts[1], parts[2:]
    if not rest:
        return nonresource  # /api/v1, /apis/apps/v1: discovery
    a = Attributes(user, verb, True, path=path, group=group, version=version)
    if rest[0] == "watch":
        if len(rest) < 2:
            return nonresource
        a.verb, rest = "watch", rest[1:]
    if rest[0] == "namespaces":
        if len(rest) > 1:
            a.namespace = rest[1]
            if len(rest) > 2 and rest[2] not in ("status", "finalize"):
                rest = rest[2:]
    a.resource = rest[0]
    if len(rest) >= 2:
        a.name = rest[1]
    if len(rest) >= 3:
        a.subresource = rest[2]
    if not a.name and a.verb == "get":
        a.verb = "watch" if str(query.get("watch", "")).lower() in ("true", "1") else "list"
        for term in (query.get("fieldSelector") or "").split(","):
            key, sep, value = term.partition("=")
            if sep and key.strip() == "metadata.name" and not value.startswith("=") and "/" not in value:
                a.name = value.strip()
    if not a.name and a.verb == "delete":
        a.verb = "deletecollection"
    return a


# -- evaluation ------------------------------------------------------------------------
def _rule_allows(a: Attributes, rule: dict) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and a.verb not in verbs:
        return False
    if not a.resource_request:
        return any(
            u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u.rstrip("*")))
            for u in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and a.group not in groups:
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if not any(
        r == "*" or r == combined or (a.subresource and r == f"*/{a.subresource}") for r in rule.get("resources") or []
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _applies(user: User, subject: dict, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or namespace
        return bool(ns) and user.name == f"system:serviceaccount:{ns}:{name}"
    return False


def _describe(subject: dict, namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


def _role_rules(store, ref: dict, namespace: str) -> list[dict]:
    """The rules a binding's roleRef points at; KeyError (with the lister's message) when missing."""
    kind, name = ref.get("kind"), ref.get("name", "")
    if kind == "Role":
        role = store.peek(R.ROLES, namespace, name)
        if role is None:
            raise KeyError(f'role.{R.RBAC} "{name}" not found')
    elif kind == "ClusterRole":
        role = store.peek(R.CLUSTERROLES, "", name)
        if role is None:
            raise KeyError(f'clusterrole.{R.RBAC} "{name}" not found')
    else:
        raise KeyError(f'unsupported role reference kind: "{kind}"')
    return role.get("rules") or []


class Grant(NamedTuple):
    """One binding that applies to the user: its role's rules, or the error resolving them."""

    binding: dict
    namespace: str  # the RoleBinding's; "" for a ClusterRoleBinding
    subject: dict
    ref: dict
    rules: list[dict]
    error: str


def visit(store, user: User, namespace: str) -> Iterator[Grant]:
    """DefaultRuleResolver.VisitRulesFor: every ClusterRoleBinding, then (for a namespace)
    its RoleBindings, whose subjects include the user."""
    bindings = [(b, "") for b in store.list(R.CLUSTERROLEBINDINGS)]
    if namespace:
        bindings += [(b, namespace) for b in store.list(R.ROLEBINDINGS, namespace)]
    for binding, ns in bindings:
        subject = next((s for s in binding.get("subjects") or [] if _applies(user, s, ns)), None)
        if subject is None:
            continue
        ref = binding.get("roleRef") or {}
        try:
            yield Grant(binding, ns, subject, ref, _role_rules(store, ref, ns), "")
        except KeyError as e:
            yield Grant(binding, ns, subject, ref, [], e.args[0])


def _aggregate(problems: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message alone, several (deduplicated) in brackets."""
    unique = list(dict.fromkeys(problems))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def authorize(store, a: Attributes) -> tuple[bool, str]:
    """(allowed, reason), as the authorizer chain (privileged groups, then RBAC) decides."""
    if a.user.privileged:
        return True, ""
    problems: list[str] = []
    for g in visit(store, a.user, a.namespace):
        if g.error:
            problems.append(g.error)
        elif any(_rule_allows(a, rule) for rule in g.rules):
            kind = "RoleBinding" if g.namespace else "ClusterRoleBinding"
            name = g.binding["metadata"]["name"]
            where = f"{name}/{g.namespace}" if g.namespace else name
            return True, (
                f'RBAC: allowed by {kind} "{where}" of {g.ref.get("kind")} "{g.ref.get("name")}" to '
                f"{_describe(g.subject, g.namespace)}"
            )
    return False, ("RBAC: " + _aggregate(problems)) if problems else ""


def rules_for(store, user: User, namespace: str) -> tuple[list[dict], list[dict], str]:
    """RBACAuthorizer.RulesFor, what a SelfSubjectRulesReview reports: the rules of every
    binding that applies to the user in the namespace, as written (``deployments/scale``
    stays one resource), split into resource rules and non-resource rules; and the
    bindings' resolution errors (an evaluationError, no "RBAC: " prefix).  The privileged
    group is not a rule resolver: system:masters shows what its cluster-admin binding grants."""
    resource_rules: list[dict] = []
    non_resource_rules: list[dict] = []
    problems: list[str] = []
    for g in visit(store, user, namespace):
        if g.error:
            problems.append(g.error)
        for rule in g.rules:
            verbs = list(rule.get("verbs") or [])
            if rule.get("resources"):
                resource_rules.append(
                    {"verbs": verbs}
                    | {k: list(rule[k]) for k in ("apiGroups", "resources", "resourceNames") if rule.get(k)}
                )
            if rule.get("nonResourceURLs"):
                non_resource_rules.append({"verbs": verbs, "nonResourceURLs": list(rule["nonResourceURLs"])})
    return resource_rules, non_resource_rules, _aggregate(problems) if problems else ""


def forbidden(a: Attributes, reason: str) -> errors.ApiError:
    user = a.user.name
    if not a.resource_request:
        msg = f'User "{user}" cannot {a.verb} path "{a.path}"'
    else:
        resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        msg = f'User "{user}" cannot {a.verb} resource "{resource}" in API group "{a.group}" {scope}'
    if reason:
        msg += f": {reason}"
    if not a.resource_request:
        return errors.ApiError(403, "Forbidden", f"forbidden: {msg}", {})
    qualified = errors.qualified(a.resource, a.group)
    details: dict = {}
    if a.name:
        details["name"] = a.name
    if a.group:
        details["group"] = a.group
    details["kind"] = a.resource
    head = f'{qualified} "{a.name}"' if a.name else qualified
    return errors.ApiError(403, "Forbidden", f"{head} is forbidden: {msg}", details)


# -- the default policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go) ------
_BOOTSTRAP_META = {
    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
}
_RBAC_GROUP = R.RBAC


def _cluster_role(name: str, rules: list[dict]) -> dict:
    return {"metadata": {"name": name, **_BOOTSTRAP_META}, "rules": rules}


def _cluster_binding(name: str, role: str, groups: list[str]) -> dict:
    return {
        "metadata": {"name": name, **_BOOTSTRAP_META},
        "roleRef": {"apiGroup": _RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": _RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
    }


BOOTSTRAP_CLUSTER_ROLES = [
    _cluster_role(
        "cluster-admin",
        [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    ),
    _cluster_role(
        "system:discovery",
        [
            {
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                "verbs": ["get"],
            }
        ],
    ),
    _cluster_role(
        "system:public-info-viewer",
        [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}],
    ),
    _cluster_role(
        "system:basic-user",
        [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
        ],
    ),
]
BOOTSTRAP_CLUSTER_ROLE_BINDINGS = [
    _cluster_binding("cluster-admin", "cluster-admin", [MASTERS]),
    _cluster_binding("system:discovery", "system:discovery", [AUTHENTICATED]),
    _cluster_binding(
        "system:public-info-viewer", "system:public-info-viewer", [AUTHENTICATED, "system:unauthenticated"]
    ),
    _cluster_binding("system:basic-user", "system:basic-user", [AUTHENTICATED]),
]


# -- validation (pkg/apis/rbac/validation/validation.go) ---------------------------------
def _validate_rules(rules, namespaced: bool) -> list:
    errs: list = []
    for i, rule in enumerate(rules or []):
        path = f"rules[{i}]"
        if not rule.get("verbs"):
            errs.append(errors.required(f"{path}.verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            if namespaced:
                errs.append(
                    errors.invalid(
                        f"{path}.nonResourceURLs",
                        rule["nonResourceURLs"],
                        "namespaced rules cannot apply to non-resource URLs",
                    )
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errs.append(
                    errors.invalid(
                        f"{path}.nonResourceURLs",
                        rule["nonResourceURLs"],
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            errs.append(errors.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            errs.append(errors.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _validate_binding(obj: dict, namespaced: bool) -> list:
    errs: list = []
    ref = obj.get("roleRef") or {}
    if ref.get("apiGroup") != _RBAC_GROUP:
        errs.append(errors.not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [_RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(errors.not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        errs.append(errors.required("roleRef.name"))
    for i, s in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        if not s.get("name"):
            errs.append(errors.required(f"{path}.name"))
        if s.get("kind") == "ServiceAccount":
            if s.get("apiGroup"):
                errs.append(errors.not_supported(f"{path}.apiGroup", s["apiGroup"], [""]))
            if not s.get("namespace") and not namespaced:
                errs.append(errors.required(f"{path}.namespace"))
        elif s.get("kind") in ("User", "Group"):
            if s.get("apiGroup") != _RBAC_GROUP:
                errs.append(errors.not_supported(f"{path}.apiGroup", s.get("apiGroup", ""), [_RBAC_GROUP]))
        else:
            errs.append(errors.not_supported(f"{path}.kind", s.get("kind", ""), ["ServiceAccount", "User", "Group"]))
    return errs


def default(resource: R.Resource, obj: dict) -> None:
    """SetDefaults_Subject: User and Group subjects are of the RBAC group."""
    if resource in (R.ROLEBINDINGS, R.CLUSTERROLEBINDINGS):
        for s in obj.get("subjects") or []:
            if not s.get("apiGroup") and s.get("kind") in ("User", "Group"):
                s["apiGroup"] = _RBAC_GROUP


def validate(resource: R.Resource, obj: dict, old: dict | None = None) -> list:
    if resource in (R.ROLES, R.CLUSTERROLES):
        return _validate_rules(obj.get("rules"), resource.namespaced)
    if resource in (R.ROLEBINDINGS, R.CLUSTERROLEBINDINGS):
        errs = _validate_binding(obj, resource.namespaced)
        if old is not None and (old.get("roleRef") or {}) != (obj.get("roleRef") or {}):
            errs.append(
                errors.invalid(
                    "roleRef", errors.GoRepr(_go_role_ref(obj.get("roleRef") or {})), "cannot change roleRef"
                )
            )
        return errs
    return []


def _go_role_ref(ref: dict) -> str:
    return (
        f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
        f'Name:"{ref.get("name", "")}"}}'
    )


RBAC_RESOURCES = (R.ROLES, R.ROLEBINDINGS, R.CLUSTERROLES, R.CLUSTERROLEBINDINGS)


def is_rbac(resource: R.Resource) -> bool:
    return resource in RBAC_RESOURCES
