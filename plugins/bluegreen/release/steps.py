"""The release lifecycle, written once for both platforms.

    plan      read the Service: the live color, the idle color to deploy; take the lock
              (a first release creates the Service, selecting nothing, to hold it)
    deploy    run the new image on the idle color (create, or replace a leftover)
    (wait)    readiness, judged in a trigger (health.ReadinessJudge); the lock is kept
    switch    re-check readiness now, point the Service's selector at the new color,
              wait until its endpoints are exactly the new color's ready members
    (soak)    health under real traffic, judged in a trigger (health.SoakJudge); its
              progress is kept on the Service, so a restarted triggerer goes on counting
    retire    after the drain delay, delete (or scale to zero) the old color, never the
              one the Service points at
    finish    record the release, release the lock
    rollback  point the Service back at the old color if it moved, remove the new color
              after the drain delay

Every step converges on a target state: running it again after a success, a failure or a
crash half-way does no harm.  Each one re-reads the Service first and refuses, with a
reason a person can act on, when the cluster no longer looks like the plan (another
release, a person with kubectl, a deleted Service), and every write that depends on what
was read is conditional on the Service not having changed since (``Conflict``: read again).
A run whose lock was taken over by another run is fenced: it changes nothing more.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import TypeVar

from ..apps import manifests as mf
from ..apps.config import OldColorPolicy
from . import guards
from . import records as rec
from .analysis import PRE_SWITCH, SOAK, AnalysisJudge, measurement
from .health import WAITING, HttpResult, SoakJudge, Verdict
from .http_check import http_check
from .model import (
    FIRST_COLOR,
    SELECTS_NOTHING,
    ColorStatus,
    Conflict,
    Log,
    Plan,
    ReleaseError,
    ServiceView,
    TransientError,
    other,
    selects_nothing,
)
from .ports import Metrics

log = logging.getLogger(__name__)

# How many times a conditional write of the Service is tried again after a Conflict.
_WRITE_ATTEMPTS = 5

T = TypeVar("T")


def until_no_conflict(attempt: Callable[[], T], gave_up: str) -> T:
    """Run ``attempt`` (a read, and a write conditional on what it read) again while the write
    raises ``Conflict``: the object changed between the two, so it is read and judged again.
    After ``_WRITE_ATTEMPTS`` conflicts, refuse with ``gave_up``."""
    for _ in range(_WRITE_ATTEMPTS):
        try:
            return attempt()
        except Conflict:
            continue
    raise ReleaseError(gave_up)


class Release:
    def __init__(
        self,
        app,
        platform,
        run_id: str,
        *,
        logger: Log | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.5,
        probe: Callable[..., HttpResult] | None = None,
        metrics: Metrics | None = None,
    ):
        self.app = app
        # the Prometheus the app's analysis asks (bluegreen.platforms.metrics_for); None: no analysis
        self.metrics = metrics
        # the HTTP check through the Service (release.http_check; unit tests give their own)
        self.probe = probe or http_check
        self.platform = platform
        self.run_id = run_id
        self.log = logger or log
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval
        # When this process saw its rollback's switch away from a color land (clock time): a write
        # that answers late lands after the switched-at it carries, so the drain counts from here
        # too.  (Retire runs in a task of its own, long after its switch: the soak covers that.)
        self._left_at: dict[str, float] = {}
        # Named in what the platform writes on this run's behalf (BCS write claims), so that a
        # retry of this run can take back what its crashed or failed try left.
        platform.writer = run_id

    def now(self) -> dt.datetime:
        return rec.now_utc(self.clock)

    # ------------------------------------------------------------------------------
    # plan
    # ------------------------------------------------------------------------------
    def plan(
        self,
        image: str,
        replicas: int,
        soak_seconds: float,
        *,
        skip_if_live: bool = False,
        restore_previous: bool = False,
    ) -> Plan:
        """Decide the colors and take the lock.  A re-run of the same Airflow run gets the
        plan it made before (from the lock, or from the release record once switched)."""
        # Before the first write: a client that may not do all a release does fails here, with
        # every missing permission named, rather than half-way with the cluster half changed.
        self.platform.check_permissions()
        self.check_analysis_queries()

        def attempt() -> Plan:
            svc = self.platform.read_service()
            recalled = self._recall(svc)
            plan = recalled or self._new_plan(svc, image, replicas, soak_seconds, restore_previous)
            if recalled is None and skip_if_live and plan.old_color and plan.old_image == plan.image:
                plan.noop_reason = f"{plan.image} is already live on {plan.old_color}; nothing to release"
            if plan.noop_reason or (svc is not None and self._completed(svc)):
                return plan
            if svc is None:
                # A first release: the Service is created now, selecting nothing, to hold the
                # lock.  The create is atomic, so of two first releases only one goes on.
                self.platform.create_service(
                    SELECTS_NOTHING, {rec.LOCK: self._lock_value(plan), rec.CREATED_BY: self.run_id}
                )
                self.log.info(
                    "created the Service %s (selecting nothing until the switch) to hold the release lock",
                    self.app.service,
                )
            else:
                guards.refuse_if_locked(self.app, svc, self.run_id, self.now())
                # A first release that goes on from an earlier one's Service (that one stopped
                # before its switch) owns it now: its rollback removes it.
                owner = (
                    {rec.CREATED_BY: self.run_id}
                    if plan.old_color is None and rec.CREATED_BY in svc.annotations
                    else {}
                )
                self._write_lock(svc, plan, owner)
            return plan

        return until_no_conflict(
            attempt, f"the Service {self.app.service} kept changing while taking the release lock; retry"
        )

    def _recall(self, svc: ServiceView | None) -> Plan | None:
        lock = rec.Lock.read(svc)
        if lock and lock.run_id == self.run_id and lock.plan:
            return guards.checked_plan(self.app, lock.plan, self.run_id, rec.LOCK)
        record = rec.release_record(svc)
        if (
            record
            and record.get("run_id") == self.run_id
            and record.get("state") != rec.ROLLED_BACK
            and record.get("plan")
        ):
            return guards.checked_plan(self.app, record["plan"], self.run_id, rec.RELEASE)
        return None

    def _new_plan(self, svc, image, replicas, soak_seconds, restore_previous) -> Plan:
        guards.refuse_if_locked(self.app, svc, self.run_id, self.now())
        if svc is None or selects_nothing(svc.selector):
            if restore_previous:
                raise ReleaseError(
                    f"the Service {self.app.service} has never pointed at a release: there is no "
                    "previous release to roll back to"
                )
            # No Service, or one selecting nothing (a first release that stopped before its switch).
            return Plan(
                app=self.app.name,
                run_id=self.run_id,
                new_color=FIRST_COLOR,
                old_color=None,
                image=image,
                replicas=replicas,
                soak_seconds=soak_seconds,
            )
        live = self.live_color(svc)
        new = other(live)
        # What the live color runs: its workload as applied (one read; its members are not needed
        # here).  Without one, the workload itself says whether it is gone.
        live_manifest = self.platform.read_manifest(live)
        live_status = self.platform.observe(live) if live_manifest is None else None
        if live_status is not None and not live_status.exists:
            # Someone pointed the Service at a color that is not there: nothing serves, and a
            # release would have nothing to roll back to.  A person decides what serves first.
            serving_instead = self.platform.observe(new)
            fix = (
                f"point it at {self.app.deployment_name(new)} ({serving_instead.image}), which is fully ready: "
                f"{self.platform.manual_switch(self.app.selector_for(new))}"
                if serving_instead.complete and not serving_instead.failure
                else "redeploy a color that serves and point the Service at it"
            )
            raise ReleaseError(
                f"refusing to release: the Service {self.app.service} points at "
                f"{self.app.deployment_name(live)}, which does not exist, so nothing is serving and "
                f"there would be nothing to roll back to.  First {fix}; then start a new run"
            )
        manifest = None
        if restore_previous:
            previous = rec.previous_release(svc)
            if not previous:
                raise ReleaseError(f"the Service {self.app.service} records no previous release to roll back to")
            if previous.get("color") != new:
                raise ReleaseError(
                    f"the previous release ran on {previous.get('color')}, but {live} is live and "
                    f"{new} is the idle color; roll back by switching instead"
                )
            image, recorded_replicas, manifest = guards.checked_previous(self.app, previous, new)
            replicas = recorded_replicas or replicas
        return Plan(
            app=self.app.name,
            run_id=self.run_id,
            new_color=new,
            old_color=live,
            image=image,
            replicas=replicas,
            soak_seconds=soak_seconds,
            old_image=live_status.image if live_status else mf.image_of(self.app.platform, live_manifest, None),
            previous_selector=dict(svc.selector),
            manifest=manifest,
        )

    def _lock_value(self, plan: Plan) -> str:
        return rec.Lock.value(plan, self.now() + dt.timedelta(seconds=self.app.lock_ttl))

    def _write_lock(self, svc: ServiceView, plan: Plan, also: dict | None = None) -> ServiceView:
        changes = {rec.LOCK: self._lock_value(plan), **(also or {})}
        if rec.LAST_LOCK in svc.annotations:
            changes[rec.LAST_LOCK] = None
        return self.platform.write_service(svc, svc.selector, changes)

    def live_color(self, svc: ServiceView) -> str:
        color = self.app.color_of(svc.selector)
        if color is None:
            raise ReleaseError(guards.neither_color(self.app, svc))
        return color

    # ------------------------------------------------------------------------------
    # holding the app: every step's first read
    # ------------------------------------------------------------------------------
    def keep(self, plan: Plan, renew: bool = False) -> ServiceView:
        """Re-read the Service, check it still fits the plan and that this run still holds the
        lock, and renew the lock when half of its lease is gone.  Steps call it first; waiting
        steps call it while they wait, so that the lock never runs out under a long soak.
        ``renew``: a whole lease now (before a wait in which nothing can renew it)."""

        def attempt() -> ServiceView:
            svc = self.platform.read_service()
            if svc is not None and self._completed(svc):
                return svc  # this run's release is finished: its steps may re-run, holding nothing
            # fenced first: a run whose lock was taken over hears that, whatever the Service says now
            must_lock = svc is not None and (guards.fence(self.app, svc, self.run_id, self.now()) or renew)
            guards.fits(self.app, svc, plan, self._switched_by_me(svc))
            return self._write_lock(svc, plan) if must_lock else svc

        return until_no_conflict(attempt, f"the Service {self.app.service} kept changing; retry")

    def keep_watched(self, plan: Plan, svc: ServiceView | None) -> ServiceView:
        """``keep``'s checks on the Service as a watch delivered it (no read): it still fits the plan
        and this run still holds the lock.  When the lock is due for renewal, ``keep`` reads and
        renews it (the write is conditional on a fresh read, never on a watched copy)."""
        if svc is not None and self._completed(svc):
            return svc
        due = svc is not None and guards.fence(self.app, svc, self.run_id, self.now())
        guards.fits(self.app, svc, plan, self._switched_by_me(svc))
        assert svc is not None  # (fits refused a Service that is gone)
        return self.keep(plan) if due else svc

    def _completed(self, svc: ServiceView) -> bool:
        """This run's release already finished: its steps may re-run, but it holds no lock."""
        record = rec.release_record(svc) or {}
        return record.get("run_id") == self.run_id and record.get("state") == rec.COMPLETE

    def _switched_by_me(self, svc: ServiceView | None) -> bool:
        if svc is None:
            return False
        record = rec.release_record(svc) or {}
        return svc.annotations.get(rec.RUN_ID) == self.run_id and record.get("state") != rec.ROLLED_BACK

    def _change(self, plan: Plan, changes: Callable[[ServiceView], dict | None], what: str) -> ServiceView:
        """A conditional write of annotations on the Service this run holds: ``changes`` sees the
        Service as just read (and checked) and says what to write (None: nothing)."""

        def attempt() -> ServiceView:
            svc = self.keep(plan)
            wanted = changes(svc)
            return self.platform.write_service(svc, svc.selector, wanted) if wanted else svc

        return until_no_conflict(attempt, f"the Service {self.app.service} kept changing while {what}; retry")

    # ------------------------------------------------------------------------------
    # deploy
    # ------------------------------------------------------------------------------
    def deploy(self, plan: Plan) -> str:
        svc = self.keep(plan)
        if self.app.color_of(svc.selector) == plan.new_color:
            # Switched already (a clear after the switch): the new color is live now, and a
            # changed manifest would replace (BCS) or recreate (a selector change) live pods.
            self.log.info("%s is live already: not touched", self.app.deployment_name(plan.new_color))
            return "already live (not touched)"
        manifest = self.manifest_for(plan)
        # A Conflict: the workload changed under the write, often our own write, retried after
        # its answer was lost (it landed).  Applying converges: look again.
        result = until_no_conflict(
            lambda: self.platform.apply_color(plan.new_color, manifest),
            f"{self.app.deployment_name(plan.new_color)} kept changing while it was applied; retry",
        )
        self.log.info(
            "%s %s with %s (%d replicas): %s",
            result,
            self.app.deployment_name(plan.new_color),
            plan.image,
            plan.replicas,
            plan.describe(),
        )
        self.point_preview(plan.new_color)
        return result

    def point_preview(self, color: str | None) -> None:
        """Point the preview Service (if the app has one) at ``color``; None removes it."""
        manifest = self.app.manifests.get("preview")
        if not manifest:
            return
        selector = self.app.selector_for(color) if color else None

        def attempt() -> None:
            svc = self.platform.read_service(manifest)
            if selector is None:
                if svc is not None:
                    self.platform.delete_service(manifest=manifest)
            elif svc is None:
                self.platform.create_service(selector, {}, manifest=manifest)
            elif svc.selector != selector:
                self.platform.write_service(svc, selector, {}, manifest=manifest)
            else:
                return
            self.log.info("the preview Service %s now points at %s", self.app.preview_service, color or "nothing")

        until_no_conflict(attempt, f"the preview Service {self.app.preview_service} kept changing; retry")

    def manifest_for(self, plan: Plan) -> dict:
        base = plan.manifest or self.app.manifests[plan.new_color]
        return mf.with_release(self.app.platform, base, plan.image, plan.replicas, self.app.container)

    # ------------------------------------------------------------------------------
    # switch
    # ------------------------------------------------------------------------------
    def switch(self, plan: Plan) -> None:
        new = plan.new_color
        name = self.app.deployment_name(new)

        def attempt() -> ServiceView:
            svc = self.keep(plan)
            if self.app.color_of(svc.selector) == new:
                self.log.info("the Service %s already points at %s", self.app.service, new)
                return svc
            annotations = self._switch_annotations(svc, plan)
            # Re-checked at the moment of switching, as the last read before the write: the
            # sensor's verdict may be stale, and so may a check made before other reads.
            status = self.platform.observe(new)
            if not status.complete or status.failure:
                raise ReleaseError(
                    f"refusing to switch {self.app.service} to {name}: it is not fully ready now "
                    f"({status.failure or status.progress})"
                )
            # Conditional on the Service as just read: a change since then (a person, a
            # takeover) makes it fail with Conflict, and the checks run again.
            switched = self.platform.write_service(svc, self.app.selector_for(new), annotations)
            self.log.info(
                "switched the Service %s from %s to %s",
                self.app.service,
                "nothing" if selects_nothing(svc.selector) else svc.selector,
                self.app.selector_for(new),
            )
            return switched

        svc = until_no_conflict(
            attempt, f"the Service {self.app.service} kept changing while switching; retry the switch"
        )
        self.wait_for_endpoints(new)
        self.wait_for_traffic(svc.url_fields)

    def wait_for_traffic(self, url_fields: dict[str, str]) -> None:
        """Until the HTTP check passes through the Service (when the app has one), at ``url_fields``
        (the Service as switched: its ports do not change with its selector).  The endpoints
        change at once, but each node applies a switch a moment later: a first release's Service
        answers nothing until then, and its soak must not count that against the new color."""
        if not self.app.http_check:
            return
        last: list[HttpResult | None] = [None]

        def passes() -> bool:
            last[0] = result = self.probe(self.app.http_check, url_fields)
            return result.ok

        self._wait(
            passes,
            self.app.switch_timeout,
            lambda: (
                f"the Service {self.app.service} did not pass its HTTP check within "
                f"{self.app.switch_timeout:g}s of the switch: {last[0].detail if last[0] else 'gone'}"
            ),
        )

    def _switch_annotations(self, svc: ServiceView, plan: Plan) -> dict:
        now = rec.iso(self.now())
        record = {
            "run_id": self.run_id,
            "from": plan.old_color,
            "to": plan.new_color,
            "image": plan.image,
            "from_image": plan.old_image,
            "state": rec.SWITCHED,
            "at": now,
            "plan": plan.to_json(),
        }
        annotations = {
            rec.PREVIOUS_SELECTOR: rec.dump(svc.selector),
            rec.RUN_ID: self.run_id,
            rec.SWITCHED_AT: now,
            rec.RELEASE: rec.dump(record),
        }
        if plan.old_color and plan.old_image:
            # what the old color runs now, as the record of what to restore (its replicas with it)
            manifest = self.platform.read_manifest(plan.old_color)
            annotations[rec.PREVIOUS_RELEASE] = rec.dump(
                {
                    "color": plan.old_color,
                    "image": plan.old_image,
                    "run_id": (rec.release_record(svc) or {}).get("run_id"),
                    "replicas": (manifest and mf.replicas_of(self.app.platform, manifest)) or plan.replicas,
                    "manifest": manifest,
                }
            )
        return annotations

    def wait_for_endpoints(self, color: str) -> None:
        """Until the Service sends traffic to exactly the color's ready members."""
        seen: dict[str, set[str]] = {}

        def converged() -> bool:
            seen["backends"], seen["ready"] = self.platform.service_backends(), self.platform.ready_members(color)
            if seen["ready"] and seen["backends"] == seen["ready"]:
                return True
            if not seen["ready"] and not self.platform.observe(color).exists:
                # Deleted after it was checked (a person): waiting cannot help, and the Service
                # serves nothing until the rollback.
                raise ReleaseError(
                    f"the Service {self.app.service} points at {self.app.deployment_name(color)}, "
                    "which was deleted (not by this release) after it was checked"
                )
            return False

        self._wait(
            converged,
            self.app.switch_timeout,
            lambda: (
                f"the Service {self.app.service} did not converge on {color} within {self.app.switch_timeout:g}s: it "
                f"sends traffic to {sorted(seen['backends'])}, {color} has ready {sorted(seen['ready'])}"
            ),
        )
        self.log.info(
            "the Service %s now sends traffic to %d %s member(s)", self.app.service, len(seen["ready"]), color
        )

    # ------------------------------------------------------------------------------
    # soak: what the sensor and its trigger observe, and the progress they keep on the Service
    # ------------------------------------------------------------------------------
    def start_soak(self, plan: Plan) -> dict:
        """This run's soak: resumed as recorded on the Service (after a crash, a retry or a
        triggerer restart), or started now.  {ends_at, unhealthy, baseline_restarts}"""
        state: dict = {}

        def start(svc: ServiceView) -> dict | None:
            state.clear()
            state.update(rec.soak_state(svc, self.run_id) or {})
            if state:
                return None
            restarts = self.platform.observe(plan.new_color).restarts
            state.update(
                run_id=self.run_id, ends_at=self.clock() + plan.soak_seconds, unhealthy=0, baseline_restarts=restarts
            )
            return {rec.SOAK: rec.dump(state)}

        self._change(plan, start, "starting the soak")
        return dict(state)

    def soak_judge(self, plan: Plan) -> SoakJudge:
        """The judge of this run's soak, going on from its recorded progress (see start_soak)."""
        state = self.start_soak(plan)
        judge = SoakJudge.resume(self.app.deployment_name(plan.new_color), self.app.soak_tolerance, state)
        analysis = self.app.analysis
        if analysis is not None and analysis.during_soak:
            starts_at = judge.ends_at - plan.soak_seconds
            judge.analysis = AnalysisJudge(analysis, SOAK, starts_at, judge.ends_at, state.get("analysis"))
        return judge

    def judge_soak(
        self, plan: Plan, judge: SoakJudge, status: ColorStatus, serving: bool, http: HttpResult | None, now: float
    ) -> Verdict:
        """One observation of the soak (the workload, and the soak_probe of the Service) judged;
        when the count of unhealthy observations moved, it is recorded on the Service, so that
        whoever judges next goes on from it."""
        before = judge.progress()
        if judge.analysis is not None and serving:
            self.analyse(plan, judge.analysis, now)
        verdict = judge.judge(status, serving, http, now)
        if verdict.state == WAITING and judge.progress() != before:
            self.record_soak(plan, judge.progress())
        return verdict

    def record_soak(self, plan: Plan, progress: dict) -> None:
        """Keep the soak's progress (unhealthy observations so far, the restart baseline) on the
        Service, so that whoever judges next (a restarted triggerer, a retried task) goes on from it."""
        state = {"run_id": self.run_id, **progress}
        self._change(
            plan,
            lambda svc: None if rec.soak_state(svc, self.run_id) == state else {rec.SOAK: rec.dump(state)},
            "recording the soak",
        )

    def forget_soak(self, plan: Plan) -> None:
        """The soak failed: its recorded progress goes, so that a person who clears the soak task
        gets a new soak, not the verdict of the failed one again (best effort: the API may be what
        failed; a crash retry before this resumes the soak, as it should)."""
        try:
            self._change(
                plan, lambda svc: {rec.SOAK: None} if rec.soak_state(svc, self.run_id) else None, "ending the soak"
            )
        except (ReleaseError, TransientError) as e:
            self.log.warning("the failed soak's progress stays on the Service %s (%s)", self.app.service, e)

    # ------------------------------------------------------------------------------
    # metric analysis (release.analysis judges; Prometheus through the Metrics port)
    # ------------------------------------------------------------------------------
    def pre_switch_analysis(self, plan: Plan, now: float) -> AnalysisJudge | None:
        """The judge of the analysis before the switch, starting ``now`` (None: the app has none)."""
        analysis = self.app.analysis
        if analysis is None or analysis.before_switch <= 0:
            return None
        return AnalysisJudge(analysis, PRE_SWITCH, now, now + analysis.before_switch)

    def analysis_values(self, plan: Plan, phase: str) -> dict[str, str]:
        """What the checks' placeholders stand for in this release.  Before the switch, {service}
        is the preview Service when the app has one (the new color is reached only through it)."""
        preview = self.app.preview_service
        return {
            "color": plan.new_color,
            "deployment": self.app.deployment_name(plan.new_color),
            "namespace": self.app.namespace,
            "service": preview if phase == PRE_SWITCH and preview else self.app.service,
            "app": self.app.name,
            "image": plan.image,
        }

    def analyse(self, plan: Plan, judge: AnalysisJudge, now: float) -> Verdict:
        """Measure the checks that are due, log each measurement, and say where the phase stands."""
        if self.metrics is None:
            raise ReleaseError(f"{self.app.name} has an analysis but no metrics client was given")
        values = self.analysis_values(plan, judge.phase)
        for check in judge.due(now):
            promql = check.render(values)
            try:
                result = self.metrics.query(promql)
            except TransientError as e:
                judge.record_unreachable(check, str(e), now)
                self.log.warning("analysis %s: %s: %s", judge.phase, check.name, e)
                continue
            m = measurement(check, result, promql, now)
            judge.record(m)
            self.log.info("analysis %s: %s: %s", judge.phase, m.outcome, m.detail)
        return judge.verdict(now)

    def check_analysis_queries(self) -> None:
        """Before anything in a cluster changes: Prometheus parses each check's query once (its
        placeholders filled as for a release of green); a query it refuses is bad input, named
        with the field and Prometheus' message.  An unreachable Prometheus is left to the
        analysis' own rule (``unreachable``) when it runs."""
        analysis = self.app.analysis
        if analysis is None or self.metrics is None:
            return
        from ..apps.errors import ConfigError

        sample = Plan(self.app.name, self.run_id, "green", "blue", "registry.invalid/check:0", 1, 0.0)
        values = self.analysis_values(sample, SOAK)
        for i, check in enumerate(analysis.checks):
            try:
                self.metrics.query(check.render(values))
            except TransientError as e:
                if analysis.unreachable == "fail":
                    raise ReleaseError(
                        f"{self.metrics.where} is unreachable ({e}) and the analysis says unreachable: fail"
                    ) from None
                self.log.warning("could not check the analysis queries now: %s", e)
                return
            except ReleaseError as e:
                raise ConfigError(f"analysis.checks[{i}].query", check.query, str(e), self.app.source) from None

    def readiness(self, plan: Plan) -> ColorStatus:
        """The new color now, judged by its platform's readiness rule."""
        return self.platform.observe(plan.new_color)

    def soak_probe(self, plan: Plan, watched: ServiceView | None = None) -> tuple[bool, HttpResult | None]:
        """What the soak checks besides the workload: whether the Service still points at the new
        color, and the HTTP check through it.  Holds the lock while it is at it.  ``watched``: the
        Service as the platform's watch last delivered it, judged without a read of its own (a read,
        and a renewal, happen only when the lock is due for one); None: the Service is read now."""
        svc = self.keep(plan) if watched is None else self.keep_watched(plan, watched)
        serving = svc.selector == self.app.selector_for(plan.new_color)
        return serving, (self.probe(self.app.http_check, svc.url_fields) if self.app.http_check else None)

    def watch(self, color: str, heartbeat: float) -> AsyncGenerator[ColorStatus, None]:
        """Fresh observations of ``color`` as they change (for the triggers: a watch where the
        platform has one, polling where it does not), at least every ``heartbeat`` seconds."""
        return self.platform.watch(color, heartbeat=heartbeat)

    def watch_service(self, heartbeat: float) -> AsyncGenerator[ServiceView | None, None] | None:
        """The app's Service as it changes (for the soak's trigger), at least every ``heartbeat``
        seconds; None where the platform cannot watch it."""
        return self.platform.watch_service(heartbeat=heartbeat)

    def mark_soaked(self, plan: Plan) -> None:
        """Record on the Service that the soak passed: only then may the old color go."""
        self._update_record(plan, rec.SOAKED, extra={rec.SOAK: None})

    # ------------------------------------------------------------------------------
    # after the soak
    # ------------------------------------------------------------------------------
    def retire_old(self, plan: Plan) -> None:
        old = plan.old_color
        if old is None:
            self.log.info("first release of %s: there is no old color to remove", self.app.name)
            return
        svc = self.keep(plan)
        if self.live_color(svc) == old:
            raise ReleaseError(
                f"refusing to remove {self.app.deployment_name(old)}: the Service {self.app.service} points at it"
            )
        record = rec.release_record(svc) or {}
        if record.get("run_id") != self.run_id or record.get("state") not in (rec.SOAKED, rec.COMPLETE):
            raise ReleaseError(
                f"refusing to remove {self.app.deployment_name(old)}: this run's soak has not "
                "passed (clear the soak task to run it)"
            )
        self._remove(plan, old, keep=plan.new_color, svc=svc)

    def _drain(self, svc: ServiceView | None, color: str) -> None:
        """Traffic still on its way: each node applies a switch a moment later, and connections
        already routed finish where they are, so a color the Service just stopped pointing at
        is removed only ``drain_delay`` after that switch."""
        if svc is None or rec.annotation_json(svc, rec.PREVIOUS_SELECTOR) != self.app.selector_for(color):
            return
        switched = rec.parse_iso(svc.annotations.get(rec.SWITCHED_AT))
        if switched is None:
            return
        since = max(switched.timestamp(), self._left_at.get(color, 0.0))
        wait = since + self.app.drain_delay - self.clock()
        if wait > 0:
            self.log.info(
                "draining %s: the Service stopped pointing at it %.1fs ago; removing it in %.1fs",
                self.app.deployment_name(color),
                self.app.drain_delay - wait,
                wait,
            )
            self.sleep(wait)

    def _remove(self, plan: Plan, color: str, keep: str | None, svc: ServiceView | None = None) -> None:
        """Delete (or scale to zero) ``color``, which the Service must not point at, while the
        Service stays on ``keep``.  ``svc``: the Service as the step just read and checked it
        (else it is read here); the write before the delete re-reads it anyway."""
        name = self.app.deployment_name(color)
        svc = svc or self._read_held(plan)
        self._drain(svc, color)
        if svc is not None:
            # The re-check, as close to the delete as the API allows: a conditional write that
            # names the color.  It fails if the Service changed since it was read; a person who
            # switches to the color after it is still seen below, and put back.
            def mark(current: ServiceView) -> dict:
                if self.app.color_of(current.selector) == color:
                    raise ReleaseError(f"refusing to remove {name}: the Service {self.app.service} points at it")
                retiring = color == plan.old_color  # (a rollback removes the new color whatever happens)
                serving = self.platform.observe(keep) if keep and retiring else None
                if serving is not None and (not serving.complete or serving.failure):
                    # The color that serves instead was deleted or broke since it was checked
                    # (a person, a node): the old one, being removed, is the way back.
                    raise ReleaseError(
                        f"refusing to remove {name}: {self.app.deployment_name(keep)}, which the Service "
                        f"{self.app.service} points at, is not fully ready ({serving.failure or serving.progress}); "
                        f"{name} stays as the way back: roll back, or fix {self.app.deployment_name(keep)} "
                        "and clear this task"
                    )
                return {rec.RETIRING: rec.dump({"color": color, "run_id": self.run_id, "at": rec.iso(self.now())})}

            self._change_held(plan, mark, f"marking {name} for removal", first=svc)
        scale = self.app.old_color_policy == OldColorPolicy.SCALE_TO_ZERO and color == plan.old_color
        if scale:
            self.platform.scale_color(color, 0)
        else:
            self.platform.delete_color(color)
        moved = self._put_back_if_moved(plan, color, keep) if svc is not None else None
        if scale:
            self._wait(
                lambda: not self.platform.observe(color).ready and not self.platform.ready_members(color),
                self.app.delete_timeout,
                lambda: f"timed out after {self.app.delete_timeout:g}s waiting for {name} to scale to zero",
            )
            self.log.info("scaled %s to zero (kept for a fast rollback)", name)
        else:
            self._wait(
                lambda: self.platform.color_gone(color),
                self.app.delete_timeout,
                lambda: f"timed out after {self.app.delete_timeout:g}s waiting for {name} to be deleted",
            )
            self.log.info("deleted %s", name)
        if moved:
            raise ReleaseError(moved)

    def _put_back_if_moved(self, plan: Plan, removed: str, keep: str | None) -> str | None:
        """If the Service was pointed at the color being removed anyway, point it back at ``keep``
        (when that is fully ready) and say so; None when it did not move."""
        gone, kept = self.app.deployment_name(removed), self.app.deployment_name(keep) if keep else None

        def switched_back() -> bool:
            svc = self._read_held(plan)  # fenced: a run whose lock was taken over changes nothing
            if svc is None or self.app.color_of(svc.selector) != removed:
                return False
            status = self.platform.observe(keep) if keep else ColorStatus.missing()
            if not status.complete or status.failure:
                raise ReleaseError(
                    f"the Service {self.app.service} was switched (not by this release) to {gone} while it was being "
                    f"removed, and {kept or 'no other color'} is not fully ready "
                    f"({status.failure or status.progress}): nothing may be serving.  By hand: "
                    f"{self.platform.manual_switch(self.app.selector_for(keep)) if keep else 'redeploy the app'}"
                )
            self.platform.write_service(svc, self.app.selector_for(keep), {})
            return True

        if not until_no_conflict(
            switched_back, f"the Service {self.app.service} kept changing while {gone} was removed; retry"
        ):
            return None
        assert keep is not None  # switched_back() raised when there was nothing to keep
        self.wait_for_endpoints(keep)
        message = (
            f"the Service {self.app.service} was switched (not by this release) to {gone} while it was "
            f"being removed; the release switched it back: it points at {kept} again.  Find out who "
            f"switched it, then clear this task to finish the release"
        )
        self.log.error(message)
        return message

    def finish(self, plan: Plan, outcome: str = "released") -> str:
        if plan.noop_reason:
            self.log.info(plan.noop_reason)
            return plan.noop_reason
        summary = (
            f"{self.app.name}: {plan.old_color or '-'} ({plan.old_image or '-'}) -> "
            f"{plan.new_color} ({plan.image}): {outcome}"
        )
        self._update_record(
            plan,
            rec.COMPLETE,
            history=outcome,
            release_lock=True,
            extra={rec.SOAK: None, rec.RETIRING: None, rec.CREATED_BY: None},
        )
        self.log.info(summary)
        return summary

    # ------------------------------------------------------------------------------
    # rollback
    # ------------------------------------------------------------------------------
    def rollback(self, plan: Plan, reason: str) -> str:
        """Go back to the old color if traffic moved, then remove the new color."""
        new, old = plan.new_color, plan.old_color

        def traffic_back() -> None:
            svc = self._read_held(plan)
            live = self.app.color_of(svc.selector) if svc else None
            if svc is None:
                return
            if old is None:
                if svc.annotations.get(rec.CREATED_BY) == self.run_id and live in (None, new):
                    # A first release: nothing served before it, so nothing is lost by removing
                    # the Service it created.
                    self.platform.delete_service(current=svc)
                    self.log.info("removed the Service %s this first release created", self.app.service)
            elif live == new:
                status = self.platform.observe(old)
                if not status.complete:
                    raise ReleaseError(
                        f"cannot roll back {self.app.service} to {self.app.deployment_name(old)}: it is not "
                        f"fully ready ({status.failure or status.progress}); {self.app.deployment_name(new)} "
                        "keeps serving"
                    )
                self.platform.write_service(
                    svc, self.app.selector_for(old), self._rollback_annotations(svc, plan, reason)
                )
                self._left_at[new] = self.clock()
                self.log.info("switched the Service %s back to %s", self.app.service, old)
                self.wait_for_endpoints(old)

        until_no_conflict(traffic_back, f"the Service {self.app.service} kept changing during the rollback; retry it")
        svc = self.platform.read_service()
        if svc is not None and self.app.color_of(svc.selector) == new:
            raise ReleaseError(f"refusing to remove {self.app.deployment_name(new)}: the Service points at it")
        self.point_preview(old)
        self._remove(plan, new, keep=old)
        # (no Service: a first release's rollback removed it; there is nothing to record on)
        self._update_record(
            plan,
            rec.ROLLED_BACK,
            history=f"rolled back: {reason}",
            release_lock=True,
            extra={rec.SOAK: None, rec.RETIRING: None},
        )
        serving = (
            f"{self.app.deployment_name(old)} ({plan.old_image or 'its image'}) is serving"
            if old
            else "nothing was serving before this first release"
        )
        return f"Release of {plan.image} to {self.app.name} rolled back: {reason}. {serving}."

    def _read_held(self, plan: Plan) -> ServiceView | None:
        """The Service, for the rollback, the removals and the release record: this run must still hold it
        (or may take it back), but the Service may point at either color."""
        svc = self.platform.read_service()
        if svc is not None and not self._completed(svc):
            guards.fence(self.app, svc, self.run_id, self.now())
        return svc

    def _change_held(
        self, plan: Plan, changes: Callable[[ServiceView], dict | None], what: str, first: ServiceView | None = None
    ) -> None:
        """``first``: the Service as the caller just read and checked it, for the first attempt (the
        write is conditional on it: a change since then is a Conflict, and the Service is read again)."""
        unused = [first] if first is not None else []

        def attempt() -> None:
            svc = unused.pop() if unused else self._read_held(plan)
            wanted = changes(svc) if svc is not None else None
            if svc is None or not wanted:
                return
            if not self._completed(svc) and rec.Lock.read(svc) is not None:
                wanted = {**wanted, rec.LOCK: self._lock_value(plan)}  # renewed on the way
            self.platform.write_service(svc, svc.selector, wanted)

        until_no_conflict(attempt, f"the Service {self.app.service} kept changing while {what}; retry")

    def _rollback_annotations(self, svc: ServiceView, plan: Plan, reason: str) -> dict:
        now = rec.iso(self.now())
        record = {
            **(rec.release_record(svc) or {}),
            "run_id": self.run_id,
            "state": rec.ROLLED_BACK,
            "rolled_back_at": now,
            "reason": reason,
            "plan": plan.to_json(),
        }
        return {
            rec.PREVIOUS_SELECTOR: rec.dump(svc.selector),
            rec.RUN_ID: self.run_id,
            rec.SWITCHED_AT: now,
            rec.RELEASE: rec.dump(record),
        }

    # ------------------------------------------------------------------------------
    # for people: what the task classes show (the approval's body, what to do by hand)
    # ------------------------------------------------------------------------------
    def serving_color(self) -> str | None:
        """The color the Service points at now; None when there is no Service or it points at neither."""
        svc = self.platform.read_service()
        return self.app.color_of(svc.selector) if svc is not None else None

    def approval_summary(self, plan: Plan) -> str:
        """What a person approving the switch sees: the new color now, what is live, what the
        switch changes, and where to try the new color first (the preview Service)."""
        app = self.app
        status = self.platform.observe(plan.new_color)
        lines = [
            f"**{app.deployment_name(plan.new_color)}** runs `{plan.image}`: {status.progress}.",
            f"Live now: **{app.deployment_name(plan.old_color)}** (`{plan.old_image}`)."
            if plan.old_color
            else "This is the app's first release: nothing is live yet.",
            f"On **Approve**, Service `{app.namespace}/{app.service}` switches to selector "
            f"`{app.selector_for(plan.new_color)}`.",
        ]
        if app.preview_service:
            preview = self.platform.read_service(app.manifests["preview"])
            where = ", ".join(f"{k}={v}" for k, v in sorted((preview.url_fields if preview else {}).items()) if v)
            lines.append(f"Try it first through the preview Service `{app.preview_service}` ({where}).")
        lines.append("**Reject** rolls back: the new color is removed and nothing else changes.")
        return "\n\n".join(lines)

    def finish_by_hand(self, plan: Plan) -> str:
        """What a person does when the rollback cannot finish: the Service back on the old color,
        the new color removed, each with the platform's command."""
        if plan.old_color is None:
            old = "nothing (or delete it: this was the app's first release)"
        else:
            old = (
                f"{self.app.deployment_name(plan.old_color)} once it is fully ready "
                f"({self.platform.manual_switch(self.app.selector_for(plan.old_color))})"
            )
        return (
            f"make sure the Service points at {old}, then remove {self.app.deployment_name(plan.new_color)} "
            f"({self.platform.manual_delete(plan.new_color)})"
        )

    def situation(self, plan: Plan) -> str:
        """What the cluster looks like now, for a person who must finish by hand (best effort)."""
        try:
            svc = self.platform.read_service()
            lines = [
                f"the Service {self.app.namespace}/{self.app.service} "
                + ("does not exist" if svc is None else f"selects {svc.selector or 'nothing'}")
            ]
            for color in filter(None, (plan.old_color, plan.new_color)):
                status = self.platform.observe(color)
                lines.append(
                    f"{self.app.deployment_name(color)}: "
                    + (f"{status.image}, {status.failure or status.progress}" if status.exists else "gone")
                )
            lock = rec.Lock.read(svc)
            if lock:
                lines.append(f"the release lock is held by run {lock.run_id} until {rec.iso(lock.expires)}")
            return "; ".join(lines)
        except Exception as e:  # the description is for people; the API may be what failed
            return f"the cluster could not be read ({type(e).__name__}: {e})"

    # ------------------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------------------
    def _update_record(
        self, plan: Plan, state: str, history: str | None = None, release_lock: bool = False, extra: dict | None = None
    ) -> None:
        def attempt() -> None:
            svc = self._read_held(plan)
            if svc is None:
                return
            record = rec.release_record(svc) or {}
            if record.get("run_id") != self.run_id and state != rec.ROLLED_BACK:
                raise ReleaseError(
                    f"the Service {self.app.service} records release {record.get('run_id')}, "
                    "not this run; someone else released meanwhile"
                )
            changes: dict[str, str | None] = {k: v for k, v in (extra or {}).items() if k in svc.annotations}
            mine = record.get("run_id") == self.run_id
            if mine and not (state == rec.SOAKED and record.get("state") == rec.COMPLETE):
                changes[rec.RELEASE] = rec.dump(
                    {**record, "state": state, f"{state.replace('-', '_')}_at": rec.iso(self.now())}
                )
            if history is not None:
                changes[rec.HISTORY] = rec.with_history(
                    svc,
                    {
                        "run_id": self.run_id,
                        "from": plan.old_color,
                        "from_image": plan.old_image,
                        "to": plan.new_color,
                        "image": plan.image,
                        "outcome": history,
                        "at": rec.iso(self.now()),
                    },
                    self.app.history_limit,
                )
            lock = rec.Lock.read(svc)
            if release_lock and (lock is None or lock.run_id == self.run_id):
                changes.update(rec.Lock.released(self.run_id, self.now()))
            if not changes:
                return
            self.platform.write_service(svc, svc.selector, changes)

        until_no_conflict(attempt, f"the Service {self.app.service} kept changing while recording the release; retry")

    def _wait(self, done: Callable[[], bool], timeout: float, timed_out: Callable[[], str]) -> None:
        """Until ``done()`` (which may also refuse, by raising), looking every ``poll_interval``;
        after ``timeout`` seconds, refuse with ``timed_out()`` (it may name what was seen last)."""
        deadline = self.clock() + timeout
        while not done():
            if self.clock() >= deadline:
                raise ReleaseError(timed_out())
            self.sleep(self.poll_interval)
