"""Metric analysis: the app's Prometheus checks, judged phase by phase.

A phase is the time before the switch (the new color alone, ``before_switch`` long) or the soak
(the new color under real traffic).  Each check is measured when it is due (at the phase's start,
every ``interval``, and once more at the phase's end); each measurement passes, fails, or says
nothing (no data under ``no_data: wait``, Prometheus unreachable under ``unreachable: wait``).
The phase fails as soon as a check has failed more often than its ``failure_limit``; it passes
at its end once every check has had a conclusive measurement; a check still waiting for one
holds the phase up to the analysis's ``timeout`` past its end, then fails it.

The judge holds no I/O: ``Release.analyse`` measures, this decides (and is tested on its own).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..apps.analysis import Analysis, Check
from ..apps.durations import format_duration
from .health import FAILED, PASSED, WAITING, Verdict

PRE_SWITCH, SOAK = "before the switch", "during the soak"
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class Measurement:
    check: str
    at: float
    outcome: str  # pass | fail | inconclusive
    detail: str  # "error-rate = 0.2 (wanted < 0.05)"
    value: float | None = None


def measurement(check: Check, values: Sequence[float], promql: str, now: float) -> Measurement:
    """What one answer of Prometheus says of ``check``: ``values`` are its series' values (NaN,
    e.g. an error rate with no requests, counts as no data).  Every series must meet the
    condition; the worst one is reported."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        outcome = {"fail": FAIL, "pass": PASS, "wait": INCONCLUSIVE}[check.no_data]
        return Measurement(check.name, now, outcome, f"{check.name}: no data (no_data: {check.no_data}) from {promql}")
    failing = [v for v in values if not check.passes(v)]
    value = failing[0] if failing else values[0]
    shown = f"{value:.6g}" + (f" (and {len(values) - 1} more series)" if len(values) > 1 else "")
    outcome = FAIL if failing else PASS
    return Measurement(check.name, now, outcome, f"{check.name} = {shown}, wanted {check.condition}", value)


@dataclass
class _CheckState:
    failures: int = 0
    conclusive: int = 0
    measured: int = 0
    last_at: float | None = None
    last: str = ""
    values: list[float] = field(default_factory=list)


class AnalysisJudge:
    """The checks of one phase of one release: what is due, and the verdict so far."""

    def __init__(self, analysis: Analysis, phase: str, starts_at: float, ends_at: float, state: dict | None = None):
        self.analysis, self.phase, self.starts_at, self.ends_at = analysis, phase, starts_at, ends_at
        self.checks = {c.name: c for c in analysis.checks}
        self.state = {c.name: _CheckState() for c in analysis.checks}
        # A phase resumed after a restart goes on with the failures it had counted (the soak's
        # record on the Service), so that a restart never makes a release more lenient.
        for name, failures in ((state or {}).get("failures") or {}).items():
            if name in self.state:
                self.state[name].failures = int(failures)
        self.unreachable: str | None = None  # the last "could not ask Prometheus" while it lasts
        self.failed_at_once: str | None = None

    # -- what to measure ------------------------------------------------------------------
    def due(self, now: float) -> list[Check]:
        """The checks to measure now: the first its ``initial_delay`` (or an interval) into the
        phase (a new color's metrics need a while to reach Prometheus), then an interval since
        the last, and the phase's final measurement (the first at or after its end)."""
        return [c for c in self.checks.values() if now >= self.next_due(c)]

    def next_due(self, check: Check) -> float:
        last = self.state[check.name].last_at
        if last is None:
            return min(self.starts_at + check.first_after, self.ends_at)
        if last >= self.ends_at:
            return last + check.interval  # past the end: only a check still waiting for data
        return min(last + check.interval, self.ends_at)

    def next_due_at(self) -> float:
        return min(self.next_due(c) for c in self.checks.values())

    # -- what was measured ----------------------------------------------------------------
    def record(self, m: Measurement) -> None:
        s = self.state[m.check]
        s.measured += 1
        s.last_at, s.last = m.at, m.detail
        if m.value is not None:
            s.values.append(m.value)
        if m.outcome == FAIL:
            s.failures += 1
        if m.outcome != INCONCLUSIVE:
            s.conclusive += 1
        self.unreachable = None

    def record_unreachable(self, check: Check, error: str, now: float) -> None:
        """Prometheus could not be asked: the check is inconclusive (``unreachable: wait``) or the
        phase fails at once (``unreachable: fail``)."""
        s = self.state[check.name]
        s.last_at, s.last = now, f"{check.name}: Prometheus unreachable: {error}"
        if self.analysis.unreachable == "fail":
            self.failed_at_once = (
                f"analysis {self.phase} failed: Prometheus (connection {self.analysis.connection_id}) "
                f"is unreachable: {error} (unreachable: fail)"
            )
        self.unreachable = error

    def verdict(self, now: float) -> Verdict:
        if self.failed_at_once:
            return Verdict(FAILED, self.failed_at_once)
        for name, s in self.state.items():
            check = self.checks[name]
            if s.failures > check.failure_limit:
                return Verdict(
                    FAILED,
                    f"analysis {self.phase} failed: {s.last}, {s.failures} failed measurement(s) of "
                    f"{s.measured} ({check.failure_limit} tolerated); query: {check.query}",
                )
        if now < self.ends_at:
            return Verdict(WAITING, f"analysis {self.phase}: {self.summary()}")
        waiting = [name for name, s in self.state.items() if s.conclusive == 0]
        if waiting:
            late = now - self.ends_at
            reason = (
                f"Prometheus (connection {self.analysis.connection_id}) is unreachable: {self.unreachable}"
                if self.unreachable
                else "no data"
            )
            if late >= self.analysis.timeout:
                return Verdict(
                    FAILED,
                    f"analysis {self.phase} failed: {', '.join(waiting)}: {reason} for "
                    f"{format_duration(late)} past the phase's end (analysis timeout "
                    f"{format_duration(self.analysis.timeout)})",
                )
            return Verdict(WAITING, f"analysis {self.phase}: waiting for {', '.join(waiting)} ({reason})")
        return Verdict(PASSED, f"analysis {self.phase} passed: {self.summary()}")

    def summary(self) -> str:
        """One line per phase: each check's measurements, failures and value range."""
        parts = []
        for name, s in self.state.items():
            if not s.measured and not s.last:
                parts.append(f"{name}: not measured yet")
                continue
            span = f", values {min(s.values):.4g}..{max(s.values):.4g}" if s.values else ""
            parts.append(
                f"{name} {self.checks[name].condition}: {s.measured} measurement(s), {s.failures} failed{span}"
            )
        return "; ".join(parts)

    def progress(self) -> dict:
        """What a restarted judge needs to go on (kept with the soak's record on the Service)."""
        return {"failures": {name: s.failures for name, s in self.state.items() if s.failures}}


def analysis_part(message: str) -> str | None:
    """The analysis' own words in a step's final message ("...; analysis before the switch passed:
    ..."), for the task's XCom and the run's note; None when the step had no analysis."""
    for phase in (PRE_SWITCH, SOAK):
        at = message.find(f"analysis {phase} ")
        if at >= 0:
            return message[at:]
    return None
