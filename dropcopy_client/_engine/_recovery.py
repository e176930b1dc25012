"""Drives the sans-IO :class:`~dropcopy_client._recovery.ResendPolicy` from one session's QuickFIX callbacks.

One driver per session, called on that session's own threads. The policy is touched under a small lock that
is never held across a QuickFIX call (engine notes §4.2-6); its actions are carried out after the lock is
released. Where the policy says "make N the next expected number", the call depends on where we are:
QuickFIX adds one to its expected number after ``fromApp``/``fromAdmin`` return (engine notes §3.1), so
inside those callbacks we set ``N - 1``; elsewhere (``toAdmin``, ``onLogout``, engine events) we set ``N``.

Numbers the policy gives up become LOST records for the user's process, which accounts for them in the
ledger and tells the user (an ``UnrecoverableGap``); the other recovery events travel as notices.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import quickfix as fix

from dropcopy_client._engine._protocol import Notice
from dropcopy_client._recovery import (
    GapDetected,
    GapFilled,
    ResendPolicy,
    ResendRequested,
    RetryAfter,
    RewindTo,
    SendResend,
    SkipTo,
    UnrecoverableGap,
)

log = logging.getLogger("dropcopy_client.recovery")

TOO_HIGH = re.compile(r"^MsgSeqNum too high, expecting (\d+) but received (\d+)")
QUEUED = re.compile(r"^Processing QUEUED message: (\d+)")


class Emitter(Protocol):
    def notice(self, code: str, payload: object) -> None: ...

    def lost(self, begin: int, end: int, reason: str, raw: bytes | None) -> None: ...


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SessionRecovery:
    """Feeds one session's callbacks and engine events into its ResendPolicy and applies the answers."""

    def __init__(
        self, name: str, session: Callable[[], Any], session_id: Any, emit: Emitter, policy: ResendPolicy
    ) -> None:
        self.name = name
        self._session = session
        self._sid = session_id
        self._emit = emit
        self.policy = policy
        self._lock = threading.Lock()
        self._queued_logon: int | None = None
        self._timers: list[threading.Timer] = []
        #: the begin of the last ResendRequest written, for the strike counter
        self.last_request: tuple[int, int] | None = None

    # ------------------------------------------------------------------------------------------ inputs
    @property
    def watching(self) -> bool:
        """True while the policy needs to see every processed sequence number."""
        return self.policy.watching

    @property
    def in_flight(self) -> tuple[int, int] | None:
        return self.policy.snapshot().in_flight

    def on_engine_event(self, text: str) -> None:
        """An engine event (ScreenLog): the gap's upper end is only stated here ("MsgSeqNum too high")."""
        match = TOO_HIGH.match(text)
        if match:
            expected, received = int(match.group(1)), int(match.group(2))
            with self._lock:
                actions = self.policy.on_gap_detected(expected, received, _now())
            self._apply(actions, inside=False)
            return
        match = QUEUED.match(text)
        if match and self._queued_logon is not None and int(match.group(1)) == self._queued_logon:
            # A queued Logon is only counted by QuickFIX: no callback reports it.
            seq, self._queued_logon = self._queued_logon, None
            with self._lock:
                actions = self.policy.on_message(seq, verified=False)
            self._apply(actions, inside=False)

    def on_logon_ack(self, seq: int, expected: int) -> None:
        """fromAdmin(35=A): a Logon answer above the expected number is queued and the gap opens."""
        if seq > expected:
            self._queued_logon = seq
            with self._lock:
                actions = self.policy.on_gap_detected(expected, seq, _now())
            self._apply(actions, inside=True)
        else:
            self.on_message(seq)

    def on_resend_out(self, message: Any) -> None:
        """toAdmin(35=2): clamp to CME's cap, start at the first missing number, one request in flight."""
        begin, end = int(message.getField(7)), int(message.getField(16))
        with self._lock:
            rewrite = self.policy.on_resend_out(begin, end, _now())
        message.setField(7, str(rewrite.begin))
        message.setField(16, str(rewrite.end))
        self.last_request = (rewrite.begin, rewrite.end)
        if rewrite.rewind_to is not None:
            self._session().setNextTargetMsgSeqNum(rewrite.rewind_to)
        self._emit.notice(Notice.RECOVERY, rewrite.event)

    def on_message(self, seq: int) -> None:
        """An in-sequence message (fromApp/fromAdmin) numbered ``seq``."""
        with self._lock:
            actions = self.policy.on_message(seq)
        if actions:
            self._apply(actions, inside=True)

    def on_gap_fill(self, seq: int, new_seq: int) -> None:
        with self._lock:
            actions = self.policy.on_gap_fill(seq, new_seq)
        if actions:
            self._apply(actions, inside=True)

    def on_refusal(self, how: str, text: str) -> bool:
        """A Reject answering our request, or a Logout refusing it. True if the policy took it."""
        with self._lock:
            if self.policy.snapshot().in_flight is None and not self.policy.active:
                return False
            actions = self.policy.on_resend_rejected(_now(), "logout" if how == "logout" else "reject", text)
        self._apply(actions, inside=True)
        return True

    def on_disconnect(self, *, refused: bool = False) -> None:
        with self._lock:
            actions = self.policy.on_disconnect(refused=refused)
        self._apply(actions, inside=False)

    def give_up(self, seq: int, reason: str, raw: bytes | None) -> None:
        """Declare ``seq`` lost (a frame that never gets through); the caller resyncs the engine after it."""
        with self._lock:
            actions = self.policy.give_up(seq, reason, _now())
        if not actions:
            # the policy did not know the number as missing (e.g. after a reconnect): report it anyway
            self._emit.lost(seq, seq, reason, raw)
            return
        for action in actions:
            if isinstance(action, UnrecoverableGap):
                self._emit.lost(action.begin, action.end, action.reason, raw)

    def restart(self) -> None:
        """Forget every open gap (a new sequence epoch, or the engine is told a new number from outside)."""
        with self._lock:
            self.policy = ResendPolicy(self.name, cap=self.policy.cap)
            self._queued_logon = None
            self.last_request = None

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()

    # ------------------------------------------------------------------------------------------ actions
    def _apply(self, actions: list[Any], *, inside: bool) -> None:
        for action in actions:
            if isinstance(action, SendResend):
                self._send_resend(action.begin, action.end)
            elif isinstance(action, RewindTo | SkipTo):
                session = self._session()
                if session is not None:
                    session.setNextTargetMsgSeqNum(action.seq - 1 if inside else action.seq)
            elif isinstance(action, RetryAfter):
                self._retry_after(action.seconds)
            elif isinstance(action, UnrecoverableGap):
                self._emit.lost(action.begin, action.end, action.reason, None)
            elif isinstance(action, GapDetected | GapFilled | ResendRequested):
                self._emit.notice(Notice.RECOVERY, action)

    def _send_resend(self, begin: int, end: int) -> None:
        request = fix.Message()
        header = request.getHeader()
        header.setField(8, "FIX.4.2")
        header.setField(35, "2")
        request.setField(7, str(begin))
        request.setField(16, str(end))
        try:
            fix.Session.sendToTarget(request, self._sid)
        except fix.SessionNotFound:
            log.warning(
                "%s: session gone; the resend %s-%s is asked again after the next logon",
                self.name,
                begin,
                end,
            )

    def _retry_after(self, seconds: float) -> None:
        def poke() -> None:
            try:
                with self._lock:
                    waiting = self.policy.snapshot().awaiting_request
                if not waiting:
                    return
                # CME's Heartbeat answer arrives out of sequence, so QuickFIX asks again (rewritten by us).
                probe = fix.Message()
                probe.getHeader().setField(8, "FIX.4.2")
                probe.getHeader().setField(35, "1")
                probe.setField(112, f"RESEND-{time.time_ns()}")
                fix.Session.sendToTarget(probe, self._sid)
            except BaseException:
                log.exception("%s: resend retry failed", self.name)

        timer = threading.Timer(max(seconds, 0.05), poke)
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()]
        self._timers.append(timer)
        timer.start()
