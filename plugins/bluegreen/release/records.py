"""What a release writes on the app's Service, in annotations.

The Service is the one object both colors share, so it is where the release keeps
its state: whoever reads it (a retried task, another Airflow, a person with
kubectl or bcs-client) sees which run holds the app, what it is doing, and how to
go back.

  bluegreen.io/lock               the run that holds the app, until when, and its plan
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

from .model import Plan, ServiceView

PREFIX = "bluegreen.io/"
LOCK = PREFIX + "lock"
PREVIOUS_SELECTOR = PREFIX + "previous-selector"
RUN_ID = PREFIX + "run-id"
SWITCHED_AT = PREFIX + "switched-at"
RELEASE = PREFIX + "release"
PREVIOUS_RELEASE = PREFIX + "previous-release"
HISTORY = PREFIX + "history"

SWITCHED, SOAKED, COMPLETE, ROLLED_BACK = "switched", "soaked", "complete", "rolled-back"


def now_utc(clock) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock(), dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(svc: ServiceView | None, key: str):
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
    run_id: str
    expires: dt.datetime
    plan: dict

    @classmethod
    def read(cls, svc: ServiceView | None) -> "Lock | None":
        data = _json(svc, LOCK)
        if not isinstance(data, dict) or "run_id" not in data:
            return None
        try:
            expires = dt.datetime.fromisoformat(data["expires"].replace("Z", "+00:00"))
        except (KeyError, ValueError, AttributeError):
            expires = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        return cls(run_id=data["run_id"], expires=expires, plan=data.get("plan") or {})

    def held_by_other(self, run_id: str, now: dt.datetime) -> bool:
        return self.run_id != run_id and self.expires > now

    @staticmethod
    def value(plan: Plan, expires: dt.datetime) -> str:
        return dump({"run_id": plan.run_id, "expires": iso(expires), "plan": plan.to_json()})


def release_record(svc: ServiceView | None) -> dict | None:
    data = _json(svc, RELEASE)
    return data if isinstance(data, dict) else None


def previous_release(svc: ServiceView | None) -> dict | None:
    data = _json(svc, PREVIOUS_RELEASE)
    return data if isinstance(data, dict) else None


def history(svc: ServiceView | None) -> list:
    data = _json(svc, HISTORY)
    return data if isinstance(data, list) else []


def with_history(svc: ServiceView | None, entry: dict, limit: int) -> str:
    """The history annotation with ``entry`` added (replacing this run's earlier entry)."""
    entries = [e for e in history(svc) if e.get("run_id") != entry.get("run_id")]
    entries.append(entry)
    return dump(entries[-limit:])
