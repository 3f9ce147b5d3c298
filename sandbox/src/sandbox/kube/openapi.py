"""OpenAPI v3: the index at /openapi/v3 and one document per group-version.

kubectl reads these before ``apply``: it sends ``fieldValidation=Strict`` only when the
PATCH operation of the kind lists that parameter (query_param_verifier_v3.go), and it
computes strategic merge patches from the schemas' ``x-kubernetes-patch-*`` extensions.
The schemas are generated from the same model table the server decodes with
(schema.py), so both sides agree on fields and merge keys.
"""

from __future__ import annotations

import functools
import hashlib
import json

from . import resources as R
from . import schema

META_TYPES = {
    "ObjectMeta",
    "ListMeta",
    "LabelSelector",
    "LabelSelectorRequirement",
    "OwnerReference",
    "ManagedFieldsEntry",
    "Status",
    "StatusDetails",
    "StatusCause",
    "Condition",
    "DeleteOptions",
    "Preconditions",
    "WatchEvent",
    "FieldSelectorRequirement",
}
APPS_TYPES = {
    "Deployment",
    "DeploymentSpec",
    "DeploymentStatus",
    "DeploymentCondition",
    "DeploymentStrategy",
    "RollingUpdateDeployment",
    "ReplicaSet",
    "ReplicaSetSpec",
    "ReplicaSetStatus",
    "ReplicaSetCondition",
    "DeploymentList",
    "ReplicaSetList",
}
RBAC_TYPES = {
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PolicyRule",
    "RoleRef",
    "Subject",
    "AggregationRule",
}
AUTHORIZATION_TYPES = {
    "SelfSubjectAccessReview",
    "SelfSubjectAccessReviewSpec",
    "SelfSubjectRulesReview",
    "SelfSubjectRulesReviewSpec",
    "SubjectRulesReviewStatus",
    "ResourceRule",
    "NonResourceRule",
    "SubjectAccessReviewStatus",
    "ResourceAttributes",
    "NonResourceAttributes",
    "FieldSelectorAttributes",
    "LabelSelectorAttributes",
}
AUTHENTICATION_TYPES = {
    "SelfSubjectReview",
    "SelfSubjectReviewStatus",
    "UserInfo",
    "TokenRequest",
    "TokenRequestSpec",
    "TokenRequestStatus",
    "BoundObjectReference",
}
# subresource -> the model of its body (the resource's own model otherwise)
SUBRESOURCE_MODEL = {"scale": "V1Scale", "token": "AuthenticationV1TokenRequest"}


def definition_name(model: str) -> str:
    name = schema.go_name(model)
    if model.startswith("Discovery") or name in (
        "EndpointSlice",
        "EndpointSliceList",
        "Endpoint",
        "EndpointConditions",
        "EndpointHints",
        "ForZone",
        "ForNode",
    ):
        return f"io.k8s.api.discovery.v1.{name}"
    if name in META_TYPES:
        return f"io.k8s.apimachinery.pkg.apis.meta.v1.{name}"
    if name in APPS_TYPES:
        return f"io.k8s.api.apps.v1.{name}"
    if name == "Scale" or model.startswith("V1Scale"):
        return f"io.k8s.api.autoscaling.v1.{name}"
    for group, names in (
        ("rbac", RBAC_TYPES),
        ("authorization", AUTHORIZATION_TYPES),
        ("authentication", AUTHENTICATION_TYPES),
    ):
        if name in names:
            return f"io.k8s.api.{group}.v1.{name}"
    return f"io.k8s.api.core.v1.{name}"


def _ref(model: str) -> dict:
    return {"$ref": f"#/components/schemas/{definition_name(model)}"}


def _schema_of(type_str: str, key: str, parent: str, todo: list[str]) -> dict:
    if type_str == "str":
        return {"type": "string", "default": ""} if key in ("name",) and parent == "V1Container" else {"type": "string"}
    if type_str == "int":
        return {"type": "integer", "format": "int64" if key in schema.INT64 else "int32"}
    if type_str == "bool":
        return {"type": "boolean"}
    if type_str == "float":
        return {"type": "number", "format": "double"}
    if type_str in ("datetime", "date"):
        return {"type": "string", "format": "date-time"}
    if type_str == "object":
        return (
            {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
            if key in ("targetPort", "maxSurge", "maxUnavailable", "port")
            else {"type": "object"}
        )
    if (item := schema.list_item(type_str)) is not None:
        out: dict = {"type": "array", "items": _schema_of(item, "", parent, todo)}
        strategy, merge_key = schema.patch_meta(parent, key)
        if strategy:
            out["x-kubernetes-patch-strategy"] = strategy
        if merge_key:
            out["x-kubernetes-patch-merge-key"] = merge_key
        return out
    if (value := schema.dict_value(type_str)) is not None:
        return {"type": "object", "additionalProperties": _schema_of(value, "", parent, todo)}
    if schema.is_model(type_str):
        todo.append(type_str)
        strategy, _ = schema.patch_meta(parent, key)
        ref = _ref(type_str)
        if strategy:
            return {"allOf": [ref], "x-kubernetes-patch-strategy": strategy}
        return ref
    return {}


def _components(roots: list[str], gvks: dict[str, dict]) -> dict:
    out: dict = {}
    todo = list(roots)
    while todo:
        model = todo.pop()
        name = definition_name(model)
        if name in out:
            continue
        props = {k: _schema_of(t, k, model, todo) for k, t in schema.fields(model).items()}
        doc: dict = {"type": "object", "properties": props}
        if model in gvks:
            doc["x-kubernetes-group-version-kind"] = [gvks[model]]
        out[name] = doc
    return out


def _params(*names: str) -> list[dict]:
    described = {
        "dryRun": "When present, indicates that modifications should not be persisted.",
        "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
        "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request "
        "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - "
        "Warn - Strict",
        "force": "Force is going to \"force\" Apply requests.",
        "pretty": "If 'true', then the output is pretty printed.",
        "labelSelector": "A selector to restrict the list of returned objects by their labels.",
        "fieldSelector": "A selector to restrict the list of returned objects by their fields.",
        "watch": "Watch for changes to the described resources.",
        "resourceVersion": "resourceVersion sets a constraint on what resource versions a request may be served from.",
        "timeoutSeconds": "Timeout for the list/watch call.",
        "propagationPolicy": "Whether and how garbage collection will be performed.",
        "gracePeriodSeconds": "The duration in seconds before the object should be deleted.",
    }
    types = {
        "force": {"type": "boolean", "uniqueItems": True},
        "watch": {"type": "boolean", "uniqueItems": True},
        "timeoutSeconds": {"type": "integer", "uniqueItems": True},
        "gracePeriodSeconds": {"type": "integer", "uniqueItems": True},
    }
    return [
        {
            "name": n,
            "in": "query",
            "description": described[n],
            "schema": types.get(n, {"type": "string", "uniqueItems": True}),
        }
        for n in names
    ]


def _body(model: str) -> dict:
    return {
        "content": {"application/json": {"schema": _ref(model)}, "application/yaml": {"schema": _ref(model)}},
        "required": True,
    }


def _responses(model: str, *codes: str) -> dict:
    return {
        c: {
            "description": "OK" if c == "200" else "Created" if c == "201" else "Accepted",
            "content": {"application/json": {"schema": _ref(model)}},
        }
        for c in codes
    }


def _patch_body() -> dict:
    obj = {"schema": {"type": "object"}}
    return {
        "content": {
            t: obj
            for t in (
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            )
        },
        "required": True,
    }


def _op_id(verb: str, r: R.Resource, suffix: str = "") -> str:
    group = "".join(p.capitalize() for p in r.group.split(".")[:1]) if r.group else "Core"
    scope = "Namespaced" if r.namespaced else ""
    return f"{verb}{group}{r.version.capitalize()}{scope}{r.kind}{suffix}"


@functools.cache
def document(group: str, version: str) -> bytes:
    resources = [r for r in R.ALL if r.group == group and r.version == version]
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    paths: dict = {}
    gvks = {}
    for r in resources:
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        gvks[r.model] = gvk
        base = f"{prefix}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{prefix}/{r.plural}"
        path_params = (
            [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}]
            if r.namespaced
            else []
        )
        name_param = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
        ext = {"x-kubernetes-group-version-kind": gvk}
        collection: dict = {
            "parameters": path_params + _params("pretty"),
            "get": {
                "operationId": _op_id("list", r),
                "x-kubernetes-action": "list",
                "parameters": _params("labelSelector", "fieldSelector", "resourceVersion", "timeoutSeconds", "watch"),
                "responses": _responses(r.model, "200"),
                **ext,
            },
        }
        item: dict = {
            "parameters": name_param + path_params + _params("pretty"),
            "get": {
                "operationId": _op_id("read", r),
                "x-kubernetes-action": "get",
                "responses": _responses(r.model, "200"),
                **ext,
            },
        }
        if r.can("create"):
            collection["post"] = {
                "operationId": _op_id("create", r),
                "x-kubernetes-action": "post",
                "parameters": _params("dryRun", "fieldManager", "fieldValidation"),
                "requestBody": _body(r.model),
                "responses": _responses(r.model, "200", "201", "202"),
                **ext,
            }
        if r.can("update"):
            item["put"] = {
                "operationId": _op_id("replace", r),
                "x-kubernetes-action": "put",
                "parameters": _params("dryRun", "fieldManager", "fieldValidation"),
                "requestBody": _body(r.model),
                "responses": _responses(r.model, "200", "201"),
                **ext,
            }
        if r.can("patch"):
            item["patch"] = {
                "operationId": _op_id("patch", r),
                "x-kubernetes-action": "patch",
                "parameters": _params("dryRun", "fieldManager", "fieldValidation", "force"),
                "requestBody": _patch_body(),
                "responses": _responses(r.model, "200", "201"),
                **ext,
            }
        if r.can("delete"):
            item["delete"] = {
                "operationId": _op_id("delete", r),
                "x-kubernetes-action": "delete",
                "parameters": _params("dryRun", "gracePeriodSeconds", "propagationPolicy"),
                "responses": _responses("V1Status", "200", "202"),
                **ext,
            }
        paths[base] = collection
        paths[f"{base}/{{name}}"] = item
        for sub, verbs in r.subresources.items():
            sub_item: dict = {"parameters": name_param + path_params + _params("pretty")}
            model = SUBRESOURCE_MODEL.get(sub, r.model)
            g, v, k = R.SUBRESOURCE_KIND.get(sub, (r.group, r.version, r.kind))
            sub_ext = {"x-kubernetes-group-version-kind": {"group": g, "version": v, "kind": k}}
            suffix = sub.capitalize()
            if "create" in verbs:
                sub_item["post"] = {
                    "operationId": _op_id("create", r, suffix),
                    "x-kubernetes-action": "post",
                    "parameters": _params("dryRun", "fieldManager", "fieldValidation"),
                    "requestBody": _body(model),
                    "responses": _responses(model, "200", "201", "202"),
                    **sub_ext,
                }
            if "get" in verbs:
                sub_item["get"] = {
                    "operationId": _op_id("read", r, suffix),
                    "x-kubernetes-action": "get",
                    "responses": _responses(model, "200"),
                    **sub_ext,
                }
            if "update" in verbs:
                sub_item["put"] = {
                    "operationId": _op_id("replace", r, suffix),
                    "x-kubernetes-action": "put",
                    "parameters": _params("dryRun", "fieldManager", "fieldValidation"),
                    "requestBody": _body(model),
                    "responses": _responses(model, "200", "201"),
                    **sub_ext,
                }
            if "patch" in verbs:
                sub_item["patch"] = {
                    "operationId": _op_id("patch", r, suffix),
                    "x-kubernetes-action": "patch",
                    "parameters": _params("dryRun", "fieldManager", "fieldValidation", "force"),
                    "requestBody": _patch_body(),
                    "responses": _responses(model, "200", "201"),
                    **sub_ext,
                }
            paths[f"{base}/{{name}}/{sub}"] = sub_item
    roots = [r.model for r in resources] + ["V1Status", "V1DeleteOptions"]
    roots += sorted({SUBRESOURCE_MODEL[sub] for r in resources for sub in r.subresources if sub in SUBRESOURCE_MODEL})
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": _components(roots, gvks)},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def index() -> dict:
    paths = {}
    for group, version in R.GROUP_VERSIONS:
        digest = hashlib.sha512(document(group, version)).hexdigest()[:128].upper()
        paths[gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{gv_path(group, version)}?hash={digest}"}
    return {"paths": paths}
