"""Everything a sandbox instance is configured with (ports, token, delays)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Settings:
    # Loopback only: nothing of the sandbox is reachable from another machine.
    host: str = "127.0.0.1"
    # Ports of the three front ends; 0 picks a free one (tests do that).  The defaults
    # keep clear of Airflow's 8080 and of the NodePort range.
    kube_port: int = 16443
    bcs_port: int = 16444
    control_port: int = 16445
    # Loopback blocks for pod IPs (each pod listens on its own IP at its container ports)
    # and for Service cluster IPs (each Service's proxy listens on clusterIP:port).
    pod_network: str = "127.10.0.0/16"
    service_network: str = "127.11.0.0/16"
    # Kubernetes allocates a NodePort from this range when a Service asks for none.
    node_port_range: tuple[int, int] = (30000, 32767)
    # A BCS service with the BCSGROUP label is exposed on servicePort + this offset
    # (bcs-loadbalance listens on servicePort itself; the offset keeps the seed's 8080
    # away from Airflow's).
    lb_port_offset: int = 10000
    # One token for every front end (bearer token in the kubeconfig, BCS gateway token,
    # control endpoint).
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    bcs_cluster_id: str = "BCS-MESOS-10000"
    # Seconds a pod takes to become ready when its image tag says nothing else.
    ready_after: float = 1.0
    # Seconds after a selector change before the service proxies (kube-proxy, bcs-loadbalance)
    # route new connections by it; API objects (endpoints) change at once.  Changeable at run
    # time through the control endpoint (POST /settings).
    propagation_delay: float = 0.3
    # Interval of the simulated bcs-mesos-watch / controller loops (seconds).
    bcs_sync_interval: float = 0.2
    # Seconds the BCS scheduler waits between CheckDeleteDeployment passes (3 s upstream).
    bcs_delete_check_interval: float = 0.5
    # How many watch events the Kubernetes front end keeps for resourceVersion resumes;
    # older versions get 410 Gone.
    kube_watch_history: int = 1000
    state_dir: Path = Path(".sandbox")
