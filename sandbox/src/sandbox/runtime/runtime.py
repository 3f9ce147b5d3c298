"""The runtime both front ends share: pod groups that own real pods, service proxies
(and how late they apply selector changes), behaviour overrides, the API request counter,
injected faults, pod faults and the audit log.

A *pod group* is what a ReplicaSet is to Kubernetes and an application is to BCS
Mesos: a desired number of identical pods from one template.  Front ends keep
their own API objects (with their own names, versions and status rules) and ask
the runtime to run the pods; the runtime calls them back on every pod change so
that they can update status and send watch events.
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import ipaddress
import itertools
import logging
import threading
from collections.abc import Callable, Iterable

from ..audit import Audit
from ..faults import Faults
from .behaviour import Behaviour
from .pod import GONE, RUNNING, Pod, PodSpec
from .propagation import Propagation
from .proxy import Backends, ServiceProxy

log = logging.getLogger(__name__)

PodListener = Callable[[Pod], None]
# A front end's eviction: (the pod's group, the pod) -> None.
Evictor = Callable[["PodGroup", Pod], None]


class PodFaultError(Exception):
    """A pod fault that cannot be carried out; ``status`` is the control endpoint's answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class PodGroup:
    """A desired number of pods from one spec; scales up and down like a ReplicaSet."""

    def __init__(
        self, runtime: Runtime, key: str, spec: PodSpec, name_pod: Callable[[int], str], on_change: PodListener
    ):
        self.runtime = runtime
        self.key = key
        self.spec = spec
        self.replicas = 0
        self.pods: list[Pod] = []  # live pods (not yet asked to terminate)
        self.terminating: list[Pod] = []  # asked to stop, not yet gone
        self._name_pod = name_pod
        self._on_change = on_change
        self._index = 0

    def scale(self, replicas: int) -> None:
        self.replicas = max(0, replicas)
        while len(self.pods) < self.replicas:
            self._index += 1
            pod = Pod(
                self.runtime,
                self._name_pod(self._index),
                self.spec,
                self._pod_changed,
                ip=self.runtime.allocate_pod_ip(),
            )
            self.pods.append(pod)
            self.runtime._register(pod)
            pod.start()
            self._on_change(pod)
        while len(self.pods) > self.replicas:
            # Like the ReplicaSet controller: remove not-ready pods first, then the newest.
            victim = sorted(self.pods, key=lambda p: (p.ready, p.created_at))[0]
            self.pods.remove(victim)
            self.terminating.append(victim)
            victim.terminate()

    def delete(self) -> None:
        self.scale(0)

    @property
    def all_pods(self) -> list[Pod]:
        return self.pods + self.terminating

    @property
    def gone(self) -> bool:
        return not self.pods and not self.terminating

    def ready_pods(self) -> list[Pod]:
        return [p for p in self.pods if p.ready]

    def _pod_changed(self, pod: Pod) -> None:
        if pod.state == GONE:
            if pod in self.terminating:
                self.terminating.remove(pod)
            self.runtime._unregister(pod)
            self.runtime.release_pod_ip(pod.ip)
        self._on_change(pod)


class Runtime:
    def __init__(
        self, default_ready_after: float = 1.0, pod_network: str = "127.10.0.0/16", propagation_delay: float = 0.0
    ):
        self.default_ready_after = default_ready_after
        self._pod_ips = IpPool(pod_network)
        self.groups: dict[str, PodGroup] = {}
        self.pods: dict[str, Pod] = {}
        self.proxies: dict[str, ServiceProxy] = {}
        self._overrides: list[tuple[str, Behaviour]] = []
        self._requests: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._requests_lock = threading.Lock()
        self.faults = Faults()
        self.propagation = Propagation(propagation_delay)
        self.audit = Audit()
        # group key prefix ("kube", "bcs") -> how that front end evicts one of its pods
        self.evictors: dict[str, Evictor] = {}
        # called after the front end's own callback on every pod change (the scrape targets)
        self.pod_watchers: list[PodListener] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- pods -----------------------------------------------------------------------
    def group(self, key: str, spec: PodSpec, name_pod: Callable[[int], str], on_change: PodListener) -> PodGroup:
        if key in self.groups:
            raise KeyError(f"pod group {key} exists")
        group = PodGroup(self, key, spec, name_pod, on_change)
        self.groups[key] = group
        return group

    def drop_group(self, key: str) -> None:
        """Forget a group once its pods are gone (call group.delete() first)."""
        self.groups.pop(key, None)

    def allocate_pod_ip(self) -> str:
        return self._pod_ips.allocate()

    def release_pod_ip(self, ip: str) -> None:
        self._pod_ips.release(ip)

    def _register(self, pod: Pod) -> None:
        self.pods[pod.name] = pod

    def _unregister(self, pod: Pod) -> None:
        if self.pods.get(pod.name) is pod:
            del self.pods[pod.name]

    def ready_pods(self, predicate: Callable[[Pod], bool]) -> list[Pod]:
        return sorted((p for p in self.pods.values() if p.ready and predicate(p)), key=lambda p: p.name)

    # -- behaviours -----------------------------------------------------------------
    def behaviour_for(self, image: str) -> Behaviour:
        for pattern, behaviour in reversed(self._overrides):
            if fnmatch.fnmatchcase(image, pattern):
                return behaviour
        return Behaviour.from_image(image, self.default_ready_after)

    def override_behaviour(self, image_pattern: str, spec: str) -> Behaviour:
        """From now on pods whose image matches ``image_pattern`` (a glob) behave as ``spec`` says."""
        behaviour = Behaviour.parse(spec, self.default_ready_after)
        self._overrides.append((image_pattern, behaviour))
        for pod in self.pods.values():
            if fnmatch.fnmatchcase(pod.image, image_pattern):
                pod.wake()
        return behaviour

    def clear_overrides(self) -> None:
        self._overrides.clear()
        for pod in self.pods.values():
            pod.wake()

    # -- services -------------------------------------------------------------------
    async def open_proxy(self, key: str, host: str, port: int, backends: Backends) -> ServiceProxy:
        """Start (or retarget) the proxy named ``key``; raises OSError when the port is taken."""
        if key in self.proxies:
            self.proxies[key].retarget(backends)
            return self.proxies[key]
        proxy = ServiceProxy(host, port, backends, name=key)
        await proxy.start()
        self.proxies[key] = proxy
        return proxy

    async def close_proxy(self, key: str) -> None:
        proxy = self.proxies.pop(key, None)
        if proxy:
            await proxy.stop()

    # -- API request counts ---------------------------------------------------------
    def count_request(self, front_end: str, method: str, path: str) -> None:
        with self._requests_lock:
            self._requests[(front_end, method, path)] += 1

    def request_counts(self) -> list[dict]:
        with self._requests_lock:
            items = sorted(self._requests.items())
        return [{"api": api, "method": m, "path": p, "count": n} for (api, m, p), n in items]

    def reset_request_counts(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    # -- pod faults (the control endpoint's /pods/{name}/...) ---------------------------
    def _running_pod(self, name: str) -> Pod:
        pod = self.pods.get(name)
        if pod is None:
            raise PodFaultError(404, f"no pod named {name}")
        if pod.state != RUNNING or pod.deletion_requested_at is not None:
            state = pod.state if pod.deletion_requested_at is None else "Terminating"
            raise PodFaultError(409, f"pod {name} is {state}")
        return pod

    def kill_pod(self, name: str, down: float) -> Pod:
        pod = self._running_pod(name)
        if pod.down:
            raise PodFaultError(409, f"pod {name}'s container is already dead")
        pod.kill(down)
        return pod

    def hold_unready(self, name: str, seconds: float) -> Pod:
        pod = self._running_pod(name)
        pod.hold_unready(seconds)
        return pod

    def evict_pod(self, name: str) -> Pod:
        pod = self._running_pod(name)
        group = next((g for g in self.groups.values() if pod in g.pods), None)
        evictor = self.evictors.get(group.key.split("/", 1)[0]) if group is not None else None
        if evictor is None:
            raise PodFaultError(409, f"pod {name} belongs to no workload that can be evicted from")
        evictor(group, pod)
        return pod

    # -- shutdown -------------------------------------------------------------------
    async def shutdown(self) -> None:
        for key in list(self.proxies):
            await self.close_proxy(key)
        for pod in list(self.pods.values()):
            pod.deletion_requested_at = 0  # no grace on shutdown
            pod.wake()
        await asyncio.gather(*(p.wait_gone() for p in list(self.pods.values())), return_exceptions=True)


class IpPool:
    """Addresses handed out from a loopback block (all of 127.0.0.0/8 is local on Linux)."""

    def __init__(self, network: str):
        self.network = ipaddress.ip_network(network)
        # x.y.0.1 stays free: it reads like a gateway (and in 127.0.0.0/16 it is the machine's own)
        self._hosts = itertools.islice(self.network.hosts(), 1, None)
        self._free: list[str] = []
        self._used: set[str] = set()

    def allocate(self) -> str:
        ip = self._free.pop(0) if self._free else str(next(self._hosts))
        self._used.add(ip)
        return ip

    def release(self, ip: str) -> None:
        if ip in self._used:
            self._used.discard(ip)
            self._free.append(ip)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """An equality selector matches labels that contain every key with the same value.
    An empty selector matches nothing here (a Service with no selector has no endpoints)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def addresses(pods: Iterable[Pod], port: int | str | None = None) -> list[tuple[str, int]]:
    """Where a proxy reaches these pods: at ``port`` (number or name), else their first port."""
    found = (p.address if port is None else p.address_for(port) for p in pods)
    return [a for a in found if a]
