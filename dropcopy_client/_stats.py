"""Counters of the journal writer that ``status()`` does not carry, for metrics (``dropcopy_client.metrics``).

Updated by the writer thread once per batch, per read from the engine or per engine notice -- never per
message: the writer's per-message path stays as it is. Read from any thread at scrape time; the reader may see
a histogram one observation behind its sum, which a scrape 15 s later corrects.
"""

from __future__ import annotations

import bisect
import threading
from typing import Final

#: seconds of one journal transaction (one batch of up to 512 records, its ledger rows and cursors, commit)
JOURNAL_WRITE_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: records the writer found waiting in the engine hand-off when it read (1 when it keeps up)
HANDOFF_BUCKETS: Final = (1.0, 8.0, 64.0, 512.0, 4096.0, 32768.0, 262144.0)


class Histogram:
    """Fixed buckets, cumulative on read (Prometheus' shape), one lock held for a few instructions."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[tuple[float, int]], int, float]:
        """``([(upper bound, cumulative count), ...], count, sum)``; the last bound is ``inf``."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative, running, total


class IngestStats:
    """What the writer counts for metrics. One per client: it outlives engine restarts."""

    def __init__(self) -> None:
        #: ResendRequests sent, and the numbers they asked for, by session
        self.resend_requests: dict[str, int] = {}
        self.resend_requested: dict[str, int] = {}
        #: ranges declared lost (UnrecoverableGap) since start, by session
        self.unrecoverable_gaps: dict[str, int] = {}
        #: logons, and connections that ended after a logon (a stop's logout included), by session: the
        #: session watcher (_sessionlog) sees a flap shorter than its poll from these
        self.logons: dict[str, int] = {}
        self.disconnects: dict[str, int] = {}
        self.journal_write = Histogram(JOURNAL_WRITE_BUCKETS)
        self.handoff_depth = Histogram(HANDOFF_BUCKETS)
        #: the engine holds every session because the hand-off passed its high mark (and the count it reported)
        self.handoff_held = False
        self.handoff_reported: int | None = None
        #: ``time.monotonic()`` of the writer loop's last turn (the systemd watchdog pings only while it turns)
        self.writer_alive_at: float | None = None

    def resend_sent(self, session: str, begin: int, end: int) -> None:
        self.resend_requests[session] = self.resend_requests.get(session, 0) + 1
        self.resend_requested[session] = self.resend_requested.get(session, 0) + max(end - begin + 1, 0)

    def logged_on(self, session: str) -> None:
        self.logons[session] = self.logons.get(session, 0) + 1

    def logged_out(self, session: str) -> None:
        self.disconnects[session] = self.disconnects.get(session, 0) + 1

    def declared_lost(self, session: str) -> None:
        self.unrecoverable_gaps[session] = self.unrecoverable_gaps.get(session, 0) + 1
