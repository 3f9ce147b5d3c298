"""BCS Mesos services: the scheduler's service API and endpoints, and the load balancer.

* create/update/delete: sched/api/api.go createService/updateService/deleteService.
  Update keeps the stored name, namespace, labels and TypeMeta; delete of a missing
  service succeeds (both stores' Delete ignore a missing node).
* endpoints: sched/scheduler/service_mgr.go syncEndpointInfo/buildEndpoint: the
  selector is matched against each application's metadata.labels (the deployment's
  labels); Running or Lost taskgroups of matching applications become endpoints;
  ports are matched by name; health check results are not consulted.
* load balancer: bcs-mesos-watch builds the exportservice that bcs-loadbalance
  serves for services labelled BCSGROUP (watch/cluster/etcd/exportservice.go): it
  matches the selector against the taskgroup's labels (deployment labels ∪ template
  labels) and, again, takes Running/Lost taskgroups whatever their health.  The
  sandbox serves it with one runtime proxy per service port on
  ``settings.host:servicePort + lb_port_offset``; backends are read when a
  connection arrives, by the selector bcs-loadbalance has applied: a selector change
  reaches it ``runtime.propagation.delay`` later (sandbox/runtime/propagation.py), while
  the endpoint records follow at once.  A pod that does not listen (yet) is never a
  backend.
"""

from __future__ import annotations

import copy
import logging

from sandbox.runtime.pod import RUNNING as POD_RUNNING
from sandbox.runtime.runtime import addresses

from .. import gojson
from . import audit, gotypes
from .envelope import SCHED_NOT_FOUND, SCHED_RESOURCE_EXIST, BcsError
from .model import LOST, RUNNING, selector_matches

log = logging.getLogger(__name__)

LB_LABEL = "BCSGROUP"


class ServiceOps:
    """Mixed into Scheduler."""

    def __init__(self):
        self.services: dict[tuple[str, str], dict] = {}  # Go BcsService values
        self._lb_failed: set[str] = set()  # proxy keys whose port was taken (logged once)

    # -- API --------------------------------------------------------------------------
    def create_service(self, svc: dict) -> None:
        key = (svc["ObjectMeta"]["NameSpace"], svc["ObjectMeta"]["Name"])
        if key in self.services:
            raise BcsError(SCHED_RESOURCE_EXIST, "service already exist")
        self.services[key] = svc
        audit.service_changed(self, key[0], key[1], "create", None, svc["Spec"]["Selector"])

    def update_service(self, svc: dict) -> None:
        key = (svc["ObjectMeta"]["NameSpace"], svc["ObjectMeta"]["Name"])
        current = self.services.get(key)
        if current is None:
            raise BcsError(SCHED_NOT_FOUND, "service not exist")
        svc = copy.deepcopy(svc)
        meta = svc["ObjectMeta"]
        meta["Name"] = current["ObjectMeta"]["Name"]
        meta["NameSpace"] = current["ObjectMeta"]["NameSpace"]
        meta["Labels"] = current["ObjectMeta"]["Labels"]
        svc["TypeMeta"] = current["TypeMeta"]
        self.services[key] = svc
        audit.service_changed(self, key[0], key[1], "update", current["Spec"]["Selector"], svc["Spec"]["Selector"])

    def delete_service(self, ns: str, name: str) -> None:
        gone = self.services.pop((ns, name), None)
        if gone is not None:
            audit.service_changed(self, ns, name, "delete", gone["Spec"]["Selector"], None)

    @staticmethod
    def service_json(svc: dict) -> dict:
        return gojson.encode(svc, gotypes.BcsService)

    # -- endpoints (service_mgr.go) --------------------------------------------------------
    def endpoint_json(self, svc: dict) -> dict:
        meta = svc["ObjectMeta"]
        eps = None
        for app in self.apps.values():
            if app.namespace != meta["NameSpace"]:
                continue
            if not selector_matches(svc["Spec"]["Selector"], app.object_meta.get("Labels")):
                continue
            for tg in sorted(app.taskgroups.values(), key=lambda t: t.index):
                if tg.status not in (RUNNING, LOST) or not tg.tasks:
                    continue
                eps = (eps or []) + [self._endpoint(svc, tg)]
        out = gojson.encode(svc["TypeMeta"], gotypes.TypeMeta)
        out["metadata"] = gojson.encode(meta, gotypes.ObjectMeta)
        out["eps"] = eps
        return out

    def _endpoint(self, svc: dict, tg) -> dict:
        """buildEndpoint: ports whose name equals a service port's name."""
        ports = []
        for task in tg.tasks:
            for mapping in self.port_mappings(tg, task):
                for service_port in svc["Spec"]["Ports"] or []:
                    if mapping["name"] == service_port["Name"]:
                        port = {
                            "name": mapping["name"],
                            "containerPort": mapping["containerPort"],
                            "hostIP": tg.host_ip,
                            "protocol": mapping["protocol"],
                        }
                        if mapping.get("hostPort"):
                            port = {
                                "name": mapping["name"],
                                "hostPort": mapping["hostPort"],
                                "containerPort": mapping["containerPort"],
                                "hostIP": tg.host_ip,
                                "protocol": mapping["protocol"],
                            }
                        ports.append(port)
        ep = {
            "networkMode": tg.network,
            "nodeIP": tg.host_ip,
            "containerIP": tg.pod_ip,
            "targetRef": {"kind": "taskgroup", "id": tg.id, "name": tg.name, "namespace": tg.namespace},
        }
        if ports:
            ep["ports"] = ports
        return ep

    @staticmethod
    def port_mappings(tg, task) -> list[dict]:
        """The task's port mappings after launch: in BRIDGE mode a hostPort of 0 gets a host port from
        the offer (task.go createContainerTaskInfo); in the sandbox that is the port the pod bound."""
        pod = tg.pod
        out = []
        for port in task.container.get("Ports") or []:
            host_port = port["HostPort"]
            if tg.network == "BRIDGE" and host_port == 0 and pod is not None:
                host_port = pod.listening.get(port["ContainerPort"], 0)
            out.append(
                {
                    "name": port["Name"],
                    "hostPort": host_port,
                    "containerPort": port["ContainerPort"],
                    "protocol": port["Protocol"],
                }
            )
        return out

    # -- load balancer ----------------------------------------------------------------------
    def lb_backends(self, svc_key: tuple[str, str], port_name: str) -> list[tuple[str, int]]:
        svc = self.services.get(svc_key)
        if svc is None:
            return []
        selector = self.runtime.propagation.routed(("bcs", self.cluster, *svc_key), svc["Spec"]["Selector"])
        pods = []
        for app in self.apps.values():
            if app.namespace != svc_key[0]:
                continue
            for tg in app.taskgroups.values():
                pod = tg.pod
                if tg.status not in (RUNNING, LOST) or pod is None or pod.state != POD_RUNNING:
                    continue
                if selector_matches(selector, tg.labels):
                    pods.append(pod)
        return addresses(sorted(pods, key=lambda p: p.name), port_name)

    def wanted_proxies(self) -> dict[str, tuple[tuple[str, str], str, int]]:
        wanted = {}
        for key, svc in self.services.items():
            if LB_LABEL not in (svc["ObjectMeta"]["Labels"] or {}):
                continue
            for port in svc["Spec"]["Ports"] or []:
                lb_port = port["Port"] + self.settings.lb_port_offset
                if not 0 < lb_port < 65536:
                    continue
                proxy_key = f"bcs/{self.cluster}/{key[0]}/{key[1]}/{port['Port']}"
                wanted[proxy_key] = (key, port["Name"], lb_port)
        return wanted

    async def reconcile_proxies(self) -> None:
        wanted = self.wanted_proxies()
        for proxy_key in [k for k in self.runtime.proxies if k.startswith(f"bcs/{self.cluster}/")]:
            current = self.runtime.proxies[proxy_key]
            if proxy_key not in wanted or current.port != wanted[proxy_key][2]:
                await self.runtime.close_proxy(proxy_key)
        for proxy_key, (svc_key, port_name, lb_port) in wanted.items():

            def backends(svc_key=svc_key, port_name=port_name):
                return self.lb_backends(svc_key, port_name)

            try:
                await self.runtime.open_proxy(proxy_key, self.settings.host, lb_port, backends)
                self._lb_failed.discard(proxy_key)
            except OSError as e:
                if proxy_key not in self._lb_failed:
                    log.warning(
                        "bcs load balancer: cannot listen on %s:%s for %s: %s",
                        self.settings.host,
                        lb_port,
                        proxy_key,
                        e,
                    )
                self._lb_failed.add(proxy_key)
