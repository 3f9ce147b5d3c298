"""The release lifecycle's own logic, over an in-memory platform."""

import json

import pytest

from bluegreen.release import records as rec
from bluegreen.release.health import HttpResult
from bluegreen.release.model import ReleaseError
from bluegreen.release.steps import Release

IMAGE1, IMAGE2, IMAGE3 = "registry.local/test:v1", "registry.local/test:v2", "registry.local/test:v3"


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def passing_probe(check, url_fields):
    return HttpResult(True, "GET answered 200")


def release(app, platform, run_id, clock=None):
    clock = clock or Clock()
    return Release(app, platform, run_id, clock=clock, sleep=clock.sleep, poll_interval=0.01, probe=passing_probe)


def full_release(app, platform, run_id, image):
    r = release(app, platform, run_id)
    plan = r.plan(image, 3, 5)
    r.deploy(plan)
    r.switch(plan)
    r.mark_soaked(plan)
    r.retire_old(plan)
    r.finish(plan)
    return plan


def green_deployed(app, platform):
    """blue (v1) is live after a first release; run2 has deployed green (v2), not yet switched."""
    full_release(app, platform, "run1", IMAGE1)
    r = release(app, platform, "run2")
    plan = r.plan(IMAGE2, 3, 5)
    r.deploy(plan)
    return r, plan


def switched_to_green(app, platform):
    """As green_deployed, and run2 has switched the Service to green."""
    r, plan = green_deployed(app, platform)
    r.switch(plan)
    return r, plan


def test_first_release_creates_the_service_for_its_lock_then_deploys_blue_and_switches(app, platform):
    plan = full_release(app, platform, "run1", IMAGE1)
    assert (plan.new_color, plan.old_color) == ("blue", None)
    assert platform.service["selector"] == {"app": "test-blue"}
    # the Service selects nothing until blue is ready
    assert (
        platform.calls.index("create service {'bluegreen.io/selects': 'nothing'}")
        < platform.calls.index("apply blue")
        < platform.calls.index("write service {'app': 'test-blue'}")
    )
    assert rec.LOCK not in platform.service["annotations"]
    record = json.loads(platform.service["annotations"][rec.RELEASE])
    assert (record["run_id"], record["state"], record["to"]) == ("run1", "complete", "blue")


def test_releases_alternate_colors_and_delete_the_old_one(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    p2 = full_release(app, platform, "run2", IMAGE2)
    assert (p2.old_color, p2.new_color, p2.old_image) == ("blue", "green", IMAGE1)
    assert platform.service["selector"] == {"app": "test-green"} and set(platform.workloads) == {"green"}
    p3 = full_release(app, platform, "run3", IMAGE3)
    assert (p3.old_color, p3.new_color) == ("green", "blue")
    assert set(platform.workloads) == {"blue"}
    history = json.loads(platform.service["annotations"][rec.HISTORY])
    assert [h["run_id"] for h in history] == ["run1", "run2", "run3"]
    previous = json.loads(platform.service["annotations"][rec.PREVIOUS_RELEASE])
    assert (previous["color"], previous["image"]) == ("green", IMAGE2)
    assert previous["manifest"]["metadata"]["name"] == "test-green"


def test_a_selector_matching_neither_color_is_refused_and_nothing_changes(app, platform):
    platform.service = {"selector": {"app": "something-else"}, "annotations": {}, "version": 1}
    with pytest.raises(ReleaseError, match="matches neither test-blue .* nor test-green"):
        release(app, platform, "run1").plan(IMAGE1, 3, 5)
    assert platform.calls == [] and platform.service["annotations"] == {}


def test_replanning_the_same_run_recalls_the_plan_even_after_the_switch(app, platform):
    r, plan = switched_to_green(app, platform)
    again = release(app, platform, "run2").plan(IMAGE2, 3, 5)
    assert (again.old_color, again.new_color) == ("blue", "green")
    # and re-running the switch is a no-op, not a flip back
    release(app, platform, "run2").switch(again)
    assert platform.service["selector"] == {"app": "test-green"}


def test_another_runs_lock_refuses_a_second_release(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    release(app, platform, "run2").plan(IMAGE2, 3, 5)
    with pytest.raises(ReleaseError, match="locked by release run run2"):
        release(app, platform, "run3").plan(IMAGE3, 3, 5)
    assert "apply green" not in platform.calls


def test_an_expired_lock_is_taken_over(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    release(app, platform, "run2").plan(IMAGE2, 3, 5)
    later = Clock()
    later.now += app.lock_ttl + 1
    plan = release(app, platform, "run3", later).plan(IMAGE3, 3, 5)
    assert plan.run_id == "run3"


def test_switch_refuses_a_color_that_is_not_fully_ready_now(app, platform):
    r, plan = green_deployed(app, platform)
    platform.workloads["green"]["ready"] = 2
    with pytest.raises(ReleaseError, match="not fully ready now .*2/3"):
        r.switch(plan)
    assert platform.service["selector"] == {"app": "test-blue"}


def test_switch_retries_after_a_conflicting_write(app, platform):
    r, plan = green_deployed(app, platform)
    platform.conflicts_to_raise = 2
    r.switch(plan)
    assert platform.service["selector"] == {"app": "test-green"}


def test_switch_fails_when_endpoints_never_converge(app, platform):
    r, plan = green_deployed(app, platform)
    platform.backends_follow_selector = False
    with pytest.raises(ReleaseError, match="did not converge on green"):
        r.switch(plan)


def test_the_old_color_is_not_removed_before_the_soak_passed(app, platform):
    r, plan = switched_to_green(app, platform)
    with pytest.raises(ReleaseError, match="soak has not passed"):
        r.retire_old(plan)
    assert "blue" in platform.workloads


def test_the_color_the_service_points_at_is_never_removed(app, platform):
    r, plan = switched_to_green(app, platform)
    r.mark_soaked(plan)
    # someone points the Service back at blue behind the release's back
    platform.service["selector"] = {"app": "test-blue"}
    with pytest.raises(ReleaseError):
        r.retire_old(plan)
    assert "blue" in platform.workloads


def test_rollback_during_soak_switches_back_and_removes_the_new_color(app, platform):
    r, plan = switched_to_green(app, platform)
    summary = r.rollback(plan, "soak: green unhealthy")
    assert platform.service["selector"] == {"app": "test-blue"}
    assert set(platform.workloads) == {"blue"}
    assert (
        "rolled back: soak: green unhealthy" in summary and "test-blue (registry.local/test:v1) is serving" in summary
    )
    assert rec.LOCK not in platform.service["annotations"]
    # idempotent: running it again changes nothing and does not fail
    calls = len(platform.calls)
    release(app, platform, "run2").rollback(plan, "again")
    assert platform.service["selector"] == {"app": "test-blue"}
    assert [c for c in platform.calls[calls:] if not c.startswith("write service")] == ["delete green"]


def test_rollback_before_the_switch_leaves_the_service_alone(app, platform):
    r, plan = green_deployed(app, platform)
    writes = [c for c in platform.calls if c.startswith("write service {'app': 'test-green'")]
    r.rollback(plan, "wait_until_ready: never ready")
    assert platform.service["selector"] == {"app": "test-blue"} and set(platform.workloads) == {"blue"}
    assert not writes


def test_rollback_refuses_to_switch_to_an_old_color_that_is_not_ready(app, platform):
    r, plan = switched_to_green(app, platform)
    platform.workloads["blue"]["ready"] = 1
    with pytest.raises(ReleaseError, match="cannot roll back .* test-green keeps serving"):
        r.rollback(plan, "soak failed")
    assert platform.service["selector"] == {"app": "test-green"} and "green" in platform.workloads


def test_a_failed_first_release_removes_what_it_created(app, platform):
    r = release(app, platform, "run1")
    plan = r.plan(IMAGE1, 3, 5)
    r.deploy(plan)
    r.switch(plan)
    r.rollback(plan, "soak failed")
    assert platform.service is None and platform.workloads == {}


def test_scale_to_zero_keeps_the_old_color(app, platform):
    import dataclasses

    app = dataclasses.replace(app, old_color_policy="scale-to-zero")
    platform.app = app
    full_release(app, platform, "run1", IMAGE1)
    full_release(app, platform, "run2", IMAGE2)
    assert platform.workloads["blue"]["desired"] == 0 and "scale blue 0" in platform.calls


def test_restore_previous_release_after_the_old_color_is_gone(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    full_release(app, platform, "run2", IMAGE2)
    r = release(app, platform, "run3")
    plan = r.plan(None, 3, 5, restore_previous=True)
    assert (plan.new_color, plan.image) == ("blue", IMAGE1)
    assert plan.manifest["metadata"]["name"] == "test-blue"


def test_skip_if_live_plans_nothing_for_the_live_image(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    plan = release(app, platform, "run2").plan(IMAGE1, 3, 5, skip_if_live=True)
    assert plan.noop_reason and "already live" in plan.noop_reason
    assert rec.LOCK not in platform.service["annotations"]


def test_deploy_refuses_when_someone_else_switched_meanwhile(app, platform):
    full_release(app, platform, "run1", IMAGE1)
    r = release(app, platform, "run2")
    plan = r.plan(IMAGE2, 3, 5)
    platform.workloads["green"] = dict(platform.workloads["blue"])
    platform.service["selector"] = {"app": "test-green"}
    with pytest.raises(ReleaseError, match="someone else changed it"):
        r.deploy(plan)
