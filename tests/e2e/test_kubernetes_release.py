"""What only the Kubernetes release does."""

from __future__ import annotations

import time

import pytest

from .harness import task_states

pytestmark = [pytest.mark.e2e]

V1 = "registry.local/test:v1"


def test_a_progress_deadline_fails_fast_well_before_the_timeout(k8s_app):
    app = k8s_app(readiness_timeout="120s")
    assert app.release(V1).state == "success"
    app.edit_manifest(
        "green", lambda text: text.replace("spec:\n  replicas: 3", "spec:\n  progressDeadlineSeconds: 2\n  replicas: 3")
    )
    started = time.monotonic()
    run = app.release("registry.local/test:v2-never-ready")
    elapsed = time.monotonic() - started
    assert run.state == "failed" and task_states(run)["wait_until_ready"] == "failed"
    assert elapsed < 40, f"took {elapsed:.0f}s: the progress deadline did not fail it fast"
    assert app.selector() == {"app": "test-blue"} and app.deployments() == {"test-blue": V1}


def test_the_switch_replaces_the_selector_exactly_and_keeps_the_rest_of_the_service(k8s_app):
    app = k8s_app()
    assert app.release(V1).state == "success"
    before = app.service()
    # a key the release does not know about must not survive the switch (a merge patch would keep it)
    app.core.patch_namespaced_service(
        "test",
        app.ns,
        {"spec": {"selector": {"app": "test-blue", "tier": "web"}}, "metadata": {"labels": {"team": "shop"}}},
    )
    app.edit_manifest(
        "blue",
        lambda t: t.replace(
            "      labels:\n        app: test-blue", "      labels:\n        app: test-blue\n        tier: web"
        ),
    )
    assert app.release("registry.local/test:v2").state == "success"
    after = app.service()
    assert after.spec.selector == {"app": "test-green"}
    assert after.spec.ports[0].node_port == before.spec.ports[0].node_port
    assert after.spec.cluster_ip == before.spec.cluster_ip
    assert after.metadata.labels == {"service": "test", "team": "shop"}
    annotations = after.metadata.annotations
    assert annotations["bluegreen.io/previous-selector"] == '{"app":"test-blue","tier":"web"}'
    assert annotations["bluegreen.io/run-id"].startswith("manual__")
    assert annotations["bluegreen.io/switched-at"].endswith("Z")


def test_the_preview_service_follows_the_new_color_and_returns_on_rollback(k8s_app):
    import yaml

    app = k8s_app(readiness_timeout="4s")
    preview = app.manifest_path("blue").parent / "test-preview.yaml"
    doc = yaml.safe_load((app.manifest_path("blue").parent / "test-svc.yaml").read_text())
    doc["metadata"]["name"] = "test-preview"
    doc["spec"] = {
        "type": "ClusterIP",
        "ports": [{"port": 18002, "targetPort": 8000}],
        "selector": {"app": "test-blue"},
    }
    preview.write_text(yaml.safe_dump(doc))
    config = yaml.safe_load(app.path.read_text())
    config["manifests"]["preview"] = f"{app.ns}/test-preview.yaml"
    app.path.write_text(yaml.safe_dump(config))
    app.reload()
    assert app.app.preview_service == "test-preview"

    def preview_selector():
        return app.core.read_namespaced_service("test-preview", app.ns).spec.selector

    assert app.release(V1).state == "success"
    assert preview_selector() == {"app": "test-blue"}
    assert app.release("registry.local/test:v2").state == "success"
    assert preview_selector() == {"app": "test-green"}, "the preview points at the new color (now live)"
    run = app.release("registry.local/test:v3-never-ready")
    assert run.state == "failed"
    assert preview_selector() == {"app": "test-green"}, "after the rollback the preview is back on the live color"
    assert app.selector() == {"app": "test-green"}


def test_scale_to_zero_keeps_the_old_color_and_a_restore_run_brings_it_back(k8s_app):
    app = k8s_app(old_color="scale-to-zero")
    assert app.release(V1).state == "success"
    assert app.release("registry.local/test:v2").state == "success"
    blue = app.apps_api.read_namespaced_deployment("test-blue", app.ns)
    assert blue.spec.replicas == 0 and not app.members("blue"), "blue is kept, at zero replicas"
    assert app.selector() == {"app": "test-green"}

    restored = app.release("registry.local/test:ignored", restore_previous=True)
    assert restored.state == "success", task_states(restored)
    assert app.selector() == {"app": "test-blue"}
    blue = app.apps_api.read_namespaced_deployment("test-blue", app.ns)
    assert (blue.spec.replicas, blue.spec.template.spec.containers[0].image) == (3, V1)
    assert app.apps_api.read_namespaced_deployment("test-green", app.ns).spec.replicas == 0
    assert app.serves(V1)


def test_readiness_and_soak_in_the_worker_watch_the_workload_and_the_service_instead_of_reading_them_at_every_check(
    k8s_app, control
):
    """A readiness wait or a soak shorter than defer_after is judged in the worker, by its trigger's
    own code: the new color and (in the soak) the Service arrive by watch (a list, then a watch, of
    each collection), not by a read of the deployment, a list of its pods and a read of the Service
    at every check."""
    app = k8s_app(soak="8s", check_interval="1s", defer_after="30s")
    assert app.release(V1).state == "success"
    control.reset_counts()
    run = app.release("registry.local/test:v2-ready-after-4s")
    assert run.state == "success", task_states(run)
    rows = [r for r in control.request_counts("kube") if f"/namespaces/{app.ns}/" in r["path"] and r["method"] == "GET"]
    by_name = sum(r["count"] for r in rows if r["path"].endswith("/deployments/test-green"))
    collection = sum(r["count"] for r in rows if r["path"].endswith(f"/namespaces/{app.ns}/deployments"))
    # polled, readiness read test-green about 8 times (every 0.5 s for 4 s) and the soak about 8
    # times (once a check); watched: a list and a watch each, and the steps' own 3 reads (the
    # switch's re-check, the soak's restart baseline, the retirement's check of the live color)
    assert collection >= 2, rows
    assert by_name <= 5, f"test-green read {by_name} times by name: {rows}"
    # the Service: read by the steps (about 10 times in a release) and, polled, once more per check
    # of the soak (8 more); watched, the soak reads it at its start and its end
    services = sum(r["count"] for r in rows if r["path"].endswith(f"/namespaces/{app.ns}/services"))
    service_reads = sum(r["count"] for r in rows if r["path"].endswith("/services/test"))
    assert service_reads <= 13, f"the Service read {service_reads} times by name: {rows}"
    assert services >= 1, rows
