"""Where a :class:`~dropcopy_client.positions.PositionBook` keeps its fill history: in memory, or in SQLite.

The book itself holds running totals per key, working orders and exceptions: what it needs for every fill.
The history of every fill is needed only now and then -- a bust or a correction must find the fill it names
and recompute that key, a duplicate must be recognised -- so it lives behind :class:`FillHistory`:

* :class:`MemoryFillHistory` (the default, what ``PositionBook()`` uses offline): plain Python containers.
  Memory grows with the fills, about a kilobyte each; fine for a day's replay or a notebook.
* :class:`SqliteFillHistory`: rows in tables of its own (``book_`` prefix) in an SQLite file -- the client
  passes the journal's own file, so a restart rebuilds the book from those rows without decoding a single
  message (:meth:`PositionBook.load`). Memory stays flat however many fills it holds.

Both store the same thing: one *row* per event the book was fed, immutable, in arrival order, with the
columns the book needs (:data:`COLUMNS`). A row is a plain tuple indexed by the constants below (``ID``,
``KIND``, ...); prices are exact decimal text, dates ``yyyymmdd`` integers, times integer microseconds since
the epoch, sides the FIX value. What the book *did* with a row (which fill a bust reversed, the price a
correction set) is not stored: the book derives it again when it replays the rows, so a history written by a
book for every trade date can rebuild a book of one trade date, and the result is exactly what the live book
computed.
"""

from __future__ import annotations

import bisect
import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, TypeAlias

from dropcopy_client.errors import DropCopyError

__all__ = [
    "COLUMNS",
    "FillHistory",
    "FillHistoryError",
    "MemoryFillHistory",
    "Row",
    "SqliteFillHistory",
]

#: one event as the book stores it: a tuple of len(COLUMNS) values, indexed by the constants below
Row: TypeAlias = tuple[Any, ...]

# ------------------------------------------------------------------------------------------------ row layout
(
    ID,  # arrival order: the event's journal_id when it has one, else the next number
    KIND,  # one of the kinds below
    EXEC_ID,  # 17 (for ERROR rows: a digest of reason + raw message, the de-duplication key)
    EXEC_REF,  # 19, as received
    ACCOUNT,  # 1
    SECURITY_ID,  # 48
    TRADE_DATE,  # 75 as yyyymmdd
    SIDE,  # 54 wire value
    QTY,  # 32
    PX,  # 31 as exact decimal text
    TIME,  # 60 in microseconds since the epoch
    TRADE_ID,  # 37711
    SECONDARY,  # 527
    SOURCE,  # inner 56: the source iLink session (spread bust scope)
    SESSION,  # our drop copy session (uncertainty)
    ORDER_ID,  # 37
    LEAVES,  # 151
    CUM,  # 14
    ORDER_QTY,  # 38
    PRICE,  # 44 as exact decimal text
    CL_ORD_ID,  # 11
    SYMBOL,  # 55
    DESC,  # 107
    TEXT,  # MASS_ACTION: affected OrderIDs joined by SOH; ERROR: the exception's reason
) = range(24)

COLUMNS = (
    "id",
    "kind",
    "exec_id",
    "exec_ref_id",
    "account",
    "security_id",
    "trade_date",
    "side",
    "qty",
    "px",
    "time_us",
    "trade_id",
    "secondary_exec_id",
    "source",
    "session",
    "order_id",
    "leaves_qty",
    "cum_qty",
    "order_qty",
    "price",
    "cl_ord_id",
    "symbol",
    "security_desc",
    "text",
)
WIDTH = len(COLUMNS)

# kinds (stored as integers; the book classifies each event once, when it first sees it)
FILL = 1  #: an outright fill (442=1 or absent) that counts
LEG = 2  #: a spread leg fill (442=2) that counts
SUMMARY = 3  #: a spread summary fill (442=3): never in a position
BAD_FILL = 4  #: an outright fill that cannot count (no 48, or no side / positive 32 / 31): an exception
BAD_LEG = 5  #: the same for a spread leg
BUST = 6  #: 39=H of an outright or leg
SPREAD_BUST = 7  #: 39=H of a spread summary (reverses every leg with its 527)
CORRECTION = 8  #: 39=G of an outright or leg
SPREAD_CORRECTION = 9  #: 39=G of a spread summary (spread level only)
ACK = 10  #: new order or modify acknowledgement (not of a leg)
DONE = 11  #: cancel acknowledgement or elimination (not of a leg)
OTHER = 12  #: any other execution report: kept only so that its ExecID is known
MASS_ACTION = 13  #: an accepted order mass action report; TEXT holds the affected OrderIDs
ERROR = 14  #: an undecodable message: an exception

#: kinds whose ExecID ending a bust or correction may name
REF_KINDS = (FILL, LEG, SUMMARY)
#: kinds that are in positions
COUNTED = (FILL, LEG)

_SCHEMA_VERSION = 1
_PAGE = 20_000  # rows per query when reading the whole history


class FillHistoryError(DropCopyError):
    """The file cannot hold or give a fill history: not SQLite, no book tables, or tables of a newer SDK."""


class FillHistory(Protocol):
    """What a PositionBook needs from its fill history (module docstring).

    ``upto`` bounds every lookup to rows with ``id <= upto``: live, that is everything recorded so far; while
    :meth:`PositionBook.load` replays the rows, it is the row being replayed, so each row sees the history
    exactly as the live book saw it. Rows recorded but not flushed yet are always visible.
    """

    @property
    def last_journal_id(self) -> int:
        """The journal id up to which every event has been applied and flushed (0: none)."""
        ...

    @property
    def last_row_id(self) -> int:
        """The highest row id recorded (0: empty)."""
        ...

    def seen(self, key: str, *, error: bool = False) -> bool:
        """Has an execution report with this ExecID (``error``: an undecodable message with this digest)
        been recorded?"""
        ...

    def record(self, row: Row) -> None:
        """Keep ``row`` (ids increase); visible to lookups at once, durable after :meth:`flush`."""
        ...

    def by_ref(self, security_id: str, ref: str, upto: int) -> list[Row]:
        """Fill rows (``REF_KINDS``) of ``security_id`` whose ExecID ends with ``ref``, in arrival order."""
        ...

    def row(self, row_id: int) -> Row | None:
        """One row by id."""
        ...

    def legs(self, source: str, secondary: str, upto: int) -> list[Row]:
        """``LEG`` rows with this source session (inner 56) and 527 SecondaryExecID, in arrival order."""
        ...

    def key_fills(
        self,
        account: str,
        security_id: str,
        trade_date: int | None,
        by_date: bool,
        ranges: Sequence[tuple[int, int]],
    ) -> Iterable[Row]:
        """The ``COUNTED`` rows of one key with ids in the inclusive ``ranges`` (ascending, disjoint), in
        arrival order. ``account`` matches a row's account or, for ``""``, a row without one; ``by_date``
        restricts to rows whose trade date is ``trade_date`` (``None``: rows without one)."""
        ...

    def rows(self, after: int = 0) -> Iterator[Row]:
        """Every row with ``id > after``, in arrival order (what :meth:`PositionBook.load` replays)."""
        ...

    def flush(self, last_journal_id: int) -> None:
        """Make every recorded row durable, with ``last_journal_id``, in one step."""
        ...

    def close(self) -> None:
        """Release what the history holds (a flush is not implied)."""
        ...


def _matches_key(row: Row, account: str, trade_date: int | None, by_date: bool) -> bool:
    return (row[ACCOUNT] or "") == account and (not by_date or row[TRADE_DATE] == trade_date)


class MemoryFillHistory:
    """The fill history in plain Python containers: the default, for offline books.

    Holds every row and a few indexes over them, about 950 bytes per fill in the benchmark's mix (610 per message,
    acknowledgements included); memory grows with the history. Use :class:`SqliteFillHistory` for a book that runs
    for days.
    """

    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._exec_ids: set[str] = set()
        self._errors: set[str] = set()
        # "<ref>\x1f<SecurityID>" -> the row, or a list of rows when several fills end the same way
        self._by_ref: dict[str, Row | list[Row]] = {}
        self._legs: dict[tuple[str, str], list[Row]] = {}
        self._by_key: dict[tuple[str, str], list[Row]] = {}
        self._strings: dict[str, str] = {}  # one copy of each account, instrument, session, ...
        self._last_journal_id = 0

    @property
    def last_journal_id(self) -> int:
        return self._last_journal_id

    @property
    def last_row_id(self) -> int:
        return self._rows[-1][ID] if self._rows else 0

    def seen(self, key: str, *, error: bool = False) -> bool:
        return key in (self._errors if error else self._exec_ids)

    def record(self, row: Row) -> None:
        kind = row[KIND]
        exec_id = row[EXEC_ID]
        if kind == ERROR:
            self._errors.add(exec_id)
        elif exec_id is not None and kind != MASS_ACTION:
            self._exec_ids.add(exec_id)
        if kind in COUNTED or kind == ACK:
            row = self._shared(row)
        self._rows.append(row)
        if kind in REF_KINDS:
            key = f"{exec_id[-9:]}\x1f{row[SECURITY_ID] or ''}"
            found = self._by_ref.get(key)
            if found is None:
                self._by_ref[key] = row
            elif isinstance(found, list):
                found.append(row)
            else:
                self._by_ref[key] = [found, row]
        if kind in COUNTED:
            self._by_key.setdefault((row[ACCOUNT] or "", row[SECURITY_ID]), []).append(row)
            if kind == LEG and row[SECONDARY]:
                self._legs.setdefault((row[SOURCE], row[SECONDARY]), []).append(row)

    def _shared(self, row: Row) -> Row:
        """``row`` with its repeating texts (account, instrument, session, names) shared with earlier rows."""
        strings = self._strings
        values = list(row)
        for i in (ACCOUNT, SECURITY_ID, SESSION, SYMBOL, DESC, SOURCE, PX, PRICE):
            value = values[i]
            if value is not None:
                values[i] = strings.setdefault(value, value)
        return tuple(values)

    def by_ref(self, security_id: str, ref: str, upto: int) -> list[Row]:
        found = self._by_ref.get(f"{ref}\x1f{security_id}")
        if found is None:
            return []
        rows = found if isinstance(found, list) else [found]
        return [r for r in rows if r[ID] <= upto]

    def row(self, row_id: int) -> Row | None:
        at = bisect.bisect_left(self._rows, row_id, key=_row_id)
        return self._rows[at] if at < len(self._rows) and self._rows[at][ID] == row_id else None

    def legs(self, source: str, secondary: str, upto: int) -> list[Row]:
        return [r for r in self._legs.get((source, secondary), ()) if r[ID] <= upto]

    def key_fills(
        self,
        account: str,
        security_id: str,
        trade_date: int | None,
        by_date: bool,
        ranges: Sequence[tuple[int, int]],
    ) -> Iterator[Row]:
        rows = self._by_key.get((account, security_id), [])
        for lo, hi in ranges:
            start = bisect.bisect_left(rows, lo, key=_row_id)
            for row in rows[start:]:
                if row[ID] > hi:
                    break
                if not by_date or row[TRADE_DATE] == trade_date:
                    yield row

    def rows(self, after: int = 0) -> Iterator[Row]:
        start = bisect.bisect_right(self._rows, after, key=_row_id)
        return iter(self._rows[start:])

    def flush(self, last_journal_id: int) -> None:
        self._last_journal_id = max(self._last_journal_id, last_journal_id)

    def close(self) -> None:
        """Nothing to release."""


def _row_id(row: Row) -> int:
    return int(row[ID])


# ------------------------------------------------------------------------------------------------ SQLite

# Written out, not generated: this is the on-disk contract (a test checks the columns follow COLUMNS).
# Statements are split on semicolons: none in the comments.
_TABLES = f"""
CREATE TABLE IF NOT EXISTS book_rows (
    id                INTEGER PRIMARY KEY,  -- arrival order: the journal row id when fed from the journal
    kind              INTEGER NOT NULL,     -- FILL=1 LEG=2 SUMMARY=3 BAD_FILL=4 BAD_LEG=5 BUST=6 SPREAD_BUST=7
                                            -- CORRECTION=8 SPREAD_CORRECTION=9 ACK=10 DONE=11 OTHER=12
                                            -- MASS_ACTION=13 ERROR=14
    exec_id           TEXT,                 -- 17 (ERROR: digest of reason and raw message)
    exec_ref_id       TEXT,                 -- 19
    account           TEXT,                 -- 1
    security_id       TEXT,                 -- 48
    trade_date        INTEGER,              -- 75 as yyyymmdd
    side              TEXT,                 -- 54
    qty               INTEGER,              -- 32
    px                TEXT,                 -- 31, exact decimal text
    time_us           INTEGER,              -- 60, microseconds since the epoch
    trade_id          TEXT,                 -- 37711
    secondary_exec_id TEXT,                 -- 527
    source            TEXT,                 -- inner 56: the source iLink session
    session           TEXT,                 -- our drop copy session
    order_id          TEXT,                 -- 37
    leaves_qty        INTEGER,              -- 151
    cum_qty           INTEGER,              -- 14
    order_qty         INTEGER,              -- 38
    price             TEXT,                 -- 44, exact decimal text
    cl_ord_id         TEXT,                 -- 11
    symbol            TEXT,                 -- 55
    security_desc     TEXT,                 -- 107
    text              TEXT                  -- MASS_ACTION: affected OrderIDs, SOH-separated, ERROR: reason
);
CREATE INDEX IF NOT EXISTS book_rows_ref ON book_rows (substr(exec_id, -9), security_id)
    WHERE exec_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS book_rows_legs ON book_rows (secondary_exec_id, source) WHERE kind = {LEG};
CREATE TABLE IF NOT EXISTS book_meta (
    key   TEXT PRIMARY KEY,                 -- 'schema', 'last_journal_id'
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM book_rows"
_BY_REF = (
    f"{_SELECT} WHERE substr(exec_id, -9) = ? AND exec_id IS NOT NULL AND ifnull(security_id, '') = ? "
    f"AND kind IN {REF_KINDS} AND id <= ? ORDER BY id"
)
_SEEN = (
    "SELECT 1 FROM book_rows WHERE substr(exec_id, -9) = ? AND exec_id IS NOT NULL AND exec_id = ? "
    "AND (kind = ?) = ? LIMIT 1"
)
_LEGS = f"{_SELECT} WHERE secondary_exec_id = ? AND source IS ? AND kind = {LEG} AND id <= ? ORDER BY id"
_KEY_FILLS = f"{_SELECT} WHERE id BETWEEN ? AND ? AND kind IN {COUNTED} AND security_id = ? AND ifnull(account, '') = ?"
_ROWS = f"{_SELECT} WHERE id > ? AND id <= ? ORDER BY id LIMIT {_PAGE}"
_META = (
    "INSERT INTO book_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def _insert(columns: Sequence[int], kind: int | None = None) -> tuple[str, Any]:
    """An INSERT of just these columns (``kind``: written as a constant, not bound), and the getter that picks
    their values out of a row.

    Why not one statement for every row: every bound parameter costs Python's sqlite3 some 600 instructions,
    and binding ``None`` several times that (it looks for an adapter first), so a fill bound with the
    acknowledgement-only columns as NULLs would pay for a dozen of them. Each kind lists the columns it fills;
    the others are NULL in the table.
    """
    from operator import itemgetter

    bound = [c for c in columns if kind is None or c != KIND]
    names = [COLUMNS[i] for i in bound]
    marks = ["?"] * len(bound)
    if kind is not None:
        names.append(COLUMNS[KIND])
        marks.append(str(kind))
    return f"INSERT INTO book_rows ({', '.join(names)}) VALUES ({', '.join(marks)})", itemgetter(*bound)


_COMMON = (ID, KIND, EXEC_ID)
_FILL_COLUMNS = (
    *_COMMON,
    ACCOUNT,
    SECURITY_ID,
    TRADE_DATE,
    SIDE,
    QTY,
    PX,
    TIME,
    TRADE_ID,
    SESSION,
    ORDER_ID,
    LEAVES,
    CUM,
    SYMBOL,
    DESC,
)
_BARE_FILL_COLUMNS = tuple(c for c in _FILL_COLUMNS if c not in (ORDER_ID, LEAVES, CUM))
_LEG_COLUMNS = (  # legs never touch working orders: no order columns
    *_COMMON,
    ACCOUNT,
    SECURITY_ID,
    TRADE_DATE,
    SIDE,
    QTY,
    PX,
    TIME,
    SECONDARY,
    SOURCE,
    SESSION,
    SYMBOL,
    DESC,
)
_ACK_COLUMNS = (
    *_COMMON,
    ACCOUNT,
    SECURITY_ID,
    SIDE,
    TIME,
    ORDER_ID,
    LEAVES,
    CUM,
    ORDER_QTY,
    PRICE,
    CL_ORD_ID,
    DESC,
)
# statement keys: a kind, a kind whose fill's order is not working (negative: no order columns), or 0
_STATEMENTS: dict[int, tuple[str, Any]] = {
    FILL: _insert(_FILL_COLUMNS, FILL),
    -FILL: _insert(_BARE_FILL_COLUMNS, FILL),
    SUMMARY: _insert(_FILL_COLUMNS, SUMMARY),
    -SUMMARY: _insert(_BARE_FILL_COLUMNS, SUMMARY),
    LEG: _insert(_LEG_COLUMNS, LEG),
    ACK: _insert(_ACK_COLUMNS, ACK),
    DONE: _insert((*_COMMON, ORDER_ID), DONE),
    OTHER: _insert(_COMMON, OTHER),
    # every column: the rare kinds (busts, corrections, unusable fills, mass actions, undecodable messages)
    # and a row its kind's statement would not hold in full (a fill with a 19, a leg with a 37711)
    0: _insert(tuple(range(WIDTH))),
}


def _statement(row: Row) -> int:
    """Which of ``_STATEMENTS`` holds ``row`` in full."""
    kind: int = row[KIND]
    if kind in (FILL, SUMMARY):
        if row[EXEC_REF] is not None:
            return 0
        return kind if row[ORDER_ID] is not None else -kind
    if kind == LEG:
        return LEG if row[EXEC_REF] is None and row[TRADE_ID] is None else 0
    if kind in (ACK, DONE, OTHER):
        return kind
    return 0


class SqliteFillHistory:
    """The fill history in an SQLite file, in tables of its own (``book_rows``, ``book_meta``).

    The client passes its journal (``<data_dir>/journal.sqlite``): the book's rows then sit beside the raw
    messages, and a restart rebuilds the book from them (:meth:`PositionBook.load`). Open the journal
    *first* (it refuses a file that already has tables and no journal schema); this class opens a connection
    of its own, and :meth:`flush` commits on it; the client's writer instead puts the rows into its next journal
    transaction (:meth:`write_into`), so they cost no commit of their own.
    Any standalone file works too (``WAL`` mode is switched on when the file is not in it yet).

    Rows are kept in RAM between :meth:`flush` calls only (the client flushes once per batch); nothing per
    fill stays in memory. ``autocheckpoint=False`` leaves folding the WAL back to someone else (the
    journal's background checkpointer); the default lets SQLite do it on commit.

    One thread uses an instance at a time (the book's feeding thread); it may be created on another.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        autocheckpoint: bool = True,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = Path(path)
        self.readonly = False
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise FillHistoryError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._conn = conn
            self._configure()
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            if not autocheckpoint:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                self._check_version(create=True)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            conn.close()
            raise FillHistoryError(f"{self.path}: cannot use as a fill history: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._init_state()

    @classmethod
    def open_readonly(cls, path: str | Path) -> SqliteFillHistory:
        """The history in ``path`` for reading while a writer keeps going (WAL). Rows recorded on it stay in
        memory and are never written; :meth:`flush` keeps them there."""
        self = cls.__new__(cls)
        self.path = Path(path)
        self.readonly = True
        try:
            conn = sqlite3.connect(
                self.path.resolve().as_uri() + "?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise FillHistoryError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._conn = conn
            self._configure()
            conn.execute("PRAGMA query_only = ON")
            if not has_book_tables(conn):
                raise FillHistoryError(f"{self.path}: no position book tables")
            self._check_version(create=False)
        except sqlite3.Error as exc:
            conn.close()
            raise FillHistoryError(f"{self.path}: cannot read as a fill history: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._init_state()
        return self

    def _check_version(self, *, create: bool) -> None:
        version = self._meta("schema")
        if version is None and create:
            self._conn.execute(_META, ("schema", _SCHEMA_VERSION))
        elif (version or 0) > _SCHEMA_VERSION:
            raise FillHistoryError(
                f"{self.path}: book tables of schema version {version} were written by a newer dropcopy_client; "
                f"this one understands up to {_SCHEMA_VERSION}. Upgrade dropcopy_client (the file is untouched)."
            )

    def _configure(self) -> None:
        self._conn.execute("PRAGMA busy_timeout = 5000")
        # 4 MiB: inserts touch the table's last pages and a few index leaves; lookups are rare
        self._conn.execute("PRAGMA cache_size = -4096")

    def _init_state(self) -> None:
        conn = self._conn
        self._last_journal_id = self._meta("last_journal_id") or 0
        self._last_row_id = int(conn.execute("SELECT ifnull(max(id), 0) FROM book_rows").fetchone()[0])
        self._pending: list[Row] = []
        self._pending_ids: dict[str, bool] | None = None  # ExecID (or error digest) -> is an error
        self._closed = False

    def _meta(self, key: str) -> int | None:
        found = self._conn.execute("SELECT value FROM book_meta WHERE key = ?", (key,)).fetchone()
        return None if found is None else int(found[0])

    # ------------------------------------------------------------------------------------------ protocol
    @property
    def last_journal_id(self) -> int:
        return self._last_journal_id

    @property
    def last_row_id(self) -> int:
        return self._last_row_id

    def seen(self, key: str, *, error: bool = False) -> bool:
        pending = self._pending_ids
        if pending is None:  # built on the first lookup: events fed from a journal never need it
            pending = self._pending_ids = {}
            for row in self._pending:
                self._index_pending(row)
        if pending.get(key) == error:
            return True
        found = self._conn.execute(_SEEN, (key[-9:], key, ERROR, error)).fetchone()
        return found is not None

    def _index_pending(self, row: Row) -> None:
        if row[EXEC_ID] is not None and row[KIND] != MASS_ACTION and self._pending_ids is not None:
            self._pending_ids[row[EXEC_ID]] = row[KIND] == ERROR

    def record(self, row: Row) -> None:
        self._pending.append(row)
        if self._pending_ids is not None:
            self._index_pending(row)
        self._last_row_id = row[ID]

    def by_ref(self, security_id: str, ref: str, upto: int) -> list[Row]:
        found = self._conn.execute(_BY_REF, (ref, security_id, upto)).fetchall()
        found += [
            r
            for r in self._pending
            if r[KIND] in REF_KINDS
            and r[ID] <= upto
            and (r[SECURITY_ID] or "") == security_id
            and r[EXEC_ID][-9:] == ref
        ]
        return found

    def row(self, row_id: int) -> Row | None:
        found = self._conn.execute(f"{_SELECT} WHERE id = ?", (row_id,)).fetchone()
        if found is not None:
            return tuple(found)
        return next((r for r in self._pending if r[ID] == row_id), None)

    def legs(self, source: str, secondary: str, upto: int) -> list[Row]:
        found = self._conn.execute(_LEGS, (secondary, source, upto)).fetchall()
        found += [
            r
            for r in self._pending
            if r[KIND] == LEG and r[ID] <= upto and r[SECONDARY] == secondary and r[SOURCE] == source
        ]
        return found

    def key_fills(
        self,
        account: str,
        security_id: str,
        trade_date: int | None,
        by_date: bool,
        ranges: Sequence[tuple[int, int]],
    ) -> Iterator[Row]:
        sql = _KEY_FILLS
        extra: tuple[Any, ...] = ()
        if by_date:
            sql += " AND trade_date IS ?"
            extra = (trade_date,)
        sql += " ORDER BY id"
        first_pending = self._pending[0][ID] if self._pending else None
        for lo, hi in ranges:
            if first_pending is None or lo < first_pending:
                yield from self._conn.execute(sql, (lo, hi, security_id, account, *extra))
            if first_pending is not None and hi >= first_pending:
                for row in self._pending:
                    if (
                        lo <= row[ID] <= hi
                        and row[KIND] in COUNTED
                        and row[SECURITY_ID] == security_id
                        and _matches_key(row, account, trade_date, by_date)
                    ):
                        yield row

    def rows(self, after: int = 0) -> Iterator[Row]:
        """Every row after ``after`` in one read transaction: with a writer going on (another process, WAL),
        the rows read and :attr:`last_journal_id` (read again at the start) are one consistent snapshot."""
        conn = self._conn
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            if own:
                self._last_journal_id = self._meta("last_journal_id") or 0
            end = int(conn.execute("SELECT ifnull(max(id), 0) FROM book_rows").fetchone()[0])
            self._last_row_id = max(self._last_row_id, end)
            while after < end:
                page = conn.execute(_ROWS, (after, end)).fetchall()
                if not page:
                    break
                yield from page
                after = page[-1][ID]
        finally:
            if own:  # also when the reader stops early (the generator is closed), maybe after close()
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("COMMIT")
        for row in self._pending:
            if row[ID] > after:
                yield row

    def flush(self, last_journal_id: int) -> None:
        """Write the recorded rows and ``last_journal_id`` in one transaction (read-only: keep them)."""
        if self.readonly:
            self._last_journal_id = max(self._last_journal_id, last_journal_id)
            return
        advance = last_journal_id > self._last_journal_id
        if not self._pending and not advance:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = self._insert_pending(conn, last_journal_id)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.written(count, last_journal_id)

    def write_into(self, conn: sqlite3.Connection, last_journal_id: int) -> int:
        """Insert the recorded rows and ``last_journal_id`` through ``conn``: a connection to this same file
        with a write transaction open (the client's journal transaction, so a batch costs one commit, not two,
        and the two connections do not keep invalidating each other's page cache). Returns how many rows it
        wrote: pass that to :meth:`written` once the transaction has committed; until then nothing here
        changes, so a rollback costs nothing (the rows stay recorded for the next try)."""
        if self.readonly:
            raise FillHistoryError(f"{self.path}: opened read-only: its rows are never written")
        return self._insert_pending(conn, last_journal_id)

    def written(self, count: int, last_journal_id: int) -> None:
        """The first ``count`` recorded rows and ``last_journal_id`` are durable (see :meth:`write_into`)."""
        del self._pending[:count]
        self._pending_ids = None
        if last_journal_id > self._last_journal_id:
            self._last_journal_id = last_journal_id

    def _insert_pending(self, conn: sqlite3.Connection, last_journal_id: int) -> int:
        groups: dict[int, list[Row]] = {}
        for row in self._pending:
            key = _statement(row)
            group = groups.get(key)
            if group is None:
                group = groups[key] = []
            group.append(row)
        for key, rows in groups.items():
            sql, pick = _STATEMENTS[key]
            conn.executemany(sql, map(pick, rows))
        if last_journal_id > self._last_journal_id:
            conn.execute(_META, ("last_journal_id", last_journal_id))
        return len(self._pending)

    @property
    def unflushed(self) -> int:
        """Rows recorded since the last flush."""
        return len(self._pending)

    def count(self) -> int:
        """Rows in the history (flushed and not)."""
        return int(self._conn.execute("SELECT count(*) FROM book_rows").fetchone()[0]) + len(self._pending)

    def close(self) -> None:
        """Close the connection (idempotent). Rows not flushed are dropped."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> SqliteFillHistory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "writer"
        return f"<SqliteFillHistory {str(self.path)!r} {mode} last_journal_id={self._last_journal_id}>"


def has_book_tables(conn: sqlite3.Connection) -> bool:
    """True when the database on ``conn`` holds the book's tables and a schema version."""
    names = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('book_rows', 'book_meta')"
        )
    }
    return names == {"book_rows", "book_meta"}
