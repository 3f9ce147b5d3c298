"""``python -m sandbox``: run the sandbox in the foreground (``make sandbox``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from .server import Sandbox
from .settings import Settings


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high)


def main(argv: list[str] | None = None) -> None:
    settings, verbose = parse(argv)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(settings))


def parse(argv: list[str] | None = None) -> tuple[Settings, bool]:
    """The command line as Settings (and whether to log verbosely)."""
    defaults = Settings()
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    p.add_argument(
        "--state-dir",
        type=Path,
        default=defaults.state_dir,
        help="where the kubeconfig, CA, env and sandbox.json go (default .sandbox)",
    )
    p.add_argument("--kube-port", type=int, default=defaults.kube_port, help="Kubernetes API port (0: any free)")
    p.add_argument("--bcs-port", type=int, default=defaults.bcs_port, help="BCS API gateway port (0: any free)")
    p.add_argument(
        "--control-port", type=int, default=defaults.control_port, help="control endpoint port (0: any free)"
    )
    p.add_argument(
        "--node-port-range", type=_range, default=defaults.node_port_range, help="NodePort range, e.g. 30000-32767"
    )
    p.add_argument("--pod-network", default=defaults.pod_network, help="loopback block for pod IPs")
    p.add_argument("--service-network", default=defaults.service_network, help="loopback block for cluster IPs")
    p.add_argument(
        "--lb-port-offset",
        type=int,
        default=defaults.lb_port_offset,
        help="BCS load-balancer port = servicePort + offset",
    )
    p.add_argument(
        "--ready-after", type=float, default=defaults.ready_after, help="seconds a pod needs to become ready by default"
    )
    p.add_argument(
        "--propagation-delay",
        type=float,
        default=defaults.propagation_delay,
        help="seconds before service proxies apply a selector change (default 0.3)",
    )
    p.add_argument("--token", default=None, help="API token (default: a new random one)")
    p.add_argument("--cluster-id", default=defaults.bcs_cluster_id, help="BCS cluster id")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.propagation_delay < 0:
        p.error("--propagation-delay: must be >= 0")
    settings = Settings(
        kube_port=args.kube_port,
        bcs_port=args.bcs_port,
        control_port=args.control_port,
        node_port_range=args.node_port_range,
        pod_network=args.pod_network,
        service_network=args.service_network,
        lb_port_offset=args.lb_port_offset,
        ready_after=args.ready_after,
        propagation_delay=args.propagation_delay,
        bcs_cluster_id=args.cluster_id,
        state_dir=args.state_dir,
        **({"token": args.token} if args.token else {}),
    )
    return settings, args.verbose


async def _serve(settings: Settings) -> None:
    sandbox = Sandbox(settings)
    endpoints = await sandbox.start()
    print(f"sandbox: Kubernetes API {endpoints.kube_url}", flush=True)
    print(f"sandbox: BCS API        {endpoints.bcs_url} (cluster {endpoints.bcs_cluster_id})", flush=True)
    print(f"sandbox: control        {endpoints.control_url}", flush=True)
    print(f"sandbox: kubeconfig     {endpoints.kubeconfig}", flush=True)
    print(f"sandbox: prometheus     {endpoints.prometheus_config} (scrapes every pod)", flush=True)
    print(f"sandbox: connections    source {endpoints.env_file}", flush=True)
    print("sandbox: ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sandbox.stop()


if __name__ == "__main__":
    main()
