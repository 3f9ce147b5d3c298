"""The permissions the Kubernetes adapter checks before a release writes: the scale subresource only
for apps that scale the old color to zero.  (Read from the app config: no cluster needed.)"""

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
