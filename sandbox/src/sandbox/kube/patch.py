"""The three patch types of the real API server.

* JSON merge patch (RFC 7386): maps merge, ``null`` deletes, lists are replaced whole.
* Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch): like a merge patch,
  but lists whose Go field has ``patchStrategy:"merge"`` are merged item by item on their
  ``patchMergeKey`` (containers by name, ports by containerPort/port, ...), plus the
  ``$patch``, ``$retainKeys``, ``$setElementOrder/...`` and ``$deleteFromPrimitiveList/...``
  directives that kubectl sends.  Maps (labels, a Service's selector) merge key by key in
  both patch types: dropping a key needs ``null``, a JSON patch or a replace.
* JSON patch (RFC 6902), with the error texts of evanphx/json-patch, which the server
  wraps as a 422.
"""

from __future__ import annotations

import copy
import json

from . import schema


class PatchError(Exception):
    """The patch cannot be applied; ``code`` is what the server answers (400 or 422)."""

    def __init__(self, message: str, code: int = 422):
        super().__init__(message)
        self.code = code


# -- RFC 7386 -----------------------------------------------------------------------------


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- strategic merge patch ----------------------------------------------------------------

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder/"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def strategic_merge(original: dict, patch: dict, model: str | None) -> dict:
    if not isinstance(patch, dict):
        raise PatchError("invalid JSON document", 400)
    return _merge_map(copy.deepcopy(original) if isinstance(original, dict) else {}, patch, model)


def _merge_map(original: dict, patch: dict, model: str | None):
    patch = dict(patch)
    directive = patch.pop(DIRECTIVE, None)
    if directive == "replace":
        return _strip(patch)
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"Unable to find the patch directive: {directive}", 400)
    retain = patch.pop(RETAIN_KEYS, None)
    orders = {k[len(SET_ORDER) :]: patch.pop(k) for k in list(patch) if k.startswith(SET_ORDER)}
    deletes = {k[len(DELETE_PRIMITIVE) :]: patch.pop(k) for k in list(patch) if k.startswith(DELETE_PRIMITIVE)}
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("invalid patch format for retainKeys", 400)
        for key in patch:
            if key not in retain and patch[key] is not None:
                raise PatchError("The patch content doesn't match retainKeys list", 422)
        for key in list(original):
            if key not in retain:
                del original[key]
    for key, value in patch.items():
        if value is None:
            original.pop(key, None)
            continue
        typ = schema.child_type(model, key) if model else None
        strategy, merge_key = schema.patch_meta(model, key)
        current = original.get(key)
        if isinstance(value, dict):
            sub_model = typ if typ and schema.is_model(typ) else None
            if sub_model is None and typ and schema.dict_value(typ) is not None:
                sub_model = None
            merged = _merge_map(current if isinstance(current, dict) else {}, value, sub_model)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list) and "merge" in strategy.split(","):
            item_type = schema.list_item(typ or "") if typ else None
            item_model = item_type if item_type and schema.is_model(item_type) else None
            original[key] = _merge_list(current if isinstance(current, list) else [], value, merge_key, item_model)
        else:
            original[key] = _strip(copy.deepcopy(value))
    for key, values in deletes.items():
        if isinstance(original.get(key), list):
            original[key] = [v for v in original[key] if v not in values]
    for key, order in orders.items():
        if isinstance(original.get(key), list) and isinstance(order, list):
            strategy, merge_key = schema.patch_meta(model, key)
            original[key] = _reorder(original[key], order, merge_key)
    return original


def _merge_list(original: list, patch: list, merge_key: str, item_model: str | None) -> list:
    if any(isinstance(i, dict) and i.get(DIRECTIVE) == "replace" for i in patch):
        return [_strip(i) for i in patch if not (isinstance(i, dict) and i.get(DIRECTIVE) == "replace")]
    if not merge_key:
        # A list of primitives with the merge strategy: union, original order first.
        result = list(original)
        for item in patch:
            if item not in result:
                result.append(item)
        return result
    result = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError("invalid JSON document", 400)
        if merge_key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {merge_key}", 400)
        index = next(
            (i for i, o in enumerate(result) if isinstance(o, dict) and o.get(merge_key) == item[merge_key]), None
        )
        if item.get(DIRECTIVE) == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(_strip(item))
        else:
            merged = _merge_map(result[index], item, item_model)
            if merged is None:
                result.pop(index)
            else:
                result[index] = merged
    return result


def _reorder(items: list, order: list, merge_key: str) -> list:
    def key_of(item):
        if merge_key and isinstance(item, dict):
            return json.dumps(item.get(merge_key), sort_keys=True)
        return json.dumps(item, sort_keys=True)

    wanted = [key_of(o) for o in order]
    listed = [i for k in wanted for i in items if key_of(i) == k]
    rest = [i for i in items if key_of(i) not in wanted]
    return listed + rest


def _strip(value):
    """Drop directives from a value taken over whole."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# -- RFC 6902 -----------------------------------------------------------------------------


def json_patch(doc, ops) -> object:
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict):
            raise PatchError("json: cannot unmarshal into Go value of type jsonpatch.Operation", 400)
        kind = op.get("op")
        path = op.get("path")
        if kind not in ("add", "remove", "replace", "move", "copy", "test"):
            raise PatchError(f"Unexpected kind: {kind}")
        if not isinstance(path, str):
            raise PatchError(f"{kind} operation missing path")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{kind} operation missing value")  # evanphx: ErrMissing
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            parent, last = _resolve(doc, path, "replace")
            if isinstance(parent, dict):
                if last not in parent:
                    raise PatchError(f"replace operation does not apply: doc is missing key: {path}")
                parent[last] = copy.deepcopy(op["value"])
            else:
                i = _index(parent, last, path, "replace")
                parent[i] = copy.deepcopy(op["value"])
            if path == "":
                doc = copy.deepcopy(op["value"])
        elif kind in ("move", "copy"):
            src = op.get("from")
            if not isinstance(src, str):
                raise PatchError(f"{kind} operation missing from")
            if kind == "move":
                doc, value = _remove(doc, src)
            else:
                value = copy.deepcopy(_get(doc, src, "copy"))
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                current = _get(doc, path, "test")
            except PatchError:
                current = _MISSING
            if current is _MISSING and op["value"] is None:
                continue
            if (
                current != op["value"]
                or type(current) is not type(op["value"])
                and not (isinstance(current, (int, float)) and isinstance(op["value"], (int, float)))
            ):
                raise PatchError(f"testing value {path} failed: test failed")
    return doc


_MISSING = object()


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must be empty or start with a \"/\": {path}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _resolve(doc, path: str, kind: str):
    tokens = _tokens(path)
    if not tokens:
        return {"": doc}, ""
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict) and t in node:
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(node, t, path, kind)]
        else:
            raise PatchError(f"{kind} operation does not apply: doc is missing path: \"{path}\": missing value")
        if not isinstance(node, (dict, list)):
            raise PatchError(f"{kind} operation does not apply: doc is missing path: \"{path}\": missing value")
    return node, tokens[-1]


def _index(node: list, token: str, path: str, kind: str, allow_end: bool = False) -> int:
    if token == "-" and allow_end:
        return len(node)
    try:
        i = int(token)
    except ValueError:
        raise PatchError(f"{kind} operation does not apply: doc is missing path: \"{path}\": missing value")
    limit = len(node) if allow_end else len(node) - 1
    if i < 0 or i > limit:
        raise PatchError(f"Unable to access invalid index: {i}: invalid index referenced")
    return i


def _get(doc, path: str, kind: str):
    parent, last = _resolve(doc, path, kind)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{kind} operation does not apply: doc is missing path: \"{path}\": missing value")
        return parent[last]
    return parent[_index(parent, last, path, kind)]


def _add(doc, path: str, value):
    if path == "":
        return value
    parent, last = _resolve(doc, path, "add")
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_index(parent, last, path, "add", allow_end=True), value)
    return doc


def _remove(doc, path: str):
    parent, last = _resolve(doc, path, "remove")
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"remove operation does not apply: doc is missing path: \"{path}\": missing value")
        return doc, parent.pop(last)
    return doc, parent.pop(_index(parent, last, path, "remove"))
