"""Platform adapters: one per cluster API, each implementing ``bluegreen.release.ports.Platform``."""

from __future__ import annotations

from ..apps.manifests import BCS_MESOS, KUBERNETES


def platform_for(app):
    """The adapter for an app's platform (imported lazily: client libraries are heavy)."""
    if app.platform == KUBERNETES:
        from .kubernetes import KubernetesPlatform

        return KubernetesPlatform(app)
    if app.platform == BCS_MESOS:
        from .bcs_mesos import BcsMesosPlatform

        return BcsMesosPlatform(app)
    raise ValueError(f"unknown platform {app.platform!r}")
