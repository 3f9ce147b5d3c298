"""bcs-scheduler's application and taskgroup life cycle, driven by the sandbox runtime.

Each taskgroup owns one runtime pod group of size 1 (its own pod), because
Mesos launches, kills and reschedules taskgroups one by one: a rescheduled
taskgroup is a new taskgroup with a new ID, not a restarted container.

Status rules (sched/scheduler/update.go):
* a taskgroup is Staging when built, Starting once launched (the executor's
  TASK_STARTING), Running once its pod listens (TASK_RUNNING: the container
  started; readiness is not part of it);
* a taskgroup's status is derived from its tasks (updateTaskgroup) and is
  never changed again once in Finish/Error/Killed/Failed;
* an application's status follows updateApplicationStatus, in its order, and
  is frozen while the application is Operating or RollingUpdate;
* a failed taskgroup is rescheduled by its restart policy (taskGroupStatusUpdated,
  trans_reschedule.go): killed, removed and replaced by a new taskgroup with the
  same index, a new timestamp and ReschededTimes + 1.

Pod faults from the control endpoint: a killed container is an exit like a crash
(TASK_FAILED, "container exited, exit code 137"); an evicted one is killed by the agent
at once and reported TASK_FAILED with an eviction message (sandbox wording); both are
then rescheduled by the restart policy.  A pod held unready fails HTTP/COMMAND checks.

Health checks run as the bcs-container-executor runs them (healthcheck/http.go):
the first check GracePeriodSeconds after the container runs (the executor's
TimeMechanism has no DelaySeconds), then every IntervalSeconds; the scheduler
turns a task Failed when ConsecutiveFailureTimes > consecutiveFailures
(checkTaskHealth).  What a probe sees is the runtime's readiness: an HTTP or
COMMAND check passes when the pod is ready (its /healthz answers 200); a TCP
check passes while the pod listens and does not crash-loop.
"""

from __future__ import annotations

import logging
import secrets
import time

from sandbox.runtime.pod import GONE, PodSpec
from sandbox.runtime.pod import RUNNING as POD_RUNNING
from sandbox.runtime.runtime import Runtime
from sandbox.settings import Settings

from .envelope import COMM_REQUEST_DATA_ERR, SCHED_COMMON, SCHED_RESOURCE_EXIST, BcsError
from .model import (
    ABNORMAL,
    APP_ABNORMAL_STR,
    APP_RUNNING_STR,
    DEPLOYING,
    END_STATES,
    ERROR,
    FAILED,
    FINISH,
    KILLED,
    KILLING,
    LOST,
    OPERATING,
    RESTARTING,
    ROLLING_UPDATE,
    RUNNING,
    STAGING,
    STARTING,
    SUB_ROLLING_UP,
    SUB_UNKNOWN,
    Application,
    Task,
    TaskGroup,
    Version,
    now,
)
from .model import LOCAL_CHECKS_TYPES as LOCAL_CHECKS

log = logging.getLogger(__name__)

# A failed taskgroup waits for the next reschedule transaction and a fitting offer
# (3 s check interval and the offer cycle upstream); the sandbox keeps it short
# but long enough for storage readers to see the Failed taskgroup.
RESCHEDULE_DELAY = 1.0
CRASH_MESSAGE = "container exited, exit code {code}"
EVICTED_MESSAGE = "sandbox: container killed by the agent (evicted: the node was low on memory)"


def _group_message(statuses: list[str], messages: list[str]) -> tuple[str, str] | None:
    """updateTaskgroup: a taskgroup's status and message from its tasks' statuses."""
    total = len(statuses)

    def count(s):
        return statuses.count(s)

    if count(FAILED):
        return FAILED, next(m for s, m in zip(statuses, messages, strict=True) if s == FAILED)
    if count(KILLING):
        return KILLING, "some tasks are killing"
    if count(ERROR):
        return ERROR, next(m for s, m in zip(statuses, messages, strict=True) if s == ERROR)
    if count(FINISH) == total:
        return FINISH, "all tasks are finish"
    if count(KILLED) == total:
        return KILLED, "some tasks are killed"
    if count(LOST):
        return LOST, "some tasks are lost"
    if count(STAGING) == total:
        return STAGING, "all tasks is staging"
    if count(STARTING):
        return STARTING, "some tasks are starting"
    if count(RESTARTING):
        return RESTARTING, "pod is restarting"
    if count(RUNNING):
        return RUNNING, "pod is running"
    return None


class AppLifecycle:
    """Applications and their taskgroups (mixed into Scheduler)."""

    runtime: Runtime
    settings: Settings

    def __init__(self, runtime: Runtime, settings: Settings):
        self.runtime = runtime
        self.settings = settings
        self.apps: dict[tuple[str, str], Application] = {}
        self.reschedules: dict[str, float] = {}  # taskgroup ID -> when the transaction may run
        self._last_tick = 0.0

    @property
    def cluster(self) -> str:
        return self.settings.bcs_cluster_id

    # -- building --------------------------------------------------------------------
    def create_application(self, version: Version) -> Application:
        """backend createDeploymentApplication / api buildApplication: save, then launch."""
        app = Application(
            id=version.id, namespace=version.namespace, version=version, define_instances=version.instances
        )
        self.apps[(app.namespace, app.id)] = app
        self.scale_application(app, version.instances)
        return app

    def build_application(self, version: Version) -> None:
        """POST applications (api.go buildApplication)."""
        if version.instances <= 0:
            raise BcsError(COMM_REQUEST_DATA_ERR, "instances error")
        if (version.namespace, version.id) in self.apps:
            raise BcsError(SCHED_RESOURCE_EXIST, "application already exist")
        self.create_application(version)

    def _new_taskgroup(self, app: Application, index: int, resched_times: int = 0) -> TaskGroup:
        """task.go CreateTaskGroup + CreateTaskGroupInfo: ID with nanoseconds, tasks, health checks."""
        stamp = time.time_ns()
        tg_id = f"{index}.{app.id}.{app.namespace}.{self.cluster}.{stamp}"
        version = app.version
        tasks = []
        for i, container in enumerate(version.containers):
            task = Task(id=f"{stamp}.{i}.{index}.{app.id}.{app.namespace}.{self.cluster}", container=container)
            self._health_checks(task, container.get("HealthChecks") or [])
            tasks.append(task)
        tg = TaskGroup(
            id=tg_id,
            index=index,
            app_id=app.id,
            namespace=app.namespace,
            labels=dict(version.labels),
            tasks=tasks,
            restart_policy=dict(version.restart_policy),
            kill_policy=dict(version.kill_policy),
            network=version.network_mode,
            resched_times=resched_times,
        )
        tg.checker_error = self._checker_error(tg)
        if tg.checker_error is None:
            self._start_pod(tg, app)
        return tg

    @staticmethod
    def _health_checks(task: Task, checks: list[dict | None]) -> None:
        """createTaskHealthChecks: one local check, one of each remote kind, each reported true at first."""
        seen_local = seen_http = seen_tcp = 0
        messages = {
            "COMMAND": "command check by executor",
            "TCP": "tcp check by executor",
            "HTTP": "http check by executor",
            "REMOTE_HTTP": "remote http check, not reported",
            "REMOTE_TCP": "remote tcp check, not reported",
        }
        for check in checks:
            if check is None:
                continue
            kind = check["Type"]
            if kind in LOCAL_CHECKS:
                seen_local += 1
                if seen_local > 1:
                    continue
                task.health_check = check
                task.local_max_failures = check["ConsecutiveFailures"]
            elif kind == "REMOTE_HTTP":
                seen_http += 1
                if seen_http > 1:
                    continue
            elif kind == "REMOTE_TCP":
                seen_tcp += 1
                if seen_tcp > 1:
                    continue
            else:
                continue  # "healthcheck(...) not supported"
            task.health_status.append({"type": kind, "result": True, "message": messages[kind]})

    def _check_port(self, task: Task) -> int:
        """createTaskInfoHealth: the check's port, else the containerPort of its portName (0: no check)."""
        check = task.health_check
        target = check["Http"] if check["Type"] == "HTTP" else check["Tcp"]
        if target is None:
            return 0
        if target["Port"] > 0:
            return target["Port"]
        for port in task.container.get("Ports") or []:
            if port["Name"] == target["PortName"]:
                return port["ContainerPort"]
        return 0

    def _checker_error(self, tg: TaskGroup) -> str | None:
        """bcs-container-executor healthcheckSetting: a checker it cannot create fails the launch."""
        for task in tg.tasks:
            check = task.health_check
            if check is None:
                continue
            if check["Type"] == "COMMAND":
                if not check["Command"] or not check["Command"]["Value"]:
                    task.health_check = None  # createTaskInfoHealth sends no check at all
                continue
            port = self._check_port(task)
            if port <= 0:
                task.health_check = None
                continue
            if check["Type"] == "HTTP" and port <= 1:
                return "create healcheck failed, http checker port is invalid"
            if check["IntervalSeconds"] <= check["TimeoutSeconds"]:
                return "create healcheck failed, Interval Seconds must larger than Timeout Seconds"
        return None

    def _start_pod(self, tg: TaskGroup, app: Application) -> None:
        ports = []
        for task in tg.tasks:
            for port in task.container.get("Ports") or []:
                ports.append({"containerPort": port["ContainerPort"], "name": port["Name"]})
        image = tg.tasks[0].container["Image"] if tg.tasks else ""
        spec = PodSpec(
            image=image,
            labels=dict(tg.labels),
            container_ports=ports,
            workload=app.id,
            namespace=app.namespace,
            platform="bcs-mesos",
        )
        tg.group = self.runtime.group(f"bcs/{tg.id}", spec, lambda _i, name=tg.id: name, self._pod_changed)
        tg.group.scale(1)
        pod = tg.pod
        if pod is not None:
            tg.host_ip = pod.ip  # the agent's IP, known from the offer at launch

    def _pod_changed(self, pod) -> None:
        if pod.state == GONE:
            self.runtime.drop_group(f"bcs/{pod.name}")
        self.wake()

    def evict_pod(self, group, pod) -> None:
        """The agent kills the taskgroup's container (runtime evictor): TASK_FAILED now, the
        container stopped at once; the restart policy reschedules it as for any failure."""
        tg = next((tg for app in self.apps.values() for tg in app.taskgroups.values() if tg.group is group), None)
        if tg is None or tg.status in END_STATES:
            return
        for task in tg.tasks:
            self._set_task(task, FAILED, EVICTED_MESSAGE)
        self._aggregate(tg)
        pod.deletion_requested_at = 0.0
        group.delete()
        pod.wake()

    def wake(self) -> None:  # overridden by Scheduler
        pass

    # -- scaling and deleting ----------------------------------------------------------
    def scale_application(self, app: Application, instances: int) -> None:
        """innerScaleApplication: build the missing indexes, kill the highest ones."""
        indexes = sorted(app.taskgroups)
        next_index = (indexes[-1] + 1) if indexes else 0
        while app.instances < instances:
            app.taskgroups[next_index] = self._new_taskgroup(app, next_index)
            next_index += 1
        alive = sorted((i for i, tg in app.taskgroups.items() if not tg.remove_when_ended), reverse=True)
        for index in alive[: max(0, len(alive) - instances)]:
            tg = app.taskgroups[index]
            tg.remove_when_ended = True
            self.kill_taskgroup(tg)

    def kill_taskgroup(self, tg: TaskGroup) -> None:
        """KillTaskGroup: tasks go Killing (end states stay), the container is stopped."""
        if tg.status not in END_STATES:
            for task in tg.tasks:
                if task.status not in END_STATES:
                    self._set_task(task, KILLING, "")
            self._aggregate(tg)
        if tg.group is not None:
            tg.group.delete()

    def delete_application(self, app: Application, enforce: bool) -> None:
        """InnerDeleteApplication / backend DeleteApplication: kill all, Operating until the
        delete transaction removes it (at once with enforce, else once every taskgroup ended)."""
        for tg in app.taskgroups.values():
            self.kill_taskgroup(tg)
        app.last_status = app.status
        app.status = OPERATING
        app.sub_status = SUB_UNKNOWN
        app.update_time = now()
        app.message = "application in deleting"
        app.deleting = True
        app.delete_enforce = app.delete_enforce or enforce

    def _forget_taskgroup(self, app: Application, tg: TaskGroup) -> None:
        app.taskgroups.pop(tg.index, None)
        self.reschedules.pop(tg.id, None)
        if tg.group is not None:
            tg.group.delete()

    # -- status -------------------------------------------------------------------------
    @staticmethod
    def _set_task(task: Task, status: str, message: str) -> None:
        if task.status != status:
            task.last_status = task.status
            task.status = status
            task.update_time = now()
        task.message = message

    def _aggregate(self, tg: TaskGroup) -> bool:
        """updateTaskgroup; returns whether the taskgroup's status changed."""
        if tg.status in END_STATES:
            return False
        result = _group_message([t.status for t in tg.tasks], [t.message for t in tg.tasks])
        if result is None:
            return False
        status, message = result
        tg.message = message
        if status == tg.status:
            return False
        tg.last_status, tg.status = tg.status, status
        tg.update_time = now()
        tg.status_since = time.time()
        self._taskgroup_status_updated(tg)
        return True

    def _taskgroup_status_updated(self, tg: TaskGroup) -> None:
        """taskGroupStatusUpdated: whether a Failed/Lost/Finish taskgroup is rescheduled."""
        if tg.status not in (FAILED, LOST, FINISH):
            return
        policy = tg.restart_policy or {}
        kind = policy.get("Policy", "")
        if kind == "Never" or (kind != "Always" and tg.status != FAILED):
            return
        if policy.get("MaxTimes", 0) > 0 and tg.resched_times >= policy["MaxTimes"]:
            return
        delay = policy.get("Interval", 0) + tg.resched_times * policy.get("Backoff", 0)
        self.reschedules[tg.id] = time.time() + max(delay, RESCHEDULE_DELAY)

    def _advance(self, app: Application, tg: TaskGroup, t: float) -> None:
        """What the executor would report for this taskgroup's pod since the last tick."""
        pod = tg.pod
        ticks_in_status = t - tg.status_since >= self.settings.bcs_sync_interval * 0.9
        if tg.status == STAGING and ticks_in_status and not tg.remove_when_ended:
            if tg.checker_error:
                for task in tg.tasks:
                    self._set_task(task, FAILED, tg.checker_error)
            else:
                for task in tg.tasks:
                    self._set_task(task, STARTING, "")
            self._aggregate(tg)
        elif tg.status == STARTING and ticks_in_status and pod is not None and pod.state == POD_RUNNING:
            for task in tg.tasks:
                self._set_task(task, RUNNING, "container is running")
                task.started_at = pod.started_at
                task.container_id = secrets.token_hex(32)
            tg.pod_ip = pod.ip
            tg.seen_exits = pod.exits
            grace = min(
                (task.health_check["GracePeriodSeconds"] for task in tg.tasks if task.health_check), default=None
            )
            tg.next_check_at = None if grace is None else t + grace
            self._aggregate(tg)
        elif tg.status == RUNNING and pod is not None:
            if pod.exits > tg.seen_exits:  # the container exited: TASK_FAILED
                tg.seen_exits = pod.exits
                for task in tg.tasks:
                    self._set_task(task, FAILED, CRASH_MESSAGE.format(code=pod.last_exit_code))
                self._aggregate(tg)
                tg.group.delete()
            elif tg.next_check_at is not None and t >= tg.next_check_at:
                self._run_checks(tg, pod)
        if tg.status in (KILLING,) and (tg.group is None or tg.group.gone):
            for task in tg.tasks:
                if task.status == KILLING:
                    self._set_task(task, KILLED, "")
            self._aggregate(tg)

    def _probe(self, task: Task, pod) -> bool:
        kind = task.health_check["Type"]
        if kind == "TCP":
            port = self._check_port(task)
            return pod.state == POD_RUNNING and pod.address_for(port) is not None and not pod.behaviour.crashloop
        return pod.state == POD_RUNNING and pod.ready

    def _run_checks(self, tg: TaskGroup, pod) -> None:
        interval = None
        for task in tg.tasks:
            check = task.health_check
            if check is None or task.status != RUNNING:
                continue
            interval = check["IntervalSeconds"] if interval is None else min(interval, check["IntervalSeconds"])
            healthy = self._probe(task, pod)
            task.is_checked = True
            task.consecutive_failures = 0 if healthy else task.consecutive_failures + 1
            self._check_task_health(tg, task, healthy)
        tg.next_check_at = None if interval is None else time.time() + interval

    def _check_task_health(self, tg: TaskGroup, task: Task, healthy: bool) -> None:
        """update.go checkTaskHealth."""
        if healthy != task.healthy:
            task.healthy = healthy
            for status in task.health_status:
                if status["type"] in LOCAL_CHECKS:
                    status["result"] = healthy
            task.update_time = now()
        if (
            task.local_max_failures > 0
            and not task.healthy
            and task.is_checked
            and task.consecutive_failures > task.local_max_failures
        ):
            self._set_task(task, FAILED, "health check consecutive failure times over, kill by scheduler")
            self._aggregate(tg)
            if tg.group is not None:
                tg.group.delete()

    def _update_application_status(self, app: Application) -> None:
        """update.go updateApplicationStatus, in its order; frozen while Operating/RollingUpdate."""
        statuses = [tg.status for tg in app.taskgroups.values()]
        total = len(statuses)
        running = app.running_instances
        if ERROR in statuses:
            status, message = "Error", "application has error pods"
        elif FAILED in statuses:
            status, message = ABNORMAL, "application has failed pods"
        elif LOST in statuses:
            status, message = ABNORMAL, "have some lost taskgroups"
        elif total < app.define_instances:
            status, message = ABNORMAL, "have not enough resources to launch application"
        elif statuses.count(FINISH) == total:
            status, message = FINISH, "all pods are finish"
        elif statuses.count(STARTING) + statuses.count(STAGING) > 0:
            status, message = DEPLOYING, "some pods in staing or starting"
        elif running == app.define_instances:
            status, message = RUNNING, APP_RUNNING_STR
        else:
            status, message = ABNORMAL, APP_ABNORMAL_STR
        if app.status in (OPERATING, ROLLING_UPDATE):
            return
        if status != app.status:
            app.last_status, app.status = app.status, status
            app.message = message
            app.sub_status = SUB_UNKNOWN
            app.update_time = now()

    # -- the loop -------------------------------------------------------------------------
    def tick_applications(self) -> None:
        t = time.time()
        for key, app in list(self.apps.items()):
            for tg in list(app.taskgroups.values()):
                self._advance(app, tg, t)
                if tg.remove_when_ended and tg.status in END_STATES:
                    self._forget_taskgroup(app, tg)
            if app.deleting:
                if app.delete_enforce or all(tg.status in END_STATES for tg in app.taskgroups.values()):
                    for tg in list(app.taskgroups.values()):
                        self._forget_taskgroup(app, tg)
                    del self.apps[key]
                continue
            if app.born < self._last_tick:  # status reports only come after the launch
                self._update_application_status(app)
        self._run_reschedules(t)

    def _run_reschedules(self, t: float) -> None:
        """trans_reschedule.go: kill and replace the old taskgroup when the app allows it."""
        for tg_id, due in list(self.reschedules.items()):
            if t < due:
                continue
            found = next(
                ((app, tg) for app in self.apps.values() for tg in app.taskgroups.values() if tg.id == tg_id), None
            )
            if found is None:
                self.reschedules.pop(tg_id, None)
                continue
            app, old = found
            if app.status == OPERATING or (app.status == ROLLING_UPDATE and app.sub_status != SUB_ROLLING_UP):
                continue
            self.reschedules.pop(tg_id, None)
            if old.status == RUNNING:
                continue  # "lost taskGroup recover to running"
            if old.group is not None:
                old.group.delete()
            app.taskgroups[old.index] = self._new_taskgroup(app, old.index, old.resched_times + 1)
            app.taskgroups[old.index].last_resched_time = now()

    def find_app(self, namespace: str, app_id: str) -> Application | None:
        return self.apps.get((namespace, app_id))

    def delete_application_api(self, namespace: str, name: str, enforce: bool) -> None:
        """DELETE applications/{name} (backend DeleteApplication)."""
        app = self.find_app(namespace, name)
        if app is None:
            # store.ErrNoFound is not a ZK "node does not exist" error: createResponseData -> 1405200
            raise BcsError(SCHED_COMMON, "store: Not Found")
        if app.status == ROLLING_UPDATE and not enforce:
            raise BcsError(SCHED_COMMON, "Application in rollingupdate, cannot delete directory")
        self.delete_application(app, enforce)


from .configmaps import ConfigMapOps  # noqa: E402
from .deployments import DeploymentOps  # noqa: E402  (they build on AppLifecycle's records)
from .services import ServiceOps  # noqa: E402


class Scheduler(DeploymentOps, ServiceOps, ConfigMapOps, AppLifecycle):
    """bcs-scheduler (plus the parts of bcs-mesos-driver it needs), with its periodic work."""

    def __init__(self, runtime: Runtime, settings: Settings):
        AppLifecycle.__init__(self, runtime, settings)
        DeploymentOps.__init__(self)
        ServiceOps.__init__(self)
        ConfigMapOps.__init__(self)
        self._wake = None
        runtime.evictors["bcs"] = self.evict_pod

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def tick(self) -> None:
        self.tick_applications()
        self.tick_deployments()
        self._last_tick = time.time()
