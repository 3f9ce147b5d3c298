"""The triggers, driven over an in-memory platform: serialization and verdicts."""

import asyncio
import time

from airflow.sdk._shared.module_loading import import_string

from bluegreen.release.steps import Release
from bluegreen.triggers import HoldUntilTrigger, ReadinessTrigger, SoakTrigger

from .test_release_steps import green_deployed


def run_trigger(trigger):
    async def first():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first())


PLAN = {
    "app": "test",
    "run_id": "run2",
    "new_color": "green",
    "old_color": "blue",
    "image": "x/app:v2",
    "replicas": 3,
    "soak_seconds": 60,
}


def test_triggers_serialize_to_an_importable_classpath(app):
    for trigger in (
        ReadinessTrigger(app.to_json(), PLAN, "run2", deadline=1.0, timeout=2.0, not_before=3.0),
        SoakTrigger(app.to_json(), PLAN, "run2", not_before=5.0),
        HoldUntilTrigger(app.to_json(), PLAN, "run2", moment=6.0),
    ):
        classpath, kwargs = trigger.serialize()
        again = import_string(classpath)(**kwargs)
        assert again.serialize() == (classpath, kwargs)
        assert classpath.startswith("bluegreen.triggers.")


def _released_to(app, platform, monkeypatch):
    from bluegreen import triggers

    monkeypatch.setattr(triggers, "release_for", lambda *_: Release(app, platform, "run2", poll_interval=0.01))


def test_readiness_and_soak_fire_with_the_judges_verdict(app, platform, monkeypatch):
    r, plan = green_deployed(app, platform)
    _released_to(app, platform, monkeypatch)
    ready = run_trigger(ReadinessTrigger(app.to_json(), plan.to_json(), "run2", deadline=time.time() + 60, timeout=60))
    assert ready == {"state": "ready", "message": "test-green is ready: 3/3 available"}

    r.switch(plan)
    app_without_http = type(app).from_json({**app.to_json(), "http_check": None, "check_interval": 0.01})
    platform.app = app_without_http
    _released_to(app_without_http, platform, monkeypatch)
    platform.workloads["green"]["ready"] = 2
    soak = run_trigger(SoakTrigger(app.to_json(), plan.to_json(), "run2"))
    assert soak["state"] == "failed" and "only 2/3 ready" in soak["message"]


def test_an_event_is_held_until_not_before(app, platform, monkeypatch):
    r, plan = green_deployed(app, platform)
    _released_to(app, platform, monkeypatch)
    started = time.time()
    run_trigger(
        ReadinessTrigger(
            app.to_json(), plan.to_json(), "run2", deadline=started + 60, timeout=60, not_before=started + 0.5
        )
    )
    assert time.time() - started >= 0.5


def test_a_deadline_holds_when_the_watch_never_answers(app, platform, monkeypatch):
    """A hung API (a watch that yields nothing) does not stall the readiness deadline."""
    r, plan = green_deployed(app, platform)
    _released_to(app, platform, monkeypatch)

    async def silent(color, heartbeat=2.0):
        await asyncio.sleep(3600)
        yield  # pragma: no cover

    monkeypatch.setattr(platform, "watch", silent)
    started = time.time()
    event = run_trigger(ReadinessTrigger(app.to_json(), plan.to_json(), "run2", deadline=started + 1.0, timeout=1.0))
    assert event["state"] == "failed" and "did not answer" in event["message"], event
    assert time.time() - started < 5


def test_a_trigger_carries_identifiers_and_refuses_a_config_changed_under_it(tmp_path):
    """Triggers serialize the app's name, config file and digest (not the config, manifests
    included) and rebuild from the file; a file that changed under a running release is refused,
    naming the file."""
    import shutil
    from pathlib import Path

    import pytest

    from bluegreen import triggers
    from bluegreen.apps.config import load_app
    from bluegreen.release.model import ReleaseError

    apps = tmp_path / "apps"
    shutil.copytree(Path(__file__).resolve().parents[2] / "dags" / "apps", apps)
    app = load_app(apps / "test.yaml")
    _, kwargs = SoakTrigger(app.to_json(), PLAN, "run2").serialize()
    assert set(kwargs["app"]) == {"name", "source", "digest"} and kwargs["app"]["source"] == str(apps / "test.yaml")

    assert triggers.release_for(kwargs["app"], "run2").app == app
    (apps / "test.yaml").write_text((apps / "test.yaml").read_text().replace("replicas: 3", "replicas: 4"))
    with pytest.raises(ReleaseError, match=f"{apps / 'test.yaml'}: the app config of test changed"):
        triggers.release_for(kwargs["app"], "run2")
    event = run_trigger(SoakTrigger(**kwargs))
    assert event["state"] == "failed" and str(apps / "test.yaml") in event["message"], event


def test_a_soak_waiting_for_its_analysis_past_its_end_checks_once_per_interval(app, platform, monkeypatch):
    """Past the soak's end, a verdict that still waits (a check without data, under no_data: wait)
    is judged at the check interval, not in a loop that reads the Service as fast as it answers."""
    from bluegreen import triggers
    from bluegreen.release.ports import Metrics

    r, plan = green_deployed(app, platform)
    r.switch(plan)
    analysis = {
        "connection_id": "prom",
        "checks": [
            {"name": "e", "query": "q", "condition": "< 1", "interval": 0.5, "initial_delay": 0.0, "no_data": "wait"}
        ],
    }
    analysed = type(app).from_json({**app.to_json(), "http_check": None, "check_interval": 0.2, "analysis": analysis})
    platform.app = analysed
    data_from = time.time() + 1.5

    class LateMetrics(Metrics):
        where = "Prometheus (test)"

        def query(self, promql):
            return [0.5] if time.time() >= data_from else []

    release = Release(analysed, platform, "run2", poll_interval=0.01, metrics=LateMetrics())
    probes = []
    probe = release.soak_probe
    monkeypatch.setattr(release, "soak_probe", lambda p, *watched: probes.append(time.time()) or probe(p, *watched))
    monkeypatch.setattr(triggers, "release_for", lambda *_: release)
    short = {**plan.to_json(), "soak_seconds": 0.3}
    soak = run_trigger(SoakTrigger(analysed.to_json(), short, "run2"))
    assert soak["state"] == "passed" and "analysis during the soak passed" in soak["message"], soak
    assert 5 <= len(probes) <= 15, f"{len(probes)} reads of the Service in about 1.5 s at a 0.2 s check interval"


def _soaking(app, platform, monkeypatch, soak_seconds: float):
    """run2 switched to green; its soak's trigger, with reads of the Service and the soak's looks counted."""
    r, plan = green_deployed(app, platform)
    r.switch(plan)
    fast = type(app).from_json({**app.to_json(), "http_check": None, "check_interval": 0.02})
    platform.app = fast
    release = Release(fast, platform, "run2", poll_interval=0.01)
    reads, looks = [], []
    read = platform.read_service
    monkeypatch.setattr(platform, "read_service", lambda *a: reads.append(time.time()) or read(*a))
    probe = release.soak_probe
    monkeypatch.setattr(release, "soak_probe", lambda p, *w: looks.append(w and w[0]) or probe(p, *w))
    from bluegreen import triggers

    monkeypatch.setattr(triggers, "release_for", lambda *_: release)
    plan = type(plan).from_json({**plan.to_json(), "soak_seconds": soak_seconds})
    return SoakTrigger(fast.to_json(), plan.to_json(), "run2"), reads, looks


def test_a_soak_judges_the_service_as_its_watch_delivers_it_and_reads_it_only_at_its_start_and_end(
    app, platform, monkeypatch
):
    trigger, reads, looks = _soaking(app, platform, monkeypatch, soak_seconds=0.6)
    soak = run_trigger(trigger)
    assert soak["state"] == "passed", soak
    watched = [look for look in looks if look]
    # a look every 0.02 s for 0.6 s; the Service read for the soak's start and its last look (the
    # lock is not due within keep_every), and for the first look only if the watch had not
    # delivered it yet: polled, it was read at every look
    assert len(looks) >= 10 and len(watched) >= len(looks) - 2, looks
    assert len(reads) <= 3, f"{len(reads)} reads of the Service for {len(looks)} looks"


def test_a_service_switched_away_during_the_soak_fails_it_through_the_watch(app, platform, monkeypatch):
    trigger, reads, looks = _soaking(app, platform, monkeypatch, soak_seconds=30)

    async def soak_and_switch_back():
        async def person():
            await asyncio.sleep(0.3)
            platform.service["selector"] = app.selector_for("blue")
            platform.service["version"] += 1
            return time.time()

        switched = asyncio.create_task(person())
        async for event in trigger.run():
            return await switched, time.time(), event.payload

    switched, failed_at, soak = asyncio.run(soak_and_switch_back())
    assert soak["state"] == "failed" and "no longer points at it" in soak["message"], soak
    assert failed_at - switched < 2.0, "seen at the next look, not at the next read"
    # read at the soak's start, then not until its failure (which forgets the soak's progress)
    assert not [t for t in reads if reads[0] + 0.1 < t < switched], reads
