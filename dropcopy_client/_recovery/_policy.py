"""CME-compliant gap recovery on top of QuickFIX: a sans-IO resend policy, one per session.

QuickFIX 1.16 asks for every gap with a single ``7=<expected> 16=0`` ("everything") and never splits it, while
CME answers at most 2,500 messages per request, handles one request at a time and only within 48 hours
(spec §2.4). When CME answers a ResendRequest with a Reject or a Logout, QuickFIX silently steps over one
missing number (engine notes §3.3-C). :class:`ResendPolicy` fixes all of this from the outside: the engine
adapter feeds it what the engine does, and acts on the small, frozen actions it returns. It does no I/O,
holds no lock and never imports quickfix, so every rule is unit-tested without sockets.

How the adapter drives it (on the engine thread, where QuickFIX calls the Application):

* log event ``MsgSeqNum too high, expecting E but received M`` -> ``on_gap_detected(E, M, now)``. QuickFIX
  logs it for every out-of-sequence message, just before it writes its own ResendRequest (if it writes one).
  A too-high Logon answer is also visible in ``fromAdmin(35=A)``; reporting it twice is harmless.
* ``toAdmin(35=2)`` -> ``on_resend_out(7, 16, now)``: write the returned begin/end (and apply ``rewind_to``).
* ``fromApp``/``fromAdmin`` of an in-sequence message, app or admin, live, resent or taken from the queue ->
  ``on_message(34)``. A queued Logon has no callback, only the log event ``Processing QUEUED message: N`` ->
  ``on_message(N, verified=False)``. Repeats are ignored.
* ``fromAdmin(35=4, 123=Y)`` -> ``on_gap_fill(34, 36)``.
* ``fromAdmin(35=3)`` about our request (45 = its 34, or 372=2), or ``fromAdmin(35=5)`` while one is in flight
  -> ``on_resend_rejected(now, "reject" | "logout", 58)``.
* ``onLogout`` -> ``on_disconnect()``.
* a timer, say once a minute -> ``check_window(SendingTime of the last message before the gap, now)``;
  after a RetryAfter delay, a TestRequest if ``snapshot().awaiting_request``.

Returned actions are carried out at once, in order; the event-typed ones are also handed to the user.
Hot path: ``on_message`` costs two attribute tests while no gap is open and a few integer comparisons while
one is; every call is O(1). The policy is not thread-safe: call it from one thread at a time.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal

import attrs

from dropcopy_client._serialize import ToDict

__all__ = [
    "Action",
    "DuplicateIgnored",
    "GapDetected",
    "GapFilled",
    "RecoveryEvent",
    "RecoveryStatus",
    "ResendPolicy",
    "ResendRequested",
    "ResendRewrite",
    "RetryAfter",
    "RewindTo",
    "SendResend",
    "SkipTo",
    "UnrecoverableGap",
]

#: CME answers at most this many messages per ResendRequest (spec §2.4).
CME_RESEND_CAP = 2500


# ---------------------------------------------------------------------------------------------- events
@attrs.frozen
class GapDetected(ToDict):
    """Messages ``begin``..``end`` of ``session`` are missing: positions are uncertain until it closes."""

    session: str
    begin: int
    end: int
    at: dt.datetime


@attrs.frozen
class ResendRequested(ToDict):
    """A ResendRequest for ``begin``..``end`` went out (at most 2,500 numbers, one at a time)."""

    session: str
    begin: int
    end: int
    at: dt.datetime


@attrs.frozen
class GapFilled(ToDict):
    """The gap ``begin``..``end`` is closed: every number arrived, or was given up by an UnrecoverableGap."""

    session: str
    begin: int
    end: int
    at: dt.datetime


@attrs.frozen
class UnrecoverableGap(ToDict):
    """Messages ``begin``..``end`` cannot be recovered from CME; the stream continues after ``end``.

    Journaled, so every consumer sees it (after a restart too, flagged ``replayed``). ``reason`` says why;
    ``raw`` holds the offending frame (secrets redacted) when one frame was the cause.
    """

    session: str
    begin: int
    end: int
    reason: str
    at: dt.datetime
    raw: bytes | None = attrs.field(default=None, repr=False)
    #: position in the journal's stream; None before journaling
    journal_id: int | None = None
    #: re-fed from the journal after a restart
    replayed: bool = False

    @property
    def idempotency_key(self) -> str:
        """``"J:<journal_id>"``: the declaration is one journal row."""
        return f"J:{self.journal_id}"


@attrs.frozen
class DuplicateIgnored(ToDict):
    """A message already journaled arrived again (resend, failover replay, second group); it had no effect."""

    session: str
    seq: int
    dedupe_key: str
    exec_id: str | None
    at: dt.datetime
    #: the duplicate itself, for users who want to see it flagged (never applied to positions)
    event: object = attrs.field(default=None, repr=False, eq=False)


RecoveryEvent = GapDetected | ResendRequested | GapFilled | UnrecoverableGap | DuplicateIgnored


# ---------------------------------------------------------------------------------------------- actions
@attrs.frozen
class SendResend:
    """Send ``35=2 7=begin 16=end`` now (``Session.sendToTarget``); it comes back through on_resend_out."""

    begin: int
    end: int


@attrs.frozen
class RewindTo:
    """Make the engine's next expected inbound number ``seq`` again (``setNextTargetMsgSeqNum``).

    Undoes the number QuickFIX steps over when a Reject or Logout answers a ResendRequest. QuickFIX adds one
    to its expected number after ``fromApp``/``fromAdmin`` return (engine notes §3.1), so inside those
    callbacks set ``seq - 1``; inside ``fromAdmin`` of a SequenceReset, or outside callbacks, set ``seq``
    once the engine is done with the message. Apply it at once: left alone, QuickFIX may take a queued
    message at the wrong number and never ask for the one it stepped over. (``ResendRewrite.rewind_to``
    repeats the correction when QuickFIX itself asks next, as a backstop.)
    """

    seq: int


@attrs.frozen
class RetryAfter:
    """Ask again, but not before ``seconds``.

    QuickFIX asks by itself on its next out-of-sequence message (live traffic, CME's heartbeat, the Logon
    answer after a reconnect) and that request is rewritten through on_resend_out; it may come sooner, since
    holding it back would mean dropping the message that triggered it. If after ``seconds`` the status
    still says ``awaiting_request``, send a TestRequest: CME's Heartbeat answer is out of sequence, so
    QuickFIX asks.
    """

    seconds: float


@attrs.frozen
class SkipTo:
    """Numbers below ``seq`` were given up (an UnrecoverableGap precedes this): make ``seq`` the engine's
    next expected number (same rule as RewindTo) and the journal's position ``seq - 1``."""

    seq: int


Action = SendResend | RewindTo | RetryAfter | SkipTo | GapDetected | GapFilled | UnrecoverableGap


@attrs.frozen
class ResendRewrite:
    """What on_resend_out decided for the ResendRequest being written.

    Write ``7=begin 16=end``; if ``rewind_to`` is set, call ``setNextTargetMsgSeqNum(rewind_to)`` in the same
    ``toAdmin`` call (the session mutex is held there, so no message slips in between). ``duplicate`` marks
    a request QuickFIX insisted on while one of ours was still being answered: it goes out as a copy of the
    one in flight (CME's enhanced resend rule 3 sends such copies for a continuing gap).
    """

    begin: int
    end: int
    rewind_to: int | None
    event: ResendRequested
    duplicate: bool = False


@attrs.frozen
class RecoveryStatus:
    """A snapshot for health reports and tests."""

    session: str
    gap: tuple[int, int] | None  #: (first missing, last missing) while a gap is open
    in_flight: tuple[int, int] | None  #: the request CME is answering
    awaiting_request: bool  #: a gap is open, connected, and no request is out (see RetryAfter)
    requests_sent: int
    rejects: int  #: consecutive refusals of the identical request in flight
    unrecoverable: int  #: numbers given up since this policy was created


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ResendPolicy:
    """Gap tracking and resend chunking for one session. See the module docstring for how to drive it.

    While a gap is open the policy knows exactly which numbers are missing: every number below ``next`` was
    processed by the engine (or given up), and every number above it was either reported arriving (the
    engine queues it) or is missing. The missing numbers form a few ranges -- one, unless the stream
    jumped again during recovery. Requests only ever cover missing numbers, so a chunk is complete exactly
    when CME has answered its last number, never earlier from the engine's queue.

    QuickFIX's own resend range is tracked too: while it is open QuickFIX sends nothing by itself, and once it
    closes QuickFIX asks again on any out-of-sequence message. The policy sends a request of its own only
    while that range stays open until the request is answered, so the two never overlap.
    """

    active: bool  #: a gap is open (recovery in progress)

    def __init__(
        self,
        session: str,
        *,
        cap: int = CME_RESEND_CAP,
        max_rejects: int = 3,
        backoff: Sequence[float] = (1.0, 2.0, 5.0),
        window: dt.timedelta = dt.timedelta(hours=48),
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        if cap < 1:
            raise ValueError(f"cap must be at least 1, not {cap}")
        if max_rejects < 1:
            raise ValueError(f"max_rejects must be at least 1, not {max_rejects}")
        if not backoff or any(delay < 0 for delay in backoff):
            raise ValueError(f"backoff must be a non-empty sequence of delays >= 0, not {backoff!r}")
        self.session = session
        self._cap = cap
        self._max_rejects = max_rejects
        self._backoff = tuple(float(delay) for delay in backoff)
        self._window = window
        self._clock = clock
        self.active = False
        self._begin = 0  # first number of the open gap (for GapFilled)
        self._end = 0  # last number the gap ever reached (for GapFilled)
        self._next = 0  # next number the engine will process
        self._missing: deque[list[int]] = deque()  # sorted, disjoint [first, last] ranges, all >= _next
        self._highest = 0  # highest number reported arriving (processed or queued by the engine)
        self._trigger = 0  # the out-of-sequence number last reported: QuickFIX's range ends just before it
        self._chunk: tuple[int, int] | None = None  # request in flight
        self._unconfirmed = False  # _chunk is a SendResend not yet seen in on_resend_out
        self._engine_end: int | None = None  # end of QuickFIX's open resend range
        self._duplicates = 0  # copies QuickFIX sent while _chunk was in flight
        self._online = True
        self._rejects = 0  # refusals of the request in flight (``_refused_range``), consecutive
        self._refused_range: tuple[int, int] | None = None  # the request refused last
        self._requests = 0
        self._lost = 0

    @property
    def cap(self) -> int:
        """Most messages one ResendRequest may ask for."""
        return self._cap

    @property
    def watching(self) -> bool:
        """True while every processed number must be reported (a gap is open, or QuickFIX's range is)."""
        return self.active or self._engine_end is not None

    # ------------------------------------------------------------------------------------------ inputs
    def on_gap_detected(self, expected: int, received: int, now: dt.datetime) -> list[Action]:
        """QuickFIX saw ``received`` while expecting ``expected``: ``expected``..``received - 1`` is missing.

        Call it for every "MsgSeqNum too high" event: each names a number the engine now holds in its queue.
        While a gap is open, a number next to the last one seen is live traffic queued behind the gap; one
        further on opens a new range of missing numbers, recovered by the same serial requests (never a
        second request in parallel).
        """
        if received <= expected:
            return []
        self._online = True
        self._trigger = received
        if not self.active:
            self._open(expected, received - 1)
            self._highest = received
            actions: list[Action] = [GapDetected(self.session, expected, received - 1, now)]
            if self._engine_end is not None:
                # QuickFIX's previous range is still open (a gap fill jumped past its end), so it will not
                # ask ("Already sent ResendRequest ... Not sending another"): the policy must.
                actions.append(self._request(self._next))
            return actions
        actions = []
        if received > self._highest + 1:
            first = max(self._highest + 1, self._next)
            missing = self._missing
            if missing and missing[-1][1] + 1 >= first:
                missing[-1][1] = received - 1
            else:
                missing.append([first, received - 1])
            self._end = max(self._end, received - 1)
            actions.append(GapDetected(self.session, first, received - 1, now))
        if received > self._highest:
            self._highest = received
        if self._chunk is None and self._engine_end is not None and self._missing[0][0] == self._next:
            actions.append(self._request(self._next))  # QuickFIX's range is open: it will not ask
        return actions

    def on_resend_out(self, begin: int, end: int, now: dt.datetime) -> ResendRewrite:
        """A ResendRequest ``7=begin 16=end`` (0 = infinity) is being written (``toAdmin``): decide its range.

        A follow-up the policy asked for is confirmed as is. QuickFIX's own request (``7`` = its expected
        number) starts at the first missing number and ends at most ``cap - 1`` numbers later; if QuickFIX
        expects a different number than the policy (it stepped over one after a refusal), ``rewind_to``
        says so.
        """
        chunk = self._chunk
        if self._unconfirmed and chunk == (begin, end):
            self._unconfirmed = False
            self._requests += 1
            return ResendRewrite(begin, end, None, ResendRequested(self.session, begin, end, now))
        self._online = True
        if not self.active:
            # The gap was not reported first (the adapter should call on_gap_detected from the "too high"
            # event that precedes every QuickFIX request). Assume it spans one chunk.
            last = end if end >= begin else begin + self._cap - 1
            self._open(begin, last)
            self._highest = self._trigger = last + 1
        # QuickFIX's request opens its own range, up to just before the message that triggered it.
        self._engine_end = max(self._trigger - 1, begin)
        rewind = self._next if begin != self._next else None
        self._requests += 1
        if chunk is not None:
            b, e = chunk
            event = ResendRequested(self.session, b, e, now)
            if self._unconfirmed:  # our follow-up never went out: this request carries it
                self._unconfirmed = False
                return ResendRewrite(b, e, rewind, event)
            # QuickFIX asks while ours is being answered (its own range had closed): it cannot be held back,
            # so it goes out as a copy of ours. If CME refuses the copy, on_resend_rejected absorbs that.
            self._duplicates += 1
            return ResendRewrite(b, e, rewind, event, duplicate=True)
        b = self._missing[0][0]
        e = self._chunk_end(b)
        if end > 0 and b <= end < e:
            e = end
        self._chunk = (b, e)
        self._unconfirmed = False
        return ResendRewrite(b, e, rewind, ResendRequested(self.session, b, e, now))

    def on_message(self, seq: int, *, verified: bool = True) -> list[Action]:
        """The engine processed in-sequence message ``seq`` (app or admin, live, resent or from its queue).

        ``verified=False`` for a queued Logon, which QuickFIX only counts (it shows as the log event
        "Processing QUEUED message: N", with no callback): unlike a verified message it does not close
        QuickFIX's resend range.
        """
        if not self.active:
            end = self._engine_end
            if end is not None and verified and seq >= end:
                self._engine_end = None  # closes a range QuickFIX left open after a gap fill past its end
            return []
        return self._advance(seq, seq + 1, verified)

    def on_gap_fill(self, seq: int, new_seq: int) -> list[Action]:
        """SequenceReset-GapFill at ``seq`` to ``new_seq``: ``seq``..``new_seq - 1`` count as received.

        If that passes the end of the chunk in flight, the next chunk starts at the first number still
        missing at or after ``new_seq`` -- never at the old chunk end + 1, and never skipping a chunk
        (quickfixn#309).
        """
        if not self.active:
            if self._engine_end is not None and seq >= self._engine_end:
                self._engine_end = None
            return []
        if new_seq <= seq:
            return []
        return self._advance(seq, new_seq, True)

    def on_resend_rejected(
        self, now: dt.datetime, how: Literal["reject", "logout"], text: str
    ) -> list[Action]:
        """CME refused the request in flight (Reject 35=3 about it / 372=2, or a Logout).

        QuickFIX has just counted the refusal as the next message, so the first missing number must be
        restored (RewindTo). The same chunk is asked again after a backoff, ``max_rejects`` times in all;
        then that chunk is given up (UnrecoverableGap + SkipTo) and recovery goes on after it.
        """
        if not self.active:
            return []
        rewind = RewindTo(self._next)
        self._engine_end = (
            None  # a Reject closes QuickFIX's range (its number is past it); a Logout disconnects
        )
        if how == "reject" and self._duplicates and self._chunk is not None:
            self._duplicates -= 1  # CME refused QuickFIX's copy; ours is still being answered
            return [rewind]
        if self._chunk is None:
            return [rewind]
        chunk = self._chunk
        _, end = chunk
        self._chunk = None
        self._unconfirmed = False
        # Refusals are counted per request, by its first number: after a refusal-Logout the same request can
        # only come back longer (the Logout and the next Logon ack add numbers behind it).
        refused = self._refused_range
        if refused is None or refused[0] != chunk[0]:
            self._rejects = 0
            refused = chunk
        # what was refused every time: numbers added behind it since may still be served
        refused = self._refused_range = (chunk[0], min(refused[1], end))
        self._rejects += 1
        if self._rejects < self._max_rejects:
            delay = self._backoff[min(self._rejects - 1, len(self._backoff) - 1)]
            return [rewind, RetryAfter(delay)]
        tries = self._rejects
        self._rejects = 0
        self._refused_range = None
        first, end = refused
        reason = f"CME refused the ResendRequest for {first}-{end} {tries} times ({how}: {text or 'no text'})"
        return self._give_up(end, reason, now)

    def on_disconnect(self, *, refused: bool = False) -> list[Action]:
        """The engine disconnected: it drops its queue and its resend range, CME drops our request.

        What is still missing stays missing -- and so does whatever the engine had queued past it -- so the
        request after the next Logon starts at the first missing number (RewindTo makes sure QuickFIX
        expects it, whatever it stepped over on the way out). ``refused``: the connection ended with a
        Logout that refused our request (already counted by on_resend_rejected); any other disconnect -- a
        dropped link, a Logout that does not refuse anything -- starts the refusal count again.
        """
        self._engine_end = None
        if not refused:
            self._rejects = 0
            self._refused_range = None
        if not self.active:
            return []
        self._online = False
        self._chunk = None
        self._unconfirmed = False
        self._duplicates = 0
        last = self._missing[-1][1]
        self._missing = deque([[self._next, last]])
        self._highest = last
        return [RewindTo(self._next)]

    def give_up(self, end: int, reason: str, now: dt.datetime) -> list[Action]:
        """Declare the missing numbers from the first one up to ``end`` lost (e.g. a frame QuickFIX can never
        parse, resent identically each time): UnrecoverableGap + SkipTo, and recovery goes on after ``end``."""
        if not self.active or end < self._next:
            return []
        self._chunk = None
        self._unconfirmed = False
        return self._give_up(end, reason, now)

    def check_window(self, oldest_missing_sent_at: dt.datetime | None, now: dt.datetime) -> list[Action]:
        """Give up the missing range at the front once it is older than CME's resend window (48 hours).

        ``oldest_missing_sent_at`` is the SendingTime (52) of the last message processed before the gap:
        the missing ones were sent after it. The whole range is given up at once: CME does not say how it
        answers a request reaching past the window, and each refusal costs a skipped number.
        """
        if not self.active or oldest_missing_sent_at is None or now - oldest_missing_sent_at <= self._window:
            return []
        hours = self._window.total_seconds() / 3600
        reason = (
            f"older than CME's {hours:g}-hour resend window (the last message before it was sent at "
            f"{oldest_missing_sent_at.isoformat()})"
        )
        self._chunk = None
        self._unconfirmed = False
        return self._give_up(self._missing[0][1], reason, now)

    def snapshot(self) -> RecoveryStatus:
        """The open gap, the request in flight and the counters."""
        return RecoveryStatus(
            session=self.session,
            gap=(self._missing[0][0], self._missing[-1][1]) if self.active else None,
            in_flight=self._chunk,
            awaiting_request=self.active and self._chunk is None and self._online,
            requests_sent=self._requests,
            rejects=self._rejects,
            unrecoverable=self._lost,
        )

    def __repr__(self) -> str:
        status = self.snapshot()
        return f"<ResendPolicy {self.session} gap={status.gap} in_flight={status.in_flight}>"

    # ------------------------------------------------------------------------------------------ internals
    def _open(self, first: int, last: int) -> None:
        self.active = True
        self._begin = self._next = first
        self._end = last
        self._missing = deque([[first, last]])
        self._chunk = None
        self._unconfirmed = False
        self._duplicates = 0
        self._rejects = 0

    def _close(self) -> None:
        """No gap any more. QuickFIX's range may stay open (see on_gap_detected), so it is kept."""
        self.active = False
        self._missing.clear()
        self._chunk = None
        self._unconfirmed = False
        self._duplicates = 0
        self._rejects = 0

    def _advance(self, seq: int, following: int, verified: bool) -> list[Action]:
        if seq != self._next:
            if seq > self._next:
                # The engine went past numbers that never arrived (a refusal it counted as a message, or a
                # call the adapter missed): have it expect the first missing number again.
                return [RewindTo(self._next)]
            return []  # already counted (a queued message reported twice)
        self._online = True
        self._next = following
        if verified and self._engine_end is not None and seq >= self._engine_end:
            self._engine_end = None  # QuickFIX closes its range on this message ("has been satisfied")
        missing = self._missing
        while missing and missing[0][1] < following:
            missing.popleft()
        if not missing:
            begin, end = self._begin, self._end
            self._close()
            return [GapFilled(self.session, begin, end, self._clock())]
        if missing[0][0] < following:
            missing[0][0] = following
        chunk = self._chunk
        if chunk is None:
            return []
        self._rejects = 0  # CME is answering
        self._refused_range = None
        if following <= chunk[1]:
            return []
        self._chunk = None
        self._unconfirmed = False
        self._duplicates = 0
        return self._follow_up()

    def _chunk_end(self, first: int) -> int:
        """The last number of a request starting at ``first`` (the first missing number)."""
        last = min(first + self._cap - 1, self._missing[0][1])
        engine_end = self._engine_end
        if engine_end is not None:
            # Past QuickFIX's range end its range closes on our first answer, and from then on it would ask
            # by itself: a single-number request is answered in that same message.
            last = min(last, engine_end) if first <= engine_end else first
        return last

    def _follow_up(self) -> list[Action]:
        """The chunk in flight is fully answered and numbers remain missing: request the next chunk."""
        first = self._missing[0][0]
        engine_end = self._engine_end
        if engine_end is None or (first > engine_end and first != self._next):
            # QuickFIX's range is closed, or closes while it takes the queued messages before `first`: it
            # asks by itself on its next out-of-sequence message, and a request of ours could overlap it.
            return [RetryAfter(0.0)]
        return [self._request(first)]

    def _request(self, first: int) -> SendResend:
        last = self._chunk_end(first)
        self._chunk = (first, last)
        self._unconfirmed = True
        return SendResend(first, last)

    def _give_up(self, end: int, reason: str, at: dt.datetime) -> list[Action]:
        """Give up ``next``..``end`` (the front of the missing numbers; nothing queued lies in between)."""
        begin = self._next
        missing = self._missing
        while missing and missing[0][0] <= end:
            first, last = missing[0]
            self._lost += min(last, end) - first + 1
            if last <= end:
                missing.popleft()
            else:
                missing[0][0] = end + 1
        self._next = end + 1
        lost = UnrecoverableGap(self.session, begin, end, reason, at)
        if not missing:
            self._close()
            return [lost, SkipTo(end + 1)]
        return [lost, SkipTo(end + 1), RetryAfter(self._backoff[0])]
