"""docker-compose.yaml's production stack, for real: CeleryExecutor on this machine's Redis and
PostgreSQL, two Celery workers, the scheduler, dag-processor, triggerer and api-server, each started
as a real process with exactly the environment the compose file gives its container (see
compose_stack.py for how a container is emulated), then driven over REST as a person would."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess

import pytest
from e2e.apps import K8sApp, MesosApp

from .compose_stack import ComposeError, ComposeStack, compose_config, env_file_from_example, generated_secrets
from .conftest import _pg_admin, free_port

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("compose-stack")]

V1, V2 = "registry.local/test:v1", "registry.local/test:v2"
WORKERS = 2


def stack_settings(sandbox) -> dict[str, str]:
    """What the test adds to .env.example: its connections (kubeconfig and CA from the mounted
    credentials folder, under names of its own) and faster loops for a test's few minutes."""
    return {
        "AIRFLOW_CONN_SANDBOX_K8S": json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": "/opt/airflow/credentials/kubeconfig"}}
        ),
        "AIRFLOW_CONN_SANDBOX_BCS": json.dumps(
            {
                **sandbox.connections()["sandbox_bcs"],
                "extra": {"cluster_id": sandbox.bcs_cluster_id, "ca_bundle": "/opt/airflow/credentials/bcs-ca.pem"},
            }
        ),
        "AIRFLOW_API_WORKERS": "1",
        "AIRFLOW_WORKER_CONCURRENCY": "4",
        # a new app config becomes a DAG within seconds (default: the file is re-parsed every 30 s)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3",
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "1",
        # a killed worker's task is failed (and retried) after 20 s, not the default 5 minutes
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    }


@pytest.fixture(scope="module")
def compose_stack(sandbox, tmp_path_factory):
    home = tmp_path_factory.mktemp("compose")
    apps_dir, credentials = home / "apps", home / "credentials"
    apps_dir.mkdir()
    credentials.mkdir()
    shutil.copy(sandbox.kubeconfig, credentials / "kubeconfig")
    shutil.copy(sandbox.ca_file, credentials / "bcs-ca.pem")
    values = {
        **generated_secrets(),
        "BLUEGREEN_APPS": str(apps_dir),
        "BLUEGREEN_CREDENTIALS": str(credentials),
        **stack_settings(sandbox),
    }
    env_file = env_file_from_example(home / ".env", values)

    db_name = f"bluegreen_compose_{os.getpid()}_{secrets.token_hex(3)}"
    _pg_admin(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airflow') THEN "
        "CREATE ROLE airflow LOGIN; END IF; END $$"
    )
    _pg_admin(f'CREATE DATABASE "{db_name}" OWNER airflow')
    stack = ComposeStack(
        home=home,
        apps_dir=apps_dir,
        port=free_port(),
        db_name=db_name,
        password=values["AIRFLOW_ADMIN_PASSWORD"],
        env={},
        env_file=env_file,
        redis_db=1 + os.getpid() % 15,
        scale={"airflow-worker": WORKERS},
    )
    try:
        stack.start()
        print(
            f"\ncompose stack up in {stack.startup_seconds:.1f}s: "
            f"{', '.join(f'{k} at {v:.1f}s' for k, v in stack.timings.items())}; logs in {stack.log_dir}"
        )
        yield stack
    finally:
        killed = stack.stop()
        _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        if killed:
            print(f"compose stack: had to SIGKILL {killed}")


def k8s_app(stack, kube, name, **fields) -> K8sApp:
    from kubernetes import client

    client.CoreV1Api(kube).create_namespace({"metadata": {"name": name}})
    return K8sApp(stack.apps_dir, name, kube, **fields)


def dag_id(app) -> str:
    return "release_" + app.ns.replace("-", "_")


def release_all(stack, apps, run_id: str, image: str, timeout: float = 240) -> dict[str, dict]:
    """Triggers one release of each app at the same moment, waits for all of them."""
    for app in apps:
        stack.rest.trigger(dag_id(app), {"image": image}, run_id=run_id)
    return {app.ns: stack.rest.wait_run(dag_id(app), run_id, timeout=timeout) for app in apps}


def worker_hosts(stack, apps, run_ids) -> dict[str, set]:
    """{hostname: {task_id, ...}} of the task instances (each try's worker) of these runs."""
    hosts: dict[str, set] = {}
    for app in apps:
        for run_id in run_ids:
            for ti in stack.rest.task_instance_list(dag_id(app), run_id):
                if ti.get("hostname"):
                    hosts.setdefault(ti["hostname"], set()).add(ti["task_id"])
    return hosts


def test_every_service_is_healthy_by_its_own_health_check(compose_stack):
    states = compose_stack.wait_healthy(30)
    assert set(states) == {
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        *(f"airflow-worker-{i}" for i in range(1, WORKERS + 1)),
    }, compose_stack.describe()
    assert compose_stack.containers["airflow-init"].proc.returncode == 0
    # each Celery worker answers under its container's name
    assert "celery@airflow-worker-2: OK" in states["airflow-worker-2"]
    # the admin from .env can log in; the password file airflow-init wrote is readable by its owner only
    assert compose_stack.rest.version()["version"].startswith("3.3")
    # only the apps folder's configs become DAGs: none of the sandbox's test apps (dags/apps)
    served = {d["dag_id"] for d in compose_stack.rest.get("/dags", limit=100)["dags"]}
    assert not served & {"release_test", "release_test_mesos"}, served
    passwords = compose_stack.home / "volumes" / "airflow-auth" / "passwords.json"
    assert passwords.stat().st_mode & 0o077 == 0 and json.loads(passwords.read_text()) == {
        "admin": compose_stack.password
    }


def test_releases_on_both_platforms_at_once_run_on_both_celery_workers(compose_stack, sandbox, kube, unique_name):
    base = unique_name[:30].rstrip("-")
    apps = [k8s_app(compose_stack, kube, f"{base}-k{i}") for i in (1, 2)]
    apps += [MesosApp(compose_stack.apps_dir, f"{base}-m{i}", sandbox) for i in (1, 2)]
    for app in apps:
        dag = compose_stack.rest.wait_for_dag(dag_id(app), timeout=90)
        assert dag["is_paused"] is False, "a release DAG starts unpaused"

    first = release_all(compose_stack, apps, "v1", V1)
    assert {ns: r["state"] for ns, r in first.items()} == {a.ns: "success" for a in apps}, compose_stack.diagnostics(15)

    loops = [app.traffic() for app in apps]
    logs = [loop.__enter__() for loop in loops]
    try:
        second = release_all(compose_stack, apps, "v2", V2)
    finally:
        for loop in loops:
            loop.__exit__(None, None, None)
    assert {ns: r["state"] for ns, r in second.items()} == {a.ns: "success" for a in apps}, compose_stack.diagnostics(
        15
    )
    for app, log in zip(apps, logs, strict=True):
        print(f"{app.ns}: {log.summary()}")
        assert log.failures == [], f"{app.ns}: {log.summary()}"
        assert log.versions()[-1] == V2 and V1 in log.versions(), f"{app.ns}: {log.summary()}"
        assert app.deployments() == {"test-green": V2}, app.ns
        note = compose_stack.rest.run(dag_id(app), "v2")["note"] or ""
        assert note.startswith(f"{app.ns}: blue ({V1}) -> green ({V2}): released"), note

    hosts = worker_hosts(compose_stack, apps, ["v1", "v2"])
    print(f"tasks by worker: { {h: len(t) for h, t in hosts.items()} }")
    assert set(hosts) == {f"airflow-worker-{i}" for i in range(1, WORKERS + 1)}, hosts


def test_a_killed_celery_worker_mid_release_leaves_one_ready_color_serving(compose_stack, kube, unique_name):
    # the readiness sensor judges in its worker for 30 s before it defers: the kill lands there
    app = k8s_app(compose_stack, kube, unique_name[:40].rstrip("-"), defer_after="30s", readiness_timeout="120s")
    rest = compose_stack.rest
    rest.wait_for_dag(dag_id(app), timeout=90)
    assert (
        rest.wait_run(dag_id(app), rest.trigger(dag_id(app), {"image": V1}, run_id="v1")["dag_run_id"], timeout=180)[
            "state"
        ]
        == "success"
    )

    with app.traffic() as log:
        rest.trigger(dag_id(app), {"image": "registry.local/test:v2-ready-after-12s"}, run_id="v2")
        ti = rest.wait_task_state(dag_id(app), "v2", "wait_until_ready", "running", timeout=120)
        victim = ti["hostname"]
        assert victim in compose_stack.containers, ti
        killed = compose_stack.kill_container(victim)
        print(f"killed {victim} ({len(killed)} processes) while wait_until_ready ran there")
        run = rest.wait_run(dag_id(app), "v2", timeout=300)

    tasks = rest.task_instances(dag_id(app), "v2")
    assert run["state"] == "success", f"{tasks}\n{compose_stack.diagnostics(15)}"
    sensor = rest.task_instance(dag_id(app), "v2", "wait_until_ready")
    assert sensor["try_number"] >= 2 and sensor["hostname"] != victim, sensor
    assert app.selector() == {"app": "test-green"}
    assert app.deployments() == {"test-green": "registry.local/test:v2-ready-after-12s"}
    assert log.failures == [], log.summary()


def test_placeholders_and_missing_secrets_are_refused_before_anything_starts(tmp_path):
    # a required variable missing: compose itself refuses, naming it
    env_file = env_file_from_example(tmp_path / ".env", {"AIRFLOW_FERNET_KEY": ""})
    text = env_file.read_text().replace("AIRFLOW_FERNET_KEY=\n", "")
    env_file.write_text(text)
    with pytest.raises(ComposeError, match="AIRFLOW_FERNET_KEY"):
        compose_config(env_file)

    # .env.example as it is (change-me everywhere): airflow-init refuses before it migrates anything
    stack = ComposeStack(
        home=tmp_path,
        apps_dir=tmp_path,
        port=free_port(),
        db_name="bluegreen_never_created",
        password="",
        env={},
        env_file=env_file_from_example(tmp_path / "example.env", {}),
    )
    stack.prepare()
    init = stack.containers["airflow-init"]
    out = subprocess.run(init.argv, env=init.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    assert "refusing to start: AIRFLOW__API_AUTH__JWT_SECRET (from .env)" in out.stderr, out.stderr
    assert "migrat" not in out.stdout.lower(), out.stdout
