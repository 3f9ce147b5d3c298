"""The audit log: what a chaos test needs to check a release's invariants afterwards.

Two kinds of events, recorded by the front ends at the moment the API call changes
the cluster (so their facts are those of that moment, not of a later poll):

  service_selector   a Service's selector was set, changed or removed (create, update,
                     patch, delete): the old and new selector, what the new one matches
                     (pods, how many ready, each workload with its desired replicas and
                     whether the platform calls it fully rolled out)
  workload_delete    a workload (Kubernetes Deployment, BCS deployment or application) is
  workload_scale_down  deleted or scaled down: which Services select its pods right then,
                     and when each of those Services' selector last changed

Every event carries ``seq`` (its position, from 1), ``time`` (wall clock) and ``actor``
(the User-Agent of the request that caused it, set per request by the front ends'
middleware through ACTOR).  The log keeps the last ``size`` events.
"""

from __future__ import annotations

import collections
import contextvars
import itertools
import threading
import time

# The User-Agent of the API request being served (empty outside a request).
ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("sandbox_actor", default="")


class Audit:
    def __init__(self, size: int = 10_000):
        self._events: collections.deque[dict] = collections.deque(maxlen=size)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        # (api, namespace, service) -> wall-clock time its selector last changed; kept across
        # resets, since it describes the cluster, not the log
        self.selector_changed: dict[tuple[str, str, str], float] = {}

    def record(self, kind: str, **fields) -> dict:
        with self._lock:
            event = {"seq": next(self._seq), "time": time.time(), "kind": kind, "actor": ACTOR.get(), **fields}
            self._events.append(event)
            return event

    def selector_change(
        self, api: str, namespace: str, service: str, verb: str, old: dict | None, new: dict | None, matched: dict
    ) -> dict:
        event = self.record(
            "service_selector",
            api=api,
            namespace=namespace,
            service=service,
            verb=verb,
            old_selector=old,
            new_selector=new,
            matched=matched,
        )
        if new is None:
            self.selector_changed.pop((api, namespace, service), None)
        else:
            self.selector_changed[(api, namespace, service)] = event["time"]
        return event

    def events(self, since: int = 0, kind: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(e) for e in self._events if e["seq"] > since and (kind is None or e["kind"] == kind)]

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
