"""The triggers, driven over an in-memory platform: serialization and verdicts."""

import asyncio
import time

from airflow.sdk._shared.module_loading import import_string

from bluegreen.triggers import ReadinessTrigger, SoakTrigger


def run_trigger(trigger):
    async def first():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first())


def test_triggers_serialize_to_an_importable_classpath(app):
    for trigger in (ReadinessTrigger(app.to_json(), "green", deadline=1.0, timeout=2.0, not_before=3.0),
                    SoakTrigger(app.to_json(), "green", ends_at=4.0, baseline_restarts=1, not_before=5.0)):
        classpath, kwargs = trigger.serialize()
        again = import_string(classpath)(**kwargs)
        assert again.serialize() == (classpath, kwargs)
        assert classpath.startswith("bluegreen.triggers.")


def test_readiness_and_soak_fire_with_the_judges_verdict(app, platform, monkeypatch):
    from bluegreen import triggers
    from bluegreen.platforms import manifests as mf

    monkeypatch.setattr(triggers, "_app_and_platform", lambda _: (app, platform))
    manifest = mf.with_release(app.platform, app.manifests["green"], "x/app:v2", 3, None)
    platform.apply_color("green", manifest)
    platform.service = {"selector": app.selector_for("green"), "annotations": {}, "version": 1}
    ready = run_trigger(ReadinessTrigger(app.to_json(), "green", deadline=time.time() + 60, timeout=60))
    assert ready == {"state": "ready", "message": "test-green is ready: 3/3 available"}

    app_without_http = type(app).from_json({**app.to_json(), "http_check": None, "check_interval": 0.01})
    monkeypatch.setattr(triggers, "_app_and_platform", lambda _: (app_without_http, platform))
    platform.workloads["green"]["ready"] = 2
    soak = run_trigger(SoakTrigger(app.to_json(), "green", ends_at=time.time() + 60))
    assert soak["state"] == "failed" and "only 2/3 ready" in soak["message"]


def test_an_event_is_held_until_not_before(app, platform, monkeypatch):
    from bluegreen import triggers
    from bluegreen.platforms import manifests as mf

    monkeypatch.setattr(triggers, "_app_and_platform", lambda _: (app, platform))
    platform.apply_color("green", mf.with_release(app.platform, app.manifests["green"], "x/app:v2", 3, None))
    started = time.time()
    run_trigger(ReadinessTrigger(app.to_json(), "green", deadline=started + 60, timeout=60, not_before=started + 0.5))
    assert time.time() - started >= 0.5
