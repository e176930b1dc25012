"""The AutoCert+ Drop Copy 4.0 scenarios (spec §5.2), as data: a name, what CME's test is called and checks,
and the function that rehearses it in a :class:`~dropcopy_client.certify._harness.Rehearsal`.

Each function drives the simulator the way the AutoCert+ step list describes, lets the real client (QuickFIX in
its engine process, the journal, the decoder, the book, the user's handler) do what it does, and checks the
result on the wire and in what the client decoded. Nothing is taken on trust: a check reads the frames the
simulator received and wrote, the events the client delivered, its position book or its journal's audit.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from dropcopy_client._audit import audit_journal
from dropcopy_client._client import DropCopyClient
from dropcopy_client._enums import ExecTransType, MassActionResponse, OrdStatus
from dropcopy_client._events import KeyExpiryWarning, KeyRotated, SessionState
from dropcopy_client._messages import (
    Fill,
    ModifyAck,
    OrderAck,
    OrderMassActionReport,
    PendingCancel,
    PendingReplace,
    TradeBust,
    TradeCorrection,
)
from dropcopy_client._recovery import DuplicateIgnored
from dropcopy_client._week import WeeklySchedule
from dropcopy_client._wire import parse_frame
from dropcopy_client.auth import write_key_file
from dropcopy_client.certify._harness import Failed, Rehearsal, inner_tags, tags
from dropcopy_client.certify._profile import TargetIds
from dropcopy_client.testing import (
    BUY,
    ESH7,
    ESZ6,
    ESZ6_ESH7,
    SELL,
    ZNH7,
    Instrument,
    OrderEventEntry,
    OrderFlow,
    ScriptedSession,
    SimSession,
    Simulator,
)

#: illustrative BrokerTec and EBS instruments (made-up security ids; 167 as in CME's examples)
BTEC_UST10Y = Instrument("UB", "UST10Y", 7000010, "TNOTE")
EBS_EURUSD = Instrument("EUR", "EUR/USD", 8000001, "FXSPOT")

TAG_NAMES: dict[int, str] = {
    1: "Account",
    7: "BeginSeqNo",
    16: "EndSeqNo",
    17: "ExecID",
    19: "ExecRefID",
    20: "ExecTransType",
    31: "LastPx",
    32: "LastQty",
    34: "MsgSeqNum",
    36: "NewSeqNo",
    37: "OrderID",
    39: "OrdStatus",
    43: "PossDupFlag",
    44: "Price",
    49: "SenderCompID",
    50: "SenderSubID (operator)",
    52: "SendingTime",
    56: "TargetCompID",
    57: "TargetSubID",
    58: "Text",
    97: "PossResend",
    108: "HeartBtInt",
    122: "OrigSendingTime",
    123: "GapFillFlag",
    141: "ResetSeqNumFlag",
    142: "SenderLocationID",
    354: "EncodedTextLen",
    355: "EncodedText (Access Key ID)",
    369: "LastMsgSeqNumProcessed",
    789: "NextExpectedMsgSeqNum",
    1400: "EncryptedPasswordMethod",
    1401: "EncryptedPasswordLen",
    1402: "EncryptedPassword (HMAC signature: never shown)",
    1603: "ApplicationSystemName",
    1604: "TradingSystemVersion",
    1605: "ApplicationSystemVendor",
}
LOGON_TAGS = (34, 49, 50, 52, 56, 57, 142, 369, 108, 141, 1603, 1604, 1605, 354, 355, 1400, 1401, 1402)


@attrs.frozen
class Scenario:
    """One AutoCert+ scenario: ``name`` (for ``--scenario``), CME's test ``title``, the ``suite`` it belongs
    to, the spec ``source`` keys, what it proves (``purpose``), CME's step list, and the rehearsal itself."""

    name: str
    title: str
    suite: str
    source: str
    purpose: str
    autocert_steps: tuple[str, ...]
    run: Callable[[Rehearsal], None] = attrs.field(repr=False)


# ---------------------------------------------------------------------------------------------- helpers


def _index(sim: Simulator, session: SimSession) -> int:
    """Where the session's transcript stands now (to look only at what comes after)."""
    return len(sim.transcript(session))


def _after(
    sim: Simulator, session: SimSession, mark: int, direction: str, msg_type: str
) -> list[dict[int, str]]:
    return [
        tags(f.raw)
        for f in sim.transcript(session)[mark:]
        if f.direction == direction and f.msg_type == msg_type
    ]


def _check_logon(r: Rehearsal, session: SimSession, ids: TargetIds, logon: dict[int, str], what: str) -> None:
    """The Logon carries CME's secure-logon fields with the configuration's values (spec §1.2)."""
    p = r.profile
    expected = {
        49: session.sender_comp_id,
        50: ids.operator,
        56: "CME",
        57: session.segment,
        142: p.location,
        108: str(p.heartbeat),
        141: "N",
        1603: p.app_name,
        1604: p.app_version,
        1605: p.app_vendor,
        1400: "CME-1-SHA-256",
        1401: "43",
        354: str(len(logon.get(355, ""))),
    }
    wrong = [
        f"{tag}={logon.get(tag, '(missing)')} (expected {want})"
        for tag, want in expected.items()
        if logon.get(tag) != want
    ]
    missing = [str(tag) for tag in (34, 52, 355, 369, 1402) if not logon.get(tag)]
    r.check(
        f"{what}: 49/50/56/57/142/108/141/1603-1605 and the signature fields carry the expected values",
        not wrong and not missing,
        "; ".join(wrong + ([f"missing {', '.join(missing)}"] if missing else [])) or "all as expected",
    )
    forbidden = [str(tag) for tag in (98, 95, 96, 122) if tag in logon]
    r.check(
        f"{what}: no 98 EncryptMethod, 95/96 RawData or 122 OrigSendingTime (CME logs such a Logon out)",
        not forbidden,
        f"present: {', '.join(forbidden)}" if forbidden else "none present",
    )


def _report_logon(r: Rehearsal, title: str, logon: dict[int, str]) -> None:
    r.report(title, [(tag, TAG_NAMES.get(tag, str(tag)), logon.get(tag)) for tag in LOGON_TAGS])


def _logons(sim: Simulator, session: SimSession, mark: int = 0) -> list[dict[int, str]]:
    return _after(sim, session, mark, "in", "A")


def _test_request_answered(r: Rehearsal, sim: Simulator, session: SimSession, mark: int = 0) -> bool:
    """CME sends a Test Request; the client answers with a Heartbeat carrying its 112 (spec §2.2)."""

    def answered() -> str | None:
        frames = sim.transcript(session)[mark:]
        asked = [tags(f.raw).get(112) for f in frames if f.direction == "out" and f.msg_type == "1"]
        replies = {tags(f.raw).get(112) for f in frames if f.direction == "in" and f.msg_type == "0"}
        return next((a for a in asked if a and a in replies), None)

    ok = r.wait_until(lambda: answered() is not None)
    return r.check(
        f"{session.name}: CME's Test Request is answered with a Heartbeat carrying its TestReqID (112)",
        ok,
        f"112={answered()}" if ok else "no Heartbeat answered a Test Request",
    )


def _logout_exchange(r: Rehearsal, sim: Simulator, session: SimSession, mark: int = 0) -> bool:
    """The client sends Logout first and CME confirms it with its own Logout (spec §2.3)."""
    sim.wait_logged_off(session, r.wait_seconds)

    def confirmed_frames() -> bool:
        frames = sim.transcript(session)[mark:]
        ours = next((i for i, f in enumerate(frames) if f.direction == "in" and f.msg_type == "5"), None)
        return ours is not None and any(
            f.direction == "out" and f.msg_type == "5" for f in frames[ours + 1 :]
        )

    r.wait_until(confirmed_frames, 5)
    frames = sim.transcript(session)[mark:]
    ours = next((i for i, f in enumerate(frames) if f.direction == "in" and f.msg_type == "5"), None)
    cme_first = next((i for i, f in enumerate(frames) if f.direction == "out" and f.msg_type == "5"), None)
    confirmed = ours is not None and any(
        f.direction == "out" and f.msg_type == "5" for f in frames[ours + 1 :]
    )
    ok = ours is not None and confirmed and (cme_first is None or cme_first > ours)
    detail = (
        "the client sent no Logout"
        if ours is None
        else "CME's Logout came first"
        if cme_first is not None and cme_first < ours
        else "CME did not confirm"
        if not confirmed
        else f"Logout 34={frames[ours].seq}, confirmed"
    )
    return r.check(f"{session.name}: the client logs out and CME confirms with its Logout", ok, detail)


def _no_refusals(r: Rehearsal, sim: Simulator, session: SimSession) -> None:
    refused = sim.rejections(session)
    r.check(
        f"{session.name}: CME refused nothing and counted no bad logon",
        not refused and sim.bad_logons(session) == 0,
        "; ".join(x.text for x in refused) or "no refusal",
    )


def _logged_on(r: Rehearsal, client: DropCopyClient, names: Iterable[str]) -> bool:
    """Every named session reaches LOGGED_ON (past any recovery) within the rehearsal's wait."""
    wanted = set(names)

    def done() -> bool:
        states = {s.session: s for s in client.status()}
        return all(
            n in states and states[n].state is SessionState.LOGGED_ON and not states[n].open_gaps
            for n in wanted
        )

    ok = r.wait_until(done)
    shown = ", ".join(f"{s.session} {s.state.value}" for s in client.status() if s.session in wanted)
    return r.check("every session is logged on with no open gap", ok, shown)


def _business(r: Rehearsal, count: int) -> list[Any]:
    """Wait for ``count`` business events (the rehearsal fails when they do not come)."""
    r.wait_events(lambda: len(r.recorder.business()) >= count)
    got = r.recorder.business()
    r.require(
        f"the client delivered all {count} business messages", len(got) >= count, f"{len(got)} of {count}"
    )
    return got


def _handler_got(r: Rehearsal, events: Sequence[Any]) -> None:
    """When a user handler is registered, it must have been given every one of ``events``."""
    probe = r.probe
    if probe is None:
        return
    r.wait_until(lambda: all(probe.got(e) for e in events), 10)
    missing = [e.idempotency_key for e in events if not probe.got(e)]
    r.check(
        f"your handler {probe.target} received each of the {len(events)} business messages",
        not missing,
        f"not received: {', '.join(missing)}" if missing else "all received",
    )


def _audit_ok(r: Rehearsal, client: DropCopyClient) -> None:
    """The journal accounts for every inbound number of the week (``dropcopy audit``)."""
    path = r.data_dir / "journal.sqlite"
    audits = audit_journal(path, schedule=client.schedule)
    bad = [f"{a.session}: {a.unaccounted} unaccounted" for a in audits if not a.ok]
    r.check(
        "the journal accounts for every inbound sequence number (dropcopy audit)",
        bool(audits) and not bad,
        "; ".join(bad) or ", ".join(f"{a.session} 1-{a.highest}" for a in audits),
    )


def _fields(inner: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for tag, value in parse_frame(inner):
        out.setdefault(tag, value.decode("ascii", "backslashreplace"))
    return out


def _source(prefix: int, **kwargs: Any) -> ScriptedSession:
    return ScriptedSession(exec_id_prefix=prefix, **kwargs)


def _fills(src: ScriptedSession, count: int, account: str = "ACCT1") -> list[bytes]:
    return [
        src.order(ESZ6, account=account, side=BUY if i % 2 else SELL, qty=1, price="4500.25").fill(1)
        for i in range(count)
    ]


def _exec_ids(inners: Iterable[bytes]) -> list[str]:
    return [_fields(inner)[17] for inner in inners]


def _compare(r: Rehearsal, what: str, pairs: Iterable[tuple[str, object, object]]) -> None:
    """One check: every decoded value equals what was sent."""
    wrong = [f"{name}: decoded {got!r}, sent {sent!r}" for name, got, sent in pairs if str(got) != str(sent)]
    r.check(what, not wrong, "; ".join(wrong) or "every value as sent")


def _wire_frame_of(sim: Simulator, session: SimSession, exec_id: str) -> dict[int, str]:
    """The outer fields of the frame that carried the inner message with ExecID ``exec_id``."""
    for frame in sim.transcript(session):
        if frame.direction == "out" and frame.msg_type == "n" and inner_tags(frame.raw).get(17) == exec_id:
            return tags(frame.raw)
    return {}


# ---------------------------------------------------------------------------------------------- scenarios


def logon_cgw(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s], test_request_delay=1.0)
    client = r.client(sim, [s])
    r.step(f"Connect to the CGW primary gateway and send a signed Logon as {s.sender_comp_id} with 57=G")
    r.start(client)
    logon = _logons(sim, s)[0]
    _check_logon(r, s, r.profile.cgw, logon, "Logon")
    r.check("the first Logon of the week has 34=1 and 369=0", (logon.get(34), logon.get(369)) == ("1", "0"))
    _report_logon(r, "Logon (35=A) as sent to CME", logon)
    acks = _after(sim, s, 0, "out", "A")
    r.check(
        "CME acknowledged the Logon with a Logon (35=A) echoing 108 and 1603-1605",
        bool(acks) and all(acks[0].get(t) == logon.get(t) for t in (108, 1603, 1604, 1605)),
        f"ack 34={acks[0].get(34)}" if acks else "no ack",
    )
    _logged_on(r, client, [s.name])
    r.step("Wait for CME's Test Request and answer it with a Heartbeat")
    _test_request_answered(r, sim, s)
    r.step("Send Logout and receive CME's Logout")
    client.stop()
    _logout_exchange(r, sim, s)
    _no_refusals(r, sim, s)


def logon_msgw(r: Rehearsal) -> None:
    sessions = r.msgw
    sim = r.simulator(sessions, test_request_delay=1.0)
    client = r.client(sim, sessions)
    names = " and ".join(s.segment for s in sessions)
    r.step(f"Log on to MSGW segments {names} at once: same 49/50, 57 = the segment id, one FIX session each")
    r.start(client)
    for s in sessions:
        logon = _logons(sim, s)[0]
        _check_logon(r, s, r.profile.msgw, logon, f"{s.name} Logon")
        _report_logon(r, f"{s.name}: Logon (35=A) as sent to CME", logon)
        acks = _after(sim, s, 0, "out", "A")
        r.check(
            f"{s.name}: CME's Logon ack comes from segment {s.segment} (50={s.segment})",
            bool(acks) and acks[0].get(50) == s.segment,
            f"50={acks[0].get(50)}" if acks else "no ack",
        )
    _logged_on(r, client, [s.name for s in sessions])
    r.step("Answer CME's Test Request on each segment with a Heartbeat")
    for s in sessions:
        _test_request_answered(r, sim, s)
    r.step("Log out of both segments")
    client.stop()
    for s in sessions:
        _logout_exchange(r, sim, s)
        _no_refusals(r, sim, s)


def respond_to_resend(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s], test_request_delay=1.0)
    client = r.client(sim, [s])
    r.start(client)
    r.step("Exchange heartbeats (CME's Test Request, the client's Heartbeat)")
    r.require("the session exchanges heartbeats", _test_request_answered(r, sim, s))
    missed = sim.expected_inbound_seq(s) - 1
    mark = _index(sim, s)
    r.step(
        f"CME loses the client's message {missed}: it expects {missed} again, so the client's next message looks "
        "ahead and CME sends a Resend Request"
    )
    sim.set_sequences(s, expected_inbound=missed)

    def answered() -> bool:
        return bool(_after(sim, s, mark, "out", "2")) and bool(_after(sim, s, mark, "in", "4"))

    r.require("CME sent a Resend Request and the client answered it", r.wait_until(answered))
    request = _after(sim, s, mark, "out", "2")[0]
    gap_fill = _after(sim, s, mark, "in", "4")[0]
    wire = sim.transcript(s)[mark:]
    answer = next(i for i, f in enumerate(wire) if f.direction == "in" and f.msg_type == "4")
    highest = max([missed, *(f.seq or 0 for f in wire[:answer] if f.direction == "in")])
    r.check(
        f"CME's Resend Request asks for {missed} onwards (7={missed}, 16=0)",
        (request.get(7), request.get(16)) == (str(missed), "0"),
        f"7={request.get(7)} 16={request.get(16)}",
    )
    r.check(
        "the client answers with a Sequence Reset-Gap Fill (35=4, 123=Y)",
        gap_fill.get(123) == "Y",
        f"123={gap_fill.get(123)}",
    )
    r.check(
        "the Gap Fill starts at the requested number and is a retransmission (34=7, 43=Y, 122 present)",
        gap_fill.get(34) == request.get(7) and gap_fill.get(43) == "Y" and bool(gap_fill.get(122)),
        f"34={gap_fill.get(34)} 43={gap_fill.get(43)} 122={gap_fill.get(122)}",
    )
    r.check(
        "its NewSeqNo (36) moves CME past the client's last message",
        int(gap_fill.get(36, 0)) > highest,
        f"36={gap_fill.get(36)}, last client message 34={highest}",
    )
    r.report(
        "CME's Resend Request and the client's answer",
        [
            (7, "BeginSeqNo (CME's request)", request.get(7)),
            (16, "EndSeqNo (CME's request)", request.get(16)),
            (34, "MsgSeqNum (Gap Fill)", gap_fill.get(34)),
            (123, "GapFillFlag", gap_fill.get(123)),
            (36, "NewSeqNo", gap_fill.get(36)),
            (43, "PossDupFlag", gap_fill.get(43)),
            (122, "OrigSendingTime", gap_fill.get(122)),
        ],
    )
    after = _index(sim, s)
    r.step("Heartbeats go on after the Gap Fill")
    _test_request_answered(r, sim, s, after)
    r.check(
        "CME expects the client's next number again (no gap left on CME's side)",
        r.wait_until(lambda: sim.expected_inbound_seq(s) > highest, 5),
        f"CME expects {sim.expected_inbound_seq(s)}",
    )
    client.stop()
    _logout_exchange(r, sim, s, after)
    _no_refusals(r, sim, s)


def failover(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s], test_request_delay=1.0)
    client = r.client(sim, [s], backup=True)
    backup = "{}:{}".format(*sim.endpoint(s, "backup"))
    r.step("Log on to the primary gateway and receive three fills")
    r.start(client)
    src = _source(61001)
    before = _fills(src, 3)
    sim.send_many(s, before)
    _business(r, 3)
    expected = sim.next_outbound_seq(s)
    mark = _index(sim, s)
    r.step(
        "CME's primary fails: the backup becomes the primary, CME's sequence jumps by 4,000 and the last two "
        "messages are sent again on new numbers with 97=Y"
    )
    sim.promote_backup(s, jump=4000, replay_last=2)
    r.step("The client reconnects to the backup gateway and logs on")
    r.require(
        "the client logged on to the backup gateway",
        r.wait_until(lambda: bool(_after(sim, s, mark, "out", "A"))),
    )
    ack = _after(sim, s, mark, "out", "A")[0]
    jump = int(ack.get(34, 0)) - expected
    r.check(
        "the Logon ack's 34 is 4,000 or more above the number the client expected",
        jump >= 4000,
        f"expected {expected}, ack 34={ack.get(34)} (+{jump})",
    )
    _logged_on(r, client, [s.name])
    status = {x.session: x for x in client.status()}[s.name]
    r.check(
        "the session now runs on the backup gateway's address",
        status.endpoint == backup,
        str(status.endpoint),
    )
    requests = [(int(q.get(7, 0)), int(q.get(16, 0))) for q in _after(sim, s, mark, "in", "2")]
    r.check(
        "the client asks for the missing numbers in Resend Requests of at most 2,500 each",
        bool(requests) and all(end != 0 and end - begin + 1 <= 2500 for begin, end in requests),
        ", ".join(f"{b}-{e}" for b, e in requests) or "no Resend Request",
    )
    r.check(
        "a gap over 2,500 takes more than one request, one after the other",
        len(requests) >= 2,
        f"{len(requests)} requests",
    )
    covered = sorted(n for b, e in requests for n in range(b, e + 1))
    r.check(
        "together the requests cover the gap, each number once",
        covered == list(range(expected, int(ack.get(34, 0)))),
        f"{expected}-{int(ack.get(34, 0)) - 1} missing; asked {len(covered)} numbers",
    )
    gap_fills = [g for g in _after(sim, s, mark, "out", "4") if g.get(123) == "Y"]
    r.check("CME answers with Sequence Reset-Gap Fills", bool(gap_fills), f"{len(gap_fills)} Gap Fills")
    r.wait_events(lambda: len(r.recorder.of(DuplicateIgnored)) >= 2, 10)
    r.check(
        "the two 97=Y replays are recognised as duplicates (by ExecID), not delivered again",
        len(r.recorder.of(DuplicateIgnored)) >= 2,
        f"{len(r.recorder.of(DuplicateIgnored))} duplicates ignored",
    )
    after = _fills(src, 2)
    sim.send_many(s, after)
    got = _business(r, 5)
    r.check(
        "every fill arrives exactly once and in order across the failover",
        [e.exec_id for e in got] == _exec_ids(before + after),
        ", ".join(e.exec_id for e in got),
    )
    _handler_got(r, got)
    r.report(
        "Failover",
        [
            (None, "backup gateway", backup),
            (34, "CME's next number before the failover", expected),
            (34, "Logon ack on the backup", ack.get(34)),
            (7, "Resend Requests (7-16)", ", ".join(f"{b}-{e}" for b, e in requests)),
            (None, "Gap Fills received", len(gap_fills)),
            (97, "replays ignored as duplicates", len(r.recorder.of(DuplicateIgnored))),
        ],
    )
    heartbeat_mark = _index(sim, s)
    r.step("Exchange heartbeats on the new primary, then log out")
    _test_request_answered(r, sim, s, heartbeat_mark)
    client.stop()
    _logout_exchange(r, sim, s, heartbeat_mark)
    _audit_ok(r, client)


def beginning_of_week(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s], test_request_delay=1.0)
    began = dt.datetime.now(dt.UTC)
    yesterday = (began - dt.timedelta(days=1)).date()
    last_week = WeeklySchedule(reset_day=yesterday.weekday(), reset_time=dt.time(0, 0), timezone="UTC")
    r.step("Last week: log on, receive two fills, log out (sequence numbers run on all week)")
    first = r.client(sim, [s], schedule=last_week)
    r.start(first)
    sim.send_many(s, _fills(_source(62001), 2))
    _business(r, 2)
    first.stop()
    r.require(
        "last week's session went past 1 on both sides",
        sim.next_outbound_seq(s) > 2 and sim.expected_inbound_seq(s) > 2,
    )
    r.step("The weekend: CME resets the session, both sides start again at 1")
    sim.reset_week(s)
    while dt.datetime.now(dt.UTC) < began + dt.timedelta(seconds=1.1):
        time.sleep(0.05)  # the new week must start after last week's QuickFIX store was created
    boundary = dt.datetime.now(dt.UTC).replace(microsecond=0)
    this_week = WeeklySchedule(reset_day=boundary.weekday(), reset_time=boundary.time(), timezone="UTC")
    r.note(
        f"the rehearsal puts the weekly boundary at {boundary.isoformat()} (the configured weekly_reset is not "
        "waited for): the client finds its stored sequence numbers are last week's"
    )
    mark = _index(sim, s)
    r.step("Monday: start the client; it logs on with 34=1 and 141=N")
    second = r.client(sim, [s], schedule=this_week)
    r.start(second)
    logon = _logons(sim, s, mark)[0]
    r.check(
        "the beginning-of-week Logon has 34=1, 141=N and 369=0",
        (logon.get(34), logon.get(141), logon.get(369)) == ("1", "N", "0"),
        f"34={logon.get(34)} 141={logon.get(141)} 369={logon.get(369)}",
    )
    _check_logon(r, s, r.profile.cgw, logon, "Logon")
    _report_logon(r, "Beginning-of-week Logon (35=A) as sent", logon)
    acks = _after(sim, s, mark, "out", "A")
    r.check(
        "CME's Logon ack is its number 1",
        bool(acks) and acks[0].get(34) == "1",
        f"ack 34={acks[0].get(34) if acks else None}",
    )
    _logged_on(r, second, [s.name])
    r.step("Answer CME's Test Request with a Heartbeat")
    _test_request_answered(r, sim, s, mark)
    second.stop()
    _logout_exchange(r, sim, s, mark)
    _no_refusals(r, sim, s)


def mid_week_logon(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s], test_request_delay=1.0)
    sim.set_sequences(s, expected_inbound=57, next_outbound=30)
    r.step(
        "Mid-week: CME expects 34=57 from the client, whose store starts at 1 (a new host, a restored store); "
        "CME answers the Logon with a Logout carrying 789=57"
    )
    client = r.client(sim, [s])
    r.start(client)
    logons = _logons(sim, s)
    logouts = _after(sim, s, 0, "out", "5")
    r.require(
        "CME answered the first Logon with a Logout",
        bool(logouts) and len(logons) >= 2,
        f"{len(logons)} Logons",
    )
    r.check(
        "CME's Logout carries 789 = 57, the number it expects",
        logouts[0].get(789) == "57",
        f"789={logouts[0].get(789)}",
    )
    r.check(
        "the client logs on again with exactly the 789 value (34=57, not 58)",
        logons[1].get(34) == "57",
        f"second Logon 34={logons[1].get(34)}",
    )
    raws = sim.received(s)
    valid = raws.index(sim.received(s, "A")[1])
    before = [tags(raw).get(35) for raw in raws[:valid]]
    r.check(
        "nothing but Logons went to CME before the valid logon (CME counts any traffic before a valid logon "
        "towards the port closure)",
        set(before) == {"A"},
        "sent before the valid logon: " + ", ".join(f"35={t}" for t in before),
    )
    r.check(
        "CME counted one bad logon, the expected one",
        sim.bad_logons(s) == 1,
        f"{sim.bad_logons(s)} bad logons",
    )
    _check_logon(r, s, r.profile.cgw, logons[1], "the second Logon")
    r.report(
        "CME's Logout and the client's Logon after it",
        [
            (34, "first Logon", logons[0].get(34)),
            (58, "CME's Logout Text", logouts[0].get(58)),
            (789, "CME's Logout NextExpectedMsgSeqNum", logouts[0].get(789)),
            (34, "second Logon", logons[1].get(34)),
            (141, "second Logon ResetSeqNumFlag", logons[1].get(141)),
        ],
    )
    _logged_on(r, client, [s.name])
    mark = _index(sim, s)
    r.step("Answer CME's Test Request with a Heartbeat")
    _test_request_answered(r, sim, s, mark)
    client.stop()
    _logout_exchange(r, sim, s, mark)
    _audit_ok(r, client)


def key_rotation(r: Rehearsal) -> None:
    s = r.cgw
    sid = s.sender_comp_id[:3]
    key1 = r.new_key(sid, created_days_ago=340, valid_days=20)
    key2 = r.new_key(sid, created_days_ago=0, valid_days=365)
    write_key_file(r.key_file, [key1])
    sim = r.simulator([s], keys=[key1])
    r.step(f"Log on with key pair 1 ({key1.access_key_id}, expires in 20 days)")
    first = r.client(sim, [s])
    r.start(first)
    logon1 = _logons(sim, s)[0]
    r.check(
        "the Logon is signed with key pair 1 (355 = its Access Key ID) and CME verified the signature",
        logon1.get(355) == key1.access_key_id and sim.is_logged_on(s),
        f"355={logon1.get(355)}",
    )
    warned = r.wait_events(lambda: bool(r.recorder.of(KeyExpiryWarning)), 5)
    r.check("the client warns that key pair 1 expires within 28 days (KeyExpiryWarning)", warned)
    r.step("Log out")
    first.stop()
    sent = [f.seq or 0 for f in r.frames(sim, s, "in")]
    r.step(
        "Rotate: install the new key file from Customer Center (key pairs 1 and 2); CME accepts only key pair 2 "
        "from now on"
    )
    write_key_file(r.key_file, [key1, key2])
    sim.add_key(key2)
    sim.remove_key(key1.access_key_id)
    mark = _index(sim, s)
    r.step(f"Start the client again: it logs on with key pair 2 ({key2.access_key_id})")
    second = r.client(sim, [s], key_check_interval=0.2)
    r.start(second)
    logon2 = _logons(sim, s, mark)[0]
    r.check(
        "the new Logon is signed with key pair 2 and CME verified it",
        logon2.get(355) == key2.access_key_id and sim.is_logged_on(s),
        f"355={logon2.get(355)}",
    )
    r.check(
        "the sequence goes on mid-week (34 = the last number sent with key pair 1 + 1, 141=N)",
        logon2.get(34) == str(max(sent) + 1) and logon2.get(141) == "N",
        f"34={logon2.get(34)} after {max(sent)}",
    )
    key3 = r.new_key(sid, created_days_ago=0, valid_days=366)
    r.step(
        "Rotate again without a restart: a third pair replaces pair 1 in the key file while the client runs "
        f"({key3.access_key_id}); CME now accepts only it, and ends the connection"
    )
    write_key_file(r.key_file, [key2, key3])
    rotated = r.wait_events(
        lambda: any(e.new_key_id == key3.access_key_id for e in r.recorder.of(KeyRotated)), r.wait_seconds
    )
    r.check(
        "the running client reads the changed key file and says so (KeyRotated: pair 2 -> pair 3), staying "
        "logged on with pair 2 until its next logon",
        rotated and len(_logons(sim, s, mark)) == 1 and sim.is_logged_on(s),
        ", ".join(f"{e.old_key_id} -> {e.new_key_id}" for e in r.recorder.of(KeyRotated)) or "no KeyRotated",
    )
    sim.add_key(key3)
    sim.remove_key(key2.access_key_id)
    relogon = _index(sim, s)
    sim.drop_connection(s)
    r.require(
        "the client logged on again",
        r.wait_until(lambda: bool(_logons(sim, s, relogon)) and sim.is_logged_on(s)),
    )
    logon3 = _logons(sim, s, relogon)[0]
    r.check(
        "its next Logon is signed with pair 3 and CME verified it",
        logon3.get(355) == key3.access_key_id,
        f"355={logon3.get(355)}",
    )
    _no_refusals(r, sim, s)
    r.note(
        "AutoCert+'s steps read 'log on with key pair 1, log out, log on with key pair 2': the rehearsal does that "
        "with the public API (stop the client, install the key file, start it), then rotates once more the way a "
        "running client does it (the key file changes, the next logon uses the new pair)."
    )
    r.report(
        "Logons before and after the rotations",
        [
            (355, "key pair 1 Access Key ID (first Logon)", logon1.get(355)),
            (34, "first Logon", logon1.get(34)),
            (355, "key pair 2 Access Key ID (after the restart)", logon2.get(355)),
            (34, "Logon after the restart", logon2.get(34)),
            (355, "key pair 3 Access Key ID (without a restart)", logon3.get(355)),
            (34, "Logon after the running rotation", logon3.get(34)),
        ],
    )
    mark = _index(sim, s)
    second.stop()
    _logout_exchange(r, sim, s, mark)


def order_mass_action(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s])
    client = r.client(sim, [s])
    r.start(client)
    src = _source(63001)
    first = src.order(ESZ6, account="ACCT1", side=BUY, qty=5, price="4500.25")
    second = src.order(ZNH7, account="ACCT1", side=SELL, qty=3, price="110.5")
    acks = [first.ack(), second.ack()]
    cancelled = src.mass_action([first, second])
    nothing = src.mass_action([])
    r.step(
        "Two orders rest; a simulated Order Mass Action cancels both, a second one finds nothing to cancel"
    )
    sim.send_many(s, [*acks, cancelled, nothing])
    got = _business(r, 4)
    reports = [e for e in got if isinstance(e, OrderMassActionReport)]
    r.require(
        "both Order Mass Action Reports (35=BZ) were decoded", len(reports) == 2, f"{len(reports)} decoded"
    )
    for event, inner, label in (
        (reports[0], cancelled, "orders cancelled"),
        (reports[1], nothing, "no orders"),
    ):
        sent = _fields(inner)
        pairs: list[tuple[str, object, object]] = [
            ("1300 MarketSegmentID", event.market_segment_id, sent[1300]),
            ("1369 MassActionReportID", event.mass_action_report_id, sent[1369]),
            (
                "1373 MassActionType",
                event.mass_action_type.value if event.mass_action_type else None,
                sent[1373],
            ),
            (
                "1374 MassActionScope",
                event.mass_action_scope.value if event.mass_action_scope else None,
                sent[1374],
            ),
            (
                "1375 MassActionResponse",
                event.mass_action_response.value if event.mass_action_response else None,
                sent[1375],
            ),
            ("533 TotalAffectedOrders", event.total_affected_orders, sent[533]),
            ("893 LastFragment", "Y" if event.last_fragment else "N", sent[893]),
        ]
        _compare(r, f"{label}: the fields AutoCert+ checks are decoded as sent", pairs)
        r.check(
            f"{label}: accepted (1375=1)",
            event.mass_action_response is MassActionResponse.ACCEPTED,
            str(event.mass_action_response),
        )
        rows: list[tuple[int | None, str, object]] = [
            (1300, "MarketSegmentID", event.market_segment_id),
            (1369, "MassActionReportID", event.mass_action_report_id),
            (1373, "MassActionType", event.mass_action_type),
            (1374, "MassActionScope", event.mass_action_scope),
            (1375, "MassActionResponse", event.mass_action_response),
            (533, "TotalAffectedOrders", event.total_affected_orders),
            (534, "NoAffectedOrders", len(event.affected_orders)),
        ]
        for n, entry in enumerate(event.affected_orders, 1):
            rows += [
                (41, f"#{n} OrigClOrdID", entry.orig_cl_ord_id),
                (84, f"#{n} CxlQty", entry.cxl_qty),
                (535, f"#{n} AffectedOrderID", entry.affected_order_id),
            ]
        rows.append((893, "LastFragment", event.last_fragment))
        r.report(f"Order Mass Action Report ({label}) as decoded", rows)
    expected = [(f.order.cl_ord_id, f.order.order_id) for f in (first, second)]
    entries = reports[0].affected_orders
    r.check(
        "the 534 group names both orders (41 OrigClOrdID, 535 AffectedOrderID) with their 84 CxlQty",
        [(e.orig_cl_ord_id, e.affected_order_id) for e in entries] == expected
        and [e.cxl_qty for e in entries] == [5, 3],
        "; ".join(f"41={e.orig_cl_ord_id} 535={e.affected_order_id} 84={e.cxl_qty}" for e in entries),
    )
    r.check(
        "the 'no orders' report has 533=0 and no 534 group",
        reports[1].total_affected_orders == 0 and not reports[1].affected_orders,
    )
    working = [o.order_id for o in client.book.working_orders()]
    r.check(
        "the cancelled orders are no longer working in the client's book",
        not working,
        ", ".join(working) or "none",
    )
    _handler_got(r, got)
    client.stop()


def message_stream(r: Rehearsal) -> None:
    a, b = r.msgw
    sim = r.simulator([a, b])
    client = r.client(sim, [a, b])
    r.step(f"Log on to segments {a.segment} and {b.segment} concurrently")
    r.start(client)
    sources = {
        a: _source(64001, segment=a.segment, sender_comp_id="EIVACPUSP", operator="GUSUS"),
        b: _source(65001, segment=b.segment, sender_comp_id="EIVACPUSP", operator="GUSUS"),
    }
    orders = {
        x: src.order(BTEC_UST10Y, account="BTACCT1", side=BUY, qty=10, price="99.5")
        for x, src in sources.items()
    }
    fillers = _align(sim, sources)
    r.step("CME sends three messages on each segment with the same sequence numbers on both")
    numbers: list[int] = []
    builders: tuple[Callable[[OrderFlow], bytes], ...] = (
        lambda o: o.ack(),
        lambda o: o.fill(4),
        lambda o: o.fill(6),
    )
    for build in builders:
        numbers.append(sim.send_same_seq([a, b], {x: build(o) for x, o in orders.items()}))
    got = _business(r, 6 + fillers)
    by = {(e.delivery.session, e.delivery.seq_num) for e in got}
    missing = [f"{x.name} #{n}" for n in numbers for x in (a, b) if (x.name, n) not in by]
    r.check(
        "each sequence number is processed on both segments (the same 34 on two segments is two messages)",
        not missing,
        "missing: " + ", ".join(missing) if missing else f"34 {', '.join(map(str, numbers))} on both",
    )
    r.check("no message was dropped as a duplicate", not r.recorder.of(DuplicateIgnored))
    resends = {x.name: len(sim.received(x, "2")) for x in (a, b)}
    r.check(
        "the client sends no Resend Request on either segment (No Resend)",
        not any(resends.values()),
        ", ".join(f"{k}: {v}" for k, v in resends.items()),
    )
    r.report(
        "Messages by segment and sequence number",
        [(34, f"{e.delivery.session} #{e.delivery.seq_num}", f"{type(e).__name__} {e.exec_id}") for e in got],
    )
    _handler_got(r, got)
    client.stop()
    _audit_ok(r, client)


def _align(sim: Simulator, sources: dict[SimSession, ScriptedSession]) -> int:
    """Bring the sessions' next outbound numbers level with real messages (an admin message, say a heartbeat,
    may have gone out on one of them only), so that the same 34 on both is not a gap on either. Returns how
    many were sent."""
    sent = 0
    for _ in range(100):
        numbers = {x: sim.next_outbound_seq(x) for x in sources}
        if len(set(numbers.values())) == 1:
            break
        behind = min(numbers, key=numbers.__getitem__)
        filler = sources[behind].order(BTEC_UST10Y, account="BTACCT9", side=SELL, qty=1, price="99")
        sim.send(behind, filler.ack())
        sent += 1
    return sent


def _encapsulated(r: Rehearsal, *, ebs: bool) -> None:
    a, b = r.msgw
    sim = r.simulator([a, b])
    client = r.client(sim, [a, b])
    venue = "EBS" if ebs else "BrokerTec"
    r.step(f"Log on to the MSGW segments {a.segment} and {b.segment}")
    r.start(client)
    src = _source(
        66001 if ebs else 67001,
        segment=a.segment,
        sender_comp_id="EBSFIXN01" if ebs else "EIVACPUSP",
        operator="EBSTRADER" if ebs else "GUSUS",
        location="GB" if ebs else "US,NY",
    )
    instrument = EBS_EURUSD if ebs else BTEC_UST10Y
    price = "1.08525" if ebs else "99.515625"
    order = src.order(
        instrument,
        account="EBSACCT1" if ebs else "BTACCT1",
        side=BUY,
        qty=5_000_000 if ebs else 10,
        price=price,
    )
    inners = [order.ack()]
    if ebs:
        new_price = "1.08520"
        inners += [order.pending_replace(), order.modify(price=new_price)]
    qty = order.order.order_qty
    events_sent = [
        OrderEventEntry(f"{src.exec_id()}", order.order.price, qty * 3 // 5, f"{venue} match 1"),
        OrderEventEntry(f"{src.exec_id()}", order.order.price, qty - qty * 3 // 5, f"{venue} match 2"),
    ]
    inners.append(order.fill(qty, order_events=events_sent))
    if ebs:
        rest = src.order(instrument, account="EBSACCT1", side=SELL, qty=2_000_000, price="1.08600")
        inners += [rest.ack(), rest.pending_cancel(), rest.cancel()]
    r.step(
        f"CME sends an encapsulated {venue} new-order ack and a fill with its 1795 NoOrderEvents group"
        + (", a pending replace, a modify, a pending cancel and a cancel" if ebs else "")
    )
    sim.send_many(a, inners)
    got = _business(r, len(inners))
    ack = next(e for e in got if isinstance(e, OrderAck))
    sent_ack = _fields(inners[0])
    wire = _wire_frame_of(sim, a, ack.exec_id)
    _compare(
        r,
        "new-order ack: 57, 34, 37 and 1 are decoded as sent",
        [
            ("inner 57 TargetSubID (source operator)", ack.source.operator, sent_ack[57]),
            ("inner 34 MsgSeqNum (source session)", ack.source.seq_num, sent_ack[34]),
            ("outer 34 MsgSeqNum (drop copy session)", ack.delivery.seq_num, wire.get(34)),
            ("37 OrderID", ack.order_id, sent_ack[37]),
            ("1 Account", ack.account, sent_ack[1]),
        ],
    )
    r.report(
        f"{venue} new-order ack (39=0) as decoded: the fields AutoCert+ asks you to report",
        [
            (57, "TargetSubID (outer header: your operator echoed)", wire.get(57)),
            (57, "TargetSubID (inner header: source operator)", ack.source.operator),
            (34, "MsgSeqNum (outer: drop copy session)", ack.delivery.seq_num),
            (34, "MsgSeqNum (inner: source iLink session)", ack.source.seq_num),
            (37, "OrderID", ack.order_id),
            (1, "Account", ack.account),
        ],
    )
    fill = next(e for e in got if isinstance(e, Fill))
    decoded = [(e.exec_id, e.px, e.qty, e.text) for e in fill.order_events]
    expected = [(e.exec_id, e.px, e.qty, e.text) for e in events_sent]
    r.check(
        "fill: every 1795 NoOrderEvents entry (1797, 1799, 1800, 1802) is decoded as sent",
        decoded == expected,
        f"decoded {len(decoded)} entries, sent {len(expected)}",
    )
    rows: list[tuple[int | None, str, object]] = [(1795, "NoOrderEvents", len(fill.order_events))]
    for n, entry in enumerate(fill.order_events, 1):
        rows += [
            (1797, f"#{n} OrderEventExecID", entry.exec_id),
            (1799, f"#{n} OrderEventPx", entry.px),
            (1800, f"#{n} OrderEventQty", entry.qty),
            (1802, f"#{n} OrderEventText", entry.text),
        ]
    r.report(f"{venue} fill group as decoded", rows)
    if ebs:
        pending_replace = next((e for e in got if isinstance(e, PendingReplace)), None)
        modify = next((e for e in got if isinstance(e, ModifyAck)), None)
        pending_cancel = next((e for e in got if isinstance(e, PendingCancel)), None)
        r.require(
            "the pending replace, the modify and the pending cancel were decoded as such",
            None not in (pending_replace, modify, pending_cancel),
        )
        assert pending_replace is not None and modify is not None and pending_cancel is not None
        r.check(
            "pending replace: 39=E",
            pending_replace.ord_status is OrdStatus.PENDING_REPLACE,
            str(pending_replace.ord_status),
        )
        r.check("modify: 44 is the new price", modify.price == Decimal(new_price), f"44={modify.price}")
        r.check(
            "pending cancel: 39=6",
            pending_cancel.ord_status is OrdStatus.PENDING_CANCEL,
            str(pending_cancel.ord_status),
        )
        r.report(
            "EBS pending and modify acknowledgements as decoded",
            [
                (39, "OrdStatus (pending replace)", pending_replace.ord_status),
                (44, "Price (modify)", modify.price),
                (39, "OrdStatus (pending cancel)", pending_cancel.ord_status),
            ],
        )
    _handler_got(r, got)
    client.stop()


def brokertec(r: Rehearsal) -> None:
    _encapsulated(r, ebs=False)


def ebs(r: Rehearsal) -> None:
    _encapsulated(r, ebs=True)


def trade_bust_correction(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s])
    client = r.client(sim, [s])
    r.start(client)
    src = _source(68001)
    buy = src.order(ESZ6, account="ACCT1", side=BUY, qty=5, price="4500.25")
    sell = src.order(ESZ6, account="ACCT1", side=SELL, qty=3, price="4501.00")
    inners = [buy.ack(), buy.fill(5), buy.bust(), sell.ack(), sell.fill(3), sell.correct("4501.50")]
    r.step(
        "ACCT1 buys 5 ESZ6 and the trade is busted; then sells 3 ESZ6 and the trade is corrected to 4501.50"
    )
    sim.send_many(s, inners)
    got = _business(r, len(inners))
    fills = [e for e in got if isinstance(e, Fill)]
    bust = next((e for e in got if isinstance(e, TradeBust)), None)
    correction = next((e for e in got if isinstance(e, TradeCorrection)), None)
    r.require(
        "the bust and the correction were decoded as TradeBust and TradeCorrection",
        bust is not None and correction is not None,
    )
    assert bust is not None and correction is not None
    r.check(
        "bust: 39=H, 20=1, 19 = the last 9 characters of the busted fill's 17, 31/32 of the busted trade",
        bust.ord_status is OrdStatus.TRADE_CANCEL
        and bust.exec_trans_type is ExecTransType.CANCEL
        and bust.exec_ref_id == fills[0].exec_id[-9:]
        and (bust.last_px, bust.last_qty) == (fills[0].last_px, fills[0].last_qty),
        f"39={bust.ord_status.value} 20={bust.exec_trans_type} 19={bust.exec_ref_id} 31={bust.last_px} "
        f"32={bust.last_qty}",
    )
    r.check(
        "correction: 39=G, 20=2, 19 = the original 17's last 9, 31 = the new price, 32 = the original quantity",
        correction.ord_status is OrdStatus.TRADE_CORRECTION
        and correction.exec_trans_type is ExecTransType.CORRECT
        and correction.exec_ref_id == fills[1].exec_id[-9:]
        and correction.last_px == Decimal(_fields(inners[5])[31])
        and correction.last_qty == fills[1].last_qty,
        f"39={correction.ord_status.value} 20={correction.exec_trans_type} 19={correction.exec_ref_id} "
        f"31={correction.last_px} 32={correction.last_qty}",
    )
    position = client.book.position("ACCT1", str(ESZ6.security_id))
    r.check(
        "the position nets the bust out and re-prices the corrected sell: -3 ESZ6, 1 bust, 1 correction",
        position is not None and (position.net_qty, position.busts, position.corrections) == (-3, 1, 1),
        f"net {position.net_qty}, busts {position.busts}, corrections {position.corrections}"
        if position
        else "none",
    )
    for title, event in (("Trade bust as decoded", bust), ("Trade correction as decoded", correction)):
        r.report(
            title,
            [
                (17, "ExecID", event.exec_id),
                (19, "ExecRefID", event.exec_ref_id),
                (20, "ExecTransType", event.exec_trans_type),
                (39, "OrdStatus", event.ord_status),
                (31, "LastPx", event.last_px),
                (32, "LastQty", event.last_qty),
                (37711, "MDTradeEntryID", event.md_trade_entry_id),
            ],
        )
    if position is not None:
        r.report(
            "ACCT1 ESZ6 position afterwards",
            [
                (None, "net", position.net_qty),
                (None, "busts", position.busts),
                (None, "corrections", position.corrections),
            ],
        )
    _handler_got(r, got)
    client.stop()


def spread_legs(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s])
    client = r.client(sim, [s])
    r.start(client)
    src = _source(69001)
    spread = src.spread_order(
        ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="ACCT2", qty=2, price="15.50"
    )
    inners = [spread.ack(), *spread.fill(2, "15.50", ["4500.50", "4485.00"])]
    r.step("ACCT2 buys 2 ESZ6-ESH7 calendar spreads: a spread summary fill and one fill per leg")
    sim.send_many(s, inners)
    got = _business(r, len(inners))
    summary = [e for e in got if isinstance(e, Fill) and e.is_spread_summary]
    legs = [e for e in got if isinstance(e, Fill) and e.is_spread_leg]
    r.require(
        "one spread summary (442=3) and two leg fills (442=2) were decoded",
        len(summary) == 1 and len(legs) == 2,
    )
    r.check(
        "the summary's 393 TotalNumSecurities equals the number of leg fills",
        summary[0].total_num_securities == len(legs),
        f"393={summary[0].total_num_securities}, legs {len(legs)}",
    )
    r.check(
        "summary and legs share one 527 SecondaryExecID",
        len({e.secondary_exec_id for e in (*summary, *legs)}) == 1,
        ", ".join(str(e.secondary_exec_id) for e in (*summary, *legs)),
    )
    r.check("leg fills carry no 37711 MDTradeEntryID", all(leg.md_trade_entry_id is None for leg in legs))

    def net(inst: Instrument) -> int | None:
        p = client.book.position("ACCT2", str(inst.security_id))
        return p.net_qty if p is not None else None

    r.check(
        "positions count the legs (+2 ESZ6, -2 ESH7), never the spread summary",
        (net(ESZ6), net(ESH7), net(ESZ6_ESH7)) == (2, -2, None),
        f"ESZ6 {net(ESZ6)}, ESH7 {net(ESH7)}, ESZ6-ESH7 {net(ESZ6_ESH7)}",
    )
    r.report(
        "Spread fill as decoded",
        [
            (442, f"{e.security_desc} MultiLegReportingType", e.multi_leg_reporting_type)
            for e in (*summary, *legs)
        ]
        + [(393, "TotalNumSecurities (summary)", summary[0].total_num_securities)]
        + [(527, "SecondaryExecID", summary[0].secondary_exec_id)]
        + [(None, "position ESZ6 / ESH7", f"{net(ESZ6)} / {net(ESH7)}")],
    )
    r.step("The spread trade is busted: the summary and both legs")
    busts = spread.bust()
    sim.send_many(s, busts)
    got = _business(r, len(inners) + len(busts))
    r.check(
        "the spread bust reverses both legs (positions back to 0)",
        r.wait_until(lambda: (net(ESZ6), net(ESH7)) == (0, 0), 10),
        f"ESZ6 {net(ESZ6)}, ESH7 {net(ESH7)}",
    )
    _handler_got(r, got)
    client.stop()


def logout_during_resend(r: Rehearsal) -> None:
    s = r.cgw
    sim = r.simulator([s], resend_delay=2.0)
    client = r.client(sim, [s])
    r.start(client)
    src = _source(70001)
    early = _fills(src, 2)
    sim.send_many(s, early)
    _business(r, 2)
    missing = _fills(src, 3)
    live = _fills(src, 1)
    r.step("Three fills do not reach the client; the next one does: the client sees the gap and asks for it")
    sim.drop_next(s, len(missing))
    gap = sim.send_many(s, missing)
    last = sim.send_many(s, live)[-1]
    r.require("the client sent a Resend Request", r.wait_until(lambda: bool(sim.received(s, "2"))))
    r.step("CME takes 2 s to answer; the client is told to stop while the resend is in flight")
    client.stop()
    wire = sim.transcript(s)
    resent = [i for i, f in enumerate(wire) if f.direction == "out" and f.seq in gap]
    logouts = [i for i, f in enumerate(wire) if f.direction == "in" and f.msg_type == "5"]
    r.check(
        "CME's answer was written in full", len(resent) == len(gap), f"{len(resent)} of {len(gap)} frames"
    )
    r.check(
        "the client's Logout reaches CME only after the last frame of the resend answer",
        bool(logouts) and bool(resent) and logouts[0] > max(resent),
        f"Logout is message {logouts[0] + 1 if logouts else '-'} of the transcript, the answer ends at "
        f"{max(resent) + 1 if resent else '-'}",
    )
    processed = tags(wire[logouts[0]].raw).get(369, "") if logouts else ""
    r.check(
        f"the Logout's 369 LastMsgSeqNumProcessed shows the whole answer was processed first (369 >= {last})",
        processed.isdigit() and int(processed) >= last,
        f"369={processed or '-'}",
    )
    got = r.recorder.business()
    r.check(
        "every fill, the resent ones included, was delivered before the client stopped",
        [e.exec_id for e in got] == _exec_ids(early + missing + live),
        f"{len(got)} delivered",
    )
    _logout_exchange(r, sim, s)
    _audit_ok(r, client)
    _handler_got(r, got)


# ---------------------------------------------------------------------------------------------- the list

_FO = "Drop Copy 4.0 (futures & options)"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "logon-cgw",
        "Logon Message (CGW)",
        _FO,
        "AC-LOGONCGW",
        "A signed Logon to a Convenience Gateway target is accepted, heartbeats work, and Logout is confirmed.",
        (
            "Logon",
            "Receive Logon ack",
            "Receive Test Request",
            "Send Heartbeat",
            "Send Logout",
            "Receive Logout",
        ),
        logon_cgw,
    ),
    Scenario(
        "logon-msgw",
        "Logon Message (MSGW, two market segments)",
        _FO,
        "AC-BTEC RecMessStr, spec §3.4",
        "One FIX session per market segment, logged on concurrently with the same 49/50 and 57 = segment id.",
        (
            "Logon to segment A and segment B",
            "Receive both Logon acks",
            "Test Request / Heartbeat on each",
            "Logout",
        ),
        logon_msgw,
    ),
    Scenario(
        "respond-to-resend",
        "Respond to Resend Request",
        _FO,
        "AC-RESPRES",
        "When CME asks for the client's messages again, the client answers with a Sequence Reset-Gap Fill.",
        (
            "Send Heartbeat",
            "Receive Resend Request",
            "Send Sequence Reset-Gap Fill (123=Y)",
            "Heartbeat exchange",
        ),
        respond_to_resend,
    ),
    Scenario(
        "failover",
        "Logon Process with Failover (CGW)",
        _FO,
        "AC-FAILOVER, spec §5.1",
        "After a gateway failover the client logs on to the backup, sees CME's sequence jump by 4,000 and recovers "
        "the gap with Resend Requests of at most 2,500, without losing or doubling a fill.",
        (
            "Logon to primary",
            "Logon on backup gateway",
            "Receive Logon ack (seq +4000)",
            "Send Resend Request(s)",
            "Receive Gap Fill(s)",
            "Heartbeats",
            "Logout exchange",
        ),
        failover,
    ),
    Scenario(
        "beginning-of-week",
        "Beginning of Week Logon",
        "EBS",
        "AC-EBS LogonBeg, spec §2.1",
        "At the first logon of a new trading week both sides start again at 1 (34=1, 141=N).",
        (
            "Logon with 34=1 for the beginning of the week",
            "Receive Logon ack",
            "Receive Test Request",
            "Send Heartbeat",
        ),
        beginning_of_week,
    ),
    Scenario(
        "mid-week-logon",
        "Mid Week Logon (Logout with 789)",
        "EBS",
        "AC-EBS LogonMid, spec §2.1, §1.7",
        "CME's Logout with 789 names the 34 it expects; the next Logon carries exactly that number, and nothing "
        "else is sent before it (traffic before a valid logon counts towards CME's port closure).",
        (
            "Logon",
            "Receive Logout with 789",
            "Logon with the correct 34",
            "Receive Logon ack",
            "Receive Test Request",
            "Send Heartbeat",
        ),
        mid_week_logon,
    ),
    Scenario(
        "key-rotation",
        "Mid-Week Key Rotation",
        "EBS",
        "AC-EBS MdWkRot, spec §1.9",
        "Log on with key pair 1, log out, log on with key pair 2: the new key file is used and the sequence goes "
        "on; and a running client picks up a changed key file for its next logon.",
        ("Logon with key pair 1", "Logout", "Logon with key pair 2"),
        key_rotation,
    ),
    Scenario(
        "order-mass-action",
        "Receive Encapsulated Message from Simulated Order Mass Action",
        _FO,
        "AC-OMA, spec §4.5",
        "Order Mass Action Reports (35=BZ) are decoded with the fields AutoCert+ checks, with and without "
        "cancelled orders.",
        (
            "Receive 35=n with 35=BZ",
            "Verify 1300, 1374, 1375, 533, 534 {41, 84, 535}, 893",
            "Accepted, no orders cancelled",
        ),
        order_mass_action,
    ),
    Scenario(
        "message-stream",
        "Receive Message Stream (No Resend)",
        "BrokerTec",
        "AC-BTEC RecMessStr, spec §3.4",
        "MSGW sessions are sequenced per segment: the same SessionID and MsgSeqNum on two segments are two "
        "messages, both processed, without any Resend Request.",
        (
            "Concurrent logons to two segments",
            "Receive messages with the same 34 on both",
            "Process both, no resend",
        ),
        message_stream,
    ),
    Scenario(
        "brokertec-encapsulated",
        "Receive and Process Encapsulated Message (BrokerTec)",
        "BrokerTec",
        "AC-BTEC Encap, spec §3.3",
        "An encapsulated new-order ack and a fill with its NoOrderEvents group, decoded into the fields AutoCert+ "
        "asks you to report.",
        ("Receive new-order ack: report 57, 34, 37, 1", "Receive fill: report 1795/1797/1799/1800/1802"),
        brokertec,
    ),
    Scenario(
        "ebs-encapsulated",
        "Receive and Process Encapsulated Message (EBS)",
        "EBS",
        "AC-EBS 003, spec §3.3, §4.2",
        "EBS adds pending replace (39=E) and pending cancel (39=6) acknowledgements; AutoCert+ asks for their 39, the "
        "modify's 44 and the fill group.",
        (
            "Receive new-order ack: report 57, 34, 37, 1",
            "Receive fill: report 1795/1797/1799/1800/1802",
            "Receive pending replace: report 39; modify: report 44",
            "Receive pending cancel: report 39",
        ),
        ebs,
    ),
    Scenario(
        "trade-bust-correction",
        "Trade Bust and Trade Correction",
        _FO,
        "spec §4.2, §4.4",
        "A trade cancel (39=H) and a trade correction (39=G) refer to their fills by 19 ExecRefID; positions net the "
        "bust out and re-price the correction.",
        ("Receive fill", "Receive trade bust", "Receive fill", "Receive trade correction"),
        trade_bust_correction,
    ),
    Scenario(
        "spread-legs",
        "Spread Fill with Legs",
        _FO,
        "spec §4.4",
        "A spread fill arrives as a summary (442=3, 393 legs) and leg fills (442=2) linked by 527; positions count "
        "the legs only, and a spread bust reverses them.",
        ("Receive spread summary fill", "Receive leg fills", "Receive spread bust"),
        spread_legs,
    ),
    Scenario(
        "logout-during-resend",
        "Logout while a Resend is in Flight",
        "CME resend rules",
        "W-DCRESEND, spec §2.4",
        "CME asks clients to wait for an in-flight resend to complete before logging out or failing over: the "
        "Logout goes out only after the answer was received in full.",
        (
            "Send Resend Request",
            "Stop the client while CME answers",
            "Receive the whole answer",
            "Send Logout",
        ),
        logout_during_resend,
    ),
)

_BY_NAME = {s.name: s for s in SCENARIOS}


def scenario_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; ``KeyError`` names the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(_BY_NAME)}") from None


__all__ = ["SCENARIOS", "Failed", "Scenario", "get_scenario", "scenario_names"]
