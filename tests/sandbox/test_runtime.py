"""The shared runtime through the sandbox process: pods are real listeners, behaviours by tag."""

from sandbox.runtime.behaviour import Behaviour, image_tag


def test_image_tag_keywords_parse():
    b = Behaviour.from_image("registry.local:5000/shop/web:v2-ready-after-3s-fail-after-10.5s-slow-stop-2s", 1.0)
    assert (b.ready_after, b.fail_after, b.stop_delay, b.never_ready, b.crashloop) == (3.0, 10.5, 2.0, False, False)
    assert Behaviour.from_image("web:never-ready").never_ready
    assert Behaviour.from_image("web:v1_crashloop").crashloop
    assert Behaviour.from_image("web:v1", 0.25).ready_after == 0.25
    # A keyword must stand alone: "forever-ready" is not "never-ready".
    assert not Behaviour.from_image("web:forever-ready").never_ready


def test_image_tag_ignores_registry_port_and_digest():
    assert image_tag("registry.local:5000/web") == ""
    assert image_tag("registry.local:5000/web:v3") == "v3"
    assert image_tag("web@sha256:abc") == ""


def test_control_requires_token(sandbox):
    import requests

    assert requests.get(f"{sandbox.control_url}/requests", timeout=5).status_code == 401
    ok = requests.get(
        f"{sandbox.control_url}/requests", headers={"Authorization": f"Bearer {sandbox.token}"}, timeout=5
    )
    assert ok.status_code == 200 and "requests" in ok.json()
