"""Object storage as etcd + the watch cache give it to the API server.

One global, increasing resourceVersion (a string on the wire, like etcd's revision) is
stamped on every write.  Each resource keeps a bounded history of events so that a watch
can resume from a resourceVersion; one older than that history gets a 410 ``Expired``
(sent in-stream as an ERROR event, as the watch cache does).  Everything runs on the
sandbox's event loop, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import errors
from .resources import Resource


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


@dataclass
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict
    old: dict | None  # the previous state (MODIFIED), for selector transitions


class Watcher:
    def __init__(self, store: Store, resource: Resource, namespace: str | None, predicate: Callable[[dict], bool]):
        self.store = store
        self.resource = resource
        self.namespace = namespace
        self.predicate = predicate
        self.queue: asyncio.Queue = asyncio.Queue()

    def offer(self, event: Event) -> None:
        """Translate a stored event into what this watch sees: with a selector, an object
        that starts to match is ADDED and one that stops matching is DELETED (as the watch
        cache does)."""
        meta = event.obj["metadata"]
        if self.namespace is not None and (meta.get("namespace") or "") != self.namespace:
            return
        now = self.predicate(event.obj)
        before = event.old is not None and self.predicate(event.old)
        if event.type == "MODIFIED":
            if now and before:
                self.queue.put_nowait(("MODIFIED", event.obj))
            elif now:
                self.queue.put_nowait(("ADDED", event.obj))
            elif before:
                self.queue.put_nowait(("DELETED", event.obj))
        elif now:
            self.queue.put_nowait((event.type, event.obj))

    def close(self) -> None:
        self.store._watchers[self.resource.plural].discard(self)


class Store:
    def __init__(self, history: int = 1000):
        self.rv = 0
        self.history_size = history
        self.objects: dict[str, dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self._history: dict[str, collections.deque[Event]] = collections.defaultdict(
            lambda: collections.deque(maxlen=self.history_size)
        )
        # per resource: the newest resourceVersion that fell out of the history
        self._dropped: dict[str, int] = collections.defaultdict(int)
        self._watchers: dict[str, set[Watcher]] = collections.defaultdict(set)
        self._listeners: list[Callable[[Resource, Event], None]] = []
        self.started_rv = 0

    # -- reads --------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: str, name: str) -> dict | None:
        obj = self.objects[resource.plural].get((namespace if resource.namespaced else "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def peek(self, resource: Resource, namespace: str, name: str) -> dict | None:
        """The stored object itself (callers must not modify it)."""
        return self.objects[resource.plural].get((namespace if resource.namespaced else "", name))

    def list(self, resource: Resource, namespace: str | None = None) -> list[dict]:
        """Stored objects (not copies), sorted by namespace and name as etcd returns them."""
        items = self.objects[resource.plural]
        keys = sorted(k for k in items if namespace is None or k[0] == namespace)
        return [items[k] for k in keys]

    # -- writes -------------------------------------------------------------------------
    def _next(self) -> int:
        self.rv += 1
        return self.rv

    def create(self, resource: Resource, obj: dict) -> dict:
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if resource.namespaced else "", meta["name"])
        if key in self.objects[resource.plural]:
            raise errors.already_exists(resource.plural, resource.group, meta["name"])
        rv = self._next()
        meta["resourceVersion"] = str(rv)
        stored = copy.deepcopy(obj)
        self.objects[resource.plural][key] = stored
        self._emit(resource, Event(rv, "ADDED", stored, None))
        return copy.deepcopy(stored)

    def update(self, resource: Resource, obj: dict, expect_rv: str | None = None) -> dict:
        """Replace the stored object; a write that changes nothing keeps its version and
        sends no event, as the real registry does."""
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if resource.namespaced else "", meta["name"])
        old = self.objects[resource.plural].get(key)
        if old is None:
            raise errors.not_found(resource.plural, resource.group, meta["name"])
        if expect_rv is not None and expect_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, meta["name"], errors.MODIFIED)
        candidate = copy.deepcopy(obj)
        candidate["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if candidate == old:
            return copy.deepcopy(old)
        rv = self._next()
        candidate["metadata"]["resourceVersion"] = str(rv)
        self.objects[resource.plural][key] = candidate
        self._emit(resource, Event(rv, "MODIFIED", candidate, old))
        return copy.deepcopy(candidate)

    def delete(self, resource: Resource, namespace: str, name: str) -> dict | None:
        key = (namespace if resource.namespaced else "", name)
        old = self.objects[resource.plural].pop(key, None)
        if old is None:
            return None
        rv = self._next()
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(rv)
        self._emit(resource, Event(rv, "DELETED", gone, old))
        return copy.deepcopy(gone)

    def _emit(self, resource: Resource, event: Event) -> None:
        history = self._history[resource.plural]
        if len(history) == history.maxlen:
            self._dropped[resource.plural] = history[0].rv
        history.append(event)
        for w in list(self._watchers[resource.plural]):
            w.offer(event)
        for listener in list(self._listeners):
            listener(resource, event)

    def subscribe(self, listener: Callable[[Resource, Event], None]) -> None:
        """Controllers hear every write (synchronously, after watchers)."""
        self._listeners.append(listener)

    # -- watches ------------------------------------------------------------------------
    def watch(
        self, resource: Resource, namespace: str | None, predicate: Callable[[dict], bool], since: int | None
    ) -> Watcher:
        """A watcher that first replays: every current object as ADDED (``since`` None: a
        watch without resourceVersion, or "0"), or the history after ``since``."""
        w = Watcher(self, resource, namespace, predicate)
        if since is None:
            for obj in self.list(resource, namespace):
                if predicate(obj):
                    w.queue.put_nowait(("ADDED", obj))
        else:
            if since < self._dropped[resource.plural]:
                raise errors.expired(f"too old resource version: {since} ({self._dropped[resource.plural]})")
            for event in self._history[resource.plural]:
                if event.rv > since:
                    w.offer(event)
        self._watchers[resource.plural].add(w)
        return w
