"""The shape of every API type, read from the official Python client's generated models
(``openapi_types`` / ``attribute_map``, themselves generated from the real OpenAPI spec),
plus the strategic-merge-patch metadata of the Go types (``patchStrategy``/``patchMergeKey``
struct tags of k8s.io/api), which the client models do not carry.

One source serves four purposes, so they cannot disagree: pruning unknown fields (the
real server decodes into Go structs, which drops them), strict field validation, Go-style
type errors, the patch strategies of server-side strategic merge, and the OpenAPI v3
documents that kubectl reads.
"""

from __future__ import annotations

import functools
import re

import kubernetes.client.models as models

from ..gojson import json_kind

# (model, json field) -> (patch strategy, merge key); from the struct tags in k8s.io/api.
PATCH_META: dict[tuple[str, str], tuple[str, str]] = {
    ("V1PodSpec", "containers"): ("merge", "name"),
    ("V1PodSpec", "initContainers"): ("merge", "name"),
    ("V1PodSpec", "ephemeralContainers"): ("merge", "name"),
    ("V1PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("V1PodSpec", "imagePullSecrets"): ("merge", "name"),
    ("V1PodSpec", "hostAliases"): ("merge", "ip"),
    ("V1PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    ("V1PodSpec", "resourceClaims"): ("merge,retainKeys", "name"),
    ("V1PodSpec", "schedulingGates"): ("merge", "name"),
    ("V1Container", "ports"): ("merge", "containerPort"),
    ("V1Container", "env"): ("merge", "name"),
    ("V1Container", "volumeMounts"): ("merge", "mountPath"),
    ("V1Container", "volumeDevices"): ("merge", "devicePath"),
    ("V1EphemeralContainer", "ports"): ("merge", "containerPort"),
    ("V1EphemeralContainer", "env"): ("merge", "name"),
    ("V1EphemeralContainer", "volumeMounts"): ("merge", "mountPath"),
    ("V1ObjectMeta", "finalizers"): ("merge", ""),
    ("V1ObjectMeta", "ownerReferences"): ("merge", "uid"),
    ("V1ServiceSpec", "ports"): ("merge", "port"),
    ("V1DeploymentSpec", "strategy"): ("retainKeys", ""),
    ("V1DeploymentStatus", "conditions"): ("merge", "type"),
    ("V1ReplicaSetStatus", "conditions"): ("merge", "type"),
    ("V1PodStatus", "conditions"): ("merge", "type"),
    ("V1PodStatus", "podIPs"): ("merge", "ip"),
    ("V1NamespaceStatus", "conditions"): ("merge", "type"),
    ("V1ServiceStatus", "conditions"): ("merge", "type"),
}

# Go integer fields that are int64 (the rest of the API's integers are int32).
INT64 = {
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "deletionGracePeriodSeconds",
    "generation",
    "observedGeneration",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "seconds",
}

_LIST = re.compile(r"^list\[(.*)\]$")
_DICT = re.compile(r"^dict\(str, (.*)\)$")


@functools.cache
def fields(model: str) -> dict[str, str]:
    """json field name -> client type string ('str', 'int', 'list[V1Container]', 'V1ObjectMeta', ...)."""
    cls = getattr(models, model)
    return {cls.attribute_map[attr]: typ for attr, typ in cls.openapi_types.items()}


def is_model(type_str: str) -> bool:
    return bool(type_str) and type_str[0].isupper() and hasattr(models, type_str)


def list_item(type_str: str) -> str | None:
    m = _LIST.match(type_str)
    return m.group(1) if m else None


def dict_value(type_str: str) -> str | None:
    m = _DICT.match(type_str)
    return m.group(1) if m else None


def child_type(model: str | None, key: str) -> str | None:
    if not model:
        return None
    return fields(model).get(key)


def patch_meta(model: str | None, key: str) -> tuple[str, str]:
    return PATCH_META.get((model or "", key), ("", ""))


def go_name(model: str) -> str:
    """V1DeploymentSpec -> DeploymentSpec, CoreV1EndpointPort -> EndpointPort."""
    return re.sub(r"^(Core|Discovery|Apps|Events|Authentication|Rbac)?V\d+(alpha\d+|beta\d+)?", "", model)


def go_type(type_str: str, key: str = "") -> str:
    if type_str == "str":
        return "string"
    if type_str == "int":
        return "int64" if key in INT64 else "int32"
    if type_str == "bool":
        return "bool"
    if type_str == "float":
        return "float64"
    if type_str in ("datetime", "date"):
        return "v1.Time"
    if (item := list_item(type_str)) is not None:
        return "[]" + go_type(item)
    if (value := dict_value(type_str)) is not None:
        return "map[string]" + go_type(value)
    if is_model(type_str):
        return "v1." + go_name(type_str)
    return "interface {}"


class TypeError_(Exception):
    """A JSON value that Go could not decode into the field (json: cannot unmarshal ...)."""


def decode(
    value, type_str: str, unknown: list[str], path: str = "", go_path: str = "", parent: str = "", key: str = ""
):
    """Decode ``value`` as the typed server would: return it with unknown fields pruned and
    nulls dropped, append the path of every unknown field to ``unknown``, and raise
    TypeError_ for a value of the wrong JSON type."""
    if value is None:
        return None

    def bad() -> TypeError_:
        kind = json_kind(value)
        if kind == "number" and type_str == "int" and isinstance(value, float):
            kind = f"number {value:g}"
        where = f"Go struct field {go_name(parent)}.{go_path}" if parent else "Go value"
        return TypeError_(f"json: cannot unmarshal {kind} into {where} of type {go_type(type_str, key)}")

    if type_str == "object":  # IntOrString, Quantity, RawExtension: anything goes
        return value
    if type_str == "str" or type_str in ("datetime", "date"):
        if not isinstance(value, str):
            raise bad()
        return value
    if type_str == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        if isinstance(value, float):
            if not value.is_integer():
                raise bad()
            value = int(value)
        return value
    if type_str == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return value
    if type_str == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if (item := list_item(type_str)) is not None:
        if not isinstance(value, list):
            raise bad()
        return [decode(v, item, unknown, f"{path}[{i}]", go_path, parent, key) for i, v in enumerate(value)]
    if (vt := dict_value(type_str)) is not None:
        if not isinstance(value, dict):
            raise bad()
        out = {}
        for k, v in value.items():
            d = decode(v, vt, unknown, f"{path}.{k}" if path else k, go_path, parent, key)
            if d is not None or vt == "str":
                out[k] = "" if d is None else d
        return out
    if is_model(type_str):
        if not isinstance(value, dict):
            raise bad()
        known = fields(type_str)
        out = {}
        for k, v in value.items():
            sub_path = f"{path}.{k}" if path else k
            if k not in known:
                unknown.append(sub_path)
                continue
            sub_go = f"{go_path}.{k}" if go_path else k
            d = decode(v, known[k], unknown, sub_path, sub_go, type_str, k)
            if d is not None:
                out[k] = d
        return out
    return value


def load_json_tracking_duplicates(text: str | bytes) -> tuple[object, list[str]]:
    """json.loads that also reports duplicate keys with their paths (kjson.UnmarshalStrict)."""
    import json

    # object_pairs_hook sees objects innermost-first and without their paths, so parse
    # twice: once to build the value, once walking the raw pairs with paths.
    dups: list[str] = []

    def build(pairs):
        return _Pairs(pairs)

    raw = json.loads(text, object_pairs_hook=build)

    def walk(node, path: str):
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            out = {}
            for k, v in node.pairs:
                sub = f"{path}.{k}" if path else k
                if k in seen:
                    dups.append(sub)
                seen.add(k)
                out[k] = walk(v, sub)
            return out
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        return node

    return walk(raw, ""), dups


class _Pairs:
    __slots__ = ("pairs",)

    def __init__(self, pairs):
        self.pairs = pairs
