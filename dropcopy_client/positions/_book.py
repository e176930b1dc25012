"""PositionBook: net positions from drop copy fills, with CME's bust, correction and spread semantics.

Conventions (what-users-expect.md "Position-keeping conventions", spec §4.2-§4.5):

* key = account (1) + instrument (48 SecurityID), optionally split by trade date (75);
* outright fills (442=1 or absent) and spread legs (442=2) count; spread summaries (442=3) never do;
* a bust (39=H, 20=1) reverses exactly the fill whose ExecID ends with its ExecRefID (19, last 9 characters),
  within the same instrument and account; a spread summary bust reverses every leg with the same
  SecondaryExecID (527) from the same account and source session;
* a correction (39=G, 20=2) re-prices the fill it names (new 31) and never adds quantity;
* every event is applied at most once, by ExecID;
* a bust or correction whose fill was never seen, or whose reference is ambiguous, goes to ``exceptions``:
  never a silent miss. It waits there: if its fill arrives later (another session, a replay in another
  order), it is applied then and the exception goes away, so the end result does not depend on arrival order.

Average price and realized P&L use average-cost accounting: fills that extend the position move the average
open price; fills that reduce it realize ``(price - average) * quantity`` (sign-adjusted), in price units. A
bust or correction anywhere in the history recomputes that one key from its remaining fills, so the result is
exactly what it would have been had the busted fill never happened (or had it traded at the corrected price).

What is in memory, and what is not: the book keeps running totals per key, working orders, exceptions and
what busts and corrections did (which fills they reversed or re-priced: a few entries per bust or correction).
Every event it applies becomes one row of its :class:`~dropcopy_client.positions.FillHistory` -- in memory by
default, or on disk with :class:`~dropcopy_client.positions.SqliteFillHistory` -- and the rare lookups (the
fill a bust names, the fills of a key to recompute, "was this ExecID applied") read it back. Each key also
remembers its totals before every 1,024th of its fills and which blocks of ``2**16`` rows hold its fills (a few
bytes per block), so a bust refolds at most 1,024 fills, read from those blocks only, not the key's whole
history. :meth:`PositionBook.load` rebuilds the whole book from the rows
alone, replaying them through the same code in the same order: the result is the live book's, exactly.

All arithmetic runs in a fixed :class:`decimal.Context`: handlers run on the thread that feeds the book, and a
handler changing that thread's decimal context must not change positions.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import hashlib
import sqlite3
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from operator import itemgetter
from typing import Any, TypeAlias

import attrs

from dropcopy_client._enums import MassActionResponse, MultiLegReportingType, Side
from dropcopy_client._messages import (
    CancelAck,
    ExecutionReport,
    Fill,
    MessageError,
    ModifyAck,
    OrderAck,
    OrderElimination,
    OrderMassActionReport,
    TradeBust,
    TradeCorrection,
)
from dropcopy_client.positions._history import (
    ACCOUNT,
    ACK,
    BAD_FILL,
    BAD_LEG,
    BUST,
    CL_ORD_ID,
    CORRECTION,
    COUNTED,
    CUM,
    DESC,
    DONE,
    ERROR,
    EXEC_ID,
    EXEC_REF,
    FILL,
    ID,
    KIND,
    LEAVES,
    LEG,
    MASS_ACTION,
    ORDER_ID,
    ORDER_QTY,
    OTHER,
    PRICE,
    PX,
    QTY,
    SECONDARY,
    SECURITY_ID,
    SESSION,
    SIDE,
    SOURCE,
    SPREAD_BUST,
    SPREAD_CORRECTION,
    SUMMARY,
    SYMBOL,
    TEXT,
    TIME,
    TRADE_DATE,
    TRADE_ID,
    FillHistory,
    FillHistoryError,
    MemoryFillHistory,
    Row,
    SqliteFillHistory,
)

ZERO = Decimal(0)
EXEC_REF_LEN = 9  # ExecRefID carries the right-most 9 characters of the original ExecID (spec §4.2)
#: the book's arithmetic context (module docstring): 28 significant digits, banker's rounding, loud errors
CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
# Explicit context methods rather than operators under decimal.localcontext(): entering a local context costs
# 0.6 us per event, more than all the arithmetic of a fill.
_add, _sub, _mul, _div = CONTEXT.add, CONTEXT.subtract, CONTEXT.multiply, CONTEXT.divide

#: a key remembers its totals before every MARK_EVERY-th of its fills, and which blocks of 2**BLOCK_BITS rows
#: hold its fills (module docstring): a bust refolds at most MARK_EVERY fills, read from those blocks only
MARK_EVERY = 1024
BLOCK_BITS = 16
#: rows a book records before it flushes its history by itself (the client flushes every batch)
AUTO_FLUSH = 10_000

Key: TypeAlias = tuple[str, str, "int | None"]  # account, SecurityID, trade date yyyymmdd (None: not split)
_Ref: TypeAlias = tuple[str, str]  # SecurityID, last 9 characters of an ExecID
_SpreadKey: TypeAlias = tuple[str, str, str]  # account, source session (inner 56), SecondaryExecID (527)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_SIGN = {"1": 1, "2": -1}
_SIDE_TEXT: dict[Side, str] = {Side.BUY: "1", Side.SELL: "2"}
_SUMMARY = MultiLegReportingType.MULTI_LEG_SECURITY
_LEG = MultiLegReportingType.INDIVIDUAL_LEG_OF_MULTI_LEG


class _Memo(dict[Any, Any]):
    """Converted values that repeat (prices, dates): a dict lookup instead of a conversion."""

    def __init__(self, convert: Callable[[Any], Any], limit: int = 100_000) -> None:
        super().__init__()
        self._convert = convert
        self._limit = limit

    def __missing__(self, key: Any) -> Any:
        value = self._convert(key)
        if len(self) < self._limit:
            self[key] = value
        return value


def _date_from_int(value: int) -> dt.date:
    return dt.date(value // 10000, value // 100 % 100, value % 100)


_DECIMALS = _Memo(Decimal)  # exact price text -> Decimal
_DATE_INTS = _Memo(lambda d: d.year * 10000 + d.month * 100 + d.day)
_DATES = _Memo(_date_from_int)


def _date_int(value: dt.date | None) -> int | None:
    return None if value is None else int(_DATE_INTS[value])


def _date_of(value: int | None) -> dt.date | None:
    return None if value is None else _DATES[value]


def _time_of(value: int | None) -> dt.datetime | None:
    return None if value is None else _EPOCH + dt.timedelta(microseconds=value)


def _micros(moment: dt.datetime | None, ns: int | None) -> int | None:
    """A transact time as integer microseconds since the epoch (the decoder's exact ns when it has them)."""
    if ns is not None:
        return ns // 1000
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _MICRO


def _side_text(side: Side | None) -> str | None:
    if side is None:
        return None
    return _SIDE_TEXT.get(side) or side.value


def _price_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _text(value: Decimal | None) -> str | None:
    """A Decimal as plain text (never exponent notation), for JSON and CSV."""
    return None if value is None else format(value, "f")


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@attrs.frozen
class Position:
    """Net position of one account in one instrument (and trade date, when the book splits by date).

    Quantities are contracts; prices, notionals and ``realized_pnl`` are in price units (``realized_value``
    is money, when a multiplier for the product (55 Symbol) was given to the book). ``fill_count``,
    ``bought_qty`` and ``sold_qty`` count live fills only: a busted fill is gone, and counted in ``busts``.
    """

    account: str
    security_id: str
    symbol: str | None
    security_desc: str | None
    trade_date: dt.date | None
    bought_qty: int
    sold_qty: int
    net_qty: int
    avg_open_px: Decimal | None
    realized_pnl: Decimal
    buy_notional: Decimal
    sell_notional: Decimal
    fill_count: int
    busts: int
    corrections: int
    last_fill_time: dt.datetime | None
    multiplier: Decimal | None = None
    uncertain: bool = False

    @property
    def instrument(self) -> str:
        """Display name: SecurityDesc (107), else Symbol (55), else SecurityID (48)."""
        return self.security_desc or self.symbol or self.security_id

    @property
    def buy_vwap(self) -> Decimal | None:
        """Volume-weighted average price of the live buys (None when nothing was bought)."""
        return CONTEXT.divide(self.buy_notional, self.bought_qty) if self.bought_qty else None

    @property
    def sell_vwap(self) -> Decimal | None:
        """Volume-weighted average price of the live sells (None when nothing was sold)."""
        return CONTEXT.divide(self.sell_notional, self.sold_qty) if self.sold_qty else None

    @property
    def realized_value(self) -> Decimal | None:
        """Realized P&L in money, when a multiplier for the product is configured."""
        return CONTEXT.multiply(self.realized_pnl, self.multiplier) if self.multiplier is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (Decimals as exact strings, dates ISO), derived values included, stable order."""
        return {
            "account": self.account,
            "instrument": self.instrument,
            "security_id": self.security_id,
            "symbol": self.symbol,
            "security_desc": self.security_desc,
            "trade_date": _iso(self.trade_date),
            "bought_qty": self.bought_qty,
            "sold_qty": self.sold_qty,
            "net_qty": self.net_qty,
            "avg_open_px": _text(self.avg_open_px),
            "buy_vwap": _text(self.buy_vwap),
            "sell_vwap": _text(self.sell_vwap),
            "realized_pnl": _text(self.realized_pnl),
            "realized_value": _text(self.realized_value),
            "multiplier": _text(self.multiplier),
            "buy_notional": _text(self.buy_notional),
            "sell_notional": _text(self.sell_notional),
            "fill_count": self.fill_count,
            "busts": self.busts,
            "corrections": self.corrections,
            "last_fill_time": _iso(self.last_fill_time),
            "uncertain": self.uncertain,
        }


@attrs.frozen
class PositionException:
    """Something the book could not apply, kept for the end-of-day exception list.

    ``kind`` is one of: ``unknown fill`` (a bust or correction whose fill was never seen), ``unknown spread``
    (a spread summary bust with no known legs or summary), ``ambiguous reference`` (several fills match),
    ``missing reference`` (no 19 / 527), ``unknown instrument`` (a fill without 48 SecurityID), ``unusable
    fill`` / ``unusable correction`` (no side, quantity or price), ``quantity mismatch`` (a correction whose
    32 differs from the fill's: re-priced anyway), ``correction of a busted fill``, ``no trade date`` (a
    fill without 75 in a book for one trade date) and ``undecodable message``.
    """

    kind: str
    reason: str
    exec_id: str | None
    exec_ref_id: str | None
    account: str | None
    security_id: str | None
    trade_date: dt.date | None = None
    event: object = attrs.field(default=None, repr=False, eq=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the event itself is left out)."""
        return {
            "kind": self.kind,
            "reason": self.reason,
            "exec_id": self.exec_id,
            "exec_ref_id": self.exec_ref_id,
            "account": self.account,
            "security_id": self.security_id,
            "trade_date": _iso(self.trade_date),
        }


@attrs.frozen
class WorkingOrder:
    """An open order, from acknowledgements (when the group subscribes to them)."""

    order_id: str
    account: str | None
    security_id: str | None
    instrument: str | None
    side: Side | None
    order_qty: int | None
    leaves_qty: int | None
    price: Decimal | None
    cl_ord_id: str | None
    updated_at: dt.datetime | None
    cum_qty: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "order_id": self.order_id,
            "account": self.account,
            "security_id": self.security_id,
            "instrument": self.instrument,
            "side": self.side.name if self.side is not None else None,
            "order_qty": self.order_qty,
            "leaves_qty": self.leaves_qty,
            "cum_qty": self.cum_qty,
            "price": _text(self.price),
            "cl_ord_id": self.cl_ord_id,
            "updated_at": _iso(self.updated_at),
        }


#: exceptions that wait for their fill and disappear when it arrives (module docstring)
_PENDING_KINDS = frozenset({"unknown fill", "unknown spread"})

#: the fields of ``Position.to_dict()``, in order: JSON keys, CSV columns and DataFrame columns
POSITION_COLUMNS = (
    "account",
    "instrument",
    "security_id",
    "symbol",
    "security_desc",
    "trade_date",
    "bought_qty",
    "sold_qty",
    "net_qty",
    "avg_open_px",
    "buy_vwap",
    "sell_vwap",
    "realized_pnl",
    "realized_value",
    "multiplier",
    "buy_notional",
    "sell_notional",
    "fill_count",
    "busts",
    "corrections",
    "last_fill_time",
    "uncertain",
)


class _Ledger:
    """Running state of one key. ``marks`` holds (row id, totals before that fill) for every MARK_EVERY-th fill,
    ``blocks`` the blocks of rows holding its fills: a recomputation starts from the mark before the fill it
    concerns and reads only those blocks."""

    __slots__ = (
        "account",
        "block",
        "blocks",
        "bought",
        "busts",
        "buy_notional",
        "corrections",
        "fill_count",
        "last_time",
        "marks",
        "net",
        "open_cost",
        "realized",
        "security_desc",
        "security_id",
        "sell_notional",
        "sessions",
        "sold",
        "symbol",
        "trade_date",
        "unmarked",
    )

    def __init__(self, account: str, security_id: str, trade_date: int | None) -> None:
        self.account = account
        self.security_id = security_id
        self.trade_date = trade_date
        self.symbol: str | None = None
        self.security_desc: str | None = None
        self.net = 0
        self.open_cost = ZERO  # |net| * average open price
        self.realized = ZERO
        self.bought = 0
        self.sold = 0
        self.buy_notional = ZERO
        self.sell_notional = ZERO
        self.fill_count = 0
        self.busts = 0
        self.corrections = 0
        self.last_time: int | None = None  # microseconds since the epoch
        self.sessions: set[str] = set()
        self.block = -1
        self.blocks = array("q")
        self.marks: list[tuple[Any, ...]] = []
        self.unmarked = MARK_EVERY  # fills since the last mark: the first fill takes one

    def add(self, row_id: int, sign: int, qty: int, px: Decimal, time: int | None) -> None:
        block = row_id >> BLOCK_BITS
        if block != self.block:
            self.block = block
            self.blocks.append(block)
        if self.unmarked >= MARK_EVERY:
            self.unmarked = 0
            self.marks.append((row_id, *self._totals()))
        self.unmarked += 1
        notional = _mul(px, qty)
        if sign > 0:
            self.bought += qty
            self.buy_notional = _add(self.buy_notional, notional)
        else:
            self.sold += qty
            self.sell_notional = _add(self.sell_notional, notional)
        self.fill_count += 1
        if time is not None and (self.last_time is None or time > self.last_time):
            self.last_time = time
        net = self.net
        if net == 0 or (net > 0) == (sign > 0):
            self.open_cost = _add(self.open_cost, notional)
            self.net = net + sign * qty
            return
        held = abs(net)
        closing = min(qty, held)
        avg = _div(self.open_cost, held)
        gained = _mul(_sub(px, avg), closing)  # closing a short gains when the price fell: negated, exactly
        self.realized = _add(self.realized, gained if net > 0 else gained.copy_negate())
        self.open_cost = _sub(self.open_cost, _mul(avg, closing))
        self.net = net + sign * qty
        if qty > held:  # flipped: the rest opens a new position at this price
            self.open_cost = _mul(px, qty - held)
        elif self.net == 0:
            self.open_cost = ZERO

    def _totals(self) -> tuple[Any, ...]:
        return (
            self.net,
            self.open_cost,
            self.realized,
            self.bought,
            self.sold,
            self.buy_notional,
            self.sell_notional,
            self.fill_count,
            self.last_time,
        )

    def rewind(self, row_id: int) -> list[tuple[int, int]]:
        """Go back to the totals of the last mark at or before ``row_id``; forget the marks and blocks from there
        on and return the row ranges (inclusive, ascending) that hold this key's fills from there on."""
        marks, blocks = self.marks, self.blocks
        at = max(bisect.bisect_right(marks, row_id, key=itemgetter(0)) - 1, 0)
        start = marks[at][0]
        cut = bisect.bisect_left(blocks, start >> BLOCK_BITS)
        ranges: list[tuple[int, int]] = []
        for block in blocks[cut:]:
            lo, hi = max(start, block << BLOCK_BITS), ((block + 1) << BLOCK_BITS) - 1
            if ranges and ranges[-1][1] + 1 >= lo:
                ranges[-1] = (ranges[-1][0], hi)
            else:
                ranges.append((lo, hi))
        (
            _,
            self.net,
            self.open_cost,
            self.realized,
            self.bought,
            self.sold,
            self.buy_notional,
            self.sell_notional,
            self.fill_count,
            self.last_time,
        ) = marks[at]
        del marks[at:]
        # the mark's block stays listed: fills of this key before the mark may be in it
        del blocks[cut:]
        self.block = start >> BLOCK_BITS
        blocks.append(self.block)
        self.unmarked = MARK_EVERY
        return ranges

    def snapshot(self, multiplier: Decimal | None, uncertain: bool) -> Position:
        return Position(
            account=self.account,
            security_id=self.security_id,
            symbol=self.symbol,
            security_desc=self.security_desc,
            trade_date=_date_of(self.trade_date),
            bought_qty=self.bought,
            sold_qty=self.sold,
            net_qty=self.net,
            avg_open_px=_div(self.open_cost, abs(self.net)) if self.net else None,
            realized_pnl=self.realized,
            buy_notional=self.buy_notional,
            sell_notional=self.sell_notional,
            fill_count=self.fill_count,
            busts=self.busts,
            corrections=self.corrections,
            last_fill_time=_time_of(self.last_time),
            multiplier=multiplier,
            uncertain=uncertain,
        )


class _Order:
    """A working order while it is open (a WorkingOrder is built only when someone asks)."""

    __slots__ = (
        "account",
        "cl_ord_id",
        "cum",
        "instrument",
        "leaves",
        "order_id",
        "order_qty",
        "price",
        "security_id",
        "side",
        "updated",
    )

    def __init__(self, row: Row, previous: _Order | None) -> None:
        self.order_id: str = row[ORDER_ID]
        self.account: str | None = row[ACCOUNT]
        self.security_id: str | None = row[SECURITY_ID]
        self.instrument: str | None = row[DESC] or row[SYMBOL]
        self.side: str | None = row[SIDE]
        order_qty = row[ORDER_QTY]
        price = row[PRICE]
        self.order_qty: int | None = (
            order_qty if order_qty is not None or previous is None else previous.order_qty
        )
        self.price: str | None = price if price is not None or previous is None else previous.price
        self.leaves: int | None = row[LEAVES]
        self.cl_ord_id: str | None = row[CL_ORD_ID]
        self.updated: int | None = row[TIME]
        self.cum: int | None = row[CUM]

    def public(self) -> WorkingOrder:
        return WorkingOrder(
            order_id=self.order_id,
            account=self.account,
            security_id=self.security_id,
            instrument=self.instrument,
            side=None if self.side is None else Side(self.side),
            order_qty=self.order_qty,
            leaves_qty=self.leaves,
            price=None if self.price is None else _DECIMALS[self.price],
            cl_ord_id=self.cl_ord_id,
            updated_at=_time_of(self.updated),
            cum_qty=self.cum,
        )


@attrs.define(eq=False)
class _Exception:
    row_id: int  # the row it is about: a waiting exception is resolved by it
    spread: _SpreadKey | None
    public: PositionException


# ------------------------------------------------------------------------------------------------ rows


def _er_row(event: ExecutionReport, row_id: int, orders: Mapping[str, object]) -> Row:
    """The history row of an execution report (module docstring of ``_history``)."""
    kind = _ER_KINDS.get(type(event))
    if kind is None:
        kind = next((k for cls, k in _ER_KINDS.items() if isinstance(event, cls)), OTHER)
    if kind == FILL:
        return _fill_row(event, row_id, orders)
    if kind in (BUST, CORRECTION):
        if event.multi_leg_reporting_type is _SUMMARY:
            kind += 1  # SPREAD_BUST, SPREAD_CORRECTION
        return (
            row_id,
            kind,
            event.exec_id,
            event.exec_ref_id,
            event.account,
            event.security_id,
            _date_int(event.trade_date),
            _side_text(event.side),
            event.last_qty,
            _price_text(event.last_px),
            None,
            event.md_trade_entry_id,
            event.secondary_exec_id,
            event.source.sender_comp_id,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    leg = event.multi_leg_reporting_type is _LEG  # a leg's acknowledgements carry the spread order's id
    if kind == ACK and not leg:
        return (
            row_id,
            ACK,
            event.exec_id,
            None,
            event.account,
            event.security_id,
            None,
            _side_text(event.side),
            None,
            None,
            _micros(event.transact_time, event.transact_time_ns),
            None,
            None,
            None,
            None,
            event.order_id,
            event.leaves_qty,
            event.cum_qty,
            event.order_qty,
            _price_text(event.price),
            event.cl_ord_id,
            None,
            event.security_desc or event.symbol,  # a working order shows one name: 107, else 55
            None,
        )
    if kind == DONE and not leg:
        return (row_id, DONE, event.exec_id, *_NONES_12, event.order_id, *_NONES_8)
    return (row_id, OTHER, event.exec_id, *_NONES_21)


_NONES_8 = (None,) * 8
_NONES_12 = (None,) * 12
_NONES_21 = (None,) * 21
_ER_KINDS: dict[type[ExecutionReport], int] = {
    Fill: FILL,
    TradeBust: BUST,
    TradeCorrection: CORRECTION,
    OrderAck: ACK,
    ModifyAck: ACK,
    CancelAck: DONE,
    OrderElimination: DONE,
}


def _fill_row(event: ExecutionReport, row_id: int, orders: Mapping[str, object]) -> Row:
    """A fill's row. Its order's columns only while that order is working: otherwise they change nothing."""
    side = event.side
    side_text = _SIDE_TEXT.get(side) if side is not None else None
    if side_text is None and side is not None:
        side_text = side.value
    security_id = event.security_id
    qty = event.last_qty
    px = event.last_px
    mlrt = event.multi_leg_reporting_type
    usable = security_id and side_text in _SIGN and qty and qty > 0 and px is not None
    if mlrt is None or mlrt is not _LEG:
        kind = SUMMARY if mlrt is _SUMMARY else FILL if usable else BAD_FILL
        secondary = source = None
        order_id = event.order_id
        if order_id in orders:
            leaves, cum = event.leaves_qty, event.cum_qty
        else:
            order_id = leaves = cum = None
    else:  # a leg: never touches working orders (it carries the spread order's id)
        kind = LEG if usable else BAD_LEG
        secondary, source = event.secondary_exec_id, event.source.sender_comp_id
        order_id = leaves = cum = None
    date = event.trade_date
    ns = event.transact_time_ns
    return (
        row_id,
        kind,
        event.exec_id,
        event.exec_ref_id,
        event.account,
        security_id,
        None if date is None else _DATE_INTS[date],
        side_text,
        qty,
        None if px is None else str(px),
        ns // 1000 if ns is not None else _micros(event.transact_time, None),
        event.md_trade_entry_id,
        secondary,
        source,
        event.delivery.session,
        order_id,
        leaves,
        cum,
        None,
        None,
        None,
        event.symbol,
        event.security_desc,
        None,
    )


def _mass_action_row(event: OrderMassActionReport, row_id: int) -> Row | None:
    if event.mass_action_response is MassActionResponse.REJECTED:
        return None
    ids = [a.affected_order_id for a in event.affected_orders if a.affected_order_id]
    if not ids:
        return None
    return (row_id, MASS_ACTION, *_NONES_21, "\x01".join(ids))


def _error_digest(event: MessageError) -> str:
    """What makes two undecodable messages the same one (its reason and raw bytes)."""
    digest = hashlib.blake2b(event.reason.encode("utf-8", "surrogateescape"), digest_size=16)
    digest.update(b"\x00")
    digest.update(event.raw)
    return digest.hexdigest()


def _error_row(event: MessageError, digest: str, row_id: int) -> Row:
    where = f" (message #{event.delivery.seq_num} on {event.delivery.session})" if event.delivery else ""
    return (row_id, ERROR, digest, *_NONES_20, event.reason + where)


_NONES_20 = (None,) * 20


def _sign(side: str | None) -> int:
    return _SIGN.get(side, 0) if side is not None else 0


class PositionBook:
    """Positions, working orders and exceptions, fed by typed events; idempotent by ExecID.

    ``history`` keeps the fill history (module docstring): a :class:`MemoryFillHistory` by default, or a
    :class:`SqliteFillHistory` for a book whose memory must not grow with its fills. ``by_trade_date``
    splits every position by 75 TradeDate. ``trade_date`` makes a book for that one trade date (implies the
    split): fills of other dates are left out, and busts or corrections of those fills are recognised as
    belonging to their own date instead of becoming exceptions here. ``multipliers`` maps a product (55
    Symbol) to its contract multiplier, for ``Position.realized_value``.

    ``apply``, ``flush`` and ``load`` are called by one thread (the client's dispatcher, or a replay);
    ``snapshot`` and the other readers may be called from any thread.

    Fed by a journal (events with ``journal_id``), the book trusts the journal's unique ExecIDs: an event
    whose journal id is above every one applied so far is new without a lookup. Any other event is checked
    against the history. So feed one book from one journal only.
    """

    def __init__(
        self,
        history: FillHistory | None = None,
        *,
        by_trade_date: bool = False,
        trade_date: dt.date | None = None,
        multipliers: Mapping[str, Decimal | int | str] | None = None,
    ) -> None:
        self.history: FillHistory = history if history is not None else MemoryFillHistory()
        self.trade_date = trade_date
        self.by_trade_date = by_trade_date or trade_date is not None
        self._date = _date_int(trade_date)
        self._multipliers = {k: Decimal(v) for k, v in (multipliers or {}).items()}
        self._ledgers: dict[Key, _Ledger] = {}
        self._touched: dict[int, list[Any]] = {}  # fill row id -> [live, price text] after a bust/correction
        self._refs: dict[_Ref, list[int]] = {}  # a correction's own ExecID ending -> the fill it re-priced
        self._busted_spreads: set[_SpreadKey] = set()
        self._pending: dict[_Ref, list[tuple[Row, object]]] = {}
        self._exceptions: list[_Exception] = []
        self._orders: dict[str, _Order] = {}
        self._uncertain_sessions: set[str] = set()
        self._spread_summaries: Counter[int | None] = Counter()
        self._last_row = self.history.last_row_id
        self._last_journal_id = self.history.last_journal_id
        #: rows already in the history: applying more before load() would build on an empty book
        self._unloaded = self._last_row > 0
        self._fed = False
        self._unflushed = 0
        self._now = 0  # id of the row being applied: every lookup sees the history up to it
        self._lock = threading.Lock()

    def _restart(self, history: FillHistory) -> None:
        """Forget everything and start again on ``history`` (the client does this at each start, before it
        loads the book from its rows; holders of this object keep a valid reference)."""
        old = self.history
        with self._lock:
            keep = (self.by_trade_date, self.trade_date, self._multipliers)
        PositionBook.__init__(self, history, by_trade_date=keep[0], trade_date=keep[1], multipliers=keep[2])
        if old is not history:
            old.close()

    @property
    def unflushed(self) -> int:
        """Events applied since the last :meth:`flush` (their rows are not durable yet)."""
        return self._unflushed

    @property
    def needs_load(self) -> bool:
        """Whether the history already holds rows this book has not loaded (call :meth:`load` first)."""
        return self._unloaded

    # ------------------------------------------------------------------------------------------ feeding
    def apply(self, event: object, *, snapshots: bool = True) -> list[Position]:
        """Apply one event; returns the positions it changed (empty for duplicates and non-trade events).

        ``snapshots=False`` skips building the changed positions when nobody consumes them; the book itself is
        updated either way. With a :class:`SqliteFillHistory` the event's row is durable after :meth:`flush`.
        """
        if self._unloaded:
            raise FillHistoryError(
                "this book's history already holds rows: call book.load() before applying more"
            )
        # acquire/release rather than ``with``: half the cost, on every event
        self._lock.acquire()
        try:
            self._fed = True
            row: Row | None
            if isinstance(event, ExecutionReport):
                journal_id = event.delivery.journal_id
                if journal_id is not None and journal_id > self._last_journal_id:
                    # a journal row id above every one applied is new: the journal's ExecIDs are unique
                    self._last_journal_id = journal_id
                elif self.history.seen(event.exec_id):
                    return []
                row_id = (
                    journal_id
                    if journal_id is not None and journal_id > self._last_row
                    else self._last_row + 1
                )
                row = (
                    _fill_row(event, row_id, self._orders)
                    if type(event) is Fill
                    else _er_row(event, row_id, self._orders)
                )
            else:
                row = self._other_row(event)
                if row is None:
                    return []
            self._last_row = row[ID]
            self.history.record(row)
            changed = self._apply_row(row, event)
            self._unflushed += 1
            if self._unflushed >= AUTO_FLUSH:
                self._flush()
            if not snapshots or not changed:
                return []
            unique = {id(ledger): ledger for ledger in changed}
            return [self._snap(ledger) for ledger in unique.values()]
        finally:
            self._lock.release()

    def _other_row(self, event: object) -> Row | None:
        """The row of an event that is not an execution report (None: nothing to keep, or a duplicate)."""
        row: Row | None = None
        if isinstance(event, OrderMassActionReport):
            journal_id = event.delivery.journal_id
            row = _mass_action_row(event, self._next_id(journal_id))
        elif isinstance(event, MessageError):
            # never by journal id: the same undecodable bytes on two journal rows are one exception
            journal_id = event.journal_id
            digest = _error_digest(event)
            if not self.history.seen(digest, error=True):
                row = _error_row(event, digest, self._next_id(journal_id))
        else:
            delivery = getattr(event, "delivery", None)
            journal_id = getattr(delivery, "journal_id", None)
        if journal_id is not None and journal_id > self._last_journal_id:
            self._last_journal_id = journal_id
        return row

    def apply_all(self, events: Iterable[object]) -> None:
        for event in events:
            self.apply(event)

    def flush(self) -> None:
        """Make the history rows of everything applied so far durable, with :attr:`last_journal_id`, in one
        step. The client calls it once per journaled batch; a no-op for the in-memory history."""
        with self._lock:  # the marker under the lock; the write without it, so readers never wait for disk
            marker = self._last_journal_id
            self._unflushed = 0
        self.history.flush(marker)

    def _flush(self) -> None:
        self.history.flush(self._last_journal_id)
        self._unflushed = 0

    def _write_rows_into(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """The client's writer: this book's pending rows and marker into the journal transaction ``conn`` holds
        open (the history is a :class:`SqliteFillHistory` on the journal's file); pass the result to
        :meth:`_rows_written` after the commit."""
        history = self.history
        assert isinstance(history, SqliteFillHistory)
        with (
            self._lock
        ):  # as in flush(): the marker under the lock, the write without it (readers never wait)
            marker = self._last_journal_id
            applied = self._unflushed
        return history.write_into(conn, marker), marker, applied

    def _rows_written(self, token: tuple[int, int, int]) -> None:
        count, marker, applied = token
        history = self.history
        assert isinstance(history, SqliteFillHistory)
        with self._lock:
            history.written(count, marker)
            self._unflushed = max(0, self._unflushed - applied)

    @property
    def last_journal_id(self) -> int:
        """The highest journal id applied (0: none). After :meth:`load`, the one the history was flushed at."""
        return self._last_journal_id

    def load(self, *, progress: Callable[[int], object] | None = None) -> int:
        """Rebuild this (fresh) book from its history's rows alone -- no decoding -- and return the journal id
        they cover: the client then feeds the journal rows after it through the normal path.

        The rows replay through the same code, in the same order, as when they were applied, so positions,
        working orders, exceptions and spread summary counts are exactly the live book's (``event`` is None on
        the exceptions: the events themselves are not kept). ``progress(rows)`` is called every 100,000 rows.
        """
        with self._lock:
            if self._fed:
                raise ValueError("load() rebuilds a fresh book; this one has been fed already")
            self._fed = True
            apply_row = self._apply_row
            done = 0
            for row in self.history.rows():
                apply_row(row, None)
                done += 1
                if progress is not None and done % 100_000 == 0:
                    progress(done)
            self._last_row = max(self._last_row, self.history.last_row_id)
            self._last_journal_id = self.history.last_journal_id
            self._unloaded = False
            if progress is not None:
                progress(done)
            return self._last_journal_id

    def mark_uncertain(self, session: str, uncertain: bool) -> None:
        """Say whether ``session`` has an open sequence gap (its positions may be incomplete)."""
        with self._lock:
            if uncertain:
                self._uncertain_sessions.add(session)
            else:
                self._uncertain_sessions.discard(session)

    # ------------------------------------------------------------------------------------------ reading
    def snapshot(self) -> list[Position]:
        """Every position, sorted by account, SecurityID and trade date."""
        with self._lock:
            ledgers = sorted(
                self._ledgers.values(),
                key=lambda lg: (lg.account, lg.security_id, lg.trade_date or 0),
            )
            return [self._snap(lg) for lg in ledgers]

    def position(self, account: str, security_id: str, trade_date: dt.date | None = None) -> Position | None:
        """One position; ``trade_date`` matters only in a book split by trade date."""
        date = (
            self._date if self._date is not None else (_date_int(trade_date) if self.by_trade_date else None)
        )
        with self._lock:
            ledger = self._ledgers.get((account, security_id, date))
            return self._snap(ledger) if ledger is not None else None

    def find(
        self, instrument: str, *, account: str | None = None, trade_date: dt.date | None = None
    ) -> list[Position]:
        """Positions by instrument as people name it: SecurityID (48), SecurityDesc (107, e.g. ``"ESZ6"``) or
        Symbol (55, the product, e.g. ``"ES"``: every expiry of it); optionally of one account and, in a book
        split by trade date, one date. Sorted like :meth:`snapshot`."""
        date = _date_int(trade_date) if trade_date is not None else None
        with self._lock:
            ledgers = sorted(
                (
                    lg
                    for lg in self._ledgers.values()
                    if instrument in (lg.security_id, lg.security_desc, lg.symbol)
                    and (account is None or lg.account == account)
                    and (date is None or lg.trade_date == date)
                ),
                key=lambda lg: (lg.account, lg.security_id, lg.trade_date or 0),
            )
            return [self._snap(lg) for lg in ledgers]

    @property
    def exceptions(self) -> tuple[PositionException, ...]:
        """What the book could not apply (see :class:`PositionException`), in arrival order."""
        with self._lock:
            return tuple(e.public for e in self._exceptions)

    def working_orders(
        self, account: str | None = None, security_id: str | None = None
    ) -> list[WorkingOrder]:
        """Open orders from acknowledgements (optionally of one account and/or instrument), sorted by account,
        SecurityID and OrderID."""
        with self._lock:
            orders = [
                o.public()
                for o in self._orders.values()
                if (account is None or o.account == account)
                and (security_id is None or o.security_id == security_id)
            ]
        return sorted(orders, key=lambda o: (o.account or "", o.security_id or "", o.order_id))

    @property
    def spread_summaries(self) -> int:
        """Spread summary fills seen (kept out of instrument positions)."""
        with self._lock:
            return sum(self._spread_summaries.values())

    def spread_summaries_on(self, trade_date: dt.date) -> int:
        """Spread summary fills of one trade date (75)."""
        with self._lock:
            return self._spread_summaries[_date_int(trade_date)]

    def to_dataframe(self, *, as_float: bool = False) -> Any:
        """The snapshot as a pandas DataFrame, one row per position (``pip install dropcopy-client[pandas]``).

        Prices stay exact ``Decimal`` objects unless ``as_float``; the columns are the same for an empty book.
        """
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_dataframe() needs pandas: pip install 'dropcopy-client[pandas]'") from exc
        rows = []
        for p in self.snapshot():
            row = {name: getattr(p, name) for name in POSITION_COLUMNS}
            if as_float:
                row = {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}
            rows.append(row)
        return pd.DataFrame(rows, columns=list(POSITION_COLUMNS))

    # ------------------------------------------------------------------------------------------ internals
    def _next_id(self, journal_id: int | None) -> int:
        """Row ids follow the journal when the event has a journal id, and always increase."""
        if journal_id is not None and journal_id > self._last_row:
            return journal_id
        return self._last_row + 1

    def _snap(self, ledger: _Ledger) -> Position:
        multiplier = self._multipliers.get(ledger.symbol) if ledger.symbol else None
        uncertain = not ledger.sessions.isdisjoint(self._uncertain_sessions)
        return ledger.snapshot(multiplier, uncertain)

    def _apply_row(self, row: Row, event: object) -> list[_Ledger]:
        """The one place rows take effect, live (``event`` given) and in :meth:`load` (``event`` None)."""
        self._now = row[ID]
        kind = row[KIND]
        if kind <= BAD_LEG:
            return self._fill(row, event)
        if kind == ACK:
            self._ack(row)
        elif kind == DONE:
            if row[ORDER_ID]:
                self._orders.pop(row[ORDER_ID], None)
        elif kind in (BUST, SPREAD_BUST):
            return self._bust(row, event)
        elif kind in (CORRECTION, SPREAD_CORRECTION):
            return self._correction(row, event)
        elif kind == MASS_ACTION:
            for order_id in row[TEXT].split("\x01"):
                self._orders.pop(order_id, None)
        elif kind == ERROR:
            exc = PositionException("undecodable message", row[TEXT], None, None, None, None, None, event)
            self._exceptions.append(_Exception(row[ID], None, exc))
        return []

    def _key(self, row: Row) -> Key:
        date = self._date if self._date is not None else (row[TRADE_DATE] if self.by_trade_date else None)
        return (row[ACCOUNT] or "", row[SECURITY_ID] or "", date)

    def _fill(self, row: Row, event: object) -> list[_Ledger]:
        """A fill of any kind; the counted ones (nearly every row) take the straight path."""
        kind = row[KIND]
        if kind != LEG and kind != BAD_LEG and self._orders and row[ORDER_ID]:
            self._fill_order(row)
        if kind != FILL and kind != LEG:
            return self._uncounted(row, event)
        date = row[TRADE_DATE]
        if self._date is not None and date != self._date:
            return self._other_date(row, event)
        key = (row[ACCOUNT] or "", row[SECURITY_ID], date if self.by_trade_date else None)
        ledger = self._ledgers.get(key)
        if ledger is None:
            ledger = self._ledgers[key] = _Ledger(*key)
        symbol, desc = row[SYMBOL], row[DESC]
        if symbol:
            ledger.symbol = symbol
        if desc:
            ledger.security_desc = desc
        ledger.sessions.add(row[SESSION])
        ledger.add(row[ID], _SIGN[row[SIDE]], row[QTY], _DECIMALS[row[PX]], row[TIME])
        if kind == LEG and row[SECONDARY] and self._busted_spreads:
            spread = (row[ACCOUNT] or "", row[SOURCE], row[SECONDARY])
            if spread in self._busted_spreads:  # the summary bust came before this leg
                self._reverse(row)
                self._resolve(lambda e: e.spread == spread and e.public.kind == "unknown spread")
        if self._pending:
            return [ledger, *self._retry((row[SECURITY_ID], row[EXEC_ID][-EXEC_REF_LEN:]))]
        return [ledger]

    def _uncounted(self, row: Row, event: object) -> list[_Ledger]:
        """A spread summary (counted apart, never in a position) or a fill that cannot count (an exception)."""
        if row[KIND] == SUMMARY:
            date = row[TRADE_DATE]
            if self._date is None or date == self._date:
                self._spread_summaries[date] += 1
            if not self._pending:
                return []
            # a summary bust or correction that came first
            return self._retry((row[SECURITY_ID] or "", row[EXEC_ID][-EXEC_REF_LEN:]))
        if not row[SECURITY_ID]:
            self._exception(
                "unknown instrument", "fill without SecurityID (48); not in any position", row, event
            )
        else:
            self._exception(
                "unusable fill", "fill without a buy/sell side, positive LastQty or LastPx", row, event
            )
        return []

    def _other_date(self, row: Row, event: object) -> list[_Ledger]:
        """A counted fill in a book for another trade date."""
        if row[TRADE_DATE] is None:
            self._exception(
                "no trade date", f"fill without TradeDate (75) in a book for {self.trade_date}", row, event
            )
        else:  # its busts and corrections belong to that date's book
            self._drop_pending((row[SECURITY_ID], row[EXEC_ID][-EXEC_REF_LEN:]))
        return []

    def _retry(self, ref: _Ref) -> list[_Ledger]:
        """Apply the busts and corrections that were waiting for the fill just recorded under ``ref``."""
        changed: list[_Ledger] = []
        for row, event in self._pending.pop(ref, []):
            self._resolve_row(row[ID])
            if row[KIND] in (BUST, SPREAD_BUST):
                changed += self._bust(row, event)
            else:
                changed += self._correction(row, event)
        return changed

    def _drop_pending(self, ref: _Ref) -> None:
        for row, _ in self._pending.pop(ref, []):
            self._resolve_row(row[ID])

    def _resolve_row(self, row_id: int) -> None:
        self._resolve(lambda e: e.row_id == row_id)

    def _resolve(self, predicate: Callable[[_Exception], bool]) -> None:
        """Drop the waiting exceptions (``_PENDING_KINDS``) that ``predicate`` selects: they are applied now."""
        self._exceptions = [
            e for e in self._exceptions if not (e.public.kind in _PENDING_KINDS and predicate(e))
        ]

    def _wait(self, ref: _Ref, row: Row, event: object) -> None:
        self._pending.setdefault(ref, []).append((row, event))

    def _in_book(self, fill: Row) -> bool:
        return self._date is None or fill[TRADE_DATE] == self._date

    def _live(self, fill: Row) -> bool:
        state = self._touched.get(fill[ID])
        return state is None or bool(state[0])

    def _touch(self, fill: Row) -> list[Any]:
        state = self._touched.get(fill[ID])
        if state is None:
            state = self._touched[fill[ID]] = [True, fill[PX]]
        return state

    def _has_summary(self, ref: _Ref) -> bool:
        return any(r[KIND] == SUMMARY for r in self.history.by_ref(ref[0], ref[1], self._now))

    def _find(self, row: Row, event: object) -> Row | None:
        """The one live or busted fill ``row`` (a bust or correction) names, or None with an exception."""
        ref = row[EXEC_REF]
        if not ref:
            self._exception("missing reference", "no ExecRefID (19) on a bust or correction", row, event)
            return None
        key = (row[SECURITY_ID] or "", ref[-EXEC_REF_LEN:])
        candidates = self.history.by_ref(key[0], key[1], self._now)
        matches = [r for r in candidates if r[KIND] in COUNTED and self._in_book(r)]
        corrected = self._refs.get(key)
        if corrected:
            have = {r[ID] for r in matches}
            for fill_id in corrected:
                if fill_id not in have:
                    fill = self.history.row(fill_id)
                    if fill is not None:
                        matches.append(fill)
                        have.add(fill_id)
        account = row[ACCOUNT]
        if account:
            matches = [r for r in matches if (r[ACCOUNT] or "") == account]
        if len(matches) > 1:  # narrow by the full ExecID, the trade id (37711) and the side
            trade_id, sign = row[TRADE_ID], _sign(row[SIDE])
            narrowing: tuple[Callable[[Row], bool], ...] = (
                lambda r: r[EXEC_ID] == ref,
                lambda r: trade_id is not None and r[TRADE_ID] == trade_id,
                lambda r: _sign(r[SIDE]) == sign,
            )
            for keep in narrowing:
                narrowed = [r for r in matches if keep(r)]
                if narrowed:
                    matches = narrowed
                if len(matches) == 1:
                    break
        if not matches:
            if self._date is not None and any(
                r[KIND] in COUNTED and r[TRADE_DATE] is not None and r[TRADE_DATE] != self._date
                for r in candidates
            ):
                return None  # a fill of another trade date: that date's book applies it
            self._exception(
                "unknown fill",
                f"no fill with ExecID ending {ref!r} in instrument {row[SECURITY_ID]}"
                f"{f' for account {account}' if account else ''}",
                row,
                event,
            )
            self._wait(key, row, event)
            return None
        if len(matches) > 1:
            self._exception(
                "ambiguous reference", f"{len(matches)} fills end with {ref!r}; applied to none", row, event
            )
            return None
        return matches[0]

    def _bust(self, row: Row, event: object) -> list[_Ledger]:
        if row[KIND] == SPREAD_BUST:
            return self._spread_bust(row, event)
        fill = self._find(row, event)
        if fill is None or not self._live(fill):
            return []  # unknown (an exception), or already reversed, e.g. by its spread summary's bust
        return [self._reverse(fill)]

    def _spread_bust(self, row: Row, event: object) -> list[_Ledger]:
        secondary = row[SECONDARY]
        if not secondary:
            self._exception(
                "missing reference", "spread summary bust without SecondaryExecID (527)", row, event
            )
            return []
        spread = (row[ACCOUNT] or "", row[SOURCE], secondary)
        self._busted_spreads.add(spread)
        legs = [
            r
            for r in self.history.legs(row[SOURCE], secondary, self._now)
            if (r[ACCOUNT] or "") == spread[0] and self._in_book(r)
        ]
        changed = [self._reverse(leg) for leg in legs if self._live(leg)]
        ref = (row[SECURITY_ID] or "", (row[EXEC_REF] or "")[-EXEC_REF_LEN:])
        if not legs and not self._has_summary(ref):
            self._exception(
                "unknown spread", f"no legs or summary with SecondaryExecID {secondary!r}", row, event, spread
            )
            if row[EXEC_REF]:
                self._wait(ref, row, event)
        return changed

    def _reverse(self, fill: Row) -> _Ledger:
        ledger = self._ledgers[self._key(fill)]
        self._touch(fill)[0] = False
        ledger.busts += 1
        self._recompute(ledger, fill[ID])
        return ledger

    def _correction(self, row: Row, event: object) -> list[_Ledger]:
        if row[KIND] == SPREAD_CORRECTION:
            ref = (row[SECURITY_ID] or "", (row[EXEC_REF] or "")[-EXEC_REF_LEN:])
            if not self._has_summary(ref):
                self._exception(
                    "unknown fill", f"no spread summary fill ending {row[EXEC_REF]!r}", row, event
                )
                self._wait(ref, row, event)
            return []  # spread-level only: the legs carry the instrument positions (spec §4.4)
        fill = self._find(row, event)
        if fill is None:
            return []
        if not self._live(fill):
            self._exception(
                "correction of a busted fill", f"fill {fill[EXEC_ID]} was busted; ignored", row, event
            )
            return []
        if row[PX] is None:
            self._exception("unusable correction", "correction without LastPx (31)", row, event)
            return []
        qty = row[QTY]
        if qty is not None and qty != fill[QTY]:
            self._exception(
                "quantity mismatch",
                f"correction says LastQty {qty}, the fill had {fill[QTY]}; re-priced, quantity kept",
                row,
                event,
            )
        self._touch(fill)[1] = row[PX]
        # a later bust or correction may name this correction's ExecID rather than the original's
        self._refs.setdefault((row[SECURITY_ID] or "", row[EXEC_ID][-EXEC_REF_LEN:]), []).append(fill[ID])
        ledger = self._ledgers[self._key(fill)]
        ledger.corrections += 1
        self._recompute(ledger, fill[ID])
        return [ledger]

    def _recompute(self, ledger: _Ledger, changed_id: int) -> None:
        """Fold the key's live fills again from the block of ``changed_id`` on, at their current prices."""
        ranges = [(lo, min(hi, self._now)) for lo, hi in ledger.rewind(changed_id) if lo <= self._now]
        by_date = self.by_trade_date
        touched = self._touched
        for fill in self.history.key_fills(
            ledger.account, ledger.security_id, ledger.trade_date, by_date, ranges
        ):
            state = touched.get(fill[ID])
            if state is None:
                px = fill[PX]
            elif not state[0]:
                continue
            else:
                px = state[1]
            ledger.add(fill[ID], _SIGN[fill[SIDE]], fill[QTY], _DECIMALS[px], fill[TIME])

    def _exception(
        self, kind: str, reason: str, row: Row, event: object, spread: _SpreadKey | None = None
    ) -> None:
        date = row[TRADE_DATE]
        if self._date is not None and date is not None and date != self._date:
            return  # belongs to the exception list of its own trade date
        public = PositionException(
            kind=kind,
            reason=reason,
            exec_id=row[EXEC_ID],
            exec_ref_id=row[EXEC_REF],
            account=row[ACCOUNT],
            security_id=row[SECURITY_ID],
            trade_date=_date_of(date),
            event=event,
        )
        self._exceptions.append(_Exception(row[ID], spread, public))

    def _fill_order(self, row: Row) -> None:
        order_id = row[ORDER_ID]
        leaves = row[LEAVES]
        if leaves is not None and leaves <= 0:
            self._orders.pop(order_id, None)
            return
        order = self._orders.get(order_id)
        if order is not None:
            if leaves is not None:
                order.leaves = leaves
            if row[CUM] is not None:
                order.cum = row[CUM]
            if row[TIME] is not None:
                order.updated = row[TIME]

    def _ack(self, row: Row) -> None:
        order_id = row[ORDER_ID]
        if not order_id:
            return
        leaves = row[LEAVES]
        if leaves is not None and leaves <= 0:
            self._orders.pop(order_id, None)
            return
        self._orders[order_id] = _Order(row, self._orders.get(order_id))
