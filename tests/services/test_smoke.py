"""The release DAG run by the real Airflow services, driven only through the REST API, as a
person in the UI (or a script) drives it; the cluster is read with the official client."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.services, pytest.mark.xdist_group("airflow-services")]

V1, V2 = "registry.local/test:v1", "registry.local/test:v2"
FAST = {"soak": "2s", "readiness_timeout": "60s", "check_interval": "0.5s"}


class Cluster:
    """What a release left in one namespace of the sandbox's Kubernetes API."""

    def __init__(self, kube, namespace):
        from kubernetes import client

        self.ns = namespace
        self.apps, self.core = client.AppsV1Api(kube), client.CoreV1Api(kube)

    def selector(self) -> dict | None:
        services = {s.metadata.name: s for s in self.core.list_namespaced_service(self.ns).items}
        return services["test"].spec.selector if "test" in services else None

    def deployments(self) -> dict[str, str]:
        return {
            d.metadata.name: d.spec.template.spec.containers[0].image
            for d in self.apps.list_namespaced_deployment(self.ns).items
        }

    def snapshot(self) -> dict:
        return {
            "selector": self.selector(),
            "deployments": self.deployments(),
            "services": sorted(s.metadata.name for s in self.core.list_namespaced_service(self.ns).items),
        }


@pytest.fixture
def app(airflow_services, rest, kube, k8s_namespace):
    """A Kubernetes app config in the services' apps dir, its DAG parsed and served."""
    airflow_services.write_app(k8s_namespace, "kubernetes", namespace=k8s_namespace, **FAST)
    dag_id = airflow_services.dag_id(k8s_namespace)
    started = time.monotonic()
    dag = rest.wait_for_dag(dag_id, timeout=60)
    print(f"\n{dag_id} served {time.monotonic() - started:.1f}s after its config was written")
    assert dag["is_paused"] is False
    return dag_id, Cluster(kube, k8s_namespace)


def release(airflow_services, rest, dag_id, run_id, conf, state="success", timeout=180) -> dict:
    rest.trigger(dag_id, conf, run_id=run_id)
    started = time.monotonic()
    run = rest.wait_run(dag_id, run_id, timeout=timeout)
    tasks = rest.task_instances(dag_id, run_id)
    print(f"{dag_id}/{run_id} {run['state']} in {time.monotonic() - started:.1f}s: {tasks}")
    if run["state"] != state:
        logs = "\n".join(
            f"--- {ti['task_id']} try {ti['try_number']}\n"
            f"{rest.task_log(dag_id, run_id, ti['task_id'], ti['try_number'])[-2500:]}"
            for ti in rest.task_instance_list(dag_id, run_id)
            if ti["state"] == "failed"
        )
        pytest.fail(
            f"{dag_id}/{run_id} ended {run['state']}, not {state}: {tasks}\n{logs}\n{airflow_services.diagnostics(10)}"
        )
    return run


def test_release_through_rest(airflow_services, rest, app):
    dag_id, cluster = app
    release(airflow_services, rest, dag_id, "v1", {"image": V1})

    assert cluster.selector() == {"app": "test-blue"}
    assert cluster.deployments() == {"test-blue": V1}
    assert rest.task_instances(dag_id, "v1")["rollback"] == "skipped"


def test_refused_form_creates_no_run(airflow_services, rest, app):
    dag_id, cluster = app
    before, cluster_before = rest.runs(dag_id), cluster.snapshot()

    resp = rest.trigger(dag_id, {"image": "Not A Valid Image!"}, check=False)

    assert resp.status_code == 400, resp.text
    assert "Not A Valid Image!" in resp.json()["detail"], resp.text
    time.sleep(3)  # a scheduler loop or two: nothing may show up late either
    assert rest.runs(dag_id) == before == []
    assert cluster.snapshot() == cluster_before


def test_mark_deferred_soak_failed_rolls_back(airflow_services, rest, app):
    """The one-action rollback: during the soak, mark `soak` failed (the UI's "Mark as failed")."""
    dag_id, cluster = app
    release(airflow_services, rest, dag_id, "v1", {"image": V1})
    rest.trigger(dag_id, {"image": V2, "soak": "5m"}, run_id="v2")
    rest.wait_task_state(dag_id, "v2", "soak", "deferred", timeout=120)
    rest.wait_trigger_running(dag_id, "v2", "soak", timeout=60)
    # the triggerer has started it: "trigger <dag>/<run>/<task>/<map index>/<try> (ID n) starting"
    rest.wait_log(dag_id, "v2", "soak", f"{dag_id}/v2/soak/-1/1 (ID ", timeout=30)
    assert cluster.selector() == {"app": "test-green"}
    assert cluster.deployments() == {"test-blue": V1, "test-green": V2}

    marked = rest.mark_task(dag_id, "v2", "soak", "failed")
    assert [(ti["task_id"], ti["state"]) for ti in marked] == [("soak", "failed")]

    started = time.monotonic()
    run = rest.wait_run(dag_id, "v2", timeout=120)
    tasks = rest.task_instances(dag_id, "v2")
    cancelled = "Trigger cancelled by user action" in rest.task_log(dag_id, "v2", "soak")
    print(
        f"after mark-failed: run {run['state']} in {time.monotonic() - started:.1f}s, tasks {tasks}, "
        f"the soak trigger {'was' if cancelled else 'was NOT'} cancelled (on_kill)"
    )
    assert run["state"] == "failed", tasks
    assert tasks["soak"] == "failed", tasks
    assert tasks["rollback"] == "success", f"{tasks}\n{airflow_services.diagnostics(10)}"
    assert tasks["retire_old_color"] == "upstream_failed", tasks
    assert cluster.selector() == {"app": "test-blue"}
    assert cluster.deployments() == {"test-blue": V1}
