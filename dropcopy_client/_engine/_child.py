"""The engine process: QuickFIX, the logon signer and the recovery glue, away from the user's GIL.

Started by :class:`~dropcopy_client._engine._process.EngineProcess` as ``python -m
dropcopy_client._engine._child <fd>``: ``fd`` is its end of a socket pair. The configuration, secrets
included, arrives as the first frame on that socket (never in argv, the environment or a file). Everything
QuickFIX processes goes back as records in batches (see ``_protocol``), and commands come the other way.

The process ends when its parent says ``stop``, or when the socket reaches end of stream (the parent died):
then every session logs out and the process exits. It ignores SIGINT (a Ctrl-C in the terminal is the
parent's to handle) and never writes to its standard output, which belongs to QuickFIX's ScreenLog.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dropcopy_client._engine._attempts import LogonBudget
from dropcopy_client._engine._hub import EventHub, Outbox
from dropcopy_client._engine._protocol import LOG, NOTICE, FrameReader, Notice, recv_frames, send_frame

log = logging.getLogger("dropcopy_client.engine")


class _ForwardLogs(logging.Handler):
    """Log records of the engine process travel to the user's process, which logs them as its own."""

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self._outbox = outbox

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # never let logging break the engine
            self._outbox.put((LOG, record.levelno, record.name, record.getMessage()))


class EngineChild:
    def __init__(self, sock: socket.socket, event_fd: int, cfg: dict[str, Any]) -> None:
        from dropcopy_client._engine._session import EngineSession
        from dropcopy_client._engine._settings import dictionary_path

        self.sock = sock
        self.data_dir = Path(cfg["data_dir"])
        self.store_dir = self.data_dir / "store"
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.dictionary = dictionary_path()
        self.reconnect_interval = int(cfg["reconnect_interval"])
        self.logon_timeout = int(cfg["logon_timeout"])
        self.resend_cap = int(cfg["resend_cap"])
        self.clock_offset = float(cfg.get("clock_offset", 0.0))
        name, version, vendor = cfg["app"]
        self.app_fields: tuple[str, str, str] = (str(name), str(version), str(vendor))
        self.poison_strikes = int(cfg.get("poison_strikes", 3))
        #: seconds a suspect number may stay expected before it counts as a strike
        self.strike_after = float(cfg.get("strike_after", 2.0))
        self.quick_end = float(cfg.get("quick_end", 10.0))
        self.backoff_cap = float(cfg.get("backoff_cap", 30.0))
        self.resend_wait = float(cfg.get("resend_wait", 30.0))
        self._refusal = re.compile("|".join(cfg.get("refusal_patterns") or [r"(?!)"]), re.IGNORECASE)
        self.stopping = False
        self.outbox = Outbox(
            sock,
            high=int(cfg.get("outbox_high", 200_000)),
            low=int(cfg.get("outbox_low", 50_000)),
            on_high=self._outbox_high,
            on_low=self._outbox_low,
        )
        self.hub = EventHub(event_fd)
        self.budget = LogonBudget(self.data_dir)
        self._tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        handler = _ForwardLogs(self.outbox)
        root = logging.getLogger("dropcopy_client")
        root.addHandler(handler)
        root.setLevel(int(cfg.get("log_level", logging.INFO)))
        root.propagate = False
        self.sessions = [EngineSession(self, s["index"], _spec(s), s) for s in cfg["sessions"]]
        self._gate_wake = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name="dropcopy-engine-tasks", daemon=True),
            threading.Thread(target=self._gate, name="dropcopy-engine-gate", daemon=True),
        ]

    # ------------------------------------------------------------------------------------------ helpers
    def refuses(self, text: str) -> bool:
        """Whether a Logout's text refuses our ResendRequest (configurable: CME never published the texts)."""
        return bool(text) and self._refusal.search(text) is not None

    def backoff(self, failures: int) -> float:
        """Capped exponential back-off: ``reconnect_interval * 2**(n-1)`` beyond QuickFIX's own interval."""
        if failures <= 0:
            return 0.0
        return float(min(self.reconnect_interval * 2 ** (failures - 1), self.backoff_cap))

    def defer(self, task: Callable[[], None]) -> None:
        """Run ``task`` on the task thread (never on an engine thread: it may wait for the engine)."""
        self._tasks.put(task)

    def wait_for_resend(self, session: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while session.recovery.in_flight is not None and session.is_enabled():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def wait_logged_out(self, session: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        qf = session.session()
        while qf is not None and qf.isLoggedOn():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _outbox_high(self, waiting: int) -> None:
        log.warning(
            "the client process is not keeping up: %d messages wait in the hand-off buffer; every session logs "
            "out until it catches up (CME keeps the messages; they are asked for again)",
            waiting,
        )
        for s in self.sessions:
            self.defer(lambda s=s: s.hold("hand-off buffer full"))  # type: ignore[misc]
        self.outbox.put((NOTICE, -1, Notice.BUFFER, {"waiting": waiting, "held": True}, time.time_ns()))

    def _outbox_low(self, waiting: int) -> None:
        log.info("the hand-off buffer drained (%d waiting); sessions log on again", waiting)
        for s in self.sessions:
            if s.held == "hand-off buffer full":
                s.resume("hand-off buffer drained")
        self.outbox.put((NOTICE, -1, Notice.BUFFER, {"waiting": waiting, "held": False}, time.time_ns()))

    # ------------------------------------------------------------------------------------------ threads
    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                task()
            except BaseException:
                log.exception("engine task failed")

    def poke_gate(self) -> None:
        """Run the logon gate now (a logon ended: a place in the budget may be free)."""
        self._gate_wake.set()

    def _gate(self) -> None:
        """Starts or enables a session when it may log on: not held or locked, past its back-off, inside the
        budget. Woken at once when a logon ends, else every 0.1 s."""
        while not self.stopping:
            try:
                now = time.monotonic()
                for s in self.sessions:
                    if (s.started and s.is_enabled()) or not s.wants_connection() or now < s.reenable_at:
                        continue
                    in_flight = sum(
                        1
                        for o in self.sessions
                        if o.target == s.target and o.started and o.is_enabled() and not o.logged_on
                    )
                    wait = self.budget.wait(s.target, in_flight)
                    if wait > 0:
                        if not s.throttle_noted and wait > 1.0:
                            s.throttle_noted = True
                            failures = self.budget.counted(s.target)
                            log.warning(
                                "%s: %d logon attempts of %s failed in the last 60 s (history in %s); the next "
                                "one waits %.0f s, because CME closes the port after the fifth",
                                s.name,
                                failures,
                                s.target,
                                self.budget.path,
                                wait,
                            )
                            s.notice(Notice.THROTTLED, {"wait": wait, "failures": failures, "why": "budget"})
                        continue
                    s.enable()
                    if not s.started:
                        s.start()
            except BaseException:
                log.exception("logon gate failed")
            self._gate_wake.wait(0.1)
            self._gate_wake.clear()

    # ------------------------------------------------------------------------------------------ run
    def start(self, cfg: dict[str, Any]) -> None:
        for s, sc in zip(self.sessions, cfg["sessions"], strict=True):
            s.build()
            qf = s.session()
            if sc.get("reset_store"):
                qf.reset()
            if sc.get("next_target"):
                qf.setNextTargetMsgSeqNum(int(sc["next_target"]))
            # not started: the gate starts each initiator when its session may log on, so the first logon
            # goes out at once instead of at QuickFIX's next reconnect tick (up to ReconnectInterval later)
        self.outbox.start()
        self.hub.start()
        for worker in self._workers:
            worker.start()

    def handle(self, command: tuple[Any, ...]) -> bool:
        """Carry out one command from the user's process; False when it was ``stop``."""
        kind = command[0]
        if kind == "stop":
            self.stop(float(command[1]) if len(command) > 1 and command[1] is not None else 30.0)
            return False
        targets = self.sessions if len(command) < 2 or command[1] is None else [self.sessions[command[1]]]
        if kind == "hold":
            for s in targets:
                self.defer(lambda s=s: s.hold(command[2]))  # type: ignore[misc]
        elif kind == "resume":
            for s in targets:
                s.resume(command[2] if len(command) > 2 else "resumed")
        elif kind == "resync":
            s = targets[0]
            self.defer(lambda: s.resync(int(command[2]), str(command[3])))
        elif kind == "unlock":
            for s in targets:
                s.unlock()
        elif kind == "reset":
            s = targets[0]
            self.defer(lambda: self._in_session_reset(s))
        elif kind == "new_week":
            for s in targets:
                self.defer(lambda s=s: self._new_week(s))  # type: ignore[misc]
        elif kind == "key":
            from dropcopy_client.auth import ApiKey, SecretKey

            s = targets[0]
            s.key = ApiKey(
                s.key.session_id, command[2], SecretKey(command[3]), None, None, None, "rotated", None
            )
        else:
            log.warning("unknown command %r ignored", kind)
        return True

    def _in_session_reset(self, s: Any) -> None:
        with s._lock:
            s.reset_requested = True
            s.resyncing = True
        try:
            s.disable()
            self.wait_logged_out(s, 30.0)
            s.recovery.restart()
        finally:
            with s._lock:
                s.resyncing = False
                s.reenable_at = 0.0

    def _new_week(self, s: Any) -> None:
        qf = s.session()
        if qf is not None:
            qf.reset()  # logs out first if logged on; both sequence numbers back to 1
        s.recovery.restart()
        s.notice(Notice.EPOCH, {"why": "week"})

    def stop(self, resend_wait: float) -> None:
        """Wait for resends in flight (CME asks for that before a logout), log every session out, flush."""
        self.stopping = True
        deadline = time.monotonic() + resend_wait
        for s in self.sessions:
            self.wait_for_resend(s, max(deadline - time.monotonic(), 0.0))
        for s in self.sessions:
            s.disable()
        for s in self.sessions:
            self.wait_logged_out(s, 5.0)
        # one initiator per session, and each stop() waits for its own threads: stopped one after the other,
        # 20 sessions took 12 s; side by side they take as long as the slowest
        stoppers = [
            threading.Thread(target=s.stop, args=(True,), name=f"stop-{s.name}", daemon=True)
            for s in self.sessions
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(15.0)
        self.close()

    def close(self) -> None:
        self._tasks.put(None)
        self.budget.close()
        self.outbox.put((NOTICE, -1, Notice.STOPPED, None, time.time_ns()))
        self.outbox.close(5.0)
        self.hub.close()


def _spec(s: dict[str, Any]) -> Any:
    from dropcopy_client._spec import SessionSpec
    from dropcopy_client.auth import ApiKey, SecretKey
    from dropcopy_client.config import Endpoint, SessionEndpoints

    backup = Endpoint(*s["backup"]) if s.get("backup") else None
    return SessionSpec(
        group=s["group"],
        kind=s["kind"],
        sender_comp_id=s["sender_comp_id"],
        segment=s["segment"],
        endpoints=SessionEndpoints(Endpoint(*s["primary"]), backup),
        operator=s["operator"],
        location=s["location"],
        heartbeat=int(s["heartbeat"]),
        key=ApiKey(s["key_session"], s["key_id"], SecretKey(s["secret"]), None, None, None, "engine", None),
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # everything QuickFIX writes (its store: sequence numbers and every message sent, logon included) and
    # the logon-attempt log are the owner's alone, whatever the umask of whoever started the client
    os.umask(0o077)
    sock = socket.socket(fileno=int(args[0]))
    # QuickFIX's ScreenLog writes to the process's standard output: point it at a pipe we read.
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 1)
    os.close(write_fd)
    reader = FrameReader()
    cfg: dict[str, Any] | None = None
    pending: list[Any] = []
    while cfg is None:
        frames = recv_frames(sock, reader)
        if frames is None:
            return 2
        for frame in frames:
            if cfg is None and frame[0] == "config":
                cfg = frame[1]
            elif cfg is not None:
                pending.append(frame)
    import quickfix  # noqa: F401  (imported here: it resets SIGINT, which is then ignored again)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = EngineChild(sock, read_fd, cfg)
    cfg["sessions"] = [dict(s, secret="") for s in cfg["sessions"]]  # keep no second copy of the secrets
    send_frame(sock, ("hello", os.getpid()))
    child.start(cfg)
    running = True
    for frame in pending:
        running = running and child.handle(frame)
    while running:
        try:
            frames = recv_frames(sock, reader)
        except OSError:
            frames = None
        if frames is None:  # the user's process is gone: log out quickly and leave
            log.warning("the client process went away; logging every session out")
            child.stop(0.0)
            break
        for frame in frames:
            if running:
                running = child.handle(frame)
    with contextlib.suppress(OSError):
        sock.close()
    # QuickFIX's threads are stopped; leave without running interpreter teardown against them
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
