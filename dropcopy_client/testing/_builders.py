"""Scripted inner (payload) messages: iLink-style FIX 4.2 Execution Reports and Order Mass Action Reports.

Two layers:

* pure builders (:func:`new_order_ack`, :func:`fill`, :func:`trade_bust`, ...) that serialise one message from
  an :class:`InnerHeader` and an :class:`Order` snapshot, with every value explicit;
* :class:`ScriptedSession` / :class:`OrderFlow`, which keep the source session's sequence numbers, ExecID,
  OrderID and trade-id counters and each order's quantities, so a script reads like the trading it describes::

      src = ScriptedSession()
      buy = src.order(ESZ6, account="ACCT1", side=BUY, qty=10, price="4500.25")
      msgs = [buy.ack(), buy.fill(4), buy.fill(6), buy.bust()]

Field layout follows CME's examples (spec §3.3, §4.2-§4.5): inner header 34/369/52/49=CME/50/56/57/143, body
tags in ascending order. Security ids of the predefined instruments are made up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs

from dropcopy_client._wire import encode
from dropcopy_client.testing._clock import Clock, ManualClock, format_ts, utc_now

BUY = "1"
SELL = "2"

FieldValue = str | bytes | int
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _price(value: Decimal | str | int | float) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _fmt_price(value: Decimal) -> str:
    return format(value, "f")


def request_time_ns(when: datetime) -> int:
    """Tag 5979 RequestTime: nanoseconds since the Unix epoch."""
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


@attrs.frozen
class Instrument:
    """An instrument as the payload names it: 55 product group, 107 description, 48 security id."""

    symbol: str
    security_desc: str
    security_id: int
    security_type: str = "FUT"


ESZ6 = Instrument("ES", "ESZ6", 294973)
ESH7 = Instrument("ES", "ESH7", 294974)
ZNH7 = Instrument("ZN", "ZNH7", 204527)
ESZ6_ESH7 = Instrument("ES", "ESZ6-ESH7", 294975, "FUT")


@attrs.frozen
class InnerHeader:
    """Header of an inner message: the *source* iLink session's view (spec §3.3)."""

    seq: int
    sending_time: datetime
    sender_comp_id: str = "M2L000N"
    operator: str = "DUMMY"
    segment: str = "G"
    location: str = "US,IL"
    last_seq_processed: int | None = None

    def fields(self) -> list[tuple[int, FieldValue]]:
        out: list[tuple[int, FieldValue]] = [(34, self.seq)]
        if self.last_seq_processed is not None:
            out.append((369, self.last_seq_processed))
        out += [
            (52, format_ts(self.sending_time)),
            (49, "CME"),
            (50, self.segment),
            (56, self.sender_comp_id),
            (57, self.operator),
            (143, self.location),
        ]
        return out


@attrs.frozen
class Order:
    """An order's state as one Execution Report reports it (quantities *after* the reported event)."""

    instrument: Instrument = ESZ6
    account: str = "ACCT1"
    side: str = BUY
    order_qty: int = 1
    price: Decimal = attrs.field(default=Decimal("0"), converter=_price)
    cl_ord_id: str = "ORD1"
    order_id: str = "1"
    orig_cl_ord_id: str = "0"
    correlation_cl_ord_id: str | None = None
    ord_type: str = "2"
    time_in_force: str = "0"
    cum_qty: int = 0
    manual: bool = False

    @property
    def leaves_qty(self) -> int:
        return max(self.order_qty - self.cum_qty, 0)


@attrs.frozen
class OrderEventEntry:
    """One entry of the BrokerTec/EBS fill group 1795 NoOrderEvents (spec §4.3): 1796 OrderEventType when
    given, 1797 OrderEventExecID, 1799 OrderEventPx, 1800 OrderEventQty, 1802 OrderEventText when given."""

    exec_id: str
    px: Decimal = attrs.field(converter=_price)
    qty: int
    text: str | None = None
    event_type: int | None = None

    def fields(self) -> list[tuple[int, FieldValue]]:
        out: list[tuple[int, FieldValue]] = []
        if self.event_type is not None:
            out.append((1796, self.event_type))
        out += [(1797, self.exec_id), (1799, _fmt_price(self.px)), (1800, self.qty)]
        if self.text is not None:
            out.append((1802, self.text))
        return out


@attrs.frozen
class AffectedOrder:
    """One entry of the 534 NoAffectedOrders group of an Order Mass Action Report."""

    orig_cl_ord_id: str
    order_id: str
    cxl_qty: int
    security_desc: str | None = None


def _message(msg_type: str, header: InnerHeader, body: Iterable[tuple[int, FieldValue]]) -> bytes:
    return encode(msg_type, [*header.fields(), *body])


def execution_report(
    header: InnerHeader,
    order: Order,
    *,
    ord_status: str,
    exec_type: str,
    exec_id: str,
    transact_time: datetime,
    exec_trans_type: str = "0",
    leaves: bool = True,
    extra: Iterable[tuple[int, FieldValue]] = (),
    order_events: Sequence[OrderEventEntry] = (),
) -> bytes:
    """Any inner 35=8; ``extra`` fields are merged in ascending tag order (a tag in ``extra`` wins).
    ``order_events`` become the 1795 group, in its place in tag order with its entries' own field order."""
    inst = order.instrument
    fields: dict[int, FieldValue] = {
        1: order.account.upper(),
        6: "0",
        11: order.cl_ord_id,
        14: order.cum_qty,
        17: exec_id,
        20: exec_trans_type,
        37: order.order_id,
        38: order.order_qty,
        39: ord_status,
        40: order.ord_type,
        41: order.orig_cl_ord_id,
        44: _fmt_price(order.price),
        48: inst.security_id,
        54: order.side,
        55: inst.symbol,
        59: order.time_in_force,
        60: format_ts(transact_time),
        107: inst.security_desc,
        150: exec_type,
        167: inst.security_type,
        1028: "Y" if order.manual else "N",
        5979: request_time_ns(transact_time),
        9717: order.correlation_cl_ord_id or order.cl_ord_id,
    }
    if leaves:
        fields[151] = order.leaves_qty
    fields.update(extra)
    body = sorted(fields.items())
    if order_events:
        at = next((i for i, (tag, _) in enumerate(body) if tag > 1795), len(body))
        group: list[tuple[int, FieldValue]] = [(1795, len(order_events))]
        for entry in order_events:
            group += entry.fields()
        body[at:at] = group
    return _message("8", header, body)


def new_order_ack(header: InnerHeader, order: Order, *, exec_id: str, transact_time: datetime) -> bytes:
    """Order accepted: 39=0, 20=0, 150=0."""
    return execution_report(
        header, order, ord_status="0", exec_type="0", exec_id=exec_id, transact_time=transact_time
    )


def modify_ack(header: InnerHeader, order: Order, *, exec_id: str, transact_time: datetime) -> bytes:
    """Cancel/replace accepted: 39=5 (``order`` carries the new 11/38/44 and 41 = the replaced 11)."""
    return execution_report(
        header, order, ord_status="5", exec_type="5", exec_id=exec_id, transact_time=transact_time
    )


def cancel_ack(header: InnerHeader, order: Order, *, exec_id: str, transact_time: datetime) -> bytes:
    """Cancel accepted: 39=4, 14 reset to 0, 151=0 (spec §4.2)."""
    return execution_report(
        header,
        attrs.evolve(order, cum_qty=0),
        ord_status="4",
        exec_type="4",
        exec_id=exec_id,
        transact_time=transact_time,
        extra=[(151, 0)],
    )


def elimination(header: InnerHeader, order: Order, *, exec_id: str, transact_time: datetime) -> bytes:
    """Order eliminated / expired by CME: 39=C, 151=0."""
    return execution_report(
        header,
        order,
        ord_status="C",
        exec_type="C",
        exec_id=exec_id,
        transact_time=transact_time,
        extra=[(151, 0)],
    )


def pending_cancel(header: InnerHeader, order: Order, *, exec_id: str, transact_time: datetime) -> bytes:
    """Cancel pending (EBS only, spec §4.2): 39=6, 150=6; the order is still working."""
    return execution_report(
        header, order, ord_status="6", exec_type="6", exec_id=exec_id, transact_time=transact_time
    )


def pending_replace(header: InnerHeader, order: Order, *, exec_id: str, transact_time: datetime) -> bytes:
    """Replace pending (EBS only, spec §4.2): 39=E, 150=E; 38/44 are still the working order's."""
    return execution_report(
        header, order, ord_status="E", exec_type="E", exec_id=exec_id, transact_time=transact_time
    )


def order_reject(
    header: InnerHeader, order: Order, *, exec_id: str, transact_time: datetime, text: str = "Order rejected"
) -> bytes:
    """Execution Report - Reject: 39=8 with 58 (whether CME forwards these is unconfirmed, spec §8)."""
    return execution_report(
        header,
        order,
        ord_status="8",
        exec_type="8",
        exec_id=exec_id,
        transact_time=transact_time,
        extra=[(58, text), (151, 0)],
    )


def fill(
    header: InnerHeader,
    order: Order,
    *,
    last_qty: int,
    last_px: Decimal | str,
    exec_id: str,
    transact_time: datetime,
    trade_id: int | None,
    secondary_exec_id: str,
    trade_date: str | None = None,
    aggressor: bool | None = True,
    multileg: str = "1",
    total_num_securities: int | None = None,
    order_events: Sequence[OrderEventEntry] = (),
) -> bytes:
    """Partial fill (39=1) or fill (39=2) by ``order.leaves_qty``; ``order`` already includes this fill.

    ``multileg``: 442=1 outright, 2 spread leg (no 37711/1057), 3 spread summary (with 393).
    ``order_events``: the BrokerTec/EBS 1795 group (AutoCert+ asks for 1797/1799/1800/1802 to be reported).
    """
    status = "2" if order.leaves_qty == 0 else "1"
    extra: list[tuple[int, FieldValue]] = [
        (31, _fmt_price(_price(last_px))),
        (32, last_qty),
        (75, trade_date or transact_time.strftime("%Y%m%d")),
        (442, multileg),
        (527, secondary_exec_id),
    ]
    if multileg != "2":
        if trade_id is not None:
            extra.append((37711, trade_id))
        if aggressor is not None:
            extra.append((1057, "Y" if aggressor else "N"))
    if total_num_securities is not None:
        extra.append((393, total_num_securities))
    return execution_report(
        header,
        order,
        ord_status=status,
        exec_type=status,
        exec_id=exec_id,
        transact_time=transact_time,
        extra=extra,
        order_events=order_events,
    )


def exec_ref_id(original_exec_id: str) -> str:
    """Tag 19 on a bust or correction: the right-most 9 characters of the original 17 (spec §4.2)."""
    return original_exec_id[-9:]


def _trade_amendment(
    header: InnerHeader,
    order: Order,
    *,
    ord_status: str,
    exec_trans_type: str,
    original_exec_id: str,
    last_qty: int,
    last_px: Decimal | str,
    exec_id: str,
    transact_time: datetime,
    trade_id: int | None,
    secondary_exec_id: str,
    trade_date: str | None,
    multileg: str,
    correction: bool,
) -> bytes:
    """What a bust and a correction share: 19 = last 9 chars of the original 17, 31/32, 75, 442, 527, and
    37711 of the original trade (never on spread legs). A correction also resets 14 and omits 151."""
    extra: list[tuple[int, FieldValue]] = [(14, 0)] if correction else []
    extra += [
        (19, exec_ref_id(original_exec_id)),
        (31, _fmt_price(_price(last_px))),
        (32, last_qty),
        (75, trade_date or transact_time.strftime("%Y%m%d")),
        (442, multileg),
        (527, secondary_exec_id),
    ]
    if trade_id is not None and multileg != "2":
        extra.append((37711, trade_id))
    return execution_report(
        header,
        order,
        ord_status=ord_status,
        exec_type=ord_status,
        exec_trans_type=exec_trans_type,
        exec_id=exec_id,
        transact_time=transact_time,
        leaves=not correction,
        extra=extra,
    )


def trade_bust(
    header: InnerHeader,
    order: Order,
    *,
    original_exec_id: str,
    last_qty: int,
    last_px: Decimal | str,
    exec_id: str,
    transact_time: datetime,
    trade_id: int | None,
    secondary_exec_id: str,
    trade_date: str | None = None,
    multileg: str = "1",
) -> bytes:
    """Trade cancel: 39=H, 20=1, 19 = last 9 chars of the busted 17; 31/32 and 37711 of the busted trade."""
    return _trade_amendment(
        header,
        order,
        ord_status="H",
        exec_trans_type="1",
        original_exec_id=original_exec_id,
        last_qty=last_qty,
        last_px=last_px,
        exec_id=exec_id,
        transact_time=transact_time,
        trade_id=trade_id,
        secondary_exec_id=secondary_exec_id,
        trade_date=trade_date,
        multileg=multileg,
        correction=False,
    )


def trade_correction(
    header: InnerHeader,
    order: Order,
    *,
    original_exec_id: str,
    last_qty: int,
    new_px: Decimal | str,
    exec_id: str,
    transact_time: datetime,
    trade_id: int | None,
    secondary_exec_id: str,
    trade_date: str | None = None,
    multileg: str = "1",
) -> bytes:
    """Trade correction: 39=G, 20=2, new 17, 19 = last 9 chars of the original, 31 = new price,
    32 = original qty, 14 = 0, no 151 (spec §4.2)."""
    return _trade_amendment(
        header,
        order,
        ord_status="G",
        exec_trans_type="2",
        original_exec_id=original_exec_id,
        last_qty=last_qty,
        last_px=new_px,
        exec_id=exec_id,
        transact_time=transact_time,
        trade_id=trade_id,
        secondary_exec_id=secondary_exec_id,
        trade_date=trade_date,
        multileg=multileg,
        correction=True,
    )


def order_mass_action_report(
    header: InnerHeader,
    *,
    cl_ord_id: str,
    report_id: str,
    transact_time: datetime,
    affected: Sequence[AffectedOrder] = (),
    market_segment_id: str = "99",
    action_type: str = "3",
    scope: str = "9",
    response: str = "1",
    manual: bool = True,
) -> bytes:
    """Inner 35=BZ (spec §4.5): 533 = len(affected), 534 group {41, 84, 107, 535} when any, 893=Y."""
    body: list[tuple[int, FieldValue]] = [
        (11, cl_ord_id),
        (60, format_ts(transact_time)),
        (533, len(affected)),
    ]
    if affected:
        body.append((534, len(affected)))
        for entry in affected:
            body += [(41, entry.orig_cl_ord_id), (84, entry.cxl_qty)]
            if entry.security_desc is not None:
                body.append((107, entry.security_desc))
            body.append((535, entry.order_id))
    body += [
        (893, "Y"),
        (1028, "Y" if manual else "N"),
        (1300, market_segment_id),
        (1369, report_id),
        (1373, action_type),
        (1374, scope),
        (1375, response),
        (5979, request_time_ns(transact_time)),
    ]
    return _message("BZ", header, body)


# -- scripted sessions ---------------------------------------------------------------------------------------


@attrs.frozen
class FillRecord:
    """One fill of an :class:`OrderFlow`, kept so busts and corrections can refer to it."""

    exec_id: str
    qty: int
    px: Decimal
    trade_id: int | None
    secondary_exec_id: str
    multileg: str = "1"


class ScriptedSession:
    """One iLink source session (inner 56/57/50/143) with its counters: inner 34/369, ExecID ``<p>:<n>``,
    OrderID, ClOrdID and trade ids. ``clock`` stamps 52/60 (default: real UTC time)."""

    def __init__(
        self,
        *,
        sender_comp_id: str = "M2L000N",
        operator: str = "DUMMY",
        segment: str = "G",
        location: str = "US,IL",
        clock: Clock | None = None,
        first_seq: int = 1,
        exec_id_prefix: int = 84618,
        first_exec_id: int = 1342652,
        first_order_id: int = 84778833500,
        first_trade_id: int = 100001,
        cl_ord_id_prefix: str = "ORD",
        trade_date: str | None = None,
    ) -> None:
        self.sender_comp_id = sender_comp_id
        self.operator = operator
        self.segment = segment
        self.location = location
        self.clock: Clock = clock or utc_now
        self.trade_date = trade_date
        self._seq = first_seq
        self._requests = 0
        self._exec_prefix = exec_id_prefix
        self._exec = first_exec_id
        self._order = first_order_id
        self._trade = first_trade_id
        self._cl_ord = 0
        self._cl_prefix = cl_ord_id_prefix
        self._report = 0

    def header(self) -> tuple[InnerHeader, datetime]:
        """The next inner header and its timestamp (also used as 60 TransactTime)."""
        now = self.clock()
        head = InnerHeader(
            seq=self._seq,
            sending_time=now,
            sender_comp_id=self.sender_comp_id,
            operator=self.operator,
            segment=self.segment,
            location=self.location,
            last_seq_processed=self._requests,
        )
        self._seq += 1
        return head, now

    def exec_id(self) -> str:
        self._exec += 1
        return f"{self._exec_prefix}:{self._exec - 1}"

    def trade_id(self) -> int:
        self._trade += 1
        return self._trade - 1

    def cl_ord_id(self) -> str:
        self._cl_ord += 1
        return f"{self._cl_prefix}{self._cl_ord}"

    def request(self) -> None:
        """Count one client->CME request on the source session (reported in inner 369)."""
        self._requests += 1

    def order(
        self,
        instrument: Instrument = ESZ6,
        *,
        account: str = "ACCT1",
        side: str = BUY,
        qty: int = 1,
        price: Decimal | str | int = "0",
        cl_ord_id: str | None = None,
        ord_type: str = "2",
        time_in_force: str = "0",
        manual: bool = False,
    ) -> OrderFlow:
        """A new order on this source session; no message yet (start with :meth:`OrderFlow.ack`)."""
        self._order += 1
        order = Order(
            instrument=instrument,
            account=account,
            side=side,
            order_qty=qty,
            price=_price(price),
            cl_ord_id=cl_ord_id or self.cl_ord_id(),
            order_id=str(self._order - 1),
            ord_type=ord_type,
            time_in_force=time_in_force,
            manual=manual,
        )
        return OrderFlow(self, order)

    def spread_order(
        self,
        spread: Instrument,
        legs: Sequence[tuple[Instrument, str, int]],
        *,
        account: str = "ACCT1",
        side: str = BUY,
        qty: int = 1,
        price: Decimal | str | int = "0",
    ) -> SpreadFlow:
        """A spread order; ``legs`` are ``(instrument, leg side when the spread is bought, ratio)``."""
        return SpreadFlow(self.order(spread, account=account, side=side, qty=qty, price=price), legs)

    def mass_action(
        self, orders: Sequence[OrderFlow], *, market_segment_id: str = "99", manual: bool = True
    ) -> bytes:
        """Order Mass Action Report cancelling ``orders`` (their leaves become 0); none = "no orders"."""
        self.request()
        head, now = self.header()
        affected = []
        for flow in orders:
            affected.append(
                AffectedOrder(
                    flow.order.cl_ord_id,
                    flow.order.order_id,
                    flow.order.leaves_qty,
                    flow.order.instrument.security_desc,
                )
            )
            flow.order = attrs.evolve(flow.order, order_qty=flow.order.cum_qty)
        self._report += 1
        return order_mass_action_report(
            head,
            cl_ord_id=self.cl_ord_id(),
            report_id=f"{self._exec_prefix}:{self._report}",
            transact_time=now,
            affected=affected,
            market_segment_id=market_segment_id,
            manual=manual,
        )


class OrderFlow:
    """One order's life on a :class:`ScriptedSession`; each method returns the inner message bytes."""

    def __init__(self, session: ScriptedSession, order: Order) -> None:
        self.session = session
        self.order = order
        self.fills: list[FillRecord] = []

    def ack(self) -> bytes:
        s = self.session
        s.request()
        head, now = s.header()
        return new_order_ack(head, self.order, exec_id=s.exec_id(), transact_time=now)

    def modify(self, *, qty: int | None = None, price: Decimal | str | int | None = None) -> bytes:
        s = self.session
        s.request()
        old = self.order
        self.order = attrs.evolve(
            old,
            order_qty=old.order_qty if qty is None else qty,
            price=old.price if price is None else _price(price),
            cl_ord_id=s.cl_ord_id(),
            orig_cl_ord_id=old.cl_ord_id,
            correlation_cl_ord_id=old.correlation_cl_ord_id or old.cl_ord_id,
        )
        head, now = s.header()
        return modify_ack(head, self.order, exec_id=s.exec_id(), transact_time=now)

    def cancel(self) -> bytes:
        s = self.session
        s.request()
        old = self.order
        self.order = attrs.evolve(
            old,
            cl_ord_id=s.cl_ord_id(),
            orig_cl_ord_id=old.cl_ord_id,
            correlation_cl_ord_id=old.correlation_cl_ord_id or old.cl_ord_id,
        )
        head, now = s.header()
        msg = cancel_ack(head, self.order, exec_id=s.exec_id(), transact_time=now)
        self.order = attrs.evolve(self.order, order_qty=self.order.cum_qty)
        return msg

    def pending_cancel(self) -> bytes:
        """Cancel pending (39=6, EBS): the order keeps working until its cancel ack."""
        s = self.session
        s.request()
        head, now = s.header()
        return pending_cancel(head, self.order, exec_id=s.exec_id(), transact_time=now)

    def pending_replace(self) -> bytes:
        """Replace pending (39=E, EBS): the working order's 38/44 until its modify ack."""
        s = self.session
        s.request()
        head, now = s.header()
        return pending_replace(head, self.order, exec_id=s.exec_id(), transact_time=now)

    def eliminate(self) -> bytes:
        s = self.session
        head, now = s.header()
        msg = elimination(head, self.order, exec_id=s.exec_id(), transact_time=now)
        self.order = attrs.evolve(self.order, order_qty=self.order.cum_qty)
        return msg

    def reject(self, text: str = "Order rejected") -> bytes:
        s = self.session
        s.request()
        head, now = s.header()
        return order_reject(head, self.order, exec_id=s.exec_id(), transact_time=now, text=text)

    def fill(
        self,
        qty: int | None = None,
        price: Decimal | str | int | None = None,
        *,
        aggressor: bool = True,
        order_events: Sequence[OrderEventEntry] = (),
    ) -> bytes:
        """Fill ``qty`` (default: everything left) at ``price`` (default: the order's limit price);
        ``order_events`` adds the BrokerTec/EBS 1795 group."""
        qty = self.order.leaves_qty if qty is None else qty
        if qty <= 0 or qty > self.order.leaves_qty:
            raise ValueError(f"cannot fill {qty}: {self.order.leaves_qty} left on {self.order.cl_ord_id}")
        px = self.order.price if price is None else _price(price)
        return self._fill(qty, px, aggressor=aggressor, order_events=order_events)

    def _fill(
        self,
        qty: int,
        px: Decimal,
        *,
        aggressor: bool | None,
        multileg: str = "1",
        secondary_exec_id: str | None = None,
        trade_id: int | None = None,
        total_num_securities: int | None = None,
        order_events: Sequence[OrderEventEntry] = (),
    ) -> bytes:
        s = self.session
        self.order = attrs.evolve(self.order, cum_qty=self.order.cum_qty + qty)
        head, now = s.header()
        exec_id = s.exec_id()
        if trade_id is None and multileg != "2":
            trade_id = s.trade_id()
        record = FillRecord(exec_id, qty, px, trade_id, secondary_exec_id or exec_id.split(":")[-1], multileg)
        self.fills.append(record)
        return fill(
            head,
            self.order,
            last_qty=qty,
            last_px=px,
            exec_id=exec_id,
            transact_time=now,
            trade_id=trade_id,
            secondary_exec_id=record.secondary_exec_id,
            trade_date=s.trade_date,
            aggressor=aggressor,
            multileg=multileg,
            total_num_securities=total_num_securities,
            order_events=order_events,
        )

    def _find(self, exec_id: str | None) -> FillRecord:
        if not self.fills:
            raise ValueError(f"order {self.order.cl_ord_id} has no fill")
        if exec_id is None:
            return self.fills[-1]
        for record in self.fills:
            if record.exec_id == exec_id:
                return record
        raise ValueError(f"order {self.order.cl_ord_id} has no fill {exec_id}")

    def bust(self, exec_id: str | None = None) -> bytes:
        """Trade cancel of a fill (default: the last one). The order is not reinstated: 14/151 unchanged."""
        record = self._find(exec_id)
        s = self.session
        head, now = s.header()
        return trade_bust(
            head,
            self.order,
            original_exec_id=record.exec_id,
            last_qty=record.qty,
            last_px=record.px,
            exec_id=s.exec_id(),
            transact_time=now,
            trade_id=record.trade_id,
            secondary_exec_id=record.secondary_exec_id,
            trade_date=s.trade_date,
            multileg=record.multileg,
        )

    def correct(self, price: Decimal | str | int, exec_id: str | None = None) -> bytes:
        """Trade correction of a fill (default: the last one) to a new price."""
        record = self._find(exec_id)
        s = self.session
        head, now = s.header()
        return trade_correction(
            head,
            self.order,
            original_exec_id=record.exec_id,
            last_qty=record.qty,
            new_px=_price(price),
            exec_id=s.exec_id(),
            transact_time=now,
            trade_id=record.trade_id,
            secondary_exec_id=record.secondary_exec_id,
            trade_date=s.trade_date,
            multileg=record.multileg,
        )


class SpreadFlow:
    """A spread order: :meth:`fill` returns the summary (442=3, 393) and one leg fill (442=2) per leg,
    all with the same 527 SecondaryExecID (spec §4.4)."""

    def __init__(self, flow: OrderFlow, legs: Sequence[tuple[Instrument, str, int]]) -> None:
        self.flow = flow
        self.legs = [
            (OrderFlow(flow.session, self._leg_order(flow.order, inst, side, ratio)), ratio)
            for inst, side, ratio in legs
        ]

    @staticmethod
    def _leg_order(spread: Order, instrument: Instrument, side: str, ratio: int) -> Order:
        if spread.side != BUY:
            side = SELL if side == BUY else BUY
        return attrs.evolve(spread, instrument=instrument, side=side, order_qty=spread.order_qty * ratio)

    @property
    def order(self) -> Order:
        return self.flow.order

    def ack(self) -> bytes:
        return self.flow.ack()

    def fill(
        self, qty: int, price: Decimal | str | int, leg_prices: Sequence[Decimal | str | int]
    ) -> list[bytes]:
        if len(leg_prices) != len(self.legs):
            raise ValueError("one price per leg is needed")
        s = self.flow.session
        link = f"{s.trade_id()}"
        out = [
            self.flow._fill(
                qty,
                _price(price),
                aggressor=True,
                multileg="3",
                secondary_exec_id=link,
                total_num_securities=len(self.legs),
            )
        ]
        for (leg, ratio), leg_px in zip(self.legs, leg_prices, strict=True):
            out.append(
                leg._fill(qty * ratio, _price(leg_px), aggressor=None, multileg="2", secondary_exec_id=link)
            )
        return out

    def bust(self) -> list[bytes]:
        """Bust the last spread fill: the summary and every leg, linked by 527."""
        return [self.flow.bust(), *(leg.bust() for leg, _ in self.legs)]


# -- the demo ------------------------------------------------------------------------------------------------

#: Net position per (account, 107 SecurityDesc) after :func:`demo_script` (outrights and spread legs only).
DEMO_NET_POSITIONS: dict[tuple[str, str], int] = {
    ("ACCT1", "ESZ6"): 10,
    ("ACCT2", "ZNH7"): -3,
    ("ACCT2", "ESZ6"): 2,
    ("ACCT2", "ESH7"): -2,
}


def demo_script(start: datetime | None = None) -> list[bytes]:
    """Inner messages of a small trading session for ``dropcopy demo``: two accounts, ESZ6/ESH7/ZNH7, acks,
    partial and complete fills, a modify and a cancel, an elimination, a calendar spread fill, one bust and
    an Order Mass Action Report. Final positions: :data:`DEMO_NET_POSITIONS`."""
    begin = start or datetime.now(UTC).replace(microsecond=0)
    src = ScriptedSession(
        sender_comp_id="M2L000N",
        operator="TRADER1",
        clock=ManualClock(begin, step=timedelta(milliseconds=250)),
    )
    msgs: list[bytes] = []
    # ACCT1 buys 10 ESZ6 in two fills: +10
    buy_es = src.order(ESZ6, account="ACCT1", side=BUY, qty=10, price="4500.25")
    msgs += [buy_es.ack(), buy_es.fill(4), buy_es.fill(6, "4500.00")]
    # ACCT2 sells 5 ZNH7: -5
    sell_zn = src.order(ZNH7, account="ACCT2", side=SELL, qty=5, price="110.15625")
    msgs += [sell_zn.ack(), sell_zn.fill(5)]
    # ACCT1 sells 3 ESZ6, filled, then the trade is busted: 0
    sell_es = src.order(ESZ6, account="ACCT1", side=SELL, qty=3, price="4501.00")
    msgs += [sell_es.ack(), sell_es.fill(3), sell_es.bust()]
    # ACCT2 bids 8 ZNH7, 2 fill, modified, cancelled: +2
    bid_zn = src.order(ZNH7, account="ACCT2", side=BUY, qty=8, price="110.125")
    msgs += [bid_zn.ack(), bid_zn.fill(2), bid_zn.modify(price="110.140625"), bid_zn.cancel()]
    # ACCT1 FAK order for 4 ZNH7 eliminated: 0
    fak = src.order(ZNH7, account="ACCT1", side=BUY, qty=4, price="109.5", time_in_force="3")
    msgs += [fak.ack(), fak.eliminate()]
    # ACCT2 buys 2 ESZ6-ESH7 calendar spreads: legs +2 ESZ6, -2 ESH7 (summary not counted)
    spread = src.spread_order(
        ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="ACCT2", qty=2, price="15.50"
    )
    msgs += [spread.ack(), *spread.fill(2, "15.50", ["4500.50", "4485.00"])]
    # ACCT1 rests 5 ZNH7, cancelled by an order mass action: 0
    resting = src.order(ZNH7, account="ACCT1", side=BUY, qty=5, price="109.0")
    msgs += [resting.ack(), src.mass_action([resting])]
    return msgs
