"""PositionBook worked examples: every CME rule with numbers worked out by hand (spec §4.2-§4.5)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import threading
from decimal import Decimal

import attrs
import pytest

from dropcopy_client._decode import decode
from dropcopy_client._messages import ExecutionReport, Fill, MessageError
from dropcopy_client.positions import Position, PositionBook, eod_report
from dropcopy_client.positions._book import POSITION_COLUMNS
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
    demo_script,
)

T0 = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)
D = Decimal
ES = str(ESZ6.security_id)
ESH = str(ESH7.security_id)
ZN = str(ZNH7.security_id)


def session(**kwargs: object) -> ScriptedSession:
    kwargs.setdefault("clock", ManualClock(T0, step=dt.timedelta(milliseconds=10)))
    kwargs.setdefault("trade_date", "20261120")
    return ScriptedSession(**kwargs)  # type: ignore[arg-type]


def feed(book: PositionBook, *inners: bytes) -> list[Position]:
    changed: list[Position] = []
    for inner in inners:
        for event in decode(inner):
            changed += book.apply(event)
    return changed


def pos(book: PositionBook, account: str, security_id: str) -> Position:
    found = book.position(account, security_id)
    assert found is not None, (account, security_id, book.snapshot())
    return found


# -------------------------------------------------------------------------------------------- basics


def test_demo_script_gives_the_documented_positions() -> None:
    book = PositionBook()
    feed(book, *demo_script(T0))
    nets = {(p.account, p.instrument): p.net_qty for p in book.snapshot() if p.net_qty}
    assert nets == DEMO_NET_POSITIONS
    assert book.exceptions == ()
    assert book.working_orders() == []
    assert book.spread_summaries == 1
    assert book.position("ACCT2", str(ESZ6_ESH7.security_id)) is None  # the summary is never a position


def test_average_cost_vwap_and_realized_pnl_worked_by_hand() -> None:
    src = session()
    buy = src.order(ESZ6, account="ACCT1", side=BUY, qty=10, price="100")
    sell = src.order(ESZ6, account="ACCT1", side=SELL, qty=6, price="105")
    changed = feed(book := PositionBook(), buy.fill(4, "100"), buy.fill(6, "101.5"), sell.fill(6))
    assert [p.net_qty for p in changed] == [4, 10, 4]
    p = pos(book, "ACCT1", ES)
    # avg open 100.9 = (400 + 609) / 10; selling 6 realizes (105 - 100.9) * 6 = 24.6
    assert (p.bought_qty, p.sold_qty, p.net_qty, p.fill_count) == (10, 6, 4, 3)
    assert p.avg_open_px == D("100.9")
    assert p.realized_pnl == D("24.6")
    assert (p.buy_vwap, p.sell_vwap) == (D("100.9"), D("105"))
    assert p.last_fill_time == T0 + dt.timedelta(milliseconds=20)
    assert (p.symbol, p.security_desc, p.instrument) == ("ES", "ESZ6", "ESZ6")


def test_without_snapshots_the_book_is_updated_but_nothing_is_built() -> None:
    src = session()
    buy = src.order(ESZ6, account="ACCT1", side=BUY, qty=10, price="100")
    quiet, loud = PositionBook(), PositionBook()
    for inner in (buy.fill(4, "100"), buy.fill(6, "101.5")):
        for event in decode(inner):
            assert quiet.apply(event, snapshots=False) == []
            loud.apply(event)
    assert quiet.snapshot() == loud.snapshot()


def test_flip_from_long_to_short_opens_the_rest_at_the_fill_price() -> None:
    src = session()
    buy = src.order(ZNH7, account="A", side=BUY, qty=3, price="110")
    sell = src.order(ZNH7, account="A", side=SELL, qty=5, price="111")
    feed(book := PositionBook(), buy.fill(), sell.fill())
    p = pos(book, "A", ZN)
    assert (p.net_qty, p.avg_open_px, p.realized_pnl) == (-2, D("111"), D("3"))


def test_multiplier_turns_price_units_into_money() -> None:
    src = session()
    buy = src.order(ESZ6, account="A", side=BUY, qty=2, price="4500.25")
    sell = src.order(ESZ6, account="A", side=SELL, qty=2, price="4501.00")
    book = PositionBook(multipliers={"ES": 50})
    feed(book, buy.fill(), sell.fill())
    p = pos(book, "A", ES)
    assert (p.realized_pnl, p.multiplier, p.realized_value) == (D("1.50"), D(50), D("75.00"))
    assert PositionBook().position("A", ES) is None


def test_a_duplicate_exec_id_changes_nothing() -> None:
    src = session()
    fill = src.order(ESZ6, account="A", side=BUY, qty=2, price="1").fill()
    book = PositionBook()
    assert len(feed(book, fill)) == 1
    assert feed(book, fill) == []
    assert pos(book, "A", ES).net_qty == 2


def test_book_arithmetic_ignores_the_callers_decimal_context() -> None:
    def run() -> Position:
        src = session()
        buy = src.order(ZNH7, account="A", side=BUY, qty=3, price="110.15625")
        sell = src.order(ZNH7, account="A", side=SELL, qty=1, price="110.203125")
        feed(book := PositionBook(), buy.fill(1, "110.15625"), buy.fill(2, "110.171875"), sell.fill())
        return pos(book, "A", ZN)

    expected = run()
    with decimal.localcontext() as ctx:
        ctx.prec = 3  # a handler on the dispatcher thread could do this
        ctx.rounding = decimal.ROUND_DOWN
        assert run() == expected
    assert expected.avg_open_px is not None and expected.avg_open_px > D("110.16")


# -------------------------------------------------------------------------------------------- busts


def test_a_bust_in_the_middle_recomputes_as_if_the_fill_never_happened() -> None:
    src = session()
    first = src.order(ESZ6, account="A", side=BUY, qty=5, price="100")
    second = src.order(ESZ6, account="A", side=BUY, qty=5, price="110")
    sell = src.order(ESZ6, account="A", side=SELL, qty=5, price="120")
    book = PositionBook()
    feed(book, first.fill(), second.fill(), sell.fill())
    assert pos(book, "A", ES).realized_pnl == D("75")  # (120 - 105) * 5
    changed = feed(book, first.bust())
    assert len(changed) == 1
    p = pos(book, "A", ES)
    # left: buy 5 @ 110, sell 5 @ 120
    assert (p.net_qty, p.bought_qty, p.sold_qty, p.fill_count, p.busts) == (0, 5, 5, 2, 1)
    assert (p.avg_open_px, p.realized_pnl, p.buy_vwap) == (None, D("50"), D("110"))


def test_an_unknown_bust_is_an_exception_until_its_fill_arrives() -> None:
    src = session()
    order = src.order(ZNH7, account="ACCT2", side=SELL, qty=5, price="110.15625")
    fill = order.fill()
    bust = order.bust()
    book = PositionBook()
    assert feed(book, bust) == []
    [exc] = book.exceptions
    bust_event = report(bust)
    assert (exc.kind, exc.exec_id, exc.exec_ref_id) == (
        "unknown fill",
        bust_event.exec_id,
        fill_id(fill)[-9:],
    )
    assert (exc.account, exc.security_id, exc.trade_date) == ("ACCT2", ZN, dt.date(2026, 11, 20))
    assert book.snapshot() == []
    # the fill turns up later (another session, a replay in another order): the bust applies then
    feed(book, fill)
    assert book.exceptions == ()
    p = pos(book, "ACCT2", ZN)
    assert (p.net_qty, p.sold_qty, p.busts, p.fill_count) == (0, 0, 1, 0)


def test_a_bust_never_reverses_another_accounts_fill_with_the_same_suffix() -> None:
    src = session()
    mine = src.order(ESZ6, account="A", side=BUY, qty=1, price="1")
    mine_fill = mine.fill()
    # the same ExecID suffix in account B (another source session numbering the same way)
    other = session(sender_comp_id="M2L000X", exec_id_prefix=94618).order(
        ESZ6, account="B", side=BUY, qty=1, price="1"
    )
    other_fill = other.fill()
    assert fill_id(mine_fill)[-9:] == fill_id(other_fill)[-9:]
    book = PositionBook()
    feed(book, other_fill, mine.bust())
    assert pos(book, "B", ES).net_qty == 1
    assert [e.kind for e in book.exceptions] == ["unknown fill"]


def test_same_suffix_same_account_is_ambiguous_unless_the_trade_id_tells() -> None:
    def fills(trade_b: int) -> tuple[bytes, bytes, bytes]:
        one = session(exec_id_prefix=14618).order(ESZ6, account="A", side=BUY, qty=1, price="1")
        two = session(sender_comp_id="M2L000X", exec_id_prefix=24618, first_trade_id=trade_b).order(
            ESZ6, account="A", side=BUY, qty=2, price="2"
        )
        return one.fill(), two.fill(), two.bust()

    f1, f2, bust = fills(trade_b=100001)  # same suffix, same 37711, same side: cannot tell
    book = PositionBook()
    feed(book, f1, f2, bust)
    assert [e.kind for e in book.exceptions] == ["ambiguous reference"]
    assert pos(book, "A", ES).net_qty == 3  # applied to none

    f1, f2, bust = fills(trade_b=200001)  # 37711 picks the right one
    book = PositionBook()
    feed(book, f1, f2, bust)
    assert book.exceptions == ()
    p = pos(book, "A", ES)
    assert (p.net_qty, p.avg_open_px) == (1, D("1"))


def test_a_bust_without_exec_ref_id_is_an_exception() -> None:
    src = session()
    order = src.order(ESZ6, account="A", side=BUY, qty=1, price="1")
    feed(book := PositionBook(), order.fill())
    bust = report(order.bust())
    feed_events(book, attrs.evolve(bust, exec_ref_id=None))
    assert [e.kind for e in book.exceptions] == ["missing reference"]
    assert pos(book, "A", ES).net_qty == 1


# -------------------------------------------------------------------------------------------- corrections


def test_correction_reprices_a_partially_closed_fill_exactly() -> None:
    src = session()
    buy = src.order(ESZ6, account="A", side=BUY, qty=10, price="100")
    sell = src.order(ESZ6, account="A", side=SELL, qty=4, price="105")
    close = src.order(ESZ6, account="A", side=SELL, qty=6, price="99")
    book = PositionBook()
    feed(book, buy.fill(), sell.fill())
    assert pos(book, "A", ES).realized_pnl == D("20")  # (105 - 100) * 4
    changed = feed(book, buy.correct("101", buy.fills[0].exec_id))
    assert len(changed) == 1
    p = pos(book, "A", ES)
    # as if bought at 101: realized (105 - 101) * 4 = 16, 6 open at 101; no quantity added
    assert (p.bought_qty, p.sold_qty, p.net_qty, p.fill_count, p.corrections) == (10, 4, 6, 2, 1)
    assert (p.avg_open_px, p.realized_pnl, p.buy_vwap, p.buy_notional) == (
        D("101"),
        D("16"),
        D("101"),
        D("1010"),
    )
    feed(book, close.fill())
    p = pos(book, "A", ES)
    assert (p.net_qty, p.avg_open_px, p.realized_pnl) == (0, None, D("4"))  # 16 + (99 - 101) * 6


def test_a_correction_of_a_correction_and_a_bust_after_a_correction() -> None:
    src = session()
    buy = src.order(ESZ6, account="A", side=BUY, qty=2, price="100")
    fill = buy.fill()
    first = buy.correct("101")
    book = PositionBook()
    feed(book, fill, first)
    # a later correction naming the first correction's ExecID still finds the fill
    second = buy.correct("102", exec_id=None)
    second_event = report(second)
    feed_events(book, attrs.evolve(second_event, exec_ref_id=report(first).exec_id[-9:]))
    p = pos(book, "A", ES)
    assert (p.net_qty, p.avg_open_px, p.corrections) == (2, D("102"), 2)
    feed(book, buy.bust())
    p = pos(book, "A", ES)
    assert (p.net_qty, p.bought_qty, p.busts, p.corrections) == (0, 0, 1, 2)
    feed(book, buy.correct("103"))
    assert [e.kind for e in book.exceptions] == ["correction of a busted fill"]


def test_correction_quantity_mismatch_is_reported_and_quantity_kept() -> None:
    src = session()
    buy = src.order(ESZ6, account="A", side=BUY, qty=3, price="100")
    book = PositionBook()
    feed(book, buy.fill())
    corr = report(buy.correct("99"))
    feed_events(book, attrs.evolve(corr, last_qty=5))
    p = pos(book, "A", ES)
    assert (p.net_qty, p.avg_open_px) == (3, D("99"))
    assert [e.kind for e in book.exceptions] == ["quantity mismatch"]


def test_an_unknown_correction_is_an_exception() -> None:
    src = session()
    buy = src.order(ESZ6, account="A", side=BUY, qty=3, price="100")
    buy.fill()
    feed(book := PositionBook(), buy.correct("99"))
    assert [e.kind for e in book.exceptions] == ["unknown fill"]
    assert book.snapshot() == []


# -------------------------------------------------------------------------------------------- spreads


def spread_trade() -> tuple[list[bytes], list[bytes]]:
    """ACCT2 buys 2 ESZ6-ESH7: summary + legs (+2 ESZ6 @ 4500.50, -2 ESH7 @ 4485.00), then the spread bust."""
    src = session()
    spread = src.spread_order(
        ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="ACCT2", qty=2, price="15.5"
    )
    fills = spread.fill(2, "15.50", ["4500.50", "4485.00"])
    return fills, spread.bust()


def test_spread_legs_count_and_the_summary_never_does() -> None:
    fills, _ = spread_trade()
    book = PositionBook()
    changed = feed(book, *fills)
    assert [(p.instrument, p.net_qty) for p in changed] == [("ESZ6", 2), ("ESH7", -2)]
    assert [(p.instrument, p.net_qty) for p in book.snapshot()] == [("ESZ6", 2), ("ESH7", -2)]
    assert book.spread_summaries == 1
    assert pos(book, "ACCT2", ESH).avg_open_px == D("4485.00")


def test_spread_summary_bust_reverses_every_leg_and_leg_busts_after_it_change_nothing() -> None:
    fills, busts = spread_trade()
    summary_bust, *leg_busts = busts
    book = PositionBook()
    feed(book, *fills)
    changed = feed(book, summary_bust)
    assert sorted((p.instrument, p.net_qty, p.busts) for p in changed) == [("ESH7", 0, 1), ("ESZ6", 0, 1)]
    after_summary = book.snapshot()
    assert feed(book, *leg_busts) == []
    assert book.snapshot() == after_summary
    assert book.exceptions == ()
    for p in after_summary:
        assert (p.net_qty, p.bought_qty, p.sold_qty, p.fill_count, p.busts) == (0, 0, 0, 0, 1)


def test_spread_leg_busts_first_then_the_summary_gives_the_same_book() -> None:
    fills, busts = spread_trade()
    summary_bust, *leg_busts = busts
    summary_first = PositionBook()
    feed(summary_first, *fills, summary_bust, *leg_busts)
    legs_first = PositionBook()
    feed(legs_first, *fills, *leg_busts)
    assert feed(legs_first, summary_bust) == []
    assert legs_first.snapshot() == summary_first.snapshot()
    assert legs_first.exceptions == summary_first.exceptions == ()


def test_a_spread_bust_before_its_legs_reverses_them_on_arrival() -> None:
    fills, busts = spread_trade()
    summary_fill, *legs = fills
    book = PositionBook()
    feed(book, busts[0])
    assert [e.kind for e in book.exceptions] == ["unknown spread"]
    feed(book, summary_fill, *legs)
    assert book.exceptions == ()
    assert [(p.net_qty, p.busts) for p in book.snapshot()] == [(0, 1), (0, 1)]


def test_spread_summary_correction_is_spread_level_only() -> None:
    src = session()
    spread = src.spread_order(ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="A", qty=1, price="15")
    fills = spread.fill(1, "15", ["4500", "4485"])
    book = PositionBook()
    feed(book, *fills)
    before = book.snapshot()
    feed(book, spread.flow.correct("14.75"))
    assert book.snapshot() == before
    assert book.exceptions == ()


# -------------------------------------------------------------------------------------------- other inputs


def test_undecodable_messages_and_unusable_fills_are_exceptions() -> None:
    src = session()
    good = src.order(ESZ6, account="A", side=BUY, qty=1, price="1").fill()
    [error] = decode(good.replace(b"\x0110=", b"\x0110=9", 1)[:-1] + b"\x01")
    assert isinstance(error, MessageError)
    book = PositionBook()
    book.apply(error)
    book.apply(error)  # the same message twice (a resend) is one exception
    fill = report(src.order(ESZ6, account="A", side=BUY, qty=1, price="1").fill())
    feed_events(book, attrs.evolve(fill, security_id=None, exec_id="X1"))
    feed_events(book, attrs.evolve(fill, last_px=None, exec_id="X2"))
    assert [e.kind for e in book.exceptions] == ["undecodable message", "unknown instrument", "unusable fill"]
    assert book.snapshot() == []


def test_by_trade_date_splits_positions() -> None:
    day1 = session(trade_date="20261119")
    day2 = session(trade_date="20261120", exec_id_prefix=5)
    fills = [
        day1.order(ESZ6, account="A", side=BUY, qty=2, price="1").fill(),
        day2.order(ESZ6, account="A", side=BUY, qty=3, price="2").fill(),
    ]
    split = PositionBook(by_trade_date=True)
    feed(split, *fills)
    assert [(p.trade_date, p.net_qty) for p in split.snapshot()] == [
        (dt.date(2026, 11, 19), 2),
        (dt.date(2026, 11, 20), 3),
    ]
    assert split.position("A", ES, dt.date(2026, 11, 20)) == split.snapshot()[1]
    merged = PositionBook()
    feed(merged, *fills)
    assert [(p.trade_date, p.net_qty) for p in merged.snapshot()] == [(None, 5)]


def test_a_book_for_one_trade_date_leaves_other_dates_and_their_busts_out() -> None:
    day1 = session(trade_date="20261119")
    old = day1.order(ESZ6, account="A", side=BUY, qty=2, price="1")
    ghost = day1.order(ESZ6, account="A", side=BUY, qty=1, price="1")
    ghost.fill()
    day2 = session(trade_date="20261120", exec_id_prefix=5)
    new = day2.order(ESZ6, account="A", side=SELL, qty=3, price="2")
    book = PositionBook(trade_date=dt.date(2026, 11, 20))
    feed(book, old.fill(), new.fill(), old.bust(), ghost.bust())
    [p] = book.snapshot()
    assert (p.trade_date, p.net_qty, p.busts) == (dt.date(2026, 11, 20), -3, 0)
    assert book.exceptions == ()  # the old fill's bust and the ghost's are 2026-11-19's business
    assert book.position("A", ES) == p


def test_uncertain_sessions_mark_their_positions() -> None:
    src = session()
    book = PositionBook()
    feed(book, src.order(ESZ6, account="A", side=BUY, qty=1, price="1").fill())
    [fill] = decode(src.order(ZNH7, account="A", side=BUY, qty=1, price="1").fill(), session="OTHER:G")
    book.apply(fill)
    book.mark_uncertain("M2L000N:G", True)
    assert {p.instrument: p.uncertain for p in book.snapshot()} == {"ESZ6": True, "ZNH7": False}
    book.mark_uncertain("M2L000N:G", False)
    assert not any(p.uncertain for p in book.snapshot())


def test_snapshot_is_safe_while_another_thread_applies() -> None:
    src = session()
    events = [decode(src.order(ESZ6, account="A", side=BUY, qty=1, price="1").fill())[0] for _ in range(2000)]
    book = PositionBook()
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.extend(p.net_qty for p in book.snapshot())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        book.apply_all(events)
    finally:
        done.set()
        reader.join()
    assert seen == sorted(seen)  # every snapshot was consistent and positions only grew
    assert pos(book, "A", ES).net_qty == 2000


# -------------------------------------------------------------------------------------------- working orders


def test_working_orders_life_cycle() -> None:
    src = session()
    book = PositionBook()
    order = src.order(ZNH7, account="ACCT2", side=BUY, qty=8, price="110.125")
    feed(book, order.ack())
    [w] = book.working_orders()
    assert (w.account, w.security_id, w.instrument, w.order_qty, w.leaves_qty, w.price) == (
        "ACCT2",
        ZN,
        "ZNH7",
        8,
        8,
        D("110.125"),
    )
    feed(book, order.fill(2))
    assert [(w.leaves_qty, w.cum_qty) for w in book.working_orders()] == [(6, 2)]
    feed(book, order.modify(qty=5, price="110.140625"))
    [w] = book.working_orders()
    assert (w.order_qty, w.leaves_qty, w.price) == (5, 3, D("110.140625"))
    feed(book, order.cancel())
    assert book.working_orders() == []

    fak = src.order(ZNH7, account="ACCT1", side=BUY, qty=4, price="109.5", time_in_force="3")
    feed(book, fak.ack())
    assert len(book.working_orders()) == 1
    feed(book, fak.eliminate())
    assert book.working_orders() == []

    full = src.order(ESZ6, account="ACCT1", side=SELL, qty=3, price="4501")
    resting = src.order(ESZ6, account="ACCT1", side=BUY, qty=5, price="4400")
    other = src.order(ESH7, account="ACCT1", side=BUY, qty=1, price="4400")
    feed(book, full.ack(), resting.ack(), other.ack())
    assert [w.order_id for w in book.working_orders()] == [
        full.order.order_id,
        resting.order.order_id,
        other.order.order_id,
    ]
    assert [w.order_id for w in book.working_orders(security_id=str(ESH7.security_id))] == [
        other.order.order_id
    ]
    assert book.working_orders(account="ACCT2") == []
    feed(book, full.fill(3), src.mass_action([resting]))
    assert [w.order_id for w in book.working_orders()] == [other.order.order_id]


def test_a_resent_acknowledgement_never_resurrects_a_cancelled_order() -> None:
    src = session()
    order = src.order(ZNH7, account="A", side=BUY, qty=8, price="110")
    ack = order.ack()
    book = PositionBook()
    feed(book, ack, order.cancel(), ack)
    assert book.working_orders() == []


def test_spread_leg_fills_leave_the_spread_order_alone() -> None:
    src = session()
    spread = src.spread_order(ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="A", qty=4, price="15")
    book = PositionBook()
    feed(book, spread.ack(), *spread.fill(1, "15", ["4500", "4485"]))
    [w] = book.working_orders()
    assert (w.instrument, w.security_id, w.leaves_qty) == ("ESZ6-ESH7", str(ESZ6_ESH7.security_id), 3)


# -------------------------------------------------------------------------------------------- output


def test_to_dict_is_json_ready_and_matches_the_column_list() -> None:
    src = session()
    feed(book := PositionBook(), src.order(ZNH7, account="A", side=BUY, qty=3, price="110.15625").fill())
    [p] = book.snapshot()
    data = p.to_dict()
    assert tuple(data) == POSITION_COLUMNS
    assert json.loads(json.dumps(data)) == data
    assert (data["avg_open_px"], data["net_qty"], data["trade_date"]) == ("110.15625", 3, None)


def test_to_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    src = session()
    feed(book := PositionBook(), src.order(ESZ6, account="A", side=BUY, qty=3, price="4500.25").fill())
    frame = book.to_dataframe()
    assert list(frame.columns) == list(POSITION_COLUMNS)
    assert frame.loc[0, "net_qty"] == 3 and frame.loc[0, "avg_open_px"] == D("4500.25")
    assert book.to_dataframe(as_float=True).loc[0, "buy_vwap"] == pytest.approx(4500.25)
    empty = PositionBook().to_dataframe()
    assert isinstance(empty, pd.DataFrame) and empty.empty and list(empty.columns) == list(POSITION_COLUMNS)


def test_end_of_day_report_counts_busts_corrections_vwap_and_exceptions() -> None:
    src = session()
    buy = src.order(ESZ6, account="A", side=BUY, qty=10, price="100")
    sell = src.order(ESZ6, account="A", side=SELL, qty=4, price="105")
    busted = src.order(ESZ6, account="A", side=BUY, qty=7, price="90")
    ghost = src.order(ZNH7, account="B", side=SELL, qty=1, price="110")
    ghost.fill()
    inners = [buy.fill(4), buy.fill(6, "101"), sell.fill(), busted.fill(), busted.bust(), sell.correct("106")]
    other_day = session(trade_date="20261121", exec_id_prefix=7).order(
        ESZ6, account="A", side=BUY, qty=1, price="1"
    )
    book = PositionBook(trade_date=dt.date(2026, 11, 20))
    feed(book, *inners, ghost.bust(), other_day.fill())
    eod = eod_report(book, dt.date(2026, 11, 20))
    [line] = eod.lines
    assert (line.bought_qty, line.sold_qty, line.net_qty, line.fill_count, line.busts, line.corrections) == (
        10,
        4,
        6,
        3,
        1,
        1,
    )
    assert (line.buy_vwap, line.sell_vwap) == (D("100.6"), D("106"))  # (400 + 606) / 10
    assert line.realized_pnl == D("21.6")  # (106 - 100.6) * 4
    assert [e.kind for e in eod.exceptions] == ["unknown fill"]
    assert (eod.busts, eod.corrections) == (1, 1)

    data = json.loads(eod.to_json())
    assert data["positions"][0]["buy_vwap"] == "100.6" and data["exceptions"][0]["account"] == "B"
    rows = list(csv.DictReader(io.StringIO(eod.to_csv())))
    assert [r["record"] for r in rows] == ["position", "exception"]
    assert (rows[0]["net_qty"], rows[0]["busts"], rows[1]["kind"]) == ("6", "1", "unknown fill")
    with pytest.raises(ValueError, match="split by trade date"):
        eod_report(PositionBook(), dt.date(2026, 11, 20))


# -------------------------------------------------------------------------------------------- helpers


def report(inner: bytes) -> ExecutionReport:
    [event] = decode(inner)
    assert isinstance(event, ExecutionReport), event
    return event


def fill_id(inner: bytes) -> str:
    event = report(inner)
    assert isinstance(event, Fill)
    return event.exec_id


def feed_events(book: PositionBook, *events: object) -> None:
    for event in events:
        book.apply(event)


def test_find_by_security_id_security_desc_or_symbol() -> None:
    src = session()
    book = PositionBook()
    feed(
        book,
        src.order(ESZ6, account="ACCT1", side=BUY, qty=2, price="100").fill(2),
        src.order(ESH7, account="ACCT1", side=SELL, qty=1, price="101").fill(1),
        src.order(ESZ6, account="ACCT2", side=SELL, qty=3, price="99").fill(3),
        src.order(ZNH7, account="ACCT1", side=BUY, qty=5, price="110").fill(5),
    )
    assert [(p.account, p.security_id) for p in book.find(ES)] == [("ACCT1", ES), ("ACCT2", ES)]
    assert [(p.account, p.net_qty) for p in book.find("ESZ6")] == [("ACCT1", 2), ("ACCT2", -3)]
    assert sorted(p.security_id for p in book.find("ES", account="ACCT1")) == sorted([ES, ESH])
    assert [p.security_id for p in book.find("ZNH7", account="ACCT2")] == []
    assert book.find("NQ") == []
