"""Release windows: when a window is open, when the next one opens, what the timetable schedules."""

import datetime as dt

import pytest

from bluegreen.apps.windows import Schedule, Window

UTC = dt.UTC
SHANGHAI = [Window(days=("tue", "thu"), start="02:00", end="04:00", timezone="Asia/Shanghai")]


def at(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else dt.datetime.fromisoformat(text)


def test_open_window_in_the_windows_own_time_zone():
    schedule = Schedule(tuple(SHANGHAI))
    # Thursday 2026-11-26 02:30 in Shanghai is Wednesday 18:30 UTC
    opens, closes = schedule.open_window(at("2026-11-25T18:30:00"))
    assert (opens, closes) == (at("2026-11-25T18:00:00"), at("2026-11-25T20:00:00"))
    assert schedule.open_window(at("2026-11-25T20:00:00")) is None


def test_next_open_skips_freeze_dates():
    schedule = Schedule(tuple(SHANGHAI), ("2026-12-01",))
    assert schedule.next_open(at("2026-11-26T04:00:00")) == at("2026-12-02T18:00:00")
    assert Schedule(tuple(SHANGHAI)).next_open(at("2026-11-26T04:00:00")) == at("2026-11-30T18:00:00")


def test_a_window_past_midnight_belongs_to_the_day_it_opens():
    schedule = Schedule((Window(days=("fri",), start="23:00", end="01:00", timezone="UTC"),))
    assert schedule.open_window(at("2026-11-28T00:30:00")) == (at("2026-11-27T23:00:00"), at("2026-11-28T01:00:00"))
    assert schedule.open_window(at("2026-11-29T00:30:00")) is None


@pytest.fixture
def timetable():
    from bluegreen.timetable import ReleaseWindowTimetable

    return ReleaseWindowTimetable([w.to_json() for w in SHANGHAI], ["2026-12-01"])


def test_timetable_round_trips_and_schedules_window_openings(timetable, monkeypatch):
    from airflow.timetables.base import DataInterval, TimeRestriction

    from bluegreen.timetable import ReleaseWindowTimetable

    again = ReleaseWindowTimetable.deserialize(timetable.serialize())
    assert again.serialize() == timetable.serialize()
    assert "Tue,Thu 02:00-04:00 Asia/Shanghai" in again.summary and "2026-12-01" in again.summary
    restriction = TimeRestriction(earliest=None, latest=None, catchup=True)
    last = DataInterval.exact(at("2026-11-25T18:00:00"))
    info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
    assert info.run_after == at("2026-12-02T18:00:00")  # Tue 12-01 is frozen
    assert info.logical_date == info.run_after


def test_inside_an_open_window_the_answer_is_that_windows_opening_until_it_has_run():
    """The dag-processor asks again at every parse: a second after a window opened, the answer
    must still be that opening (not the next window), until a run for it exists."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    from bluegreen import timetable as tt

    now = dt.datetime.now(UTC)
    start = (now - dt.timedelta(minutes=1)).strftime("%H:%M")
    end = (now + dt.timedelta(minutes=30)).strftime("%H:%M")
    table = tt.ReleaseWindowTimetable(
        [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": start, "end": end, "timezone": "UTC"}]
    )
    restriction = TimeRestriction(earliest=at("2026-01-01T00:00:00"), latest=None, catchup=False)
    opening = table.schedule.open_window(now)[0]
    first = table.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first.run_after == opening <= now
    after_it = table.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(first.run_after), restriction=restriction
    )
    assert after_it.run_after > now and after_it.run_after - opening == dt.timedelta(days=1)


def test_a_window_opening_inside_another_open_window_still_gets_its_run():
    """Two windows that overlap: the first one opened and had its run; a second after the second
    one opens (inside the first), the next run is the second one's opening, not tomorrow's first
    (the dag-processor's parse may ask before the scheduler has created the run)."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    from bluegreen import timetable as tt

    now = dt.datetime.now(UTC)
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    def window(start_ago, minutes):
        return {
            "days": every_day,
            "start": (now - dt.timedelta(minutes=start_ago)).strftime("%H:%M"),
            "end": (now + dt.timedelta(minutes=minutes)).strftime("%H:%M"),
            "timezone": "UTC",
        }

    table = tt.ReleaseWindowTimetable([window(4, 30), window(1, 10)])
    first_opening = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=4)
    second_opening = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    restriction = TimeRestriction(earliest=at("2026-01-01T00:00:00"), latest=None, catchup=False)
    after_first = table.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(first_opening), restriction=restriction
    )
    assert after_first.run_after == second_opening
    after_second = table.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(second_opening), restriction=restriction
    )
    assert after_second.run_after == first_opening + dt.timedelta(days=1)
    assert table.schedule.latest_opening(now) == second_opening
