"""What counts as ready and what counts as healthy, for both platforms.

Each judge takes one observation at a time (from a watch or a poll, in a trigger)
and says whether to keep waiting or stop, and why.  They hold no I/O, so the
rules are tested on their own and read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..apps.durations import format_duration
from .model import ColorStatus


class VerdictState(StrEnum):
    """Where a wait stands; every state but WAITING ends it.  (Plain strings on the wire: a
    trigger event carries the value.)"""

    WAITING = "waiting"
    READY = "ready"
    PASSED = "passed"
    FAILED = "failed"


WAITING, READY, PASSED, FAILED = VerdictState


@dataclass(frozen=True)
class Verdict:
    state: VerdictState
    message: str

    @property
    def final(self) -> bool:
        return self.state != WAITING


@dataclass(frozen=True)
class HttpResult:
    ok: bool
    detail: str  # "200 from green pod test-green-x" or "connection refused"


class ReadinessJudge:
    """Ready when the platform's rollout rule says complete; failed at once on a failure
    that waiting cannot cure; failed at the release's readiness timeout otherwise."""

    def __init__(self, name: str, deadline: float, timeout: float):
        self.name, self.deadline, self.timeout = name, deadline, timeout

    def judge(self, status: ColorStatus, now: float) -> Verdict:
        if not status.exists:
            # Readiness starts after the deploy step created it: a missing workload was
            # deleted behind our back, and will not become ready by waiting.
            return Verdict(
                FAILED,
                f"{self.name} does not exist (deleted while waiting for it to become ready, or "
                "removed by this run's rollback: to try again, clear deploy_new_color with "
                "Downstream)",
            )
        if status.failure:
            return Verdict(FAILED, f"{self.name} failed: {status.failure} ({status.progress})")
        if status.complete:
            return Verdict(READY, f"{self.name} is ready: {status.progress}")
        if now >= self.deadline:
            return Verdict(FAILED, f"{self.name} not ready after {format_duration(self.timeout)}: {status.progress}")
        return Verdict(WAITING, status.progress)


class SoakJudge:
    """Healthy while every desired replica stays ready, no restart count climbs, the
    Service still points at the color and (when configured) the HTTP check passes.
    The first unhealthy observation beyond ``tolerance`` fails the soak."""

    def __init__(
        self, name: str, ends_at: float, tolerance: int, baseline_restarts: int | None = None, unhealthy: int = 0
    ):
        self.name, self.ends_at, self.tolerance = name, ends_at, tolerance
        self.baseline_restarts = baseline_restarts
        # unhealthy observations so far (resumed from the Service after a restart)
        self.unhealthy = unhealthy
        # the app's metric analysis during the soak (release.analysis.AnalysisJudge), if it has one:
        # its failures are part of the soak's progress, and the soak passes only once it has passed
        self.analysis: Any = None

    @classmethod
    def resume(cls, name: str, tolerance: int, state: dict) -> SoakJudge:
        """A judge that goes on from a soak's recorded progress (Release.start_soak)."""
        return cls(
            name, float(state["ends_at"]), tolerance, state.get("baseline_restarts"), int(state.get("unhealthy") or 0)
        )

    def progress(self) -> dict:
        """What must survive a restart of whoever judges: the record of Release.record_soak."""
        progress = {"ends_at": self.ends_at, "unhealthy": self.unhealthy, "baseline_restarts": self.baseline_restarts}
        if self.analysis is not None:
            progress["analysis"] = self.analysis.progress()
        return progress

    def problems(self, status: ColorStatus, serving: bool, http: HttpResult | None) -> list[str]:
        found = []
        if not serving:
            found.append("the Service no longer points at it")
        if not status.exists:
            found.append("it no longer exists")
        else:
            if status.failure:
                found.append(status.failure)
            if status.ready < status.desired:
                found.append(f"only {status.ready}/{status.desired} ready")
            if self.baseline_restarts is None:
                self.baseline_restarts = status.restarts
            elif status.restarts > self.baseline_restarts:
                found.append(
                    f"containers restarted ({status.restarts - self.baseline_restarts} restarts during the soak)"
                )
                # each climb counts once: the next observation judges new restarts only
                self.baseline_restarts = status.restarts
        if http is not None and not http.ok:
            found.append(f"HTTP check failed: {http.detail}")
        return found

    def judge(self, status: ColorStatus, serving: bool, http: HttpResult | None, now: float) -> Verdict:
        problems = self.problems(status, serving, http)
        if problems:
            self.unhealthy += 1
            if self.unhealthy > self.tolerance or not serving:
                # Traffic moved away from the color: no amount of tolerance makes that a soak.
                return Verdict(FAILED, f"{self.name} unhealthy during the soak: {'; '.join(problems)}")
            return Verdict(WAITING, f"unhealthy ({self.unhealthy}/{self.tolerance} tolerated): {'; '.join(problems)}")
        if self.analysis is not None:
            analysed = self.analysis.verdict(now)
            if analysed.state == FAILED:
                return Verdict(FAILED, f"{self.name}: {analysed.message}")
            if now >= self.ends_at and analysed.state == WAITING:
                return Verdict(WAITING, f"healthy, the soak is over; {analysed.message}")
        if now >= self.ends_at:
            analysed = f"; {self.analysis.verdict(now).message}" if self.analysis is not None else ""
            return Verdict(PASSED, f"{self.name} stayed healthy for the whole soak ({status.progress}){analysed}")
        return Verdict(WAITING, f"healthy: {status.progress}, {format_duration(max(0.0, self.ends_at - now))} to go")
