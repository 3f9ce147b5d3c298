"""Label selectors (query string and LabelSelector forms) and field selectors, with the
operators and errors of k8s.io/apimachinery/pkg/labels and /fields."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import bad_request

_KEY = r"[A-Za-z0-9./_-]+"
_VALUE = r"[A-Za-z0-9._-]*"


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "=":
            return present and labels[self.key] == self.values[0]
        if self.op == "!=":
            return not present or labels[self.key] != self.values[0]
        if self.op == "in":
            return present and labels[self.key] in self.values
        if self.op == "notin":
            return not present or labels[self.key] not in self.values
        if self.op == "exists":
            return present
        return not present


class Selector:
    def __init__(self, requirements: list[Requirement]):
        self.requirements = requirements

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


EVERYTHING = Selector([])


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_label_selector(text: str | None) -> Selector:
    if not text or not text.strip():
        return EVERYTHING
    reqs = []
    for part in _split_top(text):
        part = part.strip()
        if not part:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        m = re.fullmatch(rf"({_KEY})\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
            continue
        m = re.fullmatch(rf"({_KEY})\s*(==|=|!=)\s*({_VALUE})", part)
        if m:
            reqs.append(Requirement(m.group(1), "!=" if m.group(2) == "!=" else "=", (m.group(3),)))
            continue
        m = re.fullmatch(rf"!\s*({_KEY})", part)
        if m:
            reqs.append(Requirement(m.group(1), "!"))
            continue
        m = re.fullmatch(rf"({_KEY})", part)
        if m:
            reqs.append(Requirement(m.group(1), "exists"))
            continue
        raise bad_request(f"unable to parse requirement: invalid label selector: {part!r}")
    return Selector(reqs)


def from_label_selector(selector: dict | None) -> Selector:
    """metav1.LabelSelector (matchLabels + matchExpressions) as a Selector.  An empty
    LabelSelector matches everything; a nil one matches nothing (callers decide)."""
    selector = selector or {}
    reqs = [Requirement(k, "=", (v,)) for k, v in sorted((selector.get("matchLabels") or {}).items())]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        reqs.append(
            Requirement(expr.get("key", ""), ops.get(expr.get("operator"), "in"), tuple(expr.get("values") or ()))
        )
    return Selector(reqs)


def selector_string(selector: dict | None) -> str:
    """How a LabelSelector is written in a query string (status.selector of /scale)."""
    parts = []
    for r in from_label_selector(selector).requirements:
        if r.op == "=":
            parts.append(f"{r.key}={r.values[0]}")
        elif r.op in ("in", "notin"):
            parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
        elif r.op == "exists":
            parts.append(r.key)
        else:
            parts.append(f"!{r.key}")
    return ",".join(parts)


# -- field selectors ----------------------------------------------------------------------

# Fields each kind can be selected on (the real registries' GetAttrs / field label conversions).
FIELDS = {
    "pods": {
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "namespaces": {"metadata.name", "status.phase"},
    "replicasets": {"metadata.name", "metadata.namespace", "status.replicas"},
}
DEFAULT_FIELDS = {"metadata.name", "metadata.namespace"}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


class FieldSelector:
    def __init__(self, reqs: list[FieldRequirement]):
        self.reqs = reqs

    def matches(self, obj: dict) -> bool:
        for r in self.reqs:
            actual = field_value(obj, r.field)
            if (actual == r.value) != (r.op == "="):
                return False
        return True

    def name(self) -> str | None:
        """The object name an ``metadata.name=x`` selector pins (lets a watch stay cheap)."""
        return next((r.value for r in self.reqs if r.field == "metadata.name" and r.op == "="), None)


def field_value(obj: dict, path: str) -> str:
    node = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def parse_field_selector(text: str | None, plural: str) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector([])
    allowed = FIELDS.get(plural, DEFAULT_FIELDS)
    reqs = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not m:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        if m.group(1) not in allowed:
            raise bad_request(f'field label not supported: {m.group(1)}')
        reqs.append(FieldRequirement(m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return FieldSelector(reqs)
