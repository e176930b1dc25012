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

All arithmetic runs in a fixed :class:`decimal.Context`: handlers run on the thread that feeds the book, and a
handler changing that thread's decimal context must not change positions.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

from dropcopy_client._enums import MassActionResponse, Side
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

ZERO = Decimal(0)
EXEC_REF_LEN = 9  # ExecRefID carries the right-most 9 characters of the original ExecID (spec §4.2)
#: the book's arithmetic context (module docstring): 28 significant digits, banker's rounding, loud errors
CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

Key: TypeAlias = tuple[str, str, "dt.date | None"]  # account, SecurityID, trade date (None: not split)
_Ref: TypeAlias = tuple[str, str]  # SecurityID, last 9 characters of an ExecID
_SpreadKey: TypeAlias = tuple[str, str, str]  # account, source session (inner 56), SecondaryExecID (527)


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


@attrs.define(eq=False)
class _FillRecord:
    exec_id: str
    key: Key
    sign: int  # +1 buy, -1 sell
    qty: int
    px: Decimal
    time: dt.datetime | None
    trade_id: str | None  # 37711 MDTradeEntryID (absent on legs)
    spread: _SpreadKey | None  # set on spread legs
    active: bool = True

    @property
    def account(self) -> str:
        return self.key[0]


@attrs.define
class _Ledger:
    """Running state of one key; ``fills`` keeps the history needed to recompute after a bust or correction."""

    account: str
    security_id: str
    trade_date: dt.date | None
    symbol: str | None = None
    security_desc: str | None = None
    fills: list[_FillRecord] = attrs.Factory(list)
    net: int = 0
    open_cost: Decimal = ZERO  # |net| * average open price
    realized: Decimal = ZERO
    bought: int = 0
    sold: int = 0
    buy_notional: Decimal = ZERO
    sell_notional: Decimal = ZERO
    fill_count: int = 0
    busts: int = 0
    corrections: int = 0
    last_time: dt.datetime | None = None
    sessions: set[str] = attrs.Factory(set)

    def add(self, rec: _FillRecord) -> None:
        qty, px, sign = rec.qty, rec.px, rec.sign
        if sign > 0:
            self.bought += qty
            self.buy_notional += px * qty
        else:
            self.sold += qty
            self.sell_notional += px * qty
        self.fill_count += 1
        if rec.time is not None and (self.last_time is None or rec.time > self.last_time):
            self.last_time = rec.time
        net = self.net
        if net == 0 or (net > 0) == (sign > 0):
            self.open_cost += px * qty
            self.net = net + sign * qty
            return
        held = abs(net)
        closing = min(qty, held)
        avg = self.open_cost / held
        direction = 1 if net > 0 else -1
        self.realized += (px - avg) * closing * direction
        self.open_cost -= avg * closing
        self.net = net + sign * qty
        if qty > held:  # flipped: the rest opens a new position at this price
            self.open_cost = px * (qty - held)
        elif self.net == 0:
            self.open_cost = ZERO

    def recompute(self) -> None:
        self.net, self.open_cost, self.realized = 0, ZERO, ZERO
        self.bought = self.sold = self.fill_count = 0
        self.buy_notional = self.sell_notional = ZERO
        self.last_time = None
        for rec in self.fills:
            if rec.active:
                self.add(rec)

    def snapshot(self, multiplier: Decimal | None, uncertain: bool) -> Position:
        return Position(
            account=self.account,
            security_id=self.security_id,
            symbol=self.symbol,
            security_desc=self.security_desc,
            trade_date=self.trade_date,
            bought_qty=self.bought,
            sold_qty=self.sold,
            net_qty=self.net,
            avg_open_px=CONTEXT.divide(self.open_cost, abs(self.net)) if self.net else None,
            realized_pnl=self.realized,
            buy_notional=self.buy_notional,
            sell_notional=self.sell_notional,
            fill_count=self.fill_count,
            busts=self.busts,
            corrections=self.corrections,
            last_fill_time=self.last_time,
            multiplier=multiplier,
            uncertain=uncertain,
        )


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


class PositionBook:
    """Positions, working orders and exceptions, fed by typed events; idempotent by ExecID.

    ``by_trade_date`` splits every position by 75 TradeDate. ``trade_date`` makes a book for that one trade
    date (implies the split): fills of other dates are left out, and busts or corrections of those fills are
    recognised as belonging to their own date instead of becoming exceptions here. ``multipliers`` maps a
    product (55 Symbol) to its contract multiplier, for ``Position.realized_value``.

    ``apply`` is called by one thread (the client's dispatcher, or a replay); ``snapshot`` and the other
    readers may be called from any thread.
    """

    def __init__(
        self,
        *,
        by_trade_date: bool = False,
        trade_date: dt.date | None = None,
        multipliers: Mapping[str, Decimal | int | str] | None = None,
    ) -> None:
        self.trade_date = trade_date
        self.by_trade_date = by_trade_date or trade_date is not None
        self._multipliers = {k: Decimal(v) for k, v in (multipliers or {}).items()}
        self._ledgers: dict[Key, _Ledger] = {}
        self._by_ref: dict[_Ref, list[_FillRecord]] = {}
        self._legs: dict[_SpreadKey, list[_FillRecord]] = {}
        self._busted_spreads: set[_SpreadKey] = set()
        self._summaries: set[_Ref] = set()
        self._other_dates: set[_Ref] = set()
        self._pending: dict[_Ref, list[ExecutionReport]] = {}
        self._seen: set[str] = set()
        self._errors_seen: set[tuple[str, bytes]] = set()
        self._exceptions: list[PositionException] = []
        self._orders: dict[str, WorkingOrder] = {}
        self._uncertain_sessions: set[str] = set()
        self._spread_summaries: Counter[dt.date | None] = Counter()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ feeding
    def apply(self, event: object, *, snapshots: bool = True) -> list[Position]:
        """Apply one event; returns the positions it changed (empty for duplicates and non-trade events).

        ``snapshots=False`` skips building the changed positions (about a third of the cost of a fill) when
        nobody consumes them; the book itself is updated either way.
        """
        with self._lock, decimal.localcontext(CONTEXT):
            if isinstance(event, ExecutionReport):
                if event.exec_id in self._seen:
                    return []
                self._seen.add(event.exec_id)
                self._track_order(event)
                changed: list[_Ledger] = []
                if isinstance(event, Fill):
                    changed = self._fill(event)
                elif isinstance(event, TradeBust):
                    changed = self._bust(event)
                elif isinstance(event, TradeCorrection):
                    changed = self._correction(event)
                if not snapshots or not changed:
                    return []
                unique = {id(ledger): ledger for ledger in changed}
                return [self._snap(ledger) for ledger in unique.values()]
            if isinstance(event, OrderMassActionReport):
                self._mass_action(event)
            elif isinstance(event, MessageError):
                self._undecodable(event)
            return []

    def apply_all(self, events: Iterable[object]) -> None:
        for event in events:
            self.apply(event)

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
                key=lambda lg: (lg.account, lg.security_id, lg.trade_date or dt.date.min),
            )
            return [self._snap(lg) for lg in ledgers]

    def position(self, account: str, security_id: str, trade_date: dt.date | None = None) -> Position | None:
        """One position; ``trade_date`` matters only in a book split by trade date."""
        if self.trade_date is not None:
            trade_date = self.trade_date
        with self._lock:
            ledger = self._ledgers.get((account, security_id, trade_date if self.by_trade_date else None))
            return self._snap(ledger) if ledger is not None else None

    @property
    def exceptions(self) -> tuple[PositionException, ...]:
        """What the book could not apply (see :class:`PositionException`), in arrival order."""
        with self._lock:
            return tuple(self._exceptions)

    def working_orders(
        self, account: str | None = None, security_id: str | None = None
    ) -> list[WorkingOrder]:
        """Open orders from acknowledgements (optionally of one account and/or instrument), sorted by account,
        SecurityID and OrderID."""
        with self._lock:
            orders = [
                o
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
            return self._spread_summaries[trade_date]

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
    def _snap(self, ledger: _Ledger) -> Position:
        multiplier = self._multipliers.get(ledger.symbol) if ledger.symbol else None
        uncertain = bool(ledger.sessions & self._uncertain_sessions)
        return ledger.snapshot(multiplier, uncertain)

    def _key(self, event: ExecutionReport) -> Key:
        date = self.trade_date or (event.trade_date if self.by_trade_date else None)
        return (event.account or "", event.security_id or "", date)

    def _ledger(self, event: ExecutionReport) -> _Ledger:
        key = self._key(event)
        ledger = self._ledgers.get(key)
        if ledger is None:
            ledger = _Ledger(key[0], key[1], key[2])
            self._ledgers[key] = ledger
        ledger.symbol = event.symbol or ledger.symbol
        ledger.security_desc = event.security_desc or ledger.security_desc
        ledger.sessions.add(event.delivery.session)
        return ledger

    @staticmethod
    def _spread_key(event: ExecutionReport) -> _SpreadKey:
        return (event.account or "", event.source.sender_comp_id, event.secondary_exec_id or "")

    def _fill(self, event: Fill) -> list[_Ledger]:
        security_id = event.security_id or ""
        ref = (security_id, event.exec_id[-EXEC_REF_LEN:])
        if event.is_spread_summary:
            if self.trade_date is None or event.trade_date == self.trade_date:
                self._spread_summaries[event.trade_date] += 1
            self._summaries.add(ref)
            return self._retry(ref)  # a summary bust or correction that came first
        sign = _sign(event.side)
        if not security_id:
            self._exception("unknown instrument", "fill without SecurityID (48); not in any position", event)
            return []
        if sign == 0 or not event.last_qty or event.last_qty < 0 or event.last_px is None:
            self._exception(
                "unusable fill", "fill without a buy/sell side, positive LastQty or LastPx", event
            )
            return []
        if self.trade_date is not None and event.trade_date != self.trade_date:
            if event.trade_date is None:
                self._exception(
                    "no trade date", f"fill without TradeDate (75) in a book for {self.trade_date}", event
                )
                return []
            self._other_dates.add(ref)
            self._drop_pending(ref)  # its busts and corrections belong to that date's book
            return []
        ledger = self._ledger(event)
        spread = self._spread_key(event) if event.is_spread_leg and event.secondary_exec_id else None
        rec = _FillRecord(
            exec_id=event.exec_id,
            key=self._key(event),
            sign=sign,
            qty=event.last_qty,
            px=event.last_px,
            time=event.transact_time,
            trade_id=event.md_trade_entry_id,
            spread=spread,
        )
        ledger.fills.append(rec)
        ledger.add(rec)
        self._by_ref.setdefault(ref, []).append(rec)
        changed = [ledger]
        if spread is not None:
            self._legs.setdefault(spread, []).append(rec)
            if spread in self._busted_spreads:  # the summary bust came before this leg
                changed.append(self._reverse(rec))
                self._resolve(
                    lambda e: (
                        e.kind == "unknown spread"
                        and isinstance(e.event, ExecutionReport)
                        and self._spread_key(e.event) == spread
                    )
                )
        return changed + self._retry(ref)

    def _retry(self, ref: _Ref) -> list[_Ledger]:
        """Apply the busts and corrections that were waiting for the fill just recorded under ``ref``."""
        changed: list[_Ledger] = []
        for waiting in self._pending.pop(ref, []):
            self._resolve_event(waiting)
            if isinstance(waiting, TradeBust):
                changed += self._bust(waiting)
            elif isinstance(waiting, TradeCorrection):
                changed += self._correction(waiting)
        return changed

    def _drop_pending(self, ref: _Ref) -> None:
        for waiting in self._pending.pop(ref, []):
            self._resolve_event(waiting)

    def _resolve_event(self, event: ExecutionReport) -> None:
        self._resolve(lambda e: e.event is event)

    def _resolve(self, predicate: Callable[[PositionException], bool]) -> None:
        """Drop the waiting exceptions (``_PENDING_KINDS``) that ``predicate`` selects: they are applied now."""
        self._exceptions = [e for e in self._exceptions if not (e.kind in _PENDING_KINDS and predicate(e))]

    def _find(self, event: ExecutionReport) -> _FillRecord | None:
        """The one live or busted fill ``event`` (a bust or correction) names, or None with an exception."""
        ref = event.exec_ref_id
        if not ref:
            self._exception("missing reference", "no ExecRefID (19) on a bust or correction", event)
            return None
        key = (event.security_id or "", ref[-EXEC_REF_LEN:])
        matches = list({id(r): r for r in self._by_ref.get(key, [])}.values())
        if event.account:
            matches = [r for r in matches if r.account == event.account]
        if len(matches) > 1:  # narrow by the full ExecID, the trade id (37711) and the side
            trade_id, sign = event.md_trade_entry_id, _sign(event.side)
            narrowing: tuple[Callable[[_FillRecord], bool], ...] = (
                lambda r: r.exec_id == ref,
                lambda r: trade_id is not None and r.trade_id == trade_id,
                lambda r: r.sign == sign,
            )
            for keep in narrowing:
                narrowed = [r for r in matches if keep(r)]
                if narrowed:
                    matches = narrowed
                if len(matches) == 1:
                    break
        if not matches:
            if key in self._other_dates:
                return None  # a fill of another trade date: that date's book applies it
            self._exception(
                "unknown fill",
                f"no fill with ExecID ending {ref!r} in instrument {event.security_id}"
                f"{f' for account {event.account}' if event.account else ''}",
                event,
            )
            self._pending.setdefault(key, []).append(event)
            return None
        if len(matches) > 1:
            self._exception(
                "ambiguous reference", f"{len(matches)} fills end with {ref!r}; applied to none", event
            )
            return None
        return matches[0]

    def _bust(self, event: TradeBust) -> list[_Ledger]:
        if event.is_spread_summary:
            return self._spread_bust(event)
        rec = self._find(event)
        if rec is None or not rec.active:
            return []  # unknown (an exception), or already reversed, e.g. by its spread summary's bust
        return [self._reverse(rec)]

    def _spread_bust(self, event: TradeBust) -> list[_Ledger]:
        if not event.secondary_exec_id:
            self._exception("missing reference", "spread summary bust without SecondaryExecID (527)", event)
            return []
        spread = self._spread_key(event)
        self._busted_spreads.add(spread)
        legs = self._legs.get(spread, [])
        changed = [self._reverse(rec) for rec in legs if rec.active]
        ref = (event.security_id or "", (event.exec_ref_id or "")[-EXEC_REF_LEN:])
        if not legs and ref not in self._summaries:
            self._exception(
                "unknown spread",
                f"no legs or summary with SecondaryExecID {event.secondary_exec_id!r}",
                event,
            )
            if event.exec_ref_id:
                self._pending.setdefault(ref, []).append(event)
        return changed

    def _reverse(self, rec: _FillRecord) -> _Ledger:
        ledger = self._ledgers[rec.key]
        rec.active = False
        ledger.busts += 1
        ledger.recompute()
        return ledger

    def _correction(self, event: TradeCorrection) -> list[_Ledger]:
        if event.is_spread_summary:
            ref = (event.security_id or "", (event.exec_ref_id or "")[-EXEC_REF_LEN:])
            if ref not in self._summaries:
                self._exception("unknown fill", f"no spread summary fill ending {event.exec_ref_id!r}", event)
                self._pending.setdefault(ref, []).append(event)
            return []  # spread-level only: the legs carry the instrument positions (spec §4.4)
        rec = self._find(event)
        if rec is None:
            return []
        if not rec.active:
            self._exception("correction of a busted fill", f"fill {rec.exec_id} was busted; ignored", event)
            return []
        if event.last_px is None:
            self._exception("unusable correction", "correction without LastPx (31)", event)
            return []
        if event.last_qty is not None and event.last_qty != rec.qty:
            self._exception(
                "quantity mismatch",
                f"correction says LastQty {event.last_qty}, the fill had {rec.qty}; re-priced, quantity kept",
                event,
            )
        rec.px = event.last_px
        # a later bust or correction may name this correction's ExecID rather than the original's
        self._by_ref.setdefault((event.security_id or "", event.exec_id[-EXEC_REF_LEN:]), []).append(rec)
        ledger = self._ledgers[rec.key]
        ledger.corrections += 1
        ledger.recompute()
        return [ledger]

    def _exception(self, kind: str, reason: str, event: ExecutionReport) -> None:
        if self.trade_date is not None and event.trade_date not in (None, self.trade_date):
            return  # belongs to the exception list of its own trade date
        self._exceptions.append(
            PositionException(
                kind=kind,
                reason=reason,
                exec_id=event.exec_id,
                exec_ref_id=event.exec_ref_id,
                account=event.account,
                security_id=event.security_id,
                trade_date=event.trade_date,
                event=event,
            )
        )

    def _undecodable(self, event: MessageError) -> None:
        """An undecodable message may have been a fill: the book cannot claim to be complete."""
        key = (event.reason, event.raw)
        if key in self._errors_seen:
            return
        self._errors_seen.add(key)
        where = f" (message #{event.delivery.seq_num} on {event.delivery.session})" if event.delivery else ""
        self._exceptions.append(
            PositionException(
                "undecodable message", event.reason + where, None, None, None, None, None, event
            )
        )

    def _track_order(self, event: ExecutionReport) -> None:
        order_id = event.order_id
        if not order_id or event.is_spread_leg:
            return  # a leg fill carries the spread order's id with the leg's instrument and quantities
        if isinstance(event, (CancelAck, OrderElimination)):
            self._orders.pop(order_id, None)
            return
        done = event.leaves_qty is not None and event.leaves_qty <= 0
        previous = self._orders.get(order_id)
        if isinstance(event, Fill):
            if done:
                self._orders.pop(order_id, None)
            elif previous is not None:
                self._orders[order_id] = attrs.evolve(
                    previous,
                    leaves_qty=event.leaves_qty if event.leaves_qty is not None else previous.leaves_qty,
                    cum_qty=event.cum_qty if event.cum_qty is not None else previous.cum_qty,
                    updated_at=event.transact_time or previous.updated_at,
                )
            return
        if not isinstance(event, (OrderAck, ModifyAck)):
            return
        if done:
            self._orders.pop(order_id, None)
            return
        self._orders[order_id] = WorkingOrder(
            order_id=order_id,
            account=event.account,
            security_id=event.security_id,
            instrument=event.security_desc or event.symbol,
            side=event.side,
            order_qty=event.order_qty
            if event.order_qty is not None
            else (previous.order_qty if previous else None),
            leaves_qty=event.leaves_qty,
            price=event.price if event.price is not None else (previous.price if previous else None),
            cl_ord_id=event.cl_ord_id,
            updated_at=event.transact_time,
            cum_qty=event.cum_qty,
        )

    def _mass_action(self, event: OrderMassActionReport) -> None:
        if event.mass_action_response is MassActionResponse.REJECTED:
            return
        for affected in event.affected_orders:
            if affected.affected_order_id:
                self._orders.pop(affected.affected_order_id, None)


def _sign(side: Side | None) -> int:
    if side is Side.BUY:
        return 1
    if side is Side.SELL:
        return -1
    return 0
