"""bcs-scheduler's deployments: create, update (rolling), cancel/pause/resume, scale, delete.

Sources: sched/backend/deployment.go (CreateDeployment, UpdateDeployment,
CancelUpdateDeployment, Pause/Resume, ScaleDeployment, DeleteDeployment,
CheckDeleteDeployment) and sched/scheduler/deployment.go (the rolling update
state machine: deploymentCheckTick, deploymentBeginRolling, the CreateFirst /
DeleteFirst checks, isRollingStartFinished, finishRollingUpdate).  Messages
and codes are upstream's, including its typos.
"""

from __future__ import annotations

import asyncio
import copy
import time

from .driver import DeploymentDef
from .envelope import (
    COMM_HTTP_DO,
    COMM_REQUEST_DATA_ERR,
    DRIVER,
    SCHED_COMMON,
    SCHED_NOT_FOUND,
    SCHED_RESOURCE_EXIST,
    BcsError,
)
from .model import (
    ABNORMAL,
    DEP_DELETING,
    DEP_DEPLOYING,
    DEP_PAUSED,
    DEP_RUNNING,
    DEP_SUSPEND,
    DEP_UPDATE,
    OP_DELETE,
    OP_NIL,
    OP_START,
    ROLLING_UPDATE,
    RUNNING,
    SUB_ROLLING_DOWN,
    SUB_ROLLING_UP,
    SUB_UNKNOWN,
    Application,
    Deployment,
    RefApp,
    now,
    taskgroup_healthy,
)

# TRANSACTION_DEPLOYMENT_ROLLING_{UP,DOWN}_LIFEPERIOD: how long one step may take before the
# update is suspended ("create taskgroup timeout, rollingupdate suspend"), plus upstream's 60 s.
ROLLING_STEP_LIFEPERIOD = 600


class DeploymentOps:
    """Mixed into Scheduler; uses its apps and application life cycle."""

    def __init__(self):
        self.deployments: dict[tuple[str, str], Deployment] = {}

    # -- create -----------------------------------------------------------------------
    def create_deployment(self, d: DeploymentDef) -> None:
        ns, name = d.object_meta["NameSpace"], d.object_meta["Name"]
        if (ns, name) in self.deployments:
            raise BcsError(SCHED_RESOURCE_EXIST, f"deployment({ns}.{name}) already exist")
        dep = Deployment(
            object_meta=copy.deepcopy(d.object_meta),
            selector=d.selector,
            strategy=d.strategy,
            raw_json=d.raw_json,
            status=DEP_DEPLOYING,
        )
        self.deployments[(ns, name)] = dep  # saved before matching, as upstream does
        match_count, match_app = 0, ""
        if dep.selector is not None:  # a present selector, even {}, means "adopt what matches"
            for app in [a for a in self.apps.values() if a.namespace == ns]:
                for k, v in dep.selector.items():
                    # counted per matching label, so an app matching two labels counts twice (upstream)
                    if app.version.labels.get(k) == v:
                        match_app, match_count = app.id, match_count + 1
        version = d.version
        if match_count == 0:
            if version is None or version.namespace != ns:
                # upstream returns here without deleting the record it saved: it stays Deploying
                raise BcsError(COMM_REQUEST_DATA_ERR, "version empty or namespace error")
            self._create_deployment_app(dep, version)
        elif match_count == 1:
            if version is None:
                dep.application = RefApp(match_app)
                dep.status = DEP_RUNNING
                return
            if version.namespace != ns:
                raise BcsError(COMM_REQUEST_DATA_ERR, "version namespace error")
            if version.id == match_app:
                version.id = f"{version.id}-v{now()}"
            self.delete_application(self.apps[(ns, match_app)], False)
            self._create_deployment_app(dep, version)
        else:
            del self.deployments[(ns, name)]
            raise BcsError(COMM_REQUEST_DATA_ERR, "too many application exist matching deployment")

    def _create_deployment_app(self, dep: Deployment, version) -> None:
        """createDeploymentApplication; on failure the deployment record is deleted again."""
        key = (dep.namespace, dep.name)
        if version.instances <= 0:
            del self.deployments[key]
            raise BcsError(COMM_REQUEST_DATA_ERR, "application instances error")
        if (version.namespace, version.id) in self.apps:
            del self.deployments[key]
            raise BcsError(COMM_REQUEST_DATA_ERR, "application duplicated when create application for deployment")
        self.create_application(version)
        dep.application = RefApp(version.id)
        dep.status = DEP_RUNNING  # Running as soon as the application exists, not when it runs

    # -- update -----------------------------------------------------------------------
    def update_deployment(self, d: DeploymentDef) -> None:
        ns, name = d.object_meta["NameSpace"], d.object_meta["Name"]
        rolling = d.strategy["RollingUpdate"]
        if rolling is None:
            raise BcsError(COMM_REQUEST_DATA_ERR, "update strategy not set")
        if rolling["RollingOrder"] not in ("CreateFirst", "DeleteFirst"):
            raise BcsError(COMM_REQUEST_DATA_ERR, "update strategy rolling order error")
        if rolling["MaxUnavailable"] <= 0:
            rolling["MaxUnavailable"] = 1
        if rolling["MaxSurge"] <= 0:
            rolling["MaxSurge"] = 1
        dep = self.deployments.get((ns, name))
        if dep is None:
            raise BcsError(SCHED_NOT_FOUND, "deployment not exist")
        if dep.status != DEP_RUNNING:
            raise BcsError(SCHED_COMMON, "deployment is not running, cannot update")
        if dep.application is None:
            raise BcsError(
                SCHED_NOT_FOUND, "deployment has not application, cannot do update, you can delete and recreate it"
            )
        app = self.apps.get((ns, dep.application.name))
        if app is None:
            raise BcsError(
                SCHED_NOT_FOUND, "deployment has not application, cannot update, you can delete and recreate it"
            )
        if app.status not in (RUNNING, ABNORMAL):
            raise BcsError(SCHED_COMMON, "deployment bind application is not running, cannot update, please try later")
        old, new = dep.selector or {}, d.selector or {}
        if any(new.get(k) != v for k, v in old.items()) or any(old.get(k) != v for k, v in new.items()):
            raise BcsError(COMM_REQUEST_DATA_ERR, "deployment's selector cannot be updated'")
        version = d.version
        if version is None:
            # upstream dereferences the nil version: the scheduler's handler dies and the driver
            # reports the dropped connection
            raise BcsError(COMM_HTTP_DO, "do http request failed!EOF", DRIVER)
        version.id = f"{version.id}-v{now()}"
        if version.instances <= 0:
            raise BcsError(COMM_REQUEST_DATA_ERR, "instances error")
        if version.namespace != ns:
            raise BcsError(COMM_REQUEST_DATA_ERR, "namespace error")
        if (ns, version.id) in self.apps:
            raise BcsError(SCHED_COMMON, "application already exist")
        ext = Application(id=version.id, namespace=ns, version=version, define_instances=version.instances)
        self.apps[(ns, ext.id)] = ext
        dep.application_ext = RefApp(ext.id)
        dep.strategy = d.strategy
        dep.status = DEP_UPDATE
        dep.last_rolling_time = 0
        dep.curr_rolling_op = OP_NIL
        dep.is_in_rolling = False
        dep.raw_json_backup, dep.raw_json = dep.raw_json, d.raw_json
        app.last_status, app.status, app.sub_status = app.status, ROLLING_UPDATE, SUB_ROLLING_DOWN
        ext.last_status, ext.status, ext.sub_status = ext.status, ROLLING_UPDATE, SUB_ROLLING_UP

    # -- the rolling update loop (deploymentCheckTick) ---------------------------------------
    def tick_deployments(self) -> None:
        t = time.time()
        for dep in list(self.deployments.values()):
            if dep.status in (DEP_UPDATE, DEP_PAUSED):
                self._rolling_tick(dep)
            elif dep.status == DEP_DELETING and t >= dep.next_delete_check:
                self._check_delete(dep)
                dep.next_delete_check = t + self.settings.bcs_delete_check_interval

    def _rolling_tick(self, dep: Deployment) -> None:
        dep.check_time = now()
        if not dep.is_in_rolling:
            if dep.last_rolling_time > now():
                dep.last_rolling_time = now()
            if now() - dep.last_rolling_time > dep.strategy["RollingUpdate"]["UpgradeDuration"]:
                if dep.status == DEP_PAUSED:
                    return
                self._begin_rolling(dep)
            return
        op_life = ROLLING_STEP_LIFEPERIOD
        if dep.last_rolling_time + op_life + 60 < now():
            dep.message = (
                "create taskgroup timeout, rollingupdate suspend"
                if dep.curr_rolling_op == OP_START
                else "delete taskgroup timeout, rollingupdate suspend"
            )
            dep.is_in_rolling = False
            dep.status = DEP_SUSPEND
            dep.curr_rolling_op = OP_NIL
            return
        create_first = dep.strategy["RollingUpdate"]["RollingOrder"] == "CreateFirst"
        if create_first:
            if dep.curr_rolling_op == OP_START:
                self._create_first_start(dep)
            else:
                self._create_first_delete(dep)
        elif dep.curr_rolling_op == OP_DELETE:
            self._delete_first_delete(dep)
        else:
            self._delete_first_start(dep)

    def _apps(self, dep: Deployment) -> tuple[Application | None, Application | None]:
        app = self.apps.get((dep.namespace, dep.application.name)) if dep.application else None
        ext = self.apps.get((dep.namespace, dep.application_ext.name)) if dep.application_ext else None
        return app, ext

    def _begin_rolling(self, dep: Deployment) -> None:
        app, ext = self._apps(dep)
        if app is None or ext is None:
            return
        rolling = dep.strategy["RollingUpdate"]
        target = max(app.instances - rolling["MaxUnavailable"], 0)
        dep.application.curr_target_instances = target
        dep.application.curr_rolling_instances = app.instances - target
        ext_target = min(ext.instances + rolling["MaxSurge"], ext.define_instances)
        dep.application_ext.curr_target_instances = ext_target
        dep.application_ext.curr_rolling_instances = ext_target - ext.instances
        dep.is_in_rolling = True
        dep.last_rolling_time = now()
        dep.message = ""
        if rolling["RollingOrder"] == "CreateFirst":
            dep.curr_rolling_op = OP_START
            self.scale_application(ext, ext_target)
        else:
            dep.curr_rolling_op = OP_DELETE
            self.scale_application(app, target)

    def _end_rolling(self, dep: Deployment) -> None:
        dep.last_rolling_time = now()
        dep.is_in_rolling = False
        dep.curr_rolling_op = OP_NIL
        dep.message = ""
        if dep.strategy["RollingUpdate"]["RollingManually"]:
            dep.status = DEP_PAUSED
            dep.message = "rollingupdate paused"

    def _rolling_start_finished(self, app: Application, rolling: int, target: int) -> bool:
        """isRollingStartFinished: the new taskgroups Running and, with a local check, checked and healthy."""
        if app.instances < target:
            return False
        for tg in app.taskgroups.values():
            if not target - rolling <= tg.index < target:
                continue
            if not taskgroup_healthy(tg):
                return False
        return True

    def _create_first_start(self, dep: Deployment) -> None:
        app, ext = self._apps(dep)
        if ext is None or app is None:
            return
        if not self._rolling_start_finished(
            ext, dep.application_ext.curr_rolling_instances, dep.application_ext.curr_target_instances
        ):
            return
        all_started = ext.instances >= ext.define_instances
        all_deleted = False
        if app.instances > dep.application.curr_target_instances:
            dep.curr_rolling_op = OP_DELETE
            dep.last_rolling_time = now()
            self.scale_application(app, dep.application.curr_target_instances)
        else:
            self._end_rolling(dep)
            all_deleted = app.instances <= 0
        if all_deleted and all_started:
            self._finish_rolling(dep)

    def _create_first_delete(self, dep: Deployment) -> None:
        app, ext = self._apps(dep)
        if app is None:
            return
        all_deleted = False
        if app.instances <= dep.application.curr_target_instances:
            self._end_rolling(dep)
            all_deleted = app.instances <= 0
        if all_deleted and ext is not None and ext.instances >= ext.define_instances:
            self._finish_rolling(dep)

    def _delete_first_delete(self, dep: Deployment) -> None:
        app, ext = self._apps(dep)
        if app is None or ext is None or app.instances > dep.application.curr_target_instances:
            return
        all_deleted, all_started = app.instances <= 0, False
        if ext.instances < dep.application_ext.curr_target_instances:
            dep.curr_rolling_op = OP_START
            dep.last_rolling_time = now()
            self.scale_application(ext, dep.application_ext.curr_target_instances)
        else:
            self._end_rolling(dep)
            all_started = ext.instances >= ext.define_instances
        if all_deleted and all_started:
            self._finish_rolling(dep)

    def _delete_first_start(self, dep: Deployment) -> None:
        app, ext = self._apps(dep)
        if ext is None:
            return
        if not self._rolling_start_finished(
            ext, dep.application_ext.curr_rolling_instances, dep.application_ext.curr_target_instances
        ):
            return
        self._end_rolling(dep)
        if ext.instances >= ext.define_instances and (app is None or app.instances <= 0):
            self._finish_rolling(dep)

    def _finish_rolling(self, dep: Deployment) -> None:
        """finishRollingUpdate: delete the old app, bind the new one, Running."""
        app, ext = self._apps(dep)
        if app is not None:
            self.delete_application(app, False)
        if ext is not None:
            ext.last_status, ext.status, ext.sub_status = ext.status, RUNNING, SUB_UNKNOWN
        dep.status = DEP_RUNNING
        dep.application = RefApp(dep.application_ext.name)
        dep.application_ext = None
        dep.last_rolling_time = 0
        dep.curr_rolling_op = OP_NIL
        dep.is_in_rolling = False
        dep.message = ""

    # -- cancel / pause / resume / scale ---------------------------------------------------
    async def cancel_update(self, ns: str, name: str) -> None:
        dep = self.deployments.get((ns, name))
        if dep is None:
            raise BcsError(SCHED_COMMON, "store: Not Found")
        if dep.status not in (DEP_UPDATE, DEP_PAUSED, DEP_SUSPEND):
            raise BcsError(SCHED_COMMON, "deployment is in not rollingupdate")
        for _ in range(80):  # upstream polls every 2 s, 8 times, for a delete step to end
            if not (dep.is_in_rolling and dep.curr_rolling_op == OP_DELETE):
                break
            await asyncio.sleep(0.2)
        else:
            raise BcsError(SCHED_COMMON, "deployment is deleting taskgroups, cannot cancelupdate now, try later")
        app, ext = self._apps(dep)
        if ext is not None:
            self.delete_application(ext, False)
        dep.application_ext = None
        if dep.application is None:
            raise BcsError(SCHED_COMMON, "no application to do recover")
        if app is None:
            raise BcsError(SCHED_COMMON, "store: Not Found")
        # RecoverApplication: back to the version's instances, status computed again
        app.status, app.last_status, app.sub_status = app.last_status or RUNNING, app.status, SUB_UNKNOWN
        self.scale_application(app, app.version.instances)
        dep.application.curr_target_instances = 0
        dep.raw_json, dep.raw_json_backup = dep.raw_json_backup, None
        dep.status = DEP_RUNNING
        dep.last_rolling_time = 0
        dep.curr_rolling_op = OP_NIL
        dep.is_in_rolling = False

    def pause_update(self, ns: str, name: str) -> None:
        dep = self.deployments.get((ns, name))
        if dep is None:
            raise BcsError(SCHED_COMMON, "deployment not exist")
        if dep.status != DEP_UPDATE:
            raise BcsError(SCHED_COMMON, "deployment is not in updating")
        dep.status = DEP_PAUSED

    def resume_update(self, ns: str, name: str) -> None:
        dep = self.deployments.get((ns, name))
        if dep is None:
            raise BcsError(SCHED_COMMON, "deployment not exist")
        if dep.status not in (DEP_PAUSED, DEP_SUSPEND):
            raise BcsError(SCHED_COMMON, "deployment is not update paused or suspend")
        dep.status = DEP_UPDATE

    def scale_deployment(self, ns: str, name: str, instances: str) -> None:
        """api.go scaleDeployment_r + backend ScaleDeployment: every failure is 1405200."""
        if not instances.isdigit():
            raise BcsError(SCHED_COMMON, "instances must be specified")
        if int(instances) <= 0:
            raise BcsError(
                SCHED_COMMON, "target instances can not be littler than 1, maybe you want to use delete command"
            )
        dep = self.deployments.get((ns, name))
        if dep is None:
            raise BcsError(SCHED_COMMON, "deployment not exist")
        if dep.status != DEP_RUNNING:
            raise BcsError(SCHED_COMMON, f"operation forbidden, the deployment status is {dep.status}")
        if dep.application is None:
            raise BcsError(SCHED_COMMON, "deployment has no application, can't scale")
        self.scale_application_api(ns, dep.application.name, instances)

    def scale_application_api(self, ns: str, name: str, instances: str) -> None:
        if not instances.isdigit():
            raise BcsError(SCHED_COMMON, "instances must be specified")
        if int(instances) <= 0:
            raise BcsError(
                SCHED_COMMON, "target instances can not be littler than 1, maybe you want to use delete command"
            )
        app = self.apps.get((ns, name))
        if app is None:
            raise BcsError(SCHED_COMMON, "store: Not Found")
        app.define_instances = int(instances)
        app.version.instances = int(instances)
        self.scale_application(app, int(instances))

    # -- delete -----------------------------------------------------------------------
    def delete_deployment(self, ns: str, name: str, enforce: bool) -> None:
        dep = self.deployments.get((ns, name))
        if dep is None:
            raise BcsError(SCHED_NOT_FOUND, "deployment not exist")
        app, ext = self._apps(dep)
        for target in (app, ext):
            if target is not None:  # a missing app is only logged upstream
                self.delete_application(target, enforce)
        dep.status = DEP_DELETING
        dep.message = "waiting applications to be deleted"
        dep.next_delete_check = 0.0  # CheckDeleteDeployment runs at once, then every 3 s upstream

    def _check_delete(self, dep: Deployment) -> None:
        """CheckDeleteDeployment: forget the record once both applications are gone."""
        for attr in ("application", "application_ext"):
            ref = getattr(dep, attr)
            if ref is None:
                continue
            if (dep.namespace, ref.name) not in self.apps:
                setattr(dep, attr, None)
            else:
                dep.message = f"application still not deleted: {ref.name}"
        if dep.application is None and dep.application_ext is None:
            self.deployments.pop((dep.namespace, dep.name), None)

    def definition(self, kind: str, ns: str, name: str) -> dict:
        """GET definition/{deployment|application}/{ns}/{name} (api.go getDeploymentDef/getApplicationDef)."""
        if kind == "deployment":
            dep = self.deployments.get((ns, name))
            if dep is None:
                # FetchDeployment's store.ErrNoFound is reported as is
                raise BcsError(SCHED_COMMON, "store: Not Found")
            if dep.raw_json is None:
                raise BcsError(SCHED_COMMON, "deployment's definition not exist")
            return dep.raw_json
        app = self.apps.get((ns, name))
        if app is None or app.version.raw_json is None:
            raise BcsError(
                SCHED_COMMON, "application's definition not exist, maybe the application was created by deployment"
            )
        return app.version.raw_json
