"""Operators: one per release step, each a thin shell over ``bluegreen.release.steps``.

Every operator takes the app's config (as JSON, so the DAG serializes) and reads
the run's plan from the ``plan`` task's XCom.  A ``ReleaseError`` (a refusal with
a reason a person can act on) fails the task at once without retries and leaves
its reason in XCom ``failure`` for the rollback task's log; anything else (an API
that kept failing past the step's retry budget, a crash of the process) takes the
task's retries, with exponential backoff: every step converges, so a retry is safe,
and a crash is retried rather than rolled back.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, NoReturn

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from .apps.durations import format_duration, parse_duration
from .apps.images import check_image
from .release.model import ConfigError, Fenced, Plan, ReleaseError

PLAN_TASK = "plan"
FAILURE_KEY = "failure"
# what the metric analysis measured (the readiness and soak sensors keep it), for the run's note
ANALYSIS_KEY = "analysis"
ANALYSED_TASKS = ("wait_until_ready", "soak")


class ReleaseStepOperator(BaseOperator):
    """Base class: builds the release for this run and turns refusals into clean failures."""

    ui_color = "#e8f1fb"

    def __init__(self, *, app: dict, **kwargs):
        super().__init__(**kwargs)
        self.app = app

    # -- building blocks --------------------------------------------------------------
    def app_config(self):
        from .apps.config import AppConfig

        return AppConfig.from_json(self.app)

    def release(self, context):
        """The release context of this run: the app config parsed, its platform's adapter (which
        builds its API client on first use).  Each execute builds it once and hands it down."""
        from .platforms import metrics_for, platform_for
        from .release.steps import Release

        app = self.app_config()
        return Release(app, platform_for(app), context["run_id"], logger=self.log, metrics=metrics_for(app))

    @staticmethod
    def plan_of(context) -> Plan | None:
        data = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        return Plan.from_json(data) if data else None

    def fail(self, context, message: str) -> NoReturn:
        context["ti"].xcom_push(key=FAILURE_KEY, value=message)
        raise AirflowFailException(message)

    def note(self, context, plan: Plan, outcome: str) -> None:
        """Write the run's note (see bluegreen.run_notes)."""
        from .run_notes import release_note, set_run_note

        reason = str((context.get("params") or {}).get("reason") or "")
        note = release_note(plan.app, plan, outcome, reason)
        if self.app.get("analysis"):
            measured = [context["ti"].xcom_pull(task_ids=task, key=ANALYSIS_KEY) for task in ANALYSED_TASKS]
            note += "".join(f"\n{m[:1].upper()}{m[1:]}" for m in measured if m)
        set_run_note(context["dag"].dag_id, context["run_id"], note, self.log)

    # -- the step ---------------------------------------------------------------------
    def execute(self, context) -> Any:
        plan = self.plan_of(context)
        if plan is None:
            raise AirflowFailException(f"no release plan in this run (the {PLAN_TASK} task did not succeed)")
        try:
            return self.step(context, self.release(context), plan)
        except ReleaseError as e:
            self.fail(context, str(e))

    def step(self, context, release, plan: Plan) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class PlanReleaseOperator(ReleaseStepOperator):
    """Checks the run's inputs, reads which color is live, and takes the release lock.

    Nothing in the cluster changes before this task has accepted every input."""

    template_fields: Sequence[str] = ("image", "replicas", "soak", "restore_previous")
    ui_color = "#fdf3d8"

    def __init__(
        self,
        *,
        image: Any = "{{ params.image }}",
        replicas: Any = "{{ params.replicas }}",
        soak: Any = "{{ params.soak }}",
        restore_previous: Any = "{{ params.restore_previous }}",
        skip_if_live: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image, self.replicas, self.soak = image, replicas, soak
        self.restore_previous, self.skip_if_live = restore_previous, skip_if_live

    def inputs(self) -> tuple[str, int, float]:
        """The run's image, replicas and soak, or a ConfigError naming the bad one."""
        image = self.image
        problem = check_image(image) if image not in (None, "", "None") else "is required"
        if problem and not self._restoring():
            raise ConfigError("params.image", image, problem)
        try:
            replicas = int(self.replicas)
            if isinstance(self.replicas, bool) or str(self.replicas).strip() != str(replicas) or replicas < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError("params.replicas", self.replicas, "must be a whole number of at least 1") from None
        try:
            soak = parse_duration(self.soak)
        except ValueError as e:
            raise ConfigError("params.soak", self.soak, str(e)) from None
        return image, replicas, soak

    def _restoring(self) -> bool:
        return str(self.restore_previous).lower() in ("true", "1")

    def pending_version(self, context, app) -> str | None:
        """For an app with release windows, a scheduled run (or a manual one with no image)
        releases the version a build pipeline left in the app's Variable."""
        from airflow.sdk import Variable

        if not app.windows or self._restoring():
            return None
        scheduled = str(getattr(context.get("dag_run"), "run_type", "")).endswith("scheduled")
        if not scheduled and self.image not in (None, "", "None"):
            return None
        name = app.pending_variable
        image = Variable.get(name, default=None)
        if not image:
            raise AirflowSkipException(f"nothing to release: the Variable {name} (the pending version) is not set")
        self.log.info("releasing the pending version %s (Variable %s)", image, name)
        return image

    def execute(self, context) -> dict:
        release = self.release(context)
        pending = self.pending_version(context, release.app)
        if pending:
            self.image = pending
        try:
            image, replicas, soak = self.inputs()
            plan = release.plan(
                image,
                replicas,
                soak,
                skip_if_live=self.skip_if_live or bool(pending),
                restore_previous=self._restoring(),
            )
        except ReleaseError as e:
            self.fail(context, str(e))
        if plan.noop_reason:
            raise AirflowSkipException(plan.noop_reason)
        self.log.info("plan: %s (soak %s)", plan.describe(), format_duration(plan.soak_seconds))
        self.note(context, plan, "in progress")
        return plan.to_json()


class DeployNewColorOperator(ReleaseStepOperator):
    """Runs the release's image on the idle color (create, or replace a leftover)."""

    def step(self, context, release, plan):
        return release.deploy(plan)


class SwitchTrafficOperator(ReleaseStepOperator):
    # (the window wait defers to a trigger that keeps the release lock until the window opens)
    """Points the Service at the new color once it is fully ready (re-checked now), and only
    inside a release window when the app has windows: when the window closed while the run
    waited, it fails (the rollback path runs) or waits, deferred, for the next window, as the
    app's ``window_closes`` says."""

    ui_color = "#dff5e1"

    def step(self, context, release, plan):
        from .apps.windows import schedule_of

        schedule = schedule_of(release.app)
        now = datetime.datetime.now(datetime.UTC)
        # (the Service is read here only when the window is closed: the switch reads it anyway)
        if schedule is not None and schedule.open_window(now) is None and release.serving_color() != plan.new_color:
            next_open = schedule.next_open(now)
            if release.app.window_closes == "wait" and next_open is not None:
                from .triggers import HoldUntilTrigger

                self.log.info("outside the release windows: waiting for the next one, at %s", next_open.isoformat())
                self.defer(
                    trigger=HoldUntilTrigger(
                        release.app.to_json(), plan.to_json(), release.run_id, moment=next_open.timestamp()
                    ),
                    method_name="resume",
                )
            self.fail(
                context,
                f"the release window closed before the switch (next window opens at "
                f"{next_open.isoformat() if next_open else 'never'}); rolling back",
            )
        release.switch(plan)

    def resume(self, context, event=None):
        return self.execute(context)


class RetireOldColorOperator(ReleaseStepOperator):
    """Deletes (or scales to zero) the old color after the soak, never the live one."""

    def step(self, context, release, plan):
        release.retire_old(plan)


class FinishReleaseOperator(ReleaseStepOperator):
    """Records the release on the Service and releases the lock."""

    def step(self, context, release, plan):
        summary = release.finish(plan)
        self.note(context, plan, "released")
        return summary


class RollbackOperator(ReleaseStepOperator):
    """The rollback path: runs when a step of the release failed (or a person marked it
    failed).  Traffic goes back to the old color if it had moved; the new color is
    removed; the log's last line says why and what is serving."""

    ui_color = "#fbe3e3"

    def __init__(self, *, watched_tasks: Sequence[str] = (), **kwargs):
        super().__init__(**kwargs)
        self.watched_tasks = list(watched_tasks)

    def failure_reason(self, context) -> str:
        ti = context["ti"]
        for task_id in self.watched_tasks:
            reason = ti.xcom_pull(task_ids=task_id, key=FAILURE_KEY)
            if reason:
                return f"{task_id}: {reason}"
        # No reason recorded: a person marked the task failed (or it crashed before saying why).
        try:
            states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=self.watched_tasks)
            failed = [t for t, state in (states.get(ti.run_id) or {}).items() if state == "failed"]
        except Exception:  # the reason is for people; never let it stop the rollback
            failed = []
        if failed:
            return f"{failed[0]} was marked failed (or failed without a reason: see its log)"
        return "a step was marked failed (no reason recorded; see the failed task's log)"

    def execute(self, context):
        plan = self.plan_of(context)
        if plan is None:
            raise AirflowSkipException("nothing to roll back: the plan task did not succeed, nothing was changed")
        reason = self.failure_reason(context)
        release = self.release(context)
        try:
            summary = release.rollback(plan, reason)
        except Fenced as e:
            # another run has the app now: whatever this run left is that run's to judge
            self.note(context, plan, f"ROLLBACK REFUSED: {e}")
            self.fail(context, f"rollback refused: {e}")
        except Exception as e:
            ti = context["ti"]
            if ti.try_number <= ti.max_tries:
                # Every rollback step converges: try again (with backoff) until the budget runs out.
                raise AirflowException(
                    f"rollback did not finish ({type(e).__name__}: {e}); it is tried again "
                    f"(attempt {ti.try_number} of {ti.max_tries + 1})"
                ) from e
            message = (
                f"rollback failed after {ti.try_number} attempts: {type(e).__name__}: {e}.  Now: "
                f"{release.situation(plan)}.  To finish by hand: {release.finish_by_hand(plan)}; or clear "
                "this task to try again"
            )
            self.note(context, plan, f"ROLLBACK FAILED: {message}")
            self.fail(context, message)
        self.log.error(summary)
        self.note(context, plan, f"rolled back ({reason})")
        return summary
