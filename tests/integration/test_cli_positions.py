"""``dropcopy positions`` / ``eod`` / ``replay`` on the journal of a real client, and the examples as users run them.

The client (real QuickFIX engine) receives fills, a bust, a correction, a spread and a bust of a fill it never saw
from the simulator on 127.0.0.1; the commands then rebuild the book from ``<data_dir>/journal.sqlite`` -- first
while the client still has it open, then after it stopped -- and the output is compared with numbers worked out
by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropcopy_client import DropCopyClient
from dropcopy_client._decode import decode
from dropcopy_client.cli import main
from dropcopy_client.testing import (
    BUY,
    DEMO_NET_POSITIONS,
    ESH7,
    ESZ6,
    ESZ6_ESH7,
    SELL,
    ZNH7,
    ManualClock,
    ScriptedSession,
    Simulator,
    config_toml,
)
from tests.integration.conftest import SESSION, config_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)

EXPECTED_TABLE = """\
Account  Instrument  SecurityID  Bought  Sold  Net  Avg open  Realized  Fills  Busts  Corr
ACCT1    ESZ6        294973          10     4   +6    4500.1      37.6      3      0     1
ACCT2    ZNH7        204527           3     0   +3   110.125         0      1      1     0
ACCT2    ESZ6        294973           2     0   +2    4500.5         0      1      0     0
ACCT2    ESH7        294974           0     2   -2      4485         0      1      0     0"""
# ACCT1 ESZ6: bought 4 @ 4500.25 + 6 @ 4500.00 = avg 4500.10; sold 4 @ 4510.00 corrected to 4509.50:
#             realized (4509.50 - 4500.10) * 4 = 37.60
# ACCT2 ZNH7: sold 5 (busted), bought 3 @ 110.125
# ACCT2 ESZ6 / ESH7: the legs of 2 ESZ6-ESH7 bought (the spread summary is not a position)

EXPECTED_EOD = """\
End-of-day report, trade date 2026-11-20

Account  Instrument  SecurityID  Buys  Sells  Net  Buy VWAP  Sell VWAP  Fills  Busts  Corrections  Realized
ACCT1    ESZ6        294973        10      4   +6    4500.1     4509.5      3      0            1      37.6
ACCT2    ZNH7        204527         3      0   +3   110.125          -      1      1            0         0
ACCT2    ESZ6        294973         2      0   +2    4500.5          -      1      0            0         0
ACCT2    ESH7        294974         0      2   -2         -       4485      1      0            0         0

4 positions, 1 busts, 1 corrections, 1 spread summaries (not in positions)

"""


def trading_day() -> tuple[list[bytes], bytes]:
    """The scripted session, and the bust of a fill that is never sent (it must be an exception)."""
    src = ScriptedSession(clock=ManualClock(T0, step=dt.timedelta(milliseconds=10)), trade_date="20261120")
    buy = src.order(ESZ6, account="ACCT1", side=BUY, qty=10, price="4500.25")
    msgs = [buy.ack(), buy.fill(4), buy.fill(6, "4500.00")]
    sell = src.order(ESZ6, account="ACCT1", side=SELL, qty=4, price="4510.00")
    msgs += [sell.ack(), sell.fill(), sell.correct("4509.50")]
    zn_sell = src.order(ZNH7, account="ACCT2", side=SELL, qty=5, price="110.15625")
    msgs += [zn_sell.fill(), zn_sell.bust()]
    zn_buy = src.order(ZNH7, account="ACCT2", side=BUY, qty=3, price="110.125")
    msgs += [zn_buy.fill()]
    spread = src.spread_order(
        ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="ACCT2", qty=2, price="15.50"
    )
    msgs += spread.fill(2, "15.50", ["4500.50", "4485.00"])
    ghost = src.order(ESH7, account="ACCT1", side=BUY, qty=1, price="4480")
    ghost.fill()  # never sent
    ghost_bust = ghost.bust()
    resting = src.order(ZNH7, account="ACCT1", side=BUY, qty=5, price="109")
    msgs += [ghost_bust, resting.ack()]
    return msgs, ghost_bust


def test_positions_eod_and_replay_from_a_real_clients_journal(
    make_client: Callable[..., DropCopyClient], sim: Simulator, tmp_path: Path
) -> None:
    msgs, ghost_bust = trading_day()
    [ghost] = decode(ghost_bust)
    exec_id, ref = ghost.exec_id, ghost.exec_ref_id  # type: ignore[union-attr]
    exceptions = (
        "Exceptions (1):\n"
        f"  unknown fill: no fill with ExecID ending '{ref}' in instrument 294974 for account ACCT1 "
        f"[account=ACCT1 security_id=294974 exec_id={exec_id} ref={ref}]\n"
    )
    client = make_client()
    config = tmp_path / "dropcopy.toml"
    config.write_text(config_toml(client.config), encoding="utf-8")
    runner = CliRunner()
    client.start(wait=15)
    try:
        sim.send_many(SESSION, msgs)
        assert sim.wait_for(lambda: client.status()[0].messages >= len(msgs), 20), client.status()
        # while the client runs (and holds the journal open), the command reads a consistent snapshot
        live = runner.invoke(main, ["positions", "--config", str(config)])
        assert live.exit_code == 0, live.output
        assert live.stdout == EXPECTED_TABLE + "\n\n" + exceptions
        assert [p.to_dict() for p in client.book.snapshot()] == json.loads(
            runner.invoke(main, ["positions", "--config", str(config), "--json"]).stdout
        )
    finally:
        client.stop()

    shown = runner.invoke(main, ["positions", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == EXPECTED_TABLE + "\n\n" + exceptions

    as_json = runner.invoke(main, ["positions", "--config", str(config), "--json"])
    rows = json.loads(as_json.stdout)
    assert [
        (
            r["account"],
            r["instrument"],
            r["net_qty"],
            r["avg_open_px"],
            r["realized_pnl"],
            r["busts"],
            r["corrections"],
        )
        for r in rows
    ] == [
        ("ACCT1", "ESZ6", 6, "4500.10", "37.60", 0, 1),
        ("ACCT2", "ZNH7", 3, "110.125", "0", 1, 0),
        ("ACCT2", "ESZ6", 2, "4500.50", "0", 0, 0),
        ("ACCT2", "ESH7", -2, "4485.00", "0", 0, 0),
    ]
    assert rows[0]["sell_vwap"] == "4509.50" and rows[0]["buy_vwap"] == "4500.10"

    as_csv = runner.invoke(main, ["positions", "--config", str(config), "--csv"])
    assert [r["net_qty"] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == ["6", "3", "2", "-2"]

    dated = runner.invoke(main, ["positions", "--config", str(config), "--date", "2026-11-20"])
    assert dated.stdout.splitlines()[1].split()[:4] == ["ACCT1", "ESZ6", "294973", "2026-11-20"]
    other_day = runner.invoke(main, ["positions", "--config", str(config), "--date", "2026-11-21"])
    assert other_day.stdout == "(no positions)\n\nExceptions: none\n"

    # end of day: the text report, and CSV / JSON by the output file's extension
    eod = runner.invoke(main, ["eod", "--config", str(config), "--date", "2026-11-20"])
    assert eod.exit_code == 0, eod.output
    assert eod.stdout == EXPECTED_EOD + exceptions
    eod_json = json.loads(
        runner.invoke(main, ["eod", "--config", str(config), "--date", "2026-11-20", "--json"]).stdout
    )
    assert (eod_json["busts"], eod_json["corrections"], eod_json["spread_summaries"]) == (1, 1, 1)
    assert [e["exec_ref_id"] for e in eod_json["exceptions"]] == [ref]
    out = tmp_path / "eod-2026-11-20.csv"
    written = runner.invoke(main, ["eod", "--config", str(config), "--date", "2026-11-20", "--out", str(out)])
    assert written.exit_code == 0 and written.stdout == ""
    records = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["record"], r["instrument"] or r["kind"]) for r in records] == [
        ("position", "ESZ6"),
        ("position", "ZNH7"),
        ("position", "ESZ6"),
        ("position", "ESH7"),
        ("exception", "unknown fill"),
    ]
    assert (records[0]["buy_vwap"], records[0]["sell_vwap"], records[1]["busts"]) == (
        "4500.10",
        "4509.50",
        "1",
    )
    out_json = tmp_path / "eod.json"
    runner.invoke(main, ["eod", "--config", str(config), "--date", "2026-11-20", "--out", str(out_json)])
    assert json.loads(out_json.read_text(encoding="utf-8")) == eod_json

    # replay of the journal file itself gives the same book
    replayed = runner.invoke(main, ["replay", str(tmp_path / "data" / "journal.sqlite")])
    assert replayed.stdout == EXPECTED_TABLE + "\n\n" + exceptions


def test_positions_without_a_journal_or_with_a_bad_config(
    sim: Simulator, key_file: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text('[client]\nheartbeat = 3\n[[group]]\nname = "g"\n', encoding="utf-8")
    done = runner.invoke(main, ["positions", "--config", str(bad)])
    assert done.exit_code == 2 and "heartbeat = 3" in done.stderr
    fresh = tmp_path / "fresh.toml"  # a valid configuration whose client never ran
    fresh.write_text(config_toml(config_for(sim, key_file, tmp_path / "never")), encoding="utf-8")
    for args in (["positions"], ["eod", "--date", "2026-11-20"]):
        done = runner.invoke(main, [*args, "--config", str(fresh)])
        assert done.exit_code == 1, done.output
        assert f"no journal at {tmp_path / 'never' / 'journal.sqlite'}" in done.stderr


def run_example(name: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], cwd=ROOT, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_position_monitor_example_prints_every_change_and_ends_on_the_demo_positions() -> None:
    lines = run_example("position_monitor.py")
    last: dict[tuple[str, str], int] = {}
    for line in lines:
        account, instrument, _, net = line.split()[:4]
        last[(account, instrument)] = int(net)
    assert {key: net for key, net in last.items() if net} == DEMO_NET_POSITIONS
    assert len(lines) == 8  # one line per position change: 6 outright fills or busts, 2 spread legs


def test_risk_sink_example_alerts_on_breach_and_clears_after_the_bust() -> None:
    assert run_example("risk_sink.py") == [
        "ALERT ACCT1 ESZ6 net +10 exceeds limit 5",
        "ALERT ACCT2 ZNH7 net -5 exceeds limit 4",
        "CLEAR ACCT2 ZNH7 net -3 within limit 4",
        "risk sink closed; positions over their limit: ACCT1 294973",
    ]
