"""The live client's position book keeps its fill history in the journal's file ([positions] history):
memory does not grow with the fills, and a restart rebuilds the book from those rows without decoding a message.
Real engine, real TCP, the simulator's trading day (fills, a bust, a correction, spreads)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dropcopy_client import DropCopyClient
from dropcopy_client.config import PositionsConfig
from dropcopy_client.positions import MemoryFillHistory, SqliteFillHistory, replay_journal
from dropcopy_client.testing import ESZ6, SELL, ScriptedSession, Simulator
from tests.integration.conftest import SESSION
from tests.integration.test_cli_positions import trading_day

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def book_of(positions: list[Any]) -> list[dict[str, Any]]:
    return sorted((p.to_dict() for p in positions), key=lambda d: (d["account"], d["security_id"]))


def feed(client: DropCopyClient, sim: Simulator, msgs: list[bytes]) -> None:
    def seen() -> int:
        status = client.status()[0]
        return status.messages + status.duplicates

    before = seen()
    sim.send_many(SESSION, msgs)
    assert sim.wait_for(lambda: seen() >= before + len(msgs), 20), client.status()


def test_the_book_is_rebuilt_from_its_own_rows_after_a_restart(
    make_client: Callable[..., DropCopyClient], sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    msgs, _ = trading_day()
    first = make_client()
    first.start(wait=15)
    feed(first, sim, msgs)
    live = book_of(first.book.snapshot())
    first.stop()
    assert isinstance(first.book.history, SqliteFillHistory)
    path = first.config.data_dir / "journal.sqlite"
    history = SqliteFillHistory.open_readonly(path)
    try:
        assert history.count() >= len(msgs)  # every event of the day is a row
        assert history.last_journal_id > 0
    finally:
        history.close()

    caplog.set_level(logging.INFO, logger="dropcopy_client")
    second = make_client()
    second.start(wait=15)
    try:
        rebuilt = [r.getMessage() for r in caplog.records if "position book rebuilt" in r.getMessage()]
        assert len(rebuilt) == 1 and ", 0 journaled messages decoded" in rebuilt[0], rebuilt
        assert book_of(second.book.snapshot()) == live
        # and it goes on from there: the same day again is all duplicates, new fills add to the loaded book
        more, _ = trading_day()
        src = ScriptedSession(exec_id_prefix=99123)
        fresh = [src.order(ESZ6, account="ACCT1", side=SELL, qty=2, price="4501").fill(2) for _ in range(5)]
        feed(second, sim, more + fresh)
        assert book_of(second.book.snapshot()) != live
        assert book_of(second.book.snapshot()) == book_of(replay_journal(path, fast=False).snapshot())
    finally:
        second.stop()
    assert book_of(replay_journal(path).snapshot()) == book_of(replay_journal(path, fast=False).snapshot())


def test_rows_the_book_never_wrote_are_decoded_from_the_journal(
    make_client: Callable[..., DropCopyClient], sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The book's rows are written after their batch, in a later journal transaction: a crash before that
    leaves the book behind, and the next start decodes exactly the journal rows after the last one it covers."""
    msgs, _ = trading_day()
    first = make_client()
    first.start(wait=15)
    half = len(msgs) // 2
    feed(first, sim, msgs[:half])
    history = first.book.history
    assert isinstance(history, SqliteFillHistory)
    assert sim.wait_for(lambda: history.unflushed == 0, 5)  # the writer flushes what waits every 0.2 s
    assert first._ingest is not None
    first._ingest._flush_book = lambda **_: None  # type: ignore[method-assign]  # as if every flush was lost
    first.book.flush = lambda: None  # type: ignore[method-assign]
    first.book._write_rows_into = lambda conn: (0, 0, 0)  # type: ignore[method-assign]
    feed(first, sim, msgs[half:])
    live = book_of(first.book.snapshot())
    first.stop()

    caplog.set_level(logging.INFO, logger="dropcopy_client")
    second = make_client()
    second.start(wait=15)
    try:
        rebuilt = [r.getMessage() for r in caplog.records if "position book rebuilt" in r.getMessage()]
        assert len(rebuilt) == 1, rebuilt
        decoded = int(rebuilt[0].split(" rows of its own, ")[1].split()[0])
        assert decoded == len(msgs) - half, rebuilt[0]
        assert book_of(second.book.snapshot()) == live
    finally:
        second.stop()


def test_history_memory_keeps_every_fill_in_ram_and_writes_no_book_rows(
    tmp_path: Path, sim: Simulator, key_file: Path
) -> None:
    from tests.integration.conftest import config_for

    config = config_for(sim, key_file, tmp_path / "data", positions=PositionsConfig(history="memory"))
    client = DropCopyClient(config)
    msgs, _ = trading_day()
    client.start(wait=15)
    try:
        feed(client, sim, msgs)
        assert isinstance(client.book.history, MemoryFillHistory)
        live = book_of(client.book.snapshot())
    finally:
        client.stop()
    path = config.data_dir / "journal.sqlite"
    assert book_of(replay_journal(path).snapshot()) == live  # no book tables: decoded
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    assert not any(t.startswith("book_") for t in tables), tables


def test_a_book_passed_in_with_its_own_history_is_loaded_and_fed_only_what_it_lacks(
    make_client: Callable[..., DropCopyClient],
    sim: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dropcopy_client.positions import PositionBook

    msgs, _ = trading_day()
    path = tmp_path / "my-book.sqlite"
    first = make_client(book=PositionBook(SqliteFillHistory(path)))
    first.start(wait=15)
    feed(first, sim, msgs)
    live = book_of(first.book.snapshot())
    first.stop()

    caplog.set_level(logging.INFO, logger="dropcopy_client")
    second = make_client(book=PositionBook(SqliteFillHistory(path)))
    second.start(wait=15)
    try:
        rebuilt = [r.getMessage() for r in caplog.records if "position book rebuilt" in r.getMessage()]
        assert len(rebuilt) == 1 and ", 0 journaled messages decoded" in rebuilt[0], rebuilt
        assert book_of(second.book.snapshot()) == live
    finally:
        second.stop()
