"""A tiny work queue for controllers: a key enqueued several times before it runs is
reconciled once, soon after (call_soon), like client-go's rate-limited work queue without
the rate limit.  ``later`` requeues a key at a given time (progress deadlines,
minReadySeconds)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(self, name: str, handler: Callable[[Hashable], None]):
        self.name = name
        self.handler = handler
        self._pending: set = set()
        self._timers: dict = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def add(self, key) -> None:
        if self.closed or key in self._pending:
            return
        self._pending.add(key)
        loop = self.loop or asyncio.get_running_loop()
        loop.call_soon(self._run, key)

    def later(self, key, delay: float) -> None:
        """Reconcile ``key`` after ``delay`` seconds (keeps the earliest of several requests)."""
        if self.closed:
            return
        loop = self.loop or asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        current = self._timers.get(key)
        if current is not None and current.when() <= when:
            return
        if current is not None:
            current.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _run(self, key) -> None:
        self._pending.discard(key)
        if self.closed:
            return
        try:
            self.handler(key)
        except Exception:
            log.exception("%s: reconciling %s failed", self.name, key)

    def close(self) -> None:
        self.closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
