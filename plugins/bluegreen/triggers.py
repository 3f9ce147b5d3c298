"""Triggers: the waiting parts of a release, run on the triggerer's event loop.

Both are platform-neutral: they get observations from the app's adapter
(``Platform.watch``: a Kubernetes watch, or BCS polling) and hand them to the
release model's judges.  They live in the plugins package, not under dags/, so
the triggerer can import them; their classpath is ``bluegreen.triggers.*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

from .release.health import FAILED, HttpResult, ReadinessJudge, SoakJudge, Verdict
from .release.model import ReleaseError

# Longest quiet spell in a soak's log.
LOG_EVERY = 30.0


def _app_and_platform(app: dict):
    from .apps.config import AppConfig
    from .platforms import platform_for

    config = AppConfig.from_json(app)
    return config, platform_for(config)


class _JudgingTrigger(BaseTrigger):
    """Watch one color of an app (the platform's ``watch``), hand each observation to a
    judge, fire once with its final verdict (held until ``not_before``)."""

    def __init__(self, app: dict, color: str, not_before: float = 0.0):
        super().__init__()
        self.app, self.color, self.not_before = app, color, not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"bluegreen.triggers.{type(self).__name__}",
                {"app": self.app, "color": self.color, "not_before": self.not_before, **self.arguments()})

    def arguments(self) -> dict[str, Any]:  # pragma: no cover - each trigger says
        raise NotImplementedError

    async def verdicts(self, app, platform, observations) -> AsyncIterator[Verdict]:  # pragma: no cover
        raise NotImplementedError
        yield

    async def run(self) -> AsyncIterator[TriggerEvent]:
        app, platform = _app_and_platform(self.app)
        observations = platform.watch(self.color, heartbeat=min(app.check_interval, 2.0))
        verdict = Verdict(FAILED, "the watch ended without a verdict")
        try:
            # aclosing: stop the watch (and close its connections) as soon as a verdict is in
            async with contextlib.aclosing(observations):
                async for verdict in self.verdicts(app, platform, observations):
                    if verdict.final:
                        break
        except ReleaseError as e:
            verdict = Verdict(FAILED, f"cannot observe {app.deployment_name(self.color)}: {e}")
        await hold_until(self.not_before)
        yield TriggerEvent({"state": verdict.state, "message": verdict.message})


class ReadinessTrigger(_JudgingTrigger):
    """Fires when a color is fully ready, has failed, or the readiness timeout passed."""

    def __init__(self, app: dict, color: str, deadline: float, timeout: float, not_before: float = 0.0):
        super().__init__(app, color, not_before)
        self.deadline, self.timeout = deadline, timeout

    def arguments(self) -> dict[str, Any]:
        return {"deadline": self.deadline, "timeout": self.timeout}

    async def verdicts(self, app, platform, observations) -> AsyncIterator[Verdict]:
        name = app.deployment_name(self.color)
        judge = ReadinessJudge(name, self.deadline, self.timeout)
        last = None
        async for status in observations:
            verdict = judge.judge(status, time.time())
            if verdict.message != last:
                self.log.info("%s: %s", name, verdict.message)
                last = verdict.message
            yield verdict


class SoakTrigger(_JudgingTrigger):
    """Fires when the soak passed (healthy for its whole duration) or failed."""

    def __init__(self, app: dict, color: str, ends_at: float, baseline_restarts: int | None = None,
                 not_before: float = 0.0):
        super().__init__(app, color, not_before)
        self.ends_at, self.baseline_restarts = ends_at, baseline_restarts

    def arguments(self) -> dict[str, Any]:
        return {"ends_at": self.ends_at, "baseline_restarts": self.baseline_restarts}

    async def verdicts(self, app, platform, observations) -> AsyncIterator[Verdict]:
        name = app.deployment_name(self.color)
        judge = SoakJudge(name, self.ends_at, app.soak_tolerance, self.baseline_restarts)
        selector = app.selector_for(self.color)
        next_check, last, last_message, last_logged = 0.0, None, None, 0.0
        async for status in observations:
            now = time.time()
            # The workload's state arrives by watch as soon as it changes; the Service and the
            # HTTP check are read at the check interval (or at once when the workload got
            # worse, or when the soak is over).
            due = now >= next_check or now >= self.ends_at or got_worse(status, last)
            last = status
            if not due:
                continue
            next_check = now + app.check_interval
            svc = await platform.aread_service()
            serving = svc is not None and svc.selector == selector
            http = await http_check(app, svc) if app.http_check and svc is not None else None
            verdict = judge.judge(status, serving, http, now)
            # A line when the picture changes, and otherwise one every LOG_EVERY seconds (not one
            # per check: a soak can last hours).
            gist = verdict.message.split(",")[0]
            if verdict.final or gist != last_message or now - last_logged >= LOG_EVERY:
                self.log.info("soak of %s: %s", name, verdict.message)
                last_message, last_logged = gist, now
            yield verdict


async def hold_until(moment: float) -> None:
    """Hold an event until ``moment`` (see sensors.MIN_DEFERRAL_SECONDS for why)."""
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


def got_worse(status, previous) -> bool:
    if previous is None:
        return True
    return (status.ready < previous.ready or status.restarts > previous.restarts or not status.exists
            or bool(status.failure))


async def http_check(app, svc) -> HttpResult:
    """GET the app's check URL (through the Service); TLS is verified for https URLs."""
    import aiohttp

    check = app.http_check
    url = check.url.format(**svc.url_fields)
    try:
        timeout = aiohttp.ClientTimeout(total=check.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url, headers={"Connection": "close"}) as resp:
                await resp.read()
                ok = resp.status == check.expect_status if check.expect_status else 200 <= resp.status < 300
                return HttpResult(ok, f"GET {url} answered {resp.status}")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        return HttpResult(False, f"GET {url}: {type(e).__name__}: {e}".rstrip(": "))



def http_check_sync(app, svc) -> HttpResult:
    """``http_check`` for a poking (non-deferrable) sensor, with requests."""
    import requests

    check = app.http_check
    url = check.url.format(**svc.url_fields)
    try:
        resp = requests.get(url, timeout=check.timeout, headers={"Connection": "close"})
    except requests.RequestException as e:
        return HttpResult(False, f"GET {url}: {type(e).__name__}")
    ok = resp.status_code == check.expect_status if check.expect_status else 200 <= resp.status_code < 300
    return HttpResult(ok, f"GET {url} answered {resp.status_code}")
