"""Session-level events: what happens to the connections, as opposed to the business messages they carry.

Business events (execution reports and friends) live in ``_messages``. Every event here is frozen and
names the session it concerns as ``"<SenderCompID>:<segment>"`` (segment ``G`` for a CGW target).
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from dropcopy_client._serialize import ToDict


class SessionState(enum.Enum):
    """Life cycle of one drop copy FIX session."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    LOGON_SENT = "logon sent"
    LOGGED_ON = "logged on"
    RECOVERING = "recovering"
    LOGGING_OUT = "logging out"
    STOPPED = "stopped"
    #: CME refused our credentials: the session does not retry until the user acts (CME closes the port
    #: after five bad logons inside 60 seconds, and only a phone call reopens it).
    LOCKED_OUT = "locked out"


@attrs.frozen
class SessionEvent(ToDict):
    """A session changed state."""

    group: str
    session: str
    state: SessionState
    previous: SessionState
    at: dt.datetime
    endpoint: str | None = None
    text: str | None = None


@attrs.frozen
class LogonRejected(ToDict):
    """The counterparty answered our Logon with a Logout (tag 58 in ``text``). The session is locked out.

    ``advice`` says what to do next; ``clock_skew`` is how many seconds CME's clock (the Logout's
    SendingTime) is ahead of ours, when that could be read.
    """

    group: str
    session: str
    text: str
    at: dt.datetime
    next_expected_seq: int | None = None
    advice: str = ""
    clock_skew: float | None = None


@attrs.frozen
class KeyExpiryWarning(ToDict):
    """The key chosen for a session expires within 28 days: download and install a new one."""

    group: str
    session: str
    access_key_id: str
    expires: dt.date
    days_left: int


@attrs.frozen
class HandlerFailed(ToDict):
    """A consumer (handler, sink or iterator) raised on an event. Nothing else waits for it.

    ``event`` is the event it raised on: its cursor stays before it, and it is offered again after
    ``retry_in`` seconds (None: not retried -- a live event, or given up to the dead-letter table).
    ``event_type`` is that event's class name, or what the consumer was doing when no event was involved
    (``"opening the sink"``: a sink configured by URL could not connect; ``event`` is then None).
    """

    handler: str
    event_type: str
    error: str
    exception: BaseException = attrs.field(repr=False, eq=False)
    event: object = attrs.field(default=None, repr=False, eq=False)
    attempt: int = 1
    retry_in: float | None = None


@attrs.frozen
class JournalFailed(ToDict):
    """Writing the journal failed (disk full, I/O error), or works again (``recovered``).

    While it fails every session is logged out: nothing is acknowledged that is not journaled, and what CME
    sent meanwhile is asked for again once writing works.
    """

    path: str
    error: str
    at: dt.datetime
    recovered: bool = False


@attrs.frozen
class EngineRestarted(ToDict):
    """The engine process ended unexpectedly and was started again (``exit_code`` of the old one)."""

    exit_code: int | None
    at: dt.datetime
    restarts: int


@attrs.frozen
class KeyRotated(ToDict):
    """The next logon of a session signs with another key than its last one: the key file or store changed on
    disk (CME's mid-week key rotation). Key ids only, never a secret."""

    group: str
    session: str
    old_key_id: str
    new_key_id: str
    at: dt.datetime


@attrs.frozen
class KeyReloadFailed(ToDict):
    """The key file or store changed on disk but could not be read: the previous keys stay in use.

    ``source`` is the file's path; ``reason`` the error (it names the file and what to do, never a secret).
    Reported once per change of the file: the same broken file is not reported at every logon.
    """

    source: str
    reason: str
    at: dt.datetime


@attrs.frozen
class FrameDropped(ToDict):
    """Bytes arrived that QuickFIX could not parse as a FIX message, and it dropped them (``reason`` is its
    own text, e.g. ``Invalid message: Expected BodyLength=12, Received BodyLength=495``).

    Such bytes carry no trustworthy sequence number and none is consumed: if a real message was swallowed
    with them, the next one shows the gap and it is asked for again (``GapDetected``). If the number the
    session expected (``expected_seq``) keeps failing, it is struck and finally declared lost with the
    frame's bytes (``UnrecoverableGap.raw``). QuickFIX discards the bytes before any callback, so this event
    holds its reason, not the bytes. A live event: not journaled.
    """

    session: str
    reason: str
    expected_seq: int
    at: dt.datetime
