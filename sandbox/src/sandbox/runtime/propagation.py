"""How late service proxies apply a selector change.

On a real cluster the API objects change at once (the Service, its Endpoints and
EndpointSlices; BCS's service and endpoint records), but each node's kube-proxy (for
BCS: bcs-loadbalance, regenerating haproxy from the exportservice) programs the change
some time later.  Until then new connections still go by the selector it had programmed;
connections already open stay where they are either way.

``Propagation`` keeps, per service, the selector the proxies route by and the changes
not yet applied.  A change is applied ``delay`` seconds after it was made, each change
on its own (two quick changes reach the proxies one after the other).  The delay is read
when a connection arrives, so changing it at run time applies to pending changes too.
A new Service routes at once: the sandbox does not model the wait for its first
programming.
"""

from __future__ import annotations

import collections
import copy
import time
from collections.abc import Hashable


class Propagation:
    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self._routed: dict[Hashable, dict | None] = {}  # what the proxies apply now
        self._pending: dict[Hashable, collections.deque[tuple[float, dict | None]]] = {}

    def created(self, key: Hashable, selector: dict | None) -> None:
        self._routed[key] = copy.deepcopy(selector)
        self._pending.pop(key, None)

    def changed(self, key: Hashable, selector: dict | None) -> None:
        """The stored selector became ``selector`` now."""
        if key not in self._routed:
            self.created(key, selector)
            return
        self._pending.setdefault(key, collections.deque()).append((time.monotonic(), copy.deepcopy(selector)))

    def forget(self, key: Hashable) -> None:
        self._routed.pop(key, None)
        self._pending.pop(key, None)

    def routed(self, key: Hashable, current: dict | None) -> dict | None:
        """The selector a proxy routes a new connection by, now (``current`` if the key is unknown)."""
        if key not in self._routed:
            return current
        pending = self._pending.get(key)
        now = time.monotonic()
        while pending and pending[0][0] + self.delay <= now:
            self._routed[key] = pending.popleft()[1]
        if pending is not None and not pending:
            del self._pending[key]
        return self._routed[key]

    def settled(self, key: Hashable) -> bool:
        """Whether the proxies route by the stored selector (no change still on its way)."""
        self.routed(key, None)
        return not self._pending.get(key)
