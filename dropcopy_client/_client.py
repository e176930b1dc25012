"""DropCopyClient: the one object a user needs.

Where things run (docs/guides/threading.md):

* QuickFIX runs in a child process of its own (``_engine``), so the engine never waits for the user's GIL and
  a crash in it never takes the user's process down;
* one writer thread in this process (``_ingest``) decodes what the engine forwards, accounts for every
  sequence number, journals, keeps the position book and publishes to consumers;
* every consumer -- each handler registration, each sink, each ``events()``/``stream()`` -- reads the
  journal's stream behind its own cursor on its own thread (``_delivery``), so a slow or failing consumer
  never holds up the engine, the journal or another consumer, and memory stays bounded however far behind it
  falls. For each consumer, events arrive in journal order (per session: sequence order).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self, get_args, overload

import attrs

from dropcopy_client._delivery import (
    ConsumerStatus,
    DeliveryHub,
    HandlerConsumer,
    IteratorConsumer,
    JournalReader,
    SinkConsumer,
    StreamTail,
    default_name,
)
from dropcopy_client._delivery._consumers import END, OnError, Puller, Start
from dropcopy_client._engine import DEFAULT_REFUSAL_PATTERNS, EngineProcess
from dropcopy_client._events import (
    EngineRestarted,
    KeyExpiryWarning,
    SessionState,
)
from dropcopy_client._fills import fills_dataframe, read_fills
from dropcopy_client._fsperm import permission_warnings
from dropcopy_client._handlers import (
    E1,
    E2,
    E3,
    E4,
    E5,
    E6,
    AnyHandler,
    ErrorEvent,
    ErrorHandler,
    ExecutionHandler,
    FillHandler,
    MassActionHandler,
    OrderAckHandler,
    PositionHandler,
    R,
    Register,
    SessionHandler,
    SessionLevelEvent,
)
from dropcopy_client._health import SessionHealth, SessionStatus
from dropcopy_client._ingest import Ingest, SessionRuntime
from dropcopy_client._journal import Journal
from dropcopy_client._messages import ExecutionReport, Fill, OrderAck, OrderMassActionReport
from dropcopy_client._recovery import Ledger, State
from dropcopy_client._sdnotify import Notifier
from dropcopy_client._sessionlog import SessionLog
from dropcopy_client._spec import CME, SessionSpec
from dropcopy_client._stats import IngestStats
from dropcopy_client._week import WeeklySchedule
from dropcopy_client.auth import KeySource
from dropcopy_client.config import ClientConfig, load_config
from dropcopy_client.errors import (
    ConfigError,
    DataDirInUse,
    KeyExpiredError,
    KeyFileError,
    LogonRejectedError,
    LogonTimeout,
    SessionError,
)
from dropcopy_client.positions import (
    FillHistory,
    MemoryFillHistory,
    Position,
    PositionBook,
    SqliteFillHistory,
)
from dropcopy_client.positions._replay import apply_journal
from dropcopy_client.positions._touched import touched_positions

log = logging.getLogger("dropcopy_client")

LOCK_FILE = "lock"
JOURNAL_FILE = "journal.sqlite"
_ITERATOR_NUMBERS = itertools.count(1)
#: how long stop() lets consumers catch up with the journal before it leaves them where they are
DRAIN_TIMEOUT = 30.0


class DropCopyClient:
    """Runs every session of every drop copy group in a configuration and merges them into one event stream."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        today: dt.date | None = None,
        env: dict[str, str] | None = None,
        book: PositionBook | None = None,
        schedule: WeeklySchedule | None = None,
        resend_cap: int = 2500,
        clock_offset: float = 0.0,
        refusal_patterns: tuple[str, ...] = DEFAULT_REFUSAL_PATTERNS,
        poison_strikes: int = 3,
        drain_timeout: float = DRAIN_TIMEOUT,
        cli_hints: bool = False,
        engine_options: dict[str, Any] | None = None,
        gc_freeze_every: int = 10_000,
        key_check_interval: float = 2.0,
    ) -> None:
        self.config = config
        #: after this many journaled messages the writer moves every object alive into the collector's
        #: permanent generation (``gc.freeze()``), so full collections do not rescan long-lived caches and
        #: the book (pauses of seconds otherwise); refcounting still frees them. 0 disables. Every 10,000: one
        #: gen-2 collection (17 ms) in 5 million messages, against 400 (largest 70 ms) every 50,000.
        self.gc_freeze_every = gc_freeze_every
        #: CME's trading week: sequence numbers reset at its boundary, never daily
        self.schedule = schedule or WeeklySchedule.parse(config.weekly_reset)
        if not 1 <= resend_cap <= 2500:
            raise ConfigError(
                f"resend_cap = {resend_cap}: CME answers at most 2,500 messages per ResendRequest"
            )
        self._resend_cap = resend_cap
        #: seconds added to the SendingTime of our Logon (to rehearse a skewed clock against the simulator)
        self.clock_offset = clock_offset
        self._refusal_patterns = refusal_patterns
        self._poison_strikes = poison_strikes
        self.drain_timeout = drain_timeout
        self._cli_hints = cli_hints
        self._engine_options = dict(engine_options or {})
        self.journal: Journal | None = None
        #: the position book fed by this client's stream (read it from any thread with ``snapshot()``)
        self.book = book if book is not None else PositionBook(multipliers=config.positions.multipliers)
        #: the client's own book keeps its fill history in the journal's file ([positions] history)
        self._own_book = book is None
        self._specs = self._build_specs(config, today=today, env=env)
        self._health = {spec.name: SessionHealth(spec.group, spec.name) for spec in self._specs.values()}
        self._status_lock = threading.Lock()
        self._logon_waiters: dict[str, threading.Event] = {name: threading.Event() for name in self._specs}
        self._rejections: dict[str, str] = {}
        self._engine: EngineProcess | None = None
        self._ingest: Ingest | None = None
        self._hub: DeliveryHub | None = None
        self._pending: list[Any] = []  # consumers registered before start()
        self._runtimes: dict[str, SessionRuntime] = {}
        self._lock_fd: int | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = False
        self._restarts = 0
        self._next_boundary: dt.datetime | None = None
        #: seconds between checks of the key files and stores for a rotated key (0: never; see check_keys)
        self.key_check_interval = key_check_interval
        self._keys_checked_on = today or dt.datetime.now(dt.UTC).date()
        self._keys_stop = threading.Event()
        self._key_watcher: threading.Thread | None = None
        #: the writer's counters for metrics (dropcopy_client.metrics); outlives engine restarts
        self._stats = IngestStats()
        self._session_log = SessionLog(
            self._specs,
            grace=float(config.logon_timeout + config.reconnect_interval),
            source=None if config.source.startswith("<") else config.source,
        )
        self._watch_stop = threading.Event()
        self._session_watcher: threading.Thread | None = None
        #: SIGINT/SIGTERM asked this client to stop (run() returns, events()/stream() end); see _Signals
        self._stop_requested = threading.Event()
        self._in_run = False
        for sink in config.sinks:
            self.add_sink(sink.open, name=sink.name, start=sink.start, on_error=sink.on_error)

    # ------------------------------------------------------------------------------------------ set-up
    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kwargs: Any) -> DropCopyClient:
        """Build a client from a TOML configuration file (see ``dropcopy_client.config``)."""
        return cls(load_config(path), **kwargs)

    def _build_specs(
        self, config: ClientConfig, *, today: dt.date | None, env: dict[str, str] | None
    ) -> dict[str, SessionSpec]:
        """Pick a key for every session now: an expired or missing key fails before any connection."""
        self._key_warnings: list[KeyExpiryWarning] = []
        specs: dict[str, SessionSpec] = {}
        self._key_sources: dict[str, KeySource] = {}
        for group in config.groups:
            source = KeySource.from_group(group, env=env)
            source.load()  # key_file, key_store (passphrase: DROPCOPY_KEY_PASSPHRASE) or key_env
            self._key_sources[group.name] = source
            for target in group.targets:
                # without select_key's own log record: start() says it once per key (not per target, not
                # per segment)
                selection = source.select(target.sender_comp_id, group.environment, today=today)
                for segment, endpoints in target.segments.items():
                    spec = SessionSpec(
                        group=group.name,
                        kind=target.kind,
                        sender_comp_id=target.sender_comp_id,
                        segment=segment,
                        endpoints=endpoints,
                        operator=group.operator,
                        location=config.location,
                        heartbeat=config.heartbeat,
                        key=selection.key,
                    )
                    specs[spec.name] = spec
                    if selection.expires_soon and selection.key.expires is not None:
                        self._key_warnings.append(
                            KeyExpiryWarning(
                                group.name,
                                spec.name,
                                selection.key.access_key_id,
                                selection.key.expires,
                                selection.days_left or 0,
                            )
                        )
        if not specs:
            raise ConfigError(f"{config.source}: no sessions configured")
        return specs

    # ------------------------------------------------------------------------------------------ key rotation
    def check_keys(self, *, today: dt.date | None = None, settle: bool = False) -> list[object]:
        """Read every group's key file or store again if it changed on disk (CME's mid-week rotation: download
        the new key into the same file), and point each session's *next* logon at the key it should sign
        with now. The running logons are not touched: CME checks the key at logon only.

        Runs every ``key_check_interval`` seconds while the client runs; call it yourself for an immediate
        check. Returns (and publishes) the ``KeyRotated`` / ``KeyReloadFailed`` events; never raises for a
        bad file (the previous keys stay in use and ``KeyReloadFailed`` names the file). The watcher passes
        ``settle=True``: a change is read once two checks in a row see the same file, never half-copied.
        """
        events: list[object] = []
        day = today or dt.datetime.now(dt.UTC).date()
        new_day = day != self._keys_checked_on
        self._keys_checked_on = day
        groups = {g.name: g for g in self.config.groups}
        for group_name, source in self._key_sources.items():
            reload = source.reload_if_changed(settle=settle)
            if reload is not None and not reload.ok:
                failure = reload.failure_event()
                log.warning("%s", reload.error)
                if failure is not None:
                    events.append(failure)
                continue
            if reload is None and not new_day:
                continue  # nothing new, and no key can have expired since the last check
            group = groups[group_name]
            for name, spec in list(self._specs.items()):
                if spec.group != group_name:
                    continue
                try:
                    choice = source.next_logon_key(
                        spec.sender_comp_id, spec.key, group.environment, today=day
                    )
                except (KeyFileError, KeyExpiredError) as exc:
                    log.error("session %s: %s", name, exc)
                    continue
                if choice.kept_because is not None and reload is not None:
                    log.warning("session %s: %s", name, choice.kept_because)
                rotated = choice.event(group_name, name)
                if rotated is None:
                    continue
                self._specs[name] = attrs.evolve(spec, key=choice.key)
                engine = self._engine
                if engine is not None:
                    engine.set_key(name, choice.key.access_key_id, choice.key.secret.reveal())
                log.info(
                    "session %s: the next logon signs with key %s (was %s)",
                    name,
                    rotated.new_key_id,
                    rotated.old_key_id,
                )
                events.append(rotated)
        if self._hub is not None:
            for event in events:
                self._hub.publish_live(event)
        return events

    def _watch_keys(self) -> None:
        while not self._keys_stop.wait(self.key_check_interval):
            try:
                self.check_keys(settle=True)
            except Exception:  # the watcher must outlive any surprise; the next tick tries again
                log.exception("checking the key files failed")

    @property
    def sessions(self) -> tuple[str, ...]:
        """Names of every session, ``SENDERCOMP:segment``."""
        return tuple(self._specs)

    # ------------------------------------------------------------------------------------------ consumers
    # The overloads only type the handler by the event classes given (see _handlers and tests/typing/):
    # client.on(Fill) takes a Callable[[Fill], object] and rejects a Callable[[TradeBust], object].
    @overload
    def on(
        self, *, name: str | None = ..., start: Start = ..., on_error: OnError = ..., max_attempts: int = ...
    ) -> Register[object]: ...
    @overload
    def on(
        self,
        t1: type[E1],
        /,
        *,
        name: str | None = ...,
        start: Start = ...,
        on_error: OnError = ...,
        max_attempts: int = ...,
    ) -> Register[E1]: ...
    @overload
    def on(
        self,
        t1: type[E1],
        t2: type[E2],
        /,
        *,
        name: str | None = ...,
        start: Start = ...,
        on_error: OnError = ...,
        max_attempts: int = ...,
    ) -> Register[E1 | E2]: ...
    @overload
    def on(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        /,
        *,
        name: str | None = ...,
        start: Start = ...,
        on_error: OnError = ...,
        max_attempts: int = ...,
    ) -> Register[E1 | E2 | E3]: ...
    @overload
    def on(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        t4: type[E4],
        /,
        *,
        name: str | None = ...,
        start: Start = ...,
        on_error: OnError = ...,
        max_attempts: int = ...,
    ) -> Register[E1 | E2 | E3 | E4]: ...
    @overload
    def on(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        t4: type[E4],
        t5: type[E5],
        /,
        *,
        name: str | None = ...,
        start: Start = ...,
        on_error: OnError = ...,
        max_attempts: int = ...,
    ) -> Register[E1 | E2 | E3 | E4 | E5]: ...
    @overload
    def on(
        self,
        t1: type[E1],
        t2: type[E2],
        t3: type[E3],
        t4: type[E4],
        t5: type[E5],
        t6: type[E6],
        /,
        *,
        name: str | None = ...,
        start: Start = ...,
        on_error: OnError = ...,
        max_attempts: int = ...,
    ) -> Register[E1 | E2 | E3 | E4 | E5 | E6]: ...
    @overload
    def on(
        self,
        *types: type[Any],
        name: str | None = ...,
        start: Start = ...,
        on_error: OnError = ...,
        max_attempts: int = ...,
    ) -> Register[Any]: ...
    def on(
        self,
        *types: type[Any],
        name: str | None = None,
        start: Start = "now",
        on_error: OnError = "retry",
        max_attempts: int = 5,
    ) -> Register[Any]:
        """Register a handler for events of the given types (subclasses included; none: every event).

        Used as a decorator, ``@client.on(dc.Fill, dc.TradeBust)``; it returns the handler unchanged. A type
        checker accepts only a handler that takes every one of the types (here ``Fill | TradeBust``, or a
        wider type such as ``ExecutionReport``).

        Each registration is a consumer with a durable cursor called ``name`` (default:
        ``handler:<module>.<qualname>``): after a crash it is re-fed every journaled event it had not
        finished (``event.replayed``). A new one starts at the end of the journal (``start="now"``) or at
        its beginning (``"beginning"``). A handler that raises is retried with back-off; with
        ``on_error="dead_letter"`` it gives the event up after ``max_attempts`` (see docs/guides/delivery.md).
        """

        def register(fn: Callable[[Any], R]) -> Callable[[Any], R]:
            taken = [c.name for c in self._all_consumers()]
            consumer = HandlerConsumer(
                name or default_name(fn, taken),
                fn,
                types or (object,),
                start=start,
                on_error=on_error,
                max_attempts=max_attempts,
            )
            self._add(consumer)
            return fn

        return register

    def on_event(self, fn: AnyHandler) -> AnyHandler:
        """Every event, business and session-level (the handler takes ``object``)."""
        self.on(object)(fn)
        return fn

    def on_execution(self, fn: ExecutionHandler) -> ExecutionHandler:
        """Every execution report (acks, fills, busts, corrections, ...)."""
        self.on(ExecutionReport)(fn)
        return fn

    def on_order_ack(self, fn: OrderAckHandler) -> OrderAckHandler:
        """New-order acknowledgements (39=0): an order is working."""
        self.on(OrderAck)(fn)
        return fn

    def on_fill(self, fn: FillHandler) -> FillHandler:
        """Fills and partial fills."""
        self.on(Fill)(fn)
        return fn

    def on_mass_action(self, fn: MassActionHandler) -> MassActionHandler:
        """Order mass action reports."""
        self.on(OrderMassActionReport)(fn)
        return fn

    def on_error(self, fn: ErrorHandler) -> ErrorHandler:
        """Undecodable messages, frames QuickFIX dropped, numbers declared lost, logon refusals, failing
        consumers, journal failures and key files that changed but cannot be read (``dc.ErrorEvent``)."""
        self.on(*get_args(ErrorEvent))(fn)
        return fn

    def on_position(self, fn: PositionHandler) -> PositionHandler:
        """A position changed (after every fill, bust or correction that touched it; or its gap closed)."""
        self.on(Position)(fn)
        return fn

    def on_session(self, fn: SessionHandler) -> SessionHandler:
        """Session state changes, key expiry warnings, key rotations and reload failures, logon refusals and
        engine restarts (``dc.SessionLevelEvent``)."""
        self.on(*get_args(SessionLevelEvent))(fn)
        return fn

    def add_sink(
        self,
        sink: Any,
        *,
        name: str | None = None,
        start: Start = "beginning",
        on_error: OnError = "retry",
        max_attempts: int = 5,
    ) -> None:
        """Feed a :class:`~dropcopy_client.sinks.Sink` every journaled event, in batches, behind its cursor.

        A new sink starts at the beginning of the journal (a backfill) unless ``start="now"``; a
        :class:`~dropcopy_client.sinks.TransactionalSink` resumes from its own cursor.

        ``sink`` may also be a function that opens one (``lambda: open_sink(url)``; the sinks of the
        configuration's ``[[sink]]`` tables are added this way): it is called on the sink's own thread once the
        client started, and retried with back-off while it raises, so a database that is down at start holds
        back that sink only (``HandlerFailed`` with ``event_type="opening the sink"``), never the sessions.
        """
        is_sink = callable(getattr(sink, "write", None))
        if not is_sink and not callable(sink):
            raise TypeError(f"add_sink: {sink!r} is neither a sink (it has no write(batch)) nor a function")
        consumer_name = name or getattr(sink, "name", None) or f"sink:{type(sink).__name__}"
        options: dict[str, Any] = {"sink": sink} if is_sink else {"opener": sink}
        self._add(
            SinkConsumer(consumer_name, start=start, on_error=on_error, max_attempts=max_attempts, **options)
        )

    def _all_consumers(self) -> list[Any]:
        return list(self._hub.consumers) if self._hub is not None else list(self._pending)

    def _add(self, consumer: Any) -> None:
        if self._hub is not None:
            self._hub.add(consumer)
            return
        if any(c.name == consumer.name for c in self._pending):
            raise ConfigError(
                f"two consumers are named {consumer.name!r}: give one of them name=... (cursors are kept by "
                "name, so names must be unique and stable)"
            )
        self._pending.append(consumer)

    # ------------------------------------------------------------------------------------------ life cycle
    def start(self, *, wait: float | None = None) -> None:
        """Connect every session. With ``wait``, block until all are logged on (raises on refusal/timeout)."""
        if self._engine is not None:
            raise SessionError("client", "already started")
        self._stopping = False
        data_dir = Path(self.config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for warning in permission_warnings(self.config):  # keys and journal readable by others: say so
            log.warning("%s", warning)
        self._lock_data_dir(data_dir)
        self._stop_requested.clear()
        try:
            self._start(data_dir)
        except BaseException:
            self._teardown()
            raise
        _SIGNALS.attach(self)
        if wait is not None:
            self.wait_logged_on(wait)

    def _open_book(self, journal: Journal) -> None:
        """Rebuild the book before any live traffic: from its own rows in the journal's file when it keeps
        them there (no decoding), then the journaled messages those rows do not cover."""
        book = self.book
        if self._own_book:
            history: FillHistory = (
                SqliteFillHistory(journal.path, autocheckpoint=False)
                if self.config.positions.history == "journal"
                else MemoryFillHistory()
            )
            book._restart(history)
        started = time.monotonic()
        loaded = 0
        if book.needs_load:
            book.load()
            loaded = book.history.last_row_id
        # after what the book already holds: its own rows just loaded, or what it was fed before a restart of
        # this client; a book passed in fresh gets the whole journal
        count = apply_journal(journal, book, after=book.last_journal_id if self._own_book or loaded else 0)
        if loaded or count:
            log.info(
                "position book rebuilt in %.1f s: %d rows of its own, %d journaled messages decoded",
                time.monotonic() - started,
                loaded,
                count,
            )

    def _start(self, data_dir: Path) -> None:
        self.journal = journal = Journal(data_dir / JOURNAL_FILE)
        now = dt.datetime.now(dt.UTC)
        self._next_boundary = self.schedule.next_boundary(now)
        ledger = Ledger(journal.max_ledger_id() + 1)
        starts = self._open_ledger(journal, ledger, data_dir, now)
        self._open_book(journal)
        tail = StreamTail(journal.max_id())
        groups = {name: spec.group for name, spec in self._specs.items()}
        replay_upto = tail.last_id
        path = journal.path
        self._hub = hub = DeliveryHub(
            tail,
            lambda: JournalReader(path, groups, replay_upto),
            stored_cursors=journal.cursors(),
            replay_upto=replay_upto,
            positions_for=self._positions_for,
        )
        for consumer in self._pending:
            hub.add(consumer)
        self._pending = []
        self._log_key_expiry()
        for warning in self._key_warnings:
            hub.publish_live(warning)
        hub.start()
        self._ledger = ledger
        self._session_log.begin(self._stats, time.monotonic())
        self._launch(starts)
        self._supervisor = threading.Thread(target=self._supervise, name="dropcopy-supervisor", daemon=True)
        self._supervisor.start()
        if self.key_check_interval > 0 and self._key_watcher is None:
            self._keys_stop.clear()
            self._key_watcher = threading.Thread(target=self._watch_keys, name="dropcopy-keys", daemon=True)
            self._key_watcher.start()
        if self._session_watcher is None:
            self._watch_stop.clear()
            self._session_watcher = threading.Thread(
                target=self._watch_sessions, name="dropcopy-sessions", daemon=True
            )
            self._session_watcher.start()

    def _watch_sessions(self) -> None:
        """A WARNING when a session's connectivity changes (see _sessionlog), checked once a second."""
        while not self._watch_stop.wait(1.0):
            try:
                self._session_log.observe(self.status(), self._stats, time.monotonic())
            except Exception:
                log.exception("watching the sessions failed")

    def _stop_session_watch(self) -> None:
        self._watch_stop.set()
        if self._session_watcher is not None:
            self._session_watcher.join(5)
            self._session_watcher = None

    def _writer_alive(self, max_age: float = 5.0) -> bool:
        """The writer thread turned within ``max_age`` s (the systemd watchdog pings only then)."""
        at = self._stats.writer_alive_at
        return self._engine is not None and at is not None and time.monotonic() - at < max_age

    def _log_key_expiry(self) -> None:
        """One WARNING per key that expires soon, naming every session that signs with it."""
        by_key: dict[str, list[KeyExpiryWarning]] = {}
        for warning in self._key_warnings:
            by_key.setdefault(warning.access_key_id, []).append(warning)
        for key_id, warnings in by_key.items():
            first = warnings[0]
            source = self._key_sources[first.group].name
            where = (
                "put it in DROPCOPY_ACCESS_KEY_ID and DROPCOPY_SECRET_KEY before the next start"
                if source == "environment"
                else f"add it to {source}; the client picks it up without a restart"
            )
            log.warning(
                "key %s (sessions %s) expires on %s, %s days left: generate a new key in CME Customer Center "
                "and %s",
                key_id,
                ", ".join(w.session for w in warnings),
                first.expires,
                first.days_left,
                where,
                extra={"session": first.session, "event": "key_expiry", "key_id": key_id},
            )

    def _open_ledger(
        self, journal: Journal, ledger: Ledger, data_dir: Path, now: dt.datetime
    ) -> dict[str, dict[str, Any]]:
        """Each session's epoch and ledger from the journal; what the engine must expect next.

        The journal owns the inbound position: the engine is told to expect the number after the last one
        accounted for, so whatever reached the engine but not the journal is asked for again. A session whose
        QuickFIX store predates this trading week starts again at 1 on both sides, as CME's
        beginning-of-week logon requires.
        """
        week_start = self.schedule.week_start(now)
        week_epoch = self._week_epoch(now)
        positions = journal.sessions()
        starts: dict[str, dict[str, Any]] = {}
        for name, spec in self._specs.items():
            stored = positions.get(name)
            created = store_created(data_dir, spec)
            reset_store = created is not None and created < week_start
            if reset_store:
                log.info(
                    "session %s: store is from before this week's start (%s); resetting to 1",
                    name,
                    week_start,
                )
            if stored is None or stored.epoch < week_epoch:
                epoch, rows = week_epoch, []
            else:
                epoch, rows = stored.epoch, journal.ledger_rows(name, stored.epoch)
            session_ledger = ledger.open(name, epoch, rows)
            self._runtimes[name] = SessionRuntime(name, spec.group, epoch)
            position = session_ledger.position
            with self._status_lock:
                self._health[name].last_inbound_seq = position or None
                self._health[name].open_gaps = list(session_ledger.holes())
                self._health[name].lost = sum(r.end - r.begin + 1 for r in rows if r.state is State.LOST)
            self._runtimes[name].lost = any(r.state is State.LOST for r in rows)
            starts[name] = {"next_target": position + 1, "reset_store": reset_store}
        return starts

    def _launch(self, starts: dict[str, dict[str, Any]]) -> None:
        """Start an engine process and the writer reading it."""
        assert self.journal is not None and self._hub is not None
        options = dict(self._engine_options)
        engine = EngineProcess(
            list(self._specs.values()),
            data_dir=Path(self.config.data_dir),
            app_fields=(self.config.app_name, self.config.app_version, self.config.app_vendor),
            reconnect_interval=self.config.reconnect_interval,
            logon_timeout=self.config.logon_timeout,
            resend_cap=self._resend_cap,
            starts=starts,
            clock_offset=self.clock_offset,
            refusal_patterns=self._refusal_patterns,
            poison_strikes=self._poison_strikes,
            lock_fd=self._lock_fd,
            **options,
        )
        engine.start()
        self._engine = engine
        self._ingest = Ingest(
            engine=engine,
            journal=self.journal,
            ledger=self._ledger,
            book=self.book,
            hub=self._hub,
            tail=self._hub.tail,
            sessions=self._runtimes,
            health=self._health,
            status_lock=self._status_lock,
            emit_live=self._hub.publish_live,
            on_logged_on=self._logged_on,
            on_rejected=self._rejected,
            next_epoch=self._next_epoch,
            week_boundary=self._week_boundary,
            cli_hints=self._cli_hints,
            gc_freeze_every=self.gc_freeze_every,
            clock_offset=self.clock_offset,
            stats=self._stats,
        )
        self._ingest.start()

    def _supervise(self) -> None:
        """The engine process must not end on its own: when it does, start a new one from the journal."""
        while True:
            ingest = self._ingest
            if ingest is None:
                return
            ingest.engine_ended.wait()
            if self._stopping:
                return
            engine = self._engine
            code = engine.returncode if engine is not None else None
            if engine is not None:
                engine.close(5)
            self._restarts += 1
            delay = min(2 ** (self._restarts - 1), 30)
            log.error(
                "the engine process ended unexpectedly (exit code %s); starting a new one in %d s from the "
                "journal's positions (nothing is lost: what it had not handed over is asked for again)",
                code,
                delay,
            )
            for name in self._specs:
                self._ingest_move(name, SessionState.DISCONNECTED)
            if self._hub is not None:
                self._hub.publish_live(EngineRestarted(code, dt.datetime.now(dt.UTC), self._restarts))
            time.sleep(delay)
            if self._stopping:
                return
            starts = {
                name: {"next_target": self._ledger.session(name).position + 1, "reset_store": False}
                for name in self._specs
            }
            try:
                self._launch(starts)
            except Exception:
                log.exception("cannot start a new engine process; trying again")
                self._ingest = Ingest.__new__(Ingest)
                self._ingest.engine_ended = threading.Event()
                self._ingest.engine_ended.set()

    def _ingest_move(self, name: str, state: SessionState) -> None:
        with self._status_lock:
            event = self._health[name].move(state, dt.datetime.now(dt.UTC))
        if event is not None and self._hub is not None:
            self._hub.publish_live(event)

    def wait_logged_on(self, timeout: float) -> None:
        """Block until every session is logged on. Raises :class:`~dropcopy_client.errors.LogonRejectedError`
        or :class:`~dropcopy_client.errors.LogonTimeout` (a ``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        for name, event in self._logon_waiters.items():
            while not event.wait(0.05):
                if name in self._rejections:
                    raise LogonRejectedError(name, self._rejections[name])
                if time.monotonic() > deadline:
                    raise LogonTimeout(name, timeout)
            if name in self._rejections:
                raise LogonRejectedError(name, self._rejections[name])

    def stop(self, timeout: float | None = None) -> None:
        """Log every session out (after any resend in flight is answered), journal what the engine still
        held, let consumers catch up for up to ``timeout`` seconds (default ``drain_timeout``, 30), then
        leave every cursor where its consumer really is: what it has not finished is delivered next time."""
        engine = self._engine
        if engine is None:
            self._release_lock()
            _SIGNALS.detach(self)
            return
        self._stopping = True
        self._stop_session_watch()
        self._keys_stop.set()
        if self._key_watcher is not None:
            self._key_watcher.join(5)
            self._key_watcher = None
        drain = self.drain_timeout if timeout is None else timeout
        ingest = self._ingest
        if ingest is not None:
            ingest.stopping = True
        with self._status_lock:
            moves = [
                h.move(SessionState.LOGGING_OUT, dt.datetime.now(dt.UTC))
                for h in self._health.values()
                if h.state in (SessionState.LOGGED_ON, SessionState.RECOVERING)
            ]
        for event in moves:
            if event is not None and self._hub is not None:
                self._hub.publish_live(event)
        engine.stop(resend_wait=min(drain, 30.0))
        if ingest is not None and not ingest.join(drain + 20.0):
            log.warning("the engine did not finish within %.0f s; stopping it", drain + 20.0)
            engine.kill()
            ingest.join(10.0)
        engine.close(10.0)
        for name in self._specs:
            self._ingest_move(name, SessionState.STOPPED)
        hub = self._hub
        if hub is not None:
            if not hub.drain(drain):
                behind = [s.name for s in hub.status() if s.lag_messages]
                log.warning(
                    "stop: %s did not catch up within %.0f s; they get the rest when the client starts again",
                    ", ".join(behind) or "some consumers",
                    drain,
                )
            hub.stop()
        if ingest is not None and self.journal is not None and ingest.degraded is None:
            try:
                ingest.process([])  # the cursors where the consumers really stopped
            except Exception:
                log.exception("final cursor write failed; consumers get a few events again next time")
        self._teardown()

    def _teardown(self) -> None:
        self._stop_session_watch()
        if self._engine is not None and self._engine.alive:
            self._engine.kill()
            self._engine.close(5)
        self._engine = None
        self._ingest = None
        if self._hub is not None:
            self._pending = [c for c in self._hub.consumers if not isinstance(c, IteratorConsumer)]
            for consumer in self._pending:
                consumer.stopped = False
        self._hub = None
        try:
            self.book.flush()  # the writer flushes per batch; this is what a failed flush left behind
        except Exception:
            log.exception(
                "position book: the last rows could not be written; the next start decodes them again"
            )
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        self._release_lock()
        _SIGNALS.detach(self)

    def _lock_data_dir(self, data_dir: Path, patience: float = 15.0) -> None:
        """An exclusive lock on ``data_dir`` for this client and its engine process.

        Held by another live client: :class:`DataDirInUse` at once. Held although that client is gone: its
        engine process is still logging out (the client was killed): wait for it, up to ``patience`` s.
        """
        path = data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                os.lseek(fd, 0, os.SEEK_SET)
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
                if (holder.isdigit() and _pid_alive(int(holder))) or time.monotonic() > deadline:
                    os.close(fd)
                    raise DataDirInUse(path, holder) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._lock_fd = fd

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    def run(self) -> None:
        """Start, then block until Ctrl-C or SIGTERM; log out cleanly either way.

        Under systemd (``Type=notify``) it also says ``READY=1`` once every session is logged on (30 s after
        start at the latest), pings the watchdog while the writer turns, and says ``STOPPING=1`` at the end.
        """
        notifier = Notifier(self.status, self._writer_alive)
        self._in_run = True
        _SIGNALS.attach(self, force=True)  # run() promises Ctrl-C and SIGTERM, whatever was installed before
        try:
            self.start()
            notifier.start()
            while not self._stop_requested.wait(0.5):
                pass
        finally:
            notifier.stopping()
            self.stop()
            self._in_run = False
            _SIGNALS.detach(self)

    def _take_signal(self, signum: int) -> bool:
        """Whether this client handles SIGINT/SIGTERM now: ``run()`` returns, running ``events()`` and
        ``stream()`` iterators end (so the ``for`` loop and the ``with client:`` block finish and log out),
        and a signal during ``stop()`` is ignored (it must not cut a logout short). False: nothing here waits
        for it, and the signal does what it would do without the client."""
        if self._stopping:
            log.warning("%s: already logging out; wait for it to finish", signal.Signals(signum).name)
            return True
        if self._stop_requested.is_set():
            return False  # a second Ctrl-C after the iterators ended: the user wants out, as usual
        ended = False
        hub = self._hub
        for consumer in list(hub.consumers) if hub is not None else []:
            if isinstance(consumer, IteratorConsumer) and not consumer.stopped:
                consumer.stopped = True  # its puller returns END within 0.1 s
                ended = True
        if not (ended or self._in_run):
            return False
        self._stop_requested.set()
        log.info("%s: stopping (every session logs out)", signal.Signals(signum).name)
        return True

    def __enter__(self) -> DropCopyClient:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        """``async with client:``: ``start()`` in a worker thread, so the event loop keeps running meanwhile."""
        await asyncio.get_running_loop().run_in_executor(None, self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """``stop()`` in a worker thread: logs out, lets consumers (``stream()`` included) catch up."""
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    def unlock(self, session: str) -> None:
        """Allow a locked-out session to log on again, after the key was fixed (or CME reopened the port)."""
        if self._engine is None:
            raise SessionError(session, "client is not running")
        self._check_session(session)
        self._rejections.pop(session, None)
        self._ingest_move(session, SessionState.DISCONNECTED)
        self._engine.unlock(session)

    def _check_session(self, session: str) -> None:
        if session not in self._specs:
            raise SessionError(session, f"unknown session; configured: {', '.join(self._specs)}")

    # ------------------------------------------------------------------------------------------ consuming
    # events() and stream() yield what ``types`` names: events(types=Fill) is an Iterator[Fill]
    @overload
    def events(
        self, timeout: float | None = ..., *, name: str | None = ..., start: Start = ...
    ) -> Iterator[object]: ...
    @overload
    def events(
        self,
        timeout: float | None = ...,
        *,
        types: type[E1] | tuple[type[E1]],
        name: str | None = ...,
        start: Start = ...,
    ) -> Iterator[E1]: ...
    @overload
    def events(
        self,
        timeout: float | None = ...,
        *,
        types: tuple[type[E1], type[E2]],
        name: str | None = ...,
        start: Start = ...,
    ) -> Iterator[E1 | E2]: ...
    @overload
    def events(
        self,
        timeout: float | None = ...,
        *,
        types: tuple[type[E1], type[E2], type[E3]],
        name: str | None = ...,
        start: Start = ...,
    ) -> Iterator[E1 | E2 | E3]: ...
    @overload
    def events(
        self,
        timeout: float | None = ...,
        *,
        types: tuple[type[E1], type[E2], type[E3], type[E4]],
        name: str | None = ...,
        start: Start = ...,
    ) -> Iterator[E1 | E2 | E3 | E4]: ...
    @overload
    def events(
        self,
        timeout: float | None = ...,
        *,
        types: tuple[type[Any], ...],
        name: str | None = ...,
        start: Start = ...,
    ) -> Iterator[Any]: ...
    def events(
        self,
        timeout: float | None = None,
        *,
        name: str | None = None,
        types: type[Any] | tuple[type[Any], ...] = (object,),
        start: Start = "now",
    ) -> Iterator[Any]:
        """Blocking iterator over events. Ends when the client stops, or after ``timeout`` s of silence.

        ``types`` (one class or a tuple) keeps only those events (subclasses included); the iterator is typed
        by them. Subscribed when called, before ``start()`` too: called before ``start()`` it sees the first
        state change. With ``name`` its cursor is durable: after a crash it resumes with the last event it
        handed out that was not asked past.
        """
        consumer = self._iterator(name, _type_tuple(types), start)
        return self._iterate(consumer, timeout)

    def _iterator(self, name: str | None, types: tuple[type, ...], start: Start) -> IteratorConsumer:
        # a counter, not id(object()): a temporary's id is reused at once, so two iterators made in a row got
        # the same name (and the second a ConfigError before start)
        consumer = IteratorConsumer(
            name or f"iterator:{next(_ITERATOR_NUMBERS)}", types, start=start, durable_cursor=name is not None
        )
        self._add(consumer)
        return consumer

    def _puller(self, consumer: IteratorConsumer, timeout: float | None) -> Puller | None:
        """The puller once the client has started (an iterator may be created before start())."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._hub is None or consumer not in self._hub.consumers:
            if consumer.stopped or (deadline is not None and time.monotonic() > deadline):
                return None
            time.sleep(0.02)
        return self._hub.puller(consumer)

    def _iterate(self, consumer: IteratorConsumer, timeout: float | None) -> Iterator[object]:
        puller = self._puller(consumer, timeout)
        if puller is None:
            return
        try:
            while not consumer.stopped:
                item = puller.next(timeout if timeout is not None else 3600.0)
                if item is END:
                    return
                if item is None:
                    if timeout is not None:
                        return
                    continue
                yield item
        finally:
            puller.close()

    @overload
    def stream(self, *, name: str | None = ..., start: Start = ...) -> AsyncIterator[object]: ...
    @overload
    def stream(
        self, *, types: type[E1] | tuple[type[E1]], name: str | None = ..., start: Start = ...
    ) -> AsyncIterator[E1]: ...
    @overload
    def stream(
        self, *, types: tuple[type[E1], type[E2]], name: str | None = ..., start: Start = ...
    ) -> AsyncIterator[E1 | E2]: ...
    @overload
    def stream(
        self, *, types: tuple[type[E1], type[E2], type[E3]], name: str | None = ..., start: Start = ...
    ) -> AsyncIterator[E1 | E2 | E3]: ...
    @overload
    def stream(
        self,
        *,
        types: tuple[type[E1], type[E2], type[E3], type[E4]],
        name: str | None = ...,
        start: Start = ...,
    ) -> AsyncIterator[E1 | E2 | E3 | E4]: ...
    @overload
    def stream(
        self, *, types: tuple[type[Any], ...], name: str | None = ..., start: Start = ...
    ) -> AsyncIterator[Any]: ...
    def stream(
        self,
        *,
        name: str | None = None,
        types: type[Any] | tuple[type[Any], ...] = (object,),
        start: Start = "now",
    ) -> AsyncIterator[Any]:
        """Async iterator over events, for asyncio applications. Ends when the client stops.

        Subscribed when called, not at the first ``async for`` step: a stream created before ``start()`` (or
        ``async with client:``) sees the first state change. ``types`` as for :meth:`events`.
        """
        consumer = self._iterator(name, _type_tuple(types), start)
        return self._stream(consumer)

    async def _stream(self, consumer: IteratorConsumer) -> AsyncIterator[object]:
        loop = asyncio.get_running_loop()
        puller = await loop.run_in_executor(None, self._puller, consumer, None)
        if puller is None:
            return
        try:
            while not consumer.stopped:
                item = await loop.run_in_executor(None, puller.next, 0.2)
                if item is END:
                    return
                if item is not None:
                    yield item
        finally:
            puller.close()

    # ------------------------------------------------------------------------------------------ history
    def fills(
        self, *, account: str | Iterable[str] | None = None, trade_date: dt.date | None = None
    ) -> list[Fill]:
        """The fills journaled so far, in arrival order, read back from the journal in ``data_dir``.

        Works while the client runs, after it stopped and after a restart (the journal is the record), and
        returns each fill once (the journal de-duplicates by ExecID). ``account``: one account or several;
        ``trade_date``: 75 TradeDate. Spread summaries (``is_spread_summary``) are included: they are fills
        of the spread, which the position book does not count.
        """
        groups = {name: spec.group for name, spec in self._specs.items()}
        path = Path(self.config.data_dir) / JOURNAL_FILE
        return read_fills(path, groups, account=account, trade_date=trade_date)

    def fills_dataframe(
        self,
        *,
        account: str | Iterable[str] | None = None,
        trade_date: dt.date | None = None,
        as_float: bool = False,
    ) -> Any:
        """:meth:`fills` as a pandas DataFrame, one row per fill (``pip install 'dropcopy-client[pandas]'``).

        Prices stay exact ``Decimal`` unless ``as_float``; the columns (``dropcopy_client._fills.FILL_COLUMNS``)
        are the same when there is no fill.
        """
        return fills_dataframe(self.fills(account=account, trade_date=trade_date), as_float=as_float)

    def status(self) -> list[SessionStatus]:
        """A snapshot of every session's state and counters."""
        with self._status_lock:
            return [health.snapshot() for health in self._health.values()]

    def consumers(self) -> list[ConsumerStatus]:
        """Every consumer's cursor and lag (messages and seconds behind the journal)."""
        if self._hub is None:
            return []
        return self._hub.status()

    # ------------------------------------------------------------------------------------------ callbacks
    def _logged_on(self, name: str) -> None:
        self._logon_waiters[name].set()

    def _rejected(self, name: str, text: str) -> None:
        self._rejections[name] = text

    def _positions_for(self, events: list[object]) -> tuple[Position, ...]:
        return touched_positions(self.book, events)

    def _week_epoch(self, now: dt.datetime) -> int:
        """Journal epoch of the trading week containing ``now``: yyyymmdd00 (in-session resets add 1)."""
        return int(self.schedule.week_id(now).replace("-", "")) * 100

    def _next_epoch(self, name: str, why: str) -> int:
        current = self._runtimes[name].epoch
        if why == "week":
            return max(self._week_epoch(dt.datetime.now(dt.UTC)), current + 1)
        return current + 1

    def _week_boundary(self) -> dt.datetime | None:
        """The weekly boundary, once, when it has just passed (checked by the writer when idle)."""
        boundary = self._next_boundary
        now = dt.datetime.now(dt.UTC)
        if boundary is None or now < boundary:
            return None
        self._next_boundary = self.schedule.next_boundary(now)
        return boundary

    def reset_sequences(self, session: str) -> None:
        """In-session reset (141=Y, 34=1): both sides restart at 1 *now*.

        Only when CME support asks for it: every message CME sent before the reset becomes unrecoverable.
        """
        if self._engine is None:
            raise SessionError(session, "client is not running")
        self._check_session(session)
        log.warning(
            "session %s: in-session sequence reset requested: messages CME sent before it become unrecoverable",
            session,
        )
        self._engine.reset(session)

    def is_uncertain(self, session: str) -> bool:
        """True while ``session`` has an open sequence gap, or lost numbers this week: positions may be
        incomplete."""
        runtime = self._runtimes.get(session)
        return bool(runtime is not None and runtime.uncertain)


def _type_tuple(types: type[Any] | tuple[type[Any], ...]) -> tuple[type[Any], ...]:
    """``types=Fill`` and ``types=(Fill,)`` mean the same."""
    if isinstance(types, type):
        return (types,)
    if not types or not all(isinstance(t, type) for t in types):
        raise TypeError(f"types must be a class or a non-empty tuple of classes, not {types!r}")
    return tuple(types)


class _Signals:
    """SIGINT and SIGTERM for every client started on the main thread, installed once for all of them.

    Installed when the first client starts, and only over Python's defaults (SIGINT's KeyboardInterrupt,
    SIGTERM's SIG_DFL) or asyncio.run()'s SIGINT handler: a handler the application installed is left alone
    (``run()`` installs it whatever was there). Restored when the last client stops. A signal no client takes
    (see ``DropCopyClient._take_signal``) does what it would have done: the previous handler is called, SIGINT
    raises KeyboardInterrupt, and SIGTERM raises SystemExit(0) -- so ``with client:`` still logs out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: list[DropCopyClient] = []
        self._previous: dict[int, Any] = {}

    def attach(self, client: DropCopyClient, *, force: bool = False) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            if client not in self._clients:
                self._clients.append(client)
            for sig in (signal.SIGINT, signal.SIGTERM):
                current = signal.getsignal(sig)
                if current is self.handle:
                    continue
                if (
                    force
                    or current in (signal.default_int_handler, signal.SIG_DFL)
                    or _asyncio_sigint(current)
                ):
                    self._previous[sig] = current
                    signal.signal(sig, self.handle)

    def detach(self, client: DropCopyClient) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
            if self._clients or threading.current_thread() is not threading.main_thread():
                return
            for sig, previous in self._previous.items():
                if signal.getsignal(sig) is self.handle:
                    signal.signal(sig, previous)
            self._previous.clear()

    def handle(self, signum: int, frame: Any) -> None:
        taken = [client._take_signal(signum) for client in list(self._clients)]
        if any(taken):
            return
        previous = self._previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise SystemExit(0)


def _asyncio_sigint(handler: Any) -> bool:
    """asyncio.run()'s SIGINT handler (it only cancels the main task, which a stream() can do better)."""
    func = getattr(handler, "func", None)
    return isinstance(getattr(func, "__self__", None), asyncio.Runner)


_SIGNALS = _Signals()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def store_created(data_dir: Path, spec: SessionSpec) -> dt.datetime | None:
    """When QuickFIX created the session's store (its ``.session`` file), or None if it has none yet."""
    path = Path(data_dir) / "store" / f"FIX.4.2-{spec.sender_comp_id}-{CME}-{spec.segment}.session"
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    log.warning("session %s: unreadable store creation time %r in %s", spec.name, text, path)
    return None
