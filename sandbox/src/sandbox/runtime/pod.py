"""A sandbox pod: a real HTTP listener on 127.0.0.1 with a lifecycle driven by its behaviour.

States follow what a kubelet reports:
  Pending      the listener is being opened
  Running      listening; ``ready`` says whether it passes readiness
  Terminating  asked to stop; still answers until ``stop_delay`` has passed
  Gone         listener closed
A crash-looping pod stays Running, never ready, and its restart count climbs.

Faults the control endpoint can inject (``kill``, ``hold_unready``): a killed container
stops listening at once (connections are refused), is started again ``down`` seconds
later (restart count + 1), answers 503 while it warms up and is ready again after its
ready-after; an unready pod fails
readiness (and answers 503) for a while, then passes again.  ``exits`` counts every
container exit (crash-loop ticks and kills), for front ends that report exits rather than
restarts (BCS: a failed taskgroup).

Metrics: every pod answers ``GET /metrics`` in the Prometheus text format (``metrics.py``:
``http_requests_total{code,method}``, the ``http_request_duration_seconds`` histogram),
counting the ordinary requests it answered (not ``/metrics`` nor ``/healthz``).  It answers
while unready, warming or failing, as a real process does, but not while its container is
dead (killed: nothing listens); each container run counts from zero.  The behaviour's
``error_rate`` and ``latency`` apply to ordinary requests only, so readiness never sees them.
The sandbox lists every pod's first port as a scrape target (``sandbox/prometheus.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .behaviour import Behaviour
from .metrics import CONTENT_TYPE, ContainerMetrics

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)

PENDING, RUNNING, TERMINATING, GONE = "Pending", "Running", "Terminating", "Gone"

# How often a crash-looping container "exits" (real kubelets back off from 10 s up;
# the sandbox keeps it short so that a test sees the restart count climb quickly).
CRASH_INTERVAL = 1.0
# Exit codes: a crash-looping container exits 1; a killed one was sent SIGKILL (128 + 9).
CRASH_EXIT_CODE, KILL_EXIT_CODE = 1, 137


@dataclass
class PodSpec:
    """What a front end asks the runtime to run."""

    image: str
    labels: dict[str, str]
    # [{"containerPort": 8000, "name": "http"}, ...]: the pod listens on each, at its own IP.
    container_ports: list[dict] = field(default_factory=list)
    # The deployment (K8s) or application (BCS) the pod belongs to, for its answer to GET /.
    workload: str = ""
    # The pod's namespace and which front end runs it ("kubernetes", "bcs-mesos"): scrape target labels.
    namespace: str = ""
    platform: str = ""

    def ports(self) -> list[dict]:
        return self.container_ports or [{"containerPort": DEFAULT_PORT, "name": ""}]


# A pod that declares no port still listens somewhere, as a real container would.
DEFAULT_PORT = 8080


class Pod:
    def __init__(
        self, runtime: Runtime, name: str, spec: PodSpec, on_change: Callable[[Pod], None], ip: str = "127.0.0.1"
    ):
        self.runtime = runtime
        self.name = name
        self.spec = spec
        self._on_change = on_change
        self.state = PENDING
        self.ready = False
        self.restart_count = 0
        self.created_at = time.time()
        self.started_at: float | None = None
        self.ready_since: float | None = None
        self.deletion_requested_at: float | None = None
        # Each pod has its own loopback IP and listens there on its declared container
        # ports, so that podIP:containerPort works as in a cluster.  When such a port is
        # taken (a wildcard listener elsewhere on the machine), the pod falls back to an
        # ephemeral port; the runtime's proxies route by the real one.
        self.ip = ip
        self.listening: dict[int, int] = {}  # containerPort -> port actually bound
        self.served = 0
        self._servers: list[asyncio.base_events.Server] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._failing = False
        # container exits (crash-loop ticks and kills), the last one's code and times
        self.exits = 0
        self.last_exit_code: int | None = None
        self.last_started_at: float | None = None
        self.finished_at: float | None = None
        self.down_until: float | None = None  # killed: dead until the kubelet restarts it
        self._warming = False  # restarted after a kill, not ready yet: 503
        self.unready_until: float | None = None  # readiness held failing until then
        self.metrics = ContainerMetrics()  # this container run's counters (GET /metrics)
        # the first container port's bound port, kept while the container is dead (killed):
        # Prometheus goes on scraping it and sees it down, as it would a real pod's
        self.scrape_port: int | None = None

    # -- identity -------------------------------------------------------------------
    @property
    def image(self) -> str:
        return self.spec.image

    @property
    def labels(self) -> dict[str, str]:
        return self.spec.labels

    @property
    def color(self) -> str:
        """The pod's color: its ``color`` label, else the blue/green suffix of its workload."""
        if "color" in self.labels:
            return self.labels["color"]
        for value in [self.spec.workload, *self.labels.values()]:
            for color in ("blue", "green"):
                if value.endswith(color):
                    return color
        return ""

    @property
    def behaviour(self) -> Behaviour:
        return self.runtime.behaviour_for(self.image)

    @property
    def host(self) -> str:
        return self.ip

    @property
    def port(self) -> int | None:
        """The bound port of the first container port."""
        return next(iter(self.listening.values()), None)

    @property
    def address(self) -> tuple[str, int] | None:
        return (self.ip, self.port) if self.port else None

    def address_for(self, port: int | str) -> tuple[str, int] | None:
        """Where to reach the container port given by number or by name (a Service's targetPort)."""
        for declared in self.spec.ports():
            number = int(declared["containerPort"])
            if port == number or (isinstance(port, str) and port and declared.get("name") == port):
                bound = self.listening.get(number)
                return (self.ip, bound) if bound else None
        return None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pod {self.name}")

    def wake(self) -> None:
        """Re-read the behaviour now (after an override from the control endpoint)."""
        self._wake.set()

    def terminate(self) -> None:
        if self.deletion_requested_at is None:
            self.deletion_requested_at = time.time()
            self._changed()
            self.wake()

    def kill(self, down: float) -> None:
        """The container is killed (exit code 137): it stops listening now and is started again
        ``down`` seconds later, then becomes ready after its ready-after as a new container does."""
        now = time.time()
        self.exits += 1
        self.last_exit_code = KILL_EXIT_CODE
        self.last_started_at, self.finished_at = self.started_at, now
        self.down_until = now + down
        self._close_listeners()
        self._failing = False
        self.ready, self.ready_since = False, None
        self._changed()
        self.wake()

    def hold_unready(self, seconds: float) -> None:
        """Readiness fails (and the pod answers 503) for ``seconds``, then passes again."""
        self.unready_until = time.time() + seconds
        self.wake()

    @property
    def down(self) -> bool:
        return self.down_until is not None

    @property
    def held_unready(self) -> bool:
        return self.unready_until is not None and time.time() < self.unready_until

    async def wait_gone(self) -> None:
        if self._task:
            await asyncio.shield(self._task)

    def _changed(self) -> None:
        for callback in [self._on_change, *self.runtime.pod_watchers]:
            try:
                callback(self)
            except Exception:  # a front end's bookkeeping must never kill a pod
                log.exception("pod change callback failed for %s", self.name)

    def _set(self, **values) -> None:
        changed = any(getattr(self, k) != v for k, v in values.items())
        for k, v in values.items():
            setattr(self, k, v)
        if changed:
            self._changed()

    async def _listen(self) -> None:
        for declared in self.spec.ports():
            number = int(declared["containerPort"])
            try:
                server = await asyncio.start_server(self._serve, self.ip, number, reuse_address=True)
            except OSError:
                log.warning("pod %s: %s:%s is taken; listening on an ephemeral port", self.name, self.ip, number)
                server = await asyncio.start_server(self._serve, self.ip, 0)
            self._servers.append(server)
            self.listening[number] = server.sockets[0].getsockname()[1]
        self.metrics = ContainerMetrics()  # a new container counts from zero
        self.scrape_port = self.port

    def _close_listeners(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()
        self.listening.clear()

    async def _run(self) -> None:
        try:
            await self._listen()
            self.started_at = time.time()
            self._set(state=RUNNING)
            await self._live()
        finally:
            self._close_listeners()
            self._set(state=GONE, ready=False)

    async def _live(self) -> None:
        last_crash = time.time()
        while True:
            now = time.time()
            if self.deletion_requested_at is not None:
                self._set(state=TERMINATING, ready=False)
                remaining = self.deletion_requested_at + self.behaviour.stop_delay - now
                if remaining <= 0:
                    return
                await self._sleep(remaining)
                continue
            if self.down_until is not None:
                # killed: dead until the kubelet starts the container again
                if now < self.down_until:
                    await self._sleep(self.down_until - now)
                    continue
                await self._listen()
                self.down_until = None
                self._warming = True
                self.started_at = now = time.time()
                last_crash = now
                self._set(restart_count=self.restart_count + 1)
            behaviour = self.behaviour
            timeout = None
            held = self.unready_until is not None and now < self.unready_until
            if behaviour.crashloop:
                # The container exits and the kubelet restarts it: never ready.
                self._failing = False
                self._set(ready=False, ready_since=None)
                due = last_crash + CRASH_INTERVAL
                if now >= due:
                    last_crash = now
                    self.exits += 1
                    self.last_exit_code = CRASH_EXIT_CODE
                    self.last_started_at, self.finished_at = self.started_at, now
                    self.metrics = ContainerMetrics(now)  # the restarted process counts from zero
                    self._set(restart_count=self.restart_count + 1)
                    due = now + CRASH_INTERVAL
                timeout = due - now
            elif behaviour.never_ready:
                self._failing = False
                self._set(ready=False, ready_since=None)
            elif held:
                # an injected readiness failure: not ready until it is over, then as before
                self._set(ready=False, ready_since=None)
                timeout = self.unready_until - now
            else:
                ready_at = (self.started_at or now) + behaviour.ready_after
                if now < ready_at:
                    timeout = ready_at - now
                elif self.ready_since is None and not self._failing:
                    self._warming = False
                    self._set(ready=True, ready_since=now)
                if self.ready_since is not None and behaviour.fail_after is not None:
                    fail_at = self.ready_since + behaviour.fail_after
                    if now >= fail_at:
                        self._failing = True
                        self._set(ready=False, ready_since=None)
                    else:
                        timeout = fail_at - now
                elif self._failing and behaviour.fail_after is None:
                    # The failure was overridden away: the probe passes again.
                    self._failing = False
                    self._set(ready=True, ready_since=now)
            await self._sleep(timeout)

    async def _sleep(self, timeout: float | None) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    # -- HTTP -----------------------------------------------------------------------
    def answer(self) -> dict:
        return {
            "deployment": self.spec.workload,
            "pod": self.name,
            "image": self.image,
            "color": self.color,
            "labels": self.labels,
        }

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            began = time.perf_counter()
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, _, rest = request_line.partition(" ")
            path = rest.split(" ", 1)[0]
            self.served += 1
            metrics = self.metrics
            ordinary = False
            content_type, payload = "application/json", b""
            if path == "/metrics" or path.startswith("/metrics?"):
                status, content_type, payload = "200 OK", CONTENT_TYPE, metrics.render().encode()
            elif self._failing or self.behaviour.crashloop or self.held_unready or self._warming:
                status, body = "503 Service Unavailable", {"error": "unhealthy", **self.answer()}
                ordinary = not path.startswith("/healthz")
            elif path.startswith("/healthz"):
                status, body = (
                    ("200 OK", {"ready": True}) if self.ready else ("503 Service Unavailable", {"ready": False})
                )
            else:
                ordinary = True
                behaviour = self.behaviour
                n, metrics.handled = metrics.handled, metrics.handled + 1
                if behaviour.latency > 0:
                    await asyncio.sleep(behaviour.latency)
                    if self.down or self.metrics is not metrics:
                        return  # the container died meanwhile: the connection goes with it
                if behaviour.errors(n):
                    status, body = "500 Internal Server Error", {"error": "injected", **self.answer()}
                else:
                    status, body = "200 OK", self.answer()
            if not payload:
                payload = json.dumps(body).encode()
            headers = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(headers + (b"" if method == "HEAD" else payload))
            await writer.drain()
            if ordinary:
                metrics.observe(method, int(status.split(" ", 1)[0]), time.perf_counter() - began)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
