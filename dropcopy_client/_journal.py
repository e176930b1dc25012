"""The durable journal: every business message received, and each session's inbound position (SQLite, WAL).

The journal owns the inbound position. A message counts as processed only once it is durable here, and the
"last processed MsgSeqNum" of its session advances in the same transaction, so the position can never run
ahead of what is on disk. On restart the SDK resumes from ``last_seq + 1`` (the engine is told with
``setNextTargetMsgSeqNum``) and anything the engine had acknowledged but the journal had not is simply asked
for again: at-least-once from the wire, de-duplicated here, gives exactly-once effect on positions.

De-duplication is by a key the caller builds with :func:`dedupe_key_for`, held in a unique index, so memory
stays flat however many messages the journal holds: nothing is cached on the Python side except one epoch
number per session.

Durability (``synchronous``):

* ``"NORMAL"`` (default): in WAL mode every committed batch survives the process being killed (``kill -9``,
  a crash, an OOM kill); a power cut or kernel panic may lose the last few commits, never corrupt the file.
  The SDK then re-requests those numbers from CME, so nothing is lost while they are inside CME's 48 hours.
* ``"FULL"``: each commit is fsynced, so a commit also survives a power cut. Costs one fsync per batch.

Threading: one writer thread (the dispatcher) owns a :class:`Journal`; its connection is opened with
``check_same_thread=False`` only so that it may be created on one thread and used and closed on another
(writes are serialised by a lock, but nothing is gained by writing from two threads). Readers -- the CLI's
``positions``, replay, reports -- open their own connection with :meth:`Journal.open_readonly`; WAL lets them
read a consistent snapshot while the writer keeps committing.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import attrs

from dropcopy_client.errors import DropCopyError

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalRow",
    "SessionPosition",
    "dedupe_key_for",
]

#: Bumped whenever the layout changes; a journal written by a newer SDK is refused, never "upgraded" down.
log = logging.getLogger("dropcopy_client.journal")

SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` ("DCJL"): tells a journal apart from any other SQLite file.
APPLICATION_ID = 0x44434A4C

_PAGE = 1000  # rows fetched per query by iter_messages


class JournalError(DropCopyError):
    """The journal file cannot be used: not a journal, written by a newer SDK, or read-only for writing."""


def dedupe_key_for(
    exec_id: str | None,
    source_sender: str | None,
    source_seq: int | None,
    source_sending_time: str | None,
    msg_type: str,
) -> str | None:
    """The key that identifies one business message however many times and ways it is delivered.

    * ``"E:" + ExecID`` (tag 17) when the message has one: CME makes ExecID unique per message across all of
      Globex, so it is the same on the original, on a resend (43=Y, same outer 34), on a post-failover replay
      (97=Y, on a *new* outer 34) and on the copy a second drop copy group receives from the same source
      session -- none of which the outer sequence number can tell apart.
    * otherwise ``"S:56|34|52"`` from the inner (source iLink) header -- TargetCompID, MsgSeqNum and
      SendingTime of the encapsulated message -- which identifies the source message just as uniquely
      (order mass action reports carry no ExecID).
    * ``None`` when neither is available or the message could not be decoded (``msg_type == "?"``): such a
      message is never treated as a duplicate, because dropping a message wrongly is worse than keeping one
      twice.
    """
    if msg_type == "?":
        return None
    if exec_id:
        return "E:" + exec_id
    if source_sender and source_seq is not None and source_sending_time:
        return f"S:{source_sender}|{source_seq}|{source_sending_time}"
    return None


@attrs.frozen
class JournalEntry:
    """One received business message, as the dispatcher hands it to :meth:`Journal.record`."""

    session: str  #: "SENDERCOMP:segment", e.g. "ABCDEFN:G"
    seq: int  #: outer MsgSeqNum (34)
    received_ns: int  #: receive time, ns since the epoch
    raw: bytes  #: the whole raw outer message, secrets already redacted by the caller
    msg_type: str  #: inner 35 ("8", "BZ", ...) or "?" when undecodable
    dedupe_key: str | None  #: from dedupe_key_for; None = never a duplicate
    exec_id: str | None = None
    account: str | None = None
    security_id: str | None = None
    trade_date: str | None = None  #: yyyymmdd
    poss_dup: bool = False  #: outer 43=Y
    poss_resend: bool = False  #: outer 97=Y


@attrs.frozen
class JournalRow(JournalEntry):
    """A journaled message read back, with its place in the journal."""

    epoch: int = attrs.field(kw_only=True)  #: the session's epoch (sequence week) when it was recorded
    row_id: int = attrs.field(kw_only=True)  #: arrival order across all sessions


@attrs.frozen
class SessionPosition:
    """Where a session stands: everything up to ``last_seq`` of sequence epoch ``epoch`` is processed."""

    last_seq: int
    epoch: int
    updated_ns: int


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
    session    TEXT PRIMARY KEY,
    last_seq   INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

_INSERT_MESSAGE = (
    "INSERT INTO messages (session, epoch, seq, received_ns, msg_type, dedupe_key, exec_id, account, "
    "security_id, trade_date, poss_dup, poss_resend, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (dedupe_key) DO NOTHING"
)
_INSERT_DUPLICATE = "INSERT INTO duplicates (session, epoch, seq, received_ns, dedupe_key) VALUES (?,?,?,?,?)"
_ADVANCE = (
    "INSERT INTO sessions (session, last_seq, epoch, updated_ns) VALUES (?,?,?,?) "
    "ON CONFLICT (session) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), "
    "updated_ns = excluded.updated_ns"
)
_RESET = (
    "INSERT INTO sessions (session, last_seq, epoch, updated_ns) VALUES (?,?,?,?) "
    "ON CONFLICT (session) DO UPDATE SET last_seq = excluded.last_seq, epoch = excluded.epoch, "
    "updated_ns = excluded.updated_ns"
)
_NEW_KEYS = "SELECT dedupe_key FROM messages WHERE id > ?"
_COLUMNS = (
    "id, session, epoch, seq, received_ns, msg_type, dedupe_key, exec_id, account, security_id, trade_date, "
    "poss_dup, poss_resend, raw"
)


class Journal:
    """The writer's handle on a journal file (created if missing). Use one per process, from one thread."""

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
        # isolation_level=None: no implicit transactions, each write is one explicit BEGIN IMMEDIATE..COMMIT.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._conn = conn
            self._configure(busy_ms=5000)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"{self.path}: cannot use WAL mode here (got {mode!r}); use a local disk")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            # Checkpoints copy the WAL back into the database. Done inline (by the committing writer) they stall
            # the dispatcher for tens of milliseconds every ~40 MB -- the p99.9 latency measured in bench/ -- so
            # by default a background thread with its own connection runs PASSIVE checkpoints, which never
            # block the writer. "inline": every ~40 MB of WAL instead of SQLite's ~4 MB, so index pages
            # dirtied by many batches are copied back once (+40% measured with random dedupe keys).
            conn.execute(f"PRAGMA wal_autocheckpoint = {0 if checkpoint == 'background' else 10000}")
            conn.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"{self.path}: cannot open journal: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._lock = threading.Lock()
        self._epochs: dict[str, int] = {
            session: epoch for session, epoch in conn.execute("SELECT session, epoch FROM sessions")
        }
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
        conn = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
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
        self._epochs = {}
        self._closed = False
        return self

    # ------------------------------------------------------------------------------------------ set-up
    def _configure(self, *, busy_ms: int) -> None:
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        conn.execute("PRAGMA cache_size = -16384")  # 16 MiB: the hot part of the dedupe index stays cached
        conn.execute("PRAGMA temp_store = MEMORY")

    def _check_version(self, version: int) -> None:
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

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            if version == 0 and empty:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            else:
                self._check_version(version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------------------------------ writing
    def _writable(self) -> sqlite3.Connection:
        if self._closed:
            raise JournalError(f"{self.path}: journal is closed")
        if self.readonly:
            raise JournalError(f"{self.path}: journal was opened read-only")
        return self._conn

    def record(self, entries: Sequence[JournalEntry]) -> list[bool]:
        """Journal a batch in one transaction; per entry True if new, False if its dedupe_key was seen.

        A duplicate is kept in the ``duplicates`` table (session, seq, key) for audit, not as a message. Each
        session's position advances to the highest seq of the batch in the same transaction, and the commit
        happens before this returns: when it returns, the batch and the position are durable together.
        """
        if not entries:
            return []
        conn = self._writable()
        epochs = self._epochs
        positions: dict[str, int] = {}
        rows: list[tuple[Any, ...]] = []
        for e in entries:
            epoch = epochs.get(e.session, 0)
            rows.append(
                (
                    e.session,
                    epoch,
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
            )
            if e.seq > positions.get(e.session, -1):
                positions[e.session] = e.seq
        now = time.time_ns()
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                last_id = conn.execute("SELECT max(id) FROM messages").fetchone()[0] or 0
                before = conn.total_changes
                conn.executemany(_INSERT_MESSAGE, rows)
                if conn.total_changes - before == len(rows):
                    fresh = [True] * len(rows)
                else:
                    # Some keys were already there (or repeated inside the batch): the rows inserted now are
                    # exactly those with an id above last_id, and the first of equal keys is the one inserted.
                    inserted = {key for (key,) in conn.execute(_NEW_KEYS, (last_id,))}
                    fresh = []
                    duplicates = []
                    for e, row in zip(entries, rows, strict=True):
                        key = e.dedupe_key
                        if key is None:
                            fresh.append(True)
                        elif key in inserted:
                            inserted.discard(key)
                            fresh.append(True)
                        else:
                            fresh.append(False)
                            duplicates.append((e.session, row[1], e.seq, e.received_ns, key))
                    conn.executemany(_INSERT_DUPLICATE, duplicates)
                conn.executemany(_ADVANCE, [(s, seq, epochs.get(s, 0), now) for s, seq in positions.items()])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            for session in positions:
                epochs.setdefault(session, 0)
        return fresh

    def mark_processed(self, session: str, seq: int, *, epoch: int | None = None) -> None:
        """Advance ``session``'s position to ``seq`` with no business message (admin messages, gap fills,
        numbers given up as unrecoverable). The position only moves forward within an epoch.

        Never call it for a number the engine reached by skipping (a Reject or Logout answering a
        ResendRequest makes QuickFIX step over one missing number): the position would pass a hole.
        ``epoch`` newer than the session's current one starts that epoch at ``seq`` (see start_epoch); an
        older one is refused.
        """
        conn = self._writable()
        with self._lock:
            current = self._epochs.get(session)
            if epoch is not None and current is not None and epoch < current:
                raise ValueError(
                    f"session {session}: epoch {epoch} is older than the current epoch {current}"
                )
            new_epoch = epoch is not None and (current is None or epoch > current)
            use = epoch if new_epoch and epoch is not None else (current or 0)
            self._write(conn, _RESET if new_epoch else _ADVANCE, (session, seq, use, time.time_ns()))
            self._epochs[session] = use

    def start_epoch(self, session: str, epoch: int) -> None:
        """The weekly sequence reset: from now on ``session``'s numbers restart, so its position becomes 0.

        Messages already journaled are kept (they carry their epoch). Idempotent: starting the current epoch
        again changes nothing, so a restart that repeats the beginning-of-week logic keeps the position.
        An epoch older than the current one is refused. ``epoch`` is any increasing id, e.g. ``yyyyww``.
        """
        conn = self._writable()
        with self._lock:
            current = self._epochs.get(session)
            if current is not None:
                if epoch < current:
                    raise ValueError(
                        f"session {session}: epoch {epoch} is older than the current epoch {current}"
                    )
                if epoch == current:
                    return
            self._write(conn, _RESET, (session, 0, epoch, time.time_ns()))
            self._epochs[session] = epoch

    @staticmethod
    def _write(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------------------------------ reading
    def _readable(self) -> sqlite3.Connection:
        if self._closed:
            raise JournalError(f"{self.path}: journal is closed")
        return self._conn

    def last_seq(self, session: str) -> int | None:
        """The last processed MsgSeqNum of ``session`` in its current epoch; None for an unknown session."""
        row = (
            self._readable().execute("SELECT last_seq FROM sessions WHERE session = ?", (session,)).fetchone()
        )
        return None if row is None else int(row[0])

    def sessions(self) -> dict[str, SessionPosition]:
        """Every session's position."""
        rows = self._readable().execute(
            "SELECT session, last_seq, epoch, updated_ns FROM sessions ORDER BY session"
        )
        return {session: SessionPosition(last, epoch, updated) for session, last, epoch, updated in rows}

    def iter_messages(
        self,
        *,
        session: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        trade_date: str | None = None,
        after_id: int = 0,
    ) -> Iterator[JournalRow]:
        """Journaled messages in arrival order, for replay: ``since_ns <= received_ns < until_ns``, and row id
        above ``after_id`` (a position book rebuilt from its own tables needs only the rows after them).

        Reads in pages by row id, so memory stays flat and no read transaction is held between pages; the
        iteration stops at the last row that existed when it started.
        """
        conn = self._readable()
        where = ["id > ?", "id <= ?"]
        params: list[Any] = []
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
            for row_id, sess, epoch, seq, ns, mtype, key, xid, acct, sec, tdate, pdup, pres, raw in page:
                yield JournalRow(
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
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def count(self, *, after_id: int = 0) -> int:
        """Number of journaled messages (duplicates not included), of those with row id above ``after_id``."""
        sql = "SELECT count(*) FROM messages WHERE id > ?"
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
