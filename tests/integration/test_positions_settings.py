"""The ``[positions]`` table (multipliers, accounts) and ``--multiplier`` / ``--account`` on ``dropcopy positions``
and ``dropcopy eod``, on the journal of a real client fed by the simulator (the trading day of
test_cli_positions.py: ACCT1 realizes 37.60 price points of ES)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropcopy_client import DropCopyClient
from dropcopy_client.cli import main
from dropcopy_client.testing import Simulator, config_toml
from tests.integration.conftest import SESSION
from tests.integration.test_cli_positions import trading_day

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def journaled(make_client: Callable[..., DropCopyClient], sim: Simulator, tmp_path: Path) -> Path:
    """A configuration whose data_dir holds the trading day's journal, with a [positions] table."""
    msgs, _ = trading_day()
    client = make_client()
    config = tmp_path / "dropcopy.toml"
    text = config_toml(client.config)
    config.write_text(
        text + '\n[positions]\nmultipliers = { ES = 50, ZN = "1000" }\naccounts = ["ACCT1"]\n',
        encoding="utf-8",
    )
    live = DropCopyClient.from_config(config)  # the same data_dir, with the configured multipliers
    live.start(wait=15)
    try:
        sim.send_many(SESSION, msgs)
        assert sim.wait_for(lambda: live.status()[0].messages >= len(msgs), 20), live.status()
        es = live.book.position("ACCT1", "294973")
        assert es is not None and es.multiplier == 50 and es.realized_value == Decimal("1880.00")
    finally:
        live.stop()
    return config


def _json(*args: str) -> object:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_configured_accounts_and_multipliers_apply(journaled: Path) -> None:
    rows = _json("positions", "--config", str(journaled), "--json")
    assert isinstance(rows, list)
    assert {r["account"] for r in rows} == {"ACCT1"}  # accounts = ["ACCT1"]
    [es] = [r for r in rows if r["instrument"] == "ESZ6"]
    assert (es["multiplier"], es["realized_pnl"], es["realized_value"]) == ("50", "37.60", "1880.00")

    table = CliRunner().invoke(main, ["positions", "--config", str(journaled)]).stdout
    assert "ACCT2" not in table and "ACCT1" in table
    assert "unknown fill" in table  # the ghost bust is ACCT1's


def test_the_command_line_overrides_the_configuration(journaled: Path) -> None:
    rows = _json(
        "positions", "--config", str(journaled), "--json", "--account", "ACCT2", "--multiplier", "ES=10"
    )
    assert isinstance(rows, list)
    assert [(r["account"], r["instrument"]) for r in rows] == [
        ("ACCT2", "ZNH7"),
        ("ACCT2", "ESZ6"),
        ("ACCT2", "ESH7"),
    ]
    assert {r["instrument"]: r["multiplier"] for r in rows} == {"ZNH7": "1000", "ESZ6": "10", "ESH7": "10"}
    table = CliRunner().invoke(main, ["positions", "--config", str(journaled), "--account", "ACCT2"]).stdout
    assert "Exceptions: none" in table  # ACCT1's exception is not ACCT2's

    both = _json(
        "positions", "--config", str(journaled), "--json", "--account", "ACCT1", "--account", "ACCT2"
    )
    assert isinstance(both, list) and len(both) == 4


def test_eod_uses_the_same_settings_and_positions_field_names(journaled: Path) -> None:
    report = _json("eod", "--config", str(journaled), "--date", "2026-11-20", "--json")
    assert isinstance(report, dict)
    [line] = [p for p in report["positions"] if p["instrument"] == "ESZ6"]
    assert line["account"] == "ACCT1" and len(report["positions"]) == 1
    assert (line["bought_qty"], line["sold_qty"], line["net_qty"], line["fill_count"]) == (10, 4, 6, 3)
    assert (line["multiplier"], line["realized_value"]) == ("50", "1880.00")
    positions = _json("positions", "--config", str(journaled), "--json", "--date", "2026-11-20")
    assert isinstance(positions, list)
    [same] = [p for p in positions if p["instrument"] == "ESZ6"]
    shared = set(line) & set(same)
    assert {"bought_qty", "sold_qty", "net_qty", "fill_count", "realized_pnl", "realized_value"} <= shared
    assert {k: line[k] for k in shared} == {k: same[k] for k in shared}

    acct2 = _json("eod", "--config", str(journaled), "--date", "2026-11-20", "--json", "--account", "ACCT2")
    assert isinstance(acct2, dict)
    assert {p["account"] for p in acct2["positions"]} == {"ACCT2"} and acct2["exceptions"] == []


@pytest.mark.parametrize("bad", ["ES", "ES=", "ES=abc", "ES=-5", "=50"])
def test_a_bad_multiplier_is_a_usage_error_naming_it(journaled: Path, bad: str) -> None:
    result = CliRunner().invoke(main, ["positions", "--config", str(journaled), "--multiplier", bad])
    assert result.exit_code == 2
    assert "--multiplier" in result.output
    assert "SYMBOL=N" in result.output or "positive number" in result.output
