"""What bcs-mesos-driver does to a v4 body before the scheduler sees it.

Sources (bcs-runtime/bcs-mesos/bcs-mesos-driver/mesosdriver/backend/v4http/ at the
last commit with Mesos code): scheduler-api.go (CheckKind before anything else),
deployment.go (CreateDeployment/UpdateDeployment, newDeploymentDefWithParam),
create.go (newVersionWithParam, setVersionWithPodSpec).  The namespace in the URL
is never read: the scheduler is called with metadata.namespace from the body.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .. import gojson
from . import gotypes
from .envelope import (
    COMM_JSON_DECODE,
    COMM_REQUEST_DATA_ERR,
    DRIVER,
    DRIVER_PARAMETER_ERR,
    DRIVER_PARAMETER_ERR_STR,
    JSON_DECODE_STR,
    BcsError,
    PlainError,
)
from .model import Version

RESTART_POLICIES = ("OnFailure", "Always", "Never")


def check_kind(kind: str, body: bytes) -> None:
    """bcs-common/common/util/check.go CheckKind; failures come back as 1405008 from the driver."""
    problem = gojson.syntax_error(body)
    meta = None
    if problem is None:
        meta, problem = gojson.decode(gojson.loads(body), gotypes.TypeMeta)
    if problem is not None:
        raise BcsError(COMM_REQUEST_DATA_ERR, f"Unmarshal TypeMeta failed: {problem}", DRIVER)
    if meta["Kind"] != kind:
        raise BcsError(COMM_REQUEST_DATA_ERR, f"Kind {meta['Kind']} is invalid", DRIVER)


def unmarshal(body: bytes, t) -> dict:
    """json.Unmarshal into the driver's type; any failure is the bare "json decode failed!"."""
    value, problem = gojson.unmarshal(body, t)
    if problem is not None:
        raise BcsError(COMM_JSON_DECODE, JSON_DECODE_STR, DRIVER)
    return value


def meta_is_valid(meta: dict) -> None:
    """types/meta.go MetaIsValid.  Its plain error is written as the whole body (not an envelope)."""
    if "." in meta["Name"]:
        raise PlainError("Name can't contains contains '.'")


def _parameter_error(detail: str) -> BcsError:
    # common.BcsErrMesosDriverParameterErrStr + detail, concatenated without a space as upstream does
    return BcsError(DRIVER_PARAMETER_ERR, DRIVER_PARAMETER_ERR_STR + detail, DRIVER)


def _restart_policy(param: dict) -> dict:
    policy = copy.deepcopy(param["RestartPolicy"])
    if policy["Policy"] == "":
        policy["Policy"] = "OnFailure"
    if policy["Policy"] not in RESTART_POLICIES:
        raise _parameter_error("restart policy error")
    return policy


def _with_health_defaults(container: dict) -> dict:
    """setVersionWithPodSpec: delay 10, interval 60, timeout 20, grace 300 where <= 0."""
    container = copy.deepcopy(container)
    for check in container.get("HealthChecks") or []:
        if check is None:
            continue
        for key, default in (
            ("DelaySeconds", 10),
            ("IntervalSeconds", 60),
            ("TimeoutSeconds", 20),
            ("GracePeriodSeconds", 300),
        ):
            if check[key] <= 0:
                check[key] = default
    return container


def version_from(
    meta: dict,
    instances: int,
    template: dict | None,
    restart_policy: dict,
    kill_policy: dict,
    *,
    no_template: str = " no template",
) -> Version:
    """setVersionWithPodSpec for both deployments and applications."""
    if template is None:
        raise _parameter_error(no_template)
    spec = template["PodSpec"]
    containers = spec["Containers"] or []
    processes = spec["Processes"] or []
    if not containers and not processes:
        raise _parameter_error("no containers and processes")
    if containers and processes:
        raise _parameter_error("containers and processes cannot coexist")
    labels = dict(meta["Labels"] or {})
    labels.update(template["ObjectMeta"]["Labels"] or {})
    return Version(
        id=meta["Name"],
        namespace=meta["NameSpace"],
        instances=instances,
        object_meta=copy.deepcopy(meta),
        labels=labels,
        containers=[_with_health_defaults(c) for c in containers],
        network_mode=spec["NetworkMode"],
        network_type=spec["NetworkType"],
        restart_policy=restart_policy,
        kill_policy=copy.deepcopy(kill_policy),
        kind="process" if processes else "application",
    )


@dataclass
class DeploymentDef:
    """schetypes.DeploymentDef: what the driver posts to the scheduler."""

    object_meta: dict
    selector: dict | None
    strategy: dict
    version: Version | None
    raw_json: dict  # the BcsDeployment as the driver re-marshals it (RawJson = &param)


def deployment_def(body: bytes) -> DeploymentDef:
    """CreateDeployment / UpdateDeployment in the driver (after the handler's CheckKind)."""
    check_kind("deployment", body)
    param = unmarshal(body, gotypes.BcsDeployment)
    meta_is_valid(param["ObjectMeta"])
    spec = param["Spec"]
    version = None
    if spec["Template"] is not None:  # no template: "this deployment is for binding old application"
        version = version_from(
            param["ObjectMeta"], spec["Instance"], spec["Template"], _restart_policy(param), param["KillPolicy"]
        )
    # version.RestartPolicy points into param, so the stored raw_json carries the defaulted policy
    if version is not None:
        param["RestartPolicy"] = version.restart_policy
    raw = gojson.encode(param, gotypes.BcsDeployment)
    return DeploymentDef(
        object_meta=copy.deepcopy(param["ObjectMeta"]),
        selector=copy.deepcopy(spec["Selector"]),
        strategy=copy.deepcopy(spec["Strategy"]),
        version=version,
        raw_json=raw,
    )


def application_version(body: bytes) -> Version:
    """CreateApplication in the driver: newVersionWithParam."""
    check_kind("application", body)
    param = unmarshal(body, gotypes.ReplicaController)
    meta_is_valid(param["ObjectMeta"])
    policy = _restart_policy(param)
    meta = param["ObjectMeta"]
    if meta["NameSpace"] == "":
        meta = dict(meta, NameSpace="defaultGroup")  # version.RunAs defaults to defaultGroup
    spec = param["ReplicaControllerSpec"]
    version = version_from(meta, spec["Instance"], spec["Template"], policy, param["KillPolicy"])
    param["RestartPolicy"] = policy
    version.raw_json = gojson.encode(param, gotypes.ReplicaController)
    return version


def service_body(body: bytes) -> dict:
    """The driver forwards service bodies untouched after CheckKind; the scheduler decodes them
    with json.NewDecoder and reports Go's own message (sched/api/api.go createService)."""
    check_kind("service", body)
    value, problem = gojson.unmarshal(body, gotypes.BcsService)
    if problem is not None:
        raise BcsError(COMM_JSON_DECODE, problem)
    return value


def configmap_body(body: bytes) -> dict:
    """Like services: the driver checks the kind and forwards the body untouched
    (v4http/configmap.go); the scheduler decodes it (sched/api/api.go createConfigMap)."""
    check_kind("configmap", body)
    value, problem = gojson.unmarshal(body, gotypes.BcsConfigMap)
    if problem is not None:
        raise BcsError(COMM_JSON_DECODE, problem)
    return value
