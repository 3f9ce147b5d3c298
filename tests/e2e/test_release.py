"""The release DAG's behaviours, on both platforms: run by Airflow (dag.test(), triggers
inline) against the sandbox, each test checking the cluster afterwards."""

from __future__ import annotations

import time

import pytest

from .harness import clear_and_resume, run_dag, task_states

pytestmark = [pytest.mark.e2e]

V1, V2, V3 = "registry.local/test:v1", "registry.local/test:v2", "registry.local/test:v3"
STEPS = ["plan", "deploy_new_color", "wait_until_ready", "switch_traffic", "soak", "retire_old_color", "finish"]


def selects(app, color) -> dict:
    return app.app.selector_for(color)


def test_three_releases_alternate_colors_without_dropping_a_request(release_app):
    app = release_app()
    first = app.release(V1)
    assert first.state == "success", task_states(first)
    assert app.selector() == selects(app, "blue")
    assert app.deployments() == {"test-blue": V1}
    assert len(app.members("blue")) == 3
    assert app.serves(V1)

    for image, old, new in ((V2, "blue", "green"), (V3, "green", "blue")):
        with app.traffic() as traffic:
            run = app.release(image)
            # until the loop's next answer (on a busy machine one request can take seconds)
            answers, deadline = len(traffic.ok), time.monotonic() + 10
            while len(traffic.ok) <= answers and not traffic.failures and time.monotonic() < deadline:
                time.sleep(0.05)
        assert run.state == "success", task_states(run)
        assert app.selector() == selects(app, new)
        assert app.deployments() == {f"test-{new}": image}, "the old color is deleted"
        assert not app.members(old), "the old color's members are gone"
        assert not traffic.failures, traffic.summary()
        assert traffic.versions()[0] != image and traffic.versions()[-1] == image
        assert len(traffic.versions()) == 2, f"the version flips exactly once: {traffic.summary()}"
    annotations = app.annotations()
    assert "bluegreen.io/lock" not in annotations
    label = next(iter(selects(app, "green")))
    assert annotations["bluegreen.io/previous-selector"].replace(" ", "") == f'{{"{label}":"test-green"}}'


def test_readiness_that_never_comes_removes_green_and_leaves_blue_serving(release_app):
    app = release_app(readiness_timeout="4s")
    assert app.release(V1).state == "success"
    started = time.monotonic()
    with app.traffic() as traffic:
        run = app.release("registry.local/test:v2-never-ready")
    states = task_states(run)
    assert run.state == "failed"
    assert states["wait_until_ready"] == "failed" and states["rollback"] == "success", states
    assert states["switch_traffic"] == "upstream_failed"
    assert app.selector() == selects(app, "blue")
    assert app.deployments() == {"test-blue": V1}
    assert not traffic.failures and traffic.versions() == [V1], traffic.summary()
    assert time.monotonic() - started < 40


def test_a_soak_failure_switches_back_to_blue_and_removes_green(release_app):
    app = release_app(soak="14s")
    assert app.release(V1).state == "success"
    with app.traffic() as traffic:
        run = app.release("registry.local/test:v2-fail-after-6s")
    states = task_states(run)
    assert run.state == "failed" and states["soak"] == "failed" and states["rollback"] == "success", states
    assert states["retire_old_color"] == "upstream_failed"
    assert app.selector() == selects(app, "blue")
    assert app.deployments() == {"test-blue": V1}
    assert app.serves(V1)
    assert traffic.versions()[0] == V1 and traffic.versions()[-1] == V1, traffic.summary()
    assert "registry.local/test:v2-fail-after-6s" in traffic.versions(), "green served during its soak"


def test_bad_params_fail_before_anything_changes(release_app):
    from airflow.sdk.exceptions import ParamValidationError

    app = release_app()
    assert app.release(V1).state == "success"
    before = (app.deployments(), app.service_version())
    with pytest.raises(ParamValidationError, match="image"):
        app.release("Not A Valid Image!")
    with pytest.raises(ParamValidationError, match="replicas"):
        app.release(V2, replicas=0)
    with pytest.raises(ParamValidationError, match="soak"):
        app.release(V2, soak="five minutes")
    assert (app.deployments(), app.service_version()) == before


def test_a_service_selecting_neither_color_is_refused(release_app):
    app = release_app()
    assert app.release(V1).state == "success"
    app.break_selector()
    before = app.service_version()
    run = app.release(V2)
    assert run.state == "failed" and task_states(run)["plan"] == "failed"
    assert task_states(run)["rollback"] == "skipped"
    assert app.deployments() == {"test-blue": V1}
    assert app.service_version() == before


def test_a_service_pointed_at_a_color_that_does_not_exist_is_refused_with_what_to_do(release_app):
    """Found by the chaos suite: a person pointed the Service at green, which did not exist; the next
    release took green for the old color and replaced blue, the only workload, with the new image."""
    app = release_app()
    assert app.release(V1).state == "success"
    app.break_selector(app.app.selector_for("green"))
    before = app.service_version()
    run = app.release(V2)
    assert run.state == "failed" and task_states(run)["plan"] == "failed"
    assert app.deployments() == {"test-blue": V1}
    assert app.service_version() == before  # no lock taken either: the refusal changed nothing


@pytest.mark.parametrize("downstream", [False, True], ids=["task-alone", "with-downstream"])
def test_clearing_each_task_of_a_finished_run_converges_on_the_same_state(release_app, downstream):
    app = release_app()
    assert app.release(V1).state == "success"
    dag = app.dag()
    run = run_dag(dag, {"image": V2})
    assert run.state == "success", task_states(run)

    def end_state():
        annotations = app.annotations()
        return (
            app.selector(),
            app.deployments(),
            annotations.get("bluegreen.io/run-id"),
            annotations.get("bluegreen.io/previous-selector"),
        )

    expected = end_state()
    assert expected[:2] == (selects(app, "green"), {"test-green": V2})
    for task_id in STEPS:
        again = clear_and_resume(dag, run, [task_id], include_downstream=downstream)
        assert again.state == "success", (task_id, task_states(again))
        assert end_state() == expected, f"clearing {task_id} changed the cluster"
    assert "bluegreen.io/lock" not in app.annotations()


def test_clearing_a_failed_readiness_after_the_fix_finishes_the_release(release_app, control):
    app = release_app(readiness_timeout="4s")
    assert app.release(V1).state == "success"
    image = f"registry.local/test:v2-never-ready-{app.ns[-6:]}"
    dag = app.dag()
    run = run_dag(dag, {"image": image})
    assert run.state == "failed" and app.deployments() == {"test-blue": V1}
    control.set_behaviour(image, "ready-after-0.2s")
    again = clear_and_resume(dag, run, ["deploy_new_color"])
    assert again.state == "success", task_states(again)
    assert app.selector() == selects(app, "green") and app.deployments() == {"test-green": image}
