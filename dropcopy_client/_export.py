"""Export the journal to a sink offline: ``dropcopy export`` and :func:`export_journal`.

The same batches a running client gives a sink (``Batch`` with positions), from a read-only connection, so it
is safe beside a running client. Positions in each batch are *as of that batch*: the export rebuilds the book
from the start of the journal as it goes (a running client gives its current positions instead; both are
upserts, so the sink ends the same).

Cursors: a :class:`~dropcopy_client.sinks.TransactionalSink` (PostgreSQL) commits its cursor with every batch,
so an interrupted export resumes where it stopped, and a sink that a running client also feeds under the same
name simply skips what it already holds. Because that cursor is the sink's only memory, an export that
starts *after* a sink's cursor (``after_id``, ``since``) would leave a hole the live client then skips: it is
refused (:class:`ExportError`); export such a range under another name.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from dropcopy_client._delivery._stream import JournalReader
from dropcopy_client._journal import Journal
from dropcopy_client.errors import ExportError
from dropcopy_client.positions import PositionBook
from dropcopy_client.positions._touched import touched_positions
from dropcopy_client.sinks import Batch, Sink

__all__ = ["ExportError", "ExportResult", "export_journal"]

log = logging.getLogger("dropcopy_client.export")

BATCH = 512
#: journal rows decoded per read while rebuilding positions before the first exported id
READ = 2048


@attrs.frozen
class ExportResult:
    """What one export wrote."""

    sink: str
    #: events written (after ``since``)
    events: int
    batches: int
    #: the journal ids covered: ``first_id``..``last_id`` (0, 0: nothing new)
    first_id: int
    last_id: int
    #: where it started: the sink's own cursor, ``after_id``, or 0
    started_after: int


def export_journal(
    path: Path,
    sink: Sink,
    *,
    groups: Mapping[str, str] | None = None,
    after_id: int | None = None,
    since: dt.datetime | None = None,
    book: PositionBook | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write the journal at ``path`` to ``sink`` in batches, from ``after_id`` (default: the sink's cursor, or
    the start) to the last committed row; ``since`` keeps events received at or after that time (UTC).

    ``progress(done, total)`` is called as journal ids are passed. The sink is not closed.
    """
    groups = dict(groups or {})
    own = _cursor(sink)
    if own is not None and ((after_id is not None and after_id > own) or since is not None):
        raise ExportError(
            f"sink {sink.name!r} already holds journal ids up to {own} and keeps its own cursor: an export "
            f"starting later would leave a hole its live client then skips. Export this range under another "
            f"sink name, or without a start (after_id/since; --after-id/--from on the command line): it then "
            f"continues from {own}"
        )
    start = own if own is not None else (after_id or 0)
    journal = Journal.open_readonly(path)
    try:
        last = journal.max_id()
    finally:
        journal.close()
    book = book if book is not None else PositionBook()
    reader = JournalReader(path, groups, replay_upto=last)
    since_utc = since.astimezone(dt.UTC) if since is not None and since.tzinfo else since
    if since_utc is not None and since_utc.tzinfo is None:
        since_utc = since_utc.replace(tzinfo=dt.UTC)
    events_out = batches = 0
    first_written = 0
    try:
        cursor = 0
        while cursor < start:  # the book as it stood at the start
            items = reader.read(cursor, min(READ, start - cursor))
            if not items:
                break
            for _, event in items:
                book.apply(event, snapshots=False)
            cursor = items[-1][0]
            if progress is not None:
                progress(cursor, last)
        cursor = start
        while cursor < last:
            items = reader.read(cursor, BATCH)
            items = [item for item in items if item[0] <= last]
            if not items:
                break
            for _, event in items:
                book.apply(event, snapshots=False)
            events = tuple(e for _, e in items if since_utc is None or _received(e) >= since_utc)
            first, end = items[0][0], items[-1][0]
            batch = Batch(events, first, end, touched_positions(book, events), replayed=True)
            sink.write(batch)
            events_out += len(events)
            batches += 1
            first_written = first_written or first
            cursor = end
            if progress is not None:
                progress(cursor, last)
    finally:
        reader.close()
    log.info(
        "export to sink %s: %d events in %d batches (ids %d..%d)",
        sink.name,
        events_out,
        batches,
        first_written,
        cursor if batches else 0,
    )
    return ExportResult(sink.name, events_out, batches, first_written, cursor if batches else 0, start)


def _cursor(sink: Sink) -> int | None:
    cursor = getattr(sink, "cursor", None)
    if not callable(cursor):
        return None
    value = cursor()
    return int(value) if value is not None else None


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _received(event: Any) -> dt.datetime:
    delivery = getattr(event, "delivery", None)
    received = getattr(delivery, "received_at", None)
    if isinstance(received, dt.datetime):
        return received
    at = getattr(event, "at", None)
    return at if isinstance(at, dt.datetime) else _EPOCH
