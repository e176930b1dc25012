"""Replay from the book's own tables in the journal (no decoding) gives the book that decoding every message gives.

The journal here is written the way the client writes it: per batch, the journal records the messages, then
the book (its :class:`SqliteFillHistory` on the same file, its own connection) applies them with their
journal ids and flushes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropcopy_client._decode import decode, wrap_outer
from dropcopy_client._journal import Journal, JournalEntry, dedupe_key_for
from dropcopy_client._messages import Event, MessageError
from dropcopy_client.cli import main
from dropcopy_client.positions import PositionBook, SqliteFillHistory, replay_journal
from dropcopy_client.positions._replay import apply_journal
from dropcopy_client.testing import DEMO_NET_POSITIONS, demo_script
from tests.unit.test_positions_history import DAY1, DAY2, Traffic, dump, traffic

T0 = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)
US = "ABCDEFN"


def entries(outers: list[bytes], first: int = 0) -> list[JournalEntry]:
    out = []
    for i, raw in enumerate(outers, start=first):
        [event] = decode(raw)
        exec_id = getattr(event, "exec_id", None)
        out.append(
            JournalEntry(
                session=f"{US}:G",
                seq=i + 2,
                received_ns=1_790_000_000_000_000_000 + i,
                raw=raw,
                msg_type="8",
                dedupe_key=dedupe_key_for(exec_id, f"{US}:G", "M2L000N", i, str(i), "8"),
                exec_id=exec_id,
            )
        )
    return out


def outers_of(inners: list[bytes]) -> list[bytes]:
    return [
        wrap_outer(m, seq_num=2 + i, target=US, segment="G", sending_time=T0 + dt.timedelta(seconds=i))
        for i, m in enumerate(inners)
    ]


def client_journal(
    path: Path, outers: list[bytes], *, batch: int = 3, book_stops_at: int | None = None
) -> None:
    """Journal ``outers`` in batches as the client does, the book's rows beside them (until ``book_stops_at``
    messages: after that the journal goes on alone, as if the client had crashed between the two commits)."""
    with Journal(path) as journal:
        history = SqliteFillHistory(path, autocheckpoint=False)
        book = PositionBook(history)
        for start in range(0, len(outers), batch):
            journal.record(entries(outers[start : start + batch], start))
            if book_stops_at is None or start + batch <= book_stops_at:
                apply_journal(journal, book)
        history.close()


def test_demo_journal_with_book_tables_replays_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    demo = outers_of(demo_script(T0))
    client_journal(path, demo)
    fast = replay_journal(path)
    slow = replay_journal(path, fast=False)
    assert dump(fast) == dump(slow)
    assert {(p.account, p.instrument): p.net_qty for p in fast.snapshot() if p.net_qty} == DEMO_NET_POSITIONS
    assert fast.last_journal_id == len(demo)


def test_the_messages_the_tables_lack_are_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.sqlite"
    demo = outers_of(demo_script(T0))
    client_journal(path, demo, book_stops_at=9)
    decoded: list[bytes] = []

    def counting(raw: bytes, **kwargs: Any) -> list[Event]:
        decoded.append(raw)
        return decode(raw, **kwargs)

    monkeypatch.setattr("dropcopy_client.positions._replay.decode", counting)
    calls: list[tuple[int, int]] = []
    fast = replay_journal(path, progress=lambda done, total: calls.append((done, total)))
    assert decoded == demo[9:]
    assert calls[0] == (0, len(demo)) and calls[-1] == (len(demo), len(demo))
    monkeypatch.undo()
    assert dump(fast) == dump(replay_journal(path, fast=False))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(t=traffic, batch=st.integers(1, 6), stop=st.integers(0, 40))
def test_both_paths_give_the_same_book_for_any_traffic_and_trade_date(
    t: Traffic, batch: int, stop: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outers = outers_of([e.inner for e in t.events if not isinstance(e, MessageError)])
    path = tmp_path_factory.mktemp("replay") / "journal.sqlite"
    client_journal(path, outers, batch=batch, book_stops_at=stop)
    configs: list[dict[str, Any]] = [{}, {"by_trade_date": True}, {"trade_date": DAY1}, {"trade_date": DAY2}]
    for config in configs:
        fast = replay_journal(path, **config)
        slow = replay_journal(path, fast=False, **config)
        assert dump(fast) == dump(slow), config
        fast.history.close()


def test_cli_replay_and_positions_read_the_book_tables(tmp_path: Path) -> None:
    plain, with_tables = tmp_path / "plain.sqlite", tmp_path / "tables.sqlite"
    demo = outers_of(demo_script(T0))
    with Journal(plain) as journal:
        journal.record(entries(demo))
    client_journal(with_tables, demo)
    runner = CliRunner()
    for args in ([], ["--json"], ["--csv", "--by-date"]):
        a = runner.invoke(main, ["replay", str(plain), *args])
        b = runner.invoke(main, ["replay", str(with_tables), *args])
        assert a.exit_code == b.exit_code == 0, (a.output, b.output)
        assert a.stdout == b.stdout
    rows = json.loads(runner.invoke(main, ["replay", str(with_tables), "--json"]).stdout)
    assert {(r["account"], r["instrument"]): r["net_qty"] for r in rows if r["net_qty"]} == DEMO_NET_POSITIONS
