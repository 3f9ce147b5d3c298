"""The release lifecycle, written once for both platforms.

    plan      read the Service: the live color, the idle color to deploy; take the lock
    deploy    run the new image on the idle color (create, or replace a leftover)
    (wait)    readiness, judged in a trigger (health.ReadinessJudge)
    switch    re-check readiness now, point the Service's selector at the new color,
              wait until its endpoints are exactly the new color's ready members
    (soak)    health under real traffic, judged in a trigger (health.SoakJudge)
    retire    delete (or scale to zero) the old color, never the one the Service points at
    finish    record the release, release the lock
    rollback  point the Service back at the old color if it moved, remove the new color

Every step converges on a target state: running it again after a success, a
failure or a crash half-way does no harm.  Each one re-reads the Service first
and refuses, with a reason a person can act on, when the cluster no longer looks
like the plan (another release, a person with kubectl, a deleted Service).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable

from ..platforms import manifests as mf
from ..platforms.base import Platform
from . import records as rec
from .model import FIRST_COLOR, Conflict, Plan, ReleaseError, ServiceView, other

log = logging.getLogger(__name__)

# How many times a conditional write of the Service is retried after a Conflict.
_WRITE_ATTEMPTS = 5


class Release:
    def __init__(self, app, platform: Platform, run_id: str, *, logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 poll_interval: float = 0.5):
        self.app = app
        self.platform = platform
        self.run_id = run_id
        self.log = logger or log
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval

    # ------------------------------------------------------------------------------
    # plan
    # ------------------------------------------------------------------------------
    def plan(self, image: str, replicas: int, soak_seconds: float, *, skip_if_live: bool = False,
             restore_previous: bool = False) -> Plan:
        """Decide the colors and take the lock.  A re-run of the same Airflow run gets the
        plan it made before (from the lock, or from the release record once switched)."""
        for _ in range(_WRITE_ATTEMPTS):
            svc = self.platform.read_service()
            recalled = self._recall(svc)
            plan = recalled or self._new_plan(svc, image, replicas, soak_seconds, restore_previous)
            if recalled is None and skip_if_live and plan.old_color and plan.old_image == plan.image:
                plan.noop_reason = f"{plan.image} is already live on {plan.old_color}; nothing to release"
            if svc is None or plan.noop_reason or self._completed(svc):
                return plan
            try:
                self._take_lock(svc, plan)
                return plan
            except Conflict:
                continue
        raise ReleaseError(f"the Service {self.app.service} kept changing while taking the release lock; retry")

    def _recall(self, svc: ServiceView | None) -> Plan | None:
        lock = rec.Lock.read(svc)
        if lock and lock.run_id == self.run_id and lock.plan:
            return Plan.from_json(lock.plan)
        record = rec.release_record(svc)
        if record and record.get("run_id") == self.run_id and record.get("state") != rec.ROLLED_BACK \
                and record.get("plan"):
            return Plan.from_json(record["plan"])
        return None

    def _new_plan(self, svc, image, replicas, soak_seconds, restore_previous) -> Plan:
        self._refuse_if_locked(svc)
        manifest = None
        if svc is None:
            if restore_previous:
                raise ReleaseError(f"the Service {self.app.service} does not exist: there is no previous release "
                                   "to roll back to")
            return Plan(app=self.app.name, run_id=self.run_id, new_color=FIRST_COLOR, old_color=None,
                        image=image, replicas=replicas, soak_seconds=soak_seconds)
        live = self.live_color(svc)
        new = other(live)
        old_status = self.platform.observe(live)
        if restore_previous:
            previous = rec.previous_release(svc)
            if not previous:
                raise ReleaseError(f"the Service {self.app.service} records no previous release to roll back to")
            if previous.get("color") != new:
                raise ReleaseError(f"the previous release ran on {previous.get('color')}, but {live} is live and "
                                   f"{new} is the idle color; roll back by switching instead")
            image, manifest = previous["image"], previous.get("manifest")
            replicas = int(previous.get("replicas") or replicas)
        plan = Plan(app=self.app.name, run_id=self.run_id, new_color=new, old_color=live, image=image,
                    replicas=replicas, soak_seconds=soak_seconds, old_image=old_status.image,
                    previous_selector=dict(svc.selector))
        plan.manifest = manifest
        return plan

    def _refuse_if_locked(self, svc: ServiceView | None) -> None:
        lock = rec.Lock.read(svc)
        now = rec.now_utc(self.clock)
        if lock and lock.held_by_other(self.run_id, now):
            raise ReleaseError(f"{self.app.service} is locked by release run {lock.run_id} until "
                               f"{rec.iso(lock.expires)}; wait for it to finish (or for the lock to expire)")

    def _take_lock(self, svc: ServiceView, plan: Plan) -> ServiceView:
        self._refuse_if_locked(svc)
        expires = rec.now_utc(self.clock) + dt.timedelta(seconds=self.app.lock_ttl)
        return self.platform.write_service(svc, svc.selector, {rec.LOCK: rec.Lock.value(plan, expires)})

    def live_color(self, svc: ServiceView) -> str:
        color = self.app.color_of(svc.selector)
        if color is None:
            raise ReleaseError(
                f"the Service {self.app.service} selects {svc.selector}, which matches neither "
                f"{self.app.deployment_name('blue')} ({self.app.selector_for('blue')}) nor "
                f"{self.app.deployment_name('green')} ({self.app.selector_for('green')}); fix its selector by hand "
                "first, nothing was changed")
        return color

    # ------------------------------------------------------------------------------
    # deploy
    # ------------------------------------------------------------------------------
    def deploy(self, plan: Plan) -> str:
        svc = self._hold(plan)
        if svc is not None and self.live_color(svc) == plan.new_color and not self._switched_by_me(svc):
            raise ReleaseError(f"the Service {self.app.service} points at {plan.new_color}; refusing to redeploy "
                               "the live color")
        manifest = self.manifest_for(plan)
        result = self.platform.apply_color(plan.new_color, manifest)
        self.log.info("%s %s with %s (%d replicas): %s", result, self.app.deployment_name(plan.new_color),
                      plan.image, plan.replicas, plan.describe())
        self.point_preview(plan.new_color)
        return result

    def point_preview(self, color: str | None) -> None:
        """Point the preview Service (if the app has one) at ``color``; None removes it."""
        manifest = self.app.manifests.get("preview")
        if not manifest:
            return
        selector = self.app.selector_for(color) if color else None
        for _ in range(_WRITE_ATTEMPTS):
            svc = self.platform.read_service(manifest)
            try:
                if selector is None:
                    if svc is not None:
                        self.platform.delete_service(manifest)
                elif svc is None:
                    self.platform.create_service(selector, {}, manifest=manifest)
                elif svc.selector != selector:
                    self.platform.write_service(svc, selector, {}, manifest=manifest)
                else:
                    return
                self.log.info("the preview Service %s now points at %s", self.app.preview_service, color or "nothing")
                return
            except Conflict:
                continue
        raise ReleaseError(f"the preview Service {self.app.preview_service} kept changing; retry")

    def manifest_for(self, plan: Plan) -> dict:
        base = plan.manifest or self.app.manifests[plan.new_color]
        return mf.with_release(self.app.platform, base, plan.image, plan.replicas, self.app.container)

    # ------------------------------------------------------------------------------
    # switch
    # ------------------------------------------------------------------------------
    def switch(self, plan: Plan) -> None:
        new = plan.new_color
        name = self.app.deployment_name(new)
        for _ in range(_WRITE_ATTEMPTS):
            svc = self._hold(plan)
            if svc is not None and self.live_color(svc) == new:
                self.log.info("the Service %s already points at %s", self.app.service, new)
                break
            status = self.platform.observe(new)
            if not status.complete or status.failure:
                # Re-checked at the moment of switching: the sensor's verdict may be stale.
                raise ReleaseError(f"refusing to switch {self.app.service} to {name}: it is not fully ready now "
                                   f"({status.failure or status.progress})")
            annotations = self._switch_annotations(svc, plan, rec.SWITCHED)
            try:
                if svc is None:
                    self.platform.create_service(self.app.selector_for(new), annotations)
                    self.log.info("created the Service %s pointing at %s", self.app.service, name)
                else:
                    self.platform.write_service(svc, self.app.selector_for(new), annotations)
                    self.log.info("switched the Service %s from %s to %s", self.app.service, svc.selector,
                                  self.app.selector_for(new))
                break
            except Conflict:
                continue
        else:
            raise ReleaseError(f"the Service {self.app.service} kept changing while switching; retry the switch")
        self.wait_for_endpoints(new)

    def _switch_annotations(self, svc: ServiceView | None, plan: Plan, state: str) -> dict:
        now = rec.iso(rec.now_utc(self.clock))
        record = {"run_id": self.run_id, "from": plan.old_color, "to": plan.new_color, "image": plan.image,
                  "from_image": plan.old_image, "state": state, "at": now, "plan": plan.to_json()}
        annotations = {
            rec.PREVIOUS_SELECTOR: rec.dump(svc.selector) if svc else rec.dump({}),
            rec.RUN_ID: self.run_id,
            rec.SWITCHED_AT: now,
            rec.RELEASE: rec.dump(record),
        }
        if plan.old_color and plan.old_image:
            annotations[rec.PREVIOUS_RELEASE] = rec.dump({
                "color": plan.old_color, "image": plan.old_image, "run_id": (rec.release_record(svc) or {}).get("run_id"),
                "replicas": self.platform.observe(plan.old_color).desired or plan.replicas,
                "manifest": self._applied_manifest(plan.old_color),
            })
        return annotations

    def _applied_manifest(self, color: str) -> dict | None:
        """The manifest the old color runs now, as the record of what to restore."""
        return self.platform.read_manifest(color)

    def wait_for_endpoints(self, color: str) -> None:
        """Until the Service sends traffic to exactly the color's ready members."""
        deadline = self.clock() + self.app.switch_timeout
        while True:
            backends, ready = self.platform.service_backends(), self.platform.ready_members(color)
            if ready and backends == ready:
                self.log.info("the Service %s now sends traffic to %d %s member(s)", self.app.service, len(ready),
                              color)
                return
            if self.clock() >= deadline:
                raise ReleaseError(f"the Service {self.app.service} did not converge on {color} within "
                                   f"{self.app.switch_timeout:g}s: it sends traffic to {sorted(backends)}, "
                                   f"{color} has ready {sorted(ready)}")
            self.sleep(self.poll_interval)

    # ------------------------------------------------------------------------------
    # after the soak
    # ------------------------------------------------------------------------------
    def mark_soaked(self, plan: Plan) -> None:
        """Record on the Service that the soak passed: only then may the old color go."""
        self._update_record(plan, rec.SOAKED)

    def retire_old(self, plan: Plan) -> None:
        old = plan.old_color
        if old is None:
            self.log.info("first release of %s: there is no old color to remove", self.app.name)
            return
        svc = self._hold(plan)
        if svc is None:
            raise ReleaseError(f"the Service {self.app.service} is gone; not touching {old}")
        live = self.live_color(svc)
        if live == old:
            raise ReleaseError(f"refusing to remove {self.app.deployment_name(old)}: the Service "
                               f"{self.app.service} points at it")
        record = rec.release_record(svc) or {}
        if record.get("run_id") != self.run_id or record.get("state") not in (rec.SOAKED, rec.COMPLETE):
            raise ReleaseError(f"refusing to remove {self.app.deployment_name(old)}: this run's soak has not "
                               "passed (clear the soak task to run it)")
        if self.app.old_color == "scale-to-zero":
            self.platform.scale_color(old, 0)
            self._wait(lambda: not self.platform.observe(old).ready and not self.platform.ready_members(old),
                       f"{self.app.deployment_name(old)} to scale to zero", self.app.delete_timeout)
            self.log.info("scaled %s to zero (kept for a fast rollback)", self.app.deployment_name(old))
        else:
            self.platform.delete_color(old)
            self._wait(lambda: self.platform.color_gone(old), f"{self.app.deployment_name(old)} to be deleted",
                       self.app.delete_timeout)
            self.log.info("deleted %s", self.app.deployment_name(old))

    def finish(self, plan: Plan, outcome: str = "released") -> str:
        svc = self.platform.read_service()
        if plan.noop_reason:
            self.log.info(plan.noop_reason)
            return plan.noop_reason
        summary = (f"{self.app.name}: {plan.old_color or '-'} ({plan.old_image or '-'}) -> "
                   f"{plan.new_color} ({plan.image}): {outcome}")
        if svc is not None:
            self._update_record(plan, rec.COMPLETE, history=outcome, release_lock=True)
        self.log.info(summary)
        return summary

    # ------------------------------------------------------------------------------
    # rollback
    # ------------------------------------------------------------------------------
    def rollback(self, plan: Plan, reason: str) -> str:
        """Go back to the old color if traffic moved, then remove the new color."""
        new, old = plan.new_color, plan.old_color
        for _ in range(_WRITE_ATTEMPTS):
            svc = self.platform.read_service()
            self._refuse_if_locked(svc)
            live = self.app.color_of(svc.selector) if svc else None
            try:
                if svc is not None and live == new:
                    if old is None:
                        if self._switched_by_me(svc):
                            # A first release: nothing served before it, so nothing is lost by removing it.
                            self.platform.delete_service()
                            self.log.info("removed the Service %s this first release created", self.app.service)
                    else:
                        status = self.platform.observe(old)
                        if not status.complete:
                            raise ReleaseError(
                                f"cannot roll back {self.app.service} to {self.app.deployment_name(old)}: it is not "
                                f"fully ready ({status.failure or status.progress}); {self.app.deployment_name(new)} "
                                "keeps serving")
                        self.platform.write_service(svc, self.app.selector_for(old),
                                                    self._rollback_annotations(svc, plan, reason))
                        self.log.info("switched the Service %s back to %s", self.app.service, old)
                        self.wait_for_endpoints(old)
                break
            except Conflict:
                continue
        else:
            raise ReleaseError(f"the Service {self.app.service} kept changing during the rollback; retry it")
        svc = self.platform.read_service()
        if svc is not None and self.app.color_of(svc.selector) == new:
            raise ReleaseError(f"refusing to remove {self.app.deployment_name(new)}: the Service points at it")
        self.point_preview(old)
        self.platform.delete_color(new)
        self._wait(lambda: self.platform.color_gone(new), f"{self.app.deployment_name(new)} to be deleted",
                   self.app.delete_timeout)
        if svc is not None:
            self._update_record(plan, rec.ROLLED_BACK, history=f"rolled back: {reason}", release_lock=True)
        serving = (f"{self.app.deployment_name(old)} ({plan.old_image or 'its image'}) is serving"
                   if old else "nothing was serving before this first release")
        return f"Release of {plan.image} to {self.app.name} rolled back: {reason}. {serving}."

    def _rollback_annotations(self, svc: ServiceView, plan: Plan, reason: str) -> dict:
        now = rec.iso(rec.now_utc(self.clock))
        record = {**(rec.release_record(svc) or {}), "run_id": self.run_id, "state": rec.ROLLED_BACK,
                  "rolled_back_at": now, "reason": reason, "plan": plan.to_json()}
        return {rec.PREVIOUS_SELECTOR: rec.dump(svc.selector), rec.RUN_ID: self.run_id, rec.SWITCHED_AT: now,
                rec.RELEASE: rec.dump(record)}

    # ------------------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------------------
    def _hold(self, plan: Plan) -> ServiceView | None:
        """Re-read the Service, check it still fits the plan, and (re)take the lock."""
        for _ in range(_WRITE_ATTEMPTS):
            svc = self.platform.read_service()
            if svc is None:
                if plan.old_color is not None:
                    raise ReleaseError(f"the Service {self.app.service} disappeared during the release")
                return None
            live = self.live_color(svc)
            if live not in (plan.old_color, plan.new_color) or (
                    live == plan.new_color and plan.old_color is not None and not self._switched_by_me(svc)):
                raise ReleaseError(f"the Service {self.app.service} points at {live}, which this run did not plan "
                                   f"({plan.describe()}); someone else changed it: start a new run")
            if plan.old_color is None and not self._switched_by_me(svc):
                raise ReleaseError(f"the Service {self.app.service} was created by someone else while this first "
                                   "release ran; start a new run")
            lock = rec.Lock.read(svc)
            if self._completed(svc) or (lock and lock.run_id == self.run_id and
                                        lock.expires - rec.now_utc(self.clock) > dt.timedelta(seconds=self.app.lock_ttl / 2)):
                return svc
            try:
                return self._take_lock(svc, plan)
            except Conflict:
                continue
        raise ReleaseError(f"the Service {self.app.service} kept changing; retry")

    def _completed(self, svc: ServiceView) -> bool:
        """This run's release already finished: its steps may re-run, but it holds no lock."""
        record = rec.release_record(svc) or {}
        return record.get("run_id") == self.run_id and record.get("state") == rec.COMPLETE

    def _switched_by_me(self, svc: ServiceView) -> bool:
        record = rec.release_record(svc) or {}
        return svc.annotations.get(rec.RUN_ID) == self.run_id and record.get("state") != rec.ROLLED_BACK

    def _update_record(self, plan: Plan, state: str, history: str | None = None, release_lock: bool = False) -> None:
        for _ in range(_WRITE_ATTEMPTS):
            svc = self.platform.read_service()
            if svc is None:
                return
            record = rec.release_record(svc) or {}
            if record.get("run_id") != self.run_id and state != rec.ROLLED_BACK:
                raise ReleaseError(f"the Service {self.app.service} records release {record.get('run_id')}, "
                                   "not this run; someone else released meanwhile")
            changes: dict[str, str | None] = {}
            if record.get("run_id") == self.run_id:
                changes[rec.RELEASE] = rec.dump({**record, "state": state,
                                                 f"{state.replace('-', '_')}_at": rec.iso(rec.now_utc(self.clock))})
            if history is not None:
                changes[rec.HISTORY] = rec.with_history(svc, {
                    "run_id": self.run_id, "from": plan.old_color, "from_image": plan.old_image,
                    "to": plan.new_color, "image": plan.image, "outcome": history,
                    "at": rec.iso(rec.now_utc(self.clock))}, self.app.history_limit)
            lock = rec.Lock.read(svc)
            if release_lock and lock and lock.run_id == self.run_id:
                changes[rec.LOCK] = None
            try:
                self.platform.write_service(svc, svc.selector, changes)
                return
            except Conflict:
                continue
        raise ReleaseError(f"the Service {self.app.service} kept changing while recording the release; retry")

    def _wait(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = self.clock() + timeout
        while not done():
            if self.clock() >= deadline:
                raise ReleaseError(f"timed out after {timeout:g}s waiting for {what}")
            self.sleep(self.poll_interval)
