"""App configs -> release DAGs.  One DAG per app, all of the same shape:

    [wait_for_window >>] plan >> deploy_new_color >> wait_until_ready >> approve >> switch_traffic
         >> soak >> retire_old_color >> finish
    {deploy_new_color, wait_until_ready, approve, switch_traffic, soak} --one failed--> rollback

(wait_for_window only for apps with release windows; approve passes at once unless the
run's form or the app's config asks for approval.)

Only light imports here: this runs at every DAG parse.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from .apps.config import AppConfig, app_name_of, load_app
from .apps.durations import format_duration
from .apps.errors import ConfigError
from .apps.images import IMAGE_PATTERN

log = logging.getLogger(__name__)

DURATION_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+$|^[0-9]+(?:\.[0-9]+)?$"


def release_params(app: AppConfig) -> dict:
    from airflow.sdk import Param

    scheduled = bool(app.windows)
    image_doc = "The image to release, e.g. registry.example.com/team/app:1.4.2. " + (
        "Leave empty to release the pending version a build pipeline set in the Airflow Variable "
        f"{app.pending_variable}."
        if scheduled
        else "Required."
    )
    # With windows, an empty image means the pending version (what scheduled runs release).
    image = Param(
        None if scheduled else app.default_image,
        type=["null", "string"] if scheduled else "string",
        pattern=IMAGE_PATTERN,
        minLength=1,
        title="Image",
        description=image_doc,
        section="Release",
    )
    if not scheduled and app.default_image is None:
        image = Param(
            type="string", pattern=IMAGE_PATTERN, minLength=1, title="Image", description=image_doc, section="Release"
        )
    return {
        "image": image,
        "replicas": Param(
            app.replicas,
            type="integer",
            minimum=1,
            maximum=1000,
            title="Replicas",
            description=f"How many replicas the new color runs (the app's default is {app.replicas}).",
            section="Release",
        ),
        "soak": Param(
            format_duration(app.soak),
            type="string",
            pattern=DURATION_PATTERN,
            title="Soak",
            description="How long the new color must stay healthy under real traffic before the old "
            "one is removed, e.g. 90s, 10m, 1h30m. Until then, rolling back is one "
            "selector switch.",
            section="Release",
        ),
        "approval": Param(
            app.approval,
            type="boolean",
            title="Require approval before the switch",
            description="Pause after the new color is ready until a person approves the switch "
            "(Browse > Required Actions).",
            section="Release",
        ),
        "reason": Param(
            "",
            type="string",
            title="Reason",
            description="Why this release (a ticket, a change summary). It goes into the run's note.",
            section="Release",
        ),
        "restore_previous": Param(
            False,
            type="boolean",
            title="Roll back to the previous release",
            description="Ignore Image: re-deploy the release that was live before the last "
            "one (its image and manifest are recorded on the Service), for when "
            "its color is already gone.",
            section="Rollback",
        ),
    }


def release_dag(app: AppConfig):
    from airflow.sdk import DAG, TriggerRule, chain
    from airflow.sdk.definitions.param import ParamsDict

    from .approval import ReleaseApprovalOperator
    from .operators import (
        DeployNewColorOperator,
        FinishReleaseOperator,
        PlanReleaseOperator,
        RetireOldColorOperator,
        RollbackOperator,
        SwitchTrafficOperator,
    )
    from .sensors import SoakSensor, WaitForReadySensor, WaitForWindowSensor

    spec = app.to_json()
    # who is told what (bluegreen.notifiers): callbacks of the tasks that know each event
    notify: dict[str, dict] = {}
    if app.notify:
        from .notifiers import task_callbacks

        notify = task_callbacks(app, spec)
    schedule = None
    if app.windows:
        from .timetable import ReleaseWindowTimetable

        schedule = ReleaseWindowTimetable(app.windows, app.freeze_dates)
    dag = DAG(
        dag_id=app.dag_id,
        description=app.description
        or f"Blue-green release of {app.name} ({app.platform}, {app.namespace}/{app.service})",
        doc_md=_doc(app),
        schedule=schedule,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        render_template_as_native_obj=True,
        tags=["bluegreen", app.platform, app.name],
        # A step that raises a ReleaseError (a refusal) fails at once; anything else (an API that
        # kept failing past the step's budget, a crashed worker) is retried: every step converges.
        default_args={
            "retries": app.retries,
            "retry_delay": dt.timedelta(seconds=5),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": dt.timedelta(minutes=5),
        },
    )
    with dag:
        window = (
            [WaitForWindowSensor(task_id="wait_for_window", app=spec, **notify.get("wait_for_window", {}))]
            if app.windows
            else []
        )
        plan = PlanReleaseOperator(task_id="plan", app=spec, **notify.get("plan", {}))
        deploy = DeployNewColorOperator(task_id="deploy_new_color", app=spec)
        ready = WaitForReadySensor(task_id="wait_until_ready", app=spec)
        approve = ReleaseApprovalOperator(
            task_id="approve",
            app=spec,
            approval_timeout=app.effective_approval_timeout,
            approval_default=app.approval_default,
            **notify.get("approve", {}),
        )
        switch = SwitchTrafficOperator(task_id="switch_traffic", app=spec, **notify.get("switch_traffic", {}))
        soak = SoakSensor(task_id="soak", app=spec)
        retire = RetireOldColorOperator(task_id="retire_old_color", app=spec, **notify.get("retire_old_color", {}))
        finish = FinishReleaseOperator(task_id="finish", app=spec, **notify.get("finish", {}))
        guarded = [deploy, ready, approve, switch, soak]
        rollback = RollbackOperator(
            task_id="rollback",
            app=spec,
            trigger_rule=TriggerRule.ONE_FAILED,
            watched_tasks=[t.task_id for t in guarded],
            retries=app.rollback_retries,
            # the safety path: tried again soon (5 s, 10 s, ... at most a minute apart)
            max_retry_delay=dt.timedelta(minutes=1),
            **notify.get("rollback", {}),
        )
        chain(*window, plan, deploy, ready, approve, switch, soak, retire, finish)
        for task in guarded:
            task >> rollback
    # The run's params are given to the DAG once its tasks exist.  Given to DAG(), Airflow copies
    # them (deepcopy) into every task at each level of its constructor, 27 copies per DAG: about
    # 60% of the time it took to parse 100 app configs.  A task needs no copy of its own: at run
    # time its context's params are the DAG's merged with the run's conf (process_params), and the
    # trigger form reads the DAG's.
    dag.params = ParamsDict(release_params(app))
    return dag


def _doc(app: AppConfig) -> str:
    return f"""### Blue-green release of `{app.name}`

Platform **{app.platform}** (connection `{app.connection_id}`), Service `{app.namespace}/{app.service}`,
deployments `{app.deployment_name('blue')}` / `{app.deployment_name('green')}`. Config: `{app.source}`.

1. **plan**: reads which color the Service points at; the release deploys the other one. Takes the lock.
2. **deploy_new_color**, 3. **wait_until_ready** (timeout {format_duration(app.readiness_timeout)}),
4. **switch_traffic** (re-checks readiness, then replaces the Service's selector),
5. **soak** ({format_duration(app.soak)} by default), 6. **retire_old_color**, 7. **finish**.

**Roll back** at any time until `retire_old_color` runs: mark the running task (`wait_until_ready` or `soak`)
as *failed*. The `rollback` task then switches traffic back (if it had moved) and removes the new color.
**Retry** a failed step: clear it.
"""


class InvalidAppConfigs(Exception):
    pass


def load_release_dags(apps_dir: Path) -> dict:
    """Every valid app config in ``apps_dir`` as a DAG, by dag_id.

    A config that does not validate must show up as an import error without taking
    the other apps' DAGs down with it.  Airflow records an import error for a DAG
    whose ``validate()`` raises and still loads the file's other DAGs
    (DagBag.process_file), so each broken config gets a placeholder DAG that raises
    its ConfigError (file, field, value) there.
    """
    dags: dict = {}
    sources: dict[str, str] = {}
    errors: list = []
    wanted = _dag_being_run()
    for path in sorted(Path(apps_dir).glob("*.yaml")):
        if wanted is not None and _dag_id_of(app_name_of(path)) not in (wanted, None):
            continue  # a task's process needs its own DAG only (a file that names no app is still judged)
        try:
            app = load_app(path)
            if app.dag_id in dags:
                raise ConfigError("app", app.name, f"is also defined by {sources[app.dag_id]}", str(path))
            dags[app.dag_id], sources[app.dag_id] = release_dag(app), str(path)
        except ConfigError as e:
            log.error("%s", e)
            errors.append(str(e))
    if errors:
        dags["bluegreen_invalid_app_configs"] = _broken(errors)
    return dags


def _dag_being_run() -> str | None:
    """The DAG a task process parses this file for (Airflow's parsing context), None when every
    DAG is wanted (the dag-processor, the api-server, ``dags test``).  Building only that one
    keeps a task's start from growing with the number of apps."""
    from airflow.sdk import get_parsing_context

    dag_id = get_parsing_context().dag_id
    return dag_id if dag_id and dag_id.startswith("release_") else None


def _dag_id_of(app_name: str | None) -> str | None:
    return f"release_{app_name.replace('-', '_')}" if app_name else None


def _broken(errors: list[str]):
    from airflow.sdk import DAG

    class InvalidAppConfigsDag(DAG):
        def validate(self):
            raise InvalidAppConfigs("; ".join(errors))

    return InvalidAppConfigsDag(dag_id="bluegreen_invalid_app_configs", schedule=None)
