"""Triggers: the waiting parts of a release, run on the triggerer's event loop.

All are platform-neutral: they get observations from the app's adapter
(``Platform.watch``: a Kubernetes watch, or BCS polling) and hand them to the release
model's judges.  What they write (the lock they keep, the soak's progress) goes through
the release model's own steps, run in a thread: the model's calls are synchronous, each
with its own request timeout, and a thread keeps them off the event loop.

While they wait they hold the release: every few seconds they renew the lock (fenced: a
run whose lock was taken over fails at once), and the soak records its count of unhealthy
observations on the Service, so that a restarted triggerer goes on from it.  Their
deadlines hold even when the API hangs: observations are awaited with a timeout.

They live in the plugins package, not under dags/, so the triggerer can import them;
their classpath is ``bluegreen.triggers.*``.  They carry identifiers, not objects: the app's
name, config file and digest (the triggerer reads the app configs, as every Airflow component
does), the run's plan and id, deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from .apps.durations import format_duration
from .release.health import FAILED, PASSED, READY, WAITING, ReadinessJudge, SoakJudge, Verdict
from .release.model import ColorStatus, Plan, ReleaseError, TransientError

# Longest quiet spell in a soak's log.
LOG_EVERY = 30.0
# How long one call of the release model may take in a trigger (its own timeouts and retries
# end it sooner; this only keeps a wedged thread from stalling the trigger).
CALL_TIMEOUT = 120.0


APP_REFERENCE = ("name", "source", "digest")


def app_reference(app: dict) -> dict:
    """What a trigger keeps of its app: the name, the config file and the digest of the config as
    its task ran with it.  Given the config itself (``AppConfig.to_json()``, what a task holds),
    it is reduced to that; given a reference, it is kept."""
    from .apps.config import config_digest

    if set(app) == set(APP_REFERENCE):
        return dict(app)
    return {"name": app["name"], "source": app["source"], "digest": config_digest(app)}


def release_for(app: dict, run_id: str):
    """The release context a trigger works with, rebuilt in the triggerer from the app's config
    file.  A config that changed under the running release is refused: the release goes on only
    with the config its tasks ran with."""
    from .apps.config import config_digest, load_app
    from .platforms import metrics_for, platform_for
    from .release.steps import Release

    reference = app_reference(app)
    config = load_app(reference["source"])
    if config_digest(config.to_json()) != reference["digest"]:
        raise ReleaseError(
            f"{reference['source']}: the app config of {reference['name']} changed while this release "
            "was running; the release goes on only with the config it started with: put the file "
            "back as it was and clear this task, or mark it failed to roll back"
        )
    return Release(config, platform_for(config), run_id, metrics=metrics_for(config))


def keep_every(app) -> float:
    """How often a waiting step re-reads the Service for its lock (fencing) and renews it when due."""
    return min(30.0, app.lock_ttl / 4)


async def in_thread(fn, *args, timeout: float = CALL_TIMEOUT):
    return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)


class Observations:
    """The latest observation from a platform's watch (of a color, or of the Service), awaited with
    a timeout: a watch that hangs (an API server that accepts and never answers) never stalls a
    judge.  A watch of None (the platform has none) observes nothing."""

    def __init__(self, watch: AsyncGenerator[Any, None] | None):
        self._watch = watch
        self._latest: Any = None
        self._seen = False
        self._error: BaseException | None = None
        self._fresh = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def __aenter__(self) -> Observations:
        if self._watch is not None:
            self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, *exc) -> None:
        # Stop the pump, and with it the watch (its connections).  Cancelling alone is not
        # enough on Python 3.11: an asyncio.wait_for inside the watch swallows a cancellation
        # that arrives as its own wait completes (python/cpython#86296), so the pump also
        # stops at its next observation, and the cancellation is repeated until it is done.
        self._stopping = True
        while self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=0.2)

    async def _pump(self) -> None:
        watch = self._watch
        assert watch is not None  # (started only with a watch)
        try:
            async with contextlib.aclosing(watch):
                async for status in watch:
                    if self._stopping:
                        break
                    self._latest, self._seen = status, True
                    self._fresh.set()
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # handed to the judge's loop
            self._error = e
            self._fresh.set()

    def latest(self) -> tuple[bool, Any]:
        """(True, the latest observation) without waiting; (False, None) before the first, and for
        good once the watch failed (its error is in ``failure``)."""
        return (self._seen and self._error is None), self._latest

    @property
    def failure(self) -> BaseException | None:
        return self._error

    async def next(self, timeout: float) -> ColorStatus | None:
        """The next fresh observation, or None when none came within ``timeout``."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._fresh.wait(), max(0.01, timeout))
        if self._error is not None:
            raise self._error
        if not self._fresh.is_set():
            return None
        self._fresh.clear()
        return self._latest


class _ReleaseTrigger(BaseTrigger):
    """One waiting step of one run: serializes names and numbers (the app's name, config file and
    digest, the run's plan and id, deadlines), rebuilds its release context from the config file
    in ``run``, fires once with its verdict (held until ``not_before``)."""

    def __init__(self, app: dict, plan: dict, run_id: str, not_before: float = 0.0):
        super().__init__()
        self.app, self.plan, self.run_id, self.not_before = app_reference(app), plan, run_id, not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"bluegreen.triggers.{type(self).__name__}",
            {
                "app": self.app,
                "plan": self.plan,
                "run_id": self.run_id,
                "not_before": self.not_before,
                **self.arguments(),
            },
        )

    def arguments(self) -> dict[str, Any]:
        return {}

    async def decide(self, release, plan: Plan) -> Verdict:  # pragma: no cover - each trigger says
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            release = release_for(self.app, self.run_id)
            verdict = await self.decide(release, Plan.from_json(self.plan))
        except ReleaseError as e:
            verdict = Verdict(FAILED, str(e))
        await hold_until(self.not_before)
        yield TriggerEvent({"state": str(verdict.state), "message": verdict.message})

    async def keep(self, release, plan: Plan) -> None:
        """Renew the lock (fenced).  A transient API error is logged: the lease has time left."""
        try:
            await in_thread(release.keep, plan)
        except (TimeoutError, TransientError) as e:
            self.log.warning("could not renew the release lock this time (%s: %s); trying again", type(e).__name__, e)


class ReadinessTrigger(_ReleaseTrigger):
    """Fires when the new color is fully ready, has failed, or the readiness timeout passed."""

    def __init__(self, app: dict, plan: dict, run_id: str, deadline: float, timeout: float, not_before: float = 0.0):
        super().__init__(app, plan, run_id, not_before)
        self.deadline, self.timeout = deadline, timeout

    def arguments(self) -> dict[str, Any]:
        return {"deadline": self.deadline, "timeout": self.timeout}

    async def decide(self, release, plan: Plan) -> Verdict:
        name = release.app.deployment_name(plan.new_color)
        judge = PreSwitch(release, plan, ReadinessJudge(name, self.deadline, self.timeout))
        verdict = await self.judge_until(release, plan, judge)
        assert verdict is not None  # without ``until`` it judges to the verdict
        return verdict

    async def judge_until(
        self,
        release,
        plan: Plan,
        judge: PreSwitch,
        until: float | None = None,
        look: float = 0.5,
        next_keep: float = 0.0,
    ) -> Verdict | None:
        """Readiness (and an analysis before the switch) judged from the platform's watch until its
        verdict, or until ``until`` (clock time; None then).  The sensor runs this in the worker
        for its first ``defer_after`` seconds.  An analysis whose verdict is due within ``look``
        seconds after ``until`` is waited for; one due later ends the wait at once (the caller
        defers rather than judge here and again there).  ``next_keep``: when the lock is first
        renewed (at once unless the caller has just done it)."""
        app = release.app
        name = app.deployment_name(plan.new_color)
        stop = math.inf if until is None else until
        heartbeat = min(app.check_interval, 2.0)
        last = None
        async with Observations(release.watch(plan.new_color, heartbeat)) as observations:
            while True:
                if time.time() >= next_keep:
                    await self.keep(release, plan)
                    next_keep = time.time() + keep_every(app)
                if judge.analysing and until is not None:
                    due = judge.ends_at()
                    if due is not None and due - time.time() > stop - time.time() + look:
                        return None
                    stop = max(stop, due or stop)
                if time.time() >= stop:
                    return None
                wait = min(2 * heartbeat + 1, self.deadline - time.time(), stop - time.time())
                if judge.analysing:
                    wait = min(judge.next_due() - time.time(), next_keep - time.time(), stop - time.time())
                status = await observations.next(wait)
                if judge.analysing:
                    verdict = await in_thread(judge.analyse, time.time())
                elif status is None:
                    if time.time() >= self.deadline:
                        return Verdict(
                            FAILED,
                            f"{name} not ready after {format_duration(self.timeout)}: the cluster's API did not answer",
                        )
                    continue
                else:
                    verdict = judge.judge(status, time.time())
                    if judge.analysing:
                        self.log.info("%s: %s", name, verdict.message)
                        verdict = await in_thread(judge.analyse, time.time())
                if verdict.message != last:
                    self.log.info("%s: %s", name, verdict.message)
                    last = verdict.message
                if verdict.final:
                    return verdict


class PreSwitch:
    """What must hold before the switch: the new color fully ready (``ReadinessJudge``) and then,
    for an app with an analysis before the switch, its checks passed against the ready color.
    ``judge`` decides readiness (no I/O); once ready, ``analyse`` asks Prometheus (blocking: in a
    thread on the triggerer) until the analysis has its verdict.  The readiness sensor in the
    worker and its trigger both judge with it."""

    def __init__(self, release, plan: Plan, readiness: ReadinessJudge):
        self.release, self.plan, self.readiness = release, plan, readiness
        self.analysis = None  # release.analysis.AnalysisJudge, once ready
        self.ready_message = ""

    @property
    def analysing(self) -> bool:
        return self.analysis is not None

    def judge(self, status: ColorStatus, now: float) -> Verdict:
        verdict = self.readiness.judge(status, now)
        if verdict.state != READY:
            return verdict
        self.analysis = self.release.pre_switch_analysis(self.plan, now)
        if self.analysis is None:
            return verdict
        self.ready_message = verdict.message
        return Verdict(
            WAITING,
            f"{verdict.message}; analysing it for {format_duration(self.release.app.analysis.before_switch)} "
            "before the switch",
        )

    def analyse(self, now: float) -> Verdict:
        verdict = self.release.analyse(self.plan, self.analysis, now)
        if verdict.state == PASSED:
            return Verdict(READY, f"{self.ready_message}; {verdict.message}")
        return verdict

    def next_due(self) -> float:
        return self.analysis.next_due_at() if self.analysis is not None else math.inf

    def ends_at(self) -> float | None:
        return self.analysis.ends_at if self.analysis is not None else None


class SoakTrigger(_ReleaseTrigger):
    """Fires when the soak passed (healthy for its whole duration) or failed.  Its progress
    (when it ends, the unhealthy observations so far) is the one recorded on the Service."""

    async def decide(self, release, plan: Plan) -> Verdict:
        judge = await in_thread(release.soak_judge, plan)
        verdict = await self.judge_until(release, plan, judge)
        assert verdict is not None  # without ``until`` it judges to the end
        return verdict

    async def judge_until(self, release, plan: Plan, judge: SoakJudge, until: float | None = None) -> Verdict | None:
        """The soak judged from the platform's watch until its verdict, or until ``until`` (clock
        time; None then).  The sensor runs this in the worker for a soak too short to defer."""
        verdict = await self._judge_soak(release, plan, judge, until)
        if verdict is not None and verdict.state == FAILED:
            await in_thread(release.forget_soak, plan)
        return verdict

    async def _judge_soak(self, release, plan: Plan, judge: SoakJudge, until: float | None) -> Verdict | None:
        app = release.app
        name = app.deployment_name(plan.new_color)
        # A soak resumed after its end (a triggerer that took over late) still gets switch_timeout
        # for a first look: its end is counted from the later of the two.
        began = time.time()
        stop = math.inf if until is None else until
        status: ColorStatus | None = None
        next_check, last_message, last_logged, judged_at = 0.0, None, 0.0, 0.0
        # The Service as its watch delivers it, judged at each check; it is read anew (and the lock
        # renewed when due) once every keep_every and at the soak's end, and at every check where
        # the platform cannot watch it (or its watch failed).  The soak's start (soak_judge) has
        # just read it.
        next_read, watch_failed = began + keep_every(app), False
        heartbeat = min(app.check_interval, 2.0)
        async with (
            Observations(release.watch(plan.new_color, heartbeat)) as observations,
            Observations(release.watch_service(heartbeat)) as services,
        ):
            while True:
                # A check at the soak's end; past it (a verdict still waiting: an analysis without
                # data yet, unhealthy observations within tolerance) one per check interval.
                due = next_check if judged_at >= judge.ends_at else min(next_check, judge.ends_at)
                if time.time() >= stop and time.time() < due:
                    return None  # no check is due: the caller goes on (defers)
                fresh = await observations.next(max(0.0, min(due, stop) - time.time()))
                # The workload's state arrives by watch as soon as it changes; the Service and the
                # HTTP check are read at the check interval (or at once when the workload got
                # worse, or when the soak is over).
                if fresh is not None:
                    worse, status = got_worse(fresh, status), fresh
                    if not worse and time.time() < due:
                        continue
                elif time.time() < due:
                    continue  # woken by ``until``: judged at the loop's top
                now = time.time()
                if status is None:
                    if now > max(judge.ends_at, began) + app.switch_timeout:
                        return Verdict(
                            FAILED,
                            f"{name}: no observation of it since the soak began: the cluster's API did not answer",
                        )
                    next_check = now + app.check_interval
                    continue
                next_check, judged_at = now + app.check_interval, now
                watched, service = services.latest()
                if services.failure is not None and not watch_failed:
                    watch_failed = True
                    self.log.warning(
                        "soak of %s: the watch of the Service failed (%s); reading it at every check instead",
                        name,
                        services.failure,
                    )
                fresh_read = not watched or now >= next_read or now >= judge.ends_at
                try:
                    serving, http = await in_thread(release.soak_probe, plan, None if fresh_read else service)
                    if fresh_read:
                        next_read = now + keep_every(app)
                except (TimeoutError, TransientError) as e:
                    # The API failing says nothing of the app; but the soak passes only on a fresh look.
                    if now > max(judge.ends_at, began) + app.switch_timeout:
                        return Verdict(FAILED, f"could not confirm {name}'s health at the end of the soak: {e}")
                    self.log.warning("soak of %s: could not read the Service (%s); trying again", name, e)
                    continue
                verdict = await in_thread(release.judge_soak, plan, judge, status, serving, http, now)
                # A line when the picture changes, and otherwise one every LOG_EVERY seconds (not one
                # per check: a soak can last hours).
                gist = verdict.message.split(",")[0]
                if verdict.final or gist != last_message or now - last_logged >= LOG_EVERY:
                    self.log.info("soak of %s: %s", name, verdict.message)
                    last_message, last_logged = gist, now
                if verdict.final:
                    return verdict


class HoldUntilTrigger(_ReleaseTrigger):
    """Waits until ``moment`` (the next release window) while keeping the release lock."""

    def __init__(self, app: dict, plan: dict, run_id: str, moment: float, not_before: float = 0.0):
        super().__init__(app, plan, run_id, not_before)
        self.moment = moment

    def arguments(self) -> dict[str, Any]:
        return {"moment": self.moment}

    async def decide(self, release, plan: Plan) -> Verdict:
        while time.time() < self.moment:
            await self.keep(release, plan)
            await asyncio.sleep(max(0.0, min(keep_every(release.app), self.moment - time.time())))
        return Verdict(READY, f"it is {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.moment))}")


async def hold_until(moment: float) -> None:
    """Hold an event until ``moment`` (see sensors.MIN_DEFERRAL_SECONDS for why)."""
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def got_worse(status, previous) -> bool:
    if previous is None:
        return True
    return (
        status.ready < previous.ready
        or status.restarts > previous.restarts
        or not status.exists
        or bool(status.failure)
    )
