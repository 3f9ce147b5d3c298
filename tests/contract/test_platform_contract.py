"""One contract for every platform: the in-memory FakePlatform of the unit tests, the Kubernetes
adapter and the BCS Mesos adapter (both against the sandbox) must behave alike, method by method,
as the Platform interface documents it.  What the unit tests believe of the fake is held here to
what the real adapters do.

Where the platforms differ by nature, the test says so and asserts what each one does
(BCS refuses a scale below one instance).
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from bluegreen.release.model import SELECTS_NOTHING, ColorStatus, Conflict, ReleaseError

pytestmark = pytest.mark.e2e

V1, V2 = "registry.local/test:v1", "registry.local/test:v2"
URL_FIELDS = {"service", "namespace", "cluster_ip", "port", "node_port", "lb_port"}
TIMEOUT = 30.0


def eventually(probe, what: str, timeout: float = TIMEOUT, interval: float = 0.1):
    """Poll ``probe`` until it returns something true; return that (fail naming ``what`` and the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last: {value!r}")
        time.sleep(interval)


def ready(subject, color: str, image: str = V1, replicas: int = 2) -> ColorStatus:
    """Wait until observe says the color is complete, checking the readiness rule on every observation."""
    seen: list[ColorStatus] = []

    def probe():
        status = subject.platform.observe(color)
        seen.append(status)
        assert status.exists, status
        assert status.failure is None, status
        if status.complete:
            # the readiness rule: complete only when every replica is ready
            assert status.ready == status.desired == replicas, status
            assert status.image == image, status
            assert not status.deleting, status
        return status if status.complete and status.image == image else None

    return eventually(probe, f"{color} complete with {image}")


def user_annotations(annotations: dict) -> dict:
    """Annotations other than the adapters' own bookkeeping (bluegreen.io/...)."""
    return {k: v for k, v in annotations.items() if not k.startswith("bluegreen.io/")}


def deploy(subject, color: str, image: str = V1, replicas: int = 2) -> str:
    return subject.platform.apply_color(color, subject.manifest(color, image, replicas))


# -- workloads ------------------------------------------------------------------------------
def test_apply_color_creates_leaves_an_unchanged_one_and_replaces_a_changed_one(subject):
    p = subject.platform
    assert p.observe("blue") == ColorStatus.missing()
    assert p.read_manifest("blue") is None and p.ready_members("blue") == set()

    assert deploy(subject, "blue") == "created"
    assert deploy(subject, "blue") == "unchanged"
    ready(subject, "blue")
    assert deploy(subject, "blue") == "unchanged", "a ready color with the same manifest is left alone"

    assert deploy(subject, "blue", V2) in ("replaced", "recreated")
    status = ready(subject, "blue", V2)
    assert p.read_manifest("blue") is not None
    assert status.image == V2 and len(p.ready_members("blue")) == 2
    assert deploy(subject, "blue", V2) == "unchanged"
    assert p.observe("green") == ColorStatus.missing(), "the other color is untouched"


def test_observe_is_complete_only_while_every_replica_is_ready(subject):
    p = subject.platform
    deploy(subject, "blue")
    ready(subject, "blue")
    members = p.ready_members("blue")
    assert len(members) == 2 and all(isinstance(m, str) and m for m in members)
    assert p.ready_members("green") == set()

    subject.make_unready(sorted(members)[0], 3.0)

    def one_unready():
        status = p.observe("blue")
        assert status.exists and status.failure is None, status
        return status if not status.complete else None

    status = eventually(one_unready, "blue to lose one ready replica", timeout=10, interval=0.05)
    assert status.desired == 2 and status.ready == 1, status
    ready(subject, "blue")  # and back, once the member passes its checks again


def test_watch_yields_observations_until_complete(subject):
    """What the triggers wait on: a fresh observation whenever the color may have changed, and at
    least every heartbeat (a missing color is seen as missing, not waited on in silence)."""
    p = subject.platform

    async def watch(color: str, until) -> list[ColorStatus]:
        seen: list[ColorStatus] = []

        async def collect():
            async for status in p.watch(color, heartbeat=0.5):
                seen.append(status)
                if until(status):
                    return

        await asyncio.wait_for(collect(), TIMEOUT)
        return seen

    missing = asyncio.run(watch("green", lambda s: True))
    assert missing == [ColorStatus.missing()]

    deploy(subject, "blue")
    seen = asyncio.run(watch("blue", lambda s: s.complete))
    for status in seen:
        assert status.exists and status.failure is None, status
        assert not status.complete or status.ready == status.desired == 2, status
    assert seen[-1].complete and seen[-1].image == V1


def test_read_manifest_is_the_workload_as_applied_without_bookkeeping(subject):
    p = subject.platform
    manifest = subject.manifest("blue", V1, 2, team="payments")
    # a manifest recorded from an earlier read may carry an adapter's mark: it never comes back
    manifest["metadata"]["annotations"]["bluegreen.io/applied-manifest-hash"] = "0123456789abcdef"
    assert p.apply_color("blue", manifest) == "created"

    got = p.read_manifest("blue")
    assert got["metadata"]["name"] == subject.app.deployment_name("blue")
    assert got["metadata"]["labels"] == manifest["metadata"]["labels"]
    assert got["metadata"].get("annotations") == {"team": "payments"}
    for server_set in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"):
        assert server_set not in got["metadata"], server_set
    assert "status" not in got
    assert got["spec"].get("replicas", got["spec"].get("instance")) == 2
    containers = got["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [V1]
    assert p.read_manifest("green") is None


def test_delete_color_until_gone(subject):
    p = subject.platform
    deploy(subject, "blue")
    ready(subject, "blue")
    assert p.color_gone("blue") is False

    p.delete_color("blue")
    eventually(lambda: p.color_gone("blue"), "blue to be gone")
    assert p.observe("blue") == ColorStatus.missing()
    assert p.read_manifest("blue") is None and p.ready_members("blue") == set()
    p.delete_color("blue")  # already gone is fine
    p.delete_color("green")  # never deployed is fine
    assert p.color_gone("green") is True
    assert deploy(subject, "blue") == "created", "a gone color is created anew"


def test_scale_color(subject):
    p = subject.platform
    deploy(subject, "blue")
    ready(subject, "blue")

    p.scale_color("blue", 1)
    ready(subject, "blue", replicas=1)
    eventually(lambda: len(p.ready_members("blue")) == 1, "one ready member")

    if subject.scales_to_zero:
        p.scale_color("blue", 0)

        def scaled_to_zero():
            status = p.observe("blue")
            return status if status.desired == 0 and status.ready == 0 and status.complete else None

        status = eventually(scaled_to_zero, "blue at zero replicas")
        assert status.exists and status.failure is None
        eventually(lambda: p.ready_members("blue") == set(), "no ready member left")
        assert p.color_gone("blue") is False and p.read_manifest("blue") is not None, "kept for a fast rollback"
    else:
        # bcs-scheduler's ScaleDeployment: "target instances can not be littler than 1"
        with pytest.raises(ReleaseError, match="littler than 1"):
            p.scale_color("blue", 0)
        status = ready(subject, "blue", replicas=1)
        assert status.desired == 1, "the refused scale changed nothing"

    with pytest.raises(ReleaseError):
        p.scale_color("green", 1)  # a color that does not exist
    assert p.observe("green") == ColorStatus.missing()


# -- the Service ------------------------------------------------------------------------------
def test_create_service_and_conflict_when_it_exists(subject):
    p, app = subject.platform, subject.app
    assert p.read_service() is None

    view = p.create_service(SELECTS_NOTHING, {"a": "1"})
    assert view.selector == SELECTS_NOTHING
    assert user_annotations(view.annotations) == {"a": "1"}
    assert view.version
    assert URL_FIELDS <= set(view.url_fields), view.url_fields
    assert view.url_fields["service"] == app.service and view.url_fields["namespace"] == app.namespace
    assert view.url_fields["port"]

    read = p.read_service()
    assert (read.selector, read.annotations, read.version, read.url_fields) == (
        view.selector,
        view.annotations,
        view.version,
        view.url_fields,
    )

    with pytest.raises(Conflict):
        p.create_service(app.selector_for("blue"), {"b": "2"})
    after = p.read_service()
    assert (after.selector, after.annotations, after.version) == (view.selector, view.annotations, view.version)


def test_watch_service_delivers_the_service_as_it_changes(subject):
    """What a soak looks at between its reads: the Service as the API has it, after every change
    (another client's write too) and after its deletion (None), as read_service would answer.  A
    platform whose API cannot watch it says so with None: BCS Mesos (its soak reads the Service)."""
    p, app = subject.platform, subject.app
    if p.watch_service(heartbeat=0.2) is None:
        assert subject.kind == "bcs-mesos"
        return
    created = p.create_service(SELECTS_NOTHING, {"a": "1"})
    blue = app.selector_for("blue")

    async def follow() -> list:
        seen: list = []

        async def collect():
            changed = deleted = False
            async for view in p.watch_service(heartbeat=0.2):
                seen.append(view)
                if not changed:
                    changed = True
                    await asyncio.to_thread(subject.other_client().write_service, created, blue, {"writer": "other"})
                elif view is not None and view.selector == blue and not deleted:
                    deleted = True
                    await asyncio.to_thread(p.delete_service)
                elif view is None and deleted:
                    return

        await asyncio.wait_for(collect(), TIMEOUT)
        return seen

    seen = asyncio.run(follow())
    first, changed = seen[0], next(v for v in seen if v is not None and v.selector == blue)
    assert (first.selector, user_annotations(first.annotations), first.version) == (
        SELECTS_NOTHING,
        {"a": "1"},
        created.version,
    )
    assert first.url_fields == created.url_fields
    assert user_annotations(changed.annotations) == {"a": "1", "writer": "other"} and changed.version != created.version
    assert seen[-1] is None and p.read_service() is None


def test_write_service_sets_exactly_the_selector_and_merges_annotations(subject):
    p, app = subject.platform, subject.app
    current = p.create_service({**app.selector_for("blue"), "stale": "key"}, {"keep": "1", "drop": "2"})

    view = p.write_service(current, app.selector_for("green"), {"drop": None, "new": "3"})
    assert view.selector == app.selector_for("green"), "exactly the selector: no stale key left"
    assert user_annotations(view.annotations) == {"keep": "1", "new": "3"}
    assert view.version and view.version != current.version
    assert view.url_fields == current.url_fields, "everything else on the Service is kept"

    read = p.read_service()
    assert (read.selector, read.annotations, read.version) == (view.selector, view.annotations, view.version)


def test_a_stale_write_raises_conflict_and_changes_nothing(subject):
    p, app = subject.platform, subject.app
    current = p.create_service(SELECTS_NOTHING, {})
    newer = p.write_service(current, app.selector_for("blue"), {"writer": "first"})

    with pytest.raises(Conflict):
        p.write_service(current, app.selector_for("green"), {"writer": "second"})
    with pytest.raises(Conflict):
        subject.other_client().write_service(current, app.selector_for("green"), {"writer": "another client"})

    read = p.read_service()
    assert read.selector == app.selector_for("blue") and read.annotations.get("writer") == "first"
    assert read.version == newer.version

    # read again, write again: fine
    latest = subject.other_client().write_service(read, app.selector_for("green"), {"writer": "second"})
    assert latest.selector == app.selector_for("green") and latest.annotations["writer"] == "second"


def test_service_backends_follow_the_switch(subject):
    p, app = subject.platform, subject.app
    deploy(subject, "blue")
    deploy(subject, "green")
    ready(subject, "blue")
    ready(subject, "green")
    blue, green = p.ready_members("blue"), p.ready_members("green")
    assert len(blue) == len(green) == 2 and not blue & green

    current = p.create_service(SELECTS_NOTHING, {})
    assert p.service_backends() == set(), "a Service that selects nothing has no backends"

    current = p.write_service(current, app.selector_for("blue"), {})
    eventually(lambda: p.service_backends() == p.ready_members("blue") == blue, "backends = blue's members")

    p.write_service(current, app.selector_for("green"), {})
    eventually(lambda: p.service_backends() == p.ready_members("green") == green, "backends = green's members")


def test_delete_service_is_conditional_on_the_version_read(subject):
    p, app = subject.platform, subject.app
    current = p.create_service(SELECTS_NOTHING, {})
    newer = p.write_service(current, app.selector_for("blue"), {})

    with pytest.raises(Conflict):
        p.delete_service(current=current)
    assert p.read_service() is not None and p.read_service().version == newer.version

    p.delete_service(current=newer)
    assert p.read_service() is None
    p.delete_service(current=newer)  # gone is fine
    p.delete_service()
    with pytest.raises(ReleaseError):
        p.write_service(newer, app.selector_for("green"), {})  # the Service disappeared
    assert p.read_service() is None


def test_the_preview_service_is_a_service_of_its_own(subject):
    p, app = subject.platform, subject.app
    preview = subject.preview_manifest()
    assert p.read_service(preview) is None

    view = p.create_service(app.selector_for("blue"), {"p": "1"}, manifest=preview)
    assert view.selector == app.selector_for("blue") and user_annotations(view.annotations) == {"p": "1"}
    assert view.url_fields["service"] == preview["metadata"]["name"]
    with pytest.raises(Conflict):
        p.create_service(app.selector_for("green"), {}, manifest=preview)
    assert p.read_service() is None, "the app's own Service is another one"

    newer = p.write_service(view, app.selector_for("green"), {"q": "2"}, manifest=preview)
    assert newer.selector == app.selector_for("green")
    assert user_annotations(newer.annotations) == {"p": "1", "q": "2"}
    with pytest.raises(Conflict):
        p.write_service(view, app.selector_for("blue"), {}, manifest=preview)
    assert p.read_service(preview).selector == app.selector_for("green")

    p.delete_service(manifest=preview)
    assert p.read_service(preview) is None
    p.delete_service(manifest=preview)  # gone is fine


# -- for people -------------------------------------------------------------------------------
def test_manual_commands_name_the_object(subject):
    p, app = subject.platform, subject.app
    switch = p.manual_switch(app.selector_for("green"))
    assert named(app.service, switch) and named(app.namespace, switch), switch
    assert all(k in switch and v in switch for k, v in app.selector_for("green").items()), switch
    delete = p.manual_delete("blue")
    assert named(app.deployment_name("blue"), delete) and named(app.namespace, delete), delete
    assert app.deployment_name("green") not in delete


def named(name: str, command: str) -> bool:
    """``name`` appears in ``command`` as a whole name (not as part of a longer one)."""
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", command) is not None
