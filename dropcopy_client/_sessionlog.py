"""One WARNING per change of a session's connectivity, never one per retry.

QuickFIX retries a connection every ``reconnect_interval`` seconds; a gateway that cannot be reached would
repeat the same line every few seconds all weekend, so the engine keeps its own connection errors at DEBUG.
This watcher looks at ``client.status()`` once a second and says, at WARNING (shown without ``-v``):

* a session that was logged on has disconnected (and is reconnecting);
* a session that has not logged on within ``grace`` seconds of starting or of its last disconnect, with the
  gateways it tries and what to check;
* a session it warned about is logged on again, and after how long.

Locked-out sessions are not its business (the writer logs the refusal as an ERROR with what to do), nor
sessions the client is stopping.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from dropcopy_client._events import SessionState
from dropcopy_client._health import SessionStatus
from dropcopy_client._spec import SessionSpec
from dropcopy_client._stats import IngestStats

log = logging.getLogger("dropcopy_client")

_UP = frozenset({SessionState.LOGGED_ON, SessionState.RECOVERING})
#: states in which not being logged on is intended or already reported elsewhere
_QUIET = frozenset({SessionState.STOPPED, SessionState.LOGGING_OUT, SessionState.LOCKED_OUT})


class SessionLog:
    """Feed it snapshots with :meth:`observe`; it logs when a session's connectivity changes.

    The writer's logon and disconnect counters (:class:`~dropcopy_client._stats.IngestStats`) tell it about a
    logon or a drop that came and went between two looks."""

    def __init__(self, specs: Mapping[str, SessionSpec], *, grace: float, source: str | None = None) -> None:
        self._specs = specs
        self.grace = grace
        self._source = source
        self._since: dict[str, float] = {}
        self._warned: dict[str, bool] = {}
        self._logons: dict[str, int] = {}
        self._drops: dict[str, int] = {}

    def begin(self, stats: IngestStats, now: float) -> None:
        """The client starts: every session is given ``grace`` seconds from now, counters are taken as seen."""
        for name in self._specs:
            self._since[name], self._warned[name] = now, False
            self._logons[name], self._drops[name] = stats.logons.get(name, 0), stats.disconnects.get(name, 0)

    def observe(self, statuses: Iterable[SessionStatus], stats: IngestStats, now: float) -> None:
        """``now`` is ``time.monotonic()``."""
        for status in statuses:
            self._one(
                status, stats.logons.get(status.session, 0), stats.disconnects.get(status.session, 0), now
            )

    def _one(self, status: SessionStatus, logons: int, drops: int, now: float) -> None:
        name = status.session
        if name not in self._since:
            self._since[name], self._warned[name] = now, False
            self._logons[name], self._drops[name] = logons, drops
            return
        went_up, self._logons[name] = logons > self._logons[name], logons
        went_down, self._drops[name] = drops > self._drops[name], drops
        if status.state in _QUIET:
            self._since[name], self._warned[name] = now, False
            return
        if went_up and self._warned[name]:
            log.warning(
                "session %s: logged on again via %s after %.0f s",
                name,
                status.endpoint or "?",
                now - self._since[name],
                extra={"session": name, "event": "session_up"},
            )
            self._warned[name] = False
        if went_up or status.state in _UP:
            self._since[name] = now
        if went_down and status.state not in _UP:
            reason = f" ({status.text})" if status.text else ""
            log.warning(
                "session %s: disconnected from %s%s; reconnecting",
                name,
                status.endpoint or "the gateway",
                reason,
                extra={"session": name, "event": "session_down"},
            )
            self._since[name], self._warned[name] = now, True
        elif status.state not in _UP and not self._warned[name] and now - self._since[name] >= self.grace:
            self._warned[name] = True
            log.warning(
                "session %s: not logged on after %.0f s (%s%s). %s",
                name,
                now - self._since[name],
                status.state.value,
                f": {status.text}" if status.text else "",
                self._advice(name),
                extra={"session": name, "event": "session_not_connected"},
            )

    def _advice(self, name: str) -> str:
        spec = self._specs.get(name)
        if spec is None:
            return "It keeps retrying."
        endpoints = spec.endpoints
        where = str(endpoints.primary)
        if endpoints.backup is not None:
            where += f" (primary) or {endpoints.backup} (backup)"
        config = f" in {self._source}" if self._source else ""
        return (
            f"Check that {where} can be reached from this machine (firewall, VPN, cross-connect) and that the "
            f"session's [[group.target]] address{config} is right; it keeps retrying, and says so here when it "
            "logs on"
        )
