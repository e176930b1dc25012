"""event_to_dict: the one JSON form of every event (CLI --json lines, JSON Lines sink, PostgreSQL payloads)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import attrs

from dropcopy_client import (
    Fill,
    MessageError,
    OrderMassActionReport,
    Side,
    TradeBust,
    TradeCorrection,
    decode,
)
from dropcopy_client._recovery import UnrecoverableGap
from dropcopy_client._serialize import event_to_dict
from dropcopy_client.cli._format import event_json
from dropcopy_client.positions import PositionBook
from dropcopy_client.testing import (
    BUY,
    ESH7,
    ESZ6,
    ESZ6_ESH7,
    SELL,
    JournalStream,
    ScriptedSession,
)
from tests.unit._message_fixtures import all_fixtures, fixture

START = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)


def roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(data, separators=(",", ":")))
    assert loaded == data  # only JSON types inside: nothing lost or changed by the encoder
    return loaded


def test_a_fill_has_exact_prices_utc_iso_times_enum_names_and_the_stream_keys() -> None:
    src = ScriptedSession(trade_date="20261201")
    order = src.order(ESZ6, account="ACCT1", side=BUY, qty=3, price="4500.125")
    stream = JournalStream(start=START, first_journal_id=41)
    _, fill = stream.events([order.ack(), order.fill(2)])
    assert isinstance(fill, Fill)
    data = roundtrip(event_to_dict(fill))
    assert next(iter(data)) == "type" and data["type"] == "Fill"
    assert (data["journal_id"], data["idempotency_key"], data["replayed"]) == (
        42,
        fill.idempotency_key,
        False,
    )
    assert data["last_px"] == "4500.125" and Decimal(data["last_px"]) == fill.last_px
    assert data["avg_px"] == "0"
    assert (data["last_qty"], data["cum_qty"], data["leaves_qty"]) == (2, 2, 1)
    assert (data["side"], data["ord_status"], data["exec_type"]) == (
        "BUY",
        "PARTIALLY_FILLED",
        "PARTIAL_FILL",
    )
    assert data["trade_date"] == "2026-12-01"
    assert data["transact_time"].endswith("+00:00")
    assert dt.datetime.fromisoformat(data["transact_time"]) == fill.transact_time
    assert data["transact_time_ns"] == fill.transact_time_ns
    assert data["delivery"]["received_at"] == "2026-12-01T14:30:00.001000+00:00"
    assert data["delivery"]["session"] == "XYZDEFN:84" and data["delivery"]["journal_id"] == 42
    assert data["source"]["sender_comp_id"] == "M2L000N" and data["source"]["seq_num"] == 2
    assert data["order_events"] == [] and data["warnings"] == []
    assert "raw" not in data and "inner" not in data and "fix_message" not in data


def test_fix_message_adds_the_inner_message_exactly() -> None:
    src = ScriptedSession()
    order = src.order(ESZ6, account="ACCT1", side=SELL, qty=1, price="4500")
    (ack,) = JournalStream(start=START).events([order.ack()])
    data = roundtrip(event_to_dict(ack, fix_message=True))
    assert data["fix_message"].encode("ascii") == ack.inner  # type: ignore[union-attr]
    assert "\x0135=8\x01" in data["fix_message"]
    assert "\\u000135=8\\u0001" in json.dumps(data)


def test_busts_corrections_and_spreads() -> None:
    src = ScriptedSession(trade_date="20261201")
    order = src.order(ESZ6, account="ACCT1", side=BUY, qty=2, price="4500.25")
    spread = src.spread_order(
        ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="ACCT2", qty=1, price="15"
    )
    stream = JournalStream(start=START)
    fill, correction, bust, summary, leg1, leg2 = stream.events(
        [order.fill(), order.correct("4500.50"), order.bust(), *spread.fill(1, "15", ["4500.50", "4485.50"])]
    )
    assert isinstance(correction, TradeCorrection) and isinstance(bust, TradeBust)
    c, b = event_to_dict(correction), event_to_dict(bust)
    assert (c["type"], c["last_px"], c["exec_ref_id"]) == (
        "TradeCorrection",
        "4500.50",
        correction.exec_ref_id,
    )
    assert (b["type"], b["exec_trans_type"], b["ord_status"]) == ("TradeBust", "CANCEL", "TRADE_CANCEL")
    s, leg = event_to_dict(summary), event_to_dict(leg1)
    assert s["multi_leg_reporting_type"] == "MULTI_LEG_SECURITY" and s["total_num_securities"] == 2
    assert leg["multi_leg_reporting_type"] == "INDIVIDUAL_LEG_OF_MULTI_LEG"
    assert s["secondary_exec_id"] == leg["secondary_exec_id"] == event_to_dict(leg2)["secondary_exec_id"]
    assert len({d["idempotency_key"] for d in map(event_to_dict, (fill, correction, bust, summary))}) == 4


def test_a_group_becomes_a_list_of_dicts() -> None:
    (event,) = decode(fixture("fill_brokertec").outer, journal_id=7)
    data = roundtrip(event_to_dict(event))
    assert isinstance(event, Fill) and event.order_events
    assert [e["exec_id"] for e in data["order_events"]] == [e.exec_id for e in event.order_events]
    assert all(isinstance(e["qty"], int) for e in data["order_events"])
    assert all(isinstance(e["px"], str) for e in data["order_events"])


def test_a_mass_action_report_keys_on_its_source_and_lists_affected_orders() -> None:
    src = ScriptedSession()
    resting = src.order(ESZ6, account="ACCT1", side=BUY, qty=5, price="4400")
    _, report = JournalStream(start=START).events([resting.ack(), src.mass_action([resting])])
    assert isinstance(report, OrderMassActionReport)
    data = roundtrip(event_to_dict(report))
    assert data["idempotency_key"] == report.idempotency_key and data["idempotency_key"].startswith("S:")
    assert data["affected_orders"][0]["cxl_qty"] == 5
    assert data["mass_action_response"] == report.mass_action_response.name  # type: ignore[union-attr]


def test_a_message_error_keeps_its_reason_and_journal_id_and_its_redacted_raw_on_request() -> None:
    error = JournalStream(start=START, first_journal_id=9).undecodable()
    data = roundtrip(event_to_dict(error, fix_message=True))
    assert (data["type"], data["journal_id"], data["idempotency_key"]) == ("MessageError", 9, "J:9")
    assert "CheckSum" in data["reason"] and data["delivery"]["seq_num"] == 1
    assert data["fix_message"].encode("ascii") == error.raw and "35=n" in data["fix_message"]
    bare = decode(b"not fix at all", journal_id=3)[0]
    assert isinstance(bare, MessageError)
    assert event_to_dict(bare)["delivery"] is None


def test_notices_positions_and_foreign_objects() -> None:
    gap = UnrecoverableGap("XYZDEFN:84", 10, 20, "older than 48 hours", START)
    assert event_to_dict(gap) == {
        "type": "UnrecoverableGap",
        "session": "XYZDEFN:84",
        "begin": 10,
        "end": 20,
        "reason": "older than 48 hours",
        "at": "2026-12-01T14:30:00+00:00",
        "journal_id": None,
        "replayed": False,
    }
    # journaled: the key names its row (raw bytes stay out unless fix_message=True)
    journaled = attrs.evolve(gap, journal_id=7, raw=b"8=FIX.4.2\x01")
    assert event_to_dict(journaled)["idempotency_key"] == "J:7"
    assert "raw" not in event_to_dict(journaled)
    src = ScriptedSession()
    book = PositionBook()
    for event in JournalStream(start=START).events([src.order(ESZ6, side=BUY, qty=2, price="4500.5").fill()]):
        book.apply(event)
    (position,) = book.snapshot()
    data = roundtrip(event_to_dict(position))
    assert (data["type"], data["net_qty"], data["avg_open_px"]) == ("Position", 2, "4500.5")
    assert event_to_dict(42) == {"type": "int", "value": "42"}


def test_every_fixture_serializes_to_json() -> None:
    for fx in all_fixtures():
        for event in decode(fx.outer, journal_id=1):
            data = roundtrip(event_to_dict(event, fix_message=True))
            assert data["type"] == fx.expect, fx.name
            assert data["idempotency_key"] == event.idempotency_key, fx.name


def test_the_cli_line_is_the_serializer_without_the_added_stream_keys() -> None:
    src = ScriptedSession()
    (fill,) = JournalStream(start=START).events(
        [src.order(ESZ6, side=Side.BUY.value, qty=1, price="1").fill()]
    )
    line = json.loads(event_json(fill))
    full = event_to_dict(fill)
    assert line == {k: v for k, v in full.items() if k not in ("journal_id", "idempotency_key", "replayed")}
    error = JournalStream(start=START).undecodable()
    assert "journal_id" in json.loads(event_json(error))  # a MessageError's own field stays
