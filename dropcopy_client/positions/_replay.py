"""Rebuild a PositionBook offline: from the durable journal, or from a FIX message log.

A journal whose client kept its book in it (:class:`SqliteFillHistory` on ``journal.sqlite``) holds the
book's own rows (``book_rows``): the replay rebuilds the book from them without decoding a message
(:meth:`PositionBook.load`) and decodes only the journal rows after the last one they cover. Any other
journal, and a log, go through the same :func:`~dropcopy_client._decode.decode` the client uses, message by
message. Both ways give the same book (the tests check it): the one the running client had (the journal) or
would have had (a log). Replays are deterministic: the book depends only on the messages and their order,
and ``received_at`` comes from the input (the journal's receive time, the log line's timestamp or the
message's own SendingTime), never from the clock.

Why the journal is read whole even for one trade date: a bust or correction may carry another 75 than the
fill it names, and acknowledgements carry none; filtering rows by the journal's trade date column would turn
those into silent misses. The book for one trade date decides instead (``PositionBook(trade_date=...)``).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from dropcopy_client._decode import decode
from dropcopy_client._journal import Journal
from dropcopy_client._messages import utc_from_ns
from dropcopy_client.positions._book import PositionBook
from dropcopy_client.positions._history import SqliteFillHistory, has_book_tables

__all__ = ["ProgressCallback", "is_journal", "iter_log_messages", "replay_journal", "replay_log"]

#: ``progress(done, total)``: called once with ``done == 0`` before the first message, every
#: :data:`PROGRESS_EVERY` messages, and once at the end with ``done == total``
ProgressCallback = Callable[[int, int], object]
PROGRESS_EVERY = 1000

_SQLITE_MAGIC = b"SQLite format 3\x00"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: outer message types that carry business content (35=n wraps it; the others arrive unwrapped)
_BUSINESS_TYPES = frozenset({b"n", b"8", b"9", b"j", b"BZ"})
_LOG_TIME = re.compile(rb"^\s*(\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)\s*:\s")
_SENDING_TIME = re.compile(rb"\x0152=(\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)\x01")


def is_journal(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an SQLite file (a journal); anything else is read as a message log."""
    with open(path, "rb") as f:
        return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


_utc_ns = utc_from_ns


def replay_journal(
    path: str | os.PathLike[str],
    *,
    by_trade_date: bool = False,
    trade_date: dt.date | None = None,
    multipliers: Mapping[str, Decimal | int | str] | None = None,
    progress: ProgressCallback | None = None,
    fast: bool = True,
) -> PositionBook:
    """The book rebuilt from a journal (``<data_dir>/journal.sqlite``), opened read-only.

    Safe while a client is writing the journal (SQLite WAL): the replay sees the messages that were committed
    when it started. ``trade_date`` gives the book of that one trade date (see :class:`PositionBook`).

    When the journal holds the book's own tables the book is rebuilt from them and only the messages after
    them are decoded; ``fast=False`` decodes every message instead (the same result, slower).
    ``progress(done, total)`` counts journal messages either way.
    """
    config: dict[str, Any] = {
        "by_trade_date": by_trade_date,
        "trade_date": trade_date,
        "multipliers": multipliers,
    }
    journal = Journal.open_readonly(Path(path))
    try:
        history = _book_tables(Path(path)) if fast else None
        if history is None:
            book = PositionBook(**config)
            apply_journal(journal, book, progress=progress)
            return book
        # the history stays open with the book: it answers the lookups of anything applied later
        book = PositionBook(history, **config)
        total = journal.count() if progress is not None else 0
        if progress is not None:
            progress(0, total)
        covered = book.load()
        tail = journal.count(after_id=covered) if progress is not None else 0
        if progress is not None:
            progress(max(total - tail, 0), total)
        apply_journal(journal, book, after=covered, progress=_offset(progress, total - tail, total))
        return book
    finally:
        journal.close()


def _book_tables(path: Path) -> SqliteFillHistory | None:
    """The book's tables in the journal at ``path``, read-only, or None when it has none."""
    import sqlite3

    probe = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        present = has_book_tables(probe)
    finally:
        probe.close()
    return SqliteFillHistory.open_readonly(path) if present else None


def _offset(progress: ProgressCallback | None, done: int, total: int) -> ProgressCallback | None:
    """``progress`` for the tail of a replay: counts on from ``done`` out of ``total``."""
    if progress is None:
        return None
    return lambda tail_done, tail_total: progress(done + tail_done, max(total, done + tail_total))


#: journal rows fed to the book between two flushes (a batch, as the client feeds it)
BATCH = 512


def apply_journal(
    journal: Journal,
    book: PositionBook,
    *,
    after: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Feed the journaled messages with row id above ``after`` (default: ``book.last_journal_id``, so all of
    them for a fresh book), in arrival order, through ``decode`` into ``book``; returns how many.

    Every event carries its journal row id (``journal_id``), and the book is flushed every :data:`BATCH`
    messages and at the end, as the client does: a book with a :class:`SqliteFillHistory` writes its rows
    as it goes. A restarting client calls ``book.load()`` and then this, for the rows its tables lack.
    """
    after = book.last_journal_id if after is None else after
    total = journal.count(after_id=after) if progress is not None else 0
    if progress is not None:
        progress(0, total)
    done = 0
    for row in journal.iter_messages(after_id=after):
        received = _utc_ns(row.received_ns)
        for event in decode(
            row.raw, session=row.session, received_at=received, journal_id=row.row_id, replayed=True
        ):
            book.apply(event, snapshots=False)
        done += 1
        if done % BATCH == 0:
            book.flush()
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, max(total, done))
    book.flush()
    if progress is not None:
        progress(done, max(total, done))
    return done


def iter_log_messages(path: str | os.PathLike[str]) -> Iterator[tuple[bytes, dt.datetime | None]]:
    """``(raw message, log time)`` for every line of ``path`` that holds a FIX message we received.

    Accepts QuickFIX FileLog lines (``20261122-02:49:18.123456789 : 8=FIX.4.2<SOH>9=...``) and bare messages,
    SOH- or ``|``-delimited (a ``|`` log is turned back into SOH, so checksums verify). Lines without a FIX
    message, admin messages and messages we sent (56=CME) are skipped. The log time is None when the line has
    no timestamp prefix.
    """
    with open(path, "rb") as f:
        for line in f:
            parsed = _log_line(line)
            if parsed is not None:
                yield parsed


def _log_line(line: bytes) -> tuple[bytes, dt.datetime | None] | None:
    start = line.find(b"8=FIX")
    if start < 0:
        return None
    raw = line[start:].rstrip(b"\r\n \t")
    if b"\x01" not in raw:
        raw = raw.replace(b"^A", b"\x01") if b"^A" in raw else raw.replace(b"|", b"\x01")
    if not raw.endswith(b"\x01"):
        raw += b"\x01"
    msg_type = _field(raw, b"35")
    if msg_type not in _BUSINESS_TYPES or _field(raw, b"56") == b"CME":
        return None  # admin, or a message we sent to CME
    stamp = _LOG_TIME.match(line[:start])
    return raw, _parse_time(stamp.group(1)) if stamp else None


def _field(raw: bytes, tag: bytes) -> bytes | None:
    """The first value of a header ``tag`` in the outer message (before any 213 payload)."""
    head = raw.split(b"\x01213=", 1)[0]
    needle = b"\x01" + tag + b"="
    at = head.find(needle)
    if at < 0:
        return None
    begin = at + len(needle)
    end = head.find(b"\x01", begin)
    return head[begin : end if end >= 0 else len(head)]


def _parse_time(text: bytes) -> dt.datetime | None:
    try:
        base = dt.datetime.strptime(text[:17].decode("ascii"), "%Y%m%d-%H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    fraction = text[18:].decode("ascii")
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return base.replace(microsecond=micros)


def replay_log(
    path: str | os.PathLike[str],
    *,
    by_trade_date: bool = False,
    trade_date: dt.date | None = None,
    multipliers: Mapping[str, Decimal | int | str] | None = None,
    progress: ProgressCallback | None = None,
) -> PositionBook:
    """The book rebuilt from a message log or any text file with one raw FIX message per line.

    Duplicates (resends 43=Y, replays 97=Y) are harmless: the book applies each ExecID once. Messages that
    cannot be decoded become ``undecodable message`` exceptions of the book. ``progress`` counts lines.
    """
    book = PositionBook(by_trade_date=by_trade_date, trade_date=trade_date, multipliers=multipliers)
    total = _count_lines(path) if progress is not None else 0
    if progress is not None:
        progress(0, total)
    done = 0
    with open(path, "rb") as f:
        for line in f:
            parsed = _log_line(line)
            if parsed is not None:
                raw, logged = parsed
                received = logged or _sending_time(raw)
                for event in decode(raw, received_at=received or _EPOCH):
                    book.apply(event)
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, max(total, done))
    if progress is not None:
        progress(done, max(total, done))
    return book


def _sending_time(raw: bytes) -> dt.datetime | None:
    match = _SENDING_TIME.search(raw)
    return _parse_time(match.group(1)) if match else None


def _count_lines(path: str | os.PathLike[str]) -> int:
    count = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")
