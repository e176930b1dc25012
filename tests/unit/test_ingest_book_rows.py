"""The writer puts the book's rows into its journal transactions when the book's history is the journal's file.

What must hold: the rows on disk always agree with the journal id written beside them (a restart loads them and
decodes the journal rows after that id); nothing is written by a transaction that fails (the rows stay recorded
and go with a later one); once the writer is idle everything applied is on disk, and a book loaded from the
file is the live book.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bench._stream import Stream
from bench.breakdown import _NullEngine
from dropcopy_client._engine import APP
from dropcopy_client._ingest import BOOK_FLUSH_ROWS, Ingest
from dropcopy_client._journal import Journal
from dropcopy_client._recovery import State
from dropcopy_client.positions import PositionBook, SqliteFillHistory

NAME = "ABCDEFN:G"


def records(count: int) -> list[tuple[Any, ...]]:
    stream = Stream()
    ns = time.time_ns()
    return [
        (APP, 0, i + 2, ns + i, f.decode("utf-8", "surrogateescape"))
        for i, f in enumerate(stream.frames(len(stream), count))
    ]


def on_disk(path: Path) -> tuple[int, int, int]:
    """(book rows, their highest id, the journal id written beside them) as another reader sees them."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows, top = conn.execute("SELECT count(*), ifnull(max(id), 0) FROM book_rows").fetchone()
        marker = conn.execute("SELECT value FROM book_meta WHERE key = 'last_journal_id'").fetchone()
        return int(rows), int(top), int(marker[0]) if marker else 0
    finally:
        conn.close()


def snapshot(book: PositionBook) -> str:
    return json.dumps([p.to_dict() for p in book.snapshot()], sort_keys=True)


def writer(path: Path) -> tuple[Ingest, Journal, PositionBook]:
    journal = Journal(path)
    book = PositionBook(SqliteFillHistory(path, autocheckpoint=False))
    ingest = Ingest.standalone(journal, {NAME: "bench"}, _NullEngine(), book=book)
    ingest.ledger.session(NAME).account(1, 1, State.ADMIN, time.time_ns())  # the Logon answer
    return ingest, journal, book


@pytest.mark.parametrize("batch", [1, 7, 100])
def test_the_rows_on_disk_always_match_their_journal_id_and_all_are_there_once_idle(
    tmp_path: Path, batch: int
) -> None:
    path = tmp_path / "journal.sqlite"
    ingest, journal, book = writer(path)
    assert ingest._book_in_journal()
    recs = records(600)
    seen_markers = []
    for start in range(0, len(recs), batch):
        ingest.process(recs[start : start + batch])
        rows, top, marker = on_disk(path)
        # every event up to the marker has its row on disk, none after it: a restart decodes from there
        assert top <= marker <= journal.max_id()
        assert book.history.unflushed < BOOK_FLUSH_ROWS + batch
        seen_markers.append(marker)
    assert seen_markers[-1] > 0, "rows went to disk with the journal's transactions while the batches came"
    ingest._idle()
    rows, top, marker = on_disk(path)
    assert top == marker == journal.max_id() == book.last_journal_id
    assert rows == len(recs)  # the stream's messages are all fills and acknowledgements: a row each
    assert book.history.unflushed == 0 and book.unflushed == 0
    live = snapshot(book)
    book.history.close()
    journal.close()
    loaded = PositionBook(SqliteFillHistory.open_readonly(path))
    assert loaded.load() == marker
    assert snapshot(loaded) == live
    loaded.history.close()


def test_a_journal_transaction_that_fails_writes_no_rows_and_a_later_one_does(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    ingest, journal, book = writer(path)
    recs = records(400)
    ingest.process(recs[:200])
    ingest.process(recs[200:201])  # the first batch's rows go with this one
    before = on_disk(path)
    assert before[2] > 0
    ingest.process(recs[201:300])
    waiting = book.history.unflushed
    assert waiting >= BOOK_FLUSH_ROWS

    # the next transaction fails: the file may not grow, and this batch needs new pages
    journal.set_max_pages(journal.page_count())
    ingest.process(recs[300:400])
    assert ingest.degraded is not None
    assert on_disk(path) == before, "a failed transaction wrote book rows"
    assert book.history.unflushed == waiting, "the rows of the failed transaction were dropped"

    journal.set_max_pages(1_073_741_823)
    ingest.degraded = None
    ingest.process([])
    rows, top, marker = on_disk(path)
    assert top == marker == book.last_journal_id == journal.max_id()
    assert rows == 300  # the 100 of the failed batch are asked for again, never journaled
    assert book.history.unflushed == 0
    book.history.close()
    journal.close()


def test_a_history_in_a_file_of_its_own_still_commits_on_its_own(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    book = PositionBook(SqliteFillHistory(tmp_path / "book.sqlite"))
    ingest = Ingest.standalone(journal, {NAME: "bench"}, _NullEngine(), book=book)
    ingest.ledger.session(NAME).account(1, 1, State.ADMIN, time.time_ns())
    assert not ingest._book_in_journal()
    ingest.process(records(300))
    rows, top, marker = on_disk(tmp_path / "book.sqlite")
    assert rows == 300 and top == marker == journal.max_id()
    book.history.close()
    journal.close()
