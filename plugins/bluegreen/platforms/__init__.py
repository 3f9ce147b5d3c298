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


def metrics_for(app):
    """The metrics server an app's analysis asks, or None when it has no analysis."""
    if app.analysis is None:
        return None
    from ..hooks.prometheus import PrometheusHook
    from ..hooks.retrying import Budget

    # a short retry budget: the analysis measures again at its next interval anyway
    return PrometheusHook(app.analysis.connection_id, budget=Budget(min(10.0, app.api_retry_budget)))
