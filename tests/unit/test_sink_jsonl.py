"""JsonLinesSink: one event_to_dict object per line, a file per trading date, fsync per batch, 0600 files,
torn last lines cut off on open. Real files in tmp_path; os.fsync is observed (called through), not faked."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from dropcopy_client import SinkError
from dropcopy_client._recovery import UnrecoverableGap
from dropcopy_client._serialize import event_to_dict
from dropcopy_client.sinks import Batch, Sink, TransactionalSink
from dropcopy_client.sinks.jsonl import JsonLinesSink, file_date
from dropcopy_client.testing import BUY, ESZ6, SELL, ZNH7, JournalStream, ScriptedSession, batches

DEC1 = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_bytes()
    assert text.endswith(b"\n")
    return [json.loads(line) for line in text.splitlines()]


def mixed_stream(start: dt.datetime = DEC1) -> list[object]:
    """Acks, fills (trade date 2026-12-02), a bust, a mass action report and a MessageError."""
    src = ScriptedSession(trade_date="20261202")
    stream = JournalStream(start=start)
    buy = src.order(ESZ6, account="ACCT1", side=BUY, qty=3, price="4500.25")
    sell = src.order(ZNH7, account="ACCT2", side=SELL, qty=1, price="110.15625")
    events: list[object] = stream.events(
        [buy.ack(), buy.fill(1), buy.fill(), sell.ack(), sell.fill(), sell.bust(), src.mass_action([])]
    )
    events.append(stream.undecodable())
    return events


def test_is_a_sink_but_not_transactional(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path)
    assert isinstance(sink, Sink) and not isinstance(sink, TransactionalSink)
    assert sink.name == "jsonl" and "jsonl" in repr(sink)


def test_round_trip_one_line_per_event_in_journal_order(tmp_path: Path) -> None:
    events = mixed_stream()
    sink = JsonLinesSink(tmp_path / "out", name="archive", prefix="clearing")
    for batch in batches(events, 3):
        sink.write(batch)
    sink.close()
    by_file = {p.name: lines(p) for p in sorted((tmp_path / "out").iterdir())}
    assert sorted(by_file) == ["clearing-2026-12-01.jsonl", "clearing-2026-12-02.jsonl"]
    written = [row for rows in by_file.values() for row in rows]
    assert sorted(written, key=lambda r: r["journal_id"]) == [
        json.loads(json.dumps(event_to_dict(e))) for e in events
    ]
    for rows in by_file.values():
        assert [r["journal_id"] for r in rows] == sorted(r["journal_id"] for r in rows)


def test_files_by_trade_date_else_received_date_else_notice_time(tmp_path: Path) -> None:
    events = mixed_stream(start=dt.datetime(2026, 12, 1, 23, 59, 59, 999000, tzinfo=dt.UTC))
    gap = UnrecoverableGap(
        "XYZDEFN:84", 5, 9, "older than 48 hours", dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC), journal_id=8
    )
    days = {
        type(e).__name__ + str(getattr(e, "journal_id", None) or ""): file_date(e) for e in [*events, gap]
    }
    assert days["OrderAck1"] == dt.date(2026, 12, 1)  # received 23:59:59.999 UTC on Dec 1
    assert days["OrderAck4"] == dt.date(2026, 12, 2)  # received 3 ms later: Dec 2
    assert days["Fill2"] == days["Fill3"] == days["Fill5"] == days["TradeBust6"] == dt.date(2026, 12, 2)
    assert days["UnrecoverableGap8"] == dt.date(2026, 11, 30)
    assert file_date(object()) == dt.datetime.now(dt.UTC).date()
    sink = JsonLinesSink(tmp_path)
    sink.write(Batch((*events, gap), first_id=1, last_id=8))
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dropcopy-2026-11-30.jsonl",
        "dropcopy-2026-12-01.jsonl",
        "dropcopy-2026-12-02.jsonl",
    ]
    (notice,) = lines(tmp_path / "dropcopy-2026-11-30.jsonl")
    assert notice["type"] == "UnrecoverableGap" and notice["begin"] == 5


def test_a_replay_over_many_dates_rotates_through_more_files_than_it_keeps_open(tmp_path: Path) -> None:
    events: list[object] = []
    stream = JournalStream(start=DEC1)
    for day in range(1, 10):
        src = ScriptedSession(trade_date=f"202612{day:02d}", exec_id_prefix=day)
        events += stream.events([src.order(ESZ6, side=BUY, qty=1, price="1").fill()])
    sink = JsonLinesSink(tmp_path)
    for batch in batches(events * 2, 4):  # each date twice, far apart: files reopened in append mode
        sink.write(batch)
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 9
    assert all(len(lines(p)) == 2 for p in files)


def test_each_batch_is_fsynced_before_write_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def observed(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", observed)
    sink = JsonLinesSink(tmp_path)
    first, second = batches(mixed_stream(), 4)
    sink.write(first)
    files_of_first = {
        str(tmp_path / "dropcopy-2026-12-01.jsonl"),
        str(tmp_path / "dropcopy-2026-12-02.jsonl"),
    }
    assert files_of_first <= set(synced)
    synced.clear()
    sink.write(second)
    assert str(tmp_path / "dropcopy-2026-12-02.jsonl") in synced
    sink.close()


def test_files_are_created_0600_and_a_new_directory_0700(tmp_path: Path) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        sink = JsonLinesSink(tmp_path / "new")
        sink.write(batches(mixed_stream(), 10)[0])
        sink.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "new").iterdir()}
    assert modes and set(modes.values()) == {0o600}


def test_a_torn_last_line_is_cut_off_on_open_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = mixed_stream()
    first, rest = events[:3], events[3:]
    sink = JsonLinesSink(tmp_path)
    sink.write(Batch(tuple(first), first_id=1, last_id=3))
    sink.close()
    path = tmp_path / "dropcopy-2026-12-02.jsonl"
    whole = path.read_bytes()
    torn = json.dumps(event_to_dict(events[3])).encode()[:57]
    path.write_bytes(whole + torn)  # what a crash in the middle of the next write leaves

    caplog.set_level(logging.WARNING, logger="dropcopy_client.sinks.jsonl")
    sink = JsonLinesSink(tmp_path)
    sink.write(Batch(tuple(rest), first_id=4, last_id=8))  # the re-offered batch
    sink.close()
    assert any(str(path) in r.getMessage() and "57 bytes" in r.getMessage() for r in caplog.records)
    rows = lines(path)
    assert path.read_bytes().startswith(whole)
    ids = [r["journal_id"] for r in rows]
    assert ids == sorted(set(ids))  # every line parses; nothing of the torn line is left


def test_a_file_with_only_a_torn_line_is_emptied(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "dropcopy-2026-12-02.jsonl"
    path.write_bytes(b'{"type":"Fill","journal_id":1,"acc')
    sink = JsonLinesSink(tmp_path)
    (fill,) = [e for e in mixed_stream() if type(e).__name__ == "Fill"][:1]
    sink.write(Batch((fill,), first_id=2, last_id=2))
    sink.close()
    assert [r["journal_id"] for r in lines(path)] == [2]
    assert "incomplete line" in caplog.text


def test_a_complete_file_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sink = JsonLinesSink(tmp_path)
    sink.write(batches(mixed_stream(), 10)[0])
    sink.close()
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    JsonLinesSink(tmp_path).write(Batch((), first_id=9, last_id=9))
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert "incomplete" not in caplog.text


def test_fix_message_option_keeps_the_inner_message(tmp_path: Path) -> None:
    events = mixed_stream()
    sink = JsonLinesSink(tmp_path, fix_message=True)
    sink.write(Batch(tuple(events[:1]), first_id=1, last_id=1))
    sink.close()
    (row,) = lines(tmp_path / "dropcopy-2026-12-01.jsonl")
    assert row["fix_message"].encode("ascii") == events[0].inner  # type: ignore[attr-defined]


def test_errors_name_the_file_and_say_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "dropcopy-2026-12-01.jsonl").mkdir()  # the file's name is taken by a directory
    sink = JsonLinesSink(tmp_path)
    with pytest.raises(SinkError) as info:
        sink.write(batches(mixed_stream(), 1)[0])
    assert "dropcopy-2026-12-01.jsonl" in str(info.value) and "offered again" in str(info.value)
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.write(Batch((), first_id=1, last_id=1))
    blocked = tmp_path / "file"
    blocked.write_text("x")
    with pytest.raises(SinkError, match="cannot create directory"):
        JsonLinesSink(blocked / "sub")
    with pytest.raises(ValueError, match="prefix"):
        JsonLinesSink(tmp_path, prefix="../escape")
