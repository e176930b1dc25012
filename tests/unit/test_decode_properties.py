"""Round trip: any valid event encodes, wraps and decodes back to the same typed values.

Strategies are derived from the same attrs metadata the decoder uses, so a field added to the model is covered
without touching this file.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from dropcopy_client._decode import decode, encode_report, wrap_outer
from dropcopy_client._enums import ExecTransType, FixEnum, OrdStatus
from dropcopy_client._messages import (
    BusinessMessageReject,
    CancelAck,
    Delivery,
    ExecutionReport,
    Fill,
    Group,
    MessageError,
    ModifyAck,
    OrderAck,
    OrderCancelReject,
    OrderElimination,
    OrderMassActionReport,
    OrderRejected,
    PendingCancel,
    PendingReplace,
    Source,
    TradeBust,
    TradeCorrection,
    Wire,
)
from dropcopy_client._wire import parse_fields

UTC = dt.UTC
MAX_NS = 4_102_444_800 * 10**9  # 2100-01-01

# FIX values: printable ASCII, never SOH, never empty; '=' and '|' allowed (they are legal inside a value)
text = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12)
ident = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-", min_size=1, max_size=12)
prices = st.decimals(
    min_value=-(10**9), max_value=10**9, places=9, allow_nan=False, allow_infinity=False
) | st.sampled_from(
    [Decimal("139.203125"), Decimal("-0.25"), Decimal("0"), Decimal("1E+2"), Decimal("4501.250")]
)
timestamps_ns = st.integers(0, MAX_NS - 1) | st.integers(0, MAX_NS // 10**6 - 1).map(lambda ms: ms * 10**6)
datetimes = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2099, 12, 31), timezones=st.just(UTC)
)
dates = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31))


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns % 10**9 // 1000)


def _enum_values(enum_cls: type[enum.Enum]) -> st.SearchStrategy[Any]:
    members = list(enum_cls)
    listed = {m.value for m in members}  # not _value2member_map_: interned pseudo-members grow it
    known = st.sampled_from(members)
    unknown = st.text("XYZQ789", min_size=1, max_size=3).filter(lambda v: v not in listed)
    return st.one_of(known, known, unknown.map(enum_cls))


def _scalar(wire: Any) -> st.SearchStrategy[Any]:
    if isinstance(wire, type) and issubclass(wire, FixEnum):
        return _enum_values(wire)
    return {
        Wire.STRING: text,
        Wire.INT: st.integers(-(10**6), 2**63),
        Wire.PRICE: prices,
        Wire.BOOLEAN: st.booleans(),
        Wire.UTC_TIMESTAMP: datetimes,
        Wire.LOCAL_MKT_DATE: dates,
    }[wire]


def _entries(group: Group) -> st.SearchStrategy[tuple[Any, ...]]:
    fields = [a for a in attrs.fields(group.entry) if "tag" in a.metadata]
    delimiter, rest = fields[0], fields[1:]  # FIX requires the first field of every entry
    entry = st.fixed_dictionaries(
        {delimiter.name: _scalar(delimiter.metadata["wire"])},
        optional={a.name: _scalar(a.metadata["wire"]) for a in rest},
    ).map(lambda kw: group.entry(**kw))
    return st.lists(entry, max_size=3).map(tuple)


@st.composite
def _values(draw: st.DrawFn, cls: type[Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``cls``: each tagged field present or absent, timestamps with exact ns."""
    kwargs: dict[str, Any] = {}
    for a in attrs.fields(cls):
        meta = a.metadata
        if a.name in fixed or "tag" not in meta or a.name == "msg_type":
            continue
        wire = meta["wire"]
        if isinstance(wire, Group):
            kwargs[a.name] = draw(_entries(wire))
            continue
        if a.default is not attrs.NOTHING and not draw(st.booleans()):
            continue
        if wire is Wire.UTC_TIMESTAMP and f"{a.name}_ns" in attrs.fields_dict(cls):
            ns = draw(timestamps_ns)
            kwargs[a.name], kwargs[f"{a.name}_ns"] = _utc(ns), ns
            continue
        kwargs[a.name] = draw(_scalar(wire))
    kwargs.update(fixed)
    return kwargs


sources = st.builds(
    Source,
    sender_comp_id=ident,
    operator=st.none() | ident,
    segment=st.none() | st.sampled_from(["G", "84", "98"]),
    seq_num=st.none() | st.integers(1, 10**9),
    sending_time=st.none() | datetimes,
    location=st.none() | st.sampled_from(["US,IL", "SG"]),
)

#: ExecutionReport variants and the discriminator values they are decoded from
VARIANTS: list[tuple[type[ExecutionReport], dict[str, Any]]] = [
    (OrderAck, {"ord_status": OrdStatus.NEW, "exec_trans_type": ExecTransType.NEW}),
    (Fill, {"ord_status": OrdStatus.PARTIALLY_FILLED, "exec_trans_type": ExecTransType.NEW}),
    (Fill, {"ord_status": OrdStatus.FILLED, "exec_trans_type": ExecTransType.NEW}),
    (CancelAck, {"ord_status": OrdStatus.CANCELED}),
    (ModifyAck, {"ord_status": OrdStatus.REPLACED}),
    (OrderElimination, {"ord_status": OrdStatus.EXPIRED}),
    (OrderRejected, {"ord_status": OrdStatus.REJECTED}),
    (TradeBust, {"ord_status": OrdStatus.TRADE_CANCEL, "exec_trans_type": ExecTransType.CANCEL}),
    (TradeCorrection, {"ord_status": OrdStatus.TRADE_CORRECTION, "exec_trans_type": ExecTransType.CORRECT}),
    (PendingCancel, {"ord_status": OrdStatus.PENDING_CANCEL}),
    (PendingReplace, {"ord_status": OrdStatus.PENDING_REPLACE}),
    (ExecutionReport, {"ord_status": OrdStatus.DONE_FOR_DAY}),  # no variant: the base class
]
OTHERS: list[tuple[type[Any], dict[str, Any]]] = [
    (OrderMassActionReport, {}),
    (OrderCancelReject, {}),
    (BusinessMessageReject, {}),
]


@st.composite
def events(draw: st.DrawFn) -> Any:
    cls, fixed = draw(st.sampled_from(VARIANTS + OTHERS))
    kwargs = draw(_values(cls, fixed))
    if "exec_trans_type" in fixed:
        kwargs["exec_trans_type"] = fixed["exec_trans_type"]
    elif issubclass(cls, ExecutionReport):
        kwargs["exec_trans_type"] = draw(st.none() | st.just(ExecTransType.NEW))
    placeholder = Delivery(
        group="",
        session="",
        target="",
        seq_num=0,
        sending_time=dt.datetime(2000, 1, 1, tzinfo=UTC),
        received_at=dt.datetime(2000, 1, 1, tzinfo=UTC),
    )
    return cls(delivery=placeholder, source=draw(sources), **kwargs)


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "seq_num": draw(st.integers(1, 10**9)),
        "target": draw(ident),
        "segment": draw(st.sampled_from(["G", "84", "92", "98"])),
        "sending_time": draw(datetimes),
        "operator": draw(st.sampled_from(["", "SID1", "TRADE_CAPTURE"])),
        "location": draw(st.sampled_from(["", "US,IL"])),
        "poss_dup": draw(st.booleans()),
        "poss_resend": draw(st.booleans()),
        "orig_sending_time": draw(st.none() | datetimes),
    }


def _typed(obj: Any) -> dict[str, Any]:
    """The typed FIX fields of an event or group entry (what the round trip must preserve)."""
    out: dict[str, Any] = {}
    for a in attrs.fields(type(obj)):
        if "tag" not in a.metadata and "ns_of" not in a.metadata:
            continue
        value = getattr(obj, a.name)
        if isinstance(a.metadata.get("wire"), Group):
            value = [_typed(entry) for entry in value]
        out[a.name] = value
    return out


RECEIVED = dt.datetime(2024, 3, 11, tzinfo=UTC)


@settings(max_examples=250, deadline=None)
@given(events(), deliveries())
def test_encode_wrap_decode_round_trip(event: Any, outer: dict[str, Any]) -> None:
    inner = encode_report(event)
    (decoded,) = decode(wrap_outer(inner, **outer), group="g", received_at=RECEIVED)

    assert not isinstance(decoded, MessageError), decoded.reason
    assert type(decoded) is type(event)
    assert _typed(decoded) == _typed(event)
    assert decoded.source == event.source
    assert decoded.delivery == Delivery(
        group="g",
        session=f"{outer['target']}:{outer['segment']}",
        target=outer["target"],
        segment=outer["segment"],
        seq_num=outer["seq_num"],
        poss_dup=outer["poss_dup"],
        poss_resend=outer["poss_resend"],
        orig_sending_time=outer["orig_sending_time"],
        sending_time=outer["sending_time"],
        received_at=RECEIVED,
    )
    # raw and inner are derived consistently from what was sent
    assert decoded.inner == inner
    assert decoded.raw == tuple((tag, value.decode("ascii")) for tag, value in parse_fields(inner))
    assert encode_report(decoded) == inner
    for group_field in (a for a in attrs.fields(type(event)) if isinstance(a.metadata.get("wire"), Group)):
        for entry in getattr(decoded, group_field.name):
            assert all(
                tag in {*_entry_tags(entry), *group_field.metadata["wire"].extra_tags} for tag, _ in entry.raw
            )


def _entry_tags(entry: Any) -> set[int]:
    return {a.metadata["tag"] for a in attrs.fields(type(entry)) if "tag" in a.metadata}


@settings(max_examples=100, deadline=None)
@given(events())
def test_warnings_follow_the_150_cross_check(event: Any) -> None:
    (decoded,) = decode(
        wrap_outer(encode_report(event), seq_num=1, target="T", segment="G", sending_time=RECEIVED)
    )
    assert not isinstance(decoded, MessageError), decoded.reason
    if not isinstance(event, ExecutionReport):
        assert decoded.warnings == ()
        return
    exec_type = event.exec_type
    consistent = (
        exec_type is None
        or exec_type.value == event.ord_status.value
        or (exec_type.value == "F" and event.ord_status.value in "12")
    )
    assert any("150 ExecType" in w for w in decoded.warnings) is (not consistent)
