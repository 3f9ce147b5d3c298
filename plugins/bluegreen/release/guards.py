"""The guards every step checks before it writes: pure functions of what the Service says.

Kept apart from the lifecycle (steps.py) so that each rule reads in one place and is tested
on its own:

  fits        the Service still looks like this run's plan (no one else switched it)
  fence       this run still holds the release lock, or may take it back (no one else took it)
  checked_*   a plan or a previous release read back from the Service's annotations is
              one this app could have written (annotations can be edited by anyone)
"""

from __future__ import annotations

import datetime as dt

from ..apps.images import check_image
from . import records as rec
from .model import COLORS, ConfigError, Fenced, Plan, ReleaseError, ServiceView, other, selects_nothing


def fits(app, svc: ServiceView | None, plan: Plan, switched_by_me: bool) -> None:
    """Raise unless the Service is in a state this run's plan can go on from."""
    if svc is None:
        raise ReleaseError(
            f"the Service {app.service} does not exist any more (it was deleted during the release); "
            "nothing more was changed: start a new run"
        )
    live = app.color_of(svc.selector)
    if not selects_nothing(svc.selector) and live is None:
        raise ReleaseError(neither_color(app, svc))
    if plan.old_color is None:
        if live is not None and not (live == plan.new_color and switched_by_me):
            raise ReleaseError(
                f"the Service {app.service} was pointed at {live} by someone else while this first "
                "release ran; start a new run"
            )
        return
    if live is None:
        raise ReleaseError(
            f"the Service {app.service} selects nothing now, not {plan.old_color} as this run planned "
            f"({plan.describe()}); someone else changed it: start a new run"
        )
    if live == plan.new_color and not switched_by_me:
        raise ReleaseError(
            f"the Service {app.service} points at {live}, which this run did not plan "
            f"({plan.describe()}); someone else changed it: start a new run"
        )


def neither_color(app, svc: ServiceView) -> str:
    return (
        f"the Service {app.service} selects {svc.selector}, which matches neither "
        f"{app.deployment_name('blue')} ({app.selector_for('blue')}) nor "
        f"{app.deployment_name('green')} ({app.selector_for('green')}); fix its selector by hand "
        "first, nothing was changed"
    )


def fence(app, svc: ServiceView, run_id: str, now: dt.datetime) -> bool:
    """Raise when another run holds the app or has held it since this run did; else say whether
    this run must (re)write its lock: when half of its lease is gone, or it was released or
    never taken (a clear after this run's own rollback, a Service from an older version)."""
    lock = rec.Lock.read(svc)
    if lock is not None and lock.run_id != run_id:
        held = f"it holds it until {rec.iso(lock.expires)}" if lock.held(now) else "its lease has run out since"
        raise Fenced(
            f"the release lock of {app.service} was taken over by release run {lock.run_id} after this "
            f"run's own lease ran out or this run let it go (it finished or rolled back) ({held}); this "
            "run's plan is stale and it changes nothing more: start a new run"
        )
    if lock is None:
        last = rec.last_holder(svc)
        if last not in (None, run_id):
            raise Fenced(
                f"the release lock of {app.service} was taken over by release run {last} after this run's "
                "own lease ran out or this run let it go (it finished or rolled back), and released since; "
                "this run's plan is stale and it changes nothing more: start a new run"
            )
        return True
    return (lock.expires - now).total_seconds() <= app.lock_ttl / 2


def refuse_if_locked(app, svc: ServiceView | None, run_id: str, now: dt.datetime) -> None:
    lock = rec.Lock.read(svc)
    if lock and lock.held_by_other(run_id, now):
        raise ReleaseError(
            f"{app.service} is locked by release run {lock.run_id} until {rec.iso(lock.expires)}; "
            "wait for it to finish (or for the lock to expire)"
        )


def checked_plan(app, data, run_id: str, where: str) -> Plan:
    """A plan read back from an annotation, validated as the plan task validates a run's inputs."""
    source = f"the Service {app.service}'s {where} annotation"
    if not isinstance(data, dict):
        raise ConfigError("plan", data, "must be a mapping", source)
    try:
        plan = Plan.from_json(data)
    except TypeError as e:
        raise ConfigError("plan", data, f"cannot be read ({e})", source) from None
    checks = [
        ("app", plan.app, plan.app == app.name, f"must be {app.name!r}"),
        ("run_id", plan.run_id, plan.run_id == run_id, f"must be {run_id!r}"),
        ("new_color", plan.new_color, plan.new_color in COLORS, "must be blue or green"),
        (
            "new_color",
            plan.new_color,
            plan.old_color in (None, other(plan.new_color)),
            f"must differ from old_color {plan.old_color!r}",
        ),
        ("image", plan.image, check_image(plan.image) is None, check_image(plan.image) or ""),
        ("replicas", plan.replicas, _whole(plan.replicas), "must be a whole number of at least 1"),
        (
            "soak_seconds",
            plan.soak_seconds,
            isinstance(plan.soak_seconds, (int, float))
            and not isinstance(plan.soak_seconds, bool)
            and plan.soak_seconds >= 0,
            "must be a number of seconds",
        ),
    ]
    for field, value, ok, problem in checks:
        if not ok:
            raise ConfigError(field, value, problem + "; nothing was changed: fix or remove the annotation", source)
    if plan.manifest is not None:
        app.check_workload(plan.new_color, plan.manifest, source)
    return plan


def checked_previous(app, previous, color: str) -> tuple[str, int | None, dict | None]:
    """The previous release recorded on the Service (image, replicas, manifest), validated before a
    rollback to it deploys anything."""
    source = f"the Service {app.service}'s {rec.PREVIOUS_RELEASE} annotation"
    image, replicas, manifest = previous.get("image"), previous.get("replicas"), previous.get("manifest")
    problem = check_image(image)
    if problem:
        raise ConfigError("image", image, problem, source)
    if replicas is not None and not _whole(replicas):
        raise ConfigError("replicas", replicas, "must be a whole number of at least 1", source)
    if manifest is not None:
        app.check_workload(color, manifest, f"{source}: manifest")
    return image, replicas, manifest


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
