"""The safety rules under races, crashes and tampering, over the in-memory platform.

Each test here was written against a defect found in review (issue 9) and failed before its fix:
the number in each docstring is the defect's number there."""

import asyncio
import dataclasses
import json
import threading
import time

import pytest

from bluegreen.release import records as rec
from bluegreen.release.model import SELECTS_NOTHING, ConfigError, Conflict, ReleaseError
from bluegreen.release.steps import Release

from .fakes import FakePlatform
from .test_release_steps import IMAGE1, IMAGE2, IMAGE3, Clock, full_release, green_deployed, release, switched_to_green


def lock_of(platform):
    return json.loads(platform.service["annotations"][rec.LOCK])


def test_two_first_releases_of_one_app_do_not_interleave(app, platform):
    """1: the first release takes the lock too (it creates the Service, selecting nothing, with the lock)."""
    first = release(app, platform, "run1")
    plan1 = first.plan(IMAGE1, 3, 5)
    assert platform.service is not None and platform.service["selector"] == SELECTS_NOTHING
    assert lock_of(platform)["run_id"] == "run1"
    with pytest.raises(ReleaseError, match="locked by release run run1"):
        release(app, platform, "run2").plan(IMAGE2, 3, 5)
    first.deploy(plan1)
    first.switch(plan1)
    assert platform.service["selector"] == {"app": "test-blue"}
    record = json.loads(platform.service["annotations"][rec.RELEASE])
    assert record["image"] == IMAGE1 and platform.observe("blue").image == IMAGE1


def test_a_failed_first_release_before_its_switch_removes_the_service_it_created(app, platform):
    """1: the Service that a first release created to hold its lock goes with its rollback."""
    r = release(app, platform, "run1")
    plan = r.plan(IMAGE1, 3, 5)
    r.deploy(plan)
    r.rollback(plan, "wait_until_ready: never ready")
    assert platform.service is None and platform.workloads == {}
    # and the next first release starts from scratch
    again = release(app, platform, "run2").plan(IMAGE2, 3, 5)
    assert (again.new_color, again.old_color) == ("blue", None)


def test_a_run_whose_lock_was_taken_over_can_no_longer_write(app, platform):
    """2: fenced.  run2's lock expires while it waits; run3 takes the app; run2's next step refuses."""
    clock = Clock()
    full_release(app, platform, "run1", IMAGE1)
    r2 = release(app, platform, "run2", clock)
    plan2 = r2.plan(IMAGE2, 3, 5)
    r2.deploy(plan2)
    clock.now += app.lock_ttl + 1
    r3 = release(app, platform, "run3", clock)
    plan3 = r3.plan(IMAGE3, 3, 5)
    calls = len(platform.calls)
    for step in (r2.deploy, r2.switch):
        with pytest.raises(ReleaseError, match="taken over by release run run3"):
            step(plan2)
    with pytest.raises(ReleaseError, match="taken over by release run run3"):
        r2.rollback(plan2, "soak failed")
    assert platform.calls[calls:] == [], "a fenced run changes nothing"
    # and after run3 released the app, run2 is still fenced (it must not pick up a stale plan)
    r3.deploy(plan3)
    r3.switch(plan3)
    r3.mark_soaked(plan3)
    r3.retire_old(plan3)
    r3.finish(plan3)
    with pytest.raises(ReleaseError, match="taken over by release run run3"):
        r2.switch(plan2)


def test_the_waiting_steps_keep_the_lock(app, platform):
    """2: the lock is renewed while a step waits (here: the readiness trigger), and every renewal is fenced."""
    from bluegreen import triggers

    app = dataclasses.replace(app, lock_ttl=1.0)
    platform.app = app
    full_release(app, platform, "run1", IMAGE1)
    r2 = Release(app, platform, "run2", poll_interval=0.01)
    plan = r2.plan(IMAGE2, 3, 5)
    r2.deploy(plan)
    platform.workloads["green"]["ready"] = 1  # never becomes ready
    trigger = triggers.ReadinessTrigger(app.to_json(), plan.to_json(), "run2", deadline=time.time() + 2.5, timeout=2.5)
    triggers_release = lambda *_: Release(app, platform, "run2", poll_interval=0.01)  # noqa: E731
    original = triggers.release_for
    triggers.release_for = triggers_release
    try:
        expiries = []
        stop = threading.Event()

        def watch_lock():
            while not stop.is_set():
                expiries.append(lock_of(platform)["expires"])
                time.sleep(0.2)

        watcher = threading.Thread(target=watch_lock)
        watcher.start()
        event = asyncio.run(_first_event(trigger))
        stop.set()
        watcher.join()
    finally:
        triggers.release_for = original
    assert event["state"] == "failed" and "not ready after" in event["message"]
    assert len(set(expiries)) >= 3, f"the lock was renewed while waiting: {sorted(set(expiries))}"
    # still held when the wait ended: nobody else can take the app
    with pytest.raises(ReleaseError, match="locked by release run run2"):
        Release(app, platform, "run3").plan(IMAGE3, 3, 5)


async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload


def test_an_approval_cannot_outlast_the_lock(tmp_path):
    """2: nothing renews the lock while a person decides, so the config refuses a longer wait."""
    from pathlib import Path

    import yaml

    from bluegreen.apps.config import load_app

    root = Path(__file__).resolve().parents[2] / "dags" / "apps"
    raw = yaml.safe_load((root / "test.yaml").read_text())
    raw["manifests"] = {k: str(root / v) for k, v in raw["manifests"].items()}
    raw.update(approval=True, approval_timeout="4h", lock_ttl="3h")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="approval_timeout='4h'.*shorter than lock_ttl"):
        load_app(tmp_path / "a.yaml")
    raw.update(approval_timeout=None)
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(raw))
    app = load_app(tmp_path / "a.yaml")
    assert app.effective_approval_timeout == app.lock_ttl / 2


class SwitchesBackOnRead(FakePlatform):
    """Someone switches the Service back to blue right after the release's Nth read of it."""

    def __init__(self, app, after_reads: int):
        super().__init__(app)
        self.after_reads = after_reads

    def read_service(self, manifest=None):
        view = super().read_service(manifest)
        if manifest is None and self.service is not None:
            self.after_reads -= 1
            if self.after_reads == 0:
                self.service["selector"] = {"app": "test-blue"}
                self.service["version"] += 1
        return view


def test_retire_never_deletes_a_color_switched_back_between_its_check_and_its_delete(app):
    """3: the retire step's re-check is a conditional write just before the delete."""
    platform = SwitchesBackOnRead(app, after_reads=10**6)
    r, plan = switched_to_green(app, platform)
    r.mark_soaked(plan)
    platform.after_reads = 1  # the next read of the Service is followed by a switch back to blue
    with pytest.raises(ReleaseError, match="refusing to remove test-blue: the Service test points at it"):
        r.retire_old(plan)
    assert "delete blue" not in platform.calls and "blue" in platform.workloads


class SwitchesBackAfterMark(FakePlatform):
    """Someone switches the Service back to blue just after the release marked blue as retiring."""

    def write_service(self, current, selector, annotations, manifest=None):
        view = super().write_service(current, selector, annotations, manifest)
        if manifest is None and annotations.get(rec.RETIRING):
            self.service["selector"] = {"app": "test-blue"}
            self.service["version"] += 1
        return view


def test_retire_puts_the_service_back_when_it_moved_during_the_delete(app):
    """3: when the Service moved to the retiring color anyway, the release points it back and says so."""
    platform = SwitchesBackAfterMark(app)
    r, plan = switched_to_green(app, platform)
    r.mark_soaked(plan)
    with pytest.raises(
        ReleaseError, match="switched .*to test-blue while it was being removed.*points at test-green again"
    ):
        r.retire_old(plan)
    assert platform.service["selector"] == {"app": "test-green"}


def test_clearing_deploy_after_the_switch_never_touches_the_live_color(app, platform):
    """4: re-running deploy_new_color once its color is live does nothing, even if the config changed."""
    r, plan = switched_to_green(app, platform)
    app2 = dataclasses.replace(
        app,
        manifests={
            **app.manifests,
            "green": {
                **app.manifests["green"],
                "metadata": {**app.manifests["green"]["metadata"], "annotations": {"x": "changed"}},
            },
        },
    )
    platform.app = app2
    calls = len(platform.calls)
    result = release(app2, platform, "run2").deploy(plan)
    assert "live" in result
    assert not [c for c in platform.calls[calls:] if c.startswith(("apply", "delete", "scale"))]


def test_a_tampered_previous_release_is_refused_before_anything_changes(app, platform):
    """8: the manifest recorded on the Service is validated as an app's manifest is."""
    full_release(app, platform, "run1", IMAGE1)
    full_release(app, platform, "run2", IMAGE2)
    previous = json.loads(platform.service["annotations"][rec.PREVIOUS_RELEASE])
    for tamper, match in (
        (lambda p: p["manifest"]["metadata"].update(name="somebody-else"), "metadata.name='somebody-else'"),
        (lambda p: p.update(image="Not An Image"), "image='Not An Image'"),
        (lambda p: p["manifest"]["spec"]["template"]["metadata"]["labels"].update(app="test-green"), "selector"),
        (lambda p: p.update(replicas="many"), "replicas='many'"),
    ):
        bad = json.loads(json.dumps(previous))
        tamper(bad)
        platform.service["annotations"][rec.PREVIOUS_RELEASE] = json.dumps(bad)
        calls = len(platform.calls)
        with pytest.raises(ReleaseError, match=match):
            release(app, platform, "run3").plan(None, 3, 5, restore_previous=True)
        assert platform.calls[calls:] == [], "nothing changed"
        assert rec.LOCK not in platform.service["annotations"]


def test_a_tampered_plan_in_the_lock_is_refused(app, platform):
    """8: a re-run of plan recalls its plan from the lock only after validating it."""
    full_release(app, platform, "run1", IMAGE1)
    release(app, platform, "run2").plan(IMAGE2, 3, 5)
    lock = lock_of(platform)
    lock["plan"]["new_color"] = "blue"  # the live color
    platform.service["annotations"][rec.LOCK] = json.dumps(lock)
    with pytest.raises(ReleaseError, match="new_color='blue'"):
        release(app, platform, "run2").plan(IMAGE2, 3, 5)


def test_the_soak_tolerance_survives_a_triggerer_restart(app, platform, monkeypatch):
    """9: the soak's count of unhealthy observations lives on the Service, not in the trigger's memory."""
    from bluegreen import triggers

    app = dataclasses.replace(app, soak_tolerance=1, http_check=None, check_interval=0.01)
    platform.app = app
    r, plan = switched_to_green(app, platform)
    monkeypatch.setattr(triggers, "release_for", lambda *_: Release(app, platform, "run2", poll_interval=0.01))
    r.start_soak(plan)
    platform.workloads["green"]["ready"] = 2  # one unhealthy observation: tolerated
    serialized = triggers.SoakTrigger(app.to_json(), plan.to_json(), "run2").serialize()

    async def one_observation(trigger):
        # the trigger's first unhealthy observation is tolerated: it keeps waiting; stop it there
        task = asyncio.ensure_future(_first_event(trigger))
        await asyncio.sleep(0.3)
        task.cancel()

    from airflow.sdk._shared.module_loading import import_string

    asyncio.run(one_observation(import_string(serialized[0])(**serialized[1])))
    # the triggerer restarts: a new trigger from the same serialized arguments
    event = asyncio.run(_first_event(import_string(serialized[0])(**serialized[1])))
    assert event["state"] == "failed" and "only 2/3 ready" in event["message"], event


def test_a_first_release_that_takes_over_an_abandoned_one_owns_its_service(app, platform):
    """1: run1's first release stopped before its switch and its lease ran out; run2 goes on from its
    Service, and run2's rollback removes what both left."""
    clock = Clock()
    r1 = release(app, platform, "run1", clock)
    r1.deploy(r1.plan(IMAGE1, 3, 5))
    clock.now += app.lock_ttl + 1
    r2 = release(app, platform, "run2", clock)
    plan2 = r2.plan(IMAGE2, 3, 5)
    assert (plan2.new_color, plan2.old_color) == ("blue", None)
    assert platform.service["annotations"][rec.CREATED_BY] == "run2"
    r2.deploy(plan2)
    assert platform.observe("blue").image == IMAGE2
    r2.rollback(plan2, "wait_until_ready: never ready")
    assert platform.service is None and platform.workloads == {}


# ---------------------------------------------------------------------------------------------
# Found by the chaos suite (chaos/README.md, "Found"); each failed before its fix.
# ---------------------------------------------------------------------------------------------
class SlowSwitchBack(FakePlatform):
    """The Service write that switches back to blue lands ``late`` seconds after it was sent (a slow
    API, or a 429 retried after its Retry-After); every delete is timed."""

    def __init__(self, app, clock, late):
        super().__init__(app)
        self.clock, self.late, self.deleted_at, self.landed_at, self.armed = clock, late, {}, None, False

    def write_service(self, current, selector, annotations, manifest=None):
        if self.armed and manifest is None and selector == {"app": "test-blue"} and self.landed_at is None:
            self.clock.now += self.late
            self.landed_at = self.clock.now  # stored (and so sent to the proxies) only now
        return super().write_service(current, selector, annotations, manifest)

    def delete_color(self, color):
        self.deleted_at[color] = self.clock.now
        super().delete_color(color)


def test_the_drain_is_counted_from_when_the_switch_back_landed(app):
    """drain: a rollback whose switch back answers late still waits drain_delay after the write landed,
    not after the timestamp it put in the write (which is older by the write's latency)."""
    clock = Clock()
    platform = SlowSwitchBack(app, clock, late=app.drain_delay + 1)
    full_release(app, platform, "run1", IMAGE1)
    r = release(app, platform, "run2", clock)
    plan = r.plan(IMAGE2, 3, 5)
    r.deploy(plan)
    r.switch(plan)
    platform.armed = True
    r.rollback(plan, "soak failed")
    assert platform.service["selector"] == {"app": "test-blue"} and "green" not in platform.workloads
    assert platform.deleted_at["green"] - platform.landed_at >= app.drain_delay, (
        f"green deleted {platform.deleted_at['green'] - platform.landed_at:.1f}s after the switch back landed"
    )


class DeletesGreenWhileTheSwitchReadsBlue(FakePlatform):
    """A person deletes green while the switch reads the old color's manifest (for its record)."""

    def read_manifest(self, color):
        manifest = super().read_manifest(color)
        if color == "blue" and "green" in self.workloads:
            self.workloads.pop("green")
        return manifest


def test_the_switch_checks_readiness_last_before_its_write(app):
    """stale-switch: the readiness re-check is the switch's last read before the write, so a color
    deleted during the switch's other reads is never switched to."""
    platform = DeletesGreenWhileTheSwitchReadsBlue(app)
    r, plan = green_deployed(app, platform)
    with pytest.raises(ReleaseError, match="refusing to switch test to test-green: it is not fully ready now"):
        r.switch(plan)
    assert platform.service["selector"] == {"app": "test-blue"}


class DeletesGreenAfterTheSwitch(FakePlatform):
    def write_service(self, current, selector, annotations, manifest=None):
        view = super().write_service(current, selector, annotations, manifest)
        if manifest is None and selector == {"app": "test-green"}:
            self.workloads.pop("green")
        return view


def test_the_switch_stops_waiting_for_endpoints_of_a_deleted_color(app):
    """stale-switch: a color deleted just after the switch cannot converge; the step says so at once
    instead of waiting out switch_timeout with the Service pointing at nothing."""
    clock = Clock()
    platform = DeletesGreenAfterTheSwitch(app)
    full_release(app, platform, "run1", IMAGE1)
    r = release(app, platform, "run2", clock)
    plan = r.plan(IMAGE2, 3, 5)
    r.deploy(plan)
    started = clock.now
    with pytest.raises(ReleaseError, match="points at test-green, which was deleted"):
        r.switch(plan)
    assert clock.now - started < app.switch_timeout / 2


def test_retire_keeps_the_old_color_when_the_live_one_is_no_longer_ready(app, platform):
    """Found by the chaos suite (seed 77098): a person deleted the live green while retire_old_color
    ran, and blue, the only way back, was removed after it: nothing served.  Retire now re-checks
    the color that serves, just before the write that marks the old one for removal."""
    r, plan = switched_to_green(app, platform)
    r.mark_soaked(plan)
    platform.workloads.pop("green")
    with pytest.raises(
        ReleaseError,
        match="refusing to remove test-blue: test-green, which the Service test points at, is not fully ready",
    ):
        r.retire_old(plan)
    assert "blue" in platform.workloads and "delete blue" not in platform.calls
    r.rollback(plan, "green was deleted")
    assert platform.service["selector"] == {"app": "test-blue"} and rec.LOCK not in platform.service["annotations"]


def test_a_release_is_refused_while_the_service_points_at_a_color_that_does_not_exist(app, platform):
    """Found by the chaos suite (seed 700002 under load): a person pointed the Service at green, which
    did not exist, while the next release planned; the plan took green as the old color and the
    release replaced blue (the only workload, and the way back) with the new image.  The plan now
    refuses before anything changes, and says which color to point the Service at."""
    full_release(app, platform, "run1", IMAGE1)
    platform.service["selector"] = {"app": "test-green"}
    platform.service["version"] += 1
    calls = len(platform.calls)
    with pytest.raises(
        ReleaseError,
        match=r"points at test-green, which does not exist.*point it at test-blue "
        r"\(registry.local/test:v1\), which is fully ready: switch to ",
    ):
        release(app, platform, "run2").plan(IMAGE2, 3, 5)
    assert platform.calls[calls:] == [] and rec.LOCK not in platform.service["annotations"]


def _soak_app(app, platform, monkeypatch, tolerance=0):
    from bluegreen import triggers

    app = dataclasses.replace(app, soak_tolerance=tolerance, http_check=None, check_interval=0.01)
    platform.app = app
    monkeypatch.setattr(triggers, "release_for", lambda *_: Release(app, platform, "run2", poll_interval=0.01))
    return app


def test_a_soak_resumed_after_its_end_gets_a_first_look(app, platform, monkeypatch):
    """Found by the chaos suite (a triggerer killed in a soak, and taken over after the soak's end):
    the resumed soak waited 0 s for its first observation, and failed at once with "no observation
    of it since the soak began", rolling back a healthy release."""
    from bluegreen import triggers

    app = _soak_app(app, platform, monkeypatch)
    r, plan = switched_to_green(app, platform)
    state = r.start_soak(plan)
    ended = time.time() - app.switch_timeout - 5  # the soak ended long ago, while no triggerer ran it
    platform.service["annotations"][rec.SOAK] = json.dumps({**state, "ends_at": ended})
    watch = platform.watch

    async def slow_first_answer(color, heartbeat=2.0):
        await asyncio.sleep(0.3)  # a watch's first event takes a moment
        async for status in watch(color, heartbeat):
            yield status

    monkeypatch.setattr(platform, "watch", slow_first_answer)
    event = asyncio.run(_first_event(triggers.SoakTrigger(app.to_json(), plan.to_json(), "run2")))
    assert event["state"] == "passed", event


def test_clearing_a_failed_soak_starts_a_new_soak(app, platform, monkeypatch):
    """Found by the chaos suite: a soak that failed kept its progress on the Service, so a person who
    cleared the soak task (after fixing the color) got the failed verdict again at once."""
    from bluegreen import triggers

    app = _soak_app(app, platform, monkeypatch)
    r, plan = switched_to_green(app, platform)
    platform.workloads["green"]["ready"] = 2
    Release(app, platform, "run2").start_soak(plan)
    failed = asyncio.run(_first_event(triggers.SoakTrigger(app.to_json(), plan.to_json(), "run2")))
    assert failed["state"] == "failed" and rec.SOAK not in platform.service["annotations"], failed
    platform.workloads["green"]["ready"] = 3  # fixed; the person clears the soak task
    started = time.time()
    assert Release(app, platform, "run2").start_soak(plan)["ends_at"] >= started + plan.soak_seconds - 1
    again = asyncio.run(_first_event(triggers.SoakTrigger(app.to_json(), plan.to_json(), "run2")))
    assert again["state"] == "passed", again


def test_the_approval_starts_its_wait_with_a_whole_lease(app, platform):
    """Found in review: keep() renews only when half the lease is gone, so an approval (which nothing
    renews while a person decides) could start with half a lease; it now renews at once."""
    clock = Clock()
    full_release(app, platform, "run1", IMAGE1)
    r = release(app, platform, "run2", clock)
    plan = r.plan(IMAGE2, 3, 5)
    clock.now += app.lock_ttl * 0.4  # less than half the lease gone: keep() alone would not renew
    r.keep(plan, renew=True)
    expires = rec.parse_iso(lock_of(platform)["expires"]).timestamp()
    assert expires >= clock.now + app.lock_ttl - 1


class LosesTheFirstCreateAnswer(FakePlatform):
    """The first apply lands, but its answer is lost; the client's retry finds the object (409)."""

    lost = False

    def apply_color(self, color, manifest):
        result = super().apply_color(color, manifest)
        if not self.lost and color == "green":
            self.lost = True
            raise Conflict("deployments.apps \"test-green\" already exists")
        return result


def test_deploy_converges_when_its_own_create_landed_before_a_retry(app):
    """Found in review: on Kubernetes a create retried after a lost answer got 409 AlreadyExists,
    and the step failed (and rolled back) although the workload was there as wanted."""
    platform = LosesTheFirstCreateAnswer(app)
    r, plan = green_deployed(app, platform)
    assert platform.lost and platform.observe("green").image == IMAGE2
