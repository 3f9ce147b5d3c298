"""The BCS Mesos adapter: v4 deployments and a service, through the BCS API gateway.

Writes go to the v4 scheduler API (what ``bcs-client create/update/delete`` send);
reads come from bcs-storage (what ``bcs-client list/inspect`` read), which
bcs-mesos-watch fills a moment after the scheduler changes.  Because of that lag
every write here waits until storage shows it, so that the next step reads its
own writes.  BCS has no watch: triggers poll at the app's ``poll_interval``.
The API facts used here are in shared/docs/bcs-mesos-api.md (bk-bcs sources).

BCS has no conditional write (no resourceVersion; an update overwrites), so the
Service's writes are made conditional here (``ClaimedWrites``): each write first
claims the Service's next version by creating a configmap named after it, which
only one writer can create, then writes that version.  Two bluegreen writers that
read the same version cannot both write; a person's change in between is caught
by comparing what was read with what is stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncGenerator
from functools import cached_property

from ..apps import manifests as mf
from ..hooks.bcs import ALREADY_EXISTS, NOT_FOUND, BcsApiError, BcsHook
from ..hooks.retrying import Budget
from ..release.model import ColorStatus, Conflict, ReleaseError, ServiceView, TransientError
from ..release.ports import Platform

# Taskgroup states that mean a member is lost, not merely late (bk-bcs schetypes TaskGroup status).
FAILED_STATES = ("Failed", "Error", "Lost")
# Failed polls in a row (answered with an error, not unreachable) a waiting sensor shrugs off
# before it fails: storage can briefly fail a query.
POLL_ERRORS_TOLERATED = 3
# The annotation that numbers the Service's bluegreen writes (see ClaimedWrites).
VERSION = "bluegreen.io/version"
# How long storage may take to show a write (bcs-mesos-watch syncs every few seconds upstream).
STORAGE_LAG_TIMEOUT = 30.0


def _parse_time(value: str | None) -> float | None:
    if not value or value.startswith("0001-"):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def first_check_after(raw_json: dict | None) -> float:
    """Seconds after a container starts before a ``result: true`` of its health check means
    something.

    The scheduler reports ``result: true`` before a check has run (bk-bcs sched/task/task.go
    createTaskHealthChecks), and storage does not say whether it ran.  The executor runs
    the first check gracePeriodSeconds after the start (the scheduler's delaySeconds is
    a lower bound too) and must finish it within timeoutSeconds, which is shorter than
    intervalSeconds (the executor refuses anything else).  So one interval after the
    later of the two, the first check has run and its result has had time to reach
    storage."""
    longest = 0.0
    for c in mf.containers(mf.BCS_MESOS, raw_json or {}):
        for check in c.get("healthChecks") or []:
            if check:
                start = max(float(check.get("gracePeriodSeconds") or 0), float(check.get("delaySeconds") or 0))
                longest = max(longest, start + float(check.get("intervalSeconds") or 0))
    return longest


def member_ready(taskgroup: dict, check_after: float, now: float) -> bool:
    if taskgroup.get("status") != "Running":
        return False
    for cs in taskgroup.get("containerStatuses") or []:
        checks = cs.get("healCheckStatus") or []
        if not all(h.get("result") for h in checks):
            return False
        started = _parse_time(cs.get("startTime")) or _parse_time(taskgroup.get("startTime"))
        if checks and (started is None or now - started < check_after):
            return False
    return True


def mesos_status(
    deployment: dict | None,
    application: dict | None,
    taskgroups: list[dict],
    now: float,
    abnormal_for: float = 0.0,
    abnormal_tolerance: float = 30.0,
) -> ColorStatus:
    """The readiness rule of shared/docs/bcs-mesos-api.md section 3: the deployment record
    Running with no rolling update in progress; its application Running with
    runningInstance == instance; every taskgroup Running with every health check passed
    (and past the check's delay).  A Failed/Error/Lost taskgroup, or an application
    Abnormal for longer than the tolerance, is a failure."""
    if deployment is None:
        return ColorStatus.missing()
    raw = deployment.get("raw_json") or {}
    desired = int((application or {}).get("instance") or (raw.get("spec") or {}).get("instance") or 0)
    check_after = first_check_after(raw)
    current = set(p.get("name") for p in (application or {}).get("pods") or [])
    members = [t for t in taskgroups if not current or (t.get("metadata") or {}).get("name") in current]
    ready = sum(1 for t in members if member_ready(t, check_after, now))
    restarts = sum(int(cs.get("restartCount") or 0) for t in taskgroups for cs in t.get("containerStatuses") or [])
    containers = mf.containers(mf.BCS_MESOS, raw)
    app_status = (application or {}).get("status", "absent")
    deleting = deployment.get("status") == "Deleting"
    image = containers[0].get("image") if containers else None
    progress = (
        f"{ready}/{desired} running and healthy (deployment {deployment.get('status')}, application {app_status})"
    )

    def status(failure: str | None = None, complete: bool = False) -> ColorStatus:
        return ColorStatus(
            exists=True,
            desired=desired,
            ready=ready,
            restarts=restarts,
            image=image,
            deleting=deleting,
            progress=progress,
            failure=failure,
            complete=complete,
        )

    if deleting:
        return status(failure="the deployment is being deleted")
    lost = [t for t in members if t.get("status") in FAILED_STATES]
    if lost:
        t = lost[0]
        return status(
            failure=f"taskgroup {t['metadata']['name']} is {t['status']}: {t.get('message', '')}".rstrip(": ")
        )
    if app_status == "Abnormal" and abnormal_for > abnormal_tolerance:
        return status(failure=f"application Abnormal for {abnormal_for:.0f}s: {(application or {}).get('message', '')}")
    complete = (
        deployment.get("status") == "Running"
        and not deployment.get("application_ext")
        and not deployment.get("is_in_rolling")
        and app_status == "Running"
        and int((application or {}).get("runningInstance") or 0) == desired
        and len(members) == desired
        and ready == desired
        and desired > 0
    )
    return status(complete=complete)


class BcsMesosPlatform(Platform):
    name = mf.BCS_MESOS

    def __init__(self, app, hook: BcsHook | None = None):
        super().__init__(app)
        self._hook = hook
        self._abnormal_since: dict[str, float] = {}
        self.budget = Budget(app.api_retry_budget)

    @cached_property
    def hook(self) -> BcsHook:
        hook = self._hook or BcsHook(self.app.connection_id)
        hook.budget = self.budget
        return hook

    @property
    def ns(self) -> str:
        return self.app.namespace

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (BcsApiError, ValueError) as e:  # ValueError: the connection is incomplete
            raise ReleaseError(str(e)) from None

    # -- reads ----------------------------------------------------------------------------
    def _service_name(self, manifest: dict | None) -> str:
        return mf.workload_name(self.name, manifest) if manifest else self.app.service

    def _service_data(self, manifest: dict | None = None) -> dict | None:
        record = self._call(self.hook.inspect, "service", self.ns, self._service_name(manifest))
        return (record or {}).get("data") or None

    def read_service(self, manifest: dict | None = None) -> ServiceView | None:
        data = self._service_data(manifest)
        if data is None:
            return None
        ports = (data.get("spec") or {}).get("ports") or [{}]
        port = str(ports[0].get("servicePort", ""))
        annotations = dict((data.get("metadata") or {}).get("annotations") or {})
        return ServiceView(
            selector=dict((data.get("spec") or {}).get("selector") or {}),
            annotations=annotations,
            version=f"{annotations.get(VERSION, '0')}:{mf.fingerprint(data)}",
            url_fields={
                "service": (data.get("metadata") or {}).get("name", ""),
                "namespace": self.ns,
                "port": port,
                "lb_port": port,
                "node_port": port,
                "cluster_ip": "",
            },
        )

    def _records(self, color: str) -> tuple[dict | None, dict | None, list[dict]]:
        name = self.app.deployment_name(color)
        record = self._call(self.hook.inspect, "deployment", self.ns, name)
        if record is None:
            return None, None, []
        deployment = record["data"]
        app_name = (deployment.get("application") or {}).get("name") or name
        app_record = self._call(self.hook.inspect, "application", self.ns, app_name)
        taskgroups = self._call(self.hook.query, "taskgroup", namespace=self.ns, rcName=app_name)
        return deployment, (app_record or {}).get("data"), [r["data"] for r in taskgroups]

    def observe(self, color: str) -> ColorStatus:
        deployment, application, taskgroups = self._records(color)
        now = time.time()
        if application and application.get("status") == "Abnormal":
            since = self._abnormal_since.setdefault(color, now)
        else:
            self._abnormal_since.pop(color, None)
            since = now
        return mesos_status(
            deployment,
            application,
            taskgroups,
            now,
            abnormal_for=now - since,
            abnormal_tolerance=self.app.abnormal_tolerance,
        )

    def read_manifest(self, color: str) -> dict | None:
        try:
            definition = self.hook.definition("deployment", self.ns, self.app.deployment_name(color))
        except BcsApiError:
            return None
        if not definition:
            return None
        meta = definition.get("metadata") or {}
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("bluegreen.io/")}
        definition["metadata"] = {k: v for k, v in meta.items() if k in ("name", "namespace", "labels")}
        if annotations:
            definition["metadata"]["annotations"] = annotations
        return definition

    def service_backends(self) -> set[str]:
        records = self._call(self.hook.query, "endpoints", namespace=self.ns, name=self.app.service)
        return {
            ep["targetRef"]["id"]
            for r in records
            for ep in (r["data"].get("eps") or [])
            if (ep.get("targetRef") or {}).get("id")
        }

    def ready_members(self, color: str) -> set[str]:
        """Running taskgroups of the color: what BCS routes traffic to (health is not consulted there)."""
        deployment, application, taskgroups = self._records(color)
        current = set(p.get("name") for p in (application or {}).get("pods") or [])
        return {
            t["metadata"]["name"]
            for t in taskgroups
            if t.get("status") == "Running" and (not current or t["metadata"]["name"] in current)
        }

    # -- writes ---------------------------------------------------------------------------
    def apply_color(self, color: str, manifest: dict) -> str:
        name = self.app.deployment_name(color)
        desired = json.loads(json.dumps(manifest))
        meta = desired.setdefault("metadata", {})
        meta["namespace"] = self.ns
        wanted = mf.fingerprint(desired)
        meta.setdefault("annotations", {})[mf.APPLIED] = wanted
        record = self._call(self.hook.inspect, "deployment", self.ns, name)
        action = "created"
        if record is not None:
            stored = (record["data"].get("raw_json") or {}).get("metadata") or {}
            if (
                record["data"].get("status") != "Deleting"
                and (stored.get("annotations") or {}).get(mf.APPLIED) == wanted
            ):
                return "unchanged"
            # A leftover is deleted and created again, not updated: an update is a rolling
            # update that needs the deployment Running, its application Running or
            # Abnormal, a rollingupdate strategy and an unchanged selector (bk-bcs
            # sched/backend/deployment.go UpdateDeployment).  A leftover idle color can be
            # in any state (Abnormal after a failed release, Deleting), and the seed's
            # deployments have no strategy; a fresh create works from every state and
            # gives the readiness rule a new application to judge.  The idle color serves
            # no traffic, so the gap costs nothing.
            self.delete_color(color)
            self._wait(
                lambda: self.color_gone(color),
                f"{name} to be deleted before it is created again",
                self.app.delete_timeout,
            )
            action = "recreated"
        try:
            self.hook.create("deployment", self.ns, desired)
        except BcsApiError as e:
            if e.code != ALREADY_EXISTS:
                raise ReleaseError(str(e)) from None
            return self.apply_color(color, manifest)  # created meanwhile (a retried POST): judge it again
        self._wait(
            lambda: self._call(self.hook.inspect, "deployment", self.ns, name) is not None,
            f"storage to show {name}",
            STORAGE_LAG_TIMEOUT,
        )
        return action

    def scale_color(self, color: str, replicas: int) -> None:
        self._call(self.hook.scale_deployment, self.ns, self.app.deployment_name(color), replicas)

    def delete_color(self, color: str) -> None:
        try:
            self.hook.delete("deployment", self.ns, self.app.deployment_name(color))
        except BcsApiError as e:
            if e.code != NOT_FOUND:
                raise ReleaseError(str(e)) from None

    def color_gone(self, color: str) -> bool:
        name = self.app.deployment_name(color)
        if self._call(self.hook.inspect, "deployment", self.ns, name) is not None:
            return False
        return not self._call(self.hook.query, "taskgroup", namespace=self.ns, rcName=name)

    def create_service(
        self, selector: dict[str, str], annotations: dict[str, str], manifest: dict | None = None
    ) -> ServiceView:
        body = mf.service_body(manifest or self.app.manifests["service"], self.ns, selector, annotations)
        try:
            # bcs-scheduler checks that the service does not exist and saves it in one request
            # (sched/api createService): of two creates, one gets 1405201
            self.hook.create("service", self.ns, body)
        except BcsApiError as e:
            if e.code == ALREADY_EXISTS:
                raise Conflict(f"the service {self._service_name(manifest)} was created meanwhile") from None
            raise ReleaseError(str(e)) from None
        return self._await_service(selector, body["metadata"]["annotations"], manifest)

    def write_service(
        self,
        current: ServiceView,
        selector: dict[str, str],
        annotations: dict[str, str | None],
        manifest: dict | None = None,
    ) -> ServiceView:
        name = self._service_name(manifest)
        data = self._service_data(manifest)
        if data is None:
            raise ReleaseError(f"the service {name} disappeared")
        # A person's change since the read (storage shows it): compare what was read with what is stored.
        _refuse_if_changed(name, current, data)
        changes = dict(annotations)
        claims = ClaimedWrites(self, name) if manifest is None else None
        if claims is not None:
            try:
                version = int(current.annotations.get(VERSION, "0") or 0) + 1
            except ValueError:
                raise ReleaseError(
                    f"the service {name}'s annotation {VERSION} is not a number: "
                    f"{current.annotations.get(VERSION)!r} (set it to a number, or remove it)"
                ) from None
            claims.claim(version)  # Conflict when another writer claimed it first
            changes[VERSION] = str(version)
        # The stored object with only the selector (and our annotations) changed; the
        # scheduler keeps the stored name, namespace and labels anyway.
        body = mf.with_selector(data, selector, changes)
        try:
            self._call(self.hook.update_service, self.ns, body)
        except ReleaseError:
            if claims is not None:
                # Refused: nothing landed, and a claim left behind would refuse every later
                # write of this version until it went stale.  (After a timeout the write may
                # have landed: the claim stays; this run's retry may write under it.)
                claims.forget(version)
            raise
        view = self._await_service(selector, body["metadata"]["annotations"], manifest)
        if claims is not None:
            claims.forget(version - 1)
        return view

    def delete_service(self, manifest: dict | None = None, current: ServiceView | None = None) -> None:
        name = self._service_name(manifest)
        if current is not None:
            data = self._service_data(manifest)
            if data is not None:
                _refuse_if_changed(name, current, data)
        try:
            self.hook.delete("service", self.ns, name)
        except BcsApiError as e:
            if e.code != NOT_FOUND:
                raise ReleaseError(str(e)) from None
        self._wait(lambda: self._service_data(manifest) is None, f"storage to drop service {name}", STORAGE_LAG_TIMEOUT)
        if manifest is None:
            ClaimedWrites(self, name).forget_all()

    # -- for people ---------------------------------------------------------------------
    def manual_switch(self, selector: dict[str, str]) -> str:
        return (
            f"bcs-client update -t service -f <the service {self.ns}/{self.app.service} as `bcs-client inspect "
            f"-t service` shows it, with spec.selector {json.dumps(selector)}>"
        )

    def manual_delete(self, color: str) -> str:
        return f"bcs-client delete -t deployment -ns {self.ns} -n {self.app.deployment_name(color)}"

    def _await_service(self, selector: dict, annotations: dict, manifest: dict | None) -> ServiceView:
        """Read our own write: wait until storage shows it."""
        deadline = time.monotonic() + STORAGE_LAG_TIMEOUT
        while True:
            view = self.read_service(manifest)
            if view is not None and view.selector == selector and view.annotations == annotations:
                return view
            if time.monotonic() > deadline:
                raise ReleaseError(
                    f"BCS storage did not show the update of service {self._service_name(manifest)} within "
                    f"{STORAGE_LAG_TIMEOUT:g}s"
                )
            time.sleep(0.2)

    def _wait(self, done, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise ReleaseError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.3)

    # -- async (triggers): BCS has no watch, so poll; the HTTP calls run in a thread ----------
    async def _async_ready(self) -> None:
        if self._hook is None:
            self._hook = await BcsHook.from_connection_id_async(self.app.connection_id)

    async def watch(self, color: str, heartbeat: float = 2.0) -> AsyncGenerator[ColorStatus, None]:
        """Poll storage.  An unreachable gateway is polled again for as long as the watch is
        wanted (the judge keeps its own deadline); an envelope error (storage briefly unable
        to list) is tried again, and only POLL_ERRORS_TOLERATED of those in a row end it."""
        await self._async_ready()
        interval = min(heartbeat, self.app.poll_interval)
        failures = 0
        while True:
            try:
                status = await asyncio.to_thread(self.observe, color)
                failures = 0
            except TransientError:
                await asyncio.sleep(interval)
                continue
            except ReleaseError:
                failures += 1
                if failures > POLL_ERRORS_TOLERATED:
                    raise
                await asyncio.sleep(interval)
                continue
            yield status
            await asyncio.sleep(interval)


def _refuse_if_changed(name: str, current: ServiceView, stored: dict) -> None:
    """Conflict when the stored service is not the one read (BCS has no conditional write: a
    person's change since the read shows in storage)."""
    if current.version and mf.fingerprint(stored) != current.version.partition(":")[2]:
        raise Conflict(f"the service {name} changed since it was read")


class ClaimedWrites:
    """Conditional writes of a BCS service, which the API does not offer.

    Each bluegreen write of the service carries a version number (annotation
    ``bluegreen.io/version``).  To write version N, a writer first creates the configmap
    ``<service>-bluegreen-v<N>``: bcs-scheduler creates an object only if it does not
    exist (1405201 otherwise), so of two writers that read version N-1, one claims N and
    writes; the other gets ``Conflict``, reads again and sees N.  A writer whose write fails
    takes its claim back at once; a claim names its writer (the release run), whose retry
    may use it (its earlier try died between claim and write); any other writer's claim
    is taken back once it is older than ``stale_after``.  What this cannot stop: a writer
    that stalls longer than that between its claim and its write (it then overwrites a
    newer version), and a person's write with bcs-client (caught only by comparing what
    was read with what is stored, as before).
    """

    def __init__(self, platform: BcsMesosPlatform, service: str):
        self.platform, self.service = platform, service
        # longer than any writer takes from its claim to its write landing in storage
        self.stale_after = platform.app.api_retry_budget + STORAGE_LAG_TIMEOUT + 30.0

    def name(self, version: int) -> str:
        return f"{self.service}-bluegreen-v{version}"

    def claim(self, version: int) -> None:
        hook, ns = self.platform.hook, self.platform.ns
        body = {
            "apiVersion": "v4",
            "kind": "configmap",
            "metadata": {"name": self.name(version), "namespace": ns, "labels": {"bluegreen.io/claims": self.service}},
            "datas": {
                "claim": {
                    "type": "file",
                    "content": json.dumps(
                        {"version": version, "claimed_at": time.time(), "writer": self.platform.writer}
                    ),
                }
            },
        }
        try:
            hook.create("configmap", ns, body)
            return
        except BcsApiError as e:
            if e.code != ALREADY_EXISTS:
                raise ReleaseError(str(e)) from None
        claim = self._claim(version)
        if claim is not None and self.platform.writer and claim.get("writer") == self.platform.writer:
            # This run's own claim, left by a try that died between its claim and its write
            # (the release lock keeps other runs out meanwhile): write under it.
            return
        claimed_at = claim.get("claimed_at") if claim else None
        if isinstance(claimed_at, (int, float)) and time.time() - claimed_at > self.stale_after:
            # its writer died between its claim and its write: take the claim back, read again
            self.forget(version)
        raise Conflict(f"the service {self.service}'s version {version} was claimed by another writer")

    def _claim(self, version: int) -> dict | None:
        record = self.platform._call(self.platform.hook.inspect, "configmap", self.platform.ns, self.name(version))
        try:
            content = ((record or {}).get("data") or {}).get("datas", {}).get("claim", {}).get("content")
            claim = json.loads(content)
            return claim if isinstance(claim, dict) else None
        except (TypeError, ValueError, KeyError, AttributeError):
            return None

    def forget(self, version: int) -> None:
        """Delete an old claim (best effort: a leftover only waits for the next write to go)."""
        if version < 1:
            return
        try:
            self.platform.hook.delete("configmap", self.platform.ns, self.name(version))
        except (BcsApiError, TransientError):
            pass

    def forget_all(self) -> None:
        try:
            records = self.platform.hook.query("configmap", namespace=self.platform.ns)
        except (BcsApiError, TransientError):
            return
        for r in records:
            name = ((r.get("data") or {}).get("metadata") or {}).get("name", "")
            if name.startswith(f"{self.service}-bluegreen-v"):
                try:
                    self.platform.hook.delete("configmap", self.platform.ns, name)
                except (BcsApiError, TransientError):
                    pass
