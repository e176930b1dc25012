"""The durable journal: transactions, dedupe, ledger rows, cursors, dead letters, upgrades, WAL readers, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropcopy_client._journal import (
    LOST,
    SCHEMA_VERSION,
    Journal,
    JournalEntry,
    JournalError,
    JournalRow,
    SessionPosition,
    dedupe_key_for,
    lost_notice_raw,
)
from dropcopy_client._recovery import Ledger, State
from dropcopy_client.errors import DropCopyError

A = "ABCDEFN:G"
B = "ABCDEFN:M"


def entry(
    session: str,
    seq: int,
    key: str | None = None,
    *,
    ns: int | None = None,
    trade_date: str | None = "20260106",
    msg_type: str = "8",
) -> JournalEntry:
    return JournalEntry(
        session=session,
        seq=seq,
        received_ns=ns if ns is not None else 1_000 + seq,
        raw=b"8=FIX.4.2\x0135=n\x0134=" + str(seq).encode() + b"\x01",
        msg_type=msg_type,
        dedupe_key=key,
        exec_id=key[2:] if key and key.startswith("E:") else None,
        account="ACCT1",
        security_id="123456",
        trade_date=trade_date,
        poss_dup=seq % 2 == 0,
        poss_resend=False,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.db") as j:
        yield j


def record(journal: Journal, entries: list[JournalEntry], epochs: dict[str, int] | None = None) -> list[bool]:
    return journal.record(entries, epochs)


# ---------------------------------------------------------------------------------------------- dedupe
def test_dedupe_key_rule() -> None:
    t = "20260106-14:00:00.000"
    assert dedupe_key_for("6270:123TN1", A, "ABC", 9, t, "8") == "E:6270:123TN1"
    assert dedupe_key_for(None, A, "ABC", 9, t, "BZ") == f"S:{A}|ABC|9|{t}"
    assert dedupe_key_for("", A, "ABC", 9, t, "8") == f"S:{A}|ABC|9|{t}"
    # the same source numbers on two MSGW segments are two messages (issue: merged before)
    assert dedupe_key_for(None, "ABCDEFN:84", "ABC", 9, t, "BZ") != dedupe_key_for(
        None, "ABCDEFN:92", "ABC", 9, t, "BZ"
    )
    assert dedupe_key_for(None, A, "ABC", None, t, "8") is None
    assert dedupe_key_for(None, A, None, None, None, "8") is None
    assert dedupe_key_for("6270:123TN1", A, "ABC", 9, "t", "?") is None  # undecodable: never a duplicate


def test_known_keys_across_batches_and_sessions(journal: Journal) -> None:
    assert record(journal, [entry(A, 1, "E:1"), entry(A, 2, "E:2")]) == [True, True]
    # a resend of 2 on A, a 97=Y replay of 1 on a new number, the same fill seen by another group (B)
    fresh = record(journal, [entry(A, 3, "E:2"), entry(A, 4, "E:1"), entry(B, 1, "E:1"), entry(B, 2, "E:3")])
    assert fresh == [False, False, False, True]
    assert journal.count() == 3


def test_ids_are_consecutive_and_a_failed_transaction_gives_them_back(journal: Journal) -> None:
    with journal.transaction() as tx:
        assert tx.insert([entry(A, 1, "E:1"), entry(A, 2, "E:2")], {}) == [1, 2]
    bad = JournalEntry(A, 8, 0, None, "8", "E:8")  # type: ignore[arg-type]  # raw NOT NULL
    with pytest.raises(JournalError, match="write failed"), journal.transaction() as tx:
        tx.insert([entry(A, 3, "E:3"), bad], {})
    assert journal.count() == 2 and journal.next_id == 3
    with journal.transaction() as tx:
        assert tx.insert([entry(A, 3, "E:3")], {}) == [3]  # nothing of the failed batch stayed
    assert [r.row_id for r in journal.iter_messages()] == [1, 2, 3]


def test_other_exceptions_roll_back_and_pass_through(journal: Journal) -> None:
    with pytest.raises(KeyError), journal.transaction() as tx:
        tx.insert([entry(A, 1, "E:1")], {})
        raise KeyError("boom")
    assert journal.count() == 0 and journal.next_id == 1


def test_no_key_is_never_a_duplicate(journal: Journal) -> None:
    assert record(journal, [entry(A, 1, None, msg_type="?"), entry(A, 2, None, msg_type="?")]) == [True, True]
    assert journal.count() == 2


# ---------------------------------------------------------------------------------------------- ledger
def test_ledger_rows_positions_and_epochs_round_trip(journal: Journal) -> None:
    ledger = Ledger(journal.max_ledger_id() + 1)
    sl = ledger.open(A, 7)
    sl.account(1, 3, State.JOURNALED, 10)
    sl.account(4, 4, State.ADMIN, 11)
    sl.account(5, 9, State.GAP_FILLED, 12)
    sl.account(10, 10, State.JOURNALED, 13)
    sl.account(12, 12, State.ADMIN, 14)
    with journal.transaction() as tx:
        tx.ledger(ledger.take_rows())
        tx.position(A, 7, sl.position, sl.highest)
    assert journal.sessions()[A] == SessionPosition(10, 7, journal.sessions()[A].updated_ns, 12)
    stored = journal.ledger_rows(A, 7)
    assert [(r.begin, r.end, r.state) for r in stored] == [
        (1, 3, State.JOURNALED),
        (4, 4, State.ADMIN),
        (5, 9, State.GAP_FILLED),
        (10, 10, State.JOURNALED),
        (12, 12, State.ADMIN),
    ]
    again = Ledger(journal.max_ledger_id() + 1).open(A, 7, stored)
    assert again.position == 10 and again.holes() == [(11, 11)]
    assert journal.epochs(A) == [7]
    assert journal.ledger_rows(A, 8) == []


def test_growing_ranges_keep_their_row(journal: Journal) -> None:
    ledger = Ledger(1)
    sl = ledger.open(A, 0)
    for seq in range(1, 101):
        sl.account(seq, seq, State.JOURNALED, seq)
        with journal.transaction() as tx:
            tx.ledger(sl.take_rows())
    stored = journal.ledger_rows(A, 0)
    assert [(r.begin, r.end) for r in stored] == [(1, 100)]  # one row, extended in place


def test_lost_notice_rows_are_kept_out_of_replays(journal: Journal) -> None:
    raw = lost_notice_raw(A, 7, 5, 9, "refused", 123, b"8=FIX.4.2\x01")
    with journal.transaction() as tx:
        tx.insert(
            [entry(A, 1, "E:1"), JournalEntry(A, 5, 123, raw, LOST, None), entry(A, 10, "E:10")], {A: 7}
        )
    assert [r.seq for r in journal.iter_messages()] == [1, 10]
    assert [r.msg_type for r in journal.iter_messages(notices=True)] == ["8", LOST, "8"]
    assert journal.count() == 2
    assert [r.row_id for r in journal.read_after(1, 10)] == [2, 3]


# ---------------------------------------------------------------------------------------------- cursors
def test_cursors_and_dead_letters(journal: Journal) -> None:
    assert journal.cursor("sink:pg") is None
    with journal.transaction() as tx:
        tx.cursors({"sink:pg": 5, "handler:x": 2})
        tx.dead_letter("handler:x", 3, "Fill", "ValueError: nope")
    with journal.transaction() as tx:
        tx.cursors({"sink:pg": 9})
    assert journal.cursors() == {"sink:pg": 9, "handler:x": 2}
    (dead,) = journal.dead_letters()
    assert (dead.consumer, dead.journal_id, dead.event_type, dead.error) == (
        "handler:x",
        3,
        "Fill",
        "ValueError: nope",
    )
    assert journal.dead_letters("sink:pg") == []


# ---------------------------------------------------------------------------------------------- upgrade
def test_a_version_1_journal_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE messages (id INTEGER PRIMARY KEY, session TEXT NOT NULL, epoch INTEGER NOT NULL,
            seq INTEGER NOT NULL, received_ns INTEGER NOT NULL, msg_type TEXT NOT NULL, dedupe_key TEXT UNIQUE,
            exec_id TEXT, account TEXT, security_id TEXT, trade_date TEXT, poss_dup INTEGER NOT NULL,
            poss_resend INTEGER NOT NULL, raw BLOB NOT NULL);
        CREATE TABLE duplicates (id INTEGER PRIMARY KEY, session TEXT NOT NULL, epoch INTEGER NOT NULL,
            seq INTEGER NOT NULL, received_ns INTEGER NOT NULL, dedupe_key TEXT NOT NULL);
        CREATE TABLE sessions (session TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, epoch INTEGER NOT NULL,
            updated_ns INTEGER NOT NULL) WITHOUT ROWID;
        PRAGMA application_id = 1145260620;
        PRAGMA user_version = 1;
        INSERT INTO messages VALUES (1, 'ABCDEFN:G', 202611, 1, 5, '8', 'E:1', '1', 'A', '1', NULL, 0, 0, x'00');
        INSERT INTO sessions VALUES ('ABCDEFN:G', 42, 202611, 5);
        """
    )
    conn.close()
    with pytest.raises(JournalError, match="open it once with the client"):
        Journal.open_readonly(path)
    with Journal(path) as j:
        assert j.count() == 1 and j.next_id == 2
        (row,) = j.ledger_rows(A, 202611)
        assert (row.begin, row.end, row.state) == (1, 42, State.LEGACY)
        assert j.sessions()[A].highest_seen == 42
    with Journal.open_readonly(path) as j:
        assert j._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# ---------------------------------------------------------------------------------------------- disk full
def test_a_full_journal_fails_cleanly_and_works_again_when_space_is_back(journal: Journal) -> None:
    record(journal, [entry(A, 1, "E:1")])
    journal.set_max_pages(journal.page_count())
    big = [entry(A, n, f"E:{n}")._replace(raw=b"x" * 4000) for n in range(2, 50)]
    with pytest.raises(JournalError, match="full"):
        record(journal, big)
    assert journal.count() == 1 and journal.next_id == 2
    journal.set_max_pages(1_000_000)
    assert record(journal, big) == [True] * len(big)
    assert journal.count() == 1 + len(big)


# ---------------------------------------------------------------------------------------------- replay
def test_iter_messages_in_arrival_order_with_filters(journal: Journal) -> None:
    record(journal, [entry(B, 9, "E:b9", ns=50), entry(A, 2, "E:a2", ns=10, trade_date="20260105")])
    record(journal, [entry(A, 1, "E:a1", ns=30), entry(B, 10, "E:b10", ns=40)])
    rows = list(journal.iter_messages())
    assert [(r.session, r.seq) for r in rows] == [(B, 9), (A, 2), (A, 1), (B, 10)]  # arrival, not seq, order
    assert [r.row_id for r in rows] == sorted(r.row_id for r in rows)
    first = rows[0]
    assert isinstance(first, JournalRow)
    expected = entry(B, 9, "E:b9", ns=50)._asdict()
    assert first == JournalRow(**expected, epoch=0, row_id=first.row_id)
    assert [r.seq for r in journal.iter_messages(session=A)] == [2, 1]
    assert [r.seq for r in journal.iter_messages(since_ns=30)] == [9, 1, 10]
    assert [r.seq for r in journal.iter_messages(since_ns=30, until_ns=50)] == [1, 10]  # until is exclusive
    assert [r.seq for r in journal.iter_messages(trade_date="20260105")] == [2]
    assert [r.seq for r in journal.iter_messages(after_id=2)] == [1, 10]
    assert list(journal.iter_messages(session="NOBODY:G")) == []


def test_iter_messages_pages_through_many_rows_and_stops_where_it_started(journal: Journal) -> None:
    record(journal, [entry(A, n, f"E:{n}") for n in range(1, 2502)])
    seen = []
    for row in journal.iter_messages(session=A):
        seen.append(row.seq)
        if row.seq == 1200:
            record(journal, [entry(A, 9999, "E:late")])  # arrives during the iteration: not included
    assert seen == list(range(1, 2502))


# ---------------------------------------------------------------------------------------------- readers
def test_readonly_reader_while_the_writer_keeps_committing(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as writer:
        record(writer, [entry(A, 1, "E:1")])
        with Journal.open_readonly(path) as reader:
            assert reader.readonly
            assert reader.max_id() == 1
            record(writer, [entry(A, 2, "E:2")])  # the reader does not block the writer (WAL)
            assert reader.max_id() == 2
            assert [r.seq for r in reader.iter_messages()] == [1, 2]
            with pytest.raises(JournalError, match="read-only"), reader.transaction():
                pass
    with Journal.open_readonly(path) as reader:  # after the writer closed (WAL folded back)
        assert reader.count() == 2


def test_readonly_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no such journal"):
        Journal.open_readonly(tmp_path / "missing.db")


def test_closed_journal_refuses_use(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"), j.transaction():
        pass
    with pytest.raises(JournalError, match="closed"):
        j.count()
    assert "closed" in repr(j)


def test_new_journal_is_private(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal(path).close()
    assert path.stat().st_mode & 0o077 == 0


def test_wal_mode_and_pragmas(journal: Journal) -> None:
    conn = sqlite3.connect(journal.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert journal._conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_synchronous_full_and_bad_value(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db", synchronous="FULL") as j:
        assert j._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(ValueError):
        Journal(tmp_path / "k.db", synchronous="OFF")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- schema
def test_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    Journal(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for opener in (Journal, Journal.open_readonly):
        with pytest.raises(
            JournalError, match=rf"version {SCHEMA_VERSION + 1} was written by a newer"
        ) as info:
            opener(path)
        assert isinstance(info.value, DropCopyError)


def test_other_sqlite_files_and_garbage_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(JournalError, match="not a dropcopy_client journal"):
        Journal(other)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some bytes" * 200)
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal(garbage)
    with pytest.raises(JournalError, match="cannot open journal"):
        Journal.open_readonly(garbage)


# ---------------------------------------------------------------------------------------------- kill -9
WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dropcopy_client._journal import Journal, JournalEntry
    from dropcopy_client._recovery import Ledger, State

    path, batch = Path(sys.argv[1]), int(sys.argv[2])
    journal = Journal(path)
    ledger = Ledger(journal.max_ledger_id() + 1)
    names = ("ABCDEFN:G", "ABCDEFN:M")
    for name in names:
        ledger.open(name, 0, journal.ledger_rows(name, 0))
    seq = ledger.session(names[0]).position
    raw = b"x" * 600
    while True:
        entries = []
        for _ in range(batch // 2):
            seq += 1
            for session in names:
                entries.append(JournalEntry(session, seq, time.time_ns(), raw, "8", f"E:{session}:{seq}"))
                ledger.session(session).account(seq, seq, State.JOURNALED, 0)
        with journal.transaction() as tx:
            tx.insert(entries, {})
            tx.ledger(ledger.take_rows())
            for session in names:
                sl = ledger.session(session)
                tx.position(session, 0, sl.position, sl.highest)
        print(seq, flush=True)
    """
)


def test_kill_9_mid_batch_leaves_position_equal_to_durable_messages(tmp_path: Path) -> None:
    """A writer killed with SIGKILL while it commits batches: no partial batch, position == messages."""
    path = tmp_path / "journal.db"
    batch = 500
    reported = 0
    for _ in range(3):  # kill, restart from the journal's position, kill again
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(batch)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        start = reported
        for line in proc.stdout:
            reported = int(line)
            if reported >= start + 20 * batch // 2:
                break
        os.kill(proc.pid, signal.SIGKILL)  # the writer is inside its next record() by now
        proc.wait(timeout=30)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        with Journal.open_readonly(path) as j:
            for session in ("ABCDEFN:G", "ABCDEFN:M"):
                seqs = [row.seq for row in j.iter_messages(session=session)]
                last = j.last_seq(session)
                assert last is not None and last >= reported  # every reported commit survived
                assert seqs == list(range(1, last + 1))  # position == durable messages, no hole
                assert last % (batch // 2) == 0  # whole batches only
                ranges = [(r.begin, r.end) for r in j.ledger_rows(session, 0)]
                assert ranges == [(1, last)]  # the ledger says exactly the same
            assert j._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert last is not None
        reported = last


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_checkpoints_run_off_the_writer_by_default(tmp_path: Path, mode: str) -> None:
    # With inline checkpoints the writer folds the WAL back only every ~40 MB, so after a few MB the main file is
    # still nearly empty; the background thread copies it back within moments, without the writer.
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, checkpoint=mode)  # type: ignore[arg-type]
    try:
        for batch in range(20):
            record(
                journal,
                [
                    entry("S:G", batch * 200 + i, f"E:{batch}:{i}")._replace(raw=b"x" * 2000)
                    for i in range(1, 201)
                ],
            )
        time.sleep(0.5)
        folded = path.stat().st_size
    finally:
        journal.close()
    if mode == "background":
        assert folded > 1_000_000
    else:
        assert folded < 200_000
