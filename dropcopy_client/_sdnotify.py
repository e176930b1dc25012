"""systemd's notify protocol, without a dependency: one ``AF_UNIX`` datagram to ``$NOTIFY_SOCKET`` per message.

A unit with ``Type=notify`` (examples/deploy/dropcopy.service) learns from these datagrams when the service is
ready (``READY=1``), that it is still alive (``WATCHDOG=1``, every half ``WatchdogSec``) and that it is stopping
(``STOPPING=1``); ``STATUS=`` is the line ``systemctl status`` shows. Outside systemd ``NOTIFY_SOCKET`` is unset
and every call is a no-op, so ``dropcopy run`` and ``client.run()`` always use it.

The protocol (sd_notify(3)): newline-separated ``KEY=VALUE`` assignments in one datagram; a socket path starting
with ``@`` is in the abstract namespace (a NUL byte first). ``WATCHDOG_USEC`` is the watchdog period in
microseconds; ``WATCHDOG_PID``, when set, names the process it is meant for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

from dropcopy_client._events import SessionState
from dropcopy_client._health import SessionStatus

log = logging.getLogger("dropcopy_client")

#: READY=1 at the latest this long after start, logged on or not: systemd's default TimeoutStartSec is 90 s,
#: and a gateway that is down at start (a weekend, a failover) must not make the unit fail and restart-loop
READY_TIMEOUT: Final = 30.0
_UP = frozenset({SessionState.LOGGED_ON, SessionState.RECOVERING})


def notify(message: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Send one datagram to ``$NOTIFY_SOCKET``; False when there is none or it cannot be sent (never raises)."""
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError as exc:
        log.debug("sd_notify to %s failed: %s", address.replace("\0", "@"), exc)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None when no watchdog is armed for
    this process."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    return usec / 2e6


class Notifier:
    """Keeps systemd informed while a client runs, from a thread of its own.

    ``READY=1`` once every session is logged on, or ``ready_timeout`` seconds after :meth:`start` whatever
    their state (``STATUS=`` then names the sessions still trying); ``STATUS=`` whenever the count of sessions
    logged on changes; ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` while ``healthy()`` (the writer thread is
    turning) -- a wedged process stops pinging and systemd restarts it; ``STOPPING=1`` at :meth:`stopping`.
    """

    def __init__(
        self,
        status: Callable[[], list[SessionStatus]],
        healthy: Callable[[], bool],
        *,
        ready_timeout: float = READY_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._status = status
        self._healthy = healthy
        self.ready_timeout = ready_timeout
        self._env = dict(os.environ if env is None else env)
        self.enabled = bool(self._env.get("NOTIFY_SOCKET"))
        self.watchdog = watchdog_interval(self._env)
        self.ready = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status = ""

    def send(self, message: str) -> bool:
        return notify(message, env=self._env) if self.enabled else False

    def start(self) -> None:
        """Call once the client has started (its journal is open and the engine runs)."""
        if not self.enabled or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="dropcopy-sd-notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        next_ping = started
        tick = min(0.5, self.watchdog) if self.watchdog else 0.5
        while not self._done.is_set():
            now = time.monotonic()
            sessions = self._status()
            waiting = [s.session for s in sessions if s.state not in _UP]
            text = f"{len(sessions) - len(waiting)} of {len(sessions)} sessions logged on"
            if waiting and len(waiting) <= 5:
                text += f" (waiting for {', '.join(waiting)})"
            if not self.ready and (not waiting or now - started >= self.ready_timeout):
                self.ready = True
                self._last_status = text
                self.send(f"READY=1\nSTATUS={text}")
            elif text != self._last_status:
                self._last_status = text
                self.send(f"STATUS={text}")
            if self.watchdog and now >= next_ping:
                if self._healthy():
                    self.send("WATCHDOG=1")
                next_ping = now + self.watchdog
            self._done.wait(tick)

    def stopping(self) -> None:
        """``STOPPING=1``: call when the stop begins (systemd then waits ``TimeoutStopSec`` for the exit)."""
        self._done.set()
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(2)
            self._thread = None
        self.send("STOPPING=1\nSTATUS=logging out")
