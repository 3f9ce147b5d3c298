"""Release windows: when an app may switch traffic.

An app config may declare windows (days of the week, a start and end time of day,
a time zone) and freeze dates (no window opens on them).  A window whose end is
not after its start runs past midnight; its days are the days it opens.

    windows:
      - {days: [tue, thu], start: "02:00", end: "04:00", timezone: Asia/Shanghai}
    freeze_dates: ["2026-12-24"]
    outside_window: wait        # a manual run outside a window waits (deferred) or is refused
    window_closes: rollback     # a run still waiting to switch when its window closes rolls back or waits
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead next_open looks before giving up (a year of frozen days is a config error).
_HORIZON_DAYS = 400


@dataclass(frozen=True)
class Window:
    days: tuple[str, ...]
    start: str  # "HH:MM"
    end: str  # "HH:MM"
    timezone: str = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _times(self) -> tuple[dt.time, dt.time]:
        return dt.time.fromisoformat(self.start), dt.time.fromisoformat(self.end)

    def occurrences(self, around: dt.datetime, frozen: frozenset[dt.date]):
        """(opens, closes) of this window on the days around ``around``, in UTC, oldest first."""
        start_t, end_t = self._times()
        local = around.astimezone(self.tz)
        for offset in range(-1, _HORIZON_DAYS):
            day = local.date() + dt.timedelta(days=offset)
            if DAYS[day.weekday()] not in self.days or day in frozen:
                continue
            opens = dt.datetime.combine(day, start_t, self.tz)
            end_day = day if end_t > start_t else day + dt.timedelta(days=1)
            closes = dt.datetime.combine(end_day, end_t, self.tz)
            yield opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)

    def to_json(self) -> dict:
        return {"days": list(self.days), "start": self.start, "end": self.end, "timezone": self.timezone}

    @classmethod
    def from_json(cls, data) -> Window:
        if isinstance(data, Window):
            return data
        return cls(days=tuple(data["days"]), start=data["start"], end=data["end"], timezone=data.get("timezone", "UTC"))


@dataclass(frozen=True)
class Schedule:
    """All of an app's windows and freeze dates."""

    windows: tuple[Window, ...]
    freeze_dates: tuple[str, ...] = ()

    @property
    def frozen(self) -> frozenset[dt.date]:
        return frozenset(dt.date.fromisoformat(d) for d in self.freeze_dates)

    def open_window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """(opens, closes) of a window open at ``now``, or None."""
        frozen = self.frozen
        for window in self.windows:
            for opens, closes in window.occurrences(now - dt.timedelta(days=1), frozen):
                if opens > now:
                    break
                if opens <= now < closes:
                    return opens, closes
        return None

    def latest_opening(self, now: dt.datetime) -> dt.datetime | None:
        """The latest opening, at or before ``now``, of a window still open at ``now`` (of windows
        that overlap, the one that opened last), or None when no window is open."""
        frozen = self.frozen
        latest = None
        for window in self.windows:
            for opens, closes in window.occurrences(now - dt.timedelta(days=1), frozen):
                if opens > now:
                    break
                if now < closes and (latest is None or opens > latest):
                    latest = opens
        return latest

    def next_open(self, after: dt.datetime, inclusive: bool = False) -> dt.datetime | None:
        """The first window opening after ``after`` (or at it, when inclusive)."""
        frozen = self.frozen
        best = None
        for window in self.windows:
            for opens, _ in window.occurrences(after, frozen):
                if opens > after or (inclusive and opens == after):
                    best = opens if best is None or opens < best else best
                    break
        return best


def load_windows(v) -> dict:
    """Read the window fields of an app config (v: the config validator)."""
    raw_windows = v.list("windows")
    windows = []
    for i, raw in enumerate(raw_windows):
        field = f"windows[{i}]"
        if not isinstance(raw, dict):
            v.fail(field, raw, "must be a mapping with days, start, end and timezone")
        unknown = set(raw) - {"days", "start", "end", "timezone"}
        if unknown:
            v.fail(
                f"{field}.{sorted(unknown)[0]}",
                raw[sorted(unknown)[0]],
                "unknown field (known: days, start, end, timezone)",
            )
        days = raw.get("days")
        if isinstance(days, str):
            days = [days]
        if not isinstance(days, list) or not days or any(str(d).lower()[:3] not in DAYS for d in days):
            v.fail(f"{field}.days", raw.get("days"), f"must list days of the week ({', '.join(DAYS)})")
        for key in ("start", "end"):
            try:
                dt.time.fromisoformat(str(raw.get(key)))
            except ValueError:
                v.fail(f"{field}.{key}", raw.get(key), "must be a time of day such as 02:00")
        if str(raw.get("start")) == str(raw.get("end")):
            v.fail(f"{field}.end", raw.get("end"), "must differ from start")
        tz = raw.get("timezone", "UTC")
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            v.fail(f"{field}.timezone", tz, "is not a known time zone (e.g. Asia/Shanghai, UTC)")
        windows.append(
            Window(
                days=tuple(str(d).lower()[:3] for d in days),
                start=str(raw["start"]),
                end=str(raw["end"]),
                timezone=str(tz),
            )
        )
    freeze = v.list("freeze_dates")
    for i, d in enumerate(freeze):
        try:
            dt.date.fromisoformat(str(d))
        except ValueError:
            v.fail(f"freeze_dates[{i}]", d, "must be a date such as 2026-12-24")
    if freeze and not windows:
        v.fail("freeze_dates", freeze, "freeze dates need windows to apply to")
    out = {
        "windows": tuple(windows),
        "freeze_dates": tuple(str(d) for d in freeze),
        "outside_window": v.choice("outside_window", ("wait", "refuse"), default="wait"),
        "window_closes": v.choice("window_closes", ("rollback", "wait"), default="rollback"),
        "pending_version_variable": v.string("pending_version_variable", default=""),
    }
    if windows and Schedule(tuple(windows), out["freeze_dates"]).next_open(dt.datetime.now(dt.UTC)) is None:
        v.fail("freeze_dates", freeze, "leave no window open in the next year")
    return out


def schedule_of(app) -> Schedule | None:
    return Schedule(tuple(Window.from_json(w) for w in app.windows), tuple(app.freeze_dates)) if app.windows else None
