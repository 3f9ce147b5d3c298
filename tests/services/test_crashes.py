"""Crashes on the real Airflow services: a step whose process is killed (SIGKILL, as an OOM kill or a
lost node does it) is retried, not rolled back, and a killed triggerer's trigger goes on after a
restart.  Driven over REST; the cluster is read with the official client."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from .test_operate import make_app
from .test_smoke import V1, V2, release

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("airflow-services")]


def kill_task_process(rest, dag_id: str, run_id: str, task_id: str) -> list[int]:
    """SIGKILL the task's process and the worker process that supervises it."""
    ti = rest.task_instance(dag_id, run_id, task_id)
    pid = ti.get("pid")
    assert pid, ti
    task = psutil.Process(pid)
    victims = [task, task.parent()]
    for p in victims:
        os.kill(p.pid, signal.SIGKILL)
    return [p.pid for p in victims]


def test_a_killed_readiness_step_is_retried_not_rolled_back(airflow_services, rest, kube, k8s_namespace):
    # the sensor judges in its worker for 30 s before it defers: the kill lands there
    dag_id, cluster = make_app(airflow_services, rest, kube, k8s_namespace, defer_after="30s")
    release(airflow_services, rest, dag_id, "v1", {"image": V1})
    rest.trigger(dag_id, {"image": "registry.local/test:v2-ready-after-12s"}, run_id="v2")
    rest.wait_task_state(dag_id, "v2", "wait_until_ready", "running", timeout=120)
    rest.wait_log(dag_id, "v2", "wait_until_ready", "available", timeout=60)
    killed = kill_task_process(rest, dag_id, "v2", "wait_until_ready")
    run = rest.wait_run(dag_id, "v2", timeout=240)
    tasks = rest.task_instances(dag_id, "v2")
    ti = rest.task_instance(dag_id, "v2", "wait_until_ready")
    print(f"killed {killed}; run {run['state']}; wait_until_ready tries {ti['try_number']}; {tasks}")
    assert run["state"] == "success", f"{tasks}\n{airflow_services.diagnostics(10)}"
    assert ti["try_number"] >= 2, "the killed attempt was retried"
    assert tasks["rollback"] == "skipped", "a crash is retried, not rolled back"
    assert cluster.selector() == {"app": "test-green"}
    assert cluster.deployments() == {"test-green": "registry.local/test:v2-ready-after-12s"}


def test_a_killed_triggerer_does_not_stop_the_soak(airflow_services, rest, kube, k8s_namespace):
    dag_id, cluster = make_app(airflow_services, rest, kube, k8s_namespace, soak="25s")
    release(airflow_services, rest, dag_id, "v1", {"image": V1})
    rest.trigger(dag_id, {"image": V2, "soak": "25s"}, run_id="v2")
    rest.wait_task_state(dag_id, "v2", "soak", "deferred", timeout=120)
    rest.wait_trigger_running(dag_id, "v2", "soak", timeout=60)
    triggerer = airflow_services.procs["triggerer"]
    for p in psutil.Process(triggerer.pid).children(recursive=True) + [psutil.Process(triggerer.pid)]:
        p.send_signal(signal.SIGKILL)
    triggerer.wait(10)
    time.sleep(3)
    airflow_services._start("triggerer", "triggerer")
    run = rest.wait_run(dag_id, "v2", timeout=240)
    tasks = rest.task_instances(dag_id, "v2")
    assert run["state"] == "success", f"{tasks}\n{airflow_services.diagnostics(10)}"
    assert tasks["rollback"] == "skipped"
    assert cluster.selector() == {"app": "test-green"} and cluster.deployments() == {"test-green": V2}
