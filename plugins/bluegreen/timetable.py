"""The release-window timetable: a scheduled run starts when one of the app's windows opens.

Registered by bluegreen/plugin.py, through the package's airflow.plugins entry point (Airflow
only deserializes custom timetables that a plugin registers), so ``airflow dags next-execution`` lists the
real window openings, freeze dates skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from .apps.windows import Schedule, Window


def _pendulum(moment: dt.datetime):
    import pendulum

    return pendulum.instance(moment.astimezone(dt.UTC))


class ReleaseWindowTimetable(Timetable):
    def __init__(self, windows: list[Window] | tuple, freeze_dates: list[str] | tuple = ()):
        self.schedule = Schedule(tuple(Window.from_json(w) for w in windows), tuple(freeze_dates))
        self.description = describe(self.schedule)

    # -- (de)serialization --------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        return {
            "windows": [w.to_json() for w in self.schedule.windows],
            "freeze_dates": list(self.schedule.freeze_dates),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ReleaseWindowTimetable:
        return cls(data["windows"], data.get("freeze_dates", ()))

    @property
    def summary(self) -> str:
        return self.description

    # -- scheduling -----------------------------------------------------------------------
    def infer_manual_data_interval(self, *, run_after) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        now = dt.datetime.now(dt.UTC)
        after = last_automated_data_interval.end if last_automated_data_interval else None
        if restriction.earliest is not None and (after is None or restriction.earliest > after):
            earliest = restriction.earliest
            opens = self.schedule.next_open(earliest, inclusive=True)
        else:
            opens = self.schedule.next_open(after) if after is not None else None
        if not restriction.catchup:
            # Without catchup a past opening is not run late, unless its window is still open:
            # then it runs now, inside the window (as CronTriggerTimetable runs its latest tick).
            # This also keeps the answer stable across the opening: the dag-processor asks
            # again every parse, and "the next opening after now" would jump to the next
            # window a second after this one opened, before the scheduler created its run.
            # Of windows that overlap, the one that opened last: a window opening inside another
            # that is already open (and has had its run) still gets its own run.
            if opens is None or opens < now:
                current = self.schedule.latest_opening(now)
                if current and (after is None or current > after):
                    opens = current
                else:
                    opens = self.schedule.next_open(now)
        if opens is None or (restriction.latest is not None and opens > restriction.latest):
            return None
        return DagRunInfo.exact(_pendulum(opens))


def describe(schedule: Schedule) -> str:
    parts = [f"{','.join(d.capitalize() for d in w.days)} {w.start}-{w.end} {w.timezone}" for w in schedule.windows]
    text = "release windows: " + "; ".join(parts)
    if schedule.freeze_dates:
        text += f" (frozen: {', '.join(schedule.freeze_dates)})"
    return text
