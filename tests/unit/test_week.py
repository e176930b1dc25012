"""CME's trading week (dropcopy_client._week): boundaries in CST and CDT, at the instant itself, and parsing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropcopy_client._week import WeeklySchedule

UTC = dt.UTC
CHICAGO = ZoneInfo("America/Chicago")
WEEK = WeeklySchedule()


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_default_is_sunday_16_00_chicago() -> None:
    assert (WEEK.reset_day, WEEK.reset_time, WEEK.timezone) == (6, dt.time(16, 0), "America/Chicago")
    assert str(WEEK) == "sun 16:00 America/Chicago"


def test_cst_week() -> None:
    # 2026-11-22 is a Sunday in standard time (CST = UTC-6): the boundary is 22:00 UTC.
    wednesday = utc(2026, 11, 25, 15, 30)
    assert WEEK.week_start(wednesday) == utc(2026, 11, 22, 22, 0)
    assert WEEK.next_boundary(wednesday) == utc(2026, 11, 29, 22, 0)
    assert WEEK.week_id(wednesday) == "2026-11-22"


def test_cdt_week() -> None:
    # 2026-06-14 is a Sunday in daylight time (CDT = UTC-5): the boundary is 21:00 UTC.
    friday = utc(2026, 6, 19, 20, 0)
    assert WEEK.week_start(friday) == utc(2026, 6, 14, 21, 0)
    assert WEEK.next_boundary(friday) == utc(2026, 6, 21, 21, 0)
    assert WEEK.week_id(friday) == "2026-06-14"


def test_the_boundary_instant_belongs_to_the_new_week() -> None:
    boundary = utc(2026, 11, 22, 22, 0)
    before = boundary - dt.timedelta(microseconds=1)
    assert WEEK.week_start(boundary) == boundary
    assert WEEK.next_boundary(boundary) == boundary + dt.timedelta(days=7)
    assert WEEK.week_start(before) == utc(2026, 11, 15, 22, 0)
    assert WEEK.next_boundary(before) == boundary
    assert WEEK.week_id(before) == "2026-11-15"
    assert WEEK.week_id(boundary) == "2026-11-22"
    assert not WEEK.same_week(before, boundary)


def test_sunday_before_the_reset_is_still_last_week() -> None:
    # Sunday 15:59 CT: Globex is closed and the old week's sequence numbers still apply.
    sunday_afternoon = dt.datetime(2026, 6, 14, 15, 59, tzinfo=CHICAGO)
    assert WEEK.week_id(sunday_afternoon) == "2026-06-07"
    assert WEEK.week_id(sunday_afternoon + dt.timedelta(minutes=1)) == "2026-06-14"


def test_weeks_across_daylight_saving_transitions() -> None:
    # Spring forward on 2026-03-08 at 02:00: that Sunday's 16:00 is already CDT, so the week is 167 hours.
    assert WEEK.week_start(utc(2026, 3, 5, 12)) == utc(2026, 3, 1, 22)
    assert WEEK.next_boundary(utc(2026, 3, 5, 12)) == utc(2026, 3, 8, 21)
    assert WEEK.next_boundary(utc(2026, 3, 5, 12)) - WEEK.week_start(utc(2026, 3, 5, 12)) == dt.timedelta(
        hours=167
    )
    # Fall back on 2026-11-01: 16:00 that Sunday is CST again, so the week before is 169 hours.
    assert WEEK.week_start(utc(2026, 10, 30, 12)) == utc(2026, 10, 25, 21)
    assert WEEK.next_boundary(utc(2026, 10, 30, 12)) == utc(2026, 11, 1, 22)


def test_reset_time_in_a_skipped_hour_still_gives_one_boundary_per_week() -> None:
    odd = WeeklySchedule(6, dt.time(2, 30), "America/Chicago")  # 02:30 does not exist on 2026-03-08
    start = odd.week_start(utc(2026, 3, 10, 12))
    assert start.astimezone(CHICAGO).date() == dt.date(2026, 3, 8)
    assert start <= utc(2026, 3, 10, 12) < odd.next_boundary(utc(2026, 3, 10, 12))
    assert odd.week_id(utc(2026, 3, 10, 12)) == "2026-03-08"


def test_any_aware_input_zone_gives_the_same_answer() -> None:
    instant = utc(2026, 11, 25, 15, 30)
    tokyo = instant.astimezone(ZoneInfo("Asia/Tokyo"))
    assert WEEK.week_start(tokyo) == WEEK.week_start(instant)
    assert WEEK.week_start(instant).tzinfo is UTC
    assert WEEK.next_boundary(tokyo).tzinfo is UTC


def test_same_week() -> None:
    assert WEEK.same_week(utc(2026, 11, 23, 0), utc(2026, 11, 27, 23))
    assert WEEK.same_week(utc(2026, 11, 22, 22), utc(2026, 11, 29, 21, 59, 59))
    assert not WEEK.same_week(utc(2026, 11, 27, 23), utc(2026, 11, 30, 1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        WEEK.week_start(dt.datetime(2026, 11, 25, 12))
    with pytest.raises(ValueError, match="time-zone aware"):
        WEEK.same_week(utc(2026, 11, 25), dt.datetime(2026, 11, 25))


def test_other_schedules() -> None:
    london = WeeklySchedule.parse("Saturday 23:30 Europe/London")
    assert (london.reset_day, london.reset_time, london.timezone) == (5, dt.time(23, 30), "Europe/London")
    # 2026-11-21 is a Saturday; London is on GMT then.
    assert london.week_start(utc(2026, 11, 24)) == utc(2026, 11, 21, 23, 30)
    assert london.week_id(utc(2026, 11, 24)) == "2026-11-21"
    monday_utc = WeeklySchedule(0, dt.time(0, 0), "UTC")
    assert monday_utc.week_start(utc(2026, 11, 29, 23, 59)) == utc(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sun 16:00 America/Chicago", WeeklySchedule()),
        ("SUN 16:00", WeeklySchedule()),
        ("sunday 16:00:00 America/Chicago", WeeklySchedule()),
        ("fri 17:15:30 UTC", WeeklySchedule(4, dt.time(17, 15, 30), "UTC")),
        ("mon 0:05 Asia/Tokyo", WeeklySchedule(0, dt.time(0, 5), "Asia/Tokyo")),
    ],
)
def test_parse(text: str, expected: WeeklySchedule) -> None:
    assert WeeklySchedule.parse(text) == expected
    assert WeeklySchedule.parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected"),
        ("sun", "expected"),
        ("sun 16:00 America/Chicago extra", "expected"),
        ("sonday 16:00", "day 'sonday'"),
        ("sun 24:00", "time '24:00'"),
        ("sun 16:60", "time '16:60'"),
        ("sun 4pm", "time '4pm'"),
        ("sun 16:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("sun 16:00 ../etc/passwd", "unknown time zone"),
    ],
)
def test_parse_errors_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        WeeklySchedule.parse(text)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="reset_day"):
        WeeklySchedule(7)
    with pytest.raises(ValueError, match="reset_day"):
        WeeklySchedule(True)
    with pytest.raises(ValueError, match="naive"):
        WeeklySchedule(6, dt.time(16, 0, tzinfo=UTC))
    with pytest.raises(ValueError, match="unknown time zone"):
        WeeklySchedule(6, dt.time(16), "Nowhere/Land")


@given(
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(UTC),
    ),
    st.sampled_from(["America/Chicago", "Europe/London", "Australia/Sydney", "UTC"]),
    st.integers(0, 6),
    st.times(),
)
def test_boundaries_bracket_every_instant(now: dt.datetime, zone: str, day: int, time: dt.time) -> None:
    schedule = WeeklySchedule(day, time, zone)
    start, end = schedule.week_start(now), schedule.next_boundary(now)
    assert start <= now < end
    assert dt.timedelta(hours=166) <= end - start <= dt.timedelta(hours=170)
    assert schedule.week_start(start) == start
    assert schedule.week_start(end) == end
    assert schedule.same_week(start, now)
    assert not schedule.same_week(now, end)
    assert start.astimezone(ZoneInfo(zone)).weekday() == day or _skipped(start, zone)


def _skipped(instant: dt.datetime, zone: str) -> bool:
    """A reset wall time inside a skipped hour lands just after it, possibly on the next local day."""
    local = instant.astimezone(ZoneInfo(zone))
    return local.utcoffset() != (local - dt.timedelta(hours=3)).utcoffset()
