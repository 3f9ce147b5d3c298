"""The Kubernetes release DAG, run by Airflow (dag.test(), triggers inline) against the
sandbox through the real kubernetes client; every test checks the cluster afterwards."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from bluegreen.apps.config import load_app
from bluegreen.apps.dag_factory import release_dag

from .harness import TrafficLoop, run_dag, task_states, write_app

pytestmark = [pytest.mark.e2e]

V1, V2, V3 = "registry.local/test:v1", "registry.local/test:v2", "registry.local/test:v3"


class K8sApp:
    """One test's app: the seed's test app in the test's own namespace."""

    def __init__(self, tmp_path, kube, namespace, **fields):
        fields = {"namespace": namespace, "soak": "2s", "readiness_timeout": "30s", "check_interval": "0.5s",
                  "delete_timeout": "30s", "switch_timeout": "20s", **fields}
        self.path = write_app(tmp_path, namespace, "kubernetes", **fields)
        self.app = load_app(self.path)
        self.ns = namespace
        self.apps = client.AppsV1Api(kube)
        self.core = client.CoreV1Api(kube)

    def reload(self):
        self.app = load_app(self.path)

    def release(self, image, **conf):
        return run_dag(release_dag(self.app), {"image": image, **conf})

    def service(self):
        return self.core.read_namespaced_service("test", self.ns)

    def selector(self):
        return self.service().spec.selector

    def node_port(self):
        return self.service().spec.ports[0].node_port

    def deployments(self) -> dict[str, str]:
        return {d.metadata.name: d.spec.template.spec.containers[0].image
                for d in self.apps.list_namespaced_deployment(self.ns).items}

    def pods(self, color):
        return self.core.list_namespaced_pod(self.ns, label_selector=f"app=test-{color}").items

    def traffic(self):
        return TrafficLoop(f"http://127.0.0.1:{self.node_port()}/")

    def serves(self, image):
        import requests

        answers = {requests.get(f"http://127.0.0.1:{self.node_port()}/", timeout=5).json()["image"]
                   for _ in range(6)}
        return answers == {image}


@pytest.fixture
def k8s_app(tmp_path, kube, k8s_namespace, airflow_env):
    return lambda **fields: K8sApp(tmp_path, kube, k8s_namespace, **fields)


def test_three_releases_alternate_colors_without_dropping_a_request(k8s_app):
    app = k8s_app()
    first = app.release(V1)
    assert first.state == "success", task_states(first)
    assert app.selector() == {"app": "test-blue"}
    assert app.deployments() == {"test-blue": V1}
    assert len([p for p in app.pods("blue") if p.status.phase == "Running"]) == 3
    assert app.serves(V1)

    for image, old, new in ((V2, "blue", "green"), (V3, "green", "blue")):
        with app.traffic() as traffic:
            run = app.release(image)
            time.sleep(0.3)
        assert run.state == "success", task_states(run)
        assert app.selector() == {"app": f"test-{new}"}
        assert app.deployments() == {f"test-{new}": image}, "the old color is deleted"
        assert not app.pods(old), "the old color's pods are gone"
        assert not traffic.failures, traffic.summary()
        assert traffic.versions()[0] != image and traffic.versions()[-1] == image
        assert len(traffic.versions()) == 2, f"the version flips exactly once: {traffic.summary()}"
    annotations = app.service().metadata.annotations
    assert annotations["bluegreen.io/previous-selector"] == '{"app":"test-green"}'
    assert "bluegreen.io/lock" not in annotations


def test_readiness_that_never_comes_removes_green_and_leaves_blue_serving(k8s_app):
    app = k8s_app(readiness_timeout="3s")
    assert app.release(V1).state == "success"
    started = time.monotonic()
    with app.traffic() as traffic:
        run = app.release("registry.local/test:v2-never-ready")
    assert run.state == "failed"
    states = task_states(run)
    assert states["wait_until_ready"] == "failed" and states["rollback"] == "success"
    assert states["switch_traffic"] == "upstream_failed"
    assert app.selector() == {"app": "test-blue"}
    assert app.deployments() == {"test-blue": V1}
    assert not traffic.failures and traffic.versions() == [V1], traffic.summary()
    assert time.monotonic() - started < 30


def test_a_progress_deadline_fails_fast_well_before_the_timeout(k8s_app, tmp_path):
    app = k8s_app(readiness_timeout="120s")
    assert app.release(V1).state == "success"
    green = app.path.parent / app.ns / "test-green.yaml"
    green.write_text(green.read_text().replace("spec:\n  replicas: 3", "spec:\n  progressDeadlineSeconds: 2\n  replicas: 3"))
    app.reload()
    started = time.monotonic()
    run = app.release("registry.local/test:v2-never-ready")
    elapsed = time.monotonic() - started
    assert run.state == "failed" and task_states(run)["wait_until_ready"] == "failed"
    assert elapsed < 40, f"took {elapsed:.0f}s: the progress deadline did not fail it fast"
    assert app.selector() == {"app": "test-blue"} and app.deployments() == {"test-blue": V1}


def test_a_soak_failure_switches_back_to_blue_and_removes_green(k8s_app):
    app = k8s_app(soak="6s")
    assert app.release(V1).state == "success"
    with app.traffic() as traffic:
        run = app.release("registry.local/test:v2-fail-after-3s")
    states = task_states(run)
    assert run.state == "failed" and states["soak"] == "failed" and states["rollback"] == "success"
    assert states["retire_old_color"] == "upstream_failed"
    assert app.selector() == {"app": "test-blue"}
    assert app.deployments() == {"test-blue": V1}
    assert app.serves(V1)
    # Traffic went to green and came back to blue; every request got an answer from a
    # ready pod (green's failing pods leave the endpoints before they answer 503).
    assert traffic.versions()[0] == V1 and traffic.versions()[-1] == V1, traffic.summary()


def test_bad_params_fail_before_anything_changes(k8s_app):
    from airflow.sdk.exceptions import ParamValidationError

    app = k8s_app()
    assert app.release(V1).state == "success"
    before = (app.deployments(), app.service().metadata.resource_version)
    with pytest.raises(ParamValidationError, match="image"):
        app.release("Not A Valid Image!")
    with pytest.raises(ParamValidationError, match="replicas"):
        app.release(V2, replicas=0)
    assert (app.deployments(), app.service().metadata.resource_version) == before


def test_a_service_selecting_neither_color_is_refused(k8s_app):
    app = k8s_app()
    assert app.release(V1).state == "success"
    app.core.patch_namespaced_service("test", app.ns, [{"op": "replace", "path": "/spec/selector",
                                                        "value": {"app": "somebody-else"}}])
    run = app.release(V2)
    assert run.state == "failed" and task_states(run)["plan"] == "failed"
    assert app.deployments() == {"test-blue": V1}
    assert app.selector() == {"app": "somebody-else"}


STEPS = ["plan", "deploy_new_color", "wait_until_ready", "switch_traffic", "soak", "retire_old_color", "finish"]


def end_state(app):
    svc = app.service()
    annotations = {k: v for k, v in (svc.metadata.annotations or {}).items()
                   if k in ("bluegreen.io/run-id", "bluegreen.io/previous-selector")}
    return app.selector(), app.deployments(), annotations


@pytest.mark.parametrize("downstream", [False, True], ids=["task-alone", "with-downstream"])
def test_clearing_each_task_of_a_finished_run_converges_on_the_same_state(k8s_app, downstream):
    from .harness import clear_and_resume

    app = k8s_app()
    assert app.release(V1).state == "success"
    dag = release_dag(app.app)
    run = run_dag(dag, {"image": V2})
    assert run.state == "success", task_states(run)
    expected = end_state(app)
    assert expected[0] == {"app": "test-green"} and expected[1] == {"test-green": V2}
    for task_id in STEPS:
        again = clear_and_resume(dag, run, [task_id], include_downstream=downstream)
        assert again.state == "success", (task_id, task_states(again))
        assert end_state(app) == expected, f"clearing {task_id} changed the cluster"
    assert "bluegreen.io/lock" not in (app.service().metadata.annotations or {})


def test_clearing_a_failed_readiness_after_fixing_the_image_behaviour_finishes_the_release(k8s_app, control):
    from .harness import clear_and_resume

    app = k8s_app(readiness_timeout="3s")
    assert app.release(V1).state == "success"
    image = f"registry.local/test:v2-never-ready-{app.ns[-6:]}"
    dag = release_dag(app.app)
    run = run_dag(dag, {"image": image})
    assert run.state == "failed" and app.deployments() == {"test-blue": V1}
    control.set_behaviour(image, "ready-after-0.2s")
    again = clear_and_resume(dag, run, ["deploy_new_color"])
    assert again.state == "success", task_states(again)
    assert app.selector() == {"app": "test-green"} and app.deployments() == {"test-green": image}
