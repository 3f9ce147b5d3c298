"""What the chaos watches while a run goes on, without going through the APIs it breaks:

Monitor      one thread per sandbox: every ``interval`` it reads the control endpoint's pod
             list (``GET /pods``: which pods run, their labels and readiness) and the new
             audit events (``GET /audit?since=``: every Service selector change, workload
             delete and scale-down, with the caller's User-Agent), and hands each run what is
             its own (pods by image, events by namespace)
TrafficLoop  a client sending requests through the app's Service port, a new connection
             each (as new clients do), like tests/e2e/harness.TrafficLoop but timing each
             request (its start and end) so that a failure can be set against what happened
             in the cluster at that moment
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Snapshot:
    t0: float  # the pod list was read between t0 and t1
    t1: float
    pods: list[dict]


@dataclass
class Watch:
    namespace: str
    image_prefix: str
    snapshots: list[Snapshot] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


class Monitor:
    def __init__(self, control, interval: float = 0.5):
        self.control, self.interval = control, interval
        self.watches: dict[str, Watch] = {}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-monitor", daemon=True)
        self.errors = 0

    def start(self) -> Monitor:
        events = self.control.audit(0)
        self._seq = events[-1]["seq"] if events else 0
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def watch(self, namespace: str, image_prefix: str) -> Watch:
        with self._lock:
            watch = self.watches[namespace] = Watch(namespace, image_prefix)
        self.poll()
        return watch

    def unwatch(self, namespace: str) -> Watch | None:
        self.poll()
        with self._lock:
            return self.watches.pop(namespace, None)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a missed sample is a gap, not a failure
                self.errors += 1

    def poll(self) -> None:
        with self._poll_lock:
            t0 = time.time()
            pods = self.control.pods()
            t1 = time.time()
            events = self.control.audit(self._seq)
            if events:
                self._seq = events[-1]["seq"]
            with self._lock:
                watches = list(self.watches.values())
            for w in watches:
                w.snapshots.append(Snapshot(t0, t1, [p for p in pods if p["image"].startswith(w.image_prefix)]))
                w.events.extend(e for e in events if e.get("namespace") == w.namespace)


@dataclass
class Request:
    t0: float
    t1: float
    ok: bool
    detail: str  # the image that answered, or what went wrong


class TrafficLoop:
    def __init__(self, url: str, interval: float = 0.1, timeout: float = 10.0):
        # 10 s: an answer that comes late (a machine whose two cores are busy stalls the sandbox
        # for seconds) is not a dropped request; a removed pod or a proxy with nowhere to go
        # refuses or resets at once.
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path or "/"
        self.interval, self.timeout = interval, timeout
        self.requests: list[Request] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-traffic", daemon=True)

    def start(self, wait_ok: float = 10.0) -> TrafficLoop:
        self._thread.start()
        deadline = time.monotonic() + wait_ok
        while not any(r.ok for r in self.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def stop(self) -> list[Request]:
        self._stop.set()
        self._thread.join(10)
        return self.requests

    def once(self) -> Request:
        t0 = time.time()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                return Request(t0, time.time(), False, f"HTTP {resp.status}")
            return Request(t0, time.time(), True, json.loads(body)["image"])
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            return Request(t0, time.time(), False, type(e).__name__)
        finally:
            conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.requests.append(self.once())
            self._stop.wait(self.interval)
