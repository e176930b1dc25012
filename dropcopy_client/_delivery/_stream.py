"""The journal's stream as consumers read it: the live tail in memory, older events from SQLite.

Durable events -- business messages, undecodable messages, numbers declared lost -- are journaled first and
get a ``journal_id``. The writer publishes each committed batch to :class:`StreamTail`, a bounded ring of the
most recent events (the objects the position book saw, shared by every consumer). A consumer whose cursor
is older than the ring reads from the journal file instead, through its own read-only connection
(:class:`JournalReader`), and decodes the rows again. Memory therefore stays bounded however far behind a
consumer falls: the journal is the buffer.

Live events -- session state changes, gap detection and filling, duplicates, positions, failures -- are not
journaled. Each is published with the stream position it follows (``after_id``: the last journal id when it
was published), and a consumer delivers it right after the durable events up to that id.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dropcopy_client._decode import decode
from dropcopy_client._journal import LOST, Journal, JournalRow
from dropcopy_client._messages import utc_from_ns
from dropcopy_client._recovery import UnrecoverableGap

#: events kept in memory for consumers at the live edge: a decoded fill is ~7 kB of objects, so ~15 MB; a
#: consumer further behind re-decodes from the journal (~5 µs an event with the compiled decoder)
TAIL = 2048


class StreamTail:
    """The newest journaled events, ``(journal_id, event)`` in order, plus a condition to wait on."""

    def __init__(self, last_id: int, capacity: int = TAIL) -> None:
        self._items: deque[tuple[int, object]] = deque(maxlen=capacity)
        self.last_id = last_id
        self.cond = threading.Condition()
        self.closed = False

    def publish(self, items: Sequence[tuple[int, object]]) -> None:
        with self.cond:
            if items:
                self._items.extend(items)
                self.last_id = items[-1][0]
            self.cond.notify_all()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def read(self, after_id: int, limit: int) -> list[tuple[int, object]] | None:
        """Events after ``after_id`` from memory, or None when they are older than the ring holds."""
        with self.cond:
            items = self._items
            if after_id >= self.last_id:
                return []
            if not items or items[0][0] > after_id + 1:
                return None
            first = items[0][0]
            # ids in the ring are consecutive: index by offset
            start = after_id + 1 - first
            end = min(start + limit, len(items))
            return [items[i] for i in range(start, end)]

    def received_ns(self, journal_id: int) -> int | None:
        with self.cond:
            items = self._items
            if items and items[0][0] <= journal_id <= items[-1][0]:
                event = items[journal_id - items[0][0]][1]
                received = getattr(getattr(event, "delivery", None), "received_at", None)
                if isinstance(received, dt.datetime):
                    return int(received.timestamp() * 1e9)
        return None


class JournalReader:
    """A consumer's own read-only view of the journal, turning rows back into events."""

    def __init__(self, path: Path, groups: dict[str, str], replay_upto: int) -> None:
        self._path = path
        self._groups = groups
        self._replay_upto = replay_upto
        self._journal: Journal | None = None

    def read(self, after_id: int, limit: int) -> list[tuple[int, object]]:
        if self._journal is None:
            self._journal = Journal.open_readonly(self._path)
        return [(row.row_id, self.event(row)) for row in self._journal.read_after(after_id, limit)]

    def event(self, row: JournalRow) -> object:
        replayed = row.row_id <= self._replay_upto
        if row.msg_type == LOST:
            return lost_event(row.raw, row.row_id, replayed)
        events = decode(
            row.raw,
            group=self._groups.get(row.session, ""),
            session=row.session,
            received_at=utc_from_ns(row.received_ns),
            journal_id=row.row_id,
            replayed=replayed,
        )
        return events[0]

    def received_ns(self, journal_id: int) -> int | None:
        if self._journal is None:
            self._journal = Journal.open_readonly(self._path)
        return self._journal.received_ns_of(journal_id)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


def lost_event(raw: bytes, journal_id: int, replayed: bool) -> UnrecoverableGap:
    """An UnrecoverableGap from its ``!lost`` journal row."""
    data: dict[str, Any] = json.loads(raw)
    frame = data.get("frame")
    return UnrecoverableGap(
        session=data["session"],
        begin=int(data["begin"]),
        end=int(data["end"]),
        reason=data["reason"],
        at=utc_from_ns(int(data["at_ns"])),
        raw=frame.encode("latin-1") if isinstance(frame, str) else None,
        journal_id=journal_id,
        replayed=replayed,
    )
