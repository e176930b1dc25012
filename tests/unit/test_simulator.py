"""Sans-IO parts of dropcopy_client.testing: scripted builders, logon validation, resend planning, clocks."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

import dropcopy_client.testing as testing
from dropcopy_client import Fill, PendingCancel, PendingReplace, decode_strict
from dropcopy_client._wire import FrameReader, encode, first, parse_fields, parse_frame
from dropcopy_client.testing import (
    BUY,
    DEMO_NET_POSITIONS,
    ESH7,
    ESZ6,
    ESZ6_ESH7,
    SELL,
    ZNH7,
    InnerHeader,
    ManualClock,
    Order,
    OrderEventEntry,
    ScriptedSession,
    SimKey,
    SimSession,
    Simulator,
    Texts,
    demo_script,
    exec_ref_id,
    format_ts,
    parse_ts,
    trade_bust,
    validate_logon,
)
from dropcopy_client.testing._state import ClientInfo, SessionState

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
EXEC_ID = re.compile(r"^\d+:\d+$")


def fields_of(raw: bytes) -> dict[int, str]:
    """Parsed (framing verified) message as tag -> first value."""
    out: dict[int, str] = {}
    for tag, value in parse_frame(raw):
        out.setdefault(tag, value.decode())
    return out


def source() -> ScriptedSession:
    return ScriptedSession(operator="TRADER1", clock=ManualClock(T0, step=timedelta(milliseconds=5)))


# -- builders ------------------------------------------------------------------------------------------------


def test_order_lifecycle_messages() -> None:
    src = source()
    order = src.order(ESZ6, account="acct1", side=BUY, qty=10, price="4500.25")
    ack, part, full = order.ack(), order.fill(4), order.fill(6, "4500.00")
    a, p, f = fields_of(ack), fields_of(part), fields_of(full)
    assert (a[35], a[39], a[20], a[150], a[14], a[151]) == ("8", "0", "0", "0", "0", "10")
    assert (a[49], a[50], a[56], a[57], a[143]) == ("CME", "G", "M2L000N", "TRADER1", "US,IL")
    assert (a[1], a[55], a[107], a[48], a[167]) == ("ACCT1", "ES", "ESZ6", "294973", "FUT")
    assert (p[39], p[150], p[31], p[32], p[14], p[151], p[442], p[1057]) == (
        "1",
        "1",
        "4500.25",
        "4",
        "4",
        "6",
        "1",
        "Y",
    )
    assert (f[39], f[150], f[31], f[32], f[14], f[151]) == ("2", "2", "4500.00", "6", "10", "0")
    for msg in (p, f):
        assert EXEC_ID.match(msg[17]) and msg[75] == "20261120" and msg[527] and msg[37711]
        assert int(msg[5979]) % 1_000_000 == 0
    assert len({a[17], p[17], f[17]}) == 3 and p[37711] != f[37711]
    assert [int(x[34]) for x in (a, p, f)] == [1, 2, 3]
    assert a[52] == format_ts(T0) and a[60] == a[52]
    tags = [tag for tag, _ in parse_frame(full)]
    body = tags[tags.index(143) + 1 : -1]
    assert body == sorted(body)  # CME examples list payload tags in ascending order


def test_modify_cancel_elimination_reject() -> None:
    src = source()
    order = src.order(ZNH7, account="ACCT2", side=SELL, qty=8, price="110.125")
    order.ack()
    first_id = order.order.cl_ord_id
    order.fill(2)
    modify = fields_of(order.modify(price="110.140625"))
    assert (modify[39], modify[150], modify[41], modify[44], modify[9717]) == (
        "5",
        "5",
        first_id,
        "110.140625",
        first_id,
    )
    assert modify[11] != first_id
    cancel = fields_of(order.cancel())
    assert (cancel[39], cancel[150], cancel[14], cancel[151], cancel[41]) == ("4", "4", "0", "0", modify[11])
    other = src.order(ZNH7, qty=4, time_in_force="3")
    elim = fields_of(other.eliminate())
    assert (elim[39], elim[150], elim[151], elim[59]) == ("C", "C", "0", "3")
    rej = fields_of(src.order(ESZ6).reject("Price out of band"))
    assert (rej[39], rej[150], rej[58]) == ("8", "8", "Price out of band")
    with pytest.raises(ValueError, match="cannot fill"):
        order.fill(1)


def test_ebs_pending_acks_and_the_brokertec_fill_group_decode() -> None:
    src = source()
    order = src.order(ZNH7, account="ACCT3", side=BUY, qty=5, price="110.5")
    order.ack()
    pending = decode_strict(outer(order.pending_replace(), 7))
    assert isinstance(pending[0], PendingReplace) and pending[0].price == Decimal("110.5")
    cancel = decode_strict(outer(order.pending_cancel(), 8))
    assert isinstance(cancel[0], PendingCancel) and cancel[0].ord_status.value == "6"
    entries = [OrderEventEntry("77:1", "110.5", 3, "first"), OrderEventEntry("77:2", "110.515625", 2)]
    raw = order.fill(5, order_events=entries)
    tags = [tag for tag, _ in parse_frame(raw)]
    start = tags.index(1795)
    assert tags[start : start + 9] == [1795, 1797, 1799, 1800, 1802, 1797, 1799, 1800, tags[start + 8]]
    assert tags[start + 8] > 1795  # the group sits in its tag-order place, the rest of the body around it
    (fill_event,) = decode_strict(outer(raw, 9))
    assert isinstance(fill_event, Fill)
    got = [(e.exec_id, e.px, e.qty, e.text) for e in fill_event.order_events]
    assert got == [("77:1", Decimal("110.5"), 3, "first"), ("77:2", Decimal("110.515625"), 2, None)]


def outer(inner: bytes, seq: int) -> bytes:
    """``inner`` as the simulator frames it on the wire (35=n, CME header)."""
    state = SessionState(SimSession("ABCDEFN"))
    state.next_out = seq
    item = state.record("n", state.business_body(inner), T0, business=True)
    return state.frame(item, ClientInfo("ABCDEFN", "OPS1", "US,IL"))


def test_bust_refers_to_the_last_nine_characters_of_the_fill() -> None:
    src = source()
    order = src.order(ESZ6, qty=3, price="4501")
    order.ack()
    fill = fields_of(order.fill())
    bust = fields_of(order.bust())
    assert (bust[39], bust[20], bust[150]) == ("H", "1", "H")
    assert bust[19] == fill[17][-9:] == exec_ref_id(fill[17])
    assert len(bust[19]) == 9
    assert bust[17] != fill[17]
    assert (bust[31], bust[32], bust[37711], bust[527]) == (fill[31], fill[32], fill[37711], fill[527])
    raw = trade_bust(
        InnerHeader(seq=9, sending_time=T0),
        Order(cl_ord_id="X"),
        original_exec_id="123456789012:345",
        last_qty=1,
        last_px="1.5",
        exec_id="1:2",
        transact_time=T0,
        trade_id=7,
        secondary_exec_id="77",
    )
    assert fields_of(raw)[19] == "89012:345"


def test_trade_correction() -> None:
    src = source()
    order = src.order(ESZ6, qty=2, price="4500")
    order.ack()
    fill = fields_of(order.fill())
    corr = fields_of(order.correct("4499.75"))
    assert (corr[39], corr[20], corr[150], corr[14]) == ("G", "2", "G", "0")
    assert corr[19] == fill[17][-9:] and corr[17] != fill[17]
    assert (corr[31], corr[32]) == ("4499.75", fill[32])
    assert 151 not in corr


def test_spread_summary_and_legs() -> None:
    src = source()
    spread = src.spread_order(
        ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="ACCT2", qty=2, price="15.5"
    )
    spread.ack()
    summary, front, back = (fields_of(m) for m in spread.fill(2, "15.5", ["4500.50", "4485"]))
    assert (summary[442], summary[393], summary[107]) == ("3", "2", "ESZ6-ESH7")
    assert (front[442], front[107], front[54], front[32]) == ("2", "ESZ6", "1", "2")
    assert (back[442], back[107], back[54], back[31]) == ("2", "ESH7", "2", "4485")
    assert summary[527] == front[527] == back[527]
    for leg in (front, back):
        assert 37711 not in leg and 1057 not in leg and 393 not in leg
    busts = [fields_of(m) for m in spread.bust()]
    assert [b[39] for b in busts] == ["H"] * 3 and {b[527] for b in busts} == {summary[527]}


def test_order_mass_action_report() -> None:
    src = source()
    a, b = src.order(ZNH7, qty=5), src.order(ESZ6, qty=1)
    a.ack()
    b.ack()
    raw = src.mass_action([a, b], market_segment_id="64")
    msg = fields_of(raw)
    assert (msg[35], msg[533], msg[534], msg[893], msg[1300], msg[1375]) == ("BZ", "2", "2", "Y", "64", "1")
    pairs = parse_frame(raw)
    group = [(t, v.decode()) for t, v in pairs if t in (41, 84, 107, 535)]
    assert group == [
        (41, a.order.cl_ord_id),
        (84, "5"),
        (107, "ZNH7"),
        (535, a.order.order_id),
        (41, b.order.cl_ord_id),
        (84, "1"),
        (107, "ESZ6"),
        (535, b.order.order_id),
    ]
    assert a.order.leaves_qty == 0
    empty = fields_of(src.mass_action([]))
    assert empty[533] == "0" and 534 not in empty


def net_positions(messages: list[bytes]) -> dict[tuple[str, str], int]:
    """Outright and leg fills minus busts, spread summaries excluded (spec §4.4)."""
    net: Counter[tuple[str, str]] = Counter()
    for raw in messages:
        f = fields_of(raw)
        if f[35] != "8" or f.get(442) == "3" or f[39] not in ("1", "2", "H"):
            continue
        qty = int(f[32]) * (1 if f[54] == "1" else -1)
        net[(f[1], f[107])] += -qty if f[39] == "H" else qty
    return {k: v for k, v in net.items() if v}


def test_demo_script() -> None:
    msgs = demo_script(T0)
    assert msgs == demo_script(T0)  # deterministic for a given start
    parsed = [fields_of(m) for m in msgs]
    assert net_positions(msgs) == DEMO_NET_POSITIONS
    assert {p.get(1) for p in parsed} >= {"ACCT1", "ACCT2"}
    assert Counter(p.get(39) for p in parsed) >= Counter({"0": 7, "1": 2, "2": 5, "H": 1})
    exec_ids = [p[17] for p in parsed if 17 in p]
    assert len(exec_ids) == len(set(exec_ids))
    assert [int(p[34]) for p in parsed] == list(range(1, len(msgs) + 1))
    assert parsed[-1][35] == "BZ"


# -- logon validation ----------------------------------------------------------------------------------------

VECTOR_KEY = {
    "oNDxM33uE81ohWuVRtWT": SimKey(
        "oNDxM33uE81ohWuVRtWT", "2HlZ7exg8jTKltXnURjKvm3GS5iF5n4ClzHiEm_ocv4", None, None
    )
}
# spec §1.5, the illustrative complete Logon for vector 1
VECTOR_LOGON = (
    b"8=FIX.4.2|9=231|35=A|34=1|49=B08004N|50=MSG|52=20170623-14:48:42.855|56=CME|57=92|142=US,NY|369=0|"
    b"108=60|141=N|1603=BRIO|1604=8.0|1605=ABC|354=20|355=oNDxM33uE81ohWuVRtWT|1400=CME-1-SHA-256|1401=43|"
    b"1402=oHZ2Dx1ihFAp7kHOFcJPkijm27xfApJFp-ZhsSCxr3s|10=105|"
).replace(b"|", b"\x01")
VECTOR_NOW = datetime(2017, 6, 23, 14, 48, 50, tzinfo=UTC)


def test_validate_logon_accepts_the_spec_vector() -> None:
    check = validate_logon(VECTOR_LOGON, keys=VECTOR_KEY, now=VECTOR_NOW, expected_segment="92")
    assert check.text == "" and check.request is not None
    req = check.request
    assert (req.seq, req.sender_comp_id, req.sender_sub_id, req.target_sub_id) == (1, "B08004N", "MSG", "92")
    assert (req.heartbeat, req.reset, req.location, req.last_processed) == (60, False, "US,NY", 0)
    assert req.echo == ((1603, b"BRIO"), (1604, b"8.0"), (1605, b"ABC"))


def test_validate_logon_rejections() -> None:
    later = VECTOR_NOW + timedelta(minutes=5)
    assert validate_logon(
        VECTOR_LOGON, keys=VECTOR_KEY, now=later
    ).text == Texts.SENDING_TIME_TOLERANCE.format(value="20170623-14:48:42.855")
    assert validate_logon(VECTOR_LOGON, keys={}, now=VECTOR_NOW).text == Texts.INVALID_LOGON
    bound = {k: SimKey(k, "2HlZ7exg8jTKltXnURjKvm3GS5iF5n4ClzHiEm_ocv4", "XYZ", None) for k in VECTOR_KEY}
    check = validate_logon(VECTOR_LOGON, keys=bound, now=VECTOR_NOW)
    assert check.text == Texts.INVALID_LOGON and "belongs to session XYZ" in check.detail
    expired = {
        k: SimKey(k, "2HlZ7exg8jTKltXnURjKvm3GS5iF5n4ClzHiEm_ocv4", "B08", date(2017, 6, 22))
        for k in VECTOR_KEY
    }
    assert "expired" in validate_logon(VECTOR_LOGON, keys=expired, now=VECTOR_NOW).detail
    wrong_seg = validate_logon(VECTOR_LOGON, keys=VECTOR_KEY, now=VECTOR_NOW, expected_segment="G")
    assert wrong_seg.text == Texts.BAD_TARGET_SUB.format(value="92", expected="G")
    assert wrong_seg.sender_comp_id == "B08004N" and wrong_seg.target_sub_id == "92"
    bad_checksum = VECTOR_LOGON.replace(b"10=105", b"10=099")
    assert validate_logon(bad_checksum, keys=VECTOR_KEY, now=VECTOR_NOW).text.startswith(
        "Invalid FIX message. CheckSum"
    )
    no_checksum = VECTOR_LOGON[: VECTOR_LOGON.rindex(b"10=")]
    assert validate_logon(no_checksum, keys=VECTOR_KEY, now=VECTOR_NOW).text == Texts.CHECKSUM_MISSING


def test_tampered_logon_fails_the_signature() -> None:
    fields = parse_fields(VECTOR_LOGON.replace(b"108=60", b"108=30"))
    raw = encode("A", [(t, v) for t, v in fields if t not in (8, 9, 35, 10)])
    check = validate_logon(raw, keys=VECTOR_KEY, now=VECTOR_NOW)
    assert check.text == Texts.INVALID_LOGON and "signature mismatch" in check.detail


def test_sim_key_repr_hides_the_secret() -> None:
    key = next(iter(VECTOR_KEY.values()))
    assert "2HlZ" not in repr(key) and "oNDx" in repr(key)


# -- resend planning -----------------------------------------------------------------------------------------


def test_resend_frames_coalesce_admin_and_missing_numbers() -> None:
    state = SessionState(SimSession("ABCDEFN"))
    client = ClientInfo("ABCDEFN", "OPER1", "US,IL")
    state.record("A", [(108, 30)], T0, business=False)  # 1
    state.record("n", state.business_body(b"X"), T0, business=True)  # 2
    state.record("0", [], T0, business=False)  # 3
    state.record("0", [], T0, business=False)  # 4
    state.jump(3)  # 5, 6, 7 never sent
    state.record("n", state.business_body(b"Y"), T0 + timedelta(seconds=1), business=True)  # 8
    state.record("0", [], T0, business=False)  # 9
    data, count = state.resend_frames(1, 9, client, T0 + timedelta(seconds=5))
    frames = split(data)
    assert count == len(frames) == 5
    summary = [(f[35], int(f[34]), f.get(36)) for f in frames]
    assert summary == [("4", 1, "2"), ("n", 2, None), ("4", 3, "8"), ("n", 8, None), ("4", 9, "10")]
    assert all(f[43] == "Y" and 122 in f and f[52] == format_ts(T0 + timedelta(seconds=5)) for f in frames)
    assert frames[3][122] == format_ts(T0 + timedelta(seconds=1))
    data, _ = state.resend_frames(2, 8, client, T0, stale_before=T0 + timedelta(milliseconds=500))
    assert [(f[35], int(f[34]), f.get(36)) for f in split(data)] == [("4", 2, "8"), ("n", 8, None)]
    assert state.has_stale(1, 9, T0 + timedelta(milliseconds=1))
    assert not state.has_stale(8, 8, T0 + timedelta(milliseconds=1))


def split(data: bytes) -> list[dict[int, str]]:
    reader = FrameReader()
    reader.feed(data)
    out = []
    while (raw := reader.next_message()) is not None:
        out.append(fields_of(raw))
    return out


# -- clocks, options, exports --------------------------------------------------------------------------------


def test_timestamps_and_manual_clock() -> None:
    assert format_ts(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == "20260102-03:04:05.678"
    assert parse_ts("20260102-03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_ts("20260102-03:04:05.123456789") == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    for bad in ("2026-01-02 03:04:05", "20261302-03:04:05", "20260102-03:04:05.12"):
        assert parse_ts(bad) is None
    clock = ManualClock(T0, step=timedelta(seconds=1))
    assert (clock(), clock()) == (T0, T0 + timedelta(seconds=1))
    assert clock.advance(10) == T0 + timedelta(seconds=12)
    with pytest.raises(ValueError):
        ManualClock(datetime(2026, 1, 1))


def test_simulator_options_are_validated() -> None:
    with pytest.raises(ValueError, match="oversize_resend"):
        Simulator({}, oversize_resend="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stale_resend"):
        Simulator({}, stale_resend="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="7 alphanumeric"):
        SimSession("ABCDEF")
    with pytest.raises(ValueError, match="segment"):
        SimSession("ABCDEFN", "X1")
    sim = Simulator({"k": "s"}, sessions=[SimSession("ABCDEFN")])
    with pytest.raises(testing.SimulatorError):
        sim.endpoint(SimSession("ABCDEFN"))  # not started
    with pytest.raises(testing.SimulatorError):
        sim.next_outbound_seq(SimSession("XYZABCN"))


def test_all_is_sorted_and_complete() -> None:
    assert len(testing.__all__) == len(set(testing.__all__))  # order: ruff RUF022
    public = {name for name in dir(testing) if not name.startswith("_")}
    assert set(testing.__all__) == public - {"annotations"}


def test_decimal_prices_keep_their_text() -> None:
    order = Order(price=Decimal("110.140625"))
    assert first(parse_frame(ScriptedSession(clock=ManualClock(T0)).order(price=order.price).ack()), 44) == (
        b"110.140625"
    )
