"""The CME-like simulator against a raw-socket FIX client on loopback (no QuickFIX): spec §7 checklist."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dropcopy_client._wire import encode, parse_frame, unwrap
from dropcopy_client.auth import generate_key, write_key_file
from dropcopy_client.testing import (
    ESZ6,
    ManualClock,
    ScriptedSession,
    SimSession,
    Simulator,
    SimulatorError,
    Texts,
    format_ts,
)
from tests.simclient import KEY_ID, SECRET, Msg, SimClient

pytestmark = pytest.mark.timeout(30)

SESSION = SimSession("ABCDEFN")
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def make_sim(clock: ManualClock, **kwargs: Any) -> Simulator:
    kwargs.setdefault("sessions", [SESSION])
    return Simulator({KEY_ID: SECRET}, clock=clock, **kwargs)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[Simulator]:
    with make_sim(clock) as simulator:
        yield simulator


def connect(sim: Simulator, clock: ManualClock, role: str = "primary", **kwargs: Any) -> SimClient:
    session = kwargs.pop("session", SESSION)
    return SimClient(sim.endpoint(session, role), clock=clock, **kwargs)  # type: ignore[arg-type]


def logged_on(sim: Simulator, clock: ManualClock, **kwargs: Any) -> tuple[SimClient, Msg]:
    client = connect(sim, clock, **kwargs)
    client.logon()
    ack = client.expect("A")
    return client, ack


def inner(n: int = 1) -> list[bytes]:
    src = ScriptedSession(clock=ManualClock(T0, step=timedelta(milliseconds=1)))
    out: list[bytes] = []
    while len(out) < n:
        order = src.order(ESZ6, account="ACCT1", qty=2, price="4500.25")
        out += [order.ack(), order.fill(1)]
    return out[:n]


def assert_logout_then_closed(client: SimClient, text: str) -> Msg:
    logout = client.expect("5")
    assert logout.get(58) == text
    assert client.expect_closed() == []
    return logout


# -- logon ---------------------------------------------------------------------------------------------------


def test_good_logon_ack_fields_and_received_bytes(sim: Simulator, clock: ManualClock) -> None:
    with connect(sim, clock) as client:
        sent = client.logon(heartbeat=30)
        ack = client.expect("A")
        assert sim.wait_logged_on(SESSION, 2)
    assert ack.get(8) == "FIX.4.2"
    assert ack.tags()[:3] == [8, 9, 35]
    assert (ack.num(34), ack.num(369)) == (1, 1)
    assert ack.get(49) == "CME" and ack.get(50) == "G"
    assert ack.get(56) == "ABCDEFN" and ack.get(57) == "OPER1" and ack.get(143) == "US,IL"
    assert ack.get(52) == format_ts(T0)
    assert ack.get(108) == "30" and ack.get(141) == "N"
    assert (ack.get(1603), ack.get(1604), ack.get(1605)) == ("SIMTEST", "1.0", "ACME")
    for absent in (98, 43, 122, 354, 355, 1400, 1401, 1402):
        assert ack.get(absent) is None
    assert sim.received(SESSION) == [sent]
    assert sim.received(SESSION, "A") == [sent]
    assert sim.expected_inbound_seq(SESSION) == 2 and sim.next_outbound_seq(SESSION) == 2


def test_wrong_secret_gets_logout_then_close(sim: Simulator, clock: ManualClock) -> None:
    with connect(sim, clock, secret="A" * 43) as client:
        client.logon()
        logout = assert_logout_then_closed(client, Texts.INVALID_LOGON)
    assert logout.num(789) == 1
    assert logout.get(56) == "ABCDEFN"
    assert sim.bad_logons(SESSION) == 1 and not sim.is_logged_on(SESSION)
    assert "signature mismatch" in sim.rejections(SESSION)[-1].detail


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        (
            {"sending_time": T0 - timedelta(seconds=31)},
            Texts.SENDING_TIME_TOLERANCE.format(value="20261120-13:59:29.000"),
        ),
        (
            {"sending_time": "2026-11-20 14:00:00"},
            Texts.SENDING_TIME_FORMAT.format(value="2026-11-20 14:00:00"),
        ),
        ({"overrides": {122: "20261120-13:59:59.000"}}, Texts.ORIG_SENDING_TIME_ON_LOGON),
        ({"overrides": {98: "0"}}, Texts.ENCRYPT_METHOD_ON_LOGON),
        ({"overrides": {96: "pw"}}, Texts.INVALID_LOGON),
        ({"heartbeat": 4}, Texts.HEARTBEAT_VALUE.format(value=4, low=5, high=60)),
        ({"heartbeat": 61}, Texts.HEARTBEAT_VALUE.format(value=61, low=5, high=60)),
        ({"overrides": {108: None}}, Texts.HEARTBEAT_TAG),
        ({"overrides": {142: None}}, Texts.LOCATION_MISSING),
        ({"overrides": {50: None}}, Texts.SENDER_SUB_MISSING),
        ({"overrides": {50: "X"}}, Texts.SENDER_SUB_SHORT.format(length=1)),
        ({"overrides": {50: "OP ER"}}, Texts.SENDER_SUB_CHARS),
        ({"overrides": {56: "CMX"}}, Texts.BAD_TARGET_COMP.format(value="CMX")),
        ({"overrides": {57: "92"}}, Texts.BAD_TARGET_SUB.format(value="92", expected="G")),
        ({"overrides": {369: None}}, Texts.TAG_MISSING.format(name="LastMsgSeqNumProcessed", tag=369)),
        ({"overrides": {1400: "CME-2"}}, Texts.BAD_SIGNATURE_METHOD.format(value="CME-2")),
        ({"overrides": {355: "X" * 20, 354: 20}}, Texts.INVALID_LOGON),
        ({"reset": "Y"}, Texts.BAD_RESET_FLAG.format(value="Y")),
        ({"reset": "Y", "seq": 2}, Texts.IN_SESSION_SEQ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_logon_validation_texts(
    sim: Simulator, clock: ManualClock, kwargs: dict[str, Any], text: str
) -> None:
    with connect(sim, clock) as client:
        client.logon(**kwargs)
        assert_logout_then_closed(client, text)
    assert sim.bad_logons(SESSION) == 1


def test_bad_fault_tolerance_indicator(clock: ManualClock) -> None:
    with (
        make_sim(clock, sessions=None) as sim,
        SimClient(sim.endpoint(SESSION), sender_comp_id="ABCDEFY", clock=clock) as client,
    ):
        client.logon()
        assert_logout_then_closed(client, Texts.BAD_FTI.format(value="Y"))


def test_non_logon_first_is_a_bad_logon(sim: Simulator, clock: ManualClock) -> None:
    with connect(sim, clock) as client:
        client.send("0")
        assert_logout_then_closed(client, Texts.NON_LOGON_FIRST)
    assert sim.bad_logons(SESSION) == 1


def test_sender_comp_id_must_match_the_port(sim: Simulator, clock: ManualClock) -> None:
    with connect(sim, clock, sender_comp_id="XYZABCN") as client:
        client.logon()
        assert_logout_then_closed(client, Texts.BAD_SENDER_COMP.format(value="XYZABCN"))


def test_non_ascii_logon_gets_a_logout_not_a_crash(sim: Simulator, clock: ManualClock) -> None:
    with connect(sim, clock) as client:
        client.send_raw(encode("A", [(34, 1), (49, b"\xc4BCDEFN"), (56, "CME"), (50, b"\xff\xfe")]))
        assert_logout_then_closed(client, Texts.BAD_SENDER_COMP.format(value="\\xc4BCDEFN"))
    assert sim.bad_logons(SESSION) == 1


def test_five_bad_logons_lock_the_session_out(sim: Simulator, clock: ManualClock) -> None:
    texts = []
    for _ in range(5):
        with connect(sim, clock, secret="B" * 43) as client:
            client.logon()
            texts.append(client.expect("5").get(58))
            client.expect_closed()
    assert texts == [Texts.INVALID_LOGON] * 4 + [Texts.PORT_CLOSURE]
    assert sim.bad_logons(SESSION) == 5 and sim.is_locked_out(SESSION)
    for role in ("primary", "backup"):
        with connect(sim, clock, role) as client:  # a good logon is refused too, on both ports
            client.logon()
            assert client.expect("5").get(58) == Texts.PORT_CLOSURE
            client.expect_closed()
    sim.reopen(SESSION)
    assert not sim.is_locked_out(SESSION)
    client, ack = logged_on(sim, clock)
    client.close()
    assert ack.get(35) == "A"


def test_logon_timeout_closes_without_logout(clock: ManualClock) -> None:
    with make_sim(clock, logon_timeout=0.3) as sim, connect(sim, clock) as client:
        started = time.monotonic()
        assert client.expect_closed() == []
        assert time.monotonic() - started < 3


# -- session -------------------------------------------------------------------------------------------------


def test_business_message_is_wrapped(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        payload = inner(1)[0]
        assert sim.send(SESSION, payload) == 2
        msg = client.expect("n")
    assert msg.tags()[3:] == [34, 369, 52, 49, 50, 56, 57, 143, 212, 213, 10]
    assert msg.num(34) == 2 and msg.num(369) == 1
    assert (msg.get(49), msg.get(50), msg.get(56), msg.get(57), msg.get(143)) == (
        "CME",
        "G",
        "ABCDEFN",
        "OPER1",
        "US,IL",
    )
    xml = dict(msg.fields)[213]
    assert msg.num(212) == len(xml)
    assert xml.startswith(b"<RTRF>8=FIX.4.2\x01") and xml.endswith(b"\x01</RTRF>")
    assert unwrap(xml) == payload
    parse_frame(unwrap(xml))


def test_client_test_request_is_answered(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        client.send("1", [(112, "HELLO")])
        beat = client.expect("0")
    assert beat.get(112) == "HELLO"


def test_idle_heartbeat_test_request_then_close(clock: ManualClock) -> None:
    with make_sim(clock, heartbeat_range=(1, 60)) as sim:
        with connect(sim, clock) as client:
            client.logon(heartbeat=1)
            client.expect("A")
            started = time.monotonic()
            got = client.read_all(2, timeout=3)  # after 1 s idle: our Heartbeat and a TestRequest
            assert sorted(m.type for m in got) == ["0", "1"]
            assert next(m for m in got if m.type == "0").get(112) is None
            assert next(m for m in got if m.type == "1").get(112) == "TEST1"
            # unanswered: closed after one more interval; its own Heartbeat may come first when that interval's
            # timer fires before the close (a loaded machine), but nothing else
            assert [m.type for m in client.expect_closed(timeout=4)] in ([], ["0"])
            assert 1.5 < time.monotonic() - started < 4
        assert sim.wait_logged_off(SESSION, 2)


def test_client_logout_is_confirmed_and_closed(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        client.send("5")
        logout = client.expect("5")
        assert logout.num(789) == 3
        assert client.expect_closed() == []
    assert sim.wait_logged_off(SESSION, 2)


def test_sequence_persists_across_reconnect(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        sim.send_many(SESSION, inner(2))  # 2, 3
        client.read_all(2)
        client.send("5")  # client 2
        client.expect("5")  # CME 4
        client.expect_closed()
    assert sim.wait_logged_off(SESSION, 2)
    sim.send(SESSION, inner(1)[0])  # 5, stored while offline
    with connect(sim, clock) as again:
        again.logon(seq=1)
        low = assert_logout_then_closed(again, Texts.SEQ_TOO_LOW.format(expected=3, received=1))
        assert low.num(789) == 3 and low.num(34) == 6
    with connect(sim, clock) as again:
        again.logon(seq=3, last_processed=4)
        ack = again.expect("A")
        assert (ack.num(34), ack.num(369)) == (7, 3)
        again.send("2", [(7, 5), (16, 0)], seq=4)
        resent = again.expect("n")
        assert (resent.num(34), resent.get(43)) == (5, "Y")
        gap = again.expect("4")
        assert (gap.num(34), gap.num(36)) == (6, 8)


def test_client_ahead_gets_a_resend_request(sim: Simulator, clock: ManualClock) -> None:
    with connect(sim, clock) as client:
        client.logon(seq=5)
        client.expect("A")
        request = client.expect("2")
        assert (request.num(7), request.num(16)) == (1, 0)
        assert sim.expected_inbound_seq(SESSION) == 1
        client.send("4", [(123, "Y"), (36, 6)], seq=1, poss_dup=True)
        client.send("1", [(112, "X")], seq=6)
        client.expect("0")
        assert sim.expected_inbound_seq(SESSION) == 7


def test_in_session_reset_logon_resets_both_sequences(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        sim.send(SESSION, inner(1)[0])
        client.expect("n")
        client.logon(seq=1, reset="Y")
        ack = client.expect("A")
        assert (ack.num(34), ack.get(141)) == (1, "Y")
        assert sim.next_outbound_seq(SESSION) == 2 and sim.expected_inbound_seq(SESSION) == 2


# -- resend --------------------------------------------------------------------------------------------------


def test_resend_business_and_coalesced_gap_fills(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)  # CME 1 = ack
    with client:
        clock.advance(1)
        sim.send_many(SESSION, inner(2))  # 2, 3 at T0+1s
        live = client.read_all(2)
        client.send("1", [(112, "a")])
        client.send("1", [(112, "b")])
        client.read_all(2)  # heartbeats 4, 5
        sim.send(SESSION, inner(1)[0])  # 6
        client.expect("n")
        clock.advance(10)
        client.send("2", [(7, 1), (16, 0)])
        got = client.read_all(5)
    assert [(m.type, m.num(34)) for m in got] == [("4", 1), ("n", 2), ("n", 3), ("4", 4), ("n", 6)]
    assert (got[0].num(36), got[3].num(36)) == (2, 6)
    for msg in got:
        assert msg.get(43) == "Y" and msg.get(122) is not None
        assert msg.get(52) == format_ts(T0 + timedelta(seconds=11))
    assert got[0].get(123) == "Y"
    assert got[0].get(122) == format_ts(T0)
    assert got[1].get(122) == format_ts(T0 + timedelta(seconds=1))
    assert [dict(m.fields)[213] for m in got[1:3]] == [dict(m.fields)[213] for m in live]


def test_resend_cap_truncates(clock: ManualClock) -> None:
    with make_sim(clock) as sim:
        sim.send_many(SESSION, inner(3000))  # stored while offline: 1..3000
        with connect(sim, clock) as client:
            client.logon()
            ack = client.expect("A")
            assert ack.num(34) == 3001
            client.send("2", [(7, 1), (16, 0)])
            got = client.read_all(2500, timeout=10)
            assert [m.num(34) for m in got] == list(range(1, 2501))
            assert all(m.type == "n" and m.get(43) == "Y" for m in got)
            client.send("1", [(112, "MARK")])
            assert client.expect("0").get(112) == "MARK"  # nothing after 2500


def test_oversize_explicit_range_rejected_when_configured(clock: ManualClock) -> None:
    with make_sim(clock, resend_cap=10, oversize_resend="reject") as sim:
        sim.send_many(SESSION, inner(20))
        client, _ = logged_on(sim, clock)
        with client:
            client.send("2", [(7, 1), (16, 11)])
            reject = client.expect("3")
            assert reject.get(58) == Texts.RESEND_TOO_LARGE.format(count=11, cap=10)
            assert (reject.num(45), reject.get(372)) == (2, "2")
            client.send("2", [(7, 1), (16, 0)])  # to infinity: CME answers the first 10
            got = client.read_all(10)
            assert got[-1].num(34) == 10
            client.send("1", [(112, "MARK")])
            assert client.expect("0").get(112) == "MARK"


def test_second_resend_in_flight_is_rejected(clock: ManualClock) -> None:
    with make_sim(clock, resend_delay=0.5) as sim:
        sim.send_many(SESSION, inner(5))
        client, _ = logged_on(sim, clock)
        with client:
            client.send("2", [(7, 1), (16, 0)])  # client seq 2
            client.send("2", [(7, 1), (16, 0)])  # client seq 3, while the first is answered
            assert sim.wait_for(lambda: sim.next_outbound_seq(SESSION) == 8, 2)  # ack 6, reject 7 queued
            sim.send(SESSION, inner(1)[0])  # live message generated while the resend is answered
            got = client.read_all(8)
    assert [(m.type, m.num(34), m.get(43)) for m in got[:6]] == [
        *(("n", i, "Y") for i in range(1, 6)),
        ("4", 6, "Y"),  # the logon ack, gap-filled
    ]
    assert got[6].type == "3" and got[6].num(45) == 3 and got[6].get(58) == Texts.RESEND_IN_PROGRESS
    assert got[7].type == "n" and got[7].num(34) == 8 and got[7].get(43) is None


def test_stale_resend_rejected_or_gap_filled(clock: ManualClock) -> None:
    with make_sim(clock, resend_window=timedelta(hours=1)) as sim:
        sim.send(SESSION, inner(1)[0])
        clock.advance(timedelta(hours=2))
        client, _ = logged_on(sim, clock)
        with client:
            client.send("2", [(7, 1), (16, 0)])
            assert client.expect("3").get(58) == Texts.RESEND_STALE.format(hours="1")
    clock.set(T0)
    with make_sim(clock, resend_window=timedelta(hours=1), stale_resend="gapfill") as sim:
        sim.send(SESSION, inner(1)[0])
        clock.advance(timedelta(hours=2))
        client, _ = logged_on(sim, clock)
        with client:
            client.send("2", [(7, 1), (16, 0)])
            gap = client.expect("4")
            assert (gap.num(34), gap.num(36)) == (1, 3)


def test_reject_next_resend(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        sim.reject_next_resend(SESSION)
        client.send("2", [(7, 1), (16, 0)])
        assert client.expect("3").get(58) == Texts.RESEND_REJECTED
        sim.reject_next_resend(SESSION, "logout", "go away")
        client.send("2", [(7, 1), (16, 0)])
        assert_logout_then_closed(client, "go away")


# -- gap and failover controls -------------------------------------------------------------------------------


def test_drop_next_and_jump_create_gaps(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        sim.drop_next(SESSION, 1)
        sim.send_many(SESSION, inner(3))  # 2 dropped, 3, 4 written
        sim.jump_sequence(SESSION, 10)
        sim.send(SESSION, inner(1)[0])  # 15
        assert [m.num(34) for m in client.read_all(3)] == [3, 4, 15]
        client.send("2", [(7, 2), (16, 14)])
        got = client.read_all(4)
    assert [(m.type, m.num(34)) for m in got] == [("n", 2), ("n", 3), ("n", 4), ("4", 5)]
    assert got[3].num(36) == 15


def test_backup_refused_while_primary_up_then_failover(clock: ManualClock) -> None:
    with make_sim(clock) as sim:
        primary, _ = logged_on(sim, clock)
        with primary, connect(sim, clock, "backup") as backup:
            backup.logon(seq=2)
            refused = assert_logout_then_closed(backup, Texts.BACKUP_NOT_ALLOWED)
            assert refused.num(789) == 2
            assert sim.bad_logons(SESSION) == 0
            sim.send_many(SESSION, inner(3))  # 3, 4, 5 (2 was the refusal logout)
            primary.read_all(3)
            sim.promote_backup(SESSION, replay_last=2)
            assert primary.expect_closed() == []
        with pytest.raises(OSError):
            socket.create_connection(sim.endpoint(SESSION, "primary"), timeout=1).close()
        with connect(sim, clock, "backup") as backup:
            backup.logon(seq=2)
            ack = backup.expect("A")
            assert ack.num(34) == 6 + 4000 + 2
            backup.send("2", [(7, 6), (16, 0)])
            capped = backup.expect("4")  # 6..4008 spans more than 2,500: the first 2,500 only
            assert (capped.num(34), capped.num(36)) == (6, 2506)
            backup.send("2", [(7, 4006), (16, 0)])
            got = backup.read_all(3)
        assert [(m.type, m.num(34)) for m in got] == [("n", 4006), ("n", 4007), ("4", 4008)]
        assert got[1].get(97) == "Y" and got[1].get(43) == "Y"
        sim.revive(SESSION, "primary")
        with connect(sim, clock, "primary") as old:  # the old primary is now the backup
            old.logon(seq=4)
            assert old.expect("5").get(58) == Texts.BACKUP_NOT_ALLOWED


def test_kill_and_revive_keep_the_port(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    endpoint = sim.endpoint(SESSION)
    sim.kill(SESSION)
    assert client.expect_closed() == []
    client.close()
    with pytest.raises(OSError):
        socket.create_connection(endpoint, timeout=1).close()
    sim.revive(SESSION)
    assert sim.endpoint(SESSION) == endpoint
    with connect(sim, clock) as again:
        again.logon(seq=2)
        assert again.expect("A").num(34) == 2


def test_send_raw_and_sim_initiated_logout(sim: Simulator, clock: ManualClock) -> None:
    client, _ = logged_on(sim, clock)
    with client:
        sim.send_raw(SESSION, b"8=FIX.4.2\x019=5\x0135=0\x0110=000\x01")
        client.sock.settimeout(2)
        assert b"10=000" in client.sock.recv(100)
        sim.logout(SESSION, "end of day")
        logout = client.expect("5")
        assert logout.get(58) == "end of day" and logout.num(789) == 2
        assert client.expect_closed() == []


def test_msgw_segment_session(clock: ManualClock) -> None:
    seg = SimSession("ABCDEFN", "92")
    with make_sim(clock, sessions=[SESSION, seg]) as sim:
        with connect(sim, clock, session=seg) as wrong:
            wrong.logon()
            assert_logout_then_closed(wrong, Texts.BAD_TARGET_SUB.format(value="G", expected="92"))
        with connect(sim, clock, session=seg, target_sub_id="92") as client:
            client.logon()
            ack = client.expect("A")
            assert ack.get(50) == "92"
            sim.send(seg, inner(1)[0])
            assert client.expect("n").get(50) == "92"
        assert sim.wait_for(lambda: sim.sessions_logged_on() == [], 2)
        assert sim.bad_logons(seg) == 1 and sim.bad_logons(SESSION) == 0


def test_wildcard_simulator_with_api_keys_and_key_file(clock: ManualClock, tmp_path: Any) -> None:
    key = generate_key("ABC", created=date(2026, 1, 1), expires=date(2027, 1, 1))
    other = generate_key("XYZ", created=date(2026, 1, 1), expires=date(2027, 1, 1))
    path = tmp_path / "keys.txt"
    write_key_file(path, [key, other])
    with Simulator.from_key_file(path, clock=clock) as sim:
        with SimClient(
            sim.endpoint(SESSION), key_id=key.access_key_id, secret=key.secret.reveal(), clock=clock
        ) as c:
            c.logon()
            c.expect("A")
            assert sim.sessions_logged_on() == [SESSION]
        with SimClient(
            sim.endpoint(SESSION), key_id=other.access_key_id, secret=other.secret.reveal(), clock=clock
        ) as c:  # XYZ's key used by session ABC
            c.logon()
            assert_logout_then_closed(c, Texts.INVALID_LOGON)
        assert "belongs to session XYZ" in sim.rejections(SESSION)[-1].detail


def test_stop_is_prompt_with_live_connections(clock: ManualClock) -> None:
    sim = make_sim(clock).start()
    client, _ = logged_on(sim, clock)
    idle = socket.create_connection(sim.endpoint(SESSION, "backup"))
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2.5
    assert [t.name for t in threading.enumerate() if t.name.startswith("sim-")] == []
    assert client.expect_closed() == []
    client.close()
    idle.close()


def test_the_wire_transcript_records_both_ways_in_order_redacted(clock: ManualClock) -> None:
    with make_sim(clock, record_wire=True, resend_delay=0.3) as sim:
        sim.send_many(SESSION, inner(2))  # stored while offline: 1, 2
        with connect(sim, clock) as client:
            logon = client.logon()
            client.expect("A")  # 3
            client.send("2", [(7, 1), (16, 0)])  # answered after 0.3 s: 1, 2 and a GapFill for 3
            got = client.read_all(3)
            client.send("5")
            client.expect("5")
        assert sim.wait_logged_off(SESSION, 5)
        frames = sim.transcript(SESSION)  # complete: a frame is recorded before it is written
    assert [(f.direction, f.msg_type, f.seq) for f in frames] == [
        ("in", "A", 1),
        ("out", "A", 3),
        ("in", "2", 2),
        ("out", "n", 1),
        ("out", "n", 2),
        ("out", "4", 3),
        ("in", "5", 3),
        ("out", "5", 4),
    ]
    assert [f.raw for f in frames[3:6]] == [m.raw for m in got]  # written frames as the client read them
    signature = dict(parse_frame(logon))[1402]
    assert signature not in b"".join(f.raw for f in frames) and b"\x011402=***\x01" in frames[0].raw
    assert all(f.at.tzinfo is not None for f in frames)
    assert [f.at for f in frames] == sorted(f.at for f in frames)


def test_the_transcript_is_off_by_default(sim: Simulator) -> None:
    with pytest.raises(SimulatorError, match="record_wire=True"):
        sim.transcript(SESSION)
