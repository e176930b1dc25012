"""Decoding drop copy messages into typed events: every variant, every error reason, the envelopes."""

from __future__ import annotations

import datetime as dt
import pickle
from decimal import Decimal
from typing import Any

import attrs
import pytest

import dropcopy_client._decode as decoding
from dropcopy_client._decode import decode, decode_strict, encode_report, wrap_outer
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
from dropcopy_client._messages import (
    BusinessMessageReject,
    CancelAck,
    Delivery,
    ExecutionReport,
    Fill,
    MessageError,
    OrderAck,
    OrderCancelReject,
    OrderMassActionReport,
    Source,
    TradeBust,
    TradeCorrection,
    UnknownMessage,
)
from dropcopy_client._wire import parse_fields, wrap
from dropcopy_client.errors import DecodeError
from tests.unit._message_fixtures import (
    Fixture,
    all_fixtures,
    encode_inner,
    encode_outer,
    fields_of,
    fixture,
    inner_of,
    pipes,
    refix,
)

UTC = dt.UTC
RECEIVED = dt.datetime(2024, 3, 11, 14, 31, 6, tzinfo=UTC)
OUTER = fields_of("34=7|52=20240311-14:30:00.001|49=CME|50=G|56=ABCDEFN|57=TRADE_CAPTURE|143=US,IL")
INNER_HEAD = "35=8|34=5001|52=20240311-14:30:00.000|49=CME|50=G|56=ABC123N|57=TRADER1|143=US,IL"
ACK_BODY = (
    "1=ACCT01|11=ORD-1|14=0|17=64201:1|20=0|37=70|38=5|39=0|40=2|44=4501.25|48=118|54=1|55=ES|150=0|151=5"
)


def wrapped(inner_text: str, outer: list[tuple[int, str]] = OUTER) -> bytes:
    """A correct outer 35=n around an inner message given as ``|`` text from ``35=`` on."""
    return encode_outer(outer, wrap(encode_inner(fields_of(inner_text))))


def one(raw: bytes | str, group: str = "", session: str | None = None) -> Any:
    events = decode(raw, group=group, session=session, received_at=RECEIVED)
    assert len(events) == 1, events
    return events[0]


def error(raw: bytes | str) -> MessageError:
    event = one(raw)
    assert isinstance(event, MessageError), event
    assert not event.reason.startswith("internal"), event.reason
    return event


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("fx", all_fixtures(), ids=lambda f: f.name)
def test_every_fixture_decodes_to_its_class(fx: Fixture) -> None:
    event = one(fx.outer)
    assert type(event).__name__ == fx.expect


@pytest.mark.parametrize(
    "fx", [f for f in all_fixtures() if f.inner_fields is not None], ids=lambda f: f.name
)
def test_raw_keeps_every_inner_tag_in_wire_order(fx: Fixture) -> None:
    event = one(fx.outer)
    tags = [(tag, value) for tag, value in event.raw if tag not in (8, 9, 10)]
    assert tags == fx.inner_fields
    assert event.raw[:2] == ((8, "FIX.4.2"), (9, str(len(event.inner) - event.inner.index(b"35=") - 7)))
    assert event.raw[-1][0] == 10
    assert event.inner == inner_of(fx.outer)


def test_spec_quickfixn_fixture_decodes_exactly() -> None:
    raw = fixture("qfn_order_ack").outer
    assert raw.startswith(b"8=FIX.4.2\x019=495\x01") and raw.endswith(b"</RTRF>\x0110=028\x01")
    ack = one(raw)
    assert isinstance(ack, OrderAck)
    assert ack.exec_id == "84618:1342652"
    assert ack.price == Decimal("139.203125") and isinstance(ack.price, Decimal)
    assert ack.request_time_ns == 1593635673976364291
    assert ack.request_time == dt.datetime(2020, 7, 1, 20, 34, 33, 976364, tzinfo=UTC)
    assert ack.source == Source(
        sender_comp_id="M2L000N",
        operator="DUMMY",
        segment="84",
        seq_num=36027,
        sending_time=dt.datetime(2020, 7, 1, 20, 34, 33, 977000, tzinfo=UTC),
        location="US,IL",
    )
    assert ack.delivery == Delivery(
        group="",
        session="DUMMY11:84",
        target="DUMMY11",
        segment="84",
        seq_num=31420,
        sending_time=dt.datetime(2020, 7, 1, 20, 34, 33, 978000, tzinfo=UTC),
        received_at=RECEIVED,
    )
    assert (ack.account, ack.cl_ord_id, ack.order_id, ack.security_id, ack.symbol, ack.security_desc) == (
        "00331",
        "ACP1593635673935",
        "84778833500",
        "204527",
        "ZN",
        "ZNH1",
    )
    assert (ack.side, ack.ord_type, ack.time_in_force, ack.exec_type) == (
        Side.BUY,
        OrdType.LIMIT,
        TimeInForce.DAY,
        ExecType.NEW,
    )
    assert (ack.order_qty, ack.leaves_qty, ack.cum_qty, ack.avg_px) == (10, 10, 0, Decimal(0))
    assert ack.transact_time == dt.datetime(2020, 7, 1, 20, 34, 33, 976000, tzinfo=UTC)
    assert ack.transact_time_ns == 1593635673976000000
    assert ack.expire_date == dt.date(2020, 7, 1)
    assert ack.manual_order_indicator is True and ack.cust_order_handling_inst == "Y"
    assert ack.correlation_cl_ord_id == "ACP1593635673935"
    assert ack.warnings == ()
    assert (369, "18623") in ack.raw  # untyped tags are kept


def test_outright_fill_resent() -> None:
    fill = one(fixture("fill_outright").outer)
    assert isinstance(fill, Fill) and not fill.is_partial
    assert (fill.last_px, fill.last_qty, fill.cum_qty, fill.leaves_qty) == (Decimal("4501.25"), 3, 3, 0)
    assert fill.trade_date == dt.date(2024, 3, 11)
    assert fill.multi_leg_reporting_type is MultiLegReportingType.SINGLE_SECURITY
    assert not fill.is_spread_leg and not fill.is_spread_summary
    assert (fill.contra_trader, fill.contra_broker, fill.aggressor) == ("TRADE", "CME000A", True)
    assert (fill.secondary_exec_id, fill.md_trade_entry_id) == ("710003451", "112233")
    # nanosecond TransactTime: exact integer, datetime truncated to microseconds
    assert fill.transact_time_ns == 1710167401248123456
    assert fill.transact_time == dt.datetime(2024, 3, 11, 14, 30, 1, 248123, tzinfo=UTC)
    d = fill.delivery
    assert (d.poss_dup, d.poss_resend, d.seq_num, d.segment, d.target) == (True, False, 1202, "G", "ABCDEFN")
    assert d.orig_sending_time == dt.datetime(2024, 3, 11, 14, 30, 1, 250000, tzinfo=UTC)


def test_partial_fill_and_spreads() -> None:
    partial = one(fixture("fill_partial").outer)
    assert isinstance(partial, Fill) and partial.is_partial and partial.leaves_qty == 6
    summary = one(fixture("fill_spread_summary").outer)
    leg = one(fixture("fill_spread_leg").outer)
    assert isinstance(summary, Fill) and summary.is_spread_summary and not summary.is_spread_leg
    assert summary.total_num_securities == 2 and summary.last_px == Decimal("-0.25")
    assert isinstance(leg, Fill) and leg.is_spread_leg and not leg.is_spread_summary
    assert leg.secondary_exec_id == summary.secondary_exec_id == "710003460"
    assert leg.md_trade_entry_id is None and leg.aggressor is None


def test_brokertec_fill_group_and_extra_tags() -> None:
    fill = one(fixture("fill_brokertec").outer)
    assert isinstance(fill, Fill)
    assert fill.source.sender_comp_id == "EIVACPUSP" and fill.delivery.segment == "98"
    first, second = fill.order_events
    assert (first.exec_id, first.px, first.qty, first.text) == (
        "9848:28271:1",
        Decimal("99.8515625"),
        6000000,
        "leg one",
    )
    assert first.raw == (
        (1797, "9848:28271:1"),
        (1796, "4"),
        (1799, "99.8515625"),
        (1800, "6000000"),
        (1802, "leg one"),
    )
    assert (second.exec_id, second.px, second.qty, second.text) == (
        "9848:28271:2",
        Decimal("99.85"),
        4000000,
        None,
    )
    assert (fill.clearing_trade_price_type, fill.avg_px_indicator, fill.memo, fill.tag_5906) == (
        0,
        0,
        "memo text",
        "X1",
    )
    assert fill.time_in_force is TimeInForce.FAK and fill.side is Side.SELL
    assert fill.warnings == ()


def test_bust_and_correction() -> None:
    bust = one(fixture("trade_bust").outer)
    assert isinstance(bust, TradeBust)
    assert (bust.exec_ref_id, bust.exec_trans_type, bust.last_qty) == ("01:990002", ExecTransType.CANCEL, 3)
    corr = one(fixture("trade_correction").outer)
    assert isinstance(corr, TradeCorrection)
    assert (corr.last_px, corr.exec_trans_type, corr.leaves_qty) == (
        Decimal("4501.50"),
        ExecTransType.CORRECT,
        None,
    )


def test_mass_action_report() -> None:
    report = one(fixture("mass_action_report").outer)
    assert isinstance(report, OrderMassActionReport)
    assert report.mass_action_report_id == "99612:325081"
    assert (report.mass_action_type, report.mass_action_scope, report.mass_action_response) == (
        MassActionType.CANCEL,
        MassActionScope.MARKET_SEGMENT,
        MassActionResponse.ACCEPTED,
    )
    assert (report.market_segment_id, report.total_affected_orders, report.last_fragment) == ("99", 2, True)
    assert [
        (a.orig_cl_ord_id, a.cxl_qty, a.affected_order_id, a.security_desc) for a in report.affected_orders
    ] == [
        ("ORD-0010", 5, "7012345690", "ESM4"),
        ("ORD-0011", 1, "7012345691", "NQM4"),
    ]
    assert report.request_time_ns == 1710169799999617697
    none = one(fixture("mass_action_report_none").outer)
    assert isinstance(none, OrderMassActionReport)
    assert none.total_affected_orders == 0 and none.affected_orders == ()


def test_cancel_reject_business_reject_unknown() -> None:
    reject = one(fixture("order_cancel_reject").outer)
    assert isinstance(reject, OrderCancelReject)
    assert (reject.cxl_rej_response_to, reject.cxl_rej_reason, reject.ord_status) == (
        CxlRejResponseTo.CANCEL,
        0,
        OrdStatus.FILLED,
    )
    bmr = one(fixture("business_message_reject").outer)
    assert isinstance(bmr, BusinessMessageReject)
    assert (bmr.ref_seq_num, bmr.ref_msg_type, bmr.business_reject_reason, bmr.text) == (
        4999,
        "i",
        3,
        "Unsupported message type",
    )
    unknown = one(fixture("unknown_inner").outer)
    assert isinstance(unknown, UnknownMessage)
    assert (
        unknown.msg_type == "b" and (9772, "1") in unknown.raw and unknown.source.sender_comp_id == "ABC123N"
    )


# ------------------------------------------------------------------------------------------------ variants


@pytest.mark.parametrize(
    ("status", "trans", "cls"),
    [
        ("0", "0", OrderAck),
        ("1", "0", Fill),
        ("2", "0", Fill),
        ("4", "0", CancelAck),
        ("H", "1", TradeBust),
        ("G", "2", TradeCorrection),
    ],
)
def test_discriminator(status: str, trans: str, cls: type[ExecutionReport]) -> None:
    body = (
        ACK_BODY.replace("|20=0|", f"|20={trans}|")
        .replace("|39=0|", f"|39={status}|")
        .replace("|150=0", f"|150={status}")
    )
    if cls is Fill:  # what every fill carries besides an ack's fields
        body += "|31=4501.25|32=5|60=20240311-14:30:00.000"
    event = one(wrapped(f"{INNER_HEAD}|{body}"))
    assert type(event) is cls and event.warnings == ()


def test_39_and_20_that_fit_no_variant_give_the_base_class_with_a_warning() -> None:
    body = ACK_BODY.replace("|20=0|", "|20=1|").replace("|39=0|", "|39=2|").replace("|150=0", "|150=2")
    event = one(wrapped(f"{INNER_HEAD}|{body}"))
    assert type(event) is ExecutionReport
    assert event.warnings == ("39 OrdStatus '2' with 20 ExecTransType '1' matches no variant",)


def test_150_mismatch_is_a_warning_not_an_error() -> None:
    event = one(wrapped(f"{INNER_HEAD}|{ACK_BODY.replace('|150=0', '|150=2')}"))
    assert isinstance(event, OrderAck)
    assert event.warnings == ("150 ExecType '2' does not match 39 OrdStatus '0'",)


def test_absent_20_classifies_by_39_with_a_warning() -> None:
    event = one(wrapped(f"{INNER_HEAD}|{ACK_BODY.replace('|20=0|', '|')}"))
    assert isinstance(event, OrderAck) and event.exec_trans_type is None
    assert event.warnings == ("20 ExecTransType absent; classified by 39 OrdStatus '0' alone",)


def test_unknown_enum_values_are_kept() -> None:
    body = ACK_BODY.replace("|54=1|", "|54=7|").replace("|40=2|", "|40=Q|")
    event = one(wrapped(f"{INNER_HEAD}|{body}"))
    assert isinstance(event, OrderAck)
    assert isinstance(event.side, Side) and not event.side.is_known and event.side.name == "UNKNOWN"
    assert event.side.value == "7" and event.side == "7"
    assert event.ord_type is not None and event.ord_type.value == "Q" and not event.ord_type.is_known
    assert encode_report(event) == event.inner  # the raw value survives re-encoding


def test_unknown_39_gives_base_class() -> None:
    event = one(wrapped(f"{INNER_HEAD}|{ACK_BODY.replace('|39=0|', '|39=Z|').replace('|150=0', '')}"))
    assert type(event) is ExecutionReport
    assert not event.ord_status.is_known and event.ord_status.value == "Z"
    assert event.warnings == ("39 OrdStatus 'Z' is none of the drop copy variants",)


def test_repeated_tag_keeps_the_first_value_and_warns() -> None:
    event = one(wrapped(f"{INNER_HEAD}|{ACK_BODY}|1=OTHER"))
    assert isinstance(event, OrderAck) and event.account == "ACCT01"
    assert event.warnings == ("1 Account repeated; the first value is used",)
    assert event.raw[-2] == (1, "OTHER")


def test_group_count_mismatch_is_a_warning() -> None:
    event = one(
        wrapped(
            f"{INNER_HEAD}|{ACK_BODY.replace('|39=0|', '|39=2|').replace('|150=0', '|150=2')}"
            "|31=4501.25|32=5|60=20240311-14:30:00.000|1795=3|1797=a|1797=b"
        )
    )
    assert isinstance(event, Fill) and [e.exec_id for e in event.order_events] == ["a", "b"]
    assert event.warnings == ("1795 NoOrderEvents says 3 entries, found 2",)


def test_value_containing_equals_sign_is_exact() -> None:
    event = one(wrapped(f"{INNER_HEAD}|{ACK_BODY}|58=limit=4500 a=b"))
    assert isinstance(event, OrderAck) and event.text == "limit=4500 a=b"


def test_tag_with_leading_zero_is_read_as_parse_fields_reads_it() -> None:
    event = one(wrapped(f"{INNER_HEAD}|{ACK_BODY.replace('|17=', '|017=')}"))
    assert isinstance(event, OrderAck) and event.exec_id == "64201:1"


# ------------------------------------------------------------------------------------------------ envelope


def test_session_defaults_to_target_and_segment_and_can_be_named() -> None:
    raw = wrapped(f"{INNER_HEAD}|{ACK_BODY}")
    assert one(raw).delivery.session == "ABCDEFN:G"
    named = one(raw, group="gold", session="ABCDEFN:G:primary")
    assert (named.delivery.group, named.delivery.session) == ("gold", "ABCDEFN:G:primary")


def test_received_at_defaults_to_now() -> None:
    before = dt.datetime.now(UTC)
    (event,) = decode(wrapped(f"{INNER_HEAD}|{ACK_BODY}"))
    assert isinstance(event, OrderAck)
    assert before <= event.delivery.received_at <= dt.datetime.now(UTC)


def test_str_input_is_accepted() -> None:
    raw = wrapped(f"{INNER_HEAD}|{ACK_BODY}")
    assert one(raw.decode("ascii")) == one(raw)


def test_poss_resend_flag() -> None:
    outer = [*OUTER[:1], (97, "Y"), *OUTER[1:]]
    event = one(wrapped(f"{INNER_HEAD}|{ACK_BODY}", outer))
    assert event.delivery.poss_resend is True and event.delivery.poss_dup is False


@pytest.mark.parametrize("msg_type", ["0", "1", "2", "3", "4", "5", "A"])
def test_admin_messages_give_no_events(msg_type: str) -> None:
    from dropcopy_client._wire import encode

    fields = [*OUTER, (1402, "c2VjcmV0")] if msg_type == "A" else OUTER
    assert decode(encode(msg_type, fields)) == []


def test_unwrapped_business_message_is_decoded_directly() -> None:
    raw = encode_inner(fields_of(f"35=8|34=99|52=20240311-14:30:00.000|49=CME|50=G|56=ABCDEFN|{ACK_BODY}"))
    event = one(raw)
    assert isinstance(event, OrderAck) and event.inner == raw
    assert event.delivery.seq_num == 99 and event.source.sender_comp_id == "ABCDEFN"


def test_unknown_outer_application_message() -> None:
    from dropcopy_client._wire import encode

    event = one(encode("D", [*OUTER, (11, "X")]))
    assert isinstance(event, UnknownMessage) and event.msg_type == "D" and (11, "X") in event.raw


# ------------------------------------------------------------------------------------------------ errors


def _refixed_outer(inner: bytes) -> bytes:
    """An outer message whose own framing (212, 9, 10) is right around whatever ``inner`` is."""
    return encode_outer(OUTER, wrap(inner))


GOOD_INNER = encode_inner(fields_of(f"{INNER_HEAD}|{ACK_BODY}"))


def test_missing_closing_rtrf() -> None:
    err = error(encode_outer(OUTER, b"<RTRF>" + GOOD_INNER))
    assert err.reason == "213 XMLData does not end with </RTRF> (truncated?)"
    assert err.delivery is not None and err.delivery.seq_num == 7  # the outer frame verified


def test_212_not_matching_213() -> None:
    err = error(encode_outer(OUTER, wrap(GOOD_INNER), xml_len=len(wrap(GOOD_INNER)) - 3))
    assert (
        "213 is not" in err.reason
        and "length field 212" in err.reason
        and err.reason.startswith("outer message")
    )
    assert err.delivery is None


def test_inner_checksum() -> None:
    bad = GOOD_INNER[:-4] + b"%03d\x01" % ((int(GOOD_INNER[-4:-1]) + 1) % 256)
    err = error(_refixed_outer(bad))
    assert err.reason.startswith("inner message: CheckSum (10) says")
    assert err.inner == bad and err.delivery is not None


def test_inner_body_length() -> None:
    bad = GOOD_INNER.replace(b"\x019=", b"\x019=1", 1)
    err = error(_refixed_outer(bad))
    assert err.reason.startswith("inner message: BodyLength (9) says")


def test_begin_string_must_be_fix42() -> None:
    err = error(_refixed_outer(refix(GOOD_INNER.replace(b"8=FIX.4.2", b"8=FIX.4.4", 1))))
    assert err.reason == "inner message: BeginString (8) is b'FIX.4.4', not FIX.4.2"
    outer = wrapped(f"{INNER_HEAD}|{ACK_BODY}")
    err = error(refix(outer.replace(b"8=FIX.4.2", b"8=FIXT.1.1", 1)))
    assert err.reason == "outer message: BeginString (8) is b'FIXT.1.1', not FIX.4.2"


def test_truncated_outer() -> None:
    raw = wrapped(f"{INNER_HEAD}|{ACK_BODY}")
    for cut in (1, 7, 30, len(raw) // 2):
        err = error(raw[:-cut])
        assert err.reason.startswith("outer message:") and err.delivery is None


@pytest.mark.parametrize(
    ("tag", "name"),
    [("17", "ExecID"), ("39", "OrdStatus")],
)
def test_missing_required_field(tag: str, name: str) -> None:
    body = "|".join(f for f in ACK_BODY.split("|") if not f.startswith(f"{tag}="))
    err = error(wrapped(f"{INNER_HEAD}|{body}"))
    assert err.reason == f"ExecutionReport (35=8) has no {tag} {name}"


def test_missing_source_session() -> None:
    err = error(wrapped(f"{INNER_HEAD.replace('|56=ABC123N', '')}|{ACK_BODY}"))
    assert err.reason == "inner message header has no 56 TargetCompID"


def test_mass_action_report_without_id() -> None:
    err = error(wrapped(f"{INNER_HEAD.replace('35=8', '35=BZ')}|11=X|533=0"))
    assert err.reason == "OrderMassActionReport (35=BZ) has no 1369 MassActionReportID"


def test_non_ascii_inner() -> None:
    bad = refix(GOOD_INNER.replace(b"ACCT01", b"ACCT\xc301"))
    err = error(_refixed_outer(bad))
    offset = bad.index(b"\xc3")
    assert err.reason == f"inner message has a non-ASCII byte 0xc3 at offset {offset}"


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("38=1x", "38 OrderQty has a bad value '1x': expected an integer"),
        ("38= 5", "38 OrderQty has a bad value ' 5': expected an integer"),
        ("38=5_0", "38 OrderQty has a bad value '5_0': expected an integer"),
        ("44=1.2.3", "44 Price has a bad value '1.2.3': expected a decimal number"),
        ("44=NaN", "44 Price has a bad value 'NaN': expected a decimal number"),
        ("44=1e5", "44 Price has a bad value '1e5': expected a decimal number"),
        (
            "60=20240311-25:00:00.000",
            "60 TransactTime has a bad value '20240311-25:00:00.000': expected a UTCTimestamp",
        ),
        (
            "60=2024031114:30:00",
            "60 TransactTime has a bad value '2024031114:30:00': expected a UTCTimestamp",
        ),
        (
            "60=20240311-14:30:00.",
            "60 TransactTime has a bad value '20240311-14:30:00.': expected a UTCTimestamp",
        ),
        ("432=20241340", "432 ExpireDate has a bad value '20241340': expected a LocalMktDate"),
        ("1028=X", "1028 ManualOrderIndicator has a bad value 'X': expected Y or N"),
        ("54=", "54 Side has a bad value ''"),
    ],
)
def test_bad_values_name_tag_and_value(field: str, reason: str) -> None:
    tag = field.split("=")[0]
    body = "|".join(f for f in ACK_BODY.split("|") if not f.startswith(f"{tag}="))
    err = error(wrapped(f"{INNER_HEAD}|{body}|{field}"))
    assert err.reason.startswith(f"ExecutionReport (35=8): {reason}"), err.reason


def test_bad_outer_header_value() -> None:
    outer = [(34, "7x"), *OUTER[1:]]
    err = error(wrapped(f"{INNER_HEAD}|{ACK_BODY}", outer))
    assert err.reason.startswith("outer message: 34 MsgSeqNum has a bad value '7x'")
    assert err.delivery is None


def test_bad_source_header_value() -> None:
    err = error(wrapped(f"{INNER_HEAD.replace('52=20240311-14:30:00.000', '52=yesterday')}|{ACK_BODY}"))
    assert err.reason.startswith("inner message header: 52 SendingTime has a bad value 'yesterday'")


def test_35n_without_213() -> None:
    from dropcopy_client._wire import encode

    err = error(encode("n", OUTER))
    assert err.reason == "35=n has no 213 XMLData" and err.delivery is not None


def test_bad_group_count() -> None:
    err = error(wrapped(f"{INNER_HEAD}|{ACK_BODY}|1795=two|1797=a"))
    assert (
        err.reason == "ExecutionReport (35=8): 1795 NoOrderEvents has a bad value 'two': expected an integer"
    )


def test_message_error_raw_is_redacted() -> None:
    from dropcopy_client._wire import encode

    raw = encode("n", [*OUTER, (1402, "topsecretsignature")])[:-2]  # truncated: undecodable
    err = error(raw)
    assert b"topsecretsignature" not in err.raw and b"1402=***" in err.raw


def test_decode_strict_raises_decode_error_with_redacted_raw() -> None:
    from dropcopy_client._wire import encode

    raw = encode("n", [*OUTER, (1402, "topsecretsignature")])[:-2]
    with pytest.raises(DecodeError) as info:
        decode_strict(raw)
    assert isinstance(info.value, ValueError)
    assert info.value.reason.startswith("outer message:")
    assert b"topsecretsignature" not in info.value.raw


def test_decode_strict_returns_events() -> None:
    events = decode_strict(fixture("fill_outright").outer, received_at=RECEIVED)
    assert [type(e) for e in events] == [Fill]


def test_decoder_bug_becomes_an_event_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(decoding, "_payload", boom)
    # the pure-Python decoder's safety net (the compiled one's: test_decode_implementations.py)
    (err,) = decoding.python_decode(fixture("fill_outright").outer)
    assert isinstance(err, MessageError) and err.reason == "internal decoder error: RuntimeError: kaput"


# ------------------------------------------------------------------------------------------------ model


def test_events_are_frozen_hashable_and_picklable() -> None:
    fill = one(fixture("fill_brokertec").outer)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fill.account = "X"
    assert hash(fill) == hash(one(fixture("fill_brokertec").outer))
    clone = pickle.loads(pickle.dumps(fill))
    assert clone == fill and clone.raw == fill.raw


def test_decoded_events_equal_events_built_by_init() -> None:
    event = one(fixture("fill_outright").outer)
    rebuilt = attrs.evolve(event)  # goes through __init__ with every field, raw included
    assert rebuilt == event and type(rebuilt) is type(event)


def test_repr_shows_only_set_fields() -> None:
    text = repr(one(fixture("fill_spread_leg").outer))
    assert text.startswith("Fill(delivery=Delivery(") and "last_px=Decimal('4501.00')" in text
    assert "md_trade_entry_id" not in text and "raw=" not in text


def test_encode_report_reproduces_the_typed_fields() -> None:
    for fx in all_fixtures():
        event = one(fx.outer)
        if isinstance(event, UnknownMessage):
            assert encode_report(event) == event.inner
            continue
        again = one(
            wrap_outer(encode_report(event), seq_num=1, target="T", segment="G", sending_time=RECEIVED)
        )
        assert type(again) is type(event)
        for a in attrs.fields(type(event)):
            if a.name in ("delivery", "raw", "inner"):
                continue
            value, expected = getattr(again, a.name), getattr(event, a.name)
            if a.metadata.get("fix_name", "").startswith(
                "No"
            ):  # group entries: typed fields, raw may reorder
                value, expected = [_typed(e) for e in value], [_typed(e) for e in expected]
            assert value == expected, (fx.name, a.name)


def _typed(entry: Any) -> dict[str, object]:
    return {k: v for k, v in attrs.asdict(entry, recurse=False).items() if k != "raw"}


def test_wrap_outer_header() -> None:
    raw = wrap_outer(
        GOOD_INNER,
        seq_num=42,
        target="ABCDEFN",
        segment="84",
        sending_time=dt.datetime(2024, 3, 11, 14, 30, 0, 5000, tzinfo=UTC),
        operator="SID1",
        location="US,IL",
        poss_dup=True,
        poss_resend=True,
        orig_sending_time=dt.datetime(2024, 3, 11, 14, 0, tzinfo=UTC),
    )
    tags = [(t, v) for t, v in parse_fields(raw) if t not in (9, 10, 213)]
    assert tags == [
        (8, b"FIX.4.2"),
        (35, b"n"),
        (34, b"42"),
        (43, b"Y"),
        (97, b"Y"),
        (52, b"20240311-14:30:00.005"),
        (122, b"20240311-14:00:00.000"),
        (49, b"CME"),
        (50, b"84"),
        (56, b"ABCDEFN"),
        (57, b"SID1"),
        (143, b"US,IL"),
        (212, str(len(wrap(GOOD_INNER))).encode()),
    ]
    event = one(raw)
    assert event.delivery.orig_sending_time == dt.datetime(2024, 3, 11, 14, 0, tzinfo=UTC)


def test_encode_rejects_naive_datetimes_and_error_events() -> None:
    event = one(fixture("fill_outright").outer)
    naive = attrs.evolve(event, source=attrs.evolve(event.source, sending_time=dt.datetime(2024, 1, 1)))
    with pytest.raises(ValueError, match="naive datetime"):
        encode_report(naive)
    with pytest.raises(TypeError):
        encode_report(MessageError(reason="x", raw=b""))  # type: ignore[arg-type]


def test_pipes_helper_matches_decode_of_str_form() -> None:
    raw = fixture("qfn_order_ack").outer
    assert pipes(raw.decode("ascii").replace("\x01", "|")) == raw
