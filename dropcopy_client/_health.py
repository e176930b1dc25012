"""Per-session state machine and health (sans-IO: fed by the dispatcher, returns the events to emit)."""

from __future__ import annotations

import datetime as dt

import attrs

from dropcopy_client._events import SessionEvent, SessionState

#: Transitions the state machine accepts; anything else is a bug in the caller and is refused loudly.
_ALLOWED: dict[SessionState, frozenset[SessionState]] = {
    SessionState.DISCONNECTED: frozenset(
        {SessionState.CONNECTING, SessionState.LOGON_SENT, SessionState.STOPPED, SessionState.LOCKED_OUT}
    ),
    SessionState.CONNECTING: frozenset(
        {SessionState.LOGON_SENT, SessionState.DISCONNECTED, SessionState.STOPPED, SessionState.LOCKED_OUT}
    ),
    SessionState.LOGON_SENT: frozenset(
        {
            SessionState.LOGGED_ON,
            SessionState.RECOVERING,
            SessionState.DISCONNECTED,
            SessionState.LOCKED_OUT,
            SessionState.STOPPED,
            SessionState.CONNECTING,
        }
    ),
    SessionState.LOGGED_ON: frozenset(
        {SessionState.RECOVERING, SessionState.LOGGING_OUT, SessionState.DISCONNECTED, SessionState.STOPPED}
    ),
    SessionState.RECOVERING: frozenset(
        {SessionState.LOGGED_ON, SessionState.LOGGING_OUT, SessionState.DISCONNECTED, SessionState.STOPPED}
    ),
    SessionState.LOGGING_OUT: frozenset({SessionState.DISCONNECTED, SessionState.STOPPED}),
    SessionState.STOPPED: frozenset({SessionState.CONNECTING, SessionState.LOGON_SENT}),
    SessionState.LOCKED_OUT: frozenset({SessionState.DISCONNECTED, SessionState.STOPPED}),
}


@attrs.frozen
class SessionStatus:
    """A snapshot of one session's health, as returned by ``client.status()``."""

    group: str
    session: str
    state: SessionState
    endpoint: str | None
    last_inbound_seq: int | None
    last_outbound_seq: int | None
    last_message_at: dt.datetime | None
    open_gaps: tuple[tuple[int, int], ...]
    messages: int
    errors: int
    duplicates: int
    #: the access key id of the last Logon sent
    key_id: str | None = None
    #: the last reason given (a Logout's text, a throttled logon)
    text: str | None = None
    #: numbers declared lost in this trading week (see ``dropcopy audit``)
    lost: int = 0


class SessionHealth:
    """Mutable health of one session, touched only by the dispatcher thread."""

    def __init__(self, group: str, session: str) -> None:
        self.group = group
        self.session = session
        self.state = SessionState.DISCONNECTED
        self.endpoint: str | None = None
        self.last_inbound_seq: int | None = None
        self.last_outbound_seq: int | None = None
        self.last_message_at: dt.datetime | None = None
        self.open_gaps: list[tuple[int, int]] = []
        self.messages = 0
        self.errors = 0
        self.duplicates = 0
        self.key_id: str | None = None
        self.text: str | None = None
        self.lost = 0

    def move(self, state: SessionState, at: dt.datetime, text: str | None = None) -> SessionEvent | None:
        """Change state; returns the event to emit, or None when nothing changed or the move is not allowed."""
        if state is self.state:
            return None
        if state not in _ALLOWED[self.state]:
            return None
        previous, self.state = self.state, state
        return SessionEvent(self.group, self.session, state, previous, at, self.endpoint, text)

    def snapshot(self) -> SessionStatus:
        return SessionStatus(
            group=self.group,
            session=self.session,
            state=self.state,
            endpoint=self.endpoint,
            last_inbound_seq=self.last_inbound_seq,
            last_outbound_seq=self.last_outbound_seq,
            last_message_at=self.last_message_at,
            open_gaps=tuple(self.open_gaps),
            messages=self.messages,
            errors=self.errors,
            duplicates=self.duplicates,
            key_id=self.key_id,
            text=self.text,
            lost=self.lost,
        )
