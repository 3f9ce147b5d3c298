"""Defaulting and validation of the kinds the sandbox accepts writes for, with the field
paths and message texts of k8s.io/kubernetes/pkg/apis/*/validation and
k8s.io/apimachinery/pkg/util/validation."""

from __future__ import annotations

import re

from .errors import FieldError, GoRepr, duplicate, forbidden_field, invalid, not_supported, required
from .selectors import from_label_selector

# -- names (k8s.io/apimachinery/pkg/util/validation) --------------------------------------

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def dns1123_label(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not DNS1123_LABEL.match(value):
        out.append(_LABEL_MSG)
    return out


def dns1123_subdomain(value: str) -> list[str]:
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN.match(value):
        out.append(_SUBDOMAIN_MSG)
    return out


def dns1035_label(value: str) -> list[str]:
    out = []
    if len(value) > 63:
        out.append("must be no more than 63 characters")
    if not DNS1035_LABEL.match(value):
        out.append(_DNS1035_MSG)
    return out


# Which rule each kind's name follows (the registries' ValidateXName functions).
NAME_RULES = {
    "Deployment": dns1123_subdomain,
    "ReplicaSet": dns1123_subdomain,
    "Pod": dns1123_subdomain,
    "Service": dns1035_label,
    "Namespace": dns1123_label,
}

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QN_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LV_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def validate_labels(labels, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if not name or not _QUALIFIED_NAME.match(name) or len(name) > 63 or (prefix and dns1123_subdomain(prefix)):
            errs.append(invalid(path, key, _QN_MSG))
        if len(value) > 63:
            errs.append(invalid(f"{path}", value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE.match(value):
            errs.append(invalid(f"{path}", value, _LV_MSG))
    return errs


def validate_meta(obj: dict, kind: str, namespaced: bool) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    errs: list[FieldError] = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            errs.append(required("metadata.name", "name or generateName is required"))
    else:
        for msg in NAME_RULES.get(kind, dns1123_subdomain)(name):
            errs.append(invalid("metadata.name", name, msg))
    if namespaced and not meta.get("namespace"):
        errs.append(required("metadata.namespace"))
    elif not namespaced and meta.get("namespace"):
        errs.append(forbidden_field("metadata.namespace", "not allowed on this type"))
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    return errs


def validate_meta_update(new: dict, old: dict) -> list[FieldError]:
    errs = []
    if new["metadata"].get("uid") and new["metadata"]["uid"] != old["metadata"]["uid"]:
        errs.append(invalid("metadata.uid", new["metadata"]["uid"], "field is immutable"))
    return errs


# -- pod templates ------------------------------------------------------------------------


def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in spec.get("containers") or []:
        default_container(c)
    for c in spec.get("initContainers") or []:
        default_container(c)


def default_container(c: dict) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c.get("image") or ""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    c.setdefault("imagePullPolicy", "Always" if (tag in ("", "latest") and "@" not in image) else "IfNotPresent")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")


_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def validate_port_name(name: str, path: str) -> list[FieldError]:
    errs = []
    if len(name) > 15:
        errs.append(invalid(path, name, "must be no more than 15 characters"))
    if not _PORT_NAME.match(name):
        errs.append(invalid(path, name, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"))
    elif not re.search(r"[a-z]", name):
        errs.append(invalid(path, name, "must contain at least one letter (a-z)"))
    elif "--" in name:
        errs.append(invalid(path, name, "must not contain consecutive hyphens"))
    return errs


def validate_containers(containers, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not containers:
        return [required(path)]
    names: set[str] = set()
    for i, c in enumerate(containers):
        p = f"{path}[{i}]"
        name = c.get("name") or ""
        if not name:
            errs.append(required(f"{p}.name"))
        else:
            for msg in dns1123_label(name):
                errs.append(invalid(f"{p}.name", name, msg))
            if name in names:
                errs.append(duplicate(f"{p}.name", name))
            names.add(name)
        image = c.get("image")
        if not image:
            errs.append(required(f"{p}.image"))
        elif image.strip() != image:
            errs.append(invalid(f"{p}.image", image, "must not have leading or trailing whitespace"))
        port_names: set[str] = set()
        for j, port in enumerate(c.get("ports") or []):
            pp = f"{p}.ports[{j}]"
            number = port.get("containerPort")
            if number is None or number == 0:
                errs.append(required(f"{pp}.containerPort"))
            elif not 1 <= number <= 65535:
                errs.append(invalid(f"{pp}.containerPort", number, "must be between 1 and 65535, inclusive"))
            if port.get("name"):
                errs += validate_port_name(port["name"], f"{pp}.name")
                if port["name"] in port_names:
                    errs.append(duplicate(f"{pp}.name", port["name"]))
                port_names.add(port["name"])
            protocol = port.get("protocol", "TCP")
            if protocol not in _PROTOCOLS:
                errs.append(not_supported(f"{pp}.protocol", protocol, _PROTOCOLS))
        policy = c.get("imagePullPolicy")
        if policy not in ("Always", "IfNotPresent", "Never"):
            errs.append(not_supported(f"{p}.imagePullPolicy", policy, ["Always", "IfNotPresent", "Never"]))
    return errs


def validate_template(template: dict, path: str) -> list[FieldError]:
    spec = template.get("spec") or {}
    errs = validate_labels((template.get("metadata") or {}).get("labels"), f"{path}.metadata.labels")
    errs += validate_containers(spec.get("containers"), f"{path}.spec.containers")
    if spec.get("restartPolicy") not in (None, "Always"):
        errs.append(not_supported(f"{path}.spec.restartPolicy", spec["restartPolicy"], ["Always"]))
    return errs


# -- deployments --------------------------------------------------------------------------


def default_deployment(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.setdefault("template", {})
    default_pod_spec(template.setdefault("spec", {}))


def _int_or_percent(value, path: str) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [] if value >= 0 else [invalid(path, value, "must be greater than or equal to 0")]
    if isinstance(value, str):
        m = re.fullmatch(r"(\d+)%", value)
        if not m:
            return [
                invalid(
                    path,
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%' "
                    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )
            ]
        if int(m.group(1)) > 100:
            return [invalid(path, value, "must not be greater than 100%")]
        return []
    return [invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _is_zero(value) -> bool:
    return value in (0, "0%")


def validate_deployment(obj: dict) -> list[FieldError]:
    errs = validate_meta(obj, "Deployment", True)
    spec = obj.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if replicas < 0:
        errs.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template") or {}
    if selector is None:
        errs.append(required("spec.selector"))
    else:
        if not (selector.get("matchLabels") or selector.get("matchExpressions")):
            errs.append(invalid("spec.selector", _go_selector(selector), "empty selector is invalid for deployment"))
        errs += validate_labels(selector.get("matchLabels"), "spec.selector.matchLabels")
        for i, expr in enumerate(selector.get("matchExpressions") or []):
            op = expr.get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                errs.append(
                    not_supported(
                        f"spec.selector.matchExpressions[{i}].operator", op, ["DoesNotExist", "Exists", "In", "NotIn"]
                    )
                )
            elif op in ("In", "NotIn") and not expr.get("values"):
                errs.append(
                    required(
                        f"spec.selector.matchExpressions[{i}].values",
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )
                )
        labels = (template.get("metadata") or {}).get("labels") or {}
        if (selector.get("matchLabels") or selector.get("matchExpressions")) and not from_label_selector(
            selector
        ).matches(labels):
            errs.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    errs += validate_template(template, "spec.template")
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type")
    if stype not in ("Recreate", "RollingUpdate"):
        errs.append(not_supported("spec.strategy.type", stype, ["Recreate", "RollingUpdate"]))
    elif stype == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.append(
            forbidden_field("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
        )
    elif stype == "RollingUpdate":
        ru = strategy.get("rollingUpdate") or {}
        surge, unavailable = ru.get("maxSurge", "25%"), ru.get("maxUnavailable", "25%")
        errs += _int_or_percent(surge, "spec.strategy.rollingUpdate.maxSurge")
        errs += _int_or_percent(unavailable, "spec.strategy.rollingUpdate.maxUnavailable")
        if _is_zero(surge) and _is_zero(unavailable):
            errs.append(
                invalid("spec.strategy.rollingUpdate.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0")
            )
    for key in ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        value = spec.get(key)
        if value is not None and value < 0:
            errs.append(invalid(f"spec.{key}", value, "must be greater than or equal to 0"))
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None and pds <= spec.get("minReadySeconds", 0):
        errs.append(invalid("spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"))
    return errs


def _go_selector(selector: dict | None) -> GoRepr:
    """How Go's %#v prints a *metav1.LabelSelector in a field error."""
    selector = selector or {}
    ml = selector.get("matchLabels")
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted((ml or {}).items()))
    labels = f"map[string]string{{{inner}}}" if ml is not None else "map[string]string(nil)"
    exprs = selector.get("matchExpressions")
    if exprs:
        items = ", ".join(
            f'v1.LabelSelectorRequirement{{Key:"{e.get("key", "")}", Operator:"{e.get("operator", "")}", '
            f'Values:[]string{{{", ".join(chr(34) + v + chr(34) for v in e.get("values") or [])}}}}}'
            for e in exprs
        )
        ex = f"[]v1.LabelSelectorRequirement{{{items}}}"
    else:
        ex = "[]v1.LabelSelectorRequirement(nil)"
    return GoRepr(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{ex}}}")


def validate_deployment_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_deployment(new) + validate_meta_update(new, old)
    if (new.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
        errs.append(invalid("spec.selector", _go_selector(new["spec"].get("selector")), "field is immutable"))
    return errs


# -- services -----------------------------------------------------------------------------


def default_service(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        if "targetPort" not in port and "port" in port:
            port["targetPort"] = port["port"]
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    obj.setdefault("status", {"loadBalancer": {}})


_SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


def validate_service(obj: dict, node_port_range: tuple[int, int]) -> list[FieldError]:
    errs = validate_meta(obj, "Service", True)
    spec = obj.get("spec") or {}
    stype = spec.get("type")
    if stype not in _SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, _SERVICE_TYPES))
    ports = spec.get("ports") or []
    if stype == "ExternalName":
        if not spec.get("externalName"):
            errs.append(required("spec.externalName"))
    elif not ports and spec.get("clusterIP") != "None":
        errs.append(required("spec.ports"))
    names: set[str] = set()
    seen_ports: set[tuple] = set()
    for i, port in enumerate(ports):
        p = f"spec.ports[{i}]"
        name = port.get("name", "")
        if len(ports) > 1 and not name:
            errs.append(required(f"{p}.name"))
        elif name:
            for msg in dns1123_label(name):
                errs.append(invalid(f"{p}.name", name, msg))
            if name in names:
                errs.append(duplicate(f"{p}.name", name))
            names.add(name)
        number = port.get("port")
        if number is None:
            errs.append(required(f"{p}.port"))
        elif not 1 <= number <= 65535:
            errs.append(invalid(f"{p}.port", number, "must be between 1 and 65535, inclusive"))
        protocol = port.get("protocol", "TCP")
        if protocol not in _PROTOCOLS:
            errs.append(not_supported(f"{p}.protocol", protocol, _PROTOCOLS))
        key = (number, protocol)
        if key in seen_ports:
            errs.append(
                duplicate(f"{p}", GoRepr(f'core.ServicePort{{Name:"{name}", Protocol:"{protocol}", Port:{number}}}'))
            )
        seen_ports.add(key)
        target = port.get("targetPort")
        if isinstance(target, int) and not isinstance(target, bool):
            if not 1 <= target <= 65535:
                errs.append(invalid(f"{p}.targetPort", target, "must be between 1 and 65535, inclusive"))
        elif isinstance(target, str):
            # a string is a port name; "8080" as a string is a name too, and not a valid one
            errs += validate_port_name(target, f"{p}.targetPort")
        node_port = port.get("nodePort")
        if node_port:
            if stype not in ("NodePort", "LoadBalancer"):
                errs.append(forbidden_field(f"{p}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif not node_port_range[0] <= node_port <= node_port_range[1]:
                errs.append(
                    invalid(
                        f"{p}.nodePort",
                        node_port,
                        f"provided port is not in the valid range. The range of valid ports is "
                        f"{node_port_range[0]}-{node_port_range[1]}",
                    )
                )
    selector = spec.get("selector")
    if selector is not None:
        if not isinstance(selector, dict):
            errs.append(invalid("spec.selector", selector, "must be a map of label keys to values"))
        else:
            errs += validate_labels(selector, "spec.selector")
    affinity = spec.get("sessionAffinity")
    if affinity not in ("ClientIP", "None"):
        errs.append(not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"]))
    return errs


def validate_service_update(new: dict, old: dict, node_port_range) -> list[FieldError]:
    errs = validate_service(new, node_port_range) + validate_meta_update(new, old)
    old_ip = old["spec"].get("clusterIP")
    new_ip = new["spec"].get("clusterIP")
    if old_ip and new_ip and new_ip != old_ip and not (old["spec"].get("type") == "ExternalName"):
        errs.append(invalid("spec.clusterIPs[0]", GoRepr('[]string{"' + new_ip + '"}'), "may not change once set"))
    return errs


# -- namespaces ---------------------------------------------------------------------------


def default_namespace(obj: dict) -> None:
    meta = obj["metadata"]
    meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def validate_namespace(obj: dict) -> list[FieldError]:
    return validate_meta(obj, "Namespace", False)
