"""The QuickFIX ``Application`` adapter: signs Logons, stamps CME headers, copies messages off the engine thread.

Rules this module lives by (engine notes §4):
* every callback is wrapped in ``try/except BaseException``: a Python exception that reaches the engine
  wedges or kills the process;
* a callback's message is borrowed: anything kept is copied (``toString()``) inside the callback;
* no application lock is held across a QuickFIX call (the engine holds the session mutex in ``toAdmin``);
* the per-message path is one ``toString()`` and one ``queue.put``: decoding happens on the dispatcher.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import quickfix as fix

from dropcopy_client._engine._recovery import SessionRecovery
from dropcopy_client._recovery import ResendPolicy
from dropcopy_client._spec import CME, SessionSpec
from dropcopy_client._wire import redact_text
from dropcopy_client.auth import SIGNATURE_METHOD, canonical_logon, sign

log = logging.getLogger("dropcopy_client.engine")

# Queue item kinds: (kind, session name, payload, receive time ns)
APP = 0  # payload: raw outer message (str, surrogateescape)
LOGON = 1  # payload: None
LOGOUT = 2  # payload: None
ADMIN_IN = 3  # payload: raw admin message (str) -- Logon ack, Logout, Reject, SequenceReset, ResendRequest
ADMIN_OUT = 4  # payload: (msg type, {tag: value}) of an admin message we sent (secret fields never included)
NOTICE = 5  # payload: (code, text) -- decisions taken on the engine thread (lock-out, sequence adoption)

Put = Callable[[tuple[int, str, Any, int]], None]

# Logon attempts that did not end in a logged-on session, counted per session: CME closes the port
# on the fifth invalid logon inside 60 seconds (spec §1.7), so the SDK never makes a fifth attempt.
MAX_FAILED_LOGONS = 4
FAILED_LOGON_WINDOW = 60.0
#: longest pause between logon attempts after consecutive failures (seconds)
BACKOFF_CAP = 30.0


def _format_time(now: dt.datetime) -> str:
    now = now.astimezone(dt.UTC)
    return now.strftime("%Y%m%d-%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


class EngineApplication(fix.Application):  # type: ignore[misc]
    """One instance serves every session of a client."""

    def __init__(
        self,
        specs: dict[str, SessionSpec],
        put: Put,
        *,
        app_name: str,
        app_version: str,
        app_vendor: str,
        clock: Callable[[], dt.datetime] | None = None,
        resend_cap: int = 2500,
        reconnect_interval: int = 5,
    ) -> None:
        super().__init__()
        self._reconnect_interval = reconnect_interval
        self._consecutive: dict[str, int] = {}
        self._by_qfid = {spec.quickfix_id: spec for spec in specs.values()}
        self.recovery = {
            spec.name: SessionRecovery(
                spec.name,
                fix.SessionID("FIX.4.2", spec.sender_comp_id, CME, spec.segment),
                put,
                ResendPolicy(spec.name, cap=resend_cap),
            )
            for spec in specs.values()
        }
        self._resend_seq: dict[str, str] = {}  # 34 of our last ResendRequest, to recognise a Reject of it
        self._put = put
        self._app = (app_name, app_version, app_vendor)
        self._clock = clock
        self._logged_on: set[str] = set()
        self._failed_logons: dict[str, deque[float]] = {}
        self._adopted_seq: set[str] = set()
        self._locked: set[str] = set()
        self._reenable_timers: list[threading.Timer] = []
        self._lock = threading.Lock()  # guards the small sets above; never held across a QuickFIX call
        self.reset_requested: set[str] = set()
        self.reset_lock = self._lock

    # ------------------------------------------------------------------------------------------ helpers
    def _spec(self, session_id: Any) -> SessionSpec | None:
        return self._by_qfid.get(session_id.toString())

    def unlock(self, name: str) -> None:
        with self._lock:
            self._locked.discard(name)
            self._failed_logons.pop(name, None)

    def cancel_timers(self) -> None:
        for timer in self._reenable_timers:
            timer.cancel()
        for recovery in self.recovery.values():
            recovery.cancel()

    def on_engine_event(self, name: str, text: str) -> None:
        recovery = self.recovery.get(name)
        if recovery is not None:
            recovery.on_engine_event(text)

    # ------------------------------------------------------------------------------------------ callbacks
    def onCreate(self, session_id: Any) -> None:
        pass

    def onLogon(self, session_id: Any) -> None:
        try:
            spec = self._spec(session_id)
            if spec is None:
                return
            with self._lock:
                self._logged_on.add(spec.name)
                self._failed_logons.pop(spec.name, None)
                self._consecutive.pop(spec.name, None)
                self._adopted_seq.discard(spec.name)
            self._put((LOGON, spec.name, None, time.time_ns()))
        except BaseException:
            log.exception("onLogon failed")

    def onLogout(self, session_id: Any) -> None:
        try:
            spec = self._spec(session_id)
            if spec is None:
                return
            with self._lock:
                self._logged_on.discard(spec.name)
            self.recovery[spec.name].on_disconnect()
            self._put((LOGOUT, spec.name, None, time.time_ns()))
        except BaseException:
            log.exception("onLogout failed")

    def toAdmin(self, message: Any, session_id: Any) -> None:
        try:
            spec = self._spec(session_id)
            if spec is None:
                return
            header = message.getHeader()
            session = fix.Session.lookupSession(session_id)
            last_processed = session.getExpectedTargetNum() - 1 if session is not None else 0
            header.setField(50, spec.operator)
            header.setField(57, spec.segment)
            header.setField(142, spec.location)
            header.setField(369, str(last_processed))
            msg_type = header.getField(35)
            if msg_type == "A":
                self._prepare_logon(message, header, spec)
            elif msg_type == "2":
                self._resend_seq[spec.name] = header.getField(34)
                self.recovery[spec.name].on_resend_out(message)
        except BaseException:
            log.exception("toAdmin failed; the message goes out unsigned and CME will refuse it")

    def _prepare_logon(self, message: Any, header: Any, spec: SessionSpec) -> None:
        for tag in (98, 95, 96, 122):
            if message.isSetField(tag):
                message.removeField(tag)
            if header.isSetField(tag):
                header.removeField(tag)
        with self._lock:
            reset = spec.name in self.reset_requested
            self.reset_requested.discard(spec.name)
            attempts = self._failed_logons.setdefault(spec.name, deque())
            attempts.append(time.monotonic())
        # 141=Y only on an explicit in-session reset; the engine itself then rewrites 34 to 1 (notes §1.1),
        # so a reset logon is only ever requested through Engine.reset_session, which resets the store first.
        message.setField(141, "Y" if reset else "N")
        if reset:
            # With 141=Y the engine resets its store and rewrites 34 to 1 *after* this callback (engine
            # notes §1.1): sign, and send, what will actually be on the wire.
            header.setField(34, "1")
            header.setField(369, "0")
        if self._clock is not None:
            header.setField(52, _format_time(self._clock()))
        name, version, vendor = self._app
        message.setField(1603, name)
        message.setField(1604, version)
        message.setField(1605, vendor)
        key_id = spec.key.access_key_id
        message.setField(354, str(len(key_id)))
        message.setField(355, key_id)
        values = {tag: header.getField(tag) for tag in (34, 49, 50, 52, 57, 142, 369)}
        values[108] = message.getField(108)
        values[1603], values[1604], values[1605] = name, version, vendor
        signature = sign(spec.key.secret.reveal(), canonical_logon(values))
        message.setField(1400, SIGNATURE_METHOD)
        message.setField(1401, str(len(signature)))
        message.setField(1402, signature)
        self._put((ADMIN_OUT, spec.name, ("A", {34: values[34], 141: "Y" if reset else "N"}), time.time_ns()))

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        try:
            spec = self._spec(session_id)
            if spec is None:
                return
            header = message.getHeader()
            msg_type = header.getField(35)
            seq = int(header.getField(34))
            recovery = self.recovery[spec.name]
            if msg_type == "4" and message.isSetField(123) and message.getField(123) == "Y":
                recovery.on_gap_fill(seq, int(message.getField(36)))
            elif msg_type == "A":
                session = fix.Session.lookupSession(session_id)
                recovery.on_logon_ack(seq, session.getExpectedTargetNum())
            elif msg_type == "3":
                self._on_reject(message, spec, seq, session_id)
            elif msg_type == "5":
                if not recovery.on_refusal("logout", message.getField(58) if message.isSetField(58) else ""):
                    self._on_logout_message(message, spec)
            elif recovery.watching:
                # A ResendRequest from CME is processed even when out of sequence (engine notes §3.1):
                # only a message at the expected number has been processed "in sequence".
                session = fix.Session.lookupSession(session_id)
                if session is not None and seq == session.getExpectedTargetNum():
                    recovery.on_message(seq)
            if msg_type != "0":
                self._put((ADMIN_IN, spec.name, message.toString(), time.time_ns()))
        except BaseException:
            log.exception("fromAdmin failed")

    def fromApp(self, message: Any, session_id: Any) -> None:
        try:
            name = self._by_qfid[session_id.toString()].name
            self._put((APP, name, message.toString(), time.time_ns()))
            recovery = self.recovery[name]
            if recovery.watching:
                recovery.on_message(int(message.getHeader().getField(34)))
        except BaseException:
            log.exception(
                "fromApp failed; the message will be recovered from the journal position on restart"
            )

    def toApp(self, message: Any, session_id: Any) -> None:
        pass

    # ------------------------------------------------------------------------------------------ decisions
    def _on_reject(self, message: Any, spec: SessionSpec, seq: int, session_id: Any) -> None:
        """A session Reject. QuickFIX counts it as the next message even when its number is too high
        (engine notes §3.3-C), stepping over a number that never arrived: undo that."""
        ref = message.getField(45) if message.isSetField(45) else None
        about_resend = (message.isSetField(372) and message.getField(372) == "2") or (
            ref is not None and ref == self._resend_seq.get(spec.name)
        )
        text = message.getField(58) if message.isSetField(58) else ""
        log.warning("%s: session Reject of our message %s: %r", spec.name, ref, text)
        if about_resend and self.recovery[spec.name].on_refusal("reject", text):
            return
        session = fix.Session.lookupSession(session_id)
        expected = session.getExpectedTargetNum()
        if seq > expected:
            session.setNextTargetMsgSeqNum(expected - 1)  # QuickFIX adds one after this callback

    def _on_logout_message(self, message: Any, spec: SessionSpec) -> None:
        """A Logout from CME. Before logon it answers our Logon: decide whether to retry at all."""
        text = message.getField(58) if message.isSetField(58) else ""
        next_expected = int(message.getField(789)) if message.isSetField(789) else None
        with self._lock:
            logged_on = spec.name in self._logged_on
        if logged_on:
            return
        session = fix.Session.lookupSession(
            fix.SessionID("FIX.4.2", spec.sender_comp_id, "CME", spec.segment)
        )
        if "Backup session not allowed" in text:
            # Failover policy: go back to the primary (HostSelectionPolicy=PRIORITY + reconnect).
            self._put((NOTICE, spec.name, ("backup-refused", text), time.time_ns()))
            return
        sent = session.getExpectedSenderNum() - 1 if session is not None else None
        if next_expected is not None and next_expected != sent:
            with self._lock:
                first_time = spec.name not in self._adopted_seq
                self._adopted_seq.add(spec.name)
            if first_time and next_expected > 0:
                # Mid-week logon with the wrong 34 (spec §2.1): adopt 789 and log on again, once.
                if session is not None:
                    session.setNextSenderMsgSeqNum(next_expected)
                self._put((NOTICE, spec.name, ("adopt-seq", f"{next_expected}|{text}"), time.time_ns()))
                return
        # Anything else before logon is a refusal of our credentials or of our Logon: stop retrying.
        with self._lock:
            self._locked.add(spec.name)
        if session is not None:
            session.logout()
        self._put((NOTICE, spec.name, ("rejected", f"{next_expected or ''}|{text}"), time.time_ns()))

    def note_disconnect(self, name: str, session: Any) -> None:
        """Called (from the dispatcher) after a logon attempt ended without a session: pause before the next.

        Two limits, whichever is longer: capped exponential backoff over consecutive failures
        (``reconnect_interval`` doubling up to ``BACKOFF_CAP``), and the bad-logon budget -- never a fifth
        failed logon inside 60 seconds, because CME closes the port for good after that.
        """
        now = time.monotonic()
        with self._lock:
            if name in self._logged_on or name in self._locked:
                return
            attempts = self._failed_logons.get(name)
            if not attempts:
                return
            while attempts and attempts[0] < now - FAILED_LOGON_WINDOW:
                attempts.popleft()
            failures = self._consecutive[name] = self._consecutive.get(name, 0) + 1
            backoff = min(self._reconnect_interval * 2 ** (failures - 1), BACKOFF_CAP)
            wait = backoff - self._reconnect_interval  # QuickFIX itself waits reconnect_interval
            if len(attempts) >= MAX_FAILED_LOGONS:
                wait = max(wait, FAILED_LOGON_WINDOW - (now - attempts[0]) + 1.0)
        if wait <= 0:
            return
        session.logout()
        self._put((NOTICE, name, ("throttled", f"{wait:.0f}|{failures}"), time.time_ns()))

        def reenable() -> None:
            with self._lock:
                locked = name in self._locked
            if not locked:
                session.logon()

        timer = threading.Timer(wait, reenable)
        timer.daemon = True
        self._reenable_timers.append(timer)
        timer.start()


_CONNECTING = re.compile(r"^Connecting to (\S+) on port (-?\d+)")


class _Log(fix.Log):  # type: ignore[misc]
    """Routes QuickFIX's log to ``logging`` with secrets redacted. Messages at DEBUG, events at INFO.

    Two engine events are also forwarded to the dispatcher: which endpoint a session is connecting to (the
    callbacks never say) and "MsgSeqNum too high" (the only place the upper end of a gap is stated).
    """

    def __init__(
        self, name: str, put: Put | None, on_event: Callable[[str, str], None] | None = None
    ) -> None:
        super().__init__()
        self._on_event = on_event
        self._messages = logging.getLogger("dropcopy_client.engine.messages")
        self._events = logging.getLogger("dropcopy_client.engine.events")
        self._name = name
        self._put = put

    def clear(self) -> None:
        pass

    def backup(self) -> None:
        pass

    def onIncoming(self, text: str) -> None:
        try:
            if self._messages.isEnabledFor(logging.DEBUG):
                self._messages.debug("%s <- %s", self._name, redact_text(text).replace("\x01", "|"))
        except BaseException:
            pass

    def onOutgoing(self, text: str) -> None:
        try:
            if self._messages.isEnabledFor(logging.DEBUG):
                self._messages.debug("%s -> %s", self._name, redact_text(text).replace("\x01", "|"))
        except BaseException:
            pass

    def onEvent(self, text: str) -> None:
        try:
            self._events.info("%s: %s", self._name, redact_text(text))
            if self._put is None:
                return
            if self._on_event is not None:
                self._on_event(self._name, text)
            match = _CONNECTING.match(text)
            if match:
                port = int(match.group(2)) & 0xFFFF  # QuickFIX keeps the port in a short (notes §2)
                self._put((NOTICE, self._name, ("connecting", f"{match.group(1)}:{port}"), time.time_ns()))
            elif text.startswith(("MsgSeqNum too high", "Disconnecting", "Timed out waiting")):
                self._put((NOTICE, self._name, ("engine", text), time.time_ns()))
        except BaseException:
            pass


class LogFactory(fix.LogFactory):  # type: ignore[misc]
    """A Python LogFactory with the SWIG 4.2.1 director workaround (engine notes §4.2-1).

    Each Log is kept alive here and handed over with ``thisown = False`` so the buggy director mutex is
    never used. Nothing reaches a file: QuickFIX's FileLog would write the signed Logon to disk.
    """

    def __init__(self, names: dict[str, str], put: Put, on_event: Callable[[str, str], None]) -> None:
        super().__init__()
        self._names = names
        self._put = put
        self._on_event = on_event
        self._logs: list[_Log] = []

    def create(self, session_id: Any = None) -> _Log:
        try:
            qfid = session_id.toString() if session_id is not None else None
            name = self._names.get(qfid, qfid) if qfid is not None else "engine"
            known = qfid in self._names
            created = _Log(name, self._put if known else None, self._on_event if known else None)
        except BaseException:
            created = _Log("engine", None)
        created.thisown = False
        self._logs.append(created)
        return created

    def destroy(self, log_: Any) -> None:
        pass
