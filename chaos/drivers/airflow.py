"""The airflow driver: the release runs on the real Airflow services (api-server, scheduler,
dag-processor, triggerer; LocalExecutor, PostgreSQL), driven over REST as the UI drives them,
and the chaos kills their processes with SIGKILL and starts them again.

  Stack       the services: started here as tests/services/conftest.py starts them (its
              AirflowServices, services_env and PostgreSQL set-up, reused), with short heartbeat
              and health thresholds so that a killed task or triggerer is noticed in seconds; or a
              running one (the test session's ``airflow_services``)
  AirflowRun  one DAG run: trigger it, follow its task instances, clear a task, mark a task failed;
              its outcome, plan, note and failures read back over REST

Kills (``Stack.kill``): a task's process (the TI's ``pid``; its supervisor reports it at once),
a worker (the task's process and its supervisor, the LocalExecutor worker: noticed by the
task heartbeat timeout), the triggerer or the scheduler (their whole process group, then the
component is started again).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path

from ..env import chaos_connections, connection_env, importable

FINISHED = ("success", "failed")
SENSORS = ("wait_until_ready", "soak")

# A killed task, worker, triggerer or scheduler is noticed in seconds, not minutes.
FAST_DETECTION = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
}
COMMANDS = {"scheduler": ("scheduler",), "triggerer": ("triggerer",)}


class Stack:
    def __init__(self, services, endpoints, owned: bool):
        self.services, self.endpoints, self.owned = services, endpoints, owned
        self.rest = services.rest
        self.apps_dir = services.apps_dir
        self.kills: list[tuple[float, str, str]] = []  # (time, what, detail): every kill, for every run
        self._lock = threading.Lock()

    @staticmethod
    def _conftest():
        importable()
        import services.conftest as svc

        return svc

    @classmethod
    def start(cls, home: Path, endpoints) -> Stack:
        """New services, as tests/services/conftest.py's ``airflow_services`` fixture starts them."""
        svc = cls._conftest()
        home.mkdir(parents=True, exist_ok=True)
        apps_dir = home / "apps"
        apps_dir.mkdir(exist_ok=True)
        port = svc.free_port()
        db_name = f"bluegreen_chaos_{os.getpid()}_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        password_file = home / "simple_auth_manager_passwords.json"
        password_file.write_text(json.dumps({"admin": password}))
        svc._pg_admin(f'CREATE DATABASE "{db_name}"')
        services = svc.AirflowServices(
            home=home, apps_dir=apps_dir, port=port, db_name=db_name, password=password, env={}
        )
        services.env = svc.services_env(
            home, apps_dir, port, services.db_url, password_file, password, connection_env(endpoints)
        )
        services.env.update(FAST_DETECTION)
        try:
            services.start()
        except Exception:
            services.stop()
            svc._pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            raise
        return cls(services, endpoints, owned=True)

    @classmethod
    def wrap(cls, services, endpoints) -> Stack:
        """A running stack (a test session's): the chaos connections are added over REST."""
        stack = cls(services, endpoints, owned=False)
        for conn_id, doc in chaos_connections(endpoints).items():
            body = {
                "connection_id": conn_id,
                "conn_type": doc["conn_type"],
                "host": doc.get("host"),
                "port": doc.get("port"),
                "schema": doc.get("schema"),
                "password": doc.get("password"),
                "extra": json.dumps(doc.get("extra") or {}),
            }
            stack.rest.request(
                "POST", "/connections", expected=(201, 409), json={k: v for k, v in body.items() if v is not None}
            )
        return stack

    def stop(self) -> None:
        if self.owned:
            svc = self._conftest()
            self.services.stop()
            svc._pg_admin(f'DROP DATABASE IF EXISTS "{self.services.db_name}" WITH (FORCE)')

    @property
    def log_dir(self) -> Path:
        return self.services.log_dir

    def dag_id(self, app_name: str) -> str:
        return self.services.dag_id(app_name)

    # -- kills ------------------------------------------------------------------------------------
    def kill_task(self, ti: dict, worker: bool) -> str | None:
        """SIGKILL the task's process (and with ``worker``, its supervisor: the LocalExecutor worker)."""
        import psutil

        pid = ti.get("pid")
        if not pid:
            return None
        try:
            proc = psutil.Process(pid)
            victims = [proc]
            if worker:
                parent = proc.parent()
                if parent is not None and "airflow" in " ".join(parent.cmdline()):
                    victims.append(parent)
            for p in victims:
                p.send_signal(signal.SIGKILL)
        except psutil.Error:
            return None
        what = "worker" if worker else "task"
        detail = f"SIGKILL {ti['task_id']} try {ti['try_number']} ({what}: {', '.join(str(p.pid) for p in victims)})"
        self.kills.append((time.time(), f"kill-{what}", detail))
        return detail

    def kill_component(self, name: str, extra_env: dict | None = None) -> str:
        """SIGKILL the component's process group (and what it started), then start it again."""
        import psutil

        with self._lock:
            proc = self.services.procs[name]
            try:
                tree = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
            except psutil.Error:
                tree = []
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for p in tree:
                try:
                    if os.getpgid(p.pid) == proc.pid:
                        p.send_signal(signal.SIGKILL)
                except (psutil.Error, ProcessLookupError):
                    pass
            proc.wait(10)
            killed_at = time.time()
            env = self.services.env
            if extra_env:
                self.services.env = {**env, **extra_env}
            try:
                self.services._start(name, *COMMANDS[name])
            finally:
                self.services.env = env
            detail = f"SIGKILL {name} (pid {proc.pid}, {len(tree)} processes), started again"
            self.kills.append((killed_at, f"kill-{name}", detail))
            return detail


class AirflowRun:
    """One DAG run of the app's release DAG, with the same handle as chaos.drivers.direct.DirectRun."""

    def __init__(
        self,
        stack: Stack,
        app,
        run_id: str,
        image: str,
        replicas: int,
        soak_seconds: float,
        hooks=None,
        reason: str = "",
        timeout: float = 420.0,
    ):
        self.stack, self.rest, self.app = stack, stack.rest, app
        self.dag_id = stack.dag_id(app.name)
        self.run_id, self.image, self.replicas, self.soak_seconds = run_id, image, replicas, soak_seconds
        self.hooks, self.reason, self.timeout = hooks, reason, timeout
        self.started = self.ended = 0.0
        self.followed_up: list[str] = []
        self.tis: dict[str, dict] = {}
        self.tries: list[dict] = []
        self.run: dict = {}
        self._cache: dict = {}

    # -- running ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.rest.wait_for_dag(self.dag_id, timeout=90)

    def execute(self) -> AirflowRun:
        self.started = self.started or time.time()
        self.rest.trigger(
            self.dag_id,
            {"image": self.image, "replicas": self.replicas, "soak": f"{self.soak_seconds:g}s", "reason": self.reason},
            run_id=self.run_id,
        )
        return self._follow()

    def _follow(self, was_finished: bool = False) -> AirflowRun:
        deadline = time.time() + self.timeout
        self._cache.clear()
        while True:
            self.run = self.rest.run(self.dag_id, self.run_id)
            self.tis = {ti["task_id"]: ti for ti in self.rest.task_instance_list(self.dag_id, self.run_id)}
            if self.hooks is not None and hasattr(self.hooks, "on_tasks"):
                self.hooks.on_tasks(self, self.tis)
            if was_finished and self.run["state"] not in FINISHED:
                was_finished = False
            if self.run["state"] in FINISHED and not was_finished:
                break
            if time.time() > deadline:
                raise TimeoutError(
                    f"{self.dag_id}/{self.run_id} did not finish within {self.timeout:g}s: "
                    f"{ {t: ti['state'] for t, ti in self.tis.items()} }"
                )
            time.sleep(0.5)
        self.ended = time.time()
        self._cache.clear()
        self.tries = [
            {"task": t, "try": ti["try_number"], "state": ti["state"], "start": ti["start_date"], "end": ti["end_date"]}
            for t, ti in self.tis.items()
        ]
        return self

    def clear(self, task: str) -> AirflowRun:
        self.rest.clear(self.dag_id, self.run_id, [task], include_downstream=task != "rollback")
        return self._follow(was_finished=True)

    def roll_back_by_hand(self, task: str) -> AirflowRun:
        """Mark ``task`` failed, then clear ``rollback`` (its trigger rule then runs it)."""
        self.rest.mark_task(self.dag_id, self.run_id, task, "failed")
        self.rest.clear(self.dag_id, self.run_id, ["rollback"], include_downstream=False)
        return self._follow(was_finished=True)

    def mark_failed(self, task: str | None = None) -> str | None:
        """The UI's "Mark Task Instance as... Failed" on the running sensor (the README's rollback)."""
        tis = {ti["task_id"]: ti for ti in self.rest.task_instance_list(self.dag_id, self.run_id)}
        for name in [task] if task else SENSORS:
            ti = tis.get(name)
            if ti and ti["state"] in ("running", "deferred"):
                self.rest.mark_task(self.dag_id, self.run_id, name, "failed")
                return name
        return None

    # -- what it says ---------------------------------------------------------------------------------
    def _xcom(self, task: str, key: str = "return_value"):
        if (task, key) not in self._cache:
            self._cache[(task, key)] = self.rest.xcom(self.dag_id, self.run_id, task, key)
        return self._cache[(task, key)]

    @property
    def state(self) -> dict:
        return {t: ti["state"] for t, ti in self.tis.items()}

    @property
    def run_state(self) -> str:
        return self.run.get("state", "running")

    @property
    def failed_tasks(self) -> list[str]:
        from .direct import ALL

        return [t for t in ALL if self.state.get(t) == "failed"]

    @property
    def failure(self) -> dict:
        return {t: self._xcom(t, "failure") for t in self.failed_tasks if self._xcom(t, "failure")}

    @property
    def plan(self) -> dict | None:
        value = self._xcom("plan")
        return value if isinstance(value, dict) else None

    @property
    def note(self) -> str:
        return self.run.get("note") or ""

    @property
    def outcome(self) -> str:
        state = self.state
        if self.run_state == "success":
            return "released"
        if state.get("rollback") == "success":
            return "rolled back"
        failure = self.failure
        if state.get("plan") == "failed" and failure.get("plan"):
            return "refused"
        if state.get("rollback") == "failed" and str(failure.get("rollback", "")).startswith("rollback refused"):
            return "refused"
        return "failed" if self.run_state == "failed" else "running"

    @property
    def failure_summary(self) -> str:
        failure = self.failure
        return "; ".join(f"{t}: {failure.get(t, 'failed without a reason (see its log)')}" for t in self.failed_tasks)

    def messages(self) -> list[str]:
        return [str(m) for m in self.failure.values()] + [str(self._xcom("rollback") or "")]
