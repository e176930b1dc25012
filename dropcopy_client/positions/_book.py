"""PositionBook: net positions from drop copy fills, with CME's bust, correction and spread semantics.

Conventions (../shared/spec/what-users-expect.md, spec §4.2-§4.4):

* key = account (1) + instrument (48 SecurityID), optionally split by trade date (75);
* outright fills (442=1 or absent) and spread legs (442=2) count; spread summaries (442=3) never do;
* a bust (39=H, 20=1) reverses exactly the fill whose ExecID ends with its ExecRefID (19, last 9 characters),
  within the same instrument; a spread summary bust reverses every leg with the same SecondaryExecID (527);
* a correction (39=G, 20=2) re-prices the fill it names (new 31) and never adds quantity;
* every event is applied at most once, by ExecID;
* a bust or correction whose fill was never seen goes to ``exceptions``: never a silent miss.

Average price and realized P&L use average-cost accounting: buys and sells that extend the position move the
average open price; those that reduce it realize ``(price - average) * quantity`` (sign-adjusted), in price
units. A bust or correction in the middle of the history recomputes that one key from its remaining fills, so
the result is exactly what it would have been had the busted fill never happened.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from dropcopy_client._enums import MultiLegReportingType, Side
from dropcopy_client._messages import (
    CancelAck,
    ExecutionReport,
    Fill,
    ModifyAck,
    OrderAck,
    OrderElimination,
    OrderMassActionReport,
    TradeBust,
    TradeCorrection,
)

ZERO = Decimal(0)
EXEC_REF_LEN = 9  # ExecRefID carries the right-most 9 characters of the original ExecID (spec §4.2)


@attrs.frozen
class Position:
    """Net position of one account in one instrument (and trade date, when the book splits by date)."""

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
        return self.buy_notional / self.bought_qty if self.bought_qty else None

    @property
    def sell_vwap(self) -> Decimal | None:
        return self.sell_notional / self.sold_qty if self.sold_qty else None

    @property
    def realized_value(self) -> Decimal | None:
        """Realized P&L in money, when a multiplier for the product is configured."""
        return self.realized_pnl * self.multiplier if self.multiplier is not None else None


@attrs.frozen
class PositionException:
    """An event the book could not apply: a bust or correction of an unknown fill, an ambiguous reference."""

    kind: str
    reason: str
    exec_id: str | None
    exec_ref_id: str | None
    account: str | None
    security_id: str | None
    event: object = attrs.field(repr=False, eq=False)


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


@attrs.define
class _FillRecord:
    exec_id: str
    key: tuple[str, str, dt.date | None]
    sign: int  # +1 buy, -1 sell
    qty: int
    px: Decimal
    time: dt.datetime | None
    secondary_exec_id: str | None
    active: bool = True


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
            avg_open_px=self.open_cost / abs(self.net) if self.net else None,
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


class PositionBook:
    """Positions, working orders and exceptions, fed by typed events; idempotent by ExecID.

    ``apply`` is called by one thread (the client's dispatcher, or a replay); ``snapshot`` and the other
    readers may be called from any thread.
    """

    def __init__(
        self, *, by_trade_date: bool = False, multipliers: Mapping[str, Decimal] | None = None
    ) -> None:
        self.by_trade_date = by_trade_date
        self._multipliers = {k: Decimal(v) for k, v in (multipliers or {}).items()}
        self._ledgers: dict[tuple[str, str, dt.date | None], _Ledger] = {}
        self._by_ref: dict[tuple[str, str], list[_FillRecord]] = {}
        self._legs_by_secondary: dict[tuple[str, str], list[_FillRecord]] = {}
        self._seen: set[str] = set()
        self._exceptions: list[PositionException] = []
        self._orders: dict[str, WorkingOrder] = {}
        self._uncertain_sessions: set[str] = set()
        self._spread_summaries = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ feeding
    def apply(self, event: object) -> list[Position]:
        """Apply one event; returns the positions it changed (empty for duplicates and non-trade events)."""
        with self._lock:
            if isinstance(event, ExecutionReport):
                self._track_order(event)
                if event.exec_id in self._seen:
                    return []
                self._seen.add(event.exec_id)
                if isinstance(event, Fill):
                    return self._fill(event)
                if isinstance(event, TradeBust):
                    return self._bust(event)
                if isinstance(event, TradeCorrection):
                    return self._correction(event)
            elif isinstance(event, OrderMassActionReport):
                for affected in event.affected_orders:
                    if affected.affected_order_id:
                        self._orders.pop(affected.affected_order_id, None)
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
        """Every position, sorted by account, instrument and trade date."""
        with self._lock:
            ledgers = sorted(
                self._ledgers.values(),
                key=lambda lg: (lg.account, lg.security_id, lg.trade_date or dt.date.min),
            )
            return [self._snap(lg) for lg in ledgers]

    def position(self, account: str, security_id: str, trade_date: dt.date | None = None) -> Position | None:
        with self._lock:
            ledger = self._ledgers.get((account, security_id, trade_date if self.by_trade_date else None))
            return self._snap(ledger) if ledger is not None else None

    @property
    def exceptions(self) -> tuple[PositionException, ...]:
        with self._lock:
            return tuple(self._exceptions)

    def working_orders(self) -> list[WorkingOrder]:
        with self._lock:
            return sorted(
                self._orders.values(), key=lambda o: (o.account or "", o.security_id or "", o.order_id)
            )

    @property
    def spread_summaries(self) -> int:
        """Spread summary fills seen (kept out of instrument positions)."""
        return self._spread_summaries

    def to_dataframe(self) -> Any:
        """The snapshot as a pandas DataFrame (``pip install dropcopy-client[pandas]``)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_dataframe() needs pandas: pip install 'dropcopy-client[pandas]'") from exc
        rows = [attrs.asdict(p) | {"instrument": p.instrument} for p in self.snapshot()]
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------------------------------ internals
    def _snap(self, ledger: _Ledger) -> Position:
        multiplier = self._multipliers.get(ledger.symbol or "") if ledger.symbol else None
        uncertain = bool(ledger.sessions & self._uncertain_sessions)
        return ledger.snapshot(multiplier, uncertain)

    def _key(self, event: ExecutionReport) -> tuple[str, str, dt.date | None]:
        date = event.trade_date if self.by_trade_date else None
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

    def _fill(self, event: Fill) -> list[Position]:
        if event.multi_leg_reporting_type is MultiLegReportingType.MULTI_LEG_SECURITY:
            self._spread_summaries += 1
            return []
        sign = _sign(event.side)
        if sign == 0 or event.last_qty is None or event.last_px is None:
            self._exception("unusable fill", "fill without a buy/sell side, LastQty or LastPx", event)
            return []
        ledger = self._ledger(event)
        rec = _FillRecord(
            exec_id=event.exec_id,
            key=self._key(event),
            sign=sign,
            qty=event.last_qty,
            px=event.last_px,
            time=event.transact_time,
            secondary_exec_id=event.secondary_exec_id,
        )
        ledger.fills.append(rec)
        ledger.add(rec)
        self._by_ref.setdefault((ledger.security_id, event.exec_id[-EXEC_REF_LEN:]), []).append(rec)
        if (
            event.secondary_exec_id
            and event.multi_leg_reporting_type is MultiLegReportingType.INDIVIDUAL_LEG_OF_MULTI_LEG
        ):
            self._legs_by_secondary.setdefault((ledger.account, event.secondary_exec_id), []).append(rec)
        return [self._snap(ledger)]

    def _find(self, event: ExecutionReport) -> _FillRecord | None:
        ref = event.exec_ref_id
        if not ref:
            self._exception("missing reference", "no ExecRefID (19) on a bust or correction", event)
            return None
        candidates = self._by_ref.get((event.security_id or "", ref[-EXEC_REF_LEN:]), [])
        matches = [r for r in candidates if r.key[0] == (event.account or "")] or candidates
        if not matches:
            self._exception(
                "unknown fill", f"no fill with ExecID ending {ref!r} in instrument {event.security_id}", event
            )
            return None
        if len(matches) > 1:
            self._exception(
                "ambiguous reference", f"{len(matches)} fills end with {ref!r}; applied to none", event
            )
            return None
        return matches[0]

    def _bust(self, event: TradeBust) -> list[Position]:
        if event.multi_leg_reporting_type is MultiLegReportingType.MULTI_LEG_SECURITY:
            legs = self._legs_by_secondary.get((event.account or "", event.secondary_exec_id or ""), [])
            changed = [self._reverse(rec) for rec in legs if rec.active]
            if not legs:
                self._exception(
                    "unknown spread", f"no legs with SecondaryExecID {event.secondary_exec_id!r}", event
                )
            return [p for p in changed if p is not None]
        rec = self._find(event)
        if rec is None:
            return []
        if not rec.active:
            return []  # already reversed, e.g. by its spread summary's bust
        reversed_ = self._reverse(rec)
        return [reversed_] if reversed_ is not None else []

    def _reverse(self, rec: _FillRecord) -> Position | None:
        ledger = self._ledgers[rec.key]
        rec.active = False
        ledger.busts += 1
        ledger.recompute()
        return self._snap(ledger)

    def _correction(self, event: TradeCorrection) -> list[Position]:
        rec = self._find(event)
        if rec is None:
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
        ledger = self._ledgers[rec.key]
        ledger.corrections += 1
        ledger.recompute()
        return [self._snap(ledger)]

    def _exception(self, kind: str, reason: str, event: ExecutionReport) -> None:
        self._exceptions.append(
            PositionException(
                kind, reason, event.exec_id, event.exec_ref_id, event.account, event.security_id, event
            )
        )

    def _track_order(self, event: ExecutionReport) -> None:
        order_id = event.order_id
        if not order_id:
            return
        if isinstance(event, (CancelAck, OrderElimination)) or (
            isinstance(event, Fill) and event.leaves_qty is not None and event.leaves_qty <= 0
        ):
            self._orders.pop(order_id, None)
            return
        if isinstance(event, (OrderAck, ModifyAck)) or (isinstance(event, Fill) and order_id in self._orders):
            previous = self._orders.get(order_id)
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
            )


def _sign(side: Side | None) -> int:
    if side is Side.BUY:
        return 1
    if side is Side.SELL:
        return -1
    return 0
