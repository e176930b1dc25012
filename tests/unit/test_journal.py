"""The durable journal: dedupe, positions, epochs, replay order, WAL readers, schema checks, kill -9."""

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

import attrs
import pytest

from dropcopy_client._journal import (
    SCHEMA_VERSION,
    Journal,
    JournalEntry,
    JournalError,
    JournalRow,
    SessionPosition,
    dedupe_key_for,
)
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


# ---------------------------------------------------------------------------------------------- dedupe
def test_dedupe_key_rule() -> None:
    assert dedupe_key_for("6270:123TN1", "ABC", 9, "20260106-14:00:00.000", "8") == "E:6270:123TN1"
    assert dedupe_key_for(None, "ABC", 9, "20260106-14:00:00.000", "BZ") == "S:ABC|9|20260106-14:00:00.000"
    assert dedupe_key_for("", "ABC", 9, "20260106-14:00:00.000", "8") == "S:ABC|9|20260106-14:00:00.000"
    assert dedupe_key_for(None, "ABC", None, "20260106-14:00:00.000", "8") is None
    assert dedupe_key_for(None, None, None, None, "8") is None
    assert dedupe_key_for("6270:123TN1", "ABC", 9, "t", "?") is None  # undecodable: never a duplicate


def test_record_reports_new_and_duplicate_across_batches_and_sessions(journal: Journal) -> None:
    assert journal.record([entry(A, 1, "E:1"), entry(A, 2, "E:2")]) == [True, True]
    # a resend of 2 on A, a 97=Y replay of 1 on a new number, the same fill seen by another group (B)
    assert journal.record(
        [entry(A, 3, "E:2"), entry(A, 4, "E:1"), entry(B, 1, "E:1"), entry(B, 2, "E:3")]
    ) == [
        False,
        False,
        False,
        True,
    ]
    assert journal.count() == 3
    assert journal.duplicates() == 3
    assert journal.last_seq(A) == 4  # duplicates were processed too: the position covers them
    assert journal.last_seq(B) == 2
    audit = sqlite3.connect(journal.path).execute(
        "SELECT session, seq, dedupe_key FROM duplicates ORDER BY id"
    )
    assert audit.fetchall() == [(A, 3, "E:2"), (A, 4, "E:1"), (B, 1, "E:1")]


def test_first_of_equal_keys_in_one_batch_wins(journal: Journal) -> None:
    assert journal.record([entry(A, 1, "E:9"), entry(A, 2, "E:9"), entry(A, 3, "E:8")]) == [True, False, True]
    assert [row.seq for row in journal.iter_messages()] == [1, 3]


def test_no_key_is_never_a_duplicate(journal: Journal) -> None:
    assert journal.record([entry(A, 1, None, msg_type="?"), entry(A, 2, None, msg_type="?")]) == [True, True]
    assert journal.record([entry(A, 3, None)]) == [True]
    assert journal.count() == 3 and journal.duplicates() == 0


def test_empty_batch(journal: Journal) -> None:
    assert journal.record([]) == []
    assert journal.sessions() == {}


# ---------------------------------------------------------------------------------------------- position
def test_position_advances_only_with_durable_records(journal: Journal) -> None:
    assert journal.last_seq(A) is None
    journal.record([entry(A, 5, "E:5"), entry(A, 7, "E:7"), entry(A, 6, "E:6")])
    assert journal.last_seq(A) == 7  # the highest of the batch
    journal.record([entry(A, 3, "E:3")])
    assert journal.last_seq(A) == 7  # never backwards within an epoch
    bad = JournalEntry(A, 8, 0, None, "8", "E:8")  # type: ignore[arg-type]  # raw NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        journal.record([entry(A, 9, "E:9"), bad])
    assert journal.last_seq(A) == 7  # the failed batch left nothing behind, position included
    assert journal.count() == 4
    assert journal.record([entry(A, 9, "E:9")]) == [True]  # its messages were not journaled
    assert journal.last_seq(A) == 9


def test_mark_processed_advances_without_a_message(journal: Journal) -> None:
    journal.record([entry(A, 1, "E:1")])
    journal.mark_processed(A, 4)  # admin messages 2..4
    assert journal.last_seq(A) == 4
    journal.mark_processed(A, 2)
    assert journal.last_seq(A) == 4
    journal.mark_processed(B, 10)  # a session with no business message yet
    assert journal.last_seq(B) == 10
    assert journal.count() == 1


def test_sessions_lists_every_position(journal: Journal) -> None:
    journal.record([entry(A, 3, "E:3"), entry(B, 8, "E:8")])
    positions = journal.sessions()
    assert set(positions) == {A, B}
    assert isinstance(positions[A], SessionPosition)
    assert (positions[A].last_seq, positions[A].epoch) == (3, 0)
    assert positions[B].last_seq == 8 and positions[B].updated_ns > 0


def test_epochs_restart_the_numbers_and_keep_the_messages(journal: Journal) -> None:
    journal.record([entry(A, 1, "E:1"), entry(A, 2, "E:2"), entry(B, 5, "E:5")])
    journal.start_epoch(A, 202602)
    assert journal.last_seq(A) == 0
    assert journal.sessions()[A].epoch == 202602
    assert journal.last_seq(B) == 5  # other sessions untouched
    journal.record([entry(A, 1, "E:101")])
    assert journal.last_seq(A) == 1
    journal.start_epoch(A, 202602)  # idempotent: a restart repeating the week start keeps the position
    assert journal.last_seq(A) == 1
    with pytest.raises(ValueError, match="older"):
        journal.start_epoch(A, 202601)
    with pytest.raises(ValueError, match="older"):
        journal.mark_processed(A, 9, epoch=202601)
    journal.mark_processed(A, 3, epoch=202603)  # a newer epoch starts at that number
    assert (journal.last_seq(A), journal.sessions()[A].epoch) == (3, 202603)
    assert [(r.seq, r.epoch) for r in journal.iter_messages(session=A)] == [(1, 0), (2, 0), (1, 202602)]


def test_epoch_zero_is_known_after_the_first_record(journal: Journal) -> None:
    journal.record([entry(A, 4, "E:4")])
    journal.start_epoch(A, 0)  # the current epoch: must not reset the position
    assert journal.last_seq(A) == 4


def test_epochs_survive_reopening(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as j:
        j.start_epoch(A, 7)
        j.record([entry(A, 1, "E:1")])
    with Journal(tmp_path / "j.db") as j:
        j.record([entry(A, 2, "E:2")])
        assert [r.epoch for r in j.iter_messages()] == [7, 7]
        with pytest.raises(ValueError):
            j.start_epoch(A, 6)


# ---------------------------------------------------------------------------------------------- replay
def test_iter_messages_in_arrival_order_with_filters(journal: Journal) -> None:
    journal.record([entry(B, 9, "E:b9", ns=50), entry(A, 2, "E:a2", ns=10, trade_date="20260105")])
    journal.record([entry(A, 1, "E:a1", ns=30), entry(B, 10, "E:b10", ns=40)])
    rows = list(journal.iter_messages())
    assert [(r.session, r.seq) for r in rows] == [(B, 9), (A, 2), (A, 1), (B, 10)]  # arrival, not seq, order
    assert [r.row_id for r in rows] == sorted(r.row_id for r in rows)
    first = rows[0]
    assert isinstance(first, JournalRow) and isinstance(first, JournalEntry)
    expected = attrs.asdict(entry(B, 9, "E:b9", ns=50), recurse=False)
    assert first == JournalRow(**expected, epoch=0, row_id=first.row_id)
    assert [r.seq for r in journal.iter_messages(session=A)] == [2, 1]
    assert [r.seq for r in journal.iter_messages(since_ns=30)] == [9, 1, 10]
    assert [r.seq for r in journal.iter_messages(since_ns=30, until_ns=50)] == [1, 10]  # until is exclusive
    assert [r.seq for r in journal.iter_messages(trade_date="20260105")] == [2]
    assert list(journal.iter_messages(session="NOBODY:G")) == []


def test_iter_messages_pages_through_many_rows_and_stops_where_it_started(journal: Journal) -> None:
    journal.record([entry(A, n, f"E:{n}") for n in range(1, 2502)])
    seen = []
    for row in journal.iter_messages(session=A):
        seen.append(row.seq)
        if row.seq == 1200:
            journal.record([entry(A, 9999, "E:late")])  # arrives during the iteration: not included
    assert seen == list(range(1, 2502))


# ---------------------------------------------------------------------------------------------- readers
def test_readonly_reader_while_the_writer_keeps_committing(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal(path) as writer:
        writer.record([entry(A, 1, "E:1")])
        with Journal.open_readonly(path) as reader:
            assert reader.readonly
            assert reader.last_seq(A) == 1
            writer.record([entry(A, 2, "E:2")])  # the reader does not block the writer (WAL)
            assert reader.last_seq(A) == 2
            assert [r.seq for r in reader.iter_messages()] == [1, 2]
            with pytest.raises(JournalError, match="read-only"):
                reader.record([entry(A, 3, "E:3")])
            with pytest.raises(JournalError, match="read-only"):
                reader.mark_processed(A, 3)
    with Journal.open_readonly(path) as reader:  # after the writer closed (WAL folded back)
        assert reader.count() == 2 and reader.sessions()[A].last_seq == 2


def test_readonly_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no such journal"):
        Journal.open_readonly(tmp_path / "missing.db")


def test_closed_journal_refuses_use(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.record([entry(A, 1, "E:1")])
    with pytest.raises(JournalError, match="closed"):
        j.count()
    assert "closed" in repr(j)


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
        with pytest.raises(JournalError, match=r"version 2 was written by a newer dropcopy_client") as info:
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

    path, batch = Path(sys.argv[1]), int(sys.argv[2])
    journal = Journal(path)
    seq = journal.last_seq("ABCDEFN:G") or 0
    raw = b"x" * 600
    while True:
        entries = []
        for _ in range(batch // 2):
            seq += 1
            for session in ("ABCDEFN:G", "ABCDEFN:M"):
                entries.append(JournalEntry(session, seq, time.time_ns(), raw, "8", f"E:{session}:{seq}"))
        journal.record(entries)
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
            journal.record(
                [
                    attrs.evolve(entry("S:G", batch * 200 + i, f"E:{batch}:{i}"), raw=b"x" * 2000)
                    for i in range(1, 201)
                ]
            )
        time.sleep(0.5)
        folded = path.stat().st_size
    finally:
        journal.close()
    if mode == "background":
        assert folded > 1_000_000
    else:
        assert folded < 200_000
