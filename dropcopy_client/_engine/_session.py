"""One drop copy FIX session inside the engine process: its QuickFIX initiator, Application and recovery.

Each session has an initiator of its own, so one session can be restarted (to capture a frame QuickFIX cannot
parse) without touching the others. Rules every callback here lives by (engine notes §4):

* every callback is wrapped in ``try/except BaseException``: a Python exception that reaches the engine
  wedges or kills the process;
* a callback's message is borrowed: anything kept is copied (``toString()``) inside the callback;
* no Python lock is held across a QuickFIX call;
* the per-message path (``fromApp``) is one ``toString()``, a find, and one ``deque.append``.

Where QuickFIX moves the inbound number without delivering a message, this module either undoes it or
reports it (the user's process then accounts for every number, see ``_recovery._ledger``):

* a Logout answering our Logon is not part of the stream we are logged on to: it never consumes a number,
  and QuickFIX's Logout reply to it is suppressed (CME counts traffic before a valid logon against the
  port closure); a 789 it carries becomes our next Logon's 34;
* a Logout or Reject whose 34 is not the expected number is passed on ``early`` and QuickFIX's +1 is undone;
* a Reject QuickFIX itself sends for an inbound message (validation) advanced past that message: undone,
  and the number is *struck*; so is a number whose frame QuickFIX cannot parse ("Invalid message"), which
  it drops without advancing. After ``poison_strikes`` strikes on the same number the frame is declared lost
  (with its raw bytes, captured by turning the session's incoming log on after the second strike) and the
  session moves on;
* a SequenceReset-Reset is passed on as RESET: the user's process declares what it skipped lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import quickfix as fix

from dropcopy_client._engine._protocol import ADMIN, APP, GAPFILL, LOST, NOTICE, RESET, Notice
from dropcopy_client._engine._recovery import SessionRecovery
from dropcopy_client._engine._settings import build_settings
from dropcopy_client._recovery import ResendPolicy
from dropcopy_client._spec import CME, SessionSpec
from dropcopy_client._wire import redact
from dropcopy_client.auth import SIGNATURE_METHOD, ApiKey, canonical_logon, sign

if TYPE_CHECKING:
    from dropcopy_client._engine._child import EngineChild

log = logging.getLogger("dropcopy_client.engine")

_CONNECTING = re.compile(r"^Connecting to (\S+) on port (-?\d+)")
_TOO_HIGH = re.compile(r"^MsgSeqNum too high, expecting (\d+) but received (\d+)")
_SEQ = re.compile(r"[\x01|]34=(\d+)[\x01|]")
_INVALID = "Invalid message"
BACKUP_REFUSAL = "Backup session not allowed"
#: at most this many engine events wait for a session's thread (a session that never calls back again)
_EVENTS_CAP = 100_000


def _format_time(now: dt.datetime) -> str:
    now = now.astimezone(dt.UTC)
    return now.strftime("%Y%m%d-%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


def _seq_of(raw: str) -> int:
    """34 of a QuickFIX ``toString()`` (header fields come sorted: 8, 9, 35, then 34)."""
    i = raw.find("\x0134=")
    j = raw.find("\x01", i + 4)
    return int(raw[i + 4 : j])


class EngineSession:
    """Everything the engine process keeps for one FIX session."""

    def __init__(self, child: EngineChild, index: int, spec: SessionSpec, cfg: dict[str, Any]) -> None:
        self.child = child
        self.index = index
        self.spec = spec
        self.name = spec.name
        self.target = spec.sender_comp_id
        self.key: ApiKey = spec.key
        self.qfid = spec.quickfix_id
        self.sid = fix.SessionID("FIX.4.2", spec.sender_comp_id, CME, spec.segment)
        self.events = child.hub.register(self.qfid)
        self.recovery = SessionRecovery(
            self.name, self.session, self.sid, self, ResendPolicy(self.name, cap=child.resend_cap)
        )
        self._lock = threading.Lock()  # guards the state below; never held across a QuickFIX call
        self.logged_on = False
        self.logon_at = 0.0
        self.attempt: int | None = None  # LogonBudget id of the Logon in flight
        self.attempt_outcome = "refused"
        self.last_logon_seq: int | None = None
        self.adopt_seq: int | None = None
        self.adopted_once = False
        self.locked = False
        self.held: str | None = None
        self.resync_to: int | None = None
        self.resyncing = False
        self.refusal_logout = False
        self.reset_requested = False
        self.failures = 0  # consecutive logon attempts that did not end in a session
        self.quick_ends = 0  # consecutive sessions that ended soon after logon
        self.reenable_at = 0.0
        self.throttle_noted = False
        self.capture = False
        self.last_resend_seq: str | None = None  # 34 of our last ResendRequest, to recognise a Reject of it
        self._strikes: dict[int, int] = {}
        self._evidence: dict[int, str] = {}
        self._frames: deque[tuple[int, bytes]] = deque(maxlen=64)  # captured incoming frames (seq, raw)
        self._session: Any = None
        self._initiator: Any = None
        #: the initiator runs: the logon gate starts it when the session may first log on
        self.started = False
        self._app: SessionApp | None = None
        self._start_cfg = cfg

    # ------------------------------------------------------------------------------------------ engine
    def session(self) -> Any:
        if self._session is None:
            self._session = fix.Session.lookupSession(self.sid)
        return self._session

    def build(self, *, capture: bool = False) -> None:
        """Create the initiator (sessions and stores exist from here on; nothing connects until start)."""
        child = self.child
        text = build_settings(
            [self.spec],
            store_dir=child.store_dir,
            dictionary=child.dictionary,
            reconnect_interval=child.reconnect_interval,
            logon_timeout=child.logon_timeout,
            capture_incoming=capture,
        )
        self.capture = capture
        self._settings = fix.SessionSettings()
        self._settings.setFromString(text)
        self._store = fix.FileStoreFactory(self._settings)
        self._logs = fix.ScreenLogFactory(self._settings)
        self._app = SessionApp(self)
        self._initiator = fix.ThreadedSocketInitiator(self._app, self._store, self._settings, self._logs)
        self._session = None

    def start(self) -> None:
        """Start the initiator: it connects at once if the session is enabled (QuickFIX's first connect is
        immediate; later ones wait for its reconnect timer, up to ``ReconnectInterval``)."""
        self.started = True
        self._initiator.start()

    def stop(self, force: bool = False) -> None:
        if self._initiator is not None and self.started:
            self._initiator.stop(force)

    def release(self) -> None:
        """Stop and drop the initiator, so the session leaves QuickFIX's process-wide registry."""
        self.stop(True)
        self._initiator = None
        self._session = None

    def rebuild(self, *, capture: bool) -> None:
        """Restart this session's engine with the incoming log on (``capture``) or off; its store is kept."""
        log.info(
            "%s: restarting the session's engine (%s)", self.name, "capturing frames" if capture else "normal"
        )
        with self._lock:
            wanted, self.resync_to = self.resync_to, None  # taken before onLogout (during release) could
        session = self.session()
        expected = int(session.getExpectedTargetNum()) if session is not None else None
        self.release()
        self.started = False
        self.build(capture=capture)
        target = wanted if wanted is not None else expected
        if target is not None:
            self.session().setNextTargetMsgSeqNum(target)
        self.recovery.restart()
        self.disable()
        self.start()

    def enable(self) -> None:
        session = self.session()
        if session is not None and not session.isEnabled():
            session.logon()

    def disable(self) -> None:
        session = self.session()
        if session is not None and session.isEnabled():
            session.logout()

    def is_enabled(self) -> bool:
        session = self.session()
        return bool(session is not None and session.isEnabled())

    # ------------------------------------------------------------------------------------------ emitter
    def notice(self, code: str, payload: object) -> None:
        self.child.outbox.put((NOTICE, self.index, code, payload, time.time_ns()))

    def lost(self, begin: int, end: int, reason: str, raw: bytes | None) -> None:
        self.child.outbox.put((LOST, self.index, begin, end, time.time_ns(), reason, raw))

    # ------------------------------------------------------------------------------------------ events
    def take_events(self) -> None:
        """Read the event pipe and act on this session's engine events, in order (its own thread)."""
        self.child.hub.drain()
        events = self.events
        if len(events) > _EVENTS_CAP:
            log.warning(
                "%s: %d engine events waiting; dropping the oldest", self.name, len(events) - _EVENTS_CAP
            )
            while len(events) > _EVENTS_CAP:
                events.popleft()
        while events:
            try:
                kind, text = events.popleft()
            except IndexError:
                return
            if kind == "incoming":
                # QuickFIX's ScreenLog writes SOH as "|": give the frame back its wire separators
                found = _SEQ.search(text)
                if found:
                    raw = text.replace("|", "\x01").encode("utf-8", "surrogateescape")
                    self._frames.append((int(found.group(1)), raw))
                continue
            self._on_event(text)

    def _on_event(self, text: str) -> None:
        log.debug("%s: engine: %s", self.name, text)
        self.recovery.on_engine_event(text)
        high = _TOO_HIGH.match(text)
        if high is not None:
            expected, received = int(high.group(1)), int(high.group(2))
            request = self.recovery.last_request
            if request is not None and request[0] == expected and expected < received <= request[1]:
                # CME is answering our request, but the first number it had to send did not get through
                self._suspect(
                    expected,
                    f"message {expected} did not arrive although CME answered the resend request "
                    f"{request[0]}-{request[1]}",
                )
            return
        match = _CONNECTING.match(text)
        if match:
            port = int(match.group(2)) & 0xFFFF  # QuickFIX keeps the port in a short (notes §2)
            self.notice(Notice.CONNECTING, f"{match.group(1)}:{port}")
        elif text.startswith(_INVALID):
            session = self.session()
            expected = int(session.getExpectedTargetNum()) if session is not None else 0
            self.notice(Notice.BAD_FRAME, {"text": text, "expected": expected})
            self._suspect(expected, f"QuickFIX cannot parse the frame: {text}")
        elif text.startswith(("Timed out", "Disconnecting", "Socket Error", "Message ")):
            self.notice(Notice.ENGINE, text)

    # ------------------------------------------------------------------------------------------ strikes
    def _suspect(self, seq: int, text: str) -> None:
        """``seq`` looks like a number that cannot get through (evidence ``text``). If the engine still
        expects it a moment later, that is a strike against it: the session asks again (QuickFIX may be
        wedged waiting), and after ``poison_strikes`` strikes the number is declared lost."""
        first = seq not in self._evidence
        if first or text.startswith("QuickFIX"):  # what QuickFIX said beats "it did not arrive"
            self._evidence[seq] = text
        if first:
            timer = threading.Timer(
                self.child.strike_after, lambda: self.child.defer(lambda: self._check(seq))
            )
            timer.daemon = True
            timer.start()

    def _check(self, seq: int) -> None:
        self.take_events()  # the session may be wedged: no callback has taken its events since
        text = self._evidence.pop(seq, None)
        session = self.session()
        if text is None or session is None or int(session.getExpectedTargetNum()) != seq:
            return
        strikes = self._strikes[seq] = self._strikes.get(seq, 0) + 1
        self.notice(Notice.STRIKE, {"seq": seq, "strikes": strikes, "text": text})
        limit = self.child.poison_strikes
        if strikes >= limit:
            raw = next((frame for number, frame in reversed(self._frames) if number == seq), None)
            why = f"{text}; the same number failed {strikes} times, so it is given up"
            if raw is None:
                why += " (its raw bytes were not captured: QuickFIX's parser never delimited it)"
            log.error("%s: message %d is lost: %s", self.name, seq, why)
            self.recovery.give_up(seq, why, redact(raw) if raw is not None else None)
            self._strikes.pop(seq, None)
            self.resync(seq + 1, f"message {seq} given up", capture=False)
        else:
            # After the second failure, turn the incoming log on, so the next copy of the frame is kept raw.
            capture = True if strikes == limit - 1 else None
            self.resync(seq, f"message {seq} did not get through ({text})", capture=capture)

    def passed(self, seq: int) -> None:
        """The engine processed ``seq``: strikes and evidence below it are history."""
        if self._strikes:
            for number in [n for n in self._strikes if n <= seq]:
                del self._strikes[number]
            if self.capture and not self._strikes:
                self.child.defer(lambda: self.resync(None, "frame capture no longer needed", capture=False))
        if self._evidence:
            for number in [n for n in self._evidence if n <= seq]:
                del self._evidence[number]

    # ------------------------------------------------------------------------------------------ commands
    def resync(self, next_expected: int | None, reason: str, *, capture: bool | None = None) -> None:
        """Log out, make ``next_expected`` the next inbound number, log on again (or rebuild to capture).

        Runs on the engine process's task thread. Waits (briefly) for a resend in flight to be answered
        first, as CME asks (spec §2.4). The number is applied in onLogout when the session was connected
        (nothing can arrive in between), else here; the gate does not reconnect the session meanwhile.
        """
        self.child.wait_for_resend(self, 5.0)
        self.notice(Notice.RESYNC, {"next_expected": next_expected, "reason": reason})
        log.info("%s: %s; asking again from %s", self.name, reason, next_expected)
        with self._lock:
            self.resyncing = True
            self.resync_to = next_expected
        try:
            if capture is not None and capture != self.capture:
                self.rebuild(capture=capture)
                return
            self.disable()
            self.child.wait_logged_out(self, 10.0)
            with self._lock:
                pending, self.resync_to = self.resync_to, None
            session = self.session()
            if pending is not None and session is not None:
                session.setNextTargetMsgSeqNum(pending)
                self.recovery.restart()
        finally:
            with self._lock:
                self.resyncing = False
                self.reenable_at = 0.0

    def hold(self, reason: str) -> None:
        with self._lock:
            self.held = reason
        self.disable()
        self.notice(Notice.HELD, reason)

    def resume(self, reason: str) -> None:
        with self._lock:
            self.held = None
            self.reenable_at = 0.0
        self.notice(Notice.RESUMED, reason)

    def unlock(self) -> None:
        with self._lock:
            self.locked = False
            self.adopted_once = False
            self.failures = 0
            self.reenable_at = 0.0

    def wants_connection(self) -> bool:
        with self._lock:
            return not self.locked and self.held is None and not self.resyncing and not self.child.stopping

    # ------------------------------------------------------------------------------------------ logon
    def prepare_logon(self, message: Any, header: Any) -> None:
        session = self.session()
        for tag in (98, 95, 96, 122):
            if message.isSetField(tag):
                message.removeField(tag)
            if header.isSetField(tag):
                header.removeField(tag)
        with self._lock:
            reset, self.reset_requested = self.reset_requested, False
            adopt, self.adopt_seq = self.adopt_seq, None
        message.setField(141, "Y" if reset else "N")
        if reset:
            # With 141=Y the engine resets its store and rewrites 34 to 1 *after* this callback (engine
            # notes §1.1): sign, and send, what will actually be on the wire.
            header.setField(34, "1")
            header.setField(369, "0")
        elif adopt is not None and session is not None:
            # Mid-week logon: CME's Logout said which 34 it expects (789). QuickFIX counts this Logon after
            # this callback, so its store continues from 789 + 1.
            session.setNextSenderMsgSeqNum(adopt)
            header.setField(34, str(adopt))
        offset = self.child.clock_offset
        if offset:
            header.setField(52, _format_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)))
        name, version, vendor = self.child.app_fields
        message.setField(1603, name)
        message.setField(1604, version)
        message.setField(1605, vendor)
        key = self.key
        key_id = key.access_key_id
        message.setField(354, str(len(key_id)))
        message.setField(355, key_id)
        values = {tag: header.getField(tag) for tag in (34, 49, 50, 52, 57, 142, 369)}
        values[108] = message.getField(108)
        values[1603], values[1604], values[1605] = name, version, vendor
        signature = sign(key.secret.reveal(), canonical_logon(values))
        message.setField(1400, SIGNATURE_METHOD)
        message.setField(1401, str(len(signature)))
        message.setField(1402, signature)
        seq = int(values[34])
        attempt = self.child.budget.begin(self.target)  # durable before the Logon can leave
        with self._lock:
            self.attempt = attempt
            self.attempt_outcome = "refused"
            self.last_logon_seq = seq
        self.notice(Notice.LOGON_SENT, {"seq": seq, "key_id": key_id, "reset": reset})

    def on_logon_refused(self, message: Any, seq: int) -> None:
        """A Logout answering our Logon (fromAdmin, not logged on)."""
        text = message.getField(58) if message.isSetField(58) else ""
        next_expected = int(message.getField(789)) if message.isSetField(789) else None
        sending_time = message.getHeader().getField(52) if message.getHeader().isSetField(52) else None
        session = self.session()
        with self._lock:
            sent = self.last_logon_seq
            if BACKUP_REFUSAL in text:
                self.attempt_outcome = "not-counted"
                outcome = "backup"
            elif (
                next_expected is not None
                and sent is not None
                and next_expected > sent
                and not self.adopted_once
            ):
                # Mid-week logon with a 34 CME has already seen (spec §2.1): its Logout says what it expects.
                # (CME accepts a 34 above what it expects, and then asks us for the gap.)
                self.adopted_once = True
                outcome = "adopt"
            else:
                self.locked = True
                outcome = "rejected"
            if next_expected is not None and next_expected > 0:
                self.adopt_seq = next_expected
        if outcome == "backup":
            self.notice(Notice.BACKUP_REFUSED, text)
        elif outcome == "adopt":
            self.notice(Notice.ADOPTED, {"seq": next_expected, "text": text})
        else:
            self.notice(
                Notice.REJECTED,
                {"text": text, "next_expected": next_expected, "sending_time": sending_time, "locked": True},
            )
        if session is not None:
            # Not part of the stream we are logged on to: undo the number QuickFIX counts after this callback,
            # and drop the connection now so QuickFIX's Logout reply never goes out.
            session.setNextTargetMsgSeqNum(int(session.getExpectedTargetNum()) - 1)
            session.disconnect()


class SessionApp(fix.Application):  # type: ignore[misc]
    """The QuickFIX Application of one session."""

    def __init__(self, owner: EngineSession) -> None:
        super().__init__()
        self.o = owner
        self._put = owner.child.outbox.put
        self._index = owner.index
        self._recovery = owner.recovery

    def onCreate(self, session_id: Any) -> None:
        pass

    def onLogon(self, session_id: Any) -> None:
        try:
            o = self.o
            o.take_events()
            with o._lock:
                o.logged_on = True
                o.logon_at = time.monotonic()
                attempt, o.attempt = o.attempt, None
                o.failures = 0
                o.adopted_once = False
                o.throttle_noted = False
            if attempt is not None:
                o.child.budget.end(o.target, attempt, "ok")
            o.child.poke_gate()  # a place in the logon budget is free: the next session need not wait a tick
            o.notice(Notice.LOGGED_ON, {"key_id": o.key.access_key_id})
        except BaseException:
            log.exception("onLogon failed")

    def onLogout(self, session_id: Any) -> None:
        try:
            o = self.o
            o.take_events()
            child = o.child
            now = time.monotonic()
            with o._lock:
                was_on, o.logged_on = o.logged_on, False
                attempt, o.attempt = o.attempt, None
                outcome = o.attempt_outcome
                refused, o.refusal_logout = o.refusal_logout, False
                resync_to, o.resync_to = o.resync_to, None
                up_for = now - o.logon_at if was_on else 0.0
                if was_on:
                    # Sessions that keep ending right after logon back off exponentially (capped).
                    o.quick_ends = o.quick_ends + 1 if up_for < child.quick_end else 0
                    delay = child.backoff(o.quick_ends) if o.quick_ends else 0.0
                else:
                    o.failures += 1
                    delay = child.backoff(o.failures)
                o.reenable_at = now + delay
            if attempt is not None:
                child.budget.end(o.target, attempt, outcome)
                child.poke_gate()
            o.recovery.on_disconnect(refused=refused)
            session = o.session()
            if session is not None and resync_to is not None:
                session.setNextTargetMsgSeqNum(resync_to)
                o.recovery.restart()
            if delay > 0 or not o.wants_connection():
                o.disable()  # the gate enables it again when it may log on
            o.notice(Notice.LOGGED_OUT, {"after_seconds": up_for, "was_logged_on": was_on, "backoff": delay})
        except BaseException:
            log.exception("onLogout failed")

    def toAdmin(self, message: Any, session_id: Any) -> None:
        try:
            o = self.o
            o.take_events()
            header = message.getHeader()
            session = o.session()
            header.setField(50, o.spec.operator)
            header.setField(57, o.spec.segment)
            header.setField(142, o.spec.location)
            if session is not None:
                header.setField(369, str(int(session.getExpectedTargetNum()) - 1))
            msg_type = header.getField(35)
            if msg_type == "A":
                o.prepare_logon(message, header)
            elif msg_type == "2":
                o.last_resend_seq = header.getField(34)
                self._recovery.on_resend_out(message)
            elif msg_type == "3":
                self._our_reject(message, "3")
        except BaseException:
            log.exception("toAdmin failed; the message may go out unsigned and CME will refuse it")

    def toApp(self, message: Any, session_id: Any) -> None:
        try:
            if message.getHeader().getField(35) == "j":
                self._our_reject(message, "j")
        except BaseException:
            log.exception("toApp failed")

    def _our_reject(self, message: Any, kind: str) -> None:
        """QuickFIX rejects an inbound message it failed to validate, and has already counted it as processed
        (engine notes §2.1): undo that, so it is asked for again, and strike the number."""
        if not message.isSetField(45):
            return
        ref = int(message.getField(45))
        ref_type = message.getField(372) if message.isSetField(372) else ""
        if ref_type in ("A", "4", "5"):
            return
        session = self.o.session()
        if session is None or int(session.getExpectedTargetNum()) != ref + 1:
            return
        session.setNextTargetMsgSeqNum(ref)  # toAdmin/toApp: nothing adds one after this
        reason = message.getField(58) if message.isSetField(58) else "rejected"
        self.o._suspect(ref, f"QuickFIX rejected the message (35={kind}): {reason}")

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        try:
            o = self.o
            o.take_events()
            header = message.getHeader()
            msg_type = header.getField(35)
            seq = int(header.getField(34))
            session = o.session()
            expected = int(session.getExpectedTargetNum())
            now = time.time_ns()
            recovery = self._recovery
            put = self._put
            if msg_type == "5":
                self._logout(message, seq, expected, now)
                return
            if msg_type == "A":
                put((ADMIN, self._index, seq, now, "A", seq != expected, None))
                recovery.on_logon_ack(seq, expected)
            elif msg_type == "4":
                new_seq = int(message.getField(36))
                if message.isSetField(123) and message.getField(123) == "Y":
                    put((GAPFILL, self._index, seq, new_seq, now))
                    recovery.on_gap_fill(seq, new_seq)
                    o.passed(new_seq - 1)
                else:
                    put((RESET, self._index, seq, new_seq, now))
                    log.warning(
                        "%s: CME reset the sequence to %d (SequenceReset-Reset at 34=%d)",
                        o.name,
                        new_seq,
                        seq,
                    )
                    recovery.restart()
            elif msg_type == "3":
                early = seq != expected
                if early:
                    session.setNextTargetMsgSeqNum(expected - 1)  # QuickFIX counts it as the next message
                text = message.getField(58) if message.isSetField(58) else ""
                put((ADMIN, self._index, seq, now, "3", early, {"text": text}))
                ref = message.getField(45) if message.isSetField(45) else None
                about_resend = (message.isSetField(372) and message.getField(372) == "2") or (
                    ref is not None and ref == o.last_resend_seq
                )
                log.warning("%s: session Reject of our message %s: %r", o.name, ref, text)
                if about_resend:
                    recovery.on_refusal("reject", text)
            elif msg_type == "2":
                early = seq != expected
                put((ADMIN, self._index, seq, now, "2", early, None))
                if not early and recovery.watching:
                    recovery.on_message(seq)
            else:
                put((ADMIN, self._index, seq, now, msg_type, False, None))
                if recovery.watching:
                    recovery.on_message(seq)
                o.passed(seq)
        except BaseException:
            log.exception("fromAdmin failed")

    def _logout(self, message: Any, seq: int, expected: int, now: int) -> None:
        o = self.o
        with o._lock:
            logged_on = o.logged_on
        if not logged_on:
            o.on_logon_refused(message, seq)
            return
        session = o.session()
        early = seq != expected
        if early:
            session.setNextTargetMsgSeqNum(expected - 1)  # nextLogout adds one whatever the number
        text = message.getField(58) if message.isSetField(58) else ""
        info: dict[str, object] = {"text": text}
        if message.isSetField(789):
            info["next_expected"] = int(message.getField(789))
        self._put((ADMIN, self._index, seq, now, "5", early, info))
        asked = o.child.stopping or not session.isEnabled()  # our own logout being confirmed
        log.log(
            logging.INFO if asked else logging.WARNING, "%s: CME logged the session out: %r", o.name, text
        )
        if o.recovery.in_flight is not None and o.child.refuses(text):
            with o._lock:
                o.refusal_logout = True
            o.recovery.on_refusal("logout", text)

    def fromApp(self, message: Any, session_id: Any) -> None:
        try:
            raw = message.toString()
            seq = _seq_of(raw)
            recovery = self._recovery
            if recovery.watching or self.o.capture:
                self.o.take_events()
                self._put((APP, self._index, seq, time.time_ns(), raw))
                recovery.on_message(seq)
                self.o.passed(seq)
            else:
                self._put((APP, self._index, seq, time.time_ns(), raw))
        except BaseException:
            log.exception("fromApp failed; the message is asked for again from the journal's position")


def store_dir_of(data_dir: Path) -> Path:
    return Path(data_dir) / "store"
