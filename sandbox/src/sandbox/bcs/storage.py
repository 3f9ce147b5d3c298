"""bcs-storage's view of the Mesos cluster, as bcs-mesos-watch fills it, and its query API.

The watcher (bcs-mesos-watch/storage/*.go) converts the scheduler's objects with
FormatConv and PUTs them under
``/mesos/dynamic/namespace_resources/clusters/{c}/namespaces/{ns}/{type}/{name}``;
storage keeps each as a document ``{_id, clusterId, namespace, resourceName,
resourceType, data, createTime, updateTime}``.  Here ``sync()`` plays the watcher:
it runs after every scheduler tick, so storage trails the scheduler by at most
``bcs_sync_interval``, as a watch-fed store does.

Queries follow bcs-storage/storage/actions/v1http/dynamicquery: filters come from
the query string (GET) or the JSON body (POST, values must be strings), comma
separated values mean "any of", ``field`` selects keys; inspect is
dynamic.go GetNamespaceResources (1405087 with ``data: {}`` when missing).
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass, field

from .. import gojson
from . import gotypes
from .model import Application, Deployment, TaskGroup, go_time


def _meta(meta: dict, **override) -> dict:
    return gojson.encode(dict(meta, **override), gotypes.ObjectMeta)


def application_data(app: Application) -> dict:
    """watch/storage/app.go FormatConv -> types.BcsReplicaControllerStatus."""
    return {
        "metadata": _meta(app.object_meta, Name=app.id),
        "instance": app.define_instances,
        "buildedInstance": app.instances,
        "runningInstance": app.running_instances,
        "createTime": go_time(app.created),
        "lastUpdateTime": go_time(app.update_time),
        "status": app.status,
        **({"lastStatus": app.last_status} if app.last_status else {}),
        "message": app.message,
        "pods": [{"name": tg.id} for tg in sorted(app.taskgroups.values(), key=lambda t: t.index)] or None,
        "kind": app.version.kind,
    }


def taskgroup_data(tg: TaskGroup, services) -> dict:
    """watch/storage/taskgroup.go FormatConv -> types.BcsPodStatus (json tags like "rcname, omitempty"
    are not omitempty for Go: every key is always present)."""
    containers = []
    for task in tg.tasks:
        c = task.container
        running = task.started_at is not None
        status = {
            "name": f"/bcs-container-{task.id}" if running else "",
            "containerID": task.container_id,
            "restartCount": tg.resched_times,
            "status": task.status,
            "lastStatus": task.last_status,
            "exitcode": 0,
            "image": c["Image"],
            "message": task.message,
            "startTime": go_time(task.started_at, nanos=True),
            "lastUpdateTime": go_time(task.update_time),
            "finishTime": go_time(None),
        }
        if task.health_status:
            status["healCheckStatus"] = copy.deepcopy(task.health_status)
        ports = []
        for mapping in services.port_mappings(tg, task):
            port = {"name": mapping["name"]}
            if mapping["hostPort"]:
                port["hostPort"] = mapping["hostPort"]
            port.update(containerPort=mapping["containerPort"], protocol=mapping["protocol"])
            ports.append(port)
        status["containerPort"] = ports
        if c.get("Command"):
            status["command"] = c["Command"]
        if c.get("Args"):
            status["args"] = list(c["Args"])
        if tg.network:
            status["networkMode"] = tg.network
        if tg.labels:
            status["labels"] = dict(tg.labels)
        limits = c["Resources"]["Limits"]
        status["resources"] = {
            "limits": {
                "cpu": f"{float(limits['Cpu'] or 0):f}",
                "memory": f"{float(limits['Mem'] or 0):f}",
                "storage": f"{float(limits['Storage'] or 0):f}",
            }
        }
        env = {e["Name"]: e["Value"] for e in c.get("Env") or []}
        if env:
            status["env"] = env
        containers.append(status)
    return {
        "metadata": {
            "name": tg.id,
            "namespace": tg.namespace,
            "creationTimestamp": go_time(None),
            **({"labels": dict(tg.labels)} if tg.labels else {}),
        },
        "rcname": tg.app_id,
        "status": tg.status,
        "lastStatus": tg.last_status,
        "hostIP": tg.host_ip,
        "hostName": tg.host_ip,
        "podIP": tg.pod_ip,
        "message": tg.message,
        "startTime": go_time(tg.start_time),
        "lastUpdateTime": go_time(tg.update_time),
        "killPolicy": gojson.encode(tg.kill_policy, gotypes.KillPolicy),
        "restartPolicy": gojson.encode(tg.restart_policy, gotypes.RestartPolicy),
        "containerStatuses": containers or None,
        "bcsMessage": "null",  # json.Marshal of the nil BcsEventMsg
        "kind": "application",
    }


def deployment_data(dep: Deployment) -> dict:
    """The watcher stores schetypes.Deployment as the scheduler saved it."""
    out = {"metadata": gojson.encode(dep.object_meta, gotypes.ObjectMeta)}
    if dep.selector:
        out["selector"] = dict(dep.selector)
    out.update(
        {
            "strategy": gojson.encode(dep.strategy, gotypes.UpgradeStrategy),
            "status": dep.status,
            "application": dep.application.to_json() if dep.application else None,
            "application_ext": dep.application_ext.to_json() if dep.application_ext else None,
            "last_rolling_time": dep.last_rolling_time,
            "curr_rolling_operation": dep.curr_rolling_op,
            "is_in_rolling": dep.is_in_rolling,
            "check_time": dep.check_time,
            "message": dep.message,
        }
    )
    if dep.raw_json is not None:
        out["raw_json"] = copy.deepcopy(dep.raw_json)
    if dep.raw_json_backup is not None:
        out["raw_json_backup"] = copy.deepcopy(dep.raw_json_backup)
    return out


def _utc_ms(ts: float) -> str:
    """A BSON date as the storage returns it."""
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    return f"{text}.{int(ts * 1000) % 1000:03d}Z"


@dataclass
class Record:
    resource_type: str
    namespace: str
    name: str
    data: dict
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: secrets.token_hex(12))

    def document(self, cluster: str) -> dict:
        # data is replaced, never changed in place, so the document can share it
        return {
            "_id": self.id,
            "clusterId": cluster,
            "namespace": self.namespace,
            "resourceName": self.name,
            "resourceType": self.resource_type,
            "data": self.data,
            "createTime": _utc_ms(self.created),
            "updateTime": _utc_ms(self.updated),
        }


class Storage:
    def __init__(self, cluster: str):
        self.cluster = cluster
        self.records: dict[tuple[str, str, str], Record] = {}

    # -- the watcher ------------------------------------------------------------------
    def sync(self, scheduler) -> None:
        current: dict[tuple[str, str, str], dict] = {}
        for app in scheduler.apps.values():
            current[("application", app.namespace, app.id)] = application_data(app)
            for tg in app.taskgroups.values():
                current[("taskgroup", tg.namespace, tg.id)] = taskgroup_data(tg, scheduler)
        for dep in scheduler.deployments.values():
            current[("deployment", dep.namespace, dep.name)] = deployment_data(dep)
        for (ns, name), svc in scheduler.services.items():
            current[("service", ns, name)] = scheduler.service_json(svc)
            current[("endpoint", ns, name)] = scheduler.endpoint_json(svc)
        for (ns, name), cm in scheduler.configmaps.items():
            current[("configmap", ns, name)] = scheduler.configmap_json(cm)
        t = time.time()
        for key in [k for k in self.records if k not in current]:
            del self.records[key]
        for key, data in current.items():
            record = self.records.get(key)
            if record is None:
                self.records[key] = Record(key[0], key[1], key[2], self._stamp(key[0], data, t), created=t, updated=t)
            elif self._unstamped(record) != data:
                record.data = self._stamp(key[0], data, t)
                record.updated = t

    @staticmethod
    def _stamp(kind: str, data: dict, t: float) -> dict:
        # FormatConv sets ReportTime = time.Now() on every report
        if kind in ("application", "taskgroup"):
            return {**data, "reportTime": go_time(t, nanos=True)}
        return data

    @staticmethod
    def _unstamped(record: Record) -> dict:
        return (
            {k: v for k, v in record.data.items() if k != "reportTime"}
            if record.resource_type in ("application", "taskgroup")
            else record.data
        )

    # -- reads ------------------------------------------------------------------------
    def documents(
        self, resource_type: str, cluster: str, namespaces: list[str] | None = None, names: list[str] | None = None
    ) -> list[dict]:
        if cluster != self.cluster:
            return []
        return [
            r.document(cluster)
            for r in self.records.values()
            if r.resource_type == resource_type
            and (namespaces is None or r.namespace in namespaces)
            and (names is None or r.name in names)
        ]

    def get(self, cluster: str, namespace: str, resource_type: str, name: str) -> dict | None:
        if cluster != self.cluster:
            return None
        record = self.records.get((resource_type, namespace, name))
        return record.document(cluster) if record else None


# -- dynamic query filters (dynamicquery/filter-*.go) ------------------------------------------
# parameter -> (document path, kind, allowNoExists); kind: "in" (comma list), "int", "int64", "bool"
_COMMON = {"name": ("resourceName", "in", False), "namespace": ("namespace", "in", False)}
FILTERS: dict[str, dict[str, tuple[str, str, bool]]] = {
    "taskgroup": {
        **_COMMON,
        "rcName": ("data.rcname", "in", False),
        "status": ("data.status", "in", False),
        "lastStatus": ("data.lastStatus", "in", False),
        "hostIp": ("data.hostIP", "in", False),
        "hostName": ("data.hostName", "in", False),
        "podIp": ("data.podIP", "in", False),
    },
    "application": {
        "kind": ("data.kind", "in", True),
        **_COMMON,
        "instance": ("data.instance", "int", False),
        "buildedInstance": ("data.buildedInstance", "int", False),
        "runningInstance": ("data.runningInstance", "int", False),
        "status": ("data.status", "in", False),
        "lastStatus": ("data.lastStatus", "in", False),
        "podIp": ("data.podIP", "in", False),
    },
    "deployment": {
        **_COMMON,
        "checkTime": ("data.check_time", "int64", False),
        "status": ("data.status", "in", False),
        "applicationName": ("data.application.name", "in", False),
        "applicationExtName": ("data.application_ext.name", "in", False),
        "currRollingOperation": ("data.curr_rolling_operation", "in", False),
        "isInRolling": ("data.is_in_rolling", "bool", False),
    },
    "service": {**_COMMON, "apiVersion": ("data.apiVersion", "in", False)},
    "endpoints": {**_COMMON, "apiVersion": ("data.apiVersion", "in", False)},
    "configmap": dict(_COMMON),
    "secret": dict(_COMMON),
    "exportservice": dict(_COMMON),
}
FILTERS["process"] = dict(FILTERS["application"])
# which table each query reads, and the filter's preset values (ApplicationFilter{Kind: ",application"})
TABLES = {"endpoints": "endpoint", "process": "application"}
PRESETS = {"application": {"kind": ",application"}, "process": {"kind": "process"}}


class QueryError(Exception):
    pass


def _lookup(doc: dict, path: str):
    value = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


_MISSING = object()


def _match(doc: dict, path: str, kind: str, allow_missing: bool, raw: str) -> bool:
    value = _lookup(doc, path)
    if allow_missing and value is _MISSING:
        return True
    if kind == "in":
        return value is not _MISSING and value in raw.split(",")
    if kind in ("int", "int64"):
        try:
            wanted = int(raw, 10)
        except ValueError:
            return True  # upstream builds no condition when the number does not parse
        return value is not _MISSING and not isinstance(value, bool) and value == wanted
    if kind == "bool":
        return value is (raw.upper() == "TRUE" or raw == "1")
    return True


def _project(doc: dict, fields: list[str]) -> dict:
    """A MongoDB projection: the selected (dotted) keys, plus _id."""
    out = {"_id": doc["_id"]}
    for path in fields:
        value = _lookup(doc, path)
        if value is _MISSING:
            continue
        target = out
        parts = path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = copy.deepcopy(value)
    return out


def query(storage: Storage, cluster: str, kind: str, params: dict) -> list[dict]:
    """DynamicParams.QueryDynamic: ``params`` are the query string (GET) or the decoded body (POST)."""
    spec = FILTERS[kind]
    values = dict(PRESETS.get(kind, {}))
    for key, value in params.items():
        name = next((f for f in spec if f == key), None) or next((f for f in spec if f.lower() == key.lower()), None)
        if name is None:
            continue
        if not isinstance(value, str):  # codec.DecJson into the filter's string fields fails
            raise QueryError(f"{key} is not a string")
        values[name] = value
    # the two indexed fields first, so that only candidate records become documents
    docs = storage.documents(
        TABLES.get(kind, kind),
        cluster,
        values["namespace"].split(",") if values.get("namespace") else None,
        values["name"].split(",") if values.get("name") else None,
    )
    for name, raw in values.items():
        if raw == "":
            continue
        path, match_kind, allow_missing = spec[name]
        docs = [d for d in docs if _match(d, path, match_kind, allow_missing, raw)]

    def param(key):
        value = params.get(key)
        return value if isinstance(value, str) else ""

    offset = int(param("offset")) if param("offset").isdigit() else 0
    limit = int(param("limit")) if param("limit").isdigit() else 0
    docs = docs[offset:]
    docs = docs[: limit or 3000]  # storeActionDefaultLimit
    fields = [f for f in param("field").split(",") if f]
    return [_project(d, fields) for d in docs] if fields else docs


def namespaces(storage: Storage, cluster: str) -> list[str]:
    """GetNameSpace: namespaces used by applications, deployments, services, configmaps, secrets."""
    seen: list[str] = []
    for kind in ("application", "deployment", "service", "configmap", "secret"):
        for doc in storage.documents(kind, cluster):
            if doc["namespace"] not in seen:
                seen.append(doc["namespace"])
    return seen
