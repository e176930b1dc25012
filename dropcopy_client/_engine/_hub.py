"""Plumbing of the engine process that touches no QuickFIX object: the hand-off buffer and the event pipe.

* :class:`Outbox` -- the bounded hand-off buffer between QuickFIX's threads and the user's process. Engine
  threads append records (one ``deque.append``, no lock, and a wake-up only when the sender sleeps); one
  sender thread writes them to the socket in batches: a lone message at once (the sender wakes on it), and
  under load whatever queued while the previous batch was written, up to ``BATCH`` records. For ``HOT``
  seconds after a frame the sender polls every ``LINGER`` seconds instead of sleeping, so a busy session's
  messages do not each pay a wake-up (docs/performance.md has the measurements). When more than
  ``high`` records wait (the user's process is not keeping up) it calls ``on_high`` -- the engine process
  logs every session out, so CME keeps the messages and nothing is dropped -- and ``on_low`` once the
  backlog is under ``low``.
* :class:`EventHub` -- reads QuickFIX's ScreenLog output from the pipe standard output points at, and files
  each record under its session. A session's own thread takes its events (:meth:`EventHub.drain` first reads
  whatever is already in the pipe, which includes every event this thread wrote before the callback), so
  events and callbacks reach the recovery policy in the order the engine produced them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from dropcopy_client._engine._protocol import send_frame
from dropcopy_client._engine._screenlog import ScreenLogParser

log = logging.getLogger("dropcopy_client.engine")

#: how long an idle sender waits for a record before looking at its flags again
IDLE_WAIT = 0.05
#: records per frame at most
BATCH = 4096
#: after writing a frame the sender polls the queue every LINGER seconds, for up to HOT seconds, before it
#: sleeps until a put() wakes it: under load, records gather into frames without a wake-up (an Event.set,
#: a futex and a GIL hand-off) per message; an idle session's lone message still goes at once
LINGER = 0.0001
HOT = 0.002


class Outbox:
    """Records for the user's process, in the order the engine produced them."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        high: int,
        low: int,
        on_high: Callable[[int], None],
        on_low: Callable[[int], None],
    ) -> None:
        self._sock = sock
        self._q: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._sleeping = False
        self._high = high
        self._low = low
        self._on_high = on_high
        self._on_low = on_low
        self.held = False
        self.sent = 0
        self.failed: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="dropcopy-engine-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, record: tuple[Any, ...]) -> None:
        """Append a record (any thread). Cheap: this is on QuickFIX's per-message path; it pays for an
        ``Event.set`` only when the sender is asleep (an idle session), never while it is busy."""
        self._q.append(record)
        if self._sleeping:
            self._sleeping = False
            self._wake.set()

    def __len__(self) -> int:
        return len(self._q)

    def _run(self) -> None:
        q = self._q
        wake = self._wake
        sleep, monotonic = time.sleep, time.monotonic
        last_sent = 0.0
        try:
            while True:
                if not q:
                    if self._stop:
                        return
                    if monotonic() - last_sent < HOT:
                        sleep(LINGER)
                        continue
                    wake.clear()
                    self._sleeping = True
                    if not q:  # a put() between the test above and the flag saw no sleeper: look again
                        wake.wait(IDLE_WAIT)
                    self._sleeping = False
                    continue
                waiting = len(q)
                if not self.held and waiting > self._high:
                    self.held = True
                    self._on_high(waiting)
                elif self.held and waiting < self._low:
                    self.held = False
                    self._on_low(waiting)
                batch: list[tuple[Any, ...]] = []
                append, popleft = batch.append, q.popleft
                with contextlib.suppress(IndexError):
                    for _ in range(BATCH):
                        append(popleft())
                send_frame(self._sock, ("batch", batch))
                self.sent += len(batch)
                last_sent = monotonic()
        except OSError as exc:  # the user's process is gone: the control loop sees EOF and stops the engine
            self.failed = exc
            log.debug("outbox: socket closed: %s", exc)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued so far is written (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while self._q and time.monotonic() < deadline and self.failed is None:
            self._wake.set()
            time.sleep(0.01)
        return not self._q

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)


class EventHub:
    """ScreenLog records by session id (``SessionID.toString()``), read from ``fd``."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        self._parser = ScreenLogParser()
        self._lock = threading.Lock()
        self._queues: dict[str, deque[tuple[str, str]]] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dropcopy-engine-events", daemon=True)

    def register(self, session_id: str) -> deque[tuple[str, str]]:
        """The queue ``(kind, text)`` of one session; GLOBAL and unknown sessions' records are logged only."""
        queue: deque[tuple[str, str]] = deque()
        self._queues[session_id] = queue
        return queue

    def start(self) -> None:
        self._thread.start()

    def drain(self) -> None:
        """Read and file whatever the pipe holds now (any thread; never blocks on the pipe)."""
        with self._lock:
            while True:
                try:
                    data = os.read(self._fd, 1 << 16)
                except BlockingIOError:
                    return
                except OSError:
                    return
                if not data:
                    return
                for session_id, kind, text in self._parser.feed(data):
                    queue = self._queues.get(session_id)
                    if queue is not None:
                        queue.append((kind, text))
                    elif kind == "event":
                        log.debug("engine: %s: %s", session_id, text)

    def _run(self) -> None:
        """Keep the pipe from filling up (a full pipe would block QuickFIX's writes)."""
        while not self._closed:
            try:
                readable, _, _ = select.select([self._fd], [], [], 0.1)
            except (OSError, ValueError):
                return
            if readable:
                self.drain()

    def close(self) -> None:
        self._closed = True
        self._thread.join(1.0)
