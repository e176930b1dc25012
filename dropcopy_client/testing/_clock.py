"""Clocks and FIX UTCTimestamp formatting for the simulator and the scripted builders."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

_TS = re.compile(r"^(\d{8})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}|\d{6}|\d{9}))?$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(when: datetime) -> str:
    """``YYYYMMDD-HH:MM:SS.sss`` in UTC (CME's UTCTimestamp(21))."""
    when = when.astimezone(UTC)
    return when.strftime("%Y%m%d-%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def parse_ts(text: str) -> datetime | None:
    """A FIX UTCTimestamp with 0, 3, 6 or 9 fractional digits; None when malformed."""
    m = _TS.match(text)
    if m is None:
        return None
    day, hh, mm, ss, frac = m.groups()
    try:
        base = datetime.strptime(f"{day}{hh}{mm}{ss}", "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    micros = int((frac or "0").ljust(9, "0")[:6])
    return base + timedelta(microseconds=micros)


class ManualClock:
    """A settable UTC clock for deterministic tests: ``clock()`` returns the current value.

    With ``step`` each call advances the clock afterwards, so consecutive timestamps differ.
    Thread-safe.
    """

    def __init__(self, start: datetime, step: timedelta = timedelta(0)) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start (UTC)")
        self._now = start.astimezone(UTC)
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            now = self._now
            self._now = now + self._step
            return now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds); returns the new time."""
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs a timezone-aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"
