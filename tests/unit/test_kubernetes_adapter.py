"""The Kubernetes adapter's own logic, without a cluster: the permissions it checks before a release
writes (the scale subresource only for apps that scale the old color to zero), and what applying a
color asks of the API."""

import dataclasses

from bluegreen.apps.config import OldColorPolicy
from bluegreen.platforms.kubernetes import REQUIRED_PERMISSIONS, required_permissions


def test_only_scale_to_zero_apps_need_the_scale_subresource(app):
    scale = [p for p in REQUIRED_PERMISSIONS if p.resource == "deployments/scale"]
    assert scale and not set(scale) & set(required_permissions(app))
    scaling = dataclasses.replace(app, old_color_policy=OldColorPolicy.SCALE_TO_ZERO)
    assert set(scale) <= set(required_permissions(scaling))


def _perm(verb, group, resource):
    return next(p for p in REQUIRED_PERMISSIONS if (p.verb, p.group, p.resource) == (verb, group, resource))


def test_a_rules_review_rule_grants_as_rbac_matches_a_request_without_a_name():
    get_services = _perm("get", "", "services")
    scale = _perm("patch", "apps", "deployments/scale")
    assert get_services.granted_by({"verbs": ["get", "update"], "apiGroups": [""], "resources": ["services"]})
    assert get_services.granted_by({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
    # another verb, group or resource; a rule restricted to names (a nameless request does not match)
    assert not get_services.granted_by({"verbs": ["list"], "apiGroups": [""], "resources": ["services"]})
    assert not get_services.granted_by({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["services"]})
    assert not get_services.granted_by({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]})
    assert not get_services.granted_by(
        {"verbs": ["get"], "apiGroups": [""], "resources": ["services"], "resourceNames": ["test"]}
    )
    # a subresource: named, or */scale; the parent resource alone does not grant it
    assert scale.granted_by({"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments/scale"]})
    assert scale.granted_by({"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["*/scale"]})
    assert not scale.granted_by({"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments"]})
    assert not get_services.granted_by({"verbs": ["get"], "apiGroups": [""], "resources": ["*/scale"]})


# -- what applying a color asks of the API (a stub of the provider hook's client records the calls) --


class _RecordingApps:
    """apps/v1 as the adapter calls it: each call recorded; a create answers 409 when ``existing``."""

    def __init__(self, existing: dict | None):
        self.existing, self.calls = existing, []

    def _answer(self, body):
        import json
        from types import SimpleNamespace

        return SimpleNamespace(data=json.dumps(body).encode())

    def create_namespaced_deployment(self, namespace, body, **kwargs):
        from kubernetes.client.exceptions import ApiException

        self.calls.append("create")
        if self.existing is not None:
            error = ApiException(status=409, reason="Conflict")
            error.body = '{"reason": "AlreadyExists", "message": "deployments.apps \\"test-green\\" already exists"}'
            raise error
        return self._answer(body)

    def read_namespaced_deployment(self, name, namespace, **kwargs):
        self.calls.append("read")
        return self._answer(self.existing)

    def replace_namespaced_deployment(self, name, namespace, body, **kwargs):
        self.calls.append("replace")
        return self._answer(body)


def _platform_with(app, apps_api):
    from types import SimpleNamespace

    from bluegreen.platforms.kubernetes import KubernetesPlatform

    platform = KubernetesPlatform(app)
    platform.__dict__["hook"] = SimpleNamespace(apps_v1_client=apps_api)
    platform.__dict__["request_timeout"] = 5.0
    return platform


def test_applying_an_absent_color_is_one_create_without_a_read_first(app):
    from bluegreen.apps import manifests as mf

    apps_api = _RecordingApps(existing=None)
    manifest = mf.with_release(app.platform, app.manifests["green"], "registry.local/test:v2", 2, app.container)
    assert _platform_with(app, apps_api).apply_color("green", manifest) == "created"
    assert apps_api.calls == ["create"]


def test_a_create_that_finds_the_color_there_reads_it_and_replaces_it(app):
    from bluegreen.apps import manifests as mf

    old = mf.with_release(app.platform, app.manifests["green"], "registry.local/test:v1", 2, app.container)
    existing = {**old, "metadata": {**old["metadata"], "resourceVersion": "7"}}
    apps_api = _RecordingApps(existing=existing)
    manifest = mf.with_release(app.platform, app.manifests["green"], "registry.local/test:v2", 2, app.container)
    assert _platform_with(app, apps_api).apply_color("green", manifest) == "replaced"
    assert apps_api.calls == ["create", "read", "replace"]


def test_concurrent_watches_fetch_the_async_connection_once(app):
    """The soak watches the workload and the Service at once; in a task process the SDK refuses a
    connection's secret masking while another fetch is in flight, so the two wait for one fetch."""
    import asyncio

    from bluegreen.platforms.kubernetes import KubernetesPlatform

    fetches: list[str] = []

    class SlowHook:
        async def _get_field(self, name):
            fetches.append(name)
            await asyncio.sleep(0.05)  # the connection fetch, in flight
            return "7"

    platform = KubernetesPlatform(app)
    platform.__dict__["async_hook"] = SlowHook()  # (a cached_property: set on the instance)

    async def both():
        return await asyncio.gather(platform._async_request_timeout(), platform._async_request_timeout())

    assert asyncio.run(both()) == [7.0, 7.0]
    assert fetches == ["request_timeout"]
    assert asyncio.run(platform._async_request_timeout()) == 7.0 and len(fetches) == 1
