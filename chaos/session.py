"""A chaos session: the sandbox (its own, or the one a test already runs), the monitor, the
Airflow services when Airflow runs are asked for, and the runs."""

from __future__ import annotations

import time
from pathlib import Path

from . import env
from .observe import Monitor
from .runner import Context, run_all
from .scenario import generate


class Session:
    def __init__(
        self,
        work_dir: Path,
        slot: int = 6,
        endpoints=None,
        airflow_services=None,
        echo=print,
        traffic_interval: float = 0.1,
    ):
        """``endpoints``: a running sandbox's (else one is started in ``slot``); ``airflow_services``: a
        running tests/services AirflowServices (else one is started when an Airflow run is asked for)."""
        self.work_dir, self.slot = Path(work_dir), slot
        self.endpoints, self.echo = endpoints, echo
        self.traffic_interval = traffic_interval
        self._given_services = airflow_services
        self.services = None
        self.restart_env = None
        self._sandbox = self._stack = None

    def __enter__(self) -> Session:
        conftest = env.tests_conftest()
        if self.endpoints is None:
            self._sandbox = conftest.SandboxProcess(self.work_dir / "sandbox" / "state", self.slot)
            self.endpoints = self._sandbox.start()
            self.echo(f"sandbox up (slot {self.slot}); its log: {self._sandbox.log_path}")
        env.use_sandbox(self.endpoints)
        self.control = conftest.Control(self.endpoints)
        self.monitor = Monitor(self.control).start()
        return self

    def __exit__(self, *exc) -> None:
        self.monitor.stop()
        if self._stack is not None:
            self._stack.stop()
        if self._sandbox is not None:
            self._sandbox.stop()

    def airflow(self):
        """The Airflow services for the airflow driver: given (a test's), or started here."""
        if self.services is None and self._given_services is not None:
            from .drivers.airflow import FAST_DETECTION, Stack

            self.services = Stack.wrap(self._given_services, self.endpoints)
            # its components run with Airflow's default thresholds: a triggerer started again by the chaos
            # gets a short one, so that the new triggerer takes over the killed one's triggers in seconds
            self.restart_env = {k: v for k, v in FAST_DETECTION.items() if "TRIGGERER" in k}
        if self.services is None:
            from .drivers.airflow import Stack

            started = time.time()
            self._stack = self.services = Stack.start(self.work_dir / "airflow", self.endpoints)
            self.echo(f"Airflow services up in {time.time() - started:.0f}s; logs in {self.services.log_dir}")
        return self.services

    def context(self) -> Context:
        return Context(
            self.endpoints,
            self.control,
            self.monitor,
            self.work_dir,
            ready_after=0.5,
            traffic_interval=self.traffic_interval,
            services=self.services,
            restart_env=self.restart_env,
            echo=self.echo,
        )

    def run(
        self,
        seed: int,
        runs: int,
        concurrency: int = 8,
        airflow_lanes: int = 2,
        direct_only: bool = False,
        scenarios=None,
    ):
        scenarios = scenarios or [generate(seed + i, "direct" if direct_only else None) for i in range(runs)]
        if any(s.driver == "airflow" for s in scenarios):
            self.airflow()
        ctx = self.context()
        return run_all(scenarios, ctx, concurrency, airflow_lanes, on_result=lambda r: self.echo(r.line()))
