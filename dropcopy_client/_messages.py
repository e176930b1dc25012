"""Typed business events: everything CME Drop Copy 4.0 delivers, one module a reader can scan.

Every business message arrives on our drop copy target session as an outer ``35=n`` whose tag 213 holds the
copied iLink message (spec §3.3). An event therefore carries two envelopes and a payload:

* :class:`Delivery` -- the outer message as *we* received it (drop copy sequence number, PossDup/PossResend);
* :class:`Source` -- the inner header: which iLink session's traffic this is a copy of;
* the payload fields, named snake_case, each with its FIX tag in the attrs field metadata.

The metadata is the single source of truth: the decoder (:mod:`dropcopy_client._decode`) builds its
tag -> converter table from it, the encoder writes messages from it, and ``docs/reference/messages.md`` is
generated from it (:mod:`dropcopy_client._docgen`). Metadata keys: ``tag``, ``fix_name``, ``wire`` (a
:class:`Wire`, a :class:`~dropcopy_client._enums.FixEnum` class or a :class:`Group`), ``doc``; a field
with ``ns_of`` holds the exact integer nanoseconds of the timestamp tag it names (datetime keeps only
microseconds).

Conventions: ``Decimal`` prices, ``int`` quantities, tz-aware UTC datetimes, ``None`` for an absent tag.
Identifiers (ExecID, OrderID, SecurityID, MDTradeEntryID, ...) stay ``str`` even where CME types them Int:
they are compared, never added; text keeps leading zeros; and a fill is never lost over an identifier's
format.

The classes are frozen attrs classes **without** ``__slots__``: the decoder creates an instance by assigning a
ready ``__dict__`` (one C call) instead of calling ``__init__`` with fifty keyword arguments (measured several
times faster); the values it assigns have already been converted by its table. For the same reason a decoded
event's ``raw`` is derived from ``inner`` on first access. Calling a class directly (tests, simulators, your
own code) goes through the normal attrs ``__init__``.
"""

# ruff: noqa: RUF009 -- _opt()/_ns() return attrs.field(...); ruff only recognises direct attrs.field calls

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

from dropcopy_client._enums import (
    CxlRejResponseTo,
    ExecTransType,
    ExecType,
    MassActionResponse,
    MassActionScope,
    MassActionType,
    MultiLegReportingType,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from dropcopy_client._serialize import ToDict
from dropcopy_client._wire import parse_fields

__all__ = [
    "AffectedOrder",
    "BusinessEvent",
    "BusinessMessageReject",
    "CancelAck",
    "Delivery",
    "Event",
    "ExecutionReport",
    "Fill",
    "Group",
    "MessageError",
    "ModifyAck",
    "OrderAck",
    "OrderCancelReject",
    "OrderElimination",
    "OrderEvent",
    "OrderMassActionReport",
    "OrderRejected",
    "PendingCancel",
    "PendingReplace",
    "Source",
    "TradeBust",
    "TradeCorrection",
    "UnknownMessage",
    "Wire",
]

RawFields: TypeAlias = tuple[tuple[int, str], ...]


class Wire(enum.Enum):
    """FIX wire types of scalar fields; the value is the FIX 4.2 type name (shown in the reference docs)."""

    STRING = "String"
    INT = "int"
    PRICE = "Price"
    BOOLEAN = "Boolean"
    UTC_TIMESTAMP = "UTCTimestamp"
    LOCAL_MKT_DATE = "LocalMktDate"


@attrs.frozen
class Group:
    """A repeating group: the count tag's field holds a tuple of ``entry`` objects.

    ``extra_tags`` belong to the group without a typed field; they are kept in each entry's ``raw``. An
    entry starts at the first tag after the count (FIX's delimiter) and at any tag repeated within the
    current entry.
    """

    entry: type[Any]
    extra_tags: frozenset[int] = frozenset()


def _meta(tag: int, fix_name: str, wire: Wire | type[enum.Enum] | Group, doc: str = "") -> dict[str, Any]:
    return {"tag": tag, "fix_name": fix_name, "wire": wire, "doc": doc}


def _opt(tag: int, fix_name: str, wire: Wire | type[enum.Enum] | Group, doc: str = "") -> Any:
    """An optional FIX field (None when the tag is absent; an empty tuple for a group)."""
    default: object = () if isinstance(wire, Group) else None
    return attrs.field(default=default, metadata=_meta(tag, fix_name, wire, doc))


def _ns(tag: int) -> Any:
    """The exact integer nanoseconds since the Unix epoch of timestamp ``tag``."""
    return attrs.field(default=None, metadata={"ns_of": tag, "doc": f"{tag} as exact integer nanoseconds"})


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def utc_from_ns(ns: int) -> dt.datetime:
    """A UTC datetime (microseconds, truncated) from integer nanoseconds since the Unix epoch.

    One ``timedelta`` and one addition: half the cost of ``fromtimestamp(...).replace(...)``, and it runs per
    journaled message."""
    return _EPOCH + _MICROSECOND * (ns // 1000)


def _short_repr(self: Any) -> str:
    """Fields that differ from their default, so a fill's repr is readable rather than fifty ``None``s."""
    parts = []
    for a in attrs.fields(type(self)):
        if not a.repr or a.name in ("raw", "inner"):
            continue
        value = getattr(self, a.name)
        if a.default is not attrs.NOTHING and value == a.default:
            continue
        parts.append(f"{a.name}={value!r}")
    return f"{type(self).__name__}({', '.join(parts)})"


# ------------------------------------------------------------------------------------------------ envelopes


@attrs.frozen(kw_only=True, slots=False)
class Delivery:
    """The outer 35=n as received on our drop copy target session.

    ``seq_num`` is the drop copy stream's sequence number, not the source session's (that is ``Source``'s).
    De-duplicate on ExecID, not on this: after a failover CME replays with 97=Y on *new* numbers (spec §2.6).
    """

    group: str = attrs.field(metadata={"doc": 'drop copy group name ("" when decoding offline)'})
    session: str = attrs.field(
        metadata={"doc": 'session name, ``"<SenderCompID>:<segment>"``, e.g. "XYZDEFN:84"'}
    )
    target: str = attrs.field(metadata=_meta(56, "TargetCompID", Wire.STRING, "our SenderCompID"))
    segment: str = attrs.field(
        default="", metadata=_meta(50, "SenderSubID", Wire.STRING, '"G" on a CGW target, segment id on MSGW')
    )
    seq_num: int = attrs.field(metadata=_meta(34, "MsgSeqNum", Wire.INT, "drop copy target-session sequence"))
    poss_dup: bool = attrs.field(
        default=False, metadata=_meta(43, "PossDupFlag", Wire.BOOLEAN, "a retransmission (resend response)")
    )
    poss_resend: bool = attrs.field(
        default=False,
        metadata=_meta(97, "PossResend", Wire.BOOLEAN, "possibly sent before on another number"),
    )
    orig_sending_time: dt.datetime | None = _opt(122, "OrigSendingTime", Wire.UTC_TIMESTAMP, "resends only")
    sending_time: dt.datetime = attrs.field(metadata=_meta(52, "SendingTime", Wire.UTC_TIMESTAMP))
    received_at: dt.datetime = attrs.field(metadata={"doc": "when this process received the message"})
    uncertain: bool = attrs.field(
        default=False,
        metadata={"doc": "a sequence gap was open on this session when the message was delivered"},
    )
    journal_id: int | None = attrs.field(
        default=None,
        metadata={
            "doc": "position in the journal's stream (what consumer cursors count); None before journaling"
        },
    )
    replayed: bool = attrs.field(
        default=False,
        metadata={"doc": "re-fed from the journal after a restart: this consumer may have seen it before"},
    )


@attrs.frozen(kw_only=True, slots=False)
class Source:
    """The inner header: the iLink session whose order-entry traffic this message copies (spec §3.3)."""

    sender_comp_id: str = attrs.field(
        metadata=_meta(56, "TargetCompID", Wire.STRING, "source iLink session, e.g. M2L000N")
    )
    operator: str | None = _opt(57, "TargetSubID", Wire.STRING, "source operator id")
    segment: str | None = _opt(50, "SenderSubID", Wire.STRING, '"G" (CGW source) or market segment id')
    seq_num: int | None = _opt(34, "MsgSeqNum", Wire.INT, "the source session's own sequence number")
    sending_time: dt.datetime | None = _opt(52, "SendingTime", Wire.UTC_TIMESTAMP)
    location: str | None = _opt(143, "TargetLocationID", Wire.STRING, "the source session's 142")


@attrs.frozen(kw_only=True, slots=False, repr=False)
class _Business(ToDict):
    """What every business event carries besides its payload fields."""

    delivery: Delivery
    source: Source
    raw: RawFields = attrs.field(
        default=(), metadata={"doc": "every inner tag in wire order, header and trailer included"}
    )
    inner: bytes = attrs.field(default=b"", metadata={"doc": "the inner FIX message exactly as received"})
    warnings: tuple[str, ...] = attrs.field(
        default=(), metadata={"doc": "what did not fit but did not stop decoding, e.g. 150 vs 39"}
    )

    __repr__ = _short_repr

    @property
    def idempotency_key(self) -> str:
        """The key a consumer de-duplicates on: the same however often and by whichever path it arrives.

        ``"E:" + ExecID`` when the message has one (unique per message across Globex: the same on a resend,
        on a post-failover 97=Y replay and on the copy another drop copy group receives). Otherwise
        ``"S:<target session>|<source 56>|<source 34>|<source 52>"``: the source session's own numbering,
        qualified by the drop copy session it came on (MSGW segments number independently).
        """
        exec_id: str | None = getattr(self, "exec_id", None)
        if exec_id:
            return "E:" + exec_id
        return source_key(self.delivery.session, self.source)

    @property
    def journal_id(self) -> int | None:
        """Position in the journal's stream (``delivery.journal_id``)."""
        return self.delivery.journal_id

    @property
    def replayed(self) -> bool:
        """Re-fed from the journal after a restart (``delivery.replayed``)."""
        return self.delivery.replayed


def source_key(session: str, source: Source) -> str:
    """The idempotency key of a message without ExecID (see ``_Business.idempotency_key``)."""
    sent = source.sending_time.isoformat() if source.sending_time is not None else ""
    seq = "" if source.seq_num is None else str(source.seq_num)
    return f"S:{session}|{source.sender_comp_id}|{seq}|{sent}"


# ------------------------------------------------------------------------------------------------ groups


@attrs.frozen(kw_only=True, slots=False, repr=False)
class OrderEvent:
    """One entry of the BrokerTec/EBS fill group 1795 NoOrderEvents."""

    exec_id: str | None = _opt(1797, "OrderEventExecID", Wire.STRING)
    px: Decimal | None = _opt(1799, "OrderEventPx", Wire.PRICE)
    qty: int | None = _opt(1800, "OrderEventQty", Wire.INT)
    text: str | None = _opt(1802, "OrderEventText", Wire.STRING)
    raw: RawFields = attrs.field(
        default=(), metadata={"doc": "every tag of the entry (1796, 1798, 1801, ...)"}
    )

    __repr__ = _short_repr


@attrs.frozen(kw_only=True, slots=False, repr=False)
class AffectedOrder:
    """One entry of group 534 NoAffectedOrders of an Order Mass Action Report."""

    orig_cl_ord_id: str | None = _opt(41, "OrigClOrdID", Wire.STRING)
    affected_order_id: str | None = _opt(535, "AffectedOrderID", Wire.STRING, "OrderID (37) of the order")
    cxl_qty: int | None = _opt(84, "CxlQty", Wire.INT)
    security_desc: str | None = _opt(107, "SecurityDesc", Wire.STRING)
    raw: RawFields = attrs.field(default=(), metadata={"doc": "every tag of the entry in wire order"})

    __repr__ = _short_repr


_ORDER_EVENTS = Group(OrderEvent, extra_tags=frozenset({1796, 1798, 1801}))
_AFFECTED_ORDERS = Group(AffectedOrder, extra_tags=frozenset({48, 536}))


# ------------------------------------------------------------------------------------------------ 35=8


@attrs.frozen(kw_only=True, slots=False, repr=False)
class ExecutionReport(_Business):
    """Inner 35=8. Decoded as one of the subclasses by 39 OrdStatus + 20 ExecTransType (spec §4.2).

    An ExecutionReport that is none of the known variants is delivered as this base class, not as an error.
    """

    account: str | None = _opt(1, "Account", Wire.STRING, "always upper-case")
    avg_px: Decimal | None = _opt(6, "AvgPx", Wire.PRICE, "always 0 on CME")
    cl_ord_id: str | None = _opt(11, "ClOrdID", Wire.STRING, "for mass-quote trades the 299 QuoteEntryID")
    cum_qty: int | None = _opt(14, "CumQty", Wire.INT)
    exec_id: str = attrs.field(
        metadata=_meta(17, "ExecID", Wire.STRING, "globally unique per message: the de-duplication key")
    )
    exec_ref_id: str | None = _opt(
        19, "ExecRefID", Wire.STRING, "bust/correction: last 9 chars of the original 17"
    )
    exec_trans_type: ExecTransType | None = _opt(20, "ExecTransType", ExecTransType)
    last_px: Decimal | None = _opt(31, "LastPx", Wire.PRICE, "fill price")
    last_qty: int | None = _opt(32, "LastQty", Wire.INT, "fill quantity")
    order_id: str | None = _opt(37, "OrderID", Wire.STRING, "CME order id (reset in DR)")
    order_qty: int | None = _opt(38, "OrderQty", Wire.INT)
    ord_status: OrdStatus = attrs.field(metadata=_meta(39, "OrdStatus", OrdStatus, "discriminator with 20"))
    ord_type: OrdType | None = _opt(40, "OrdType", OrdType)
    orig_cl_ord_id: str | None = _opt(41, "OrigClOrdID", Wire.STRING, "0 when none; deprecated for iLink 3")
    price: Decimal | None = _opt(44, "Price", Wire.PRICE)
    security_id: str | None = _opt(48, "SecurityID", Wire.STRING, "instrument id (numeric on CME)")
    side: Side | None = _opt(54, "Side", Side)
    symbol: str | None = _opt(55, "Symbol", Wire.STRING, "product group code")
    text: str | None = _opt(58, "Text", Wire.STRING)
    time_in_force: TimeInForce | None = _opt(59, "TimeInForce", TimeInForce)
    transact_time: dt.datetime | None = _opt(60, "TransactTime", Wire.UTC_TIMESTAMP)
    transact_time_ns: int | None = _ns(60)
    trade_date: dt.date | None = _opt(75, "TradeDate", Wire.LOCAL_MKT_DATE, "on fills")
    stop_px: Decimal | None = _opt(99, "StopPx", Wire.PRICE)
    security_desc: str | None = _opt(107, "SecurityDesc", Wire.STRING, "instrument name, e.g. ZNH1")
    exec_type: ExecType | None = _opt(150, "ExecType", ExecType, "cross-checked against 39")
    leaves_qty: int | None = _opt(151, "LeavesQty", Wire.INT, "not returned on corrections")
    security_type: str | None = _opt(167, "SecurityType", Wire.STRING, "FUT, OPT, TNOTE, ...")
    contra_trader: str | None = _opt(337, "ContraTrader", Wire.STRING)
    contra_broker: str | None = _opt(375, "ContraBroker", Wire.STRING)
    total_num_securities: int | None = _opt(
        393, "TotalNumSecurities", Wire.INT, "spread summary fill only: number of leg fills"
    )
    expire_date: dt.date | None = _opt(432, "ExpireDate", Wire.LOCAL_MKT_DATE)
    multi_leg_reporting_type: MultiLegReportingType | None = _opt(
        442, "MultiLegReportingType", MultiLegReportingType, "3 = spread summary: never add to positions"
    )
    secondary_exec_id: str | None = _opt(
        527, "SecondaryExecID", Wire.STRING, "links a spread summary, its legs and their busts"
    )
    cross_id: str | None = _opt(548, "CrossID", Wire.STRING)
    avg_px_indicator: int | None = _opt(819, "AvgPxIndicator", Wire.INT, "BrokerTec")
    manual_order_indicator: bool | None = _opt(1028, "ManualOrderIndicator", Wire.BOOLEAN, "Y = manual")
    cust_order_handling_inst: str | None = _opt(
        1031, "CustOrderHandlingInst", Wire.STRING, "e.g. Y, H (observed values)"
    )
    aggressor: bool | None = _opt(1057, "AggressorIndicator", Wire.BOOLEAN, "on fills, not on spread legs")
    clearing_trade_price_type: int | None = _opt(1598, "ClearingTradePriceType", Wire.INT, "BrokerTec")
    order_events: tuple[OrderEvent, ...] = _opt(
        1795, "NoOrderEvents", _ORDER_EVENTS, "BrokerTec/EBS fill group (1797, 1799, 1800, 1802)"
    )
    memo: str | None = _opt(5149, "Memo", Wire.STRING, "BrokerTec")
    tag_5906: str | None = _opt(5906, "5906", Wire.STRING, "seen in BrokerTec payloads; meaning unconfirmed")
    request_time_ns: int | None = _opt(5979, "RequestTime", Wire.INT, "nanoseconds since the Unix epoch")
    correlation_cl_ord_id: str | None = _opt(
        9717, "CorrelationClOrdID", Wire.STRING, "ClOrdID of the original new order (not on iLink 3)"
    )
    md_trade_entry_id: str | None = _opt(
        37711, "MDTradeEntryID", Wire.STRING, "trade id shared with MDP/STP; not on spread legs"
    )

    @property
    def is_spread_summary(self) -> bool:
        """442=3: the spread-level report of a spread trade; its legs carry the instrument positions."""
        return self.multi_leg_reporting_type is MultiLegReportingType.MULTI_LEG_SECURITY

    @property
    def is_spread_leg(self) -> bool:
        """442=2: one leg of a spread trade."""
        return self.multi_leg_reporting_type is MultiLegReportingType.INDIVIDUAL_LEG_OF_MULTI_LEG

    @property
    def request_time(self) -> dt.datetime | None:
        """5979 RequestTime as a datetime (microseconds; ``request_time_ns`` is exact)."""
        return None if self.request_time_ns is None else utc_from_ns(self.request_time_ns)

    @property
    def instrument(self) -> str | None:
        """Display name: SecurityDesc (107), else Symbol (55), else SecurityID (48); None when none is sent."""
        return self.security_desc or self.symbol or self.security_id


@attrs.frozen(kw_only=True, slots=False, repr=False)
class OrderAck(ExecutionReport):
    """39=0, 20=0: a new order was accepted and is working."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class ModifyAck(ExecutionReport):
    """39=5: a cancel/replace (modify) was accepted. 14 CumQty resets unless in-flight mitigation is on."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class CancelAck(ExecutionReport):
    """39=4: the order was cancelled on request."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class OrderElimination(ExecutionReport):
    """39=C: CME eliminated the order (expiry, end of session, risk controls)."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class OrderRejected(ExecutionReport):
    """39=8: an Execution Report - Reject (whether Drop Copy forwards these is unconfirmed, spec §8)."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class Fill(ExecutionReport):
    """39=1 (partial) or 39=2 (complete) with 20=0: a trade. Outright, spread summary or spread leg (442).

    The fields CME sends on every fill notice (spec §4.2-§4.3) are never None here: a 35=8 fill without one of
    them is delivered as a :class:`MessageError` naming the tag, with the raw bytes kept, never as a Fill with
    a hole (a position cannot be kept from a fill without price, quantity, side or instrument).
    """

    last_px: Decimal = attrs.field(metadata=_meta(31, "LastPx", Wire.PRICE, "fill price; always sent"))
    last_qty: int = attrs.field(metadata=_meta(32, "LastQty", Wire.INT, "fill quantity; always sent"))
    order_id: str = attrs.field(metadata=_meta(37, "OrderID", Wire.STRING, "CME order id; always sent"))
    security_id: str = attrs.field(
        metadata=_meta(48, "SecurityID", Wire.STRING, "instrument id (numeric on CME); always sent")
    )
    side: Side = attrs.field(metadata=_meta(54, "Side", Side, "always sent"))
    transact_time: dt.datetime = attrs.field(
        metadata=_meta(60, "TransactTime", Wire.UTC_TIMESTAMP, "always sent")
    )

    @property
    def is_partial(self) -> bool:
        """39=1: the order has quantity left."""
        return self.ord_status is OrdStatus.PARTIALLY_FILLED

    @property
    def instrument(self) -> str:
        """Display name: SecurityDesc (107), else Symbol (55), else SecurityID (48); as ``Position.instrument``."""
        return self.security_desc or self.symbol or self.security_id


@attrs.frozen(kw_only=True, slots=False, repr=False)
class TradeBust(ExecutionReport):
    """39=H, 20=1: a trade cancel. 19 names the busted fill's 17; 31/32 are the busted price and quantity."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class TradeCorrection(ExecutionReport):
    """39=G, 20=2: a trade correction. New 17; 19 names the original; 31 is the new price, 32 the old qty."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class PendingCancel(ExecutionReport):
    """39=6: cancel pending (EBS only)."""


@attrs.frozen(kw_only=True, slots=False, repr=False)
class PendingReplace(ExecutionReport):
    """39=E: replace pending (EBS only)."""


# ------------------------------------------------------------------------------------------------ others


@attrs.frozen(kw_only=True, slots=False, repr=False)
class OrderMassActionReport(_Business):
    """Inner 35=BZ: a (simulated) Order Mass Action Report (spec §4.5)."""

    cl_ord_id: str | None = _opt(11, "ClOrdID", Wire.STRING)
    security_id: str | None = _opt(48, "SecurityID", Wire.STRING, "instrument scope only")
    symbol: str | None = _opt(55, "Symbol", Wire.STRING)
    text: str | None = _opt(58, "Text", Wire.STRING)
    transact_time: dt.datetime | None = _opt(60, "TransactTime", Wire.UTC_TIMESTAMP)
    transact_time_ns: int | None = _ns(60)
    security_desc: str | None = _opt(107, "SecurityDesc", Wire.STRING)
    total_affected_orders: int | None = _opt(
        533, "TotalAffectedOrders", Wire.INT, "0: accepted, none cancelled"
    )
    affected_orders: tuple[AffectedOrder, ...] = _opt(534, "NoAffectedOrders", _AFFECTED_ORDERS)
    last_fragment: bool | None = _opt(893, "LastFragment", Wire.BOOLEAN)
    manual_order_indicator: bool | None = _opt(1028, "ManualOrderIndicator", Wire.BOOLEAN)
    security_group: str | None = _opt(1151, "SecurityGroup", Wire.STRING)
    market_segment_id: str | None = _opt(1300, "MarketSegmentID", Wire.STRING)
    mass_action_report_id: str = attrs.field(
        metadata=_meta(1369, "MassActionReportID", Wire.STRING, "unique id: the de-duplication key")
    )
    mass_action_type: MassActionType | None = _opt(1373, "MassActionType", MassActionType)
    mass_action_scope: MassActionScope | None = _opt(1374, "MassActionScope", MassActionScope)
    mass_action_response: MassActionResponse | None = _opt(1375, "MassActionResponse", MassActionResponse)
    mass_action_reject_reason: int | None = _opt(1376, "MassActionRejectReason", Wire.INT)
    request_time_ns: int | None = _opt(5979, "RequestTime", Wire.INT, "nanoseconds since the Unix epoch")


@attrs.frozen(kw_only=True, slots=False, repr=False)
class OrderCancelReject(_Business):
    """Inner 35=9 (forwarding by Drop Copy is unconfirmed, spec §4.6; decoded when it comes)."""

    account: str | None = _opt(1, "Account", Wire.STRING)
    cl_ord_id: str | None = _opt(11, "ClOrdID", Wire.STRING)
    order_id: str | None = _opt(37, "OrderID", Wire.STRING)
    ord_status: OrdStatus | None = _opt(39, "OrdStatus", OrdStatus)
    orig_cl_ord_id: str | None = _opt(41, "OrigClOrdID", Wire.STRING)
    security_id: str | None = _opt(48, "SecurityID", Wire.STRING)
    symbol: str | None = _opt(55, "Symbol", Wire.STRING)
    text: str | None = _opt(58, "Text", Wire.STRING)
    transact_time: dt.datetime | None = _opt(60, "TransactTime", Wire.UTC_TIMESTAMP)
    transact_time_ns: int | None = _ns(60)
    cxl_rej_reason: int | None = _opt(102, "CxlRejReason", Wire.INT)
    security_desc: str | None = _opt(107, "SecurityDesc", Wire.STRING)
    cxl_rej_response_to: CxlRejResponseTo | None = _opt(434, "CxlRejResponseTo", CxlRejResponseTo)
    manual_order_indicator: bool | None = _opt(1028, "ManualOrderIndicator", Wire.BOOLEAN)
    request_time_ns: int | None = _opt(5979, "RequestTime", Wire.INT)
    correlation_cl_ord_id: str | None = _opt(9717, "CorrelationClOrdID", Wire.STRING)


@attrs.frozen(kw_only=True, slots=False, repr=False)
class BusinessMessageReject(_Business):
    """Inner 35=j (forwarding by Drop Copy is unconfirmed, spec §4.6; decoded when it comes)."""

    ref_seq_num: int | None = _opt(45, "RefSeqNum", Wire.INT)
    text: str | None = _opt(58, "Text", Wire.STRING)
    ref_msg_type: str | None = _opt(372, "RefMsgType", Wire.STRING)
    business_reject_ref_id: str | None = _opt(379, "BusinessRejectRefID", Wire.STRING)
    business_reject_reason: int | None = _opt(380, "BusinessRejectReason", Wire.INT)


@attrs.frozen(kw_only=True, slots=False, repr=False)
class UnknownMessage(_Business):
    """An inner message type this library does not model (or an unwrapped outer application message).

    Nothing is lost: ``raw`` has every tag, ``inner`` the bytes.
    """

    msg_type: str = attrs.field(metadata=_meta(35, "MsgType", Wire.STRING))


@attrs.frozen(kw_only=True)
class MessageError(ToDict):
    """An *event* for input that cannot be decoded: the stream goes on, nothing is silently dropped.

    ``delivery`` is set when the outer frame verified and its header could be read (so the sequence number is
    trustworthy), else None. ``raw`` is the whole outer message with secrets redacted.
    """

    reason: str
    raw: bytes
    delivery: Delivery | None = None
    inner: bytes | None = None
    #: position in the journal's stream; None before journaling
    journal_id: int | None = None
    #: re-fed from the journal after a restart
    replayed: bool = False

    @property
    def idempotency_key(self) -> str:
        """``"J:<journal_id>"``: an undecodable message is never a duplicate of another one."""
        return f"J:{self.journal_id}"


class _RawFromInner:
    """``raw`` of a decoded event: derived from ``inner`` on first access, then kept in the instance.

    The decoder leaves ``raw`` out of the events it creates: building ~40 ``(tag, text)`` tuples per message
    cost a third of the decode time, and most consumers never read it. An instance made by ``__init__`` holds
    its ``raw`` in ``__dict__``, which takes precedence over this (non-data) descriptor.
    """

    def __get__(self, obj: Any, owner: type[Any] | None = None) -> Any:
        if obj is None:
            return self
        value = (
            tuple((tag, text.decode("ascii")) for tag, text in parse_fields(obj.inner)) if obj.inner else ()
        )
        obj.__dict__["raw"] = value
        return value


_Business.raw = _RawFromInner()  # type: ignore[assignment]

BusinessEvent: TypeAlias = (
    ExecutionReport | OrderMassActionReport | OrderCancelReject | BusinessMessageReject | UnknownMessage
)
Event: TypeAlias = BusinessEvent | MessageError
