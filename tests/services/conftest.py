"""The real Airflow services (api-server, scheduler, dag-processor, triggerer; LocalExecutor,
PostgreSQL metadata DB), started once per pytest session and driven only over REST.

``airflow_services`` gives an :class:`AirflowServices`: ``.rest`` (an
:class:`~services.airflow_rest.AirflowRest` logged in as admin), ``.apps_dir`` (the
``BLUEGREEN_APPS_DIR`` the DAG file reads: write app configs there with ``.write_app(...)``
or ``e2e.harness.write_app(apps_dir, ...)``), ``.dag_id(name)``, ``.url``, ``.home``,
``.log_tail(component)`` and ``.diagnostics()`` (every component's log tail).

Every test under tests/services runs on one xdist worker (``xdist_group("airflow-services")``,
effective with ``--dist loadgroup``), so the stack starts once.  Without ``--dist loadgroup``
each worker that is handed a services test starts a stack of its own (it works, at ~20 s of
CPU each plus the load of its releases).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from e2e.harness import write_app

from bluegreen.provider import forkserver_settings

from .airflow_rest import AirflowRest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class AirflowServices:
    home: Path
    apps_dir: Path
    port: int
    db_name: str
    password: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    rest: AirflowRest | None = None
    startup_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{self.db_name}"

    @property
    def log_dir(self) -> Path:
        return self.home / "services"

    def log_path(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def log_tail(self, component: str, lines: int = 40) -> str:
        return _tail(self.log_path(component), lines)

    def diagnostics(self, lines: int = 25) -> str:
        out = []
        for name in ("db-migrate", *COMPONENTS):
            proc = self.procs.get(name)
            status = "" if proc is None else (" (running)" if proc.poll() is None else f" (exited {proc.returncode})")
            if self.log_path(name).exists():
                out.append(f"--- {name}{status}: {self.log_path(name)}\n{self.log_tail(name, lines)}")
        return "\n".join(out)

    def dead(self) -> dict[str, int]:
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}

    @staticmethod
    def dag_id(app_name: str) -> str:
        return "release_" + app_name.replace("-", "_")

    def write_app(self, name: str, platform: str, **fields) -> Path:
        return write_app(self.apps_dir, name, platform, **fields)

    # -- lifecycle ------------------------------------------------------------------------------
    def _start(self, name: str, *args: str) -> subprocess.Popen:
        return self._spawn(name, [sys.executable, "-m", "airflow", *args], self.env)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """A component in a session of its own, its output in its log file."""
        log = open(self.log_path(name), "w")
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def _fail(self, what: str):
        raise RuntimeError(f"Airflow services: {what}\n{self.diagnostics()}")

    def start(self, timeout: float = 180) -> None:
        started = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path("db-migrate"), "w") as log:
            rc = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                cwd=self.home,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            ).returncode
        self.timings["db_migrate"] = time.monotonic() - started
        if rc != 0:
            self._fail(f"airflow db migrate exited {rc}")
        self._start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1")
        self._start("scheduler", "scheduler")
        self._start("dag-processor", "dag-processor")
        self._start("triggerer", "triggerer")

        deadline = started + timeout
        probe = requests.Session()
        probe.trust_env = False
        while True:
            if dead := self.dead():
                self._fail(f"exited while starting: {dead}")
            try:
                if probe.get(f"{self.url}/api/v2/version", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self._fail(f"the api-server did not answer /api/v2/version within {timeout}s")
            time.sleep(0.25)
        self.timings["api_server"] = time.monotonic() - started

        self.rest = AirflowRest(self.url, "admin", self.password, diagnostics=self.diagnostics)
        self.rest.login()
        health = None
        while True:
            if dead := self.dead():
                self._fail(f"exited while starting: {dead}")
            health = self.rest.health()
            if all(
                (health.get(c) or {}).get("status") == "healthy"
                for c in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            ):
                break
            if time.monotonic() > deadline:
                self._fail(f"not healthy within {timeout}s: {health}")
            time.sleep(0.25)
        self.startup_seconds = time.monotonic() - started
        self.timings["healthy"] = self.startup_seconds

    def stop(self, grace: float = 20) -> list[str]:
        """Stop everything the services started.  SIGTERM each component's main process first,
        as a service manager does (so the triggerer can stop its trigger runner, the scheduler
        its LocalExecutor workers), then SIGTERM each process group and every process they had
        started (task runners put themselves in process groups of their own), then SIGKILL what
        is left.  Returns what had to be killed."""
        import psutil

        tree: dict[int, psutil.Process] = {}
        for proc in self.procs.values():
            try:
                root = psutil.Process(proc.pid)
                tree[root.pid] = root
                tree.update({c.pid: c for c in root.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        groups = {proc.pid for proc in self.procs.values()}  # start_new_session: group id = pid
        for p in tree.values():
            try:
                groups.add(os.getpgid(p.pid))
            except ProcessLookupError:
                pass

        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for pgid in groups:
            _killpg(pgid, signal.SIGTERM)
        for p in tree.values():
            _kill(p, signal.SIGTERM)
        _, alive = psutil.wait_procs(list(tree.values()), timeout=5)
        killed = []
        for pgid in groups:
            _killpg(pgid, signal.SIGKILL)
        for p in alive:
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    continue
                killed.append(f"{p.pid} ({p.status()}, parent {p.ppid()}) {' '.join(p.cmdline())[:80]}")
            except psutil.Error:
                continue
            _kill(p, signal.SIGKILL)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        return killed


def _killpg(pgid: int, sig) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(p, sig) -> None:
    import psutil

    try:
        p.send_signal(sig)
    except psutil.Error:
        pass


def _pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", connect_timeout=10, **PG)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def async_db_url(db_url: str) -> str:
    """Airflow derives its async engine's URL as postgresql+asyncpg:// and every process fails at
    start if asyncpg is missing.  requirements.txt has only psycopg2, so without asyncpg the
    async engine is switched off (""): the experimental ``dagRuns/{id}/wait`` endpoint, the task
    state store and multi-team lookups need it; nothing this project uses does."""
    import importlib.util

    if importlib.util.find_spec("asyncpg") is not None:
        return db_url.replace("postgresql+psycopg2://", "postgresql+asyncpg://", 1)
    return ""


def services_env(
    home: Path, apps_dir: Path, port: int, db_url: str, password_file: Path, password: str, sandbox_env: dict[str, str]
) -> dict[str, str]:
    from cryptography.fernet import Fernet

    # Nothing Airflow-related leaks in from the test process (its per-worker AIRFLOW_HOME and SQLite DB).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    url = f"http://127.0.0.1:{port}"
    env.update(sandbox_env)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": async_db_url(db_url),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # The LocalExecutor forks [core] parallelism workers at start (default 32).
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "BLUEGREEN_APPS_DIR": str(apps_dir),
            # A config file written by a test becomes a DAG within seconds: the one DAG file is
            # re-parsed every 3 s (new .py files are looked for every 5 s), and a changed DAG is
            # re-serialized at once (default: at most every 30 s).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "1",
            "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": "10",
            "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
            # Fast loops: the scheduler sleeps 0.5 s when idle (default 1 s; 0.2 s doubles the idle
            # stack's CPU, ~15% of a core, and the suite runs 4 workers on 2 cores), heartbeats every 2 s.
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            # A killed task process (or worker) is noticed within seconds, not the default 5 minutes,
            # and a killed triggerer's triggers move on after 10 s: the tests kill processes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            # Every component signs or checks the same tokens and encrypts with the same key.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(64),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
            # Log servers on free ports (defaults 8793/8794 would clash with `make demo`).
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # The release tasks write the run's note through the REST API with this connection.
            "AIRFLOW_CONN_BLUEGREEN_AIRFLOW_API": json.dumps(
                {"conn_type": "http", "host": url, "login": "admin", "password": password}
            ),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            # The task processes start with what they import already loaded (as shipped).
            **forkserver_settings(),
        }
    )
    return env


@contextlib.contextmanager
def running_services(
    home: Path, sandbox_env: dict[str, str], echo=print, settings: dict[str, str | None] | None = None
) -> Iterator[AirflowServices]:
    """An :class:`AirflowServices` stack in ``home`` (apps in ``home/apps``) on a fresh PostgreSQL
    database, pointed at a sandbox by ``sandbox_env`` (``Endpoints.environment()``); stopped and
    the database dropped on exit.  ``settings``: environment variables changed from the tests' (None
    removes one: Airflow's default then).  The session fixture below and ``make bench`` use it."""
    apps_dir = home / "apps"
    apps_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    db_name = f"bluegreen_svc_{os.getpid()}_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    password_file = home / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({"admin": password}))
    _pg_admin(f'CREATE DATABASE "{db_name}"')
    services = AirflowServices(home=home, apps_dir=apps_dir, port=port, db_name=db_name, password=password, env={})
    services.env = services_env(home, apps_dir, port, services.db_url, password_file, password, sandbox_env)
    for name, value in (settings or {}).items():
        if value is None:
            services.env.pop(name, None)
        else:
            services.env[name] = value
    try:
        services.start()
        echo(
            f"\nAirflow services up in {services.startup_seconds:.1f}s "
            f"({', '.join(f'{k} {v:.1f}s' for k, v in services.timings.items())}); logs in {services.log_dir}"
        )
        yield services
    finally:
        killed = services.stop()
        # The components are stopped; FORCE ends any connection still open.
        _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        if killed:
            echo(f"Airflow services: had to SIGKILL {killed}")


@pytest.fixture(scope="session")
def airflow_services(sandbox, tmp_path_factory):
    with running_services(tmp_path_factory.mktemp("airflow-services"), sandbox.environment()) as services:
        yield services


@pytest.fixture(autouse=True)
def _apps_removed_after_the_test(request):
    """The app configs a test wrote into the stack's apps folder go when it ends.  The dag-processor
    re-parses the DAG file every 3 s here, and its cost grows with the apps in the folder: with 30
    apps it took 36% of a core (8% with 2), on each of the session's stacks, for the rest of the
    session.  (Only for tests on the stack: the fixture is not started for the others.)"""
    if "airflow_services" not in request.fixturenames:
        yield
        return
    apps_dir = Path(request.getfixturevalue("airflow_services").apps_dir)
    before = set(os.listdir(apps_dir))
    yield
    for name in set(os.listdir(apps_dir)) - before:
        path = apps_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def rest(airflow_services) -> AirflowRest:
    return airflow_services.rest


@pytest.fixture(scope="session")
def kube(sandbox):
    import kubernetes

    return kubernetes.config.new_client_from_config(config_file=str(sandbox.kubeconfig))


@pytest.fixture
def k8s_namespace(kube, unique_name) -> str:
    """A new namespace in this worker's sandbox, named after the test."""
    from kubernetes import client

    client.CoreV1Api(kube).create_namespace({"metadata": {"name": unique_name}})
    return unique_name
