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
