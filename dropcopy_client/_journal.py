"""The durable journal: every business message received, the sequence ledger, and the consumers' cursors.

SQLite in WAL mode, one writer thread. The journal is the buffer between a fast engine and slow consumers:

* ``messages`` -- every business message (and undecodable one) received, in arrival order; the row id is its
  ``journal_id``, the position consumer cursors count. Rows whose ``msg_type`` starts with ``!`` are notices
  consumers must see too (``!lost``: numbers declared unrecoverable, raw = JSON).
* ``ledger`` -- for every session and sequence epoch, what accounts for each inbound MsgSeqNum (see
  :mod:`dropcopy_client._recovery._ledger`): written in the same transaction as the messages, so the
  journal's position can never move over a number that is not accounted for.
* ``sessions`` -- each session's current epoch, position (``last_seq``) and highest number seen.
* ``cursors`` -- per consumer name, the last journal id it finished.
* ``dead_letters`` -- events a consumer gave up on under the ``dead_letter`` policy, with the error.
* ``duplicates`` -- business messages whose idempotency key was already journaled (for audit).

Everything one batch changes is written in one :meth:`Journal.transaction`; when it returns the batch, its
ledger rows, the position and the cursors are durable together.

Durability (``synchronous``): ``"NORMAL"`` (default) -- every committed batch survives the process being
killed; a power cut may lose the last few commits, never corrupt the file (those numbers are then asked
from CME again, within its 48 hours). ``"FULL"`` -- each commit is fsynced.

Readers -- consumers behind the live tail, the CLI, replay, audit -- open their own connection with
:meth:`Journal.open_readonly`; WAL lets them read a consistent snapshot while the writer keeps committing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, NoReturn

import attrs

from dropcopy_client._recovery._ledger import LedgerRow, State
from dropcopy_client.errors import DropCopyError

__all__ = [
    "SCHEMA_VERSION",
    "DeadLetter",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalRow",
    "SessionPosition",
    "Transaction",
    "dedupe_key_for",
]

log = logging.getLogger("dropcopy_client.journal")

#: Bumped whenever the layout changes; a journal written by a newer SDK is refused, never "upgraded" down.
SCHEMA_VERSION = 2
#: ``PRAGMA application_id`` ("DCJL"): tells a journal apart from any other SQLite file.
APPLICATION_ID = 0x44434A4C
#: ``msg_type`` of a notice row: numbers declared unrecoverable (raw holds the UnrecoverableGap as JSON)
LOST = "!lost"

_PAGE = 1000  # rows fetched per query by iter_messages
_IN_CHUNK = 500  # keys per "IN (...)" lookup (SQLite allows 32,766 parameters; smaller chunks plan better)


class JournalError(DropCopyError):
    """The journal file cannot be used: not a journal, written by a newer SDK, read-only, or a write failed."""


def dedupe_key_for(
    exec_id: str | None,
    session: str,
    source_sender: str | None,
    source_seq: int | None,
    source_sending_time: str | None,
    msg_type: str,
) -> str | None:
    """The key that identifies one business message however many times and ways it is delivered.

    The same as the events' ``idempotency_key``: ``"E:" + ExecID`` when there is one (unique across Globex,
    the same on a resend, a 97=Y replay and through another group); otherwise
    ``"S:<target session>|<source 56>|<source 34>|<source 52>"`` (order mass action reports carry no ExecID,
    and MSGW segments number their sources independently, so the target session is part of the key);
    ``None`` for an undecodable message (``msg_type == "?"``), which is never treated as a duplicate:
    dropping a message wrongly is worse than keeping one twice.
    """
    if msg_type == "?":
        return None
    if exec_id:
        return "E:" + exec_id
    if source_sender and source_seq is not None and source_sending_time:
        return f"S:{session}|{source_sender}|{source_seq}|{source_sending_time}"
    return None


class JournalEntry(NamedTuple):
    """One received business message, as the writer hands it to :meth:`Transaction.insert`.

    A named tuple: the writer builds one per message, and a tuple is the cheapest record Python has."""

    session: str  #: "SENDERCOMP:segment", e.g. "ABCDEFN:G"
    seq: int  #: outer MsgSeqNum (34)
    received_ns: int  #: receive time, ns since the epoch
    raw: bytes  #: the whole raw outer message, secrets already redacted by the caller
    msg_type: str  #: inner 35 ("8", "BZ", ...), "?" when undecodable, "!lost" for a notice
    dedupe_key: str | None  #: from dedupe_key_for; None = never a duplicate
    exec_id: str | None = None
    account: str | None = None
    security_id: str | None = None
    trade_date: str | None = None  #: yyyymmdd
    poss_dup: bool = False  #: outer 43=Y
    poss_resend: bool = False  #: outer 97=Y


@attrs.frozen
class JournalRow:
    """A journaled message read back, with its place in the journal (the fields of :class:`JournalEntry`)."""

    session: str
    seq: int
    received_ns: int
    raw: bytes
    msg_type: str
    dedupe_key: str | None
    exec_id: str | None = None
    account: str | None = None
    security_id: str | None = None
    trade_date: str | None = None
    poss_dup: bool = False
    poss_resend: bool = False
    epoch: int = attrs.field(kw_only=True)  #: the session's epoch (sequence week) when it was recorded
    row_id: int = attrs.field(kw_only=True)  #: arrival order across all sessions: the journal id


@attrs.frozen
class SessionPosition:
    """Where a session stands: every number up to ``last_seq`` of epoch ``epoch`` is accounted for."""

    last_seq: int
    epoch: int
    updated_ns: int
    highest_seen: int = 0


@attrs.frozen
class DeadLetter:
    """An event a consumer gave up on (``on_error = "dead_letter"``)."""

    id: int
    consumer: str
    journal_id: int
    event_type: str
    error: str
    at_ns: int


_SCHEMA = f"""
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    session     TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    msg_type    TEXT    NOT NULL,
    dedupe_key  TEXT    UNIQUE,
    exec_id     TEXT,
    account     TEXT,
    security_id TEXT,
    trade_date  TEXT,
    poss_dup    INTEGER NOT NULL,
    poss_resend INTEGER NOT NULL,
    raw         BLOB    NOT NULL
);
CREATE TABLE duplicates (
    id          INTEGER PRIMARY KEY,
    session     TEXT    NOT NULL,
    epoch       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    dedupe_key  TEXT    NOT NULL
);
CREATE TABLE sessions (
    session      TEXT PRIMARY KEY,
    last_seq     INTEGER NOT NULL,
    epoch        INTEGER NOT NULL,
    updated_ns   INTEGER NOT NULL,
    highest_seen INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
PRAGMA application_id = {APPLICATION_ID};
"""

# Added by schema version 2 (also run on a version-1 journal to upgrade it).
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS ledger (
    id      INTEGER PRIMARY KEY,
    session TEXT    NOT NULL,
    epoch   INTEGER NOT NULL,
    begin   INTEGER NOT NULL,
    end     INTEGER NOT NULL,
    state   TEXT    NOT NULL,
    cause   TEXT,
    at_ns   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_by_session ON ledger (session, epoch, begin);
CREATE TABLE IF NOT EXISTS cursors (
    name       TEXT PRIMARY KEY,
    last_id    INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id         INTEGER PRIMARY KEY,
    consumer   TEXT    NOT NULL,
    journal_id INTEGER NOT NULL,
    event_type TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    at_ns      INTEGER NOT NULL
);
"""

_INSERT_MESSAGE = (
    "INSERT INTO messages (id, session, epoch, seq, received_ns, msg_type, dedupe_key, exec_id, account, "
    "security_id, trade_date, poss_dup, poss_resend, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DUPLICATE = "INSERT INTO duplicates (session, epoch, seq, received_ns, dedupe_key) VALUES (?,?,?,?,?)"
_INSERT_LEDGER = (
    "INSERT INTO ledger (id, session, epoch, begin, end, state, cause, at_ns) VALUES (?,?,?,?,?,?,?,?)"
)
# A row that grows keeps its id, session, epoch and begin (SessionLedger._row), so an existing row's update
# sets only the columns that can change: none of them is in ledger_by_session, and SQLite leaves the index
# alone (INSERT OR REPLACE deleted and re-inserted the row and its index entry: a WAL page more per commit)
_WRITE_LEDGER = (
    f"{_INSERT_LEDGER} ON CONFLICT (id) DO UPDATE SET end = excluded.end, state = excluded.state, "
    "cause = excluded.cause, at_ns = excluded.at_ns"
)
_SET_SESSION = (
    "INSERT INTO sessions (session, last_seq, epoch, updated_ns, highest_seen) VALUES (?,?,?,?,?) "
    "ON CONFLICT (session) DO UPDATE SET last_seq = excluded.last_seq, epoch = excluded.epoch, "
    "updated_ns = excluded.updated_ns, highest_seen = excluded.highest_seen"
)
_SET_CURSOR = (
    "INSERT INTO cursors (name, last_id, updated_ns) VALUES (?,?,?) "
    "ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id, updated_ns = excluded.updated_ns"
)
_COLUMNS = (
    "id, session, epoch, seq, received_ns, msg_type, dedupe_key, exec_id, account, security_id, trade_date, "
    "poss_dup, poss_resend, raw"
)


def lost_notice_raw(
    session: str, epoch: int, begin: int, end: int, reason: str, at_ns: int, frame: bytes | None = None
) -> bytes:
    """The raw column of a ``!lost`` notice row (``frame``: the offending frame, redacted, if any)."""
    record: dict[str, object] = {
        "session": session,
        "epoch": epoch,
        "begin": begin,
        "end": end,
        "reason": reason,
        "at_ns": at_ns,
        "frame": None if frame is None else frame.decode("latin-1"),
    }
    return json.dumps(record, sort_keys=True).encode("utf-8")


@functools.lru_cache(maxsize=64)
def _known_sql(count: int) -> str:
    """The lookup of ``count`` keys (the same text for the same count: sqlite3 reuses its prepared statement)."""
    return f"SELECT dedupe_key FROM messages WHERE dedupe_key IN ({','.join('?' * count)})"


class Transaction:
    """What one batch writes, inside ``BEGIN IMMEDIATE .. COMMIT`` (see :meth:`Journal.transaction`)."""

    def __init__(self, journal: Journal, conn: sqlite3.Connection) -> None:
        self._journal = journal
        self._conn = conn

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection the transaction is open on: for other tables of the same file that must commit with
        the batch (the position book's rows, when its history is the journal's file)."""
        return self._conn

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are already journaled (one indexed lookup per key, in chunks)."""
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        execute = self._conn.execute
        for i in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[i : i + _IN_CHUNK]
            found.update(key for (key,) in execute(_known_sql(len(chunk)), chunk))
        return found

    def insert(self, entries: Sequence[JournalEntry], epochs: dict[str, int]) -> list[int]:
        """Journal ``entries`` (their keys must be new); returns their journal ids, in order."""
        first = self._journal._next_id
        rows = [
            (
                first + i,
                e.session,
                epochs.get(e.session, 0),
                e.seq,
                e.received_ns,
                e.msg_type,
                e.dedupe_key,
                e.exec_id,
                e.account,
                e.security_id,
                e.trade_date,
                e.poss_dup,
                e.poss_resend,
                e.raw,
            )
            for i, e in enumerate(entries)
        ]
        self._conn.executemany(_INSERT_MESSAGE, rows)
        self._journal._next_id = first + len(rows)
        return list(range(first, first + len(rows)))

    def duplicates(self, rows: Iterable[tuple[str, int, int, int, str]]) -> None:
        """Record duplicates: (session, epoch, seq, received_ns, key)."""
        self._conn.executemany(_INSERT_DUPLICATE, list(rows))

    def ledger(self, rows: Iterable[LedgerRow]) -> None:
        self._conn.executemany(
            _WRITE_LEDGER,
            [(r.id, r.session, r.epoch, r.begin, r.end, r.state.value, r.cause, r.at_ns) for r in rows],
        )

    def position(self, session: str, epoch: int, last_seq: int, highest_seen: int) -> None:
        self._conn.execute(_SET_SESSION, (session, last_seq, epoch, time.time_ns(), highest_seen))

    def cursors(self, cursors: dict[str, int]) -> None:
        now = time.time_ns()
        self._conn.executemany(_SET_CURSOR, [(name, last, now) for name, last in cursors.items()])

    def dead_letter(self, consumer: str, journal_id: int, event_type: str, error: str) -> None:
        self._conn.execute(
            "INSERT INTO dead_letters (consumer, journal_id, event_type, error, at_ns) VALUES (?,?,?,?,?)",
            (consumer, journal_id, event_type, error, time.time_ns()),
        )


class _Scope:
    """The context manager of :meth:`Journal.transaction` (a class, not a generator: it runs once per batch,
    so per message at low rates)."""

    __slots__ = ("_conn", "_journal", "_next_id")

    def __init__(self, journal: Journal, conn: sqlite3.Connection) -> None:
        self._journal = journal
        self._conn = conn
        self._next_id = 0

    def __enter__(self) -> Transaction:
        journal = self._journal
        journal._lock.acquire()
        self._next_id = journal._next_id
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._fail(exc)
        return Transaction(journal, self._conn)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None:
            self._fail(exc)
        try:
            self._conn.execute("COMMIT")
        except BaseException as error:
            self._fail(error)
        self._journal._lock.release()

    def _fail(self, exc: BaseException) -> NoReturn:
        """Roll back, give the ids back, release the lock; raise ``exc`` again (SQLite's as JournalError)."""
        journal, conn = self._journal, self._conn
        try:
            journal._next_id = self._next_id
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        finally:
            journal._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise JournalError(f"{journal.path}: write failed: {exc}") from exc
        raise exc


class Journal:
    """The writer's handle on a journal file (created if missing). One per data_dir, used from one thread."""

    #: how often the background thread folds the WAL back into the database (seconds)
    CHECKPOINT_EVERY = 0.05

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        checkpoint: Literal["background", "inline"] = "background",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = Path(path)
        self.readonly = False
        new = not self.path.exists()
        # isolation_level=None: no implicit transactions, each write is one explicit BEGIN IMMEDIATE..COMMIT.
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot open journal: {exc}") from exc
        try:
            self._conn = conn
            if new:
                with contextlib.suppress(OSError):
                    os.chmod(self.path, 0o600)  # every account and fill of the firm is in here
            self._configure(busy_ms=5000)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"{self.path}: cannot use WAL mode here (got {mode!r}); use a local disk")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            # Checkpoints copy the WAL back into the database. Done inline (by the committing writer) they stall
            # it for tens of milliseconds every ~40 MB, so by default a background thread with its own
            # connection runs PASSIVE checkpoints, which never block the writer.
            conn.execute(f"PRAGMA wal_autocheckpoint = {0 if checkpoint == 'background' else 10000}")
            conn.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
            self._migrate()
            self._next_id = (conn.execute("SELECT max(id) FROM messages").fetchone()[0] or 0) + 1
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{self.path}: cannot open journal: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._lock = threading.Lock()
        self._closed = False
        self._stop_checkpoints = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if checkpoint == "background":
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="dropcopy-journal-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints from a second connection: they copy what they can and never wait for the writer."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.exception("%s: background checkpoints unavailable; the WAL grows until close", self.path)
            return
        try:
            while not self._stop_checkpoints.wait(self.CHECKPOINT_EVERY):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked: try again next time
                    log.debug("%s: checkpoint skipped: %s", self.path, exc)
        finally:
            conn.close()

    @classmethod
    def open_readonly(cls, path: Path) -> Journal:
        """A read-only connection for another thread or process while the writer keeps going (WAL)."""
        path = Path(path)
        if not path.exists():
            raise JournalError(f"{path}: no such journal")
        self = cls.__new__(cls)
        self.path = path
        self.readonly = True
        self._next_id = 0
        try:
            conn = sqlite3.connect(
                path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open journal: {exc}") from exc
        try:
            self._conn = conn
            self._configure(busy_ms=5000)
            self._check_version(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{path}: cannot open journal: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._lock = threading.Lock()
        self._closed = False
        return self

    # ------------------------------------------------------------------------------------------ set-up
    def _configure(self, *, busy_ms: int) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        conn.execute("PRAGMA cache_size = -16384")  # 16 MiB: the hot part of the dedupe index stays cached
        conn.execute("PRAGMA temp_store = MEMORY")

    def _check_version(self, version: int, *, upgradable: bool = False) -> None:
        app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise JournalError(
                f"{self.path}: not a dropcopy_client journal (SQLite application_id {app_id:#x})"
            )
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path}: journal schema version {version} was written by a newer dropcopy_client; "
                f"this one understands up to version {SCHEMA_VERSION}. Upgrade dropcopy_client "
                "(the file is untouched)."
            )
        if version < 1:
            raise JournalError(f"{self.path}: journal has no schema version (damaged?)")
        if version < SCHEMA_VERSION and not upgradable:
            raise JournalError(
                f"{self.path}: journal schema version {version} is older than this dropcopy_client's "
                f"({SCHEMA_VERSION}); open it once with the client (dropcopy run) to upgrade it"
            )

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            if version == 0 and empty:
                for statement in (_SCHEMA + _SCHEMA_V2).split(";"):
                    if statement.strip():
                        conn.execute(statement)
            else:
                self._check_version(version, upgradable=True)
                if version == 1:
                    self._upgrade_v1(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _upgrade_v1(self, conn: sqlite3.Connection) -> None:
        """Version 1 had no ledger: what it had accounted (its position) becomes one ``legacy`` range."""
        conn.execute("ALTER TABLE sessions ADD COLUMN highest_seen INTEGER NOT NULL DEFAULT 0")
        for statement in _SCHEMA_V2.split(";"):
            if statement.strip():
                conn.execute(statement)
        now = time.time_ns()
        rows = conn.execute("SELECT session, epoch, last_seq FROM sessions WHERE last_seq > 0").fetchall()
        for session, epoch, last_seq in rows:
            conn.execute(
                _INSERT_LEDGER,
                (None, session, epoch, 1, last_seq, State.LEGACY.value, "journal schema 1", now),
            )
        conn.execute("UPDATE sessions SET highest_seen = last_seq")
        log.info(
            "%s: upgraded from schema 1 to %d (%d session positions kept)",
            self.path,
            SCHEMA_VERSION,
            len(rows),
        )

    # ------------------------------------------------------------------------------------------ writing
    def _writable(self) -> sqlite3.Connection:
        if self._closed:
            raise JournalError(f"{self.path}: journal is closed")
        if self.readonly:
            raise JournalError(f"{self.path}: journal was opened read-only")
        return self._conn

    def transaction(self) -> _Scope:
        """One ``BEGIN IMMEDIATE .. COMMIT`` (``with journal.transaction() as tx:``). Any exception rolls
        everything back (ids included) and is raised again as :class:`JournalError` naming the file (disk full,
        I/O error, locked database, ...)."""
        return _Scope(self, self._writable())

    def record(self, entries: Sequence[JournalEntry], epochs: dict[str, int] | None = None) -> list[bool]:
        """Journal the entries whose idempotency key is new (the first of equal keys wins), in one transaction;
        per entry True if journaled. A low-level helper (tools, tests): it writes no ledger rows and does not
        move any session's position -- the client's writer does both in the same transaction."""
        if not entries:
            return []
        with self.transaction() as tx:
            known = tx.known_keys(e.dedupe_key for e in entries if e.dedupe_key is not None)
            fresh: list[bool] = []
            new: list[JournalEntry] = []
            for e in entries:
                key = e.dedupe_key
                if key is not None and key in known:
                    fresh.append(False)
                    continue
                if key is not None:
                    known.add(key)
                fresh.append(True)
                new.append(e)
            tx.insert(new, epochs or {})
        return fresh

    @property
    def next_id(self) -> int:
        """The journal id the next journaled message will get."""
        return self._next_id

    def set_max_pages(self, pages: int) -> None:
        """Cap the file at ``pages`` database pages (``PRAGMA max_page_count``) on the writer's connection:
        writes beyond fail with SQLITE_FULL, exactly as on a full disk. For fault drills and tests."""
        self._writable().execute(f"PRAGMA max_page_count = {int(pages)}").fetchall()

    def page_count(self) -> int:
        return int(self._readable().execute("PRAGMA page_count").fetchone()[0])

    # ------------------------------------------------------------------------------------------ reading
    def _readable(self) -> sqlite3.Connection:
        if self._closed:
            raise JournalError(f"{self.path}: journal is closed")
        return self._conn

    def last_seq(self, session: str) -> int | None:
        """The position of ``session`` in its current epoch; None for an unknown session."""
        row = (
            self._readable().execute("SELECT last_seq FROM sessions WHERE session = ?", (session,)).fetchone()
        )
        return None if row is None else int(row[0])

    def sessions(self) -> dict[str, SessionPosition]:
        """Every session's position."""
        rows = self._readable().execute(
            "SELECT session, last_seq, epoch, updated_ns, highest_seen FROM sessions ORDER BY session"
        )
        return {
            session: SessionPosition(last, epoch, updated, highest)
            for session, last, epoch, updated, highest in rows
        }

    def ledger_rows(self, session: str, epoch: int) -> list[LedgerRow]:
        """The ledger of one session and epoch, ordered by first number."""
        rows = self._readable().execute(
            "SELECT id, session, epoch, begin, end, state, cause, at_ns FROM ledger "
            "WHERE session = ? AND epoch = ? ORDER BY begin",
            (session, epoch),
        )
        return [LedgerRow(i, s, e, b, end, State(st), c, at) for i, s, e, b, end, st, c, at in rows]

    def max_ledger_id(self) -> int:
        return int(self._readable().execute("SELECT max(id) FROM ledger").fetchone()[0] or 0)

    def epochs(self, session: str) -> list[int]:
        """Every epoch the ledger has for ``session``, oldest first."""
        rows = self._readable().execute(
            "SELECT DISTINCT epoch FROM ledger WHERE session = ? ORDER BY epoch", (session,)
        )
        return [int(epoch) for (epoch,) in rows]

    def cursor(self, name: str) -> int | None:
        """The last journal id consumer ``name`` finished, or None if it never ran."""
        row = self._readable().execute("SELECT last_id FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def cursors(self) -> dict[str, int]:
        return {
            name: int(last) for name, last in self._readable().execute("SELECT name, last_id FROM cursors")
        }

    def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]:
        sql = "SELECT id, consumer, journal_id, event_type, error, at_ns FROM dead_letters"
        params: tuple[Any, ...] = ()
        if consumer is not None:
            sql += " WHERE consumer = ?"
            params = (consumer,)
        return [DeadLetter(*row) for row in self._readable().execute(sql + " ORDER BY id", params)]

    def max_id(self) -> int:
        """The journal id of the last message (0 when empty)."""
        return int(self._readable().execute("SELECT max(id) FROM messages").fetchone()[0] or 0)

    def received_ns_of(self, journal_id: int) -> int | None:
        row = (
            self._readable()
            .execute("SELECT received_ns FROM messages WHERE id = ?", (journal_id,))
            .fetchone()
        )
        return None if row is None else int(row[0])

    def read_after(self, after_id: int, limit: int) -> list[JournalRow]:
        """Up to ``limit`` rows with a journal id above ``after_id``, in order (what a lagging consumer reads)."""
        rows = self._readable().execute(
            f"SELECT {_COLUMNS} FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [_row(r) for r in rows]

    def iter_messages(
        self,
        *,
        session: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        trade_date: str | None = None,
        after_id: int = 0,
        notices: bool = False,
    ) -> Iterator[JournalRow]:
        """Journaled messages in arrival order, for replay: ``since_ns <= received_ns < until_ns``, and row id
        above ``after_id`` (a position book rebuilt from its own tables needs only the rows after them).

        Reads in pages by row id, so memory stays flat and no read transaction is held between pages; the
        iteration stops at the last row that existed when it started. Notice rows (``!lost``) only with
        ``notices=True``.
        """
        conn = self._readable()
        where = ["id > ?", "id <= ?"]
        params: list[Any] = []
        if not notices:
            where.append("msg_type NOT LIKE '!%'")
        if session is not None:
            where.append("session = ?")
            params.append(session)
        if since_ns is not None:
            where.append("received_ns >= ?")
            params.append(since_ns)
        if until_ns is not None:
            where.append("received_ns < ?")
            params.append(until_ns)
        if trade_date is not None:
            where.append("trade_date = ?")
            params.append(trade_date)
        sql = f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(where)} ORDER BY id LIMIT {_PAGE}"
        end = conn.execute("SELECT max(id) FROM messages").fetchone()[0] or 0
        after = after_id
        while True:
            page = conn.execute(sql, (after, end, *params)).fetchall()
            for row in page:
                yield _row(row)
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def count(self, *, after_id: int = 0) -> int:
        """Number of journaled business messages (duplicates and notices not included), of those with row
        id above ``after_id``."""
        sql = "SELECT count(*) FROM messages WHERE id > ? AND msg_type NOT LIKE '!%'"
        return int(self._readable().execute(sql, (after_id,)).fetchone()[0])

    def duplicates(self) -> int:
        """Number of duplicates recorded (and not journaled as messages)."""
        return int(self._readable().execute("SELECT count(*) FROM duplicates").fetchone()[0])

    # ------------------------------------------------------------------------------------------ life cycle
    def close(self) -> None:
        """Close the connection (idempotent). The last writer to close folds the WAL back into the file."""
        if self._closed:
            return
        stop = getattr(self, "_stop_checkpoints", None)
        if stop is not None:
            stop.set()
        checkpointer = getattr(self, "_checkpointer", None)
        if checkpointer is not None:
            checkpointer.join(timeout=5)
        with self._lock:
            self._closed = True
            if not self.readonly:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "writer"
        state = "closed" if self._closed else "open"
        return f"<Journal {str(self.path)!r} {mode} {state}>"


def _row(row: tuple[Any, ...]) -> JournalRow:
    row_id, sess, epoch, seq, ns, mtype, key, xid, acct, sec, tdate, pdup, pres, raw = row
    return JournalRow(
        sess,
        seq,
        ns,
        raw,
        mtype,
        key,
        xid,
        acct,
        sec,
        tdate,
        bool(pdup),
        bool(pres),
        epoch=epoch,
        row_id=row_id,
    )
