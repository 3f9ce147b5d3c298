"""Services: cluster IP and node port allocation, the kube-proxy stand-in (one runtime
proxy per clusterIP:port, plus 127.0.0.1:nodePort for NodePort/LoadBalancer services),
and the endpoints and endpointslice controllers.

A proxy asks ``backends()`` on every new connection, and that reads the Service as
stored *now*, except for its selector: that is the one kube-proxy has programmed, which
lags a change by ``runtime.propagation.delay`` (sandbox/runtime/propagation.py).  So a
selector change re-routes new connections that much later, without reopening anything,
while the Endpoints and EndpointSlices follow the stored selector at once.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
import random
import socket
from typing import TYPE_CHECKING

from sandbox.runtime.runtime import IpPool, addresses, matches

from . import resources as R
from .errors import GoRepr, invalid, raise_invalid
from .store import new_uid, now_iso
from .workloads import owner_ref, random_suffix

if TYPE_CHECKING:
    from .cluster import Cluster

log = logging.getLogger(__name__)

MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME = "kubernetes.io/service-name"


def needs_node_ports(svc: dict) -> bool:
    return svc["spec"].get("type") in ("NodePort", "LoadBalancer")


def needs_cluster_ip(svc: dict) -> bool:
    return svc["spec"].get("type") != "ExternalName"


class Services:
    def __init__(self, cluster: Cluster):
        self.c = cluster
        self.network = ipaddress.ip_network(cluster.settings.service_network)
        self.ips = IpPool(cluster.settings.service_network)
        self.used_ips: dict[str, tuple[str, str]] = {}
        self.node_ports: dict[int, tuple[str, str]] = {}
        self.open: dict[tuple[str, str], set[str]] = {}  # service -> runtime proxy keys
        self.slice_names: dict[tuple[str, str], str] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @staticmethod
    def drop_type_dependent(new: dict, old: dict) -> None:
        """dropTypeDependentFields: a type change away from NodePort/LoadBalancer (or to
        ExternalName) clears what the old type had allocated, unless the request changed it."""
        if needs_node_ports(old) and not needs_node_ports(new):
            old_ports = {
                (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old["spec"].get("ports") or []
            }
            for p in new["spec"].get("ports") or []:
                if p.get("nodePort") and p["nodePort"] == old_ports.get((p.get("port"), p.get("protocol", "TCP"))):
                    del p["nodePort"]
            if new["spec"].get("externalTrafficPolicy") == old["spec"].get("externalTrafficPolicy"):
                new["spec"].pop("externalTrafficPolicy", None)
        if needs_cluster_ip(old) and not needs_cluster_ip(new):
            if new["spec"].get("clusterIP") == old["spec"].get("clusterIP"):
                new["spec"].pop("clusterIP", None)
                new["spec"].pop("clusterIPs", None)

    # -- allocation (during create/update, before the object is stored) -----------------
    def allocate(self, svc: dict, old: dict | None) -> None:
        """Fill clusterIP(s) and nodePorts, raising 422 as the real allocators do.  Nothing
        is committed here: ``commit`` records what the stored object holds."""
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        spec = svc["spec"]
        kind, group = "Service", ""
        errs = []
        if old is not None:
            # patchAllocatedValues: an update that leaves them out keeps what was allocated
            if needs_cluster_ip(old) and needs_cluster_ip(svc) and not spec.get("clusterIP"):
                spec["clusterIP"] = old["spec"].get("clusterIP")
                spec["clusterIPs"] = copy.deepcopy(old["spec"].get("clusterIPs"))
            if needs_node_ports(old) and needs_node_ports(svc):
                old_ports = {
                    (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old["spec"].get("ports") or []
                }
                for p in spec.get("ports") or []:
                    if not p.get("nodePort") and old_ports.get((p.get("port"), p.get("protocol", "TCP"))):
                        p["nodePort"] = old_ports[(p.get("port"), p.get("protocol", "TCP"))]
        if needs_cluster_ip(svc):
            ip = spec.get("clusterIP")
            if not ip:
                ip = self._free_ip()
            elif ip != "None":
                try:
                    inside = ipaddress.ip_address(ip) in self.network
                except ValueError:
                    inside = False
                    errs.append(
                        invalid(
                            "spec.clusterIPs[0]", ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                        )
                    )
                if not errs and not inside:
                    errs.append(
                        invalid(
                            "spec.clusterIPs",
                            GoRepr('[]string{"' + ip + '"}'),
                            f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid "
                            f"range. The range of valid IPs is {self.network}",
                        )
                    )
                elif not errs and self.used_ips.get(ip, (ns, name)) != (ns, name):
                    errs.append(
                        invalid(
                            "spec.clusterIPs",
                            GoRepr('[]string{"' + ip + '"}'),
                            f"failed to allocate IP {ip}: provided IP is already allocated",
                        )
                    )
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
            if ip != "None" or True:
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
        if needs_node_ports(svc):
            taken_here: set[int] = set()
            for i, p in enumerate(spec.get("ports") or []):
                wanted = p.get("nodePort")
                if wanted:
                    owner = self.node_ports.get(wanted)
                    if (owner is not None and owner != (ns, name)) or wanted in taken_here:
                        errs.append(invalid(f"spec.ports[{i}].nodePort", wanted, "provided port is already allocated"))
                    taken_here.add(wanted)
            for p in spec.get("ports") or []:
                if not p.get("nodePort"):
                    p["nodePort"] = self._free_node_port(taken_here)
                    taken_here.add(p["nodePort"])
        raise_invalid(kind, group, name, errs)

    def _free_ip(self) -> str:
        while True:
            ip = self.ips.allocate()
            if ip not in self.used_ips:
                return ip

    def _free_node_port(self, also_taken: set[int]) -> int:
        low, high = self.c.settings.node_port_range
        candidates = [p for p in range(low, high + 1) if p not in self.node_ports and p not in also_taken]
        random.shuffle(candidates)
        for port in candidates:
            if _port_free(self.c.settings.host, port):
                return port
        raise_invalid("Service", "", "", [invalid("spec.ports[0].nodePort", 0, "range is full")])
        return 0

    def commit(self, svc: dict, old: dict | None) -> None:
        key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
        self.release(key, keep=svc)
        ip = svc["spec"].get("clusterIP")
        if ip and ip != "None":
            self.used_ips[ip] = key
        for p in svc["spec"].get("ports") or []:
            if p.get("nodePort") and needs_node_ports(svc):
                self.node_ports[p["nodePort"]] = key

    def unreserve(self, svc: dict) -> None:
        """A dry run allocated nothing: hand back a cluster IP it took from the pool."""
        ip = svc["spec"].get("clusterIP")
        if ip and ip != "None" and ip not in self.used_ips:
            self.ips.release(ip)

    def release(self, key: tuple[str, str], keep: dict | None = None) -> None:
        keep_ip = keep["spec"].get("clusterIP") if keep else None
        keep_ports = {p.get("nodePort") for p in (keep["spec"].get("ports") or [])} if keep else set()
        for ip, owner in list(self.used_ips.items()):
            if owner == key and ip != keep_ip:
                del self.used_ips[ip]
                self.ips.release(ip)
        for port, owner in list(self.node_ports.items()):
            if owner == key and port not in keep_ports:
                del self.node_ports[port]

    # -- proxies ------------------------------------------------------------------------
    async def sync_proxies(self, ns: str, name: str) -> None:
        """Make the listening proxies match the stored Service (serialised per Service:
        the API handler and the event listener may both ask)."""
        lock = self._locks.setdefault((ns, name), asyncio.Lock())
        async with lock:
            await self._sync_proxies(ns, name)
        if self.c.store.peek(R.SERVICES, ns, name) is None and not lock.locked():
            self._locks.pop((ns, name), None)

    async def _sync_proxies(self, ns: str, name: str) -> None:
        svc = self.c.store.peek(R.SERVICES, ns, name)
        wanted: dict[str, tuple[str, int, object]] = {}
        if svc is not None:
            ip = svc["spec"].get("clusterIP")
            for p in svc["spec"].get("ports") or []:
                if p.get("protocol", "TCP") != "TCP":
                    continue
                backends = self._backends(ns, name, p["port"])
                if ip and ip != "None":
                    wanted[f"kube/{ns}/{name}/{p['port']}"] = (ip, p["port"], backends)
                if p.get("nodePort") and needs_node_ports(svc):
                    wanted[f"kube/{ns}/{name}/nodePort/{p['nodePort']}"] = (
                        self.c.settings.host,
                        p["nodePort"],
                        backends,
                    )
        current = self.open.setdefault((ns, name), set())
        for key in list(current):
            proxy = self.c.runtime.proxies.get(key)
            if key not in wanted or (proxy is not None and (proxy.host, proxy.port) != wanted[key][:2]):
                await self.c.runtime.close_proxy(key)
                current.discard(key)
        for key, (host, port, backends) in wanted.items():
            if key in current:
                self.c.runtime.proxies[key].retarget(backends)
                continue
            try:
                await self.c.runtime.open_proxy(key, host, port, backends)
                current.add(key)
            except OSError as e:
                # Something else on this machine holds the port: the Service still exists,
                # as it would in a cluster whose node has a conflicting listener.
                log.warning("service %s/%s: cannot listen on %s:%s (%s)", ns, name, host, port, e)
        if svc is None:
            self.open.pop((ns, name), None)

    def _backends(self, ns: str, name: str, service_port: int):
        store, workloads, runtime = self.c.store, self.c.workloads, self.c.runtime

        def backends() -> list[tuple[str, int]]:
            svc = store.peek(R.SERVICES, ns, name)
            if svc is None:
                return []
            selector = runtime.propagation.routed(("kube", ns, name), svc["spec"].get("selector") or None) or {}
            port = next((p for p in svc["spec"].get("ports") or [] if p.get("port") == service_port), None)
            if port is None or not selector:
                return []
            pods = runtime.ready_pods(
                lambda p: (
                    (r := workloads.records.get(p.name)) is not None
                    and r.namespace == ns
                    and r.deletion_timestamp is None
                    and not r.evicted
                    and matches(selector, p.labels)
                )
            )
            return addresses(pods, port.get("targetPort", service_port))

        return backends

    # -- endpoints and endpointslices -----------------------------------------------------
    def sync_endpoints(self, ns: str) -> None:
        for svc in list(self.c.store.list(R.SERVICES, ns)):
            self._sync_service_endpoints(svc)

    def _resolve_port(self, template: dict, target) -> int | None:
        if isinstance(target, int):
            return target
        for c in template["spec"].get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("name") == target:
                    return p["containerPort"]
        return None

    def _sync_service_endpoints(self, svc: dict) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        selector = svc["spec"].get("selector")
        if not selector:
            return
        # an evicted pod is terminal (phase Failed): the controllers leave it out at once
        records = sorted(
            (
                r
                for r in self.c.workloads.records.values()
                if r.namespace == ns and matches(selector, r.pod.labels) and r.pod.state != "Pending" and not r.evicted
            ),
            key=lambda r: tuple(int(x) for x in r.pod.ip.split(".")),
        )
        subsets: dict[tuple, dict] = {}
        slice_ports: list[dict] | None = None
        slice_endpoints = []
        for r in records:
            ports = []
            for p in svc["spec"].get("ports") or []:
                number = self._resolve_port(r.template, p.get("targetPort", p["port"]))
                if number is None:
                    continue
                entry = {"port": number, "protocol": p.get("protocol", "TCP")}
                if p.get("name"):
                    entry = {"name": p["name"], **entry}
                ports.append(entry)
            if not ports:
                continue
            terminating = r.deletion_timestamp is not None
            address = {
                "ip": r.pod.ip,
                "nodeName": "sandbox",
                "targetRef": {"kind": "Pod", "namespace": ns, "name": r.pod.name, "uid": r.uid},
            }
            if not terminating:
                key = tuple(sorted((p.get("name", ""), p["port"]) for p in ports))
                subset = subsets.setdefault(key, {"ports": ports})
                subset.setdefault("addresses" if r.pod.ready else "notReadyAddresses", []).append(address)
            if slice_ports is None:
                slice_ports = ports
            slice_endpoints.append(
                {
                    "addresses": [r.pod.ip],
                    "conditions": {
                        "ready": r.pod.ready and not terminating,
                        "serving": r.pod.ready,
                        "terminating": terminating,
                    },
                    "targetRef": address["targetRef"],
                    "nodeName": "sandbox",
                }
            )
        ordered = []
        for subset in subsets.values():
            ordered.append({k: subset[k] for k in ("addresses", "notReadyAddresses", "ports") if k in subset})
        labels = dict(svc["metadata"].get("labels") or {})
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
        }
        if ordered:
            endpoints["subsets"] = ordered
        self._write(R.ENDPOINTS, endpoints)
        slice_name = self.slice_names.get((ns, name))
        if slice_name is None:
            slice_name = f"{name}-{random_suffix()}"
            self.slice_names[(ns, name)] = slice_name
        es = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": slice_name,
                "generateName": f"{name}-",
                "namespace": ns,
                "labels": {**labels, MANAGED_BY: "endpointslice-controller.k8s.io", SERVICE_NAME: name},
                "ownerReferences": [owner_ref(svc, "Service", "v1")],
            },
            "addressType": "IPv4",
            "endpoints": slice_endpoints,
        }
        if slice_ports:
            es["ports"] = slice_ports
        self._write(R.ENDPOINTSLICES, es)

    def _write(self, resource: R.Resource, obj: dict) -> None:
        meta = obj["metadata"]
        current = self.c.store.peek(resource, meta["namespace"], meta["name"])
        if current is None:
            meta.update(
                uid=new_uid(),
                creationTimestamp=now_iso(),
                **({"generation": 1} if resource is R.ENDPOINTSLICES else {}),
            )
            self.c.store.create(resource, obj)
            return
        for key in ("uid", "creationTimestamp", "generation"):
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
        if {k: v for k, v in obj.items() if k != "metadata"} != {
            k: v for k, v in current.items() if k != "metadata"
        } and resource is R.ENDPOINTSLICES:
            meta["generation"] = current["metadata"].get("generation", 1) + 1
        self.c.store.update(resource, obj)

    def forget(self, ns: str, name: str) -> None:
        """The Service is gone: its endpoints go with it."""
        self.c.store.delete(R.ENDPOINTS, ns, name)
        slice_name = self.slice_names.pop((ns, name), None)
        if slice_name:
            self.c.store.delete(R.ENDPOINTSLICES, ns, slice_name)
        self.release((ns, name))


def _port_free(host: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
