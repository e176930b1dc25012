"""Replay: a book rebuilt from the journal or a message log equals the live one, byte for byte, every time."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropcopy_client._decode import decode, wrap_outer
from dropcopy_client._journal import Journal, JournalEntry, dedupe_key_for
from dropcopy_client._wire import encode
from dropcopy_client.cli import main
from dropcopy_client.positions import PositionBook, is_journal, iter_log_messages, replay_journal, replay_log
from dropcopy_client.testing import (
    BUY,
    DEMO_NET_POSITIONS,
    ESZ6,
    ZNH7,
    ManualClock,
    ScriptedSession,
    demo_script,
)

# the module, not the `positions` command that dropcopy_client.cli re-exports under the same name
cli_positions = importlib.import_module("dropcopy_client.cli.positions")
T0 = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)
US = "ABCDEFN"


def outer_messages(inners: list[bytes], *, first_seq: int = 2) -> list[bytes]:
    return [
        wrap_outer(
            inner, seq_num=first_seq + i, target=US, segment="G", sending_time=T0 + dt.timedelta(seconds=i)
        )
        for i, inner in enumerate(inners)
    ]


def admin(
    msg_type: str, seq: int, *, sender: str, target: str, extra: Sequence[tuple[int, str | int]] = ()
) -> bytes:
    return encode(msg_type, [(34, seq), (49, sender), (52, "20261120-14:30:00.000"), (56, target), *extra])


def quickfix_log(outers: list[bytes]) -> bytes:
    """A QuickFIX FileLog ``messages`` file: our logon, CME's, the business messages, heartbeats both ways,
    and an outgoing application message that must not count."""
    lines = [
        admin("A", 1, sender=US, target="CME", extra=[(98, 0), (108, 30)]),
        admin("A", 1, sender="CME", target=US, extra=[(98, 0), (108, 30)]),
        *outers[:3],
        admin("0", 2, sender=US, target="CME"),
        admin("0", len(outers) + 2, sender="CME", target=US),
        *outers[3:],
        # an outgoing business-looking message (we never send these, but a log of another engine might)
        encode("8", [(34, 3), (49, US), (52, "20261120-14:30:00.000"), (56, "CME"), (17, "X"), (39, "2")]),
    ]
    stamp = b"20261120-14:30:00.123456789 : "
    return b"".join(stamp + line + b"\n" for line in lines) + b"20261120-14:30:09.000000000 : Logout\n"


def record(path: Path, outers: list[bytes]) -> None:
    with Journal(path) as journal:
        entries = []
        for i, raw in enumerate(outers):
            [event] = decode(raw)
            exec_id = getattr(event, "exec_id", None)
            entries.append(
                JournalEntry(
                    session=f"{US}:G",
                    seq=i + 2,
                    received_ns=1_790_000_000_000_000_000 + i,
                    raw=raw,
                    msg_type="8",
                    dedupe_key=dedupe_key_for(exec_id, "ABCDEFN:G", "M2L000N", i, str(i), "8"),
                    exec_id=exec_id,
                )
            )
        journal.record(entries)


def as_bytes(book: PositionBook) -> bytes:
    return json.dumps(
        {
            "positions": [p.to_dict() for p in book.snapshot()],
            "exceptions": [e.to_dict() for e in book.exceptions],
            "orders": [w.to_dict() for w in book.working_orders()],
        },
        sort_keys=True,
    ).encode()


@pytest.fixture
def demo() -> list[bytes]:
    return outer_messages(demo_script(T0))


def live_book(outers: list[bytes]) -> PositionBook:
    book = PositionBook()
    for raw in outers:
        book.apply_all(decode(raw))
    return book


def nets(book: PositionBook) -> dict[tuple[str, str], int]:
    return {(p.account, p.instrument): p.net_qty for p in book.snapshot() if p.net_qty}


def test_replay_log_reads_a_quickfix_message_log(tmp_path: Path, demo: list[bytes]) -> None:
    path = tmp_path / "FIX.4.2-ABCDEFN-CME-G.messages.current.log"
    path.write_bytes(quickfix_log(demo))
    found = list(iter_log_messages(path))
    assert [raw for raw, _ in found] == demo  # admin, outgoing and non-FIX lines skipped
    assert found[0][1] == dt.datetime(2026, 11, 20, 14, 30, 0, 123456, tzinfo=dt.UTC)
    book = replay_log(path)
    assert nets(book) == DEMO_NET_POSITIONS
    assert as_bytes(book) == as_bytes(live_book(demo))


def test_replay_log_reads_pipe_delimited_and_bare_lines(tmp_path: Path, demo: list[bytes]) -> None:
    pipes = tmp_path / "pipes.txt"
    pipes.write_bytes(quickfix_log(demo).replace(b"\x01", b"|"))
    inners = tmp_path / "inners.txt"  # bare inner messages, one per line, no timestamp, no trailing SOH
    inners.write_bytes(b"\r\n".join(m[:-1] for m in demo_script(T0)) + b"\r\n")
    assert as_bytes(replay_log(pipes)) == as_bytes(live_book(demo))
    assert nets(replay_log(inners)) == DEMO_NET_POSITIONS


def test_replay_log_makes_undecodable_lines_exceptions(tmp_path: Path, demo: list[bytes]) -> None:
    corrupt = demo[1].replace(b"ESZ6", b"ESZ7", 1)  # checksum no longer matches
    path = tmp_path / "bad.log"
    path.write_bytes(b"\n".join([demo[0], corrupt, *demo[2:]]) + b"\n")
    book = replay_log(path)
    assert [e.kind for e in book.exceptions] == ["undecodable message"]
    assert "checksum" in book.exceptions[0].reason.lower()


def test_same_input_same_book_byte_for_byte(tmp_path: Path, demo: list[bytes]) -> None:
    log = tmp_path / "demo.log"
    log.write_bytes(quickfix_log(demo))
    journal = tmp_path / "journal.sqlite"
    record(journal, demo)
    first, second = as_bytes(replay_log(log)), as_bytes(replay_log(log))
    assert first == second
    assert as_bytes(replay_journal(journal)) == as_bytes(replay_journal(journal)) == first
    for by_date in (False, True):
        a = json.dumps([p.to_dict() for p in replay_journal(journal, by_trade_date=by_date).snapshot()])
        b = json.dumps([p.to_dict() for p in replay_log(log, by_trade_date=by_date).snapshot()])
        assert a == b


def test_replay_journal_while_a_writer_is_open_and_reports_progress(
    tmp_path: Path, demo: list[bytes]
) -> None:
    path = tmp_path / "journal.sqlite"
    record(path, demo[:5])
    calls: list[tuple[int, int]] = []
    with Journal(path) as writer:  # a running client keeps the journal open
        writer.record([])
        book = replay_journal(path, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)
    (tmp_path / "x.log").write_bytes(b"8=FIX.4.2")
    assert is_journal(path) and not is_journal(tmp_path / "x.log")
    assert [(p.instrument, p.net_qty) for p in book.snapshot()] == [("ESZ6", 10), ("ZNH7", -5)]


def test_replay_journal_for_one_trade_date(tmp_path: Path) -> None:
    day1 = ScriptedSession(clock=ManualClock(T0), trade_date="20261119")
    day2 = ScriptedSession(clock=ManualClock(T0), trade_date="20261120", exec_id_prefix=5)
    old = day1.order(ESZ6, account="A", side=BUY, qty=2, price="4500")
    new = day2.order(ZNH7, account="A", side=BUY, qty=3, price="110")
    path = tmp_path / "journal.sqlite"
    record(path, outer_messages([old.fill(), new.fill(), old.bust()]))
    book = replay_journal(path, trade_date=dt.date(2026, 11, 20))
    assert [(p.instrument, p.trade_date, p.net_qty) for p in book.snapshot()] == [
        ("ZNH7", dt.date(2026, 11, 20), 3)
    ]
    assert book.exceptions == ()
    everything = replay_journal(path, by_trade_date=True)
    assert [(p.instrument, p.net_qty, p.busts) for p in everything.snapshot()] == [
        ("ZNH7", 3, 0),
        ("ESZ6", 0, 1),
    ]


def test_cli_replay_prints_the_book_and_shows_progress_on_large_inputs(
    tmp_path: Path, demo: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "demo.log"
    log.write_bytes(quickfix_log(demo))
    runner = CliRunner()
    table = runner.invoke(main, ["replay", str(log)])
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == [
        "Account",
        "Instrument",
        "SecurityID",
        "Bought",
        "Sold",
        "Net",
        "Avg",
        "open",
        "Realized",
        "Fills",
        "Busts",
        "Corr",
    ]
    assert table.stdout.endswith("\n\nExceptions: none\n")
    assert table.stderr == ""  # small input: no progress bar

    monkeypatch.setattr(cli_positions, "PROGRESS_THRESHOLD", 3)
    as_json = runner.invoke(main, ["replay", str(log), "--json", "--by-date"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert {(r["account"], r["instrument"]): r["net_qty"] for r in rows if r["net_qty"]} == DEMO_NET_POSITIONS
    assert all(r["trade_date"] == "2026-11-20" for r in rows)
    assert Decimal(rows[0]["avg_open_px"]) == Decimal("4500.1")
    assert "replaying" in as_json.stderr

    as_csv = runner.invoke(main, ["replay", str(log), "--csv"])
    assert as_csv.stdout.splitlines()[0].startswith("account,instrument,security_id,")
    assert len(as_csv.stdout.splitlines()) == 1 + len(rows)

    missing = runner.invoke(main, ["replay", str(tmp_path / "nope.log")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
