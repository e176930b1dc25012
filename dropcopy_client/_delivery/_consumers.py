"""Consumers of the journal's stream: handlers, sinks and iterators, each with its own cursor.

Guarantees (docs/guides/delivery.md):

* every durable event (business message, undecodable message, numbers declared lost) reaches every durable
  consumer at least once, in journal order, across crashes: a consumer's cursor moves only after it
  returned for an event (a sink: for a batch), and the writer persists cursors with its next transaction;
* a consumer re-fed after a restart sees ``event.replayed``; ``event.idempotency_key`` makes at-least-once
  exactly-once in effect;
* a consumer that raises is reported (``HandlerFailed`` with the event attached), is retried with capped
  back-off, and under ``on_error="dead_letter"`` gives the event up to the journal's dead-letter table after
  ``max_attempts``; it never holds up another consumer (each runs on its own thread);
* live events (session states, recovery progress, duplicates, positions, failures) are best-effort: kept in
  a bounded queue per consumer, the oldest dropped (and counted) when a consumer falls far behind.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

from dropcopy_client._delivery._stream import JournalReader, StreamTail
from dropcopy_client._events import HandlerFailed
from dropcopy_client._messages import MessageError, _Business
from dropcopy_client._recovery import UnrecoverableGap
from dropcopy_client.errors import ConfigError

log = logging.getLogger("dropcopy_client.delivery")

Start = Literal["beginning", "now"]
OnError = Literal["retry", "dead_letter"]

#: classes whose events are journaled (and therefore replayed by cursor)
DURABLE: tuple[type, ...] = (_Business, MessageError, UnrecoverableGap)
#: live events a consumer keeps at most while it is behind (the oldest are dropped beyond)
LIVE_CAP = 10_000
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 30.0
HANDLER_BATCH = 256
SINK_BATCH = 512


def wants_durable(types: tuple[type, ...]) -> bool:
    """Whether a consumer of ``types`` receives journaled events (``object`` takes everything)."""
    return any(issubclass(d, t) or issubclass(t, d) for d in DURABLE for t in types)


def wants_live(types: tuple[type, ...]) -> bool:
    """Whether it receives live events: any of its types is not a journaled class."""
    return any(not issubclass(t, DURABLE) for t in types)


@attrs.frozen
class ConsumerStatus:
    """One consumer's progress, as ``client.consumers()`` and ``dropcopy status`` show it."""

    name: str
    kind: str  #: "handler", "sink" or "iterator"
    cursor: int | None  #: last journal id finished (None: a consumer of live events only)
    lag_messages: int  #: journaled events it has not finished
    lag_seconds: float  #: age of the oldest of those (0 when caught up)
    failures: int  #: failed attempts so far
    dead_letters: int  #: events given up (on_error="dead_letter")
    dropped_live: int  #: live events dropped while it was behind
    state: str  #: "running", "retrying", "stopped"
    last_error: str | None


class Consumer:
    """State shared by every kind of consumer."""

    kind = "handler"

    def __init__(
        self,
        name: str,
        types: tuple[type, ...],
        *,
        start: Start,
        on_error: OnError = "retry",
        max_attempts: int = 5,
        durable_cursor: bool = True,
    ) -> None:
        if on_error not in ("retry", "dead_letter"):
            raise ConfigError(
                f"consumer {name!r}: on_error = {on_error!r}: expected 'retry' or 'dead_letter'"
            )
        if start not in ("beginning", "now"):
            raise ConfigError(f"consumer {name!r}: start = {start!r}: expected 'beginning' or 'now'")
        if max_attempts < 1:
            raise ConfigError(f"consumer {name!r}: max_attempts = {max_attempts}: must be at least 1")
        self.name = name
        self.types = types
        self.start = start
        self.on_error: OnError = on_error
        self.max_attempts = max_attempts
        self.durable = wants_durable(types)
        self.live_types = wants_live(types)
        #: whether the cursor is kept in the journal (an unnamed iterator's is not)
        self.persistent = durable_cursor and self.durable
        self.cursor: int | None = None
        #: the cursor last handed to the writer (a handler's cursor moves per event between marks)
        self.marked: int | None = None
        self.live: deque[tuple[int, object]] = deque(maxlen=LIVE_CAP)
        self.dropped_live = 0
        self.failures = 0
        self.dead_lettered = 0
        self.retrying = False
        self.last_error: str | None = None
        self.stopped = False

    def accepts(self, event: object) -> bool:
        return isinstance(event, self.types)

    def offer_live(self, after_id: int, event: object) -> None:
        if len(self.live) == self.live.maxlen:
            self.dropped_live += 1
        self.live.append((after_id, event))


class HandlerConsumer(Consumer):
    """A user function called once per event it accepts."""

    def __init__(
        self, name: str, fn: Callable[[Any], object], types: tuple[type, ...], **kwargs: Any
    ) -> None:
        super().__init__(name, types, **kwargs)
        self.fn = fn


class SinkConsumer(Consumer):
    """A :class:`~dropcopy_client.sinks.Sink`: batches of every durable event."""

    kind = "sink"

    def __init__(
        self, name: str, sink: Any = None, *, opener: Callable[[], Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name, DURABLE, **kwargs)
        if (sink is None) == (opener is None):
            raise TypeError("SinkConsumer takes a sink or an opener (a function that opens it)")
        #: None until ``opener`` succeeded (on the consumer's own thread, retried with back-off)
        self.sink = sink
        self.opener = opener
        self.durable = True
        self.live_types = False


class IteratorConsumer(Consumer):
    """Pulled by the user's own thread (``client.events()``)."""

    kind = "iterator"


class DeliveryHub:
    """Runs the push consumers, feeds the iterators, and tells the writer which cursors moved."""

    def __init__(
        self,
        tail: StreamTail,
        reader: Callable[[], JournalReader],
        *,
        stored_cursors: dict[str, int],
        replay_upto: int,
        positions_for: Callable[[list[object]], tuple[Any, ...]] | None = None,
    ) -> None:
        self.tail = tail
        self._reader_factory = reader
        self._stored = stored_cursors
        self.replay_upto = replay_upto
        self._positions_for = positions_for
        self._consumers: list[Consumer] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._dirty: dict[str, int] = {}
        self._dead: list[tuple[str, int, str, str]] = []
        self.stopping = threading.Event()
        self.started = False

    # ------------------------------------------------------------------------------------------ set-up
    @property
    def consumers(self) -> tuple[Consumer, ...]:
        return tuple(self._consumers)

    def add(self, consumer: Consumer) -> Consumer:
        with self._lock:
            if any(c.name == consumer.name for c in self._consumers):
                raise ConfigError(
                    f"two consumers are named {consumer.name!r}: give one of them name=... (cursors are kept "
                    "by name, so names must be unique and stable)"
                )
            self._consumers.append(consumer)
        if consumer.durable:
            stored = self._stored.get(consumer.name) if consumer.persistent else None
            sink_cursor = _sink_cursor(consumer)
            if sink_cursor is not None:
                consumer.cursor = sink_cursor
            elif stored is not None:
                consumer.cursor = stored
            else:
                consumer.cursor = 0 if consumer.start == "beginning" else self.tail.last_id
                if consumer.persistent:
                    self._mark(consumer)
        if self.started and not isinstance(consumer, IteratorConsumer):
            self._spawn(consumer)
        return consumer

    def remove(self, consumer: Consumer) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._consumers.remove(consumer)

    def start(self) -> None:
        self.started = True
        for consumer in self._consumers:
            if not isinstance(consumer, IteratorConsumer):
                self._spawn(consumer)

    def _spawn(self, consumer: Consumer) -> None:
        thread = threading.Thread(
            target=self._run, args=(consumer,), name=f"dropcopy-{consumer.name}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------------------------------ feeding
    def publish_live(self, event: object, *, exclude: Consumer | None = None) -> None:
        """A live event, after everything journaled so far."""
        after = self.tail.last_id
        for consumer in self._consumers:
            if consumer is not exclude and consumer.live_types and consumer.accepts(event):
                consumer.offer_live(after, event)
        self.tail.wake()

    def wants(self, kind: type) -> bool:
        """Whether any consumer would take events of class ``kind`` (so the writer can skip building them)."""
        return any(c.live_types and issubclass(kind, c.types) for c in self._consumers)

    def take_writes(self) -> tuple[dict[str, int], list[tuple[str, int, str, str]]]:
        """Cursors that moved and dead letters, for the writer's next transaction."""
        with self._lock:
            self._sweep()
            dirty, self._dirty = self._dirty, {}
            dead, self._dead = self._dead, []
        return dirty, dead

    def has_writes(self) -> bool:
        with self._lock:
            self._sweep()
            return bool(self._dirty or self._dead)

    def _sweep(self) -> None:
        """Pick up handler cursors that moved since their last mark: a handler that hangs halfway through
        a batch keeps the events it finished (the cursor is only ever set after the handler returned)."""
        for consumer in self._consumers:
            if isinstance(consumer, HandlerConsumer) and consumer.persistent:
                cursor = consumer.cursor
                if cursor is not None and cursor != consumer.marked:
                    consumer.marked = cursor
                    self._dirty[consumer.name] = cursor

    def give_back(self, dirty: dict[str, int], dead: list[tuple[str, int, str, str]]) -> None:
        """The writer's transaction failed: keep these for the next one."""
        with self._lock:
            for name, value in dirty.items():
                self._dirty.setdefault(name, value)
            self._dead = dead + self._dead

    def _mark(self, consumer: Consumer) -> None:
        if consumer.persistent and consumer.cursor is not None:
            with self._lock:
                consumer.marked = consumer.cursor
                self._dirty[consumer.name] = consumer.cursor

    # ------------------------------------------------------------------------------------------ stopping
    def drain(self, timeout: float) -> bool:
        """Let consumers catch up with the journal for up to ``timeout`` s; True when all did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._caught_up(c) for c in self._consumers if not isinstance(c, IteratorConsumer)):
                return True
            time.sleep(0.02)
        return all(self._caught_up(c) for c in self._consumers if not isinstance(c, IteratorConsumer))

    def _caught_up(self, consumer: Consumer) -> bool:
        if consumer.stopped:
            return True
        durable_done = not consumer.durable or (consumer.cursor or 0) >= self.tail.last_id
        return durable_done and not consumer.live and not consumer.retrying

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        self.tail.close()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.05))
        for consumer in self._consumers:
            consumer.stopped = True
            if isinstance(consumer, SinkConsumer) and consumer.sink is not None:
                try:
                    consumer.sink.close()
                except Exception:
                    log.exception("sink %s: close failed", consumer.name)

    # ------------------------------------------------------------------------------------------ status
    def status(self) -> list[ConsumerStatus]:
        out = []
        reader: JournalReader | None = None
        last = self.tail.last_id
        for c in self._consumers:
            lag = max(last - (c.cursor or 0), 0) if c.durable else 0
            seconds = 0.0
            if lag:
                first = (c.cursor or 0) + 1
                ns = self.tail.received_ns(first)
                if ns is None:
                    reader = reader or self._reader_factory()
                    with contextlib.suppress(Exception):
                        ns = reader.received_ns(first)
                if ns is not None:
                    seconds = max(time.time() - ns / 1e9, 0.0)
            state = "stopped" if c.stopped else "retrying" if c.retrying else "running"
            out.append(
                ConsumerStatus(
                    c.name,
                    c.kind,
                    c.cursor,
                    lag,
                    seconds,
                    c.failures,
                    c.dead_lettered,
                    c.dropped_live,
                    state,
                    c.last_error,
                )
            )
        if reader is not None:
            reader.close()
        return out

    # ------------------------------------------------------------------------------------------ reading
    def read(self, consumer: Consumer, reader: list[JournalReader], limit: int) -> list[tuple[int, object]]:
        after = consumer.cursor or 0
        items = self.tail.read(after, limit)
        if items is None:
            if not reader:
                reader.append(self._reader_factory())
            items = reader[0].read(after, limit)
        return items

    def _wait(self, consumer: Consumer, timeout: float) -> None:
        tail = self.tail
        with tail.cond:
            if tail.closed:
                return
            behind = consumer.durable and (consumer.cursor or 0) < tail.last_id
            if not behind and not consumer.live:
                tail.cond.wait(timeout)

    # ------------------------------------------------------------------------------------------ push loop
    def _run(self, consumer: Consumer) -> None:
        readers: list[JournalReader] = []
        try:
            if isinstance(consumer, SinkConsumer) and consumer.sink is None and not self._open_sink(consumer):
                return
            while not self.stopping.is_set() and not consumer.stopped:
                did = self._deliver_live(consumer)
                if consumer.durable:
                    limit = SINK_BATCH if isinstance(consumer, SinkConsumer) else HANDLER_BATCH
                    items = self.read(consumer, readers, limit)
                    if items:
                        did = True
                        if isinstance(consumer, SinkConsumer):
                            self._sink_batch(consumer, items)
                        elif isinstance(consumer, HandlerConsumer):
                            self._handler_items(consumer, items)
                if not did:
                    self._wait(consumer, 0.2)
        except BaseException:
            log.exception("consumer %s stopped on an internal error", consumer.name)
        finally:
            for reader in readers:
                reader.close()

    def _open_sink(self, consumer: SinkConsumer) -> bool:
        """Open a sink configured by URL: a database that is down holds back this sink only, never the
        sessions or the journal. Retried with capped back-off; False when the client stopped first."""
        assert consumer.opener is not None
        attempt = 0
        while not self.stopping.is_set():
            attempt += 1
            try:
                sink = consumer.opener()
                own = _sink_cursor_of(sink)
            except Exception as exc:
                consumer.retrying = True
                delay = _backoff(attempt)
                self._failed(consumer, None, exc, attempt=attempt, retry_in=delay, doing="opening the sink")
                if self.stopping.wait(delay):
                    return False
                continue
            consumer.retrying = False
            consumer.sink = sink
            if own is not None:
                consumer.cursor = own
                self._mark(consumer)
            if attempt > 1:
                log.info("sink %s: opened after %d attempts", consumer.name, attempt)
            return True
        return False

    def _deliver_live(self, consumer: Consumer) -> bool:
        live = consumer.live
        did = False
        limit = consumer.cursor if consumer.durable else None
        while live and not self.stopping.is_set():
            after, event = live[0]
            if limit is not None and after > limit:
                break
            live.popleft()
            did = True
            if isinstance(consumer, HandlerConsumer):
                try:
                    consumer.fn(event)
                except Exception as exc:
                    self._failed(consumer, event, exc, attempt=1, retry_in=None)
        return did

    def _handler_items(self, consumer: HandlerConsumer, items: list[tuple[int, object]]) -> None:
        """Call the handler for each event it takes. The per-event path is a type check, the call and one
        attribute store; the cursor is handed to the writer once per batch (and before any retry), which
        only ever makes a crash re-deliver more, never less."""
        fn, types, live, stopping = consumer.fn, consumer.types, consumer.live, self.stopping
        try:
            for journal_id, event in items:
                if stopping.is_set():
                    return
                if isinstance(event, types):
                    try:
                        fn(event)
                    except Exception as exc:
                        self._mark(consumer)
                        if not self._call_with_retry(
                            consumer, journal_id, event, _call(fn, event), failed=exc
                        ):
                            return
                consumer.cursor = journal_id
                if live:
                    self._deliver_live(consumer)
        finally:
            self._mark(consumer)

    def _sink_batch(self, consumer: SinkConsumer, items: list[tuple[int, object]]) -> None:
        from dropcopy_client.sinks import Batch

        events = [event for _, event in items]
        first, last = items[0][0], items[-1][0]
        positions = self._positions_for(events) if self._positions_for is not None else ()
        replayed = last <= self.replay_upto
        batch = Batch(tuple(events), first, last, positions, replayed)
        attempt = 0
        while not self.stopping.is_set():
            attempt += 1
            try:
                consumer.sink.write(batch)
            except Exception as exc:
                consumer.retrying = True
                if consumer.on_error == "dead_letter" and attempt >= consumer.max_attempts:
                    # find the event that fails: offer the batch one event at a time
                    consumer.retrying = False
                    for journal_id, event in items:
                        single = Batch(
                            (event,), journal_id, journal_id, positions, journal_id <= self.replay_upto
                        )
                        ok = self._call_with_retry(
                            consumer, journal_id, event, _call(consumer.sink.write, single)
                        )
                        if not ok:
                            return
                        consumer.cursor = journal_id
                        self._mark(consumer)
                    return
                delay = _backoff(attempt)
                self._failed(consumer, events[0], exc, attempt=attempt, retry_in=delay)
                if self.stopping.wait(delay):
                    return
                continue
            consumer.retrying = False
            consumer.cursor = last
            self._mark(consumer)
            return

    def _call_with_retry(
        self,
        consumer: Consumer,
        journal_id: int,
        event: object,
        call: Callable[[], object],
        *,
        failed: Exception | None = None,
    ) -> bool:
        """Call until it returns; False when stopping interrupted it (the cursor stays before the event).
        ``failed``: the first attempt was already made (the fast path) and raised this."""
        attempt = 0
        while True:
            attempt += 1
            try:
                if failed is not None:
                    first, failed = failed, None
                    raise first
                call()
            except Exception as exc:
                if consumer.on_error == "dead_letter" and attempt >= consumer.max_attempts:
                    consumer.retrying = False
                    self._failed(consumer, event, exc, attempt=attempt, retry_in=None)
                    self.dead_letter(consumer, journal_id, event, exc)
                    return True
                consumer.retrying = True
                delay = _backoff(attempt)
                self._failed(consumer, event, exc, attempt=attempt, retry_in=delay)
                if self.stopping.wait(delay):
                    return False
                continue
            consumer.retrying = False
            return True

    def dead_letter(self, consumer: Consumer, journal_id: int, event: object, exc: BaseException) -> None:
        consumer.dead_lettered += 1
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.error(
            "consumer %s gave up event %d (%s) after %d attempts: %s; it is in the journal's dead_letters table",
            consumer.name,
            journal_id,
            type(event).__name__,
            consumer.max_attempts,
            text,
        )
        with self._lock:
            self._dead.append((consumer.name, journal_id, type(event).__name__, text))

    def _failed(
        self,
        consumer: Consumer,
        event: object,
        exc: BaseException,
        *,
        attempt: int,
        retry_in: float | None,
        doing: str | None = None,
    ) -> None:
        consumer.failures += 1
        consumer.last_error = f"{type(exc).__name__}: {exc}"
        what = f"retrying in {retry_in:.1f} s" if retry_in is not None else "not retried"
        log.error(
            "consumer %s raised %s (attempt %d, %s): %s",
            consumer.name,
            doing or f"on {type(event).__name__}",
            attempt,
            what,
            consumer.last_error,
            exc_info=attempt == 1,
        )
        if isinstance(event, HandlerFailed):
            return
        failure = HandlerFailed(
            consumer.name,
            doing or type(event).__name__,
            repr(exc),
            exc,
            event=event,
            attempt=attempt,
            retry_in=retry_in,
        )
        self.publish_live(failure, exclude=consumer)

    # ------------------------------------------------------------------------------------------ iterators
    def puller(self, consumer: IteratorConsumer) -> Puller:
        return Puller(self, consumer)


END = object()


class Puller:
    """The pull side of ``client.events()`` / ``stream()``: the user's own thread is the consumer.

    The cursor moves past a durable event when the *next* one is asked for (the caller is done with it), so a
    crash while handling an event means it is handed out again after a restart (named iterators only).
    """

    def __init__(self, hub: DeliveryHub, consumer: IteratorConsumer) -> None:
        self.hub = hub
        self.consumer = consumer
        self._readers: list[JournalReader] = []
        self._pending: deque[tuple[int, object]] = deque()
        self._done: int | None = None

    def next(self, wait: float) -> object:
        """The next event; None if none came within ``wait`` seconds; :data:`END` once the client stopped."""
        hub, consumer = self.hub, self.consumer
        deadline = time.monotonic() + wait
        while True:
            if self._done is not None:
                consumer.cursor = self._done
                hub._mark(consumer)
                self._done = None
            live = consumer.live
            limit = consumer.cursor if consumer.durable else None
            if live and (limit is None or live[0][0] <= limit):
                return live.popleft()[1]
            if not self._pending and consumer.durable:
                self._pending.extend(hub.read(consumer, self._readers, HANDLER_BATCH))
            if self._pending:
                journal_id, event = self._pending.popleft()
                if consumer.accepts(event):
                    self._done = journal_id
                    return event
                consumer.cursor = journal_id
                hub._mark(consumer)
                continue
            if hub.tail.closed or consumer.stopped:
                return END
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            hub._wait(consumer, min(left, 0.1))

    def close(self) -> None:
        self.consumer.stopped = True
        for reader in self._readers:
            reader.close()
        self._readers = []
        self.hub.remove(self.consumer)


def _backoff(attempt: int) -> float:
    return float(min(BACKOFF_FIRST * 2 ** (attempt - 1), BACKOFF_CAP))


def _call(fn: Callable[[Any], object], arg: object) -> Callable[[], object]:
    return lambda: fn(arg)


def _sink_cursor(consumer: Consumer) -> int | None:
    if not isinstance(consumer, SinkConsumer) or consumer.sink is None:
        return None
    return _sink_cursor_of(consumer.sink)


def _sink_cursor_of(sink: Any) -> int | None:
    """A TransactionalSink's own cursor (None: it keeps none, or never wrote)."""
    cursor = getattr(sink, "cursor", None)
    if not callable(cursor):
        return None
    value = cursor()
    return int(value) if value is not None else None


def default_name(fn: Callable[..., object], taken: Iterable[str]) -> str:
    """``handler:<module>.<qualname>``, with ``#2``, ``#3`` ... for repeats (stable while the code is)."""
    base = f"handler:{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    names = set(taken)
    if base not in names:
        return base
    n = 2
    while f"{base}#{n}" in names:
        n += 1
    return f"{base}#{n}"
