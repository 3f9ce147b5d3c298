"""The Kubernetes adapter: apps/v1 Deployments and a v1 Service.

Built on the cncf-kubernetes provider's ``KubernetesHook`` (operators) and
``AsyncKubernetesHook`` (triggers), so every connection style the provider
supports works: kubeconfig path or content, in-cluster, context.

Objects are read and written as plain JSON (``_preload_content=False``) rather
than the client's models, so that a replace sends back every field the server
has, including ones the client's models do not know.

Every call has a timeout (the connection's extra ``request_timeout``, 30 s by
default) and goes through ``retrying``: timeouts, resets, 429 and 5xx are tried
again within the step's budget; other errors fail at once with the API's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from ..apps import manifests as mf
from ..apps.config import OldColorPolicy
from ..hooks.retrying import Budget, Transient, raise_if_transient, retrying
from ..hooks.user_agent import USER_AGENT
from ..release.model import ColorStatus, Conflict, ReleaseError, ServiceView
from ..release.ports import Platform

T = TypeVar("T")

log = logging.getLogger(__name__)

# Watches are re-opened this often (the API server ends them itself too).
WATCH_SECONDS = 240
# Longest quiet spell before the watch yields a fresh observation anyway.
HEARTBEAT_SECONDS = 2.0
# Seconds per API request unless the connection's extra says otherwise.
DEFAULT_REQUEST_TIMEOUT = 30.0


# ----------------------------------------------------------------------------------
# What a release may do in the app's namespace: every API call this adapter makes, as
# RBAC names it.  The shipped Role (RBAC_MANIFEST) grants exactly these (a test keeps
# the two equal), and check_permissions asks the API for each before a release writes.
# ----------------------------------------------------------------------------------
RBAC_MANIFEST = "deploy/kubernetes/rbac.yaml"


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str  # "" is the core group
    resource: str  # "deployments/scale" for a subresource
    why: str

    def __str__(self) -> str:
        """How ``kubectl auth can-i`` takes it: ``delete deployments.apps``, ``patch deployments.apps/scale``."""
        resource, _, sub = self.resource.partition("/")
        return f"{self.verb} {resource}{'.' + self.group if self.group else ''}{'/' + sub if sub else ''}"

    def granted_by(self, rule: dict) -> bool:
        """Whether one rule of a SelfSubjectRulesReview grants it, as RBAC matches a request without
        a resource name (k8s.io/kubernetes pkg/apis/rbac/v1/evaluation_helpers.go: VerbMatches,
        APIGroupMatches, ResourceMatches, ResourceNameMatches)."""
        resource, _, sub = self.resource.partition("/")
        resources = rule.get("resources") or []
        return (
            any(v in ("*", self.verb) for v in rule.get("verbs") or [])
            and any(g in ("*", self.group) for g in rule.get("apiGroups") or [])
            and ("*" in resources or self.resource in resources or (bool(sub) and f"*/{sub}" in resources))
            and not rule.get("resourceNames")  # names restrict it to those objects
        )


REQUIRED_PERMISSIONS: tuple[Permission, ...] = (
    Permission("get", "", "services", "read_service, write_service: the live color, the lock, the records"),
    Permission("list", "", "services", "watch_service: the soak (the list before the watch)"),
    Permission("watch", "", "services", "watch_service: the soak"),
    Permission("create", "", "services", "create_service: a first release's Service (the lock), the preview"),
    Permission("update", "", "services", "write_service: the switch, the lock, the records (a conditional replace)"),
    Permission("delete", "", "services", "delete_service: a failed first release's Service, the preview"),
    Permission("get", "apps", "deployments", "observe, read_manifest, apply_color, color_gone"),
    Permission("list", "apps", "deployments", "watch: readiness (the list before the watch)"),
    Permission("watch", "apps", "deployments", "watch: readiness"),
    Permission("create", "apps", "deployments", "apply_color: a new color"),
    Permission("update", "apps", "deployments", "apply_color: a leftover replaced"),
    Permission("delete", "apps", "deployments", "delete_color: retire and rollback"),
    Permission("patch", "apps", "deployments/scale", "scale_color: old_color scale-to-zero"),
    Permission("list", "", "pods", "observe, ready_members, color_gone, watch"),
    Permission("watch", "", "pods", "watch: readiness"),
    Permission("list", "discovery.k8s.io", "endpointslices", "service_backends: traffic follows the switch"),
)


# What the Releases page reads (bluegreen.ui.cluster: read_service, observe), in the api-server,
# which never writes: the read-only Role of VIEWER_MANIFEST grants exactly these (a test keeps
# the two equal and reads a released app's cluster through a token bound to that Role).
VIEWER_MANIFEST = "deploy/kubernetes/rbac-viewer.yaml"
VIEWER_PERMISSIONS: tuple[Permission, ...] = (
    Permission("get", "", "services", "read_service: the live color, the lock, the records, the preview"),
    Permission("get", "apps", "deployments", "observe: each color's workload"),
    Permission("list", "", "pods", "observe: each color's members and restarts"),
)


def required_permissions(app) -> list[Permission]:
    """What a release of ``app`` needs: all of them, but scaling only when the old color is
    scaled to zero rather than deleted."""
    scales = app.old_color_policy == OldColorPolicy.SCALE_TO_ZERO
    return [p for p in REQUIRED_PERMISSIONS if p.resource != "deployments/scale" or scales]


# ----------------------------------------------------------------------------------
# The readiness rule: kubectl rollout status (k8s.io/kubectl/pkg/polymorphichelpers/
# rollout_status.go DeploymentStatusViewer), plus "ready == available == desired".
# ----------------------------------------------------------------------------------
def rollout_status(deployment: dict | None, pods: list[dict]) -> ColorStatus:
    if deployment is None:
        return ColorStatus.missing()
    meta, spec, status = deployment.get("metadata", {}), deployment.get("spec", {}), deployment.get("status") or {}
    name = meta.get("name", "?")
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    restarts = sum(
        int(cs.get("restartCount") or 0) for p in pods for cs in (p.get("status") or {}).get("containerStatuses") or []
    )
    containers = spec.get("template", {}).get("spec", {}).get("containers") or [{}]
    common = dict(
        exists=True,
        desired=desired,
        ready=min(available, ready),
        restarts=restarts,
        image=containers[0].get("image"),
        deleting=bool(meta.get("deletionTimestamp")),
    )
    progress = f"{available}/{desired} available"
    if common["deleting"]:
        return ColorStatus(
            **common, progress=f"{progress}, being deleted", failure=f"deployment {name} is being deleted"
        )
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return ColorStatus(**common, progress=f"{progress}, waiting for the deployment spec update to be observed")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return ColorStatus(
                **common,
                progress=progress,
                failure=f"deployment {name} exceeded its progress deadline "
                f"({spec.get('progressDeadlineSeconds', 600)}s): {cond.get('message', '')}".strip(),
            )
    if updated < desired:
        return ColorStatus(**common, progress=f"{progress}, {updated} of {desired} new replicas updated")
    if total > updated:
        return ColorStatus(**common, progress=f"{progress}, {total - updated} old replicas pending termination")
    if available < updated or ready < desired or available < desired:
        return ColorStatus(**common, progress=progress)
    return ColorStatus(**common, progress=progress, complete=True)


def pod_ready(pod: dict) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _api_error(e) -> str:
    try:
        return json.loads(e.body).get("message") or str(e.reason)
    except (ValueError, TypeError, AttributeError):
        return f"{getattr(e, 'status', '?')} {getattr(e, 'reason', '')}".strip()


class KubernetesPlatform(Platform):
    name = mf.KUBERNETES

    def __init__(self, app):
        super().__init__(app)
        self.budget = Budget(app.api_retry_budget)
        self._async_timeout: float | None = None
        self._async_fetch: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    # -- clients ----------------------------------------------------------------------
    @cached_property
    def hook(self):
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        hook = KubernetesHook(conn_id=self.app.connection_id)
        hook.api_client.user_agent = USER_AGENT  # the API server's audit log says who changed what
        return hook

    @cached_property
    def _client(self):
        from kubernetes import client

        return client

    @cached_property
    def request_timeout(self) -> float:
        return float(self.hook._get_field("request_timeout") or DEFAULT_REQUEST_TIMEOUT)

    @property
    def ns(self) -> str:
        return self.app.namespace

    def _call(
        self,
        fn,
        *args,
        missing_ok: bool = False,
        exists_is_conflict: bool = False,
        forbidden_ok: bool = False,
        **kwargs,
    ):
        """Call the API and return the JSON body (None for a 404 when missing_ok, a 403 when forbidden_ok)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        def attempt():
            try:
                resp = fn(*args, _preload_content=False, _request_timeout=self.request_timeout, **kwargs)
                data = resp.data
            except ApiException as e:
                if (e.status == 404 and missing_ok) or (e.status == 403 and forbidden_ok):
                    return None
                raise_if_transient(e.status, f"{e.status} {_api_error(e)}", e.headers)
                if e.status == 409 and ("modified" in _api_error(e) or exists_is_conflict):
                    raise Conflict(_api_error(e)) from None
                raise ReleaseError(f"Kubernetes API: {fn.__name__} failed: {e.status} {_api_error(e)}") from None
            except (HTTPError, OSError) as e:  # timeouts, resets, refused connections
                raise Transient(f"{type(e).__name__}: {e}") from None
            return json.loads(data) if data else {}

        return retrying(attempt, self.budget, f"Kubernetes API {fn.__name__}", log)

    # -- access -------------------------------------------------------------------------
    def check_permissions(self) -> None:
        """Ask the API whether this connection's identity may make every call a release makes in
        the app's namespace, and refuse with every missing one named, before anything changes.

        One SelfSubjectRulesReview (``kubectl auth can-i --list``) lists what RBAC grants; it is
        taken only as a yes: a cluster may authorize by other means too (a webhook: the review is
        then ``incomplete``), so whatever it does not grant is asked one by one with a
        SelfSubjectAccessReview (``kubectl auth can-i``), whose answer is the authorizer's own."""
        api = self._client.AuthorizationV1Api(self.hook.api_client)
        review = self._call(
            api.create_self_subject_rules_review,
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": self.ns}},
            forbidden_ok=True,
        )
        rules = ((review or {}).get("status") or {}).get("resourceRules") or []
        missing = []
        for p in required_permissions(self.app):
            if any(p.granted_by(rule) for rule in rules):
                continue
            resource, _, sub = p.resource.partition("/")
            question = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "namespace": self.ns,
                        "verb": p.verb,
                        "group": p.group,
                        "resource": resource,
                        "subresource": sub,
                    }
                },
            }
            answer = self._call(api.create_self_subject_access_review, question, forbidden_ok=True)
            if answer is None:
                # Every authenticated user may ask (ClusterRole system:basic-user); a cluster that
                # took that away cannot be asked: the release goes on, and the API still refuses
                # whatever is not allowed, step by step.
                log.warning(
                    "cannot check the connection's permissions (SelfSubjectAccessReview is forbidden); "
                    "going on without the check"
                )
                return
            if not (answer.get("status") or {}).get("allowed"):
                missing.append(p)
        if missing:
            raise ReleaseError(
                f"the Kubernetes connection {self.app.connection_id!r} may not do what a release needs in the "
                f"namespace {self.ns!r}: {', '.join(str(p) for p in missing)} (RBAC; nothing was changed).  Grant "
                f"them with {RBAC_MANIFEST}: kubectl -n {self.ns} apply -f {RBAC_MANIFEST} (and bind its Role "
                f"to the connection's account), then start a new run"
            )

    # -- reads --------------------------------------------------------------------------
    def _service_name(self, manifest: dict | None) -> str:
        return mf.workload_name(self.name, manifest) if manifest else self.app.service

    def read_service(self, manifest: dict | None = None) -> ServiceView | None:
        raw = self._call(
            self.hook.core_v1_client.read_namespaced_service, self._service_name(manifest), self.ns, missing_ok=True
        )
        return self._service_view(raw)

    def _answered_view(self, raw: dict | None) -> ServiceView:
        """The Service a create or replace answered with (the API always answers the object)."""
        view = self._service_view(raw)
        if view is None:
            raise ReleaseError("the Kubernetes API answered a Service write without the Service")
        return view

    def _service_view(self, raw: dict | None) -> ServiceView | None:
        if raw is None:
            return None
        meta, spec = raw.get("metadata", {}), raw.get("spec", {})
        ports = spec.get("ports") or [{}]
        fields = {
            "service": meta.get("name", ""),
            "namespace": self.ns,
            "cluster_ip": spec.get("clusterIP", ""),
            "port": str(ports[0].get("port", "")),
            "node_port": str(ports[0].get("nodePort", "")),
            "lb_port": str(ports[0].get("port", "")),
        }
        return ServiceView(
            selector=dict(spec.get("selector") or {}),
            annotations=dict(meta.get("annotations") or {}),
            version=meta.get("resourceVersion", ""),
            url_fields=fields,
            raw=raw,
        )

    def _deployment(self, color: str) -> dict | None:
        return self._call(
            self.hook.apps_v1_client.read_namespaced_deployment,
            self.app.deployment_name(color),
            self.ns,
            missing_ok=True,
        )

    def _pods(self, labels: dict[str, str]) -> list[dict]:
        body = self._call(self.hook.core_v1_client.list_namespaced_pod, self.ns, label_selector=label_selector(labels))
        return body.get("items", [])

    def _pod_labels(self, color: str, deployment: dict | None = None) -> dict[str, str]:
        if deployment is not None:
            return dict(deployment.get("spec", {}).get("selector", {}).get("matchLabels") or {})
        return self.app.selector_for(color)

    def observe(self, color: str) -> ColorStatus:
        deployment = self._deployment(color)
        pods = self._pods(self._pod_labels(color, deployment)) if deployment else []
        return rollout_status(deployment, pods)

    def read_manifest(self, color: str) -> dict | None:
        deployment = self._deployment(color)
        if deployment is None:
            return None
        meta = deployment.get("metadata", {})
        annotations = {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if not k.startswith(("bluegreen.io/", "deployment.kubernetes.io/", "kubectl.kubernetes.io/"))
        }
        clean_meta = {"name": meta["name"], "labels": meta.get("labels") or {}}
        if annotations:
            clean_meta["annotations"] = annotations
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": clean_meta, "spec": deployment["spec"]}

    def service_backends(self) -> set[str]:
        discovery = self._client.DiscoveryV1Api(self.hook.api_client)
        body = self._call(
            discovery.list_namespaced_endpoint_slice,
            self.ns,
            label_selector=f"kubernetes.io/service-name={self.app.service}",
        )
        return {
            ep["targetRef"]["name"]
            for item in body.get("items", [])
            for ep in item.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready") and ep.get("targetRef")
        }

    def ready_members(self, color: str) -> set[str]:
        return {p["metadata"]["name"] for p in self._pods(self.app.selector_for(color)) if pod_ready(p)}

    # -- writes -------------------------------------------------------------------------
    def apply_color(self, color: str, manifest: dict) -> str:
        apps = self.hook.apps_v1_client
        name = self.app.deployment_name(color)
        desired = json.loads(json.dumps(manifest))
        desired.setdefault("metadata", {})["namespace"] = self.ns
        wanted = mf.fingerprint(desired)
        desired["metadata"].setdefault("annotations", {})[mf.APPLIED] = wanted
        # Create first: the idle color is usually gone (the last release retired it).  A create that
        # finds it there (409 AlreadyExists: a leftover, or this step's own create whose answer was
        # lost) reads it, which is what a read before the create would have cost every time.
        try:
            self._call(apps.create_namespaced_deployment, self.ns, desired, exists_is_conflict=True)
            return "created"
        except Conflict:
            existing = self._deployment(color)
        if existing is None:
            raise Conflict(f"{name} was deleted while it was applied")  # the caller applies again
        if existing["metadata"].get("deletionTimestamp"):
            self._wait_deleted(color)
            self._call(apps.create_namespaced_deployment, self.ns, desired, exists_is_conflict=True)
            return "created"
        if (existing["metadata"].get("annotations") or {}).get(mf.APPLIED) == wanted:
            return "unchanged"
        if existing["spec"].get("selector") != desired["spec"].get("selector"):
            # spec.selector is immutable: a leftover with another selector can only be recreated.
            self.delete_color(color)
            self._wait_deleted(color)
            self._call(apps.create_namespaced_deployment, self.ns, desired, exists_is_conflict=True)
            return "recreated"
        desired["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        # A replace (not a patch) so that the leftover ends up exactly as the manifest says;
        # a changed template makes the Deployment roll out the new pods.
        self._call(apps.replace_namespaced_deployment, name, self.ns, desired)
        return "replaced"

    def _wait_deleted(self, color: str, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.app.delete_timeout)
        while not self.color_gone(color):
            if time.monotonic() > deadline:
                raise ReleaseError(f"deployment {self.app.deployment_name(color)} is still being deleted")
            time.sleep(0.5)

    def scale_color(self, color: str, replicas: int) -> None:
        self._call(
            self.hook.apps_v1_client.patch_namespaced_deployment_scale,
            self.app.deployment_name(color),
            self.ns,
            {"spec": {"replicas": replicas}},
        )

    def delete_color(self, color: str) -> None:
        body = self._client.V1DeleteOptions(propagation_policy="Foreground")
        self._call(
            self.hook.apps_v1_client.delete_namespaced_deployment,
            self.app.deployment_name(color),
            self.ns,
            body=body,
            missing_ok=True,
        )

    def color_gone(self, color: str) -> bool:
        return self._deployment(color) is None and not self._pods(self.app.selector_for(color))

    def create_service(
        self, selector: dict[str, str], annotations: dict[str, str], manifest: dict | None = None
    ) -> ServiceView:
        body = mf.service_body(manifest or self.app.manifests["service"], self.ns, selector, annotations)
        return self._answered_view(
            self._call(self.hook.core_v1_client.create_namespaced_service, self.ns, body, exists_is_conflict=True)
        )

    def write_service(
        self,
        current: ServiceView,
        selector: dict[str, str],
        annotations: dict[str, str | None],
        manifest: dict | None = None,
    ) -> ServiceView:
        core = self.hook.core_v1_client
        name = self._service_name(manifest)
        raw = current.raw if current.raw is not None and current.version else None
        if raw is None:  # (a view without the object it was read from: read it now)
            raw = self._call(core.read_namespaced_service, name, self.ns, missing_ok=True)
            if raw is None:
                raise ReleaseError(f"the Service {name} disappeared")
            if current.version and raw["metadata"].get("resourceVersion") != current.version:
                raise Conflict(f"the Service {name} changed since it was read")
        # Replace, not patch: a merge or strategic-merge patch would merge the selector
        # maps and leave stale keys behind.  The object as read carries its resourceVersion, which
        # makes the replace conditional: a change since the read answers 409 (Conflict: read again).
        body = mf.with_selector(raw, selector, annotations)
        return self._answered_view(self._call(core.replace_namespaced_service, name, self.ns, body))

    def delete_service(self, manifest: dict | None = None, current: ServiceView | None = None) -> None:
        # a precondition on the version read: a Service changed since is not deleted (Conflict)
        body = (
            self._client.V1DeleteOptions(preconditions=self._client.V1Preconditions(resource_version=current.version))
            if current is not None and current.version
            else None
        )
        self._call(
            self.hook.core_v1_client.delete_namespaced_service,
            self._service_name(manifest),
            self.ns,
            body=body,
            missing_ok=True,
            exists_is_conflict=current is not None,
        )

    # -- for people ---------------------------------------------------------------------
    def manual_switch(self, selector: dict[str, str]) -> str:
        return (
            f"kubectl -n {self.ns} patch service {self.app.service} --type=json -p "
            f"'[{{\"op\":\"replace\",\"path\":\"/spec/selector\",\"value\":{json.dumps(selector)}}}]'"
        )

    def manual_delete(self, color: str) -> str:
        return f"kubectl -n {self.ns} delete deployment {self.app.deployment_name(color)}"

    # -- async (triggers) ---------------------------------------------------------------
    @cached_property
    def async_hook(self):
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

        return AsyncKubernetesHook(conn_id=self.app.connection_id)

    async def _async_request_timeout(self) -> float:
        """The connection's request timeout, for the watches.  The first call fetches the async hook's
        connection; concurrent watches (the soak's of the workload and of the Service) wait for that
        one fetch rather than each start their own: in a task process the SDK refuses a connection's
        secret masking while another fetch is in flight (DeadlockImminentError)."""
        if self._async_timeout is None:
            loop = asyncio.get_running_loop()
            if self._async_fetch is None or self._async_fetch[0] is not loop:
                self._async_fetch = (loop, asyncio.Lock())  # (a lock belongs to one event loop)
            async with self._async_fetch[1]:
                if self._async_timeout is None:
                    value = await self.async_hook._get_field("request_timeout")
                    self._async_timeout = float(value or DEFAULT_REQUEST_TIMEOUT)
        return self._async_timeout

    def watch(self, color: str, heartbeat: float = HEARTBEAT_SECONDS) -> AsyncGenerator[ColorStatus, None]:
        """Watch the deployment and its pods; yield the status after every change (and at
        least every HEARTBEAT_SECONDS).  Costs one list and one watch per resource, not a
        request per observation."""
        from kubernetes_asyncio import client as aclient

        name = self.app.deployment_name(color)
        seen: dict = {"deployment": None, "pods": {}}

        def on_deployment(kind, obj):
            seen["deployment"] = None if kind == "DELETED" else obj

        def reset_deployment(items):
            seen["deployment"] = items[0] if items else None

        def on_pod(kind, obj):
            if kind == "DELETED":
                seen["pods"].pop(obj["metadata"]["name"], None)
            else:
                seen["pods"][obj["metadata"]["name"]] = obj

        def reset_pods(items):
            seen["pods"] = {p["metadata"]["name"]: p for p in items}

        def pumps(api, changed: asyncio.Event, state: dict, timeout: float) -> list[Coroutine]:
            apps, core = aclient.AppsV1Api(api), aclient.CoreV1Api(api)
            deployment = f"metadata.name={name}"
            pods = label_selector(self.app.selector_for(color))
            return [
                _pump(
                    apps.list_namespaced_deployment,
                    self.ns,
                    reset_deployment,
                    on_deployment,
                    changed,
                    state,
                    timeout,
                    field_selector=deployment,
                ),
                _pump(
                    core.list_namespaced_pod, self.ns, reset_pods, on_pod, changed, state, timeout, label_selector=pods
                ),
            ]

        return self._watching(pumps, lambda: rollout_status(seen["deployment"], list(seen["pods"].values())), heartbeat)

    def watch_service(self, heartbeat: float = HEARTBEAT_SECONDS) -> AsyncGenerator[ServiceView | None, None]:
        """Watch the app's Service; yield it after every change (None: deleted), and at least every
        ``heartbeat`` seconds.  One list and one watch (re-opened every WATCH_SECONDS or so), not
        a read per look."""
        from kubernetes_asyncio import client as aclient

        seen: dict = {"service": None}

        def on_service(kind, obj):
            seen["service"] = None if kind == "DELETED" else obj

        def reset(items):
            seen["service"] = items[0] if items else None

        def pumps(api, changed: asyncio.Event, state: dict, timeout: float) -> list[Coroutine]:
            return [
                _pump(
                    aclient.CoreV1Api(api).list_namespaced_service,
                    self.ns,
                    reset,
                    on_service,
                    changed,
                    state,
                    timeout,
                    field_selector=f"metadata.name={self.app.service}",
                )
            ]

        return self._watching(pumps, lambda: self._service_view(seen["service"]), heartbeat)

    async def _watching(
        self, pumps: Callable[..., list[Coroutine]], view: Callable[[], T], heartbeat: float
    ) -> AsyncGenerator[T, None]:
        """Run the ``pumps`` (each lists, then watches, one resource: see _pump) on one async client, and
        yield ``view()`` after every change they report, and at least every ``heartbeat`` seconds,
        once each has listed.  A pump's error that retrying cannot cure ends the watch."""
        changed = asyncio.Event()
        state: dict = {"error": None}
        timeout = await self._async_request_timeout()
        async with self.async_hook.get_conn() as api:
            api.user_agent = USER_AGENT
            tasks = [asyncio.create_task(pump) for pump in pumps(api, changed, state, timeout)]
            try:
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), heartbeat)
                    changed.clear()
                    if state["error"]:
                        raise state["error"]
                    if state.get("listed", 0) >= len(tasks):
                        yield view()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


async def _pump(
    list_fn, namespace, reset, apply, changed: asyncio.Event, state: dict, request_timeout: float, **selectors
):
    """List, then watch from the list's resourceVersion; re-list on 410 Gone or a broken stream.

    Transient failures (timeouts, resets, 429, 5xx, a cut stream) are retried with backoff for
    as long as the watch is wanted: the judge that reads it keeps its own deadline.  Only an
    error that retrying cannot cure (403, 404, ...) ends the watch."""
    import aiohttp

    listed_once = False
    failures = 0
    while True:
        try:
            resp = await list_fn(namespace, _preload_content=False, _request_timeout=request_timeout, **selectors)
            async with resp:
                body = await resp.json(content_type=None)
                _check_status(resp.status, body, list_fn.__name__, resp.headers)
            reset(body.get("items") or [])
            version = body["metadata"]["resourceVersion"]
            if not listed_once:
                listed_once = True
                state["listed"] = state.get("listed", 0) + 1
            changed.set()
            failures = 0
            while True:
                server_timeout = WATCH_SECONDS + random.randint(0, 30)
                # The client's own timeout must outlast the server's, or every watch is cut short
                # (the provider's client defaults to 60 s when none is given); a watch on which
                # nothing (not even a bookmark) arrives for a while is opened again.
                timeout = aiohttp.ClientTimeout(
                    total=server_timeout + 30, sock_connect=request_timeout, sock_read=3 * request_timeout
                )
                resp = await list_fn(
                    namespace,
                    watch=True,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=server_timeout,
                    _request_timeout=timeout,
                    _preload_content=False,
                    **selectors,
                )
                gone = False
                async with resp:
                    if resp.status == 410:
                        gone = True
                    else:
                        _check_status(resp.status, {}, "watch", resp.headers)
                        async for line in resp.content:
                            if not line.strip():
                                continue
                            event = json.loads(line)
                            kind, obj = event.get("type"), event.get("object") or {}
                            if kind == "ERROR":
                                gone = obj.get("code") == 410
                                if not gone:
                                    raise Transient(f"watch ended with {obj.get('code')} {obj.get('message', '')}")
                                break
                            version = obj.get("metadata", {}).get("resourceVersion", version)
                            if kind != "BOOKMARK":
                                apply(kind, obj)
                                changed.set()
                failures = 0
                if gone:
                    break  # history expired: re-list
        except asyncio.CancelledError:
            raise
        except ReleaseError as e:
            state["error"] = e
            changed.set()
            return
        except Exception as e:  # transient: a broken connection, a timeout, 429/5xx: back off, list again
            failures += 1
            pause = min(8.0, 0.25 * 2**failures) * random.uniform(0.5, 1.0)
            if isinstance(e, Transient) and e.retry_after:
                pause = max(pause, e.retry_after)
            log.warning("watch interrupted (%s: %s); listing again in %.1fs", type(e).__name__, e, pause)
            await asyncio.sleep(pause)


def _check_status(status: int, body: dict, what: str, headers) -> None:
    if status == 200:
        return
    message = (body or {}).get("message", "") if isinstance(body, dict) else ""
    raise_if_transient(status, f"{what}: {status} {message}".strip(), headers)
    raise ReleaseError(f"Kubernetes API: {what} failed: {status} {message}".strip())
