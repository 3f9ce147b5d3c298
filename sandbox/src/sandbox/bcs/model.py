"""What bcs-scheduler keeps in ZooKeeper, as plain Python records.

Names follow bcs-common/pkg/scheduler/schetypes/application.go (Application,
TaskGroup, Task, Deployment, Version).  Go values decoded from request bodies
(gojson) are kept as they are, keyed by Go field name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.runtime.pod import Pod
    from sandbox.runtime.runtime import PodGroup

# schetypes application.go: app, taskgroup and task statuses
STAGING, STARTING, RUNNING, FINISH, ERROR = "Staging", "Starting", "Running", "Finish", "Error"
KILLING, KILLED, FAILED, LOST, RESTARTING = "Killing", "Killed", "Failed", "Lost", "Restarting"
DEPLOYING, OPERATING, ROLLING_UPDATE, ABNORMAL = "Deploying", "Operating", "RollingUpdate", "Abnormal"
SUB_UNKNOWN, SUB_ROLLING_DOWN, SUB_ROLLING_UP = "Unknown", "RollingUpdateDown", "RollingUpdateUp"
# health check types the executor runs itself (the others are bcs-health's "remote" checks)
LOCAL_CHECKS_TYPES = ("HTTP", "TCP", "COMMAND")
# taskgroup statuses updateTaskgroup leaves alone (sched/scheduler/update.go)
END_STATES = (FINISH, ERROR, KILLED, FAILED)

# deployment statuses and rolling operations
DEP_DEPLOYING, DEP_RUNNING, DEP_UPDATE = "Deploying", "Running", "Update"
DEP_PAUSED, DEP_SUSPEND, DEP_DELETING = "UpdatePaused", "UpdateSuspend", "Deleting"
OP_NIL, OP_DELETE, OP_START = "", "DELETE", "START"

APP_RUNNING_STR = "application is running"
APP_ABNORMAL_STR = "application is abnormal"


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    """The scheduler's and the watcher's loop over the selector: an empty selector matches all."""
    labels = labels or {}
    return all(k in labels and labels[k] == v for k, v in (selector or {}).items())


def taskgroup_healthy(tg) -> bool:
    """A taskgroup Running whose local health checks have run and passed (the scheduler's
    isRollingStartFinished reads it so; the audit log calls such a member ready)."""
    if tg.status != RUNNING:
        return False
    for task in tg.tasks:
        if any(s["type"] in LOCAL_CHECKS_TYPES for s in task.health_status):
            if not task.is_checked or not task.healthy:
                return False
    return True


def now() -> int:
    return int(time.time())


def go_time(ts: float | None, nanos: bool = False) -> str:
    """time.Time as Go marshals it (RFC 3339, local zone, fraction without trailing zeros)."""
    if not ts:
        return "0001-01-01T00:00:00Z"
    moment = datetime.fromtimestamp(ts, tz=UTC).astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        fraction = f"{ts % 1:.9f}"[2:].rstrip("0")
        if fraction:
            text += "." + fraction
    offset = moment.strftime("%z")
    return text + ("Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}")


@dataclass
class Version:
    """schetypes.Version: what the driver builds from a v4 template and the scheduler launches."""

    id: str
    namespace: str
    instances: int
    object_meta: dict  # the deployment's/application's metadata (Go ObjectMeta)
    labels: dict  # metadata.labels ∪ template metadata.labels (create.go)
    containers: list[dict]  # Go Container values, health check defaults applied
    network_mode: str = ""
    network_type: str = ""
    restart_policy: dict = field(default_factory=lambda: {"Policy": "OnFailure"})
    kill_policy: dict = field(default_factory=lambda: {"GracePeriod": 0})
    kind: str = "application"
    raw_json: dict | None = None  # the ReplicaController an application was created from


@dataclass
class Task:
    """One container of a taskgroup."""

    id: str
    container: dict
    status: str = STAGING
    last_status: str = ""
    message: str = ""
    update_time: int = field(default_factory=now)
    # createTaskHealthChecks (sched/task/task.go): first local check + first of each remote kind
    health_check: dict | None = None  # the local (HTTP/TCP/COMMAND) check the executor runs
    health_status: list[dict] = field(default_factory=list)
    healthy: bool = True
    is_checked: bool = False
    consecutive_failures: int = 0
    local_max_failures: int = 0
    container_id: str = ""
    started_at: float | None = None


@dataclass
class TaskGroup:
    id: str  # "{index}.{appID}.{namespace}.{cluster}.{unix nanos}"
    index: int
    app_id: str
    namespace: str
    labels: dict
    tasks: list[Task]
    restart_policy: dict
    kill_policy: dict
    network: str
    status: str = STAGING
    last_status: str = ""
    message: str = ""
    start_time: int = field(default_factory=now)
    update_time: int = field(default_factory=now)
    resched_times: int = 0
    last_resched_time: int = 0
    host_ip: str = ""
    pod_ip: str = ""
    # sandbox bookkeeping
    group: PodGroup | None = None
    status_since: float = field(default_factory=time.time)
    remove_when_ended: bool = False  # scaled down: forget once killed
    seen_exits: int = 0  # container exits (runtime Pod.exits) already reported
    next_check_at: float | None = None
    checker_error: str | None = None  # the executor could not create the health checker

    @property
    def name(self) -> str:
        return f"{self.app_id}-{self.index}"

    @property
    def pod(self) -> Pod | None:
        if self.group and self.group.pods:
            return self.group.pods[0]
        if self.group and self.group.terminating:
            return self.group.terminating[0]
        return None


@dataclass
class Application:
    id: str
    namespace: str
    version: Version
    define_instances: int
    status: str = STAGING
    last_status: str = ""
    sub_status: str = ""
    message: str = ""
    created: int = field(default_factory=now)
    update_time: int = field(default_factory=now)
    taskgroups: dict[int, TaskGroup] = field(default_factory=dict)
    deleting: bool = False
    delete_enforce: bool = False
    born: float = field(default_factory=time.time)

    @property
    def instances(self) -> int:
        """Instances: taskgroups built (the record's buildedInstance)."""
        return len(self.taskgroups)

    @property
    def running_instances(self) -> int:
        return sum(1 for tg in self.taskgroups.values() if tg.status in (RUNNING, RESTARTING))

    @property
    def object_meta(self) -> dict:
        return self.version.object_meta


@dataclass
class RefApp:
    """schetypes.DeploymentReferApplication."""

    name: str
    curr_target_instances: int = 0
    curr_rolling_instances: int = 0

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "curr_target_instances": self.curr_target_instances,
            "CurrentRollingInstances": self.curr_rolling_instances,
        }


@dataclass
class Deployment:
    object_meta: dict
    selector: dict | None
    strategy: dict  # Go UpgradeStrategy value
    raw_json: dict | None
    status: str = DEP_DEPLOYING
    application: RefApp | None = None
    application_ext: RefApp | None = None
    last_rolling_time: int = 0
    curr_rolling_op: str = OP_NIL
    is_in_rolling: bool = False
    check_time: int = 0
    message: str = ""
    raw_json_backup: dict | None = None
    next_delete_check: float = 0.0

    @property
    def name(self) -> str:
        return self.object_meta["Name"]

    @property
    def namespace(self) -> str:
        return self.object_meta["NameSpace"]
