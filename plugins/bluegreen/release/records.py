"""What a release writes on the app's Service, in annotations.

The Service is the one object both colors share, so it is where the release keeps
its state: whoever reads it (a retried task, another Airflow, a person with
kubectl or bcs-client) sees which run holds the app, what it is doing, and how to
go back.

  bluegreen.io/lock               the run that holds the app, until when, and its plan
  bluegreen.io/last-lock          the run that held it last, once released (a run whose lock was taken
                                  over by another run since can no longer write: see Lock)
  bluegreen.io/created-by         the run whose first release created the Service (to hold its lock)
  bluegreen.io/soak               the soak in progress: when it ends, unhealthy observations so far
  bluegreen.io/retiring           the color being removed, written just before its delete (the re-check)
  bluegreen.io/previous-selector  the selector before the last switch
  bluegreen.io/run-id             the run that made the last switch
  bluegreen.io/switched-at        when
  bluegreen.io/release            the last switch: from, to, images, state (switched, soaked, complete, rolled-back)
  bluegreen.io/previous-release   the release that was live before it (color, image, manifest), for a
                                  rollback after the old color is gone
  bluegreen.io/history            the last few releases and their outcome
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import StrEnum

from .model import Plan, ServiceView

PREFIX = "bluegreen.io/"
LOCK = PREFIX + "lock"
PREVIOUS_SELECTOR = PREFIX + "previous-selector"
RUN_ID = PREFIX + "run-id"
SWITCHED_AT = PREFIX + "switched-at"
RELEASE = PREFIX + "release"
PREVIOUS_RELEASE = PREFIX + "previous-release"
HISTORY = PREFIX + "history"
LAST_LOCK = PREFIX + "last-lock"
CREATED_BY = PREFIX + "created-by"
SOAK = PREFIX + "soak"
RETIRING = PREFIX + "retiring"


class ReleaseState(StrEnum):
    """The ``state`` of the release record (bluegreen.io/release), in the order a release goes
    through them (or rolled back instead).  Stored as the plain value."""

    SWITCHED = "switched"
    SOAKED = "soaked"
    COMPLETE = "complete"
    ROLLED_BACK = "rolled-back"


SWITCHED, SOAKED, COMPLETE, ROLLED_BACK = ReleaseState


def now_utc(clock) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock(), dt.UTC)


def iso(moment: dt.datetime) -> str:
    # milliseconds: the drain delay is counted from the switch's timestamp
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(value) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def annotation_json(svc: ServiceView | None, key: str):
    if svc is None or key not in svc.annotations:
        return None
    try:
        return json.loads(svc.annotations[key])
    except ValueError:
        return None


def dump(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass
class Lock:
    """The release lock: one run holds an app from ``plan`` to ``finish``/``rollback``.

    A lock is a lease: it holds until ``expires`` unless its run renews it, and a run
    renews it only while it still holds it, so a run that stalled past its lease is
    *fenced*: once another run has taken the app, the stalled run can no longer write
    (``guards.fence`` refuses), even after the other run has released it again
    (``bluegreen.io/last-lock`` then names that run).
    """

    run_id: str
    expires: dt.datetime
    plan: dict

    @classmethod
    def read(cls, svc: ServiceView | None) -> Lock | None:
        data = annotation_json(svc, LOCK)
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
            return None
        expires = parse_iso(data.get("expires")) or dt.datetime.min.replace(tzinfo=dt.UTC)
        plan = data.get("plan")
        return cls(run_id=data["run_id"], expires=expires, plan=plan if isinstance(plan, dict) else {})

    def held(self, now: dt.datetime) -> bool:
        return self.expires > now

    def held_by_other(self, run_id: str, now: dt.datetime) -> bool:
        return self.run_id != run_id and self.held(now)

    @staticmethod
    def value(plan: Plan, expires: dt.datetime) -> str:
        return dump({"run_id": plan.run_id, "expires": iso(expires), "plan": plan.to_json()})

    @staticmethod
    def released(run_id: str, now: dt.datetime) -> dict[str, str | None]:
        """The annotation changes that release the lock of ``run_id``."""
        return {LOCK: None, LAST_LOCK: dump({"run_id": run_id, "released_at": iso(now)})}


def last_holder(svc: ServiceView | None) -> str | None:
    """The run that held the lock last, when nobody holds it now."""
    data = annotation_json(svc, LAST_LOCK)
    return data.get("run_id") if isinstance(data, dict) else None


def soak_state(svc: ServiceView | None, run_id: str) -> dict | None:
    """This run's soak in progress (its end, its unhealthy observations so far), if any."""
    data = annotation_json(svc, SOAK)
    return data if isinstance(data, dict) and data.get("run_id") == run_id else None


def release_record(svc: ServiceView | None) -> dict | None:
    data = annotation_json(svc, RELEASE)
    return data if isinstance(data, dict) else None


def previous_release(svc: ServiceView | None) -> dict | None:
    data = annotation_json(svc, PREVIOUS_RELEASE)
    return data if isinstance(data, dict) else None


def history(svc: ServiceView | None) -> list:
    data = annotation_json(svc, HISTORY)
    return data if isinstance(data, list) else []


def with_history(svc: ServiceView | None, entry: dict, limit: int) -> str:
    """The history annotation with ``entry`` added (replacing this run's earlier entry)."""
    entries = [e for e in history(svc) if e.get("run_id") != entry.get("run_id")]
    entries.append(entry)
    return dump(entries[-limit:])
