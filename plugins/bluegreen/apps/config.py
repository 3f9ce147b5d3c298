"""App configs: one YAML file per app under ``dags/apps/`` becomes one release DAG.

Every problem is reported as ``<file>: <field>=<value>: <what is wrong>`` so that
the DAG import error in the UI tells a person exactly what to fix.  Loading reads
files only: no cluster is contacted and no client library is imported.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from . import manifests as mf
from .analysis import Analysis, load_analysis
from .colors import COLORS
from .durations import format_duration, parse_duration
from .errors import ConfigError
from .images import check_image
from .notify import Notify, load_notify

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
BCS_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?$")

KNOWN_FIELDS = {
    "app",
    "platform",
    "connection_id",
    "namespace",
    "service",
    "deployment_prefix",
    "manifests",
    "container",
    "replicas",
    "readiness_timeout",
    "soak",
    "soak_tolerance",
    "check_interval",
    "http_check",
    "poll_interval",
    "abnormal_tolerance",
    "defer_after",
    "switch_timeout",
    "delete_timeout",
    "lock_ttl",
    "description",
    "default_image",
    # operating from the UI (windows, approval, preview, old color handling, history)
    "windows",
    "freeze_dates",
    "outside_window",
    "window_closes",
    "pending_version_variable",
    "approval",
    "approval_timeout",
    "approval_default",
    "old_color",
    "history_limit",
    # surviving faults (retries, API budget, traffic still on its way after a switch)
    "drain_delay",
    "retries",
    "rollback_retries",
    "api_retry_budget",
    # judging by metrics, and telling people (bluegreen.apps.analysis, bluegreen.apps.notify)
    "analysis",
    "notify",
}


class OldColorPolicy(StrEnum):
    """What retiring does with the old color once the new one has soaked (YAML: ``old_color``)."""

    DELETE = "delete"
    SCALE_TO_ZERO = "scale-to-zero"  # kept for a fast rollback (Kubernetes only)


@dataclass(frozen=True)
class HttpCheck:
    """A GET through the Service during the soak (and after the switch)."""

    # May name fields of the live Service: {node_port} {port} {cluster_ip} {lb_port} {service} {namespace}
    url: str
    timeout: float = 5.0
    # Any 2xx passes unless a status is named.
    expect_status: int | None = None


@dataclass(frozen=True)
class AppConfig:
    name: str
    platform: str
    connection_id: str
    namespace: str
    service: str
    deployment_prefix: str
    # color -> the color's workload manifest; "service" -> the Service manifest
    manifests: dict
    replicas: int
    readiness_timeout: float
    soak: float
    container: str | None = None
    soak_tolerance: int = 0
    check_interval: float = 2.0
    http_check: HttpCheck | None = None
    switch_timeout: float = 60.0
    delete_timeout: float = 300.0
    # BCS Mesos only: storage poll interval of the sensors (no watch there), and how long an
    # application may stay Abnormal before readiness fails.
    poll_interval: float = 2.0
    abnormal_tolerance: float = 30.0
    # Sensors judge in the worker this long before they defer (short waits are not worth it).
    defer_after: float = 10.0
    lock_ttl: float = 3 * 3600.0
    # After the Service stops pointing at a color, each node applies the change a moment later
    # (kube-proxy, bcs-loadbalance) and routed connections finish: the color is removed only
    # this long after the switch (Argo Rollouts' scaleDownDelaySeconds, 30 s by default).
    drain_delay: float = 30.0
    # Task-level retries of each step (exponential backoff), and of the rollback.
    retries: int = 3
    rollback_retries: int = 8
    # How long one step may spend retrying transient API errors (timeouts, resets, 429, 5xx)
    # before it gives up and the task's own retry takes over.
    api_retry_budget: float = 60.0
    description: str = ""
    default_image: str | None = None
    source: str = ""
    # Operating from the UI (see bluegreen.apps.windows and the README's release-engineer guide).
    windows: tuple = ()
    freeze_dates: tuple = ()
    outside_window: str = "wait"  # wait | refuse
    window_closes: str = "rollback"  # rollback | wait
    pending_version_variable: str = ""
    approval: bool = False
    approval_timeout: float | None = None
    approval_default: str = "Reject"  # Approve | Reject
    # YAML and JSON key: old_color (the name the docs use); a policy, not a color
    old_color_policy: OldColorPolicy = OldColorPolicy.DELETE
    history_limit: int = 10
    # Prometheus checks before the switch and during the soak; who is told about the release
    analysis: Analysis | None = None
    notify: Notify | None = None

    # -- derived ----------------------------------------------------------------------
    def deployment_name(self, color: str) -> str:
        return f"{self.deployment_prefix}-{color}"

    def selector_for(self, color: str) -> dict[str, str]:
        """The Service selector that sends traffic to ``color`` and only to it."""
        labels = mf.selectable_labels(self.platform, self.manifests[color])
        return {k: labels[k] for k in self.selector_keys}

    @property
    def selector_keys(self) -> list[str]:
        return sorted(mf.service_selector(self.platform, self.manifests["service"]))

    def color_of(self, selector: dict[str, str]) -> str | None:
        """The color whose workload the selector matches; None for neither.

        Raises when it matches both (the Service would send traffic to both colors)."""
        matched = [
            c
            for c in COLORS
            if selector
            and all(mf.selectable_labels(self.platform, self.manifests[c]).get(k) == v for k, v in selector.items())
        ]
        if len(matched) > 1:
            raise ConfigError(
                "service.spec.selector",
                selector,
                "matches both colors' labels; the release cannot tell which is live",
                self.source,
            )
        return matched[0] if matched else None

    @property
    def preview_service(self) -> str | None:
        """The preview Service (manifests.preview): it points at the new color as soon as it is
        deployed, so that testers can reach it before the switch."""
        preview = self.manifests.get("preview")
        return mf.workload_name(self.platform, preview) if preview else None

    @property
    def effective_approval_timeout(self) -> float:
        """How long the promotion gate waits for a person.  Nothing renews the release lock
        while a task awaits input, so an approval never outlasts half the lock's time."""
        return self.approval_timeout or self.lock_ttl / 2

    def check_workload(self, color: str, manifest, source: str = "") -> None:
        """Raise ConfigError unless ``manifest`` is a workload this app can release as ``color``:
        its name, its container, and the labels the Service's selector tells the colors by.
        The app's own manifests are checked so at load; a manifest recorded on the Service
        (a rollback to the previous release) is checked so before it is deployed."""
        check_workload(self, color, manifest, source or self.source)

    @property
    def pending_variable(self) -> str:
        """The Airflow Variable a build pipeline sets to the version a scheduled run releases."""
        return self.pending_version_variable or f"bluegreen_pending_image_{self.name.replace('-', '_')}"

    @property
    def dag_id(self) -> str:
        return f"release_{self.name.replace('-', '_')}"

    def to_json(self) -> dict:
        data = json.loads(json.dumps(asdict(self)))
        data["old_color"] = data.pop("old_color_policy")  # the documented key
        return data

    @classmethod
    def from_json(cls, data: dict) -> AppConfig:
        data = dict(data)
        if "old_color" in data:
            data["old_color_policy"] = OldColorPolicy(data.pop("old_color"))
        if data.get("http_check"):
            data["http_check"] = HttpCheck(**data["http_check"])
        for key in ("windows", "freeze_dates"):
            data[key] = tuple(tuple(w) if isinstance(w, list) else w for w in data.get(key) or ())
        if data.get("windows"):
            from .windows import Window

            data["windows"] = tuple(Window.from_json(w) for w in data["windows"])
        if data.get("analysis"):
            data["analysis"] = Analysis.from_json(data["analysis"])
        if data.get("notify"):
            data["notify"] = Notify.from_json(data["notify"])
        return cls(**data)


def config_digest(app_json: dict) -> str:
    """The fingerprint of an app config as the tasks carry it (``AppConfig.to_json()``): a trigger
    that rebuilds the config from its file checks with it that the file still says the same."""
    return mf.fingerprint(app_json)


# libyaml's safe loader where PyYAML was built with it (the wheels are): the same documents and
# errors as yaml.safe_load, about five times faster, and every DAG parse reads every config.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_yaml(text: str):
    return yaml.load(text, Loader=_SAFE_LOADER)


def app_name_of(path: Path) -> str | None:
    """The ``app`` field of a config file, read without validating the rest (None when the file
    does not say): what a task's DAG parse needs to skip the other apps' configs."""
    try:
        raw = safe_yaml(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None
    name = raw.get("app") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else None


def load_app(path: Path) -> AppConfig:
    """Read and validate one app config; raises ConfigError naming the file, field and value."""
    path = Path(path)
    source = str(path)
    try:
        raw = safe_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError("(file)", path.name, f"not valid YAML: {e}", source) from None
    if not isinstance(raw, dict):
        raise ConfigError("(file)", path.name, "must be a mapping of fields", source)
    v = _Validator(raw, source)
    for key in raw:
        if key not in KNOWN_FIELDS:
            raise ConfigError(key, raw[key], f"unknown field (known: {', '.join(sorted(KNOWN_FIELDS))})", source)

    platform = v.choice("platform", mf.PLATFORMS)
    name = v.name("app")
    manifests = _load_manifests(v, path.parent, platform)
    windows_cfg = _load_windows(v)
    config = AppConfig(
        name=name,
        platform=platform,
        connection_id=v.string("connection_id"),
        namespace=v.name("namespace", strict=platform == mf.KUBERNETES),
        service=v.name("service", strict=platform == mf.KUBERNETES),
        deployment_prefix=v.name("deployment_prefix", default=name),
        manifests=manifests,
        container=v.string("container", default=None),
        replicas=v.integer("replicas", minimum=1),
        readiness_timeout=v.duration("readiness_timeout", default="10m", minimum=1),
        soak=v.duration("soak", default="5m", minimum=0),
        soak_tolerance=v.integer("soak_tolerance", default=0, minimum=0),
        check_interval=v.duration("check_interval", default="2s", minimum=0.1),
        http_check=_load_http_check(v),
        switch_timeout=v.duration("switch_timeout", default="60s", minimum=1),
        poll_interval=v.duration("poll_interval", default="2s", minimum=0.1),
        abnormal_tolerance=v.duration("abnormal_tolerance", default="30s", minimum=0),
        defer_after=v.duration("defer_after", default="10s", minimum=0),
        delete_timeout=v.duration("delete_timeout", default="5m", minimum=1),
        lock_ttl=v.duration("lock_ttl", default="3h", minimum=60),
        description=v.string("description", default=""),
        default_image=v.image("default_image"),
        source=source,
        approval=v.boolean("approval", default=False),
        approval_timeout=v.duration("approval_timeout", default=None, minimum=1),
        approval_default=v.choice("approval_default", ("Approve", "Reject"), default="Reject"),
        old_color_policy=OldColorPolicy(v.choice("old_color", tuple(OldColorPolicy), default="delete")),
        history_limit=v.integer("history_limit", default=10, minimum=1),
        drain_delay=v.duration("drain_delay", default="30s", minimum=0),
        retries=v.integer("retries", default=3, minimum=0),
        rollback_retries=v.integer("rollback_retries", default=8, minimum=0),
        api_retry_budget=v.duration("api_retry_budget", default="60s", minimum=0),
        analysis=load_analysis(v),
        notify=load_notify(v),
        **windows_cfg,
    )
    if config.approval_timeout is not None and config.approval_timeout >= config.lock_ttl:
        raise ConfigError(
            "approval_timeout",
            v.raw.get("approval_timeout"),
            f"must be shorter than lock_ttl ({format_duration(config.lock_ttl)}): nothing renews the "
            "release lock while a person decides",
            source,
        )
    if config.platform == mf.BCS_MESOS and config.old_color_policy == OldColorPolicy.SCALE_TO_ZERO:
        raise ConfigError(
            "old_color",
            str(config.old_color_policy),
            "BCS Mesos cannot keep a deployment at zero instances "
            "(bcs-scheduler's ScaleDeployment refuses fewer than 1); use delete",
            source,
        )
    _check_manifests(config)
    return config


def _load_http_check(v: _Validator) -> HttpCheck | None:
    raw = v.raw.get("http_check")
    if raw is None:
        return None
    if not isinstance(raw, dict) or "url" not in raw:
        raise ConfigError("http_check", raw, "must be a mapping with at least url", v.source)
    sub = _Validator(raw, v.source, prefix="http_check.")
    for key in raw:
        if key not in ("url", "timeout", "expect_status"):
            raise ConfigError(
                f"http_check.{key}", raw[key], "unknown field (known: url, timeout, expect_status)", v.source
            )
    url = sub.string("url")
    if not re.match(r"^https?://", url):
        raise ConfigError("http_check.url", url, "must start with http:// or https://", v.source)
    try:
        url.format(node_port=1, port=1, cluster_ip="x", lb_port=1, service="s", namespace="n")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(
            "http_check.url",
            url,
            f"unknown placeholder {e}; use {{node_port}} {{port}} {{cluster_ip}} {{lb_port}} {{service}} {{namespace}}",
            v.source,
        ) from None
    return HttpCheck(
        url=url,
        timeout=sub.duration("timeout", default="5s", minimum=0.1),
        expect_status=sub.integer("expect_status", default=None, minimum=100),
    )


def _load_windows(v: _Validator) -> dict:
    from .windows import load_windows

    return load_windows(v)


def _load_manifests(v: _Validator, base: Path, platform: str) -> dict:
    raw = v.raw.get("manifests")
    if not isinstance(raw, dict):
        raise ConfigError("manifests", raw, "must map blue, green and service to manifest files", v.source)
    out = {}
    for key in (*COLORS, "service", "preview"):
        rel = raw.get(key)
        if key == "preview" and rel is None:
            continue
        if not isinstance(rel, str) or not rel:
            raise ConfigError(f"manifests.{key}", rel, "must name a manifest file", v.source)
        file = (base / rel).resolve()
        if not file.is_file():
            raise ConfigError(f"manifests.{key}", rel, f"no such file ({file})", v.source)
        try:
            text = file.read_text()
            doc = json.loads(text) if file.suffix == ".json" else safe_yaml(text)
        except (ValueError, yaml.YAMLError) as e:
            raise ConfigError(f"manifests.{key}", rel, f"cannot be parsed: {e}", v.source) from None
        if not isinstance(doc, dict):
            raise ConfigError(f"manifests.{key}", rel, "must hold one object", v.source)
        out[key] = doc
    for key in raw:
        if key not in (*COLORS, "service", "preview"):
            raise ConfigError(
                f"manifests.{key}", raw[key], "unknown manifest (known: blue, green, service, preview)", v.source
            )
    return out


def _check_manifests(app: AppConfig) -> None:
    """The manifests must describe what the release model will do with them."""
    src, p = app.source, app.platform
    for color in COLORS:
        check_workload(app, color, app.manifests[color], src, where=f"manifests.{color}", labels=False)
    svc = app.manifests["service"]
    if mf.workload_name(p, svc) != app.service:
        raise ConfigError(
            "manifests.service metadata.name", mf.workload_name(p, svc), f"must equal service {app.service!r}", src
        )
    preview = app.manifests.get("preview")
    if preview is not None and mf.workload_name(p, preview) in ("", app.service):
        raise ConfigError(
            "manifests.preview metadata.name",
            mf.workload_name(p, preview),
            f"must name a Service other than {app.service!r}",
            src,
        )
    keys = app.selector_keys
    if not keys:
        raise ConfigError("manifests.service spec.selector", {}, "the Service needs a selector to switch", src)
    for color in COLORS:
        labels = mf.selectable_labels(p, app.manifests[color])
        missing = [k for k in keys if k not in labels]
        if missing:
            where = "spec.template.metadata.labels" if p == mf.KUBERNETES else "metadata.labels"
            raise ConfigError(
                f"manifests.{color} {where}",
                labels,
                f"lacks the selector key(s) {missing} that the Service selects on",
                src,
            )
    if app.selector_for("blue") == app.selector_for("green"):
        raise ConfigError(
            "manifests.service spec.selector",
            service_selector_of(app),
            "selects the same labels for blue and green; the colors must differ in a selector key",
            src,
        )


def check_workload(
    app: AppConfig, color: str, manifest, source: str, where: str | None = None, labels: bool = True
) -> None:
    """One color's workload manifest: its name, its containers, and (``labels``) the labels that
    the Service's selector tells this color by."""
    p, where = app.platform, where or f"{color} manifest"
    if not isinstance(manifest, dict):
        raise ConfigError(where, manifest, "must be a workload manifest (a mapping)", source)
    name = mf.workload_name(p, manifest)
    if name != app.deployment_name(color):
        raise ConfigError(
            f"{where} metadata.name",
            name,
            f"must be {app.deployment_name(color)!r} (deployment_prefix + '-{color}')",
            source,
        )
    conts = mf.containers(p, manifest)
    if not conts or not all(isinstance(c, dict) for c in conts):
        raise ConfigError(f"{where} containers", conts, "the workload has no container", source)
    if app.container is None and len(conts) > 1:
        raise ConfigError(
            "container", None, f"{name} has {len(conts)} containers: name the one that gets the release's image", source
        )
    if app.container is not None and not any(c.get("name") == app.container for c in conts):
        raise ConfigError("container", app.container, f"{name} has no container of that name", source)
    if labels:
        wanted = app.selector_for(color)
        have = mf.selectable_labels(p, manifest)
        if any(have.get(k) != v for k, v in wanted.items()):
            path = "spec.template.metadata.labels" if p == mf.KUBERNETES else "metadata.labels"
            raise ConfigError(
                f"{where} {path}", have, f"must carry the Service's selector for {color} {wanted}", source
            )


def service_selector_of(app: AppConfig) -> dict:
    return mf.service_selector(app.platform, app.manifests["service"])


class _Validator:
    """Typed reads of raw config fields, each failing with the field and the value."""

    _MISSING = object()

    def __init__(self, raw: dict, source: str, prefix: str = ""):
        self.raw, self.source, self.prefix = raw, source, prefix

    def _get(self, key, default):
        value = self.raw.get(key, self._MISSING)
        if value is self._MISSING or value is None:
            if default is self._MISSING:
                raise ConfigError(self.prefix + key, None, "is required", self.source)
            return default, True
        return value, False

    def fail(self, key, value, problem):
        raise ConfigError(self.prefix + key, value, problem, self.source)

    def string(self, key, default=_MISSING):
        value, defaulted = self._get(key, default)
        if defaulted:
            return value
        if not isinstance(value, str) or not value.strip():
            self.fail(key, value, "must be a non-empty string")
        return value

    def name(self, key, default=_MISSING, strict=True):
        """A Kubernetes name is a DNS-1123 label; BCS only forbids '.' (bk-bcs types/meta.go
        MetaIsValid), and its default namespace is "defaultGroup"."""
        value = self.string(key, default)
        if strict and (not NAME.match(value or "") or len(value) > 63):
            self.fail(key, value, "must be a DNS-1123 label (lower-case letters, digits and '-', at most 63)")
        if not strict and not BCS_NAME.match(value or ""):
            self.fail(key, value, "must be letters, digits and '-' (BCS names cannot contain '.')")
        return value

    def choice(self, key, options, default=_MISSING):
        value, defaulted = self._get(key, default)
        if value not in options:
            self.fail(key, value, f"must be one of {', '.join(map(str, options))}")
        return value

    def boolean(self, key, default=_MISSING):
        value, defaulted = self._get(key, default)
        if not isinstance(value, bool):
            self.fail(key, value, "must be true or false")
        return value

    def integer(self, key, default=_MISSING, minimum=None):
        value, defaulted = self._get(key, default)
        if defaulted and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, value, "must be a whole number")
        if minimum is not None and value < minimum:
            self.fail(key, value, f"must be at least {minimum}")
        return value

    def duration(self, key, default=_MISSING, minimum=None):
        value, defaulted = self._get(key, default)
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            self.fail(key, value, str(e))
        if minimum is not None and seconds < minimum:
            self.fail(key, value, f"must be at least {minimum:g}s")
        return seconds

    def image(self, key):
        value, _ = self._get(key, None)
        if value is None:
            return None
        problem = check_image(value)
        if problem:
            self.fail(key, value, problem)
        return value

    def list(self, key):
        value, _ = self._get(key, [])
        if not isinstance(value, list):
            self.fail(key, value, "must be a list")
        return value
