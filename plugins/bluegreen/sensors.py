"""Sensors: the waiting steps of a release (readiness, soak).

Deferrable by default, like the cncf-kubernetes and amazon providers' sensors:
while they wait they hold no worker slot; the triggerer watches the cluster and
the release model's judges decide.  Short waits (the app's ``defer_after``) are
judged in the worker first.  With ``deferrable=False`` they poke instead, judging
the same way.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from .apps.durations import format_duration
from .operators import ANALYSIS_KEY, PLAN_TASK, ReleaseStepOperator
from .release.health import FAILED, ReadinessJudge, Verdict
from .release.model import Plan, ReleaseError

# A deferred task that resumes too soon can be failed by Airflow 3.3's scheduler: the stale
# "success" of the worker that exited on defer() is drained after the resumed attempt is
# already running, and taken for an external kill (apache/airflow#72716, open against 3.3.1
# and 3.3.2).  So a trigger never fires sooner than this after the deferral...
MIN_DEFERRAL_SECONDS = 5.0


class _ReleaseSensor(BaseSensorOperator, ReleaseStepOperator):
    """...and a sensor first watches for the app's ``defer_after`` seconds in the worker:
    a wait that short is not worth a deferral (and would meet that race).  While it waits
    there it keeps the release lock, as its trigger does."""

    ui_color = "#f0e8fb"
    #: what this sensor's execute judges with (triggers.PreSwitch, health.SoakJudge)
    _judge: Any

    def __init__(self, *, app: dict, deferrable: bool = True, poke_interval: float = 2.0, **kwargs):
        kwargs.setdefault("timeout", 7 * 24 * 3600)  # the judges enforce the real limits
        super().__init__(app=app, poke_interval=poke_interval, **kwargs)
        self.deferrable = deferrable

    def _plan(self, context) -> Plan:
        plan = self.plan_of(context)
        if plan is None:
            raise AirflowFailException(f"no release plan in this run (the {PLAN_TASK} task did not succeed)")
        return plan

    def judge_once(self, context) -> Verdict:  # pragma: no cover - each sensor says
        raise NotImplementedError

    #: how often the sensor looks while it waits in the worker (the soak: its check interval); a verdict
    #: due within this long after defer_after is waited for here rather than deferred
    interval_here = 0.5

    def wait_here(self, context, seconds: float) -> Verdict | None:
        """Judge in the worker for up to ``seconds``: the final verdict, or None if still waiting.
        Each sensor waits by its trigger's own loop (``judge_as_trigger``); this is the one look
        every sensor takes when it may not wait here (``seconds`` <= 0) before it defers or pokes."""
        try:
            verdict = self.judge_once(context)
        except ReleaseError as e:
            self.fail(context, str(e))
        self.log.info(verdict.message)
        return verdict if verdict.final else None

    def verdict_due(self) -> float | None:
        """When (clock time) the judge will give its final verdict if nothing goes wrong; None: not known."""
        return None

    def judge_as_trigger(self, context, trigger, seconds: float, **kwargs) -> Verdict | None:
        """Judge in the worker for up to ``seconds`` with the trigger's own loop (its ``judge_until``,
        on this task's judge): the final verdict, or None if still waiting."""
        import asyncio

        release, plan = self._context_release(context), self._context_plan(context)
        trigger._log = self.log  # its judgements go to this task's log (LoggingMixin keeps it in _log)
        try:
            return asyncio.run(trigger.judge_until(release, plan, self._judge, time.time() + seconds, **kwargs))
        except ReleaseError as e:
            self.fail(context, str(e))

    def wait(self, context, trigger_factory) -> None:
        """Wait in the worker first, then defer (or poke when not deferrable)."""
        defer_after = self._context_release(context).app.defer_after
        here = defer_after
        verdict_due = self.verdict_due()
        if verdict_due is not None and 0 < verdict_due - time.time() <= defer_after + self.interval_here:
            # due within a check of the limit: a deferral (a trigger, a hop back) would cost more
            here = max(here, verdict_due - time.time())
        verdict = self.wait_here(context, here if self.deferrable else 0)
        if verdict is not None:
            return self.execute_complete(context, {"state": verdict.state, "message": verdict.message})
        if not self.deferrable:
            return BaseSensorOperator.execute(self, context)
        # defer_after: 0 asks for no delay at all (dag.test(), which has no scheduler to race)
        hold = min(MIN_DEFERRAL_SECONDS, defer_after)
        self.defer(trigger=trigger_factory(time.time() + hold), method_name="execute_complete")

    def poke(self, context) -> bool:
        verdict = self.judge_once(context)
        self.log.info(verdict.message)
        if verdict.state == FAILED:
            self.fail(context, verdict.message)
        if verdict.final:
            self.on_success(context, self._plan(context), verdict.message)
        return verdict.final

    def execute_complete(self, context, event: dict[str, Any] | None = None) -> None:
        event = event or {}
        if event.get("state") == FAILED:
            self.fail(context, event.get("message", "failed"))
        self.on_success(context, self._plan(context), event.get("message", ""))

    def on_success(self, context, plan: Plan, message: str) -> None:
        self.log.info(message)
        self.keep_analysis(context, message)

    @staticmethod
    def keep_analysis(context, message: str) -> None:
        """What the metric analysis measured, in XCom (``analysis``) for the run's note."""
        from .release.analysis import analysis_part

        summary = analysis_part(message)
        if summary:
            context["ti"].xcom_push(key=ANALYSIS_KEY, value=summary)

    def _context_release(self, context, fresh: bool = False):
        """This task's release context (the app config parsed, the API client built), built once
        per execute (``fresh``) and kept while the sensor judges, which it does many times."""
        if fresh or getattr(self, "_bluegreen_release", None) is None:
            self._bluegreen_release = self.release(context)
        return self._bluegreen_release

    def _context_plan(self, context) -> Plan:
        """The run's plan, read once per execute (it does not change while the sensor judges)."""
        if getattr(self, "_bluegreen_plan", None) is None:
            self._bluegreen_plan = self._plan(context)
        return self._bluegreen_plan

    def _start(self, context) -> tuple[Any, Plan]:
        """At the start of an execute: the plan and a new release context."""
        self._bluegreen_plan = self._plan(context)
        return self._context_release(context, fresh=True), self._bluegreen_plan


class WaitForReadySensor(_ReleaseSensor):
    """Waits until the new color is fully ready by its platform's rule; fails at once on
    a failure that waiting cannot cure, and at the app's readiness timeout."""

    def execute(self, context) -> None:
        release, plan = self._start(context)
        app = release.app
        from .triggers import PreSwitch

        # ready, then (for an app with an analysis before the switch) analysed: see PreSwitch
        self._judge = PreSwitch(
            release,
            plan,
            ReadinessJudge(
                app.deployment_name(plan.new_color), time.time() + app.readiness_timeout, app.readiness_timeout
            ),
        )
        self._next_keep = 0.0

        return self.wait(context, lambda not_before: self._trigger(context, not_before))

    def _trigger(self, context, not_before: float = 0.0):
        from .triggers import ReadinessTrigger

        app, plan = self._context_release(context).app, self._context_plan(context)
        return ReadinessTrigger(
            app.to_json(),
            plan.to_json(),
            context["run_id"],
            self._judge.readiness.deadline,
            app.readiness_timeout,
            not_before=not_before,
        )

    def wait_here(self, context, seconds: float) -> Verdict | None:
        """In the worker, readiness is judged as its trigger judges it, by the same code: the new
        color by the platform's watch (a list and a watch, not a read of it every half second)."""
        if seconds <= 0:
            return super().wait_here(context, seconds)  # one look, as every sensor takes before it defers or pokes
        from .triggers import keep_every

        release, plan = self._context_release(context), self._context_plan(context)
        # Fenced before the wait, here rather than in the event loop: the clients' connections are
        # fetched now, in this thread (the task SDK refuses a connection fetch in a worker thread
        # while its event loop fetches another: DeadlockImminentError).  The soak's start does the same.
        try:
            release.keep(plan)
        except ReleaseError as e:
            self.fail(context, str(e))
        next_keep = time.time() + keep_every(release.app)
        return self.judge_as_trigger(
            context, self._trigger(context), seconds, look=self.interval_here, next_keep=next_keep
        )

    def judge_once(self, context) -> Verdict:
        from .triggers import keep_every

        plan = self._context_plan(context)
        release = self._context_release(context)
        if time.time() >= getattr(self, "_next_keep", 0.0):
            release.keep(plan)  # fenced: a run whose lock was taken over stops here
            self._next_keep = time.time() + keep_every(release.app)
        if self._judge.analysing:
            return self._judge.analyse(time.time())
        verdict = self._judge.judge(release.readiness(plan), time.time())
        if self._judge.analysing:
            self.log.info(verdict.message)
            return self._judge.analyse(time.time())
        return verdict

    def verdict_due(self) -> float | None:
        return self._judge.ends_at()


class SoakSensor(_ReleaseSensor):
    """Watches the new color under real traffic for the soak; records on the Service that
    it passed (only then may the old color go), or fails with the first unhealthy reason
    beyond the app's tolerance.  The soak's progress lives on the Service: a retried task
    (or a restarted triggerer) goes on with the same end and the same count."""

    def execute(self, context) -> None:
        release, plan = self._start(context)
        app = release.app
        try:
            self._judge = release.soak_judge(plan)
        except ReleaseError as e:
            self.fail(context, str(e))
        left = max(0.0, self._judge.ends_at - time.time())
        # (how the new color stands is the soak's first observation, logged by its judge)
        self.log.info(
            "soaking %s for %s more (of %s)",
            app.deployment_name(plan.new_color),
            format_duration(left),
            format_duration(plan.soak_seconds),
        )
        self.interval_here = app.check_interval  # the soak reads the Service and runs its HTTP check this often
        from .triggers import SoakTrigger

        return self.wait(
            context,
            lambda not_before: SoakTrigger(app.to_json(), plan.to_json(), context["run_id"], not_before=not_before),
        )

    def wait_here(self, context, seconds: float) -> Verdict | None:
        """In the worker, the soak is judged as its trigger judges it, by the same code: the workload
        (and, where the platform can, the Service) by watch, not a read of them per check; the
        Service's reads and the HTTP check at the check interval; the progress recorded on the Service."""
        if seconds <= 0:
            return super().wait_here(context, seconds)  # one look, as every sensor takes before it defers or pokes
        from .triggers import SoakTrigger

        app, plan = self._context_release(context).app, self._context_plan(context)
        return self.judge_as_trigger(context, SoakTrigger(app.to_json(), plan.to_json(), context["run_id"]), seconds)

    def judge_once(self, context) -> Verdict:
        plan = self._context_plan(context)
        release = self._context_release(context)
        serving, http = release.soak_probe(plan)
        verdict = release.judge_soak(plan, self._judge, release.readiness(plan), serving, http, time.time())
        if verdict.state == FAILED:
            release.forget_soak(plan)
        return verdict

    def verdict_due(self) -> float | None:
        return self._judge.ends_at

    def on_success(self, context, plan: Plan, message: str) -> None:
        self.log.info(message)
        self.keep_analysis(context, message)
        try:
            self._context_release(context).mark_soaked(plan)
        except ReleaseError as e:
            self.fail(context, str(e))


class WaitForWindowSensor(BaseSensorOperator):
    """For apps with release windows: passes inside a window; outside one, waits (deferred,
    holding no worker slot) until the next window opens, or refuses the run, as the app's
    ``outside_window`` says.  It runs before ``plan``, so a waiting run holds no lock."""

    ui_color = "#e6f4f1"

    def __init__(self, *, app: dict, **kwargs):
        kwargs.setdefault("timeout", 400 * 24 * 3600)
        super().__init__(**kwargs)
        self.app = app

    def execute(self, context) -> None:
        import datetime as dt

        from .apps.config import AppConfig
        from .apps.windows import schedule_of

        app = AppConfig.from_json(self.app)
        schedule = schedule_of(app)
        now = dt.datetime.now(dt.UTC)
        current = schedule.open_window(now) if schedule else (now, now)
        if current is not None:
            self.log.info("inside a release window (it closes at %s)", current[1].isoformat())
            return
        assert schedule is not None  # without a schedule every moment is inside a window (above)
        next_open = schedule.next_open(now)
        when = next_open.isoformat() if next_open else "never (freeze dates)"
        if app.outside_window == "refuse" or next_open is None:
            raise AirflowFailException(
                f"refused: outside {app.name}'s release windows (the next one opens at {when}); "
                "trigger the release again inside a window"
            )
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.log.info("outside the release windows: waiting until the next one opens, at %s", when)
        self.defer(trigger=DateTimeTrigger(moment=next_open), method_name="execute")

    def poke(self, context) -> bool:  # pragma: no cover - execute decides
        return True
