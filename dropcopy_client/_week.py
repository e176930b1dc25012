"""CME's trading week: when sequence numbers start again at 1 (sans-IO, pure functions).

CME Drop Copy sequence numbers run for a week: both sides reset at the beginning-of-week logon and there is no
daily reset (spec §2.1). QuickFIX 1.16 cannot express that -- it has no time zone setting and its default window
resets daily -- so the SDK runs with ``NonStopSession=Y`` and decides itself, with :class:`WeeklySchedule`,
whether the stored sequence numbers belong to the current week.

The default boundary is Sunday 16:00 America/Chicago: CME Globex opens on Sunday at 17:00 CT, and the reset
must happen before the first logon of the week. CME never states the exact reset time (spec §8), so it is
configurable (:meth:`WeeklySchedule.parse`). Boundaries are local wall-clock times, so they follow daylight
saving time: 16:00 CT is 22:00 UTC in winter (CST) and 21:00 UTC in summer (CDT).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import attrs

__all__ = ["WeeklySchedule"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


def _check_day(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        raise ValueError(f"reset_day must be 0 (Monday) to 6 (Sunday), got {value!r}")


def _check_time(_: object, __: attrs.Attribute[dt.time], value: dt.time) -> None:
    if not isinstance(value, dt.time) or value.tzinfo is not None:
        raise ValueError(f"reset_time must be a naive datetime.time (local to `timezone`), got {value!r}")


def _check_zone(_: object, __: attrs.Attribute[str], value: str) -> None:
    _zone(value)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'America/Chicago')") from None


def _aware(now: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(now, dt.datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{name} must be a time-zone aware datetime, got {now!r}")
    return now


@attrs.frozen
class WeeklySchedule:
    """The weekly sequence reset: a weekday and a local time in an IANA time zone.

    Every method takes and returns tz-aware datetimes; results are in UTC. A reset time that does not exist
    on a day (skipped by a spring-forward transition) resolves with the offset before the transition, and an
    ambiguous one (repeated at fall-back) resolves to its first occurrence, as ``zoneinfo`` does with
    ``fold=0``.
    """

    #: weekday of the weekly reset, Monday=0 ... Sunday=6
    reset_day: int = attrs.field(default=6, validator=_check_day)
    #: local time of the reset in ``timezone`` (Globex opens Sunday 17:00 CT; reset an hour before)
    reset_time: dt.time = attrs.field(default=dt.time(16, 0), validator=_check_time)
    #: IANA time zone the reset is defined in
    timezone: str = attrs.field(default="America/Chicago", validator=_check_zone)

    def _boundary(self, local_day: dt.date) -> dt.datetime:
        """The reset instant on ``local_day`` (which must be a reset weekday), in UTC."""
        local = dt.datetime.combine(local_day, self.reset_time, tzinfo=_zone(self.timezone))
        return local.astimezone(dt.UTC)

    def _start_day(self, now: dt.datetime) -> dt.date:
        """The local date of the boundary that began the week containing ``now``."""
        now = _aware(now, "now")
        local_day = now.astimezone(_zone(self.timezone)).date()
        day = local_day - dt.timedelta(days=(local_day.weekday() - self.reset_day) % 7)
        return day if self._boundary(day) <= now else day - dt.timedelta(days=7)

    def week_start(self, now: dt.datetime) -> dt.datetime:
        """The most recent boundary at or before ``now`` (UTC): when the current week's sequences began."""
        return self._boundary(self._start_day(now))

    def next_boundary(self, now: dt.datetime) -> dt.datetime:
        """The first boundary strictly after ``now`` (UTC): when the sequences must next go back to 1."""
        return self._boundary(self._start_day(now) + dt.timedelta(days=7))

    def week_id(self, now: dt.datetime) -> str:
        """The local date of :meth:`week_start`, e.g. ``"2026-11-22"``: the same for every instant of a week."""
        return self._start_day(now).isoformat()

    def same_week(self, a: dt.datetime, b: dt.datetime) -> bool:
        """True when no boundary lies between ``a`` and ``b`` (sequence numbers of ``a`` still valid at ``b``)."""
        return self.week_start(a) == self.week_start(b)

    @classmethod
    def parse(cls, text: str) -> WeeklySchedule:
        """``"sun 16:00 America/Chicago"``: a weekday (``sun`` or ``sunday``, any case), ``HH:MM[:SS]`` and an
        optional IANA time zone (default America/Chicago). Raises ``ValueError`` naming the bad part."""
        parts = str(text).split()
        if len(parts) not in (2, 3):
            raise ValueError(
                f'weekly reset {text!r}: expected "<day> <HH:MM> [<time zone>]", e.g. "sun 16:00 America/Chicago"'
            )
        day_text, time_text = parts[0].lower(), parts[1]
        if day_text in _DAYS:
            day = _DAYS.index(day_text)
        elif day_text in _FULL_DAYS:
            day = _FULL_DAYS.index(day_text)
        else:
            raise ValueError(f"weekly reset {text!r}: day {parts[0]!r} is not one of {', '.join(_DAYS)}")
        match = _TIME.match(time_text)
        if match is None:
            raise ValueError(f"weekly reset {text!r}: time {time_text!r} is not HH:MM or HH:MM:SS (24-hour)")
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        zone = parts[2] if len(parts) == 3 else "America/Chicago"
        try:
            _zone(zone)
        except ValueError as exc:
            raise ValueError(f"weekly reset {text!r}: {exc}") from None
        return cls(day, dt.time(hour, minute, second), zone)

    def __str__(self) -> str:
        """The :meth:`parse` form, e.g. ``sun 16:00 America/Chicago``."""
        clock = self.reset_time.strftime("%H:%M:%S" if self.reset_time.second else "%H:%M")
        return f"{_DAYS[self.reset_day]} {clock} {self.timezone}"
