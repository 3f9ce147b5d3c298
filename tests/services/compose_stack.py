"""docker-compose.yaml, run as real processes: no container engine reaches our machines, so this
starts what each container would run, with the environment the compose file gives it.

How each container is emulated (and nothing else is changed):
- The file is read by a real compose implementation (podman-compose's ``config``: YAML anchors and
  merge keys, ``${VAR}`` / ``${VAR:-default}`` / ``${VAR:?error}`` interpolation from the env file),
  never by hand.  A service's environment is its ``env_file`` (read with python-dotenv, as
  podman-compose reads it) overlaid with its ``environment``, plus what the image sets
  (``AIRFLOW_HOME=/opt/airflow``) and the container's ``HOSTNAME``.
- The container's hostname: each process runs in a UTS namespace of its own (``unshare --uts``)
  named like a compose container (``airflow-worker-1``), so Celery's node name and
  ``airflow jobs check --hostname "$HOSTNAME"`` see what they would see in the container.
- The image's files: what the Dockerfile's last stage COPYs under /opt/airflow (the DAG file) is
  copied into the stack's home, which stands for /opt/airflow (one for all containers here).
- Mounts: a container path of a volume (``/opt/airflow/apps``) is rewritten, in the environment and
  the command, to the host folder the compose file mounts there (a named volume: a folder of the
  stack's own; ``/opt/airflow`` itself: the stack's home).
- The network: the service names (``postgres``, ``redis``, ``airflow-apiserver``) are this
  machine's PostgreSQL, Redis and the api-server's loopback port; a container's own ports (the
  api-server's 8080, the scheduler's health port, the log servers) become free loopback ports
  (``AIRFLOW__API__PORT`` and the like), since all containers here share one network stack.
- ``depends_on`` is honoured: a service starts when each dependency is ``service_healthy`` (its
  own health check command passes, run as a real process) or ``service_completed_successfully``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .conftest import AirflowServices, _tail, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
CONTAINER_HOME = "/opt/airflow"  # the apache/airflow image's AIRFLOW_HOME
# services this machine already runs (the compose file's images for them are not started here)
MACHINE_SERVICES = ("postgres", "redis")


def compose_config(env_file: Path, compose_file: Path = COMPOSE_FILE) -> dict:
    """The compose file as ``podman-compose config`` resolves it with ``env_file`` as its ``.env``.
    Raises ``ComposeError`` with the implementation's own message (e.g. a required variable)."""
    tool = Path(sys.executable).parent / "podman-compose"
    # Only PATH: compose lets the shell's variables override .env, and none of ours may leak in.
    proc = subprocess.run(
        [str(tool), "--podman-path", "/bin/echo", "--env-file", str(env_file), "-f", str(compose_file), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"]},
    )
    if proc.returncode != 0:
        raise ComposeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.stdout)
    import yaml

    return yaml.safe_load(proc.stdout)


class ComposeError(Exception):
    pass


def image_files() -> list[tuple[str, str]]:
    """(source in the checkout, path in the image) of the Dockerfile's last stage's COPY lines
    that copy from the build context."""
    stages = re.split(r"(?m)^FROM ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in stages[-1].splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            args = [w for w in words[1:] if not w.startswith("--")]
            out += [(src, args[-1]) for src in args[:-1]]
    return out


def env_file_from_example(path: Path, values: dict[str, str]) -> Path:
    """.env.example with ``values`` put in (a key that is there is replaced in place, a new one
    appended): what a person does with ``cp .env.example .env`` and an editor."""
    lines, seen = [], set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.split("=", 1)[0] if "=" in line and not line.lstrip().startswith("#") else None
        if key in values:
            lines.append(f"{key}={values[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def generated_secrets() -> dict[str, str]:
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW_SECRET_KEY": secrets.token_urlsafe(48),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
    }


@dataclass
class Container:
    service: str
    hostname: str
    argv: list[str]
    env: dict[str, str]
    healthcheck: list[str] | None
    proc: subprocess.Popen | None = None


@dataclass
class ComposeStack(AirflowServices):
    """The compose file's Airflow services as processes; ``rest`` logs in as the .env's admin."""

    env_file: Path = Path()
    config: dict = field(default_factory=dict)
    redis_db: int = 0
    containers: dict[str, Container] = field(default_factory=dict)
    scale: dict[str, int] = field(default_factory=dict)

    # -- the emulation ------------------------------------------------------------------------------
    def _mounts(self, service: dict) -> list[tuple[str, str]]:
        """(container path, host path), longest container path first."""
        volumes_dir = self.home / "volumes"
        home_dir = self.home / "container-home"
        home_dir.mkdir(parents=True, exist_ok=True)
        out = [(CONTAINER_HOME, str(home_dir))]
        for spec in service.get("volumes") or []:
            source, target = (spec["source"], spec["target"]) if isinstance(spec, dict) else spec.split(":")[:2]
            if source.startswith((".", "/")):
                host = (ROOT / source).resolve() if source.startswith(".") else Path(source)
            else:  # a named volume
                host = volumes_dir / source
                host.mkdir(parents=True, exist_ok=True)
            out.append((target, str(host)))
        # The image's own files under /opt/airflow (the Dockerfile's COPY lines: the DAG file)
        for source, target in image_files():
            if target.startswith(CONTAINER_HOME + "/"):
                copy = home_dir / target.removeprefix(CONTAINER_HOME + "/")
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, copy)
        # The container's file system: a mount under /opt/airflow is also reached through
        # AIRFLOW_HOME (Airflow finds $AIRFLOW_HOME/dags, /logs itself), so it is a symlink there.
        for target, host in out[1:]:
            if target.startswith(CONTAINER_HOME + "/"):
                link = home_dir / target.removeprefix(CONTAINER_HOME + "/")
                if not link.is_symlink():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(host, target_is_directory=True)
        return sorted(out, key=lambda m: -len(m[0]))

    def _network(self) -> list[tuple[str, str]]:
        """Service addresses as this machine serves them (regexes, applied in order)."""
        return [
            (r"@postgres(:5432)?/airflow\b", f"@127.0.0.1:5432/{self.db_name}"),
            (r"redis://(:[^@]*@)?redis(:6379)?/\d+", f"redis://127.0.0.1:6379/{self.redis_db}"),
            (r"//airflow-apiserver:8080\b", f"//127.0.0.1:{self.port}"),
            (r"//localhost:8080\b", f"//127.0.0.1:{self.port}"),
        ]

    def _rewrite(self, text: str, mounts, network) -> str:
        for pattern, repl in network:
            text = re.sub(pattern, repl, text)
        for target, host in mounts:
            text = re.sub(re.escape(target) + r"(?![\w.-])", host, text)
        return text

    def _container(self, name: str, service: dict, index: int) -> Container:
        import dotenv

        hostname = f"{name}-{index}" if self.scale.get(name, 1) > 1 else name
        env: dict[str, str] = {}
        for entry in service.get("env_file") or []:
            path = entry if isinstance(entry, str) else entry["path"]
            # the file compose reads as .env is this stack's env file (never the checkout's own .env)
            source = self.env_file if Path(path).name == ".env" else ROOT / path
            env.update({k: v for k, v in dotenv.dotenv_values(source).items() if v is not None})
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        env.update({k: "" if v is None else str(v) for k, v in environment.items()})
        env.update({"AIRFLOW_HOME": CONTAINER_HOME, "HOSTNAME": hostname})

        mounts, network = self._mounts(service), self._network()
        env = {k: self._rewrite(v, mounts, network) for k, v in env.items()}
        # the container's own ports, made unique on the shared loopback
        env.update(
            {
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.health_port),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for key in ("LANG", "LC_ALL", "TMPDIR"):
            if key in os.environ:
                env[key] = os.environ[key]

        command = service.get("command") or []
        command = shlex.split(command) if isinstance(command, str) else list(command)
        entrypoint = service.get("entrypoint")
        if entrypoint:
            argv = (shlex.split(entrypoint) if isinstance(entrypoint, str) else list(entrypoint)) + command
        else:  # the image's entrypoint runs an airflow subcommand
            argv = [sys.executable, "-m", "airflow", *command]
        argv = [self._rewrite(a, mounts, network) for a in argv]

        health = None
        test = (service.get("healthcheck") or {}).get("test")
        if test:
            kind, rest = test[0], test[1:]
            health = ["sh", "-c", rest[0]] if kind == "CMD-SHELL" else list(rest)
            health = [
                self._rewrite(a, mounts, network).replace("//localhost:8974", f"//127.0.0.1:{self.health_port}")
                for a in health
            ]
        return Container(name, hostname, argv, env, health)

    # -- lifecycle --------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.config = compose_config(self.env_file)
        self.health_port = free_port()
        self.containers = {}
        for name, service in self.config["services"].items():
            if name in MACHINE_SERVICES or service.get("profiles"):
                continue
            for index in range(1, self.scale.get(name, 1) + 1):
                c = self._container(name, service, index)
                self.containers[c.hostname] = c
        self.env = next(c.env for c in self.containers.values() if c.service == "airflow-scheduler")

    def run_container(self, hostname: str) -> subprocess.Popen:
        c = self.containers[hostname]
        # the container's hostname: a UTS namespace of its own
        argv = ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', c.hostname, *c.argv]
        c.proc = self._spawn(hostname, argv, c.env)
        return c.proc

    def healthy(self, hostname: str) -> tuple[bool, str]:
        """Runs the container's own health check command (with its environment)."""
        c = self.containers[hostname]
        if c.healthcheck is None:
            return c.proc is not None and c.proc.poll() is None, "no health check: running"
        try:
            out = subprocess.run(c.healthcheck, env=c.env, cwd=self.home, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return False, "health check timed out"
        return out.returncode == 0, (out.stdout + out.stderr).strip()[-500:]

    def machine_service_healthy(self, name: str) -> bool:
        """postgres and redis are this machine's: their compose health checks, run against them."""
        test = self.config["services"][name]["healthcheck"]["test"]
        argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0

    def _condition_met(self, dependency: str, condition: str) -> bool:
        if dependency in MACHINE_SERVICES:
            return self.machine_service_healthy(dependency)
        replicas = [c for c in self.containers.values() if c.service == dependency]
        if condition == "service_completed_successfully":
            return all(c.proc is not None and c.proc.poll() == 0 for c in replicas)
        if condition == "service_healthy":
            return all(c.proc is not None and c.proc.poll() is None and self.healthy(c.hostname)[0] for c in replicas)
        return all(c.proc is not None for c in replicas)

    def start(self, timeout: float = 420) -> None:
        """``docker compose up -d``: every service once its dependencies meet their conditions.

        The budget is for a loaded 2-core machine: at the start of ``make test`` the other workers
        start Airflow stacks and build a venv, a health check (``airflow jobs check``, a CLI that
        loads every provider) can take 30 s, and the stack took 221 s to come up in one run."""
        started = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        pending = {c.hostname for c in self.containers.values()}
        while pending:
            for hostname in sorted(pending):
                c = self.containers[hostname]
                depends = self.config["services"][c.service].get("depends_on") or {}
                if isinstance(depends, list):
                    depends = {d: {"condition": "service_started"} for d in depends}
                if all(self._condition_met(d, spec.get("condition", "service_started")) for d, spec in depends.items()):
                    self.run_container(hostname)
                    self.timings[hostname] = time.monotonic() - started
                    pending.discard(hostname)
            failed = {
                h: c.proc.returncode
                for h, c in self.containers.items()
                if c.proc is not None and c.proc.poll() not in (None, 0)
            }
            if failed:
                self._fail(f"exited while starting: {failed}")
            if time.monotonic() - started > timeout:
                self._fail(f"not started within {timeout}s: {sorted(pending)}")
            time.sleep(0.5)
        self.wait_healthy(timeout - (time.monotonic() - started))
        self.startup_seconds = time.monotonic() - started
        from .airflow_rest import AirflowRest

        self.rest = AirflowRest(self.url, self.admin_user, self.password, diagnostics=self.diagnostics)
        self.rest.login()

    def wait_healthy(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            running = [h for h, c in self.containers.items() if c.service != "airflow-init"]
            if dead := {
                h: self.containers[h].proc.returncode for h in running if self.containers[h].proc.poll() is not None
            }:
                self._fail(f"exited: {dead}")
            states = {h: self.healthy(h) for h in running}
            if all(ok for ok, _ in states.values()):
                return {h: detail for h, (ok, detail) in states.items()}
            if time.monotonic() > deadline:
                self._fail(f"not healthy: { {h: d for h, (ok, d) in states.items() if not ok} }")
            time.sleep(1)

    @property
    def admin_user(self) -> str:
        import dotenv

        return dotenv.dotenv_values(self.env_file).get("AIRFLOW_ADMIN_USER") or "admin"

    def kill_container(self, hostname: str) -> list[int]:
        """SIGKILL every process of the container (its process group and all it started), as
        ``docker kill`` or a lost node does."""
        import signal

        import psutil

        root = psutil.Process(self.containers[hostname].proc.pid)
        victims = [root, *root.children(recursive=True)]
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        psutil.wait_procs(victims, timeout=10)
        return [p.pid for p in victims]

    def diagnostics(self, lines: int = 25) -> str:
        out = []
        for name, proc in self.procs.items():
            status = " (running)" if proc.poll() is None else f" (exited {proc.returncode})"
            out.append(f"--- {name}{status}: {self.log_path(name)}\n{_tail(self.log_path(name), lines)}")
        return "\n".join(out)

    def describe(self) -> str:
        return json.dumps(
            {h: {"argv": c.argv[-3:], "healthcheck": c.healthcheck} for h, c in self.containers.items()}, indent=1
        )
