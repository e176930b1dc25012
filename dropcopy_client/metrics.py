"""Prometheus metrics of a running client, read at scrape time (needs ``prometheus-client``: the ``metrics``
extra, ``pip install -e '.[metrics]'`` from a checkout).

Nothing is counted on the message path: :class:`ClientCollector` reads ``client.status()``,
``client.consumers()``, the position book's snapshot and the writer's small per-batch counters each time
Prometheus scrapes, and turns them into metric families. Register it into a registry the application owns and
serve that registry however the application serves HTTP, or with :func:`serve`::

    from prometheus_client import CollectorRegistry
    from dropcopy_client.metrics import ClientCollector, serve

    registry = CollectorRegistry()
    registry.register(ClientCollector(client))
    server = serve(registry, "127.0.0.1:9464")   # http://127.0.0.1:9464/metrics; server.close() at the end

``dropcopy run --metrics ADDR:PORT`` does exactly this. The names, labels and what to alert on are in
docs/guides/operations.md; :data:`METRICS` lists every family this collector exposes.

The exposition format is prometheus_client's: escaping, the ``_total``/``_bucket`` suffixes, OpenMetrics
negotiation and the HTTP server are maintained there and tested against Prometheus itself, which a
hand-written ``/metrics`` page would have to get right on its own.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from dropcopy_client._events import SessionState
from dropcopy_client._stats import Histogram
from dropcopy_client.errors import ConfigError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from dropcopy_client._client import DropCopyClient

__all__ = ["METRICS", "ClientCollector", "MetricsServer", "parse_address", "serve"]

#: every metric family: name (as Prometheus shows it, counters without ``_total``), type, labels, help
METRICS: Final[tuple[tuple[str, str, tuple[str, ...], str], ...]] = (
    ("dropcopy_client_running", "gauge", (), "1 while the client runs (started and not stopped)."),
    (
        "dropcopy_session_up",
        "gauge",
        ("group", "session"),
        "1 while the session is logged on (or recovering a gap), else 0.",
    ),
    (
        "dropcopy_session_state",
        "gauge",
        ("group", "session", "state"),
        "1 for the state the session is in, 0 for the others.",
    ),
    (
        "dropcopy_messages",
        "counter",
        ("group", "session"),
        "Business messages journaled since the client started.",
    ),
    (
        "dropcopy_message_errors",
        "counter",
        ("group", "session"),
        "Business messages that could not be decoded (journaled raw, MessageError events).",
    ),
    (
        "dropcopy_duplicates",
        "counter",
        ("group", "session"),
        "Messages recognised as already journaled (resends, failover replays) and ignored.",
    ),
    (
        "dropcopy_logons",
        "counter",
        ("group", "session"),
        "Logons accepted since the client started.",
    ),
    (
        "dropcopy_disconnects",
        "counter",
        ("group", "session"),
        "Connections that ended after a logon (CME's Logout, a dropped connection, a failover; a stop too).",
    ),
    ("dropcopy_gaps_open", "gauge", ("group", "session"), "Sequence gaps open (being recovered)."),
    (
        "dropcopy_gap_open_messages",
        "gauge",
        ("group", "session"),
        "Sequence numbers missing in the open gaps.",
    ),
    (
        "dropcopy_resend_requests",
        "counter",
        ("group", "session"),
        "ResendRequests sent (each asks for at most 2,500 numbers).",
    ),
    (
        "dropcopy_resend_requested_messages",
        "counter",
        ("group", "session"),
        "Sequence numbers asked for again by those ResendRequests.",
    ),
    (
        "dropcopy_unrecoverable_gaps",
        "counter",
        ("group", "session"),
        "Ranges declared lost since the client started (UnrecoverableGap events; see dropcopy audit).",
    ),
    (
        "dropcopy_lost_messages",
        "gauge",
        ("group", "session"),
        "Sequence numbers declared lost in this trading week (positions of the session stay uncertain).",
    ),
    (
        "dropcopy_last_message_age_seconds",
        "gauge",
        ("group", "session"),
        "Seconds since the session's last inbound message (absent until one arrived).",
    ),
    (
        "dropcopy_last_message_timestamp_seconds",
        "gauge",
        ("group", "session"),
        "Unix time of the session's last inbound message.",
    ),
    (
        "dropcopy_key_days_left",
        "gauge",
        ("group", "session"),
        "Days until the key the session's next logon signs with expires.",
    ),
    (
        "dropcopy_fills",
        "counter",
        (),
        "Fills applied to the position book, busted ones included (rebuilt from the journal at start).",
    ),
    ("dropcopy_busts", "counter", (), "Trade busts applied to the position book."),
    ("dropcopy_corrections", "counter", (), "Trade corrections applied to the position book."),
    (
        "dropcopy_positions_uncertain",
        "gauge",
        (),
        "Positions marked uncertain (their session has an open gap or lost numbers).",
    ),
    (
        "dropcopy_consumer_lag_messages",
        "gauge",
        ("consumer", "kind"),
        "Journaled events the consumer (handler, sink, iterator) has not finished.",
    ),
    (
        "dropcopy_consumer_lag_seconds",
        "gauge",
        ("consumer", "kind"),
        "Age of the oldest event the consumer has not finished (0 when caught up).",
    ),
    (
        "dropcopy_consumer_failures",
        "counter",
        ("consumer", "kind"),
        "Failed attempts of the consumer (a handler or sink that raised).",
    ),
    (
        "dropcopy_consumer_dead_letters",
        "counter",
        ("consumer", "kind"),
        "Events the consumer gave up (on_error='dead_letter').",
    ),
    (
        "dropcopy_consumer_state",
        "gauge",
        ("consumer", "kind", "state"),
        "1 for the consumer's state (running, retrying, stopped), 0 for the others.",
    ),
    (
        "dropcopy_journal_write_seconds",
        "histogram",
        (),
        "Duration of one journal transaction (a batch of up to 512 records, ledger rows and cursors, commit).",
    ),
    (
        "dropcopy_journal_writable",
        "gauge",
        (),
        "0 while journal writes fail (every session is held until they work again), else 1.",
    ),
    (
        "dropcopy_handoff_depth_records",
        "histogram",
        (),
        "Records waiting in the engine hand-off each time the writer read it (1 when the writer keeps up).",
    ),
    (
        "dropcopy_handoff_held",
        "gauge",
        (),
        "1 while the engine holds every session because the hand-off passed its high mark (200,000 records).",
    ),
    (
        "dropcopy_engine_restarts",
        "counter",
        (),
        "Times the engine process ended unexpectedly and was started again.",
    ),
)

_STATES: Final = tuple(state.value for state in SessionState)
_CONSUMER_STATES: Final = ("running", "retrying", "stopped")
_UP: Final = frozenset({SessionState.LOGGED_ON, SessionState.RECOVERING})


class ClientCollector(Collector):
    """Reads a :class:`~dropcopy_client.DropCopyClient` at every scrape (any thread; the client's snapshots are
    frozen copies). ``labels`` are added to every sample: give each client its own (``{"client": "eu"}``) to
    register two clients in one registry."""

    def __init__(self, client: DropCopyClient, *, labels: Mapping[str, str] | None = None) -> None:
        self._client = client
        self._labels = dict(labels or {})

    def describe(self) -> Iterator[Metric]:
        """The families without samples, so a registry refuses a second collector with the same names."""
        for name, kind, labels, doc in METRICS:
            yield self._family(name, kind, labels, doc)

    def _family(self, name: str, kind: str, labels: tuple[str, ...], doc: str) -> Metric:
        names = [*self._labels, *labels]
        if kind == "counter":
            return CounterMetricFamily(name, doc, labels=names)
        if kind == "histogram":
            return HistogramMetricFamily(name, doc, labels=names)
        return GaugeMetricFamily(name, doc, labels=names)

    def collect(self) -> Iterator[Metric]:
        client = self._client
        const = list(self._labels.values())
        families = {name: self._family(name, kind, labels, doc) for name, kind, labels, doc in METRICS}

        def add(name: str, labels: list[str], value: float) -> None:
            families[name].add_metric([*const, *labels], value)  # type: ignore[attr-defined]

        now = time.time()
        today = dt.datetime.now(dt.UTC).date()
        stats = client._stats
        specs = client._specs
        add("dropcopy_client_running", [], 1.0 if client._engine is not None else 0.0)
        for s in client.status():
            where = [s.group, s.session]
            add("dropcopy_session_up", where, 1.0 if s.state in _UP else 0.0)
            for state in _STATES:
                add("dropcopy_session_state", [*where, state], 1.0 if s.state.value == state else 0.0)
            add("dropcopy_messages", where, s.messages)
            add("dropcopy_message_errors", where, s.errors)
            add("dropcopy_duplicates", where, s.duplicates)
            add("dropcopy_logons", where, stats.logons.get(s.session, 0))
            add("dropcopy_disconnects", where, stats.disconnects.get(s.session, 0))
            add("dropcopy_gaps_open", where, len(s.open_gaps))
            add("dropcopy_gap_open_messages", where, sum(max(e - b + 1, 0) for b, e in s.open_gaps))
            add("dropcopy_resend_requests", where, stats.resend_requests.get(s.session, 0))
            add("dropcopy_resend_requested_messages", where, stats.resend_requested.get(s.session, 0))
            add("dropcopy_unrecoverable_gaps", where, stats.unrecoverable_gaps.get(s.session, 0))
            add("dropcopy_lost_messages", where, s.lost)
            if s.last_message_at is not None:
                at = s.last_message_at.timestamp()
                add("dropcopy_last_message_timestamp_seconds", where, at)
                add("dropcopy_last_message_age_seconds", where, max(now - at, 0.0))
            spec = specs.get(s.session)
            if spec is not None and spec.key.expires is not None:
                add("dropcopy_key_days_left", where, (spec.key.expires - today).days)
        fills = busts = corrections = uncertain = 0
        for position in client.book.snapshot():
            fills += position.fill_count + position.busts
            busts += position.busts
            corrections += position.corrections
            uncertain += position.uncertain
        add("dropcopy_fills", [], fills)
        add("dropcopy_busts", [], busts)
        add("dropcopy_corrections", [], corrections)
        add("dropcopy_positions_uncertain", [], uncertain)
        for c in client.consumers():
            who = [c.name, c.kind]
            add("dropcopy_consumer_lag_messages", who, c.lag_messages)
            add("dropcopy_consumer_lag_seconds", who, c.lag_seconds)
            add("dropcopy_consumer_failures", who, c.failures)
            add("dropcopy_consumer_dead_letters", who, c.dead_letters)
            for state in _CONSUMER_STATES:
                add("dropcopy_consumer_state", [*who, state], 1.0 if c.state == state else 0.0)
        self._histogram(families["dropcopy_journal_write_seconds"], stats.journal_write)
        self._histogram(families["dropcopy_handoff_depth_records"], stats.handoff_depth)
        degraded = getattr(client._ingest, "degraded", None)
        add("dropcopy_journal_writable", [], 0.0 if degraded is not None else 1.0)
        add("dropcopy_handoff_held", [], 1.0 if stats.handoff_held else 0.0)
        add("dropcopy_engine_restarts", [], client._restarts)
        yield from families.values()

    def _histogram(self, family: Metric, histogram: Histogram) -> None:
        buckets, _, total = histogram.snapshot()
        family.add_metric(  # type: ignore[attr-defined]
            list(self._labels.values()),
            [(repr(bound) if not math.isinf(bound) else "+Inf", count) for bound, count in buckets],
            total,
        )


def parse_address(text: str, *, where: str = "--metrics") -> tuple[str, int]:
    """``"ADDR:PORT"`` (``"[::1]:9464"`` for IPv6, ``":9464"`` for every address) as ``(host, port)``."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"{where} {text!r}: expected ADDR:PORT, e.g. 127.0.0.1:9464 (port 0: any free port)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


class MetricsServer:
    """The HTTP server :func:`serve` started (a thread of its own); :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(registry: CollectorRegistry, address: str | tuple[str, int]) -> MetricsServer:
    """Serve ``registry`` on ``address`` (``"ADDR:PORT"`` or ``(host, port)``; port 0 picks a free one: see
    ``.port``). Raises OSError when the address cannot be bound (in use, not this machine's)."""
    host, port = parse_address(address) if isinstance(address, str) else address
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
