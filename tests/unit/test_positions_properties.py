"""PositionBook properties (Hypothesis): order independence, bust = never filled, idempotency, corrections."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dropcopy_client._decode import decode
from dropcopy_client._messages import Event
from dropcopy_client.positions import Position, PositionBook
from dropcopy_client.testing import (
    BUY,
    ESH7,
    ESZ6,
    ESZ6_ESH7,
    SELL,
    ZNH7,
    ManualClock,
    OrderFlow,
    ScriptedSession,
)

T0 = dt.datetime(2026, 11, 20, 14, 30, tzinfo=dt.UTC)
INSTRUMENTS = (ESZ6, ESH7, ZNH7)
PRICES = tuple(Decimal(p) for p in ("99.5", "100", "100.25", "101.125", "110.15625", "4500.75"))

#: (account, instrument index, side, quantity, price index)
fill_specs = st.lists(
    st.tuples(
        st.sampled_from(("A", "B")),
        st.integers(0, len(INSTRUMENTS) - 1),
        st.sampled_from((BUY, SELL)),
        st.integers(1, 20),
        st.integers(0, len(PRICES) - 1),
    ),
    min_size=1,
    max_size=12,
)


class Trades:
    """One order and one fill per spec, on one scripted source session (distinct ExecIDs)."""

    def __init__(self, specs: list[tuple[str, int, str, int, int]]) -> None:
        self.src = ScriptedSession(
            clock=ManualClock(T0, step=dt.timedelta(milliseconds=1)), trade_date="20261120"
        )
        self.orders: list[OrderFlow] = []
        self.fills: list[Event] = []
        for account, inst, side, qty, px in specs:
            order = self.src.order(INSTRUMENTS[inst], account=account, side=side, qty=qty, price=PRICES[px])
            self.orders.append(order)
            self.fills.append(one(order.fill()))

    def bust(self, i: int) -> Event:
        return one(self.orders[i].bust())

    def correct(self, i: int, px: Decimal) -> Event:
        return one(self.orders[i].correct(px))


def one(inner: bytes) -> Event:
    [event] = decode(inner)
    return event


def book_of(events: list[Event]) -> PositionBook:
    book = PositionBook()
    book.apply_all(events)
    return book


def totals(book: PositionBook) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    return {
        (p.account, p.security_id): (p.net_qty, p.bought_qty, p.sold_qty, p.fill_count)
        for p in book.snapshot()
    }


def economics(p: Position | None) -> tuple[object, ...]:
    """Everything a fill changes (not the bust counter): a busted fill must leave no trace here."""
    if p is None:
        return (0, 0, 0, None, Decimal(0), Decimal(0), Decimal(0), 0, None)
    return (
        p.net_qty,
        p.bought_qty,
        p.sold_qty,
        p.avg_open_px,
        p.realized_pnl,
        p.buy_notional,
        p.sell_notional,
        p.fill_count,
        p.last_fill_time,
    )


@settings(max_examples=150, deadline=None)
@given(specs=fill_specs, data=st.data())
def test_any_permutation_of_distinct_fills_gives_the_same_net_and_totals(
    specs: list[tuple[str, int, str, int, int]], data: st.DataObject
) -> None:
    trades = Trades(specs)
    shuffled = data.draw(st.permutations(trades.fills))
    assert totals(book_of(shuffled)) == totals(book_of(trades.fills))
    nets: dict[tuple[str, str], int] = {}
    for account, inst, side, qty, _ in specs:
        key = (account, str(INSTRUMENTS[inst].security_id))
        nets[key] = nets.get(key, 0) + (qty if side == BUY else -qty)
    assert {k: v[0] for k, v in totals(book_of(shuffled)).items()} == nets


@settings(max_examples=150, deadline=None)
@given(specs=fill_specs, data=st.data())
def test_a_fill_and_its_bust_leave_the_book_as_if_never_filled(
    specs: list[tuple[str, int, str, int, int]], data: st.DataObject
) -> None:
    trades = Trades(specs)
    busted = data.draw(st.integers(0, len(specs) - 1))
    bust = trades.bust(busted)
    # the bust comes any time after its fill
    where = data.draw(st.integers(busted + 1, len(specs)))
    events = [*trades.fills[:where], bust, *trades.fills[where:]]
    with_bust = book_of(events)
    never = book_of([f for i, f in enumerate(trades.fills) if i != busted])
    keys = {(p.account, p.security_id) for p in with_bust.snapshot()}
    for account, security_id in keys:
        assert economics(with_bust.position(account, security_id)) == economics(
            never.position(account, security_id)
        )
    assert sum(p.busts for p in with_bust.snapshot()) == 1
    assert with_bust.exceptions == ()


@settings(max_examples=100, deadline=None)
@given(specs=fill_specs, data=st.data())
def test_fills_and_busts_in_any_order_give_the_same_net(
    specs: list[tuple[str, int, str, int, int]], data: st.DataObject
) -> None:
    """A bust that arrives before its fill waits in the exceptions and applies when the fill comes."""
    trades = Trades(specs)
    busted = data.draw(st.sets(st.integers(0, len(specs) - 1)))
    events = trades.fills + [trades.bust(i) for i in sorted(busted)]
    shuffled = data.draw(st.permutations(events))
    in_order = book_of(events)
    any_order = book_of(shuffled)
    assert totals(any_order) == totals(in_order)
    assert any_order.exceptions == in_order.exceptions == ()


@settings(max_examples=100, deadline=None)
@given(specs=fill_specs, data=st.data())
def test_replaying_any_prefix_again_changes_nothing(
    specs: list[tuple[str, int, str, int, int]], data: st.DataObject
) -> None:
    trades = Trades(specs)
    events: list[Event] = list(trades.fills)
    for i in data.draw(st.sets(st.integers(0, len(specs) - 1), max_size=3)):
        events.append(data.draw(st.sampled_from((trades.bust(i), trades.correct(i, PRICES[0])))))
    order = data.draw(st.permutations(events))
    book = book_of(order)
    before = (book.snapshot(), book.exceptions, book.working_orders())
    prefix = order[: data.draw(st.integers(0, len(order)))]
    for event in prefix:
        assert book.apply(event) == []
    assert (book.snapshot(), book.exceptions, book.working_orders()) == before


@settings(max_examples=150, deadline=None)
@given(specs=fill_specs, data=st.data())
def test_a_correction_reprices_without_changing_any_quantity(
    specs: list[tuple[str, int, str, int, int]], data: st.DataObject
) -> None:
    trades = Trades(specs)
    book = book_of(trades.fills)
    before = {(p.account, p.security_id): p for p in book.snapshot()}
    i = data.draw(st.integers(0, len(specs) - 1))
    new_px = data.draw(st.sampled_from(PRICES))
    correction = trades.correct(i, new_px)
    [changed] = book.apply(correction)
    account, inst, side, qty, px = specs[i]
    for p in book.snapshot():
        old = before[(p.account, p.security_id)]
        assert (p.net_qty, p.bought_qty, p.sold_qty, p.fill_count) == (
            old.net_qty,
            old.bought_qty,
            old.sold_qty,
            old.fill_count,
        )
    shift = (new_px - PRICES[px]) * qty
    old = before[(account, str(INSTRUMENTS[inst].security_id))]
    assert changed.corrections == 1
    if side == BUY:
        assert changed.buy_notional == old.buy_notional + shift
    else:
        assert changed.sell_notional == old.sell_notional + shift
    # exactly as if the fill had traded at the corrected price
    repriced = Trades(
        [(a, n, s, q, PRICES.index(new_px) if j == i else p) for j, (a, n, s, q, p) in enumerate(specs)]
    )
    expected = book_of(repriced.fills).position(account, str(INSTRUMENTS[inst].security_id))
    assert expected is not None
    assert (changed.avg_open_px, changed.realized_pnl) == (expected.avg_open_px, expected.realized_pnl)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_busted_spread_nets_to_zero_whatever_the_order_of_its_reports(data: st.DataObject) -> None:
    src = ScriptedSession(clock=ManualClock(T0), trade_date="20261120")
    spread = src.spread_order(ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="A", qty=2, price="15.5")
    fills = [one(m) for m in spread.fill(2, "15.5", ["4500.5", "4485"])]
    busts = [one(m) for m in spread.bust()]
    kept = data.draw(st.sets(st.integers(1, len(busts) - 1)))  # the summary bust, and any of the leg busts
    events = fills + [busts[0]] + [busts[i] for i in sorted(kept)]
    book = book_of(data.draw(st.permutations(events)))
    assert [(p.instrument, p.net_qty, p.fill_count, p.busts) for p in book.snapshot()] == [
        ("ESZ6", 0, 0, 1),
        ("ESH7", 0, 0, 1),
    ]
    assert book.exceptions == ()
    assert book.spread_summaries == 1
