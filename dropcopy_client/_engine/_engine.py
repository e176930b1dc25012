"""Owns the QuickFIX initiator, its settings, store and log factories, and the session handles."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import quickfix as fix

from dropcopy_client._engine._app import EngineApplication, LogFactory, Put
from dropcopy_client._engine._settings import build_settings
from dropcopy_client._spec import CME, SessionSpec

log = logging.getLogger("dropcopy_client.engine")

# `import quickfix` resets SIGINT to SIG_DFL (engine notes §4.2-4): Ctrl-C would kill the process with no
# cleanup. Put Python's default handler back once, at import, in the main thread.
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.default_int_handler)


def dictionary_path() -> Path:
    """The shipped FIX 4.2 + CME data dictionary."""
    return Path(str(importlib.resources.files("dropcopy_client") / "data" / "FIX42-CME.xml"))


class Engine:
    """A ThreadedSocketInitiator running every session of a client (one thread per connection)."""

    def __init__(
        self,
        specs: Iterable[SessionSpec],
        put: Put,
        *,
        data_dir: Path,
        app_name: str,
        app_version: str,
        app_vendor: str,
        reconnect_interval: int = 5,
        logon_timeout: int = 10,
        clock: Callable[[], dt.datetime] | None = None,
        resend_cap: int = 2500,
    ) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.store_dir = Path(data_dir) / "store"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.settings_text = build_settings(
            self.specs.values(),
            store_dir=self.store_dir,
            dictionary=dictionary_path(),
            reconnect_interval=reconnect_interval,
            logon_timeout=logon_timeout,
        )
        self.app = EngineApplication(
            self.specs,
            put,
            app_name=app_name,
            app_version=app_version,
            app_vendor=app_vendor,
            clock=clock,
            resend_cap=resend_cap,
            reconnect_interval=reconnect_interval,
        )
        self._settings = fix.SessionSettings()
        self._settings.setFromString(self.settings_text)
        self._store = fix.FileStoreFactory(self._settings)
        self._logs = LogFactory(
            {spec.quickfix_id: spec.name for spec in self.specs.values()}, put, self.app.on_engine_event
        )
        # Sessions (and their stores) are created here, so sequence numbers can be set before start().
        self._initiator = fix.ThreadedSocketInitiator(self.app, self._store, self._settings, self._logs)
        self._started = False

    def session(self, name: str) -> Any:
        spec = self.specs[name]
        return fix.Session.lookupSession(fix.SessionID("FIX.4.2", spec.sender_comp_id, CME, spec.segment))

    def next_target_seq(self, name: str) -> int:
        """The inbound sequence number the engine expects next."""
        return int(self.session(name).getExpectedTargetNum())

    def next_sender_seq(self, name: str) -> int:
        return int(self.session(name).getExpectedSenderNum())

    def set_next_target_seq(self, name: str, seq: int) -> None:
        """Make the engine ask for everything from ``seq`` on (the journal owns the inbound position)."""
        self.session(name).setNextTargetMsgSeqNum(seq)

    def store_created(self, name: str) -> dt.datetime | None:
        """When QuickFIX created the session's store (its ``.session`` file), or None if it has none yet."""
        spec = self.specs[name]
        path = self.store_dir / f"FIX.4.2-{spec.sender_comp_id}-{CME}-{spec.segment}.session"
        try:
            text = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
            try:
                return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
            except ValueError:
                continue
        log.warning("session %s: unreadable store creation time %r in %s", name, text, path)
        return None

    def new_week(self, name: str) -> None:
        """Weekly boundary: reset the store (QuickFIX logs out first if logged on) and forget open gaps."""
        self.session(name).reset()
        self.app.recovery[name].restart()

    def reset_logon(self, name: str) -> None:
        """In-session reset: log out, then log on with 141=Y (QuickFIX resets the store and sends 34=1)."""
        session = self.session(name)
        with self.app.reset_lock:
            self.app.reset_requested.add(name)
        session.logout()

        def log_on_again() -> None:
            deadline = time.monotonic() + 30
            while session.isLoggedOn() and time.monotonic() < deadline:
                time.sleep(0.05)
            session.logon()

        threading.Thread(target=log_on_again, name=f"dropcopy-reset-{name}", daemon=True).start()

    def reset_store(self, name: str) -> None:
        """Sequence numbers back to 1 on both sides (the weekly reset). Only while disconnected."""
        self.session(name).reset()

    def start(self) -> None:
        self._initiator.start()
        self._started = True

    def stop(self, force: bool = False) -> None:
        """Log every session out and join the engine threads. Call from the main thread, never a callback."""
        self.app.cancel_timers()
        if self._started:
            self._initiator.stop(force)
            self._started = False

    def close(self) -> None:
        """Stop and release the initiator, so its sessions leave QuickFIX's process-wide registry.

        A new Engine for the same sessions can only be built after this (a duplicate SessionID is silently
        ignored by QuickFIX). The application and factories are released after the initiator.
        """
        self.stop()
        self._initiator = None

    def unlock(self, name: str) -> None:
        """Let a locked-out session try again (after the user fixed the key or called CME)."""
        self.app.unlock(name)
        self.session(name).logon()

    def note_disconnect(self, name: str) -> None:
        self.app.note_disconnect(name, self.session(name))

    def is_logged_on(self, name: str) -> bool:
        return bool(self.session(name).isLoggedOn())
