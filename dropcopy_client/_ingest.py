"""The journal writer: engine records -> decode -> ledger -> journal -> position book -> stream.

One thread, reading the engine process's batches. For each batch, in one journal transaction: every business
message at a number not yet accounted for is decoded and journaled (or recorded as a duplicate of what is),
every admin message, gap fill, reset and loss is written to the sequence ledger, and consumer cursors that
moved are written too. Only after the commit are the events stamped with their journal ids, applied to the
position book and published to consumers. If the transaction fails (disk full, I/O error) nothing of the batch
counts: every session is held (logged out, so CME keeps the messages), an error event is emitted, writing is
retried with back-off, and when it works again every session is resumed from the ledger's position, so CME
sends what was missed. The ledger's position never passes a number that is not accounted for.

The writer is also the backstop for QuickFIX's silent steps (engine notes §2.1, §3.3): a message processed
in sequence while a lower number was never accounted for means the engine stepped over it; the session is
made to ask again from there, and after ``skip_limit`` such steps over the same number it is declared lost
with its cause.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from dropcopy_client._decode import decode
from dropcopy_client._delivery import DeliveryHub, JournalReader, StreamTail
from dropcopy_client._engine import ADMIN, APP, GAPFILL, LOG, LOST, NOTICE, RESET, EngineProcess, Notice
from dropcopy_client._events import FrameDropped, JournalFailed, LogonRejected, SessionState
from dropcopy_client._health import SessionHealth
from dropcopy_client._journal import LOST as LOST_TYPE
from dropcopy_client._journal import Journal, JournalEntry, JournalError, dedupe_key_for, lost_notice_raw
from dropcopy_client._messages import (
    BusinessMessageReject,
    ExecutionReport,
    MessageError,
    OrderCancelReject,
    OrderMassActionReport,
    UnknownMessage,
    utc_from_ns,
)
from dropcopy_client._recovery import (
    DuplicateIgnored,
    GapDetected,
    GapFilled,
    Ledger,
    ResendRequested,
    State,
    UnrecoverableGap,
)
from dropcopy_client._stats import IngestStats
from dropcopy_client._wire import redact
from dropcopy_client.positions import Position, PositionBook, SqliteFillHistory

log = logging.getLogger("dropcopy_client")

_MSG_TYPES: dict[type, str] = {
    OrderMassActionReport: "BZ",
    OrderCancelReject: "9",
    BusinessMessageReject: "j",
}
#: records per journal transaction at most
WRITE_BATCH = 512
#: how often the engine may step over the same number before it is declared lost
SKIP_LIMIT = 3
#: clock difference with CME (Logout SendingTime vs our clock) worth saying in a logon refusal
SKEW_WORTH_SAYING = 5.0


def journal_entry(name: str, ns: int, data: bytes, event: object) -> JournalEntry:
    """The journal row for one decoded (or undecodable) message."""
    if isinstance(event, ExecutionReport):  # nearly every message: built positionally, no detours
        delivery = event.delivery
        exec_id = event.exec_id
        day = event.trade_date
        if exec_id:
            key: str | None = "E:" + exec_id
        elif exec_id is None:
            key = _source_dedupe_key(name, event, "8")
        else:
            key = None  # an empty ExecID (the decoder never yields one): no key, as dedupe_key_for says
        return JournalEntry(
            name,
            delivery.seq_num,
            ns,
            data,
            "8",
            key,
            exec_id,
            event.account,
            event.security_id,
            None if day is None else _date_text(day),
            delivery.poss_dup,
            delivery.poss_resend,
        )
    if isinstance(event, MessageError):
        seq = event.delivery.seq_num if event.delivery is not None else 0
        return JournalEntry(name, seq, ns, redact(data), "?", None)
    delivery = event.delivery  # type: ignore[attr-defined]
    msg_type = event.msg_type if isinstance(event, UnknownMessage) else _MSG_TYPES.get(type(event), "?")
    return JournalEntry(
        name,
        delivery.seq_num,
        ns,
        data,
        msg_type,
        _source_dedupe_key(name, event, msg_type),
        None,
        None,
        None,
        None,
        delivery.poss_dup,
        delivery.poss_resend,
    )


def _source_dedupe_key(name: str, event: Any, msg_type: str) -> str | None:
    """The dedupe key of a message without ExecID: its source header (see ``dedupe_key_for``)."""
    source = event.source
    sent = source.sending_time.isoformat() if source.sending_time is not None else None
    return dedupe_key_for(None, name, source.sender_comp_id, source.seq_num, sent, msg_type)


#: yyyymmdd text of the trade dates seen (a handful a week)
_DATE_TEXT: dict[dt.date, str] = {}


def _date_text(day: dt.date) -> str:
    text = _DATE_TEXT.get(day)
    if text is None:
        text = f"{day.year:04d}{day.month:02d}{day.day:02d}"
        if len(_DATE_TEXT) < 4096:
            _DATE_TEXT[day] = text
    return text


def _stamp(event: object, journal_id: int) -> None:
    """Give a freshly journaled event its journal id (before anyone else sees the object)."""
    delivery = getattr(event, "delivery", None)
    if isinstance(event, MessageError | UnrecoverableGap):
        object.__setattr__(event, "journal_id", journal_id)
    if delivery is not None and not isinstance(event, MessageError):
        object.__setattr__(delivery, "journal_id", journal_id)


@attrs.define
class SessionRuntime:
    """What the writer keeps per session besides its ledger."""

    name: str
    group: str
    epoch: int
    engine_gap: bool = False  #: the engine reports an open gap (GapDetected, not yet filled)
    lost: bool = False  #: numbers were declared lost this epoch (positions stay uncertain)
    uncertain: bool = False
    resync_pending: int | None = None  #: a hole we asked the engine to fetch again


#: the book's rows are written once this many wait (and every 0.2 s whatever waits): 64 measured best (every
#: batch: three more pages in every small commit; 512: a 3-5 ms write that shows in p99). Rows in the journal's
#: file (the client's default) go into the next journal transaction; a history of its own commits on its own.
BOOK_FLUSH_ROWS = 64


class Ingest:
    """The writer thread and everything it owns while the client runs."""

    def __init__(
        self,
        *,
        engine: EngineProcess,
        journal: Journal,
        ledger: Ledger,
        book: PositionBook,
        hub: DeliveryHub,
        tail: StreamTail,
        sessions: dict[str, SessionRuntime],
        health: dict[str, SessionHealth],
        status_lock: threading.Lock,
        emit_live: Callable[[object], None],
        on_logged_on: Callable[[str], None],
        on_rejected: Callable[[str, str], None],
        next_epoch: Callable[[str, str], int],
        week_boundary: Callable[[], dt.datetime | None],
        cli_hints: bool = False,
        gc_freeze_every: int = 0,
        clock_offset: float = 0.0,
        stats: IngestStats | None = None,
    ) -> None:
        self.engine = engine
        #: counters for metrics, updated per batch or notice (never per message)
        self.stats = stats if stats is not None else IngestStats()
        self.clock_offset = clock_offset
        self._freeze_every = gc_freeze_every
        self._since_freeze = 0
        self.journal = journal
        self.ledger = ledger
        self.book = book
        self._book_failing = False
        self._history_checked: object = None
        self._history_shared = False
        self.hub = hub
        self.tail = tail
        self.sessions = sessions
        #: session names by the index engine records carry
        self.names = [spec.name for spec in engine.specs] or list(sessions)
        self.health = health
        self._status_lock = status_lock
        self._emit = emit_live
        self._on_logged_on = on_logged_on
        self._on_rejected = on_rejected
        self._next_epoch = next_epoch
        self._week_boundary = week_boundary
        self.cli_hints = cli_hints
        self.stopping = False
        self.degraded: JournalError | None = None
        self._retry_at = 0.0
        self._retry_delay = 1.0
        self._pending_lost: list[tuple[str, int, int, str]] = []
        self.dropped_while_degraded = 0
        self.engine_ended = threading.Event()
        self.stopped_seen = False
        self._thread = threading.Thread(target=self._run, name="dropcopy-writer", daemon=True)

    @classmethod
    def standalone(
        cls,
        journal: Journal,
        sessions: dict[str, str],
        engine: Any,
        *,
        book: PositionBook | None = None,
        emit_live: Callable[[object], None] | None = None,
    ) -> Ingest:
        """A writer with no client around it: ``sessions`` maps name to group, ``engine`` is anything with the
        EngineProcess commands the writer calls (``resync``, ``hold``, ``resume``, ``new_week``) and ``specs``/
        ``index``. For replays, benchmarks and the accounting model tests; call :meth:`process` directly."""
        ledger = Ledger(journal.max_ledger_id() + 1)
        runtimes = {}
        for name, group in sessions.items():
            epoch = journal.sessions()[name].epoch if name in journal.sessions() else 0
            ledger.open(name, epoch, journal.ledger_rows(name, epoch))
            runtimes[name] = SessionRuntime(name, group, epoch)
        tail = StreamTail(journal.max_id())
        hub = DeliveryHub(
            tail, lambda: JournalReader(journal.path, sessions, 0), stored_cursors={}, replay_upto=0
        )
        return cls(
            engine=engine,
            journal=journal,
            ledger=ledger,
            book=book or PositionBook(),
            hub=hub,
            tail=tail,
            sessions=runtimes,
            health={name: SessionHealth(group, name) for name, group in sessions.items()},
            status_lock=threading.Lock(),
            emit_live=emit_live or hub.publish_live,
            on_logged_on=lambda name: None,
            on_rejected=lambda name, text: None,
            next_epoch=lambda name, why: runtimes[name].epoch + 1,
            week_boundary=lambda: None,
        )

    # ------------------------------------------------------------------------------------------ thread
    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        last_flush = time.monotonic()
        early = getattr(self.engine, "early", [])
        try:
            if early:
                self._frames(early)
            while True:
                frames = self.engine.recv(0.05)
                if frames is None:
                    break
                if frames:
                    self._frames(frames)
                now = time.monotonic()
                if self.degraded is not None and now >= self._retry_at:
                    self._probe()
                if now - last_flush > 0.2:
                    last_flush = now
                    self.stats.writer_alive_at = now
                    self._idle()
        except BaseException:
            log.exception("the journal writer stopped on an internal error")
        finally:
            try:
                self._idle()
            except BaseException:
                log.exception("final cursor flush failed")
            self.engine_ended.set()

    def _frames(self, frames: list[Any]) -> None:
        records: list[tuple[Any, ...]] = []
        for frame in frames:
            if frame[0] == "batch":
                records.extend(frame[1])
        self.stats.handoff_depth.observe(len(records))
        # one transaction per WRITE_BATCH records: consumers at the live edge start on the first ones at once
        # (latency), and a batch never outgrows the stream tail they read from (a consumer behind the tail
        # decodes again from the journal)
        for start in range(0, len(records), WRITE_BATCH):
            self.process(records[start : start + WRITE_BATCH])

    def _idle(self) -> None:
        """No batch for a while: write cursors that moved, check the trading week."""
        boundary = self._week_boundary()
        if boundary is not None and not self.stopping:
            log.warning("trading week boundary (%s): every session's sequence numbers go back to 1", boundary)
            for name in self.names:
                self.engine.new_week(name)
        shared = self._book_in_journal()
        if (
            self.degraded is None
            and not self.journal._closed
            and (self.hub.has_writes() or self._pending_lost or (shared and self.book.unflushed))
        ):
            self.process([])  # also writes the book's rows when they live in the journal's file
        if not self.journal._closed and not shared:
            self._flush_book()

    def _book_in_journal(self) -> bool:
        """Is the book's history the journal's own file (the client's default)? Then its rows go into the
        journal's transactions instead of commits of their own."""
        history = self.book.history
        if history is not self._history_checked:
            self._history_checked = history
            try:
                self._history_shared = (
                    isinstance(history, SqliteFillHistory)
                    and not history.readonly
                    and history.path.resolve() == self.journal.path.resolve()
                )
            except OSError:
                self._history_shared = False
        return self._history_shared

    # ------------------------------------------------------------------------------------------ batches
    def process(self, records: list[tuple[Any, ...]]) -> None:
        if self.degraded is not None:
            self._while_degraded(records)
            return
        ledger = self.ledger
        sessions = self.sessions
        names = self.names
        # Pass 1: decode every business message at a number not accounted for yet.
        decoded: dict[int, list[tuple[object, JournalEntry]]] = {}
        keys: list[str] = []
        for i, rec in enumerate(records):
            if rec[0] != APP:
                continue
            name = names[rec[1]]
            if ledger.session(name).is_accounted(rec[2]):
                continue
            runtime = sessions[name]
            data = rec[4].encode("utf-8", "surrogateescape")
            ns = rec[3]
            events = decode(
                data,
                group=runtime.group,
                session=name,
                received_at=utc_from_ns(ns),
                uncertain=runtime.uncertain,
            )
            pairs: list[tuple[object, JournalEntry]] = []
            for event in events:
                entry = journal_entry(name, ns, data, event)
                pairs.append((event, entry))
                if entry.dedupe_key is not None:
                    keys.append(entry.dedupe_key)
            decoded[i] = pairs
        dirty, dead = self.hub.take_writes()
        ledger.begin()
        out = _Batch()
        book_rows: tuple[int, int, int] | None = None
        shared = self._book_in_journal()
        began = time.perf_counter()
        try:
            with self.journal.transaction() as tx:
                known = tx.known_keys(keys) if keys else set()
                for name, begin, end, reason in self._pending_lost:
                    self._lose(out, name, begin, end, reason, time.time_ns(), None)
                for i, rec in enumerate(records):
                    self._account(out, i, rec, decoded.get(i), known)
                epochs = {name: rt.epoch for name, rt in sessions.items()}
                ids = tx.insert([entry for _, entry in out.journaled], epochs)
                if out.duplicates:
                    tx.duplicates(out.duplicates)
                rows = ledger.take_rows()
                if rows:
                    tx.ledger(rows)
                for name in out.touched:
                    sl = ledger.session(name)
                    tx.position(name, sessions[name].epoch, sl.position, sl.highest)
                if dirty:
                    tx.cursors(dirty)
                for consumer, journal_id, event_type, error in dead:
                    tx.dead_letter(consumer, journal_id, event_type, error)
                if shared and self.book.unflushed >= (1 if not records else BOOK_FLUSH_ROWS):
                    # the rows of the batches published so far and the journal id they cover, in this commit
                    book_rows = self.book._write_rows_into(tx.connection)
        except JournalError as exc:
            ledger.rollback()
            self.hub.give_back(dirty, dead)
            for name, epoch in out.epoch_undo.items():
                sessions[name].epoch = epoch
            self._degrade(exc, len(records))
            return
        self.stats.journal_write.observe(time.perf_counter() - began)
        if book_rows is not None:
            self.book._rows_written(book_rows)
        self._pending_lost = []
        self._after_commit(out, ids)
        if self._freeze_every:
            self._since_freeze += len(ids)
            if self._since_freeze >= self._freeze_every:
                self._since_freeze = 0
                gc.freeze()

    def _account(
        self,
        out: _Batch,
        i: int,
        rec: tuple[Any, ...],
        pairs: list[tuple[object, JournalEntry]] | None,
        known: set[str],
    ) -> None:
        kind = rec[0]
        if kind == LOG:
            logging.getLogger(rec[2]).log(rec[1], "%s", rec[3])
            return
        if kind == NOTICE:
            if rec[1] < 0:
                out.notices.append((None, rec[2], rec[3], rec[4]))
                return
            name = self.names[rec[1]]
            code, payload = rec[2], rec[3]
            if code == Notice.EPOCH or (code == Notice.LOGON_SENT and payload.get("reset")):
                self._new_epoch(out, name, "week" if code == Notice.EPOCH else "reset", rec[4])
            out.notices.append((name, code, payload, rec[4]))
            return
        name = self.names[rec[1]]
        sl = self.ledger.session(name)
        out.touched.add(name)
        if kind == APP:
            seq, ns = rec[2], rec[3]
            if pairs is None:
                out.repeats[name] = out.repeats.get(name, 0) + 1  # a number already accounted for, again
                return
            self._check_skip(out, name, seq)
            if not pairs:
                sl.account(seq, seq, State.ADMIN, ns, "no business event")
                return
            for event, entry in pairs:
                key = entry.dedupe_key
                if key is not None and (key in known or key in out.keys):
                    sl.account(seq, seq, State.DUPLICATE, ns)
                    out.duplicates.append((name, self.sessions[name].epoch, seq, ns, key))
                    notice = DuplicateIgnored(
                        name, seq, key, getattr(event, "exec_id", None), utc_from_ns(ns)
                    )
                    out.live.append(attrs.evolve(notice, event=event))
                    out.dup_count[name] = out.dup_count.get(name, 0) + 1
                else:
                    if key is not None:
                        out.keys.add(key)
                    sl.account(seq, seq, State.JOURNALED, ns)
                    out.journaled.append((event, entry))
                    out.messages[name] = out.messages.get(name, 0) + 1
                    out.last_seq[name] = seq
        elif kind == ADMIN:
            _, _, seq, ns, msg_type, early, info = rec
            if not early:
                self._check_skip(out, name, seq)
            sl.account(seq, seq, State.ADMIN, ns)
            out.last_seq[name] = max(out.last_seq.get(name, 0), seq)
            if msg_type == "5" and info:
                out.logouts.append((name, info, ns))
        elif kind == GAPFILL:
            _, _, seq, new_seq, ns = rec
            self._check_skip(out, name, seq)
            sl.account(seq, new_seq - 1, State.GAP_FILLED, ns)
        elif kind == RESET:
            _, _, seq, new_seq, ns = rec
            reason = (
                f"CME sent a SequenceReset-Reset (35=4 without 123=Y) at 34={seq} with NewSeqNo={new_seq}: "
                "the numbers below it will never be sent"
            )
            if seq == sl.position + 1 and seq < new_seq:
                sl.account(seq, seq, State.ADMIN, ns)  # the Reset itself, in sequence
            if new_seq > 1:
                self._lose(out, name, 1, new_seq - 1, reason, ns, None)
        elif kind == LOST:
            _, _, begin, end, ns, reason, raw = rec
            for b, e in sl.unaccounted(begin, end):
                self._lose(out, name, b, e, reason, ns, raw)

    def _lose(
        self, out: _Batch, name: str, begin: int, end: int, reason: str, ns: int, raw: bytes | None
    ) -> None:
        """Declare every unaccounted number of ``[begin, end]`` lost: ledger rows, a journaled notice, an event."""
        sl = self.ledger.session(name)
        runtime = self.sessions[name]
        for b, e in sl.unaccounted(begin, end):
            sl.account(b, e, State.LOST, ns, reason)
            out.touched.add(name)
            gap = UnrecoverableGap(name, b, e, reason, utc_from_ns(ns), raw)
            raw_row = lost_notice_raw(name, runtime.epoch, b, e, reason, ns, raw)
            out.journaled.append((gap, JournalEntry(name, b, ns, raw_row, LOST_TYPE, None)))
            out.lost.append(gap)

    def _check_skip(self, out: _Batch, name: str, seq: int) -> None:
        hole = self.ledger.session(name).skipped(seq)
        if hole is not None and name not in out.skips:
            out.skips[name] = (hole, seq)

    def _new_epoch(self, out: _Batch, name: str, why: str, ns: int) -> None:
        """The session's numbers restart at 1: what is still missing in the old epoch can never come."""
        runtime = self.sessions[name]
        sl = self.ledger.session(name)
        cause = (
            "the trading week ended before it was recovered"
            if why == "week"
            else "an in-session sequence reset (141=Y) made it unrecoverable"
        )
        for b, e in sl.holes():
            self._lose(out, name, b, e, cause, ns, None)
        out.epoch_undo.setdefault(name, runtime.epoch)
        runtime.epoch = self._next_epoch(name, why)
        runtime.lost = False
        runtime.engine_gap = False
        self.ledger.open(name, runtime.epoch)
        out.touched.add(name)
        out.new_epochs.add(name)
        log.warning("session %s: sequence numbers restart at 1 (epoch %d, %s)", name, runtime.epoch, why)

    # ------------------------------------------------------------------------------------------ after commit
    def _flush_book(self, *, pending: int = 0) -> None:
        """The book's rows, in a transaction of their own after the journal's: once ``pending`` rows wait
        (after a batch) and whatever waits every 0.2 s (``_idle``), so a trickle of small batches does not pay a
        second commit each. A failure or a crash costs nothing durable: the rows stay pending for the next
        flush, and a restart decodes the journal rows the book's rows lack."""
        if self.book.unflushed < max(pending, 1):
            return
        try:
            self.book.flush()
        except Exception as exc:
            if not self._book_failing:
                log.error(
                    "position book: writing its rows to %s failed (%s); positions stay right in memory, the "
                    "rows are written again with the next batch",
                    getattr(self.book.history, "path", "its history"),
                    exc,
                )
            self._book_failing = True
            return
        if self._book_failing:
            log.info("position book: rows written again")
            self._book_failing = False

    def _after_commit(self, out: _Batch, ids: list[int]) -> None:
        for gap in out.lost:
            self.sessions[gap.session].lost = True
            self.stats.declared_lost(gap.session)
            with self._status_lock:
                self.health[gap.session].lost += gap.end - gap.begin + 1
            log.error(
                "session %s: messages %d-%d are lost: %s. Positions of this session stay uncertain; run "
                "`dropcopy audit` for the list of every such range",
                gap.session,
                gap.begin,
                gap.end,
                gap.reason,
            )
        for name in out.touched | out.new_epochs:
            self._refresh_uncertainty(name)  # before anyone sees the batch: uncertain means uncertain
        published: list[tuple[int, object]] = []
        want_positions = self.hub.wants(Position)
        positions: list[Position] = []
        apply = self.book.apply
        for (event, _), journal_id in zip(out.journaled, ids, strict=True):
            if isinstance(event, ExecutionReport):  # _stamp's common case, inline
                object.__setattr__(event.delivery, "journal_id", journal_id)
            else:
                _stamp(event, journal_id)
            published.append((journal_id, event))
            changed = apply(event, snapshots=want_positions)
            if changed:
                positions += changed
        self.tail.publish(published)
        with self._status_lock:
            for name, count in out.messages.items():
                health = self.health[name]
                health.messages += count
            for name, count in out.dup_count.items():
                self.health[name].duplicates += count
            for name, count in out.repeats.items():
                self.health[name].duplicates += count
            for name, seq in out.last_seq.items():
                self.health[name].last_inbound_seq = seq
                self.health[name].last_message_at = dt.datetime.now(dt.UTC)
            for event, _ in out.journaled:
                if isinstance(event, MessageError) and event.delivery is not None:
                    self.health[event.delivery.session].errors += 1
            for name in out.new_epochs:
                self.health[name].last_inbound_seq = None
        for live in out.live:
            self._emit(live)
        for position in positions:
            self._emit(position)
        for who, code, payload, ns in out.notices:
            self._notice(who, code, payload, ns)
        for name, info, ns in out.logouts:
            self._logout_seen(name, info, ns)
        for name, (hole, seq) in out.skips.items():
            self._skipped(name, hole, seq)
        if not self._book_in_journal():
            self._flush_book(pending=BOOK_FLUSH_ROWS)

    def _skipped(self, name: str, hole: int, seq: int) -> None:
        runtime = self.sessions[name]
        sl = self.ledger.session(name)
        if runtime.resync_pending == hole:
            return
        strikes = sl.skips[hole] = sl.skips.get(hole, 0) + 1
        following = [b for b, _ in sl.ranges() if b > hole]
        end = (following[0] if following else seq) - 1
        if strikes >= SKIP_LIMIT:
            reason = (
                f"the engine stepped over {hole}-{end} {strikes} times without delivering it (QuickFIX counted "
                "another message in its place each time)"
            )
            self._pending_lost.append((name, hole, end, reason))
            log.error("session %s: %s; declaring it lost", name, reason)
            return
        runtime.resync_pending = hole
        reason = f"the engine stepped over {hole}-{end} without delivering it"
        log.warning("session %s: %s; asking CME for it again", name, reason)
        self.engine.resync(name, hole, reason)

    def _refresh_uncertainty(self, name: str) -> None:
        runtime = self.sessions[name]
        sl = self.ledger.session(name)
        uncertain = runtime.engine_gap or runtime.lost or sl.first_hole() is not None
        if uncertain == runtime.uncertain:
            return
        before = {(p.account, p.security_id, p.trade_date): p.uncertain for p in self.book.snapshot()}
        runtime.uncertain = uncertain
        self.book.mark_uncertain(name, uncertain)
        with self._status_lock:
            self.health[name].open_gaps = [(b, e) for b, e in sl.holes()]
        if not uncertain and self.hub.wants(Position):
            for position in self.book.snapshot():
                if (
                    before.get((position.account, position.security_id, position.trade_date))
                    and not position.uncertain
                ):
                    self._emit(position)

    # ------------------------------------------------------------------------------------------ notices
    def _notice(self, name: str | None, code: str, payload: Any, ns: int) -> None:
        if name is None:
            if code == Notice.STOPPED:
                self.stopped_seen = True
            elif code == Notice.BUFFER:
                log.info("engine hand-off buffer: %s", payload)
                self.stats.handoff_held = bool(payload.get("held"))
                self.stats.handoff_reported = payload.get("waiting")
            return
        health = self.health[name]
        runtime = self.sessions[name]
        at = utc_from_ns(ns)
        if code == Notice.CONNECTING:
            with self._status_lock:
                health.endpoint = payload
            self._move(name, SessionState.CONNECTING, at)
        elif code == Notice.LOGON_SENT:
            with self._status_lock:
                health.last_outbound_seq = int(payload["seq"])
                health.key_id = payload.get("key_id")
            self._move(name, SessionState.LOGON_SENT, at)
        elif code == Notice.LOGGED_ON:
            runtime.resync_pending = None
            state = SessionState.RECOVERING if runtime.uncertain else SessionState.LOGGED_ON
            self._move(name, SessionState.LOGGED_ON, at)
            if state is SessionState.RECOVERING:
                self._move(name, state, at)
            self.stats.logged_on(name)
            self._on_logged_on(name)
        elif code == Notice.LOGGED_OUT:
            if payload and payload.get("was_logged_on"):
                self.stats.logged_out(name)
            if health.state is not SessionState.LOCKED_OUT:
                self._move(name, SessionState.STOPPED if self.stopping else SessionState.DISCONNECTED, at)
        elif code == Notice.REJECTED:
            self._rejected(name, payload, at)
        elif code == Notice.ADOPTED:
            log.warning(
                "session %s: CME expects MsgSeqNum %s (%r); logging on again with it",
                name,
                payload["seq"],
                payload["text"],
            )
        elif code == Notice.BACKUP_REFUSED:
            log.warning("session %s: %s; trying the other gateway", name, payload)
        elif code == Notice.RECOVERY:
            self._emit(payload)
            if isinstance(payload, ResendRequested):
                self.stats.resend_sent(name, payload.begin, payload.end)
            if isinstance(payload, GapDetected):
                runtime.engine_gap = True
                if health.state is SessionState.LOGGED_ON:
                    self._move(name, SessionState.RECOVERING, at)
            elif isinstance(payload, GapFilled):
                runtime.engine_gap = False
                if health.state is SessionState.RECOVERING and not self.ledger.session(name).holes():
                    self._move(name, SessionState.LOGGED_ON, at)
            self._refresh_uncertainty(name)
        elif code in (Notice.HELD, Notice.RESUMED, Notice.RESYNC):
            log.info("session %s: %s %s", name, code, payload)
        elif code == Notice.BAD_FRAME:
            log.warning("session %s: dropped bytes QuickFIX cannot parse: %s", name, payload["text"])
            self._emit(FrameDropped(name, payload["text"], int(payload["expected"]), at))
        elif code == Notice.STRIKE:
            log.warning(
                "session %s: message %s failed again (%s of the limit): %s",
                name,
                payload["seq"],
                payload["strikes"],
                payload["text"],
            )
        elif code == Notice.THROTTLED:
            with self._status_lock:
                wait = payload["wait"]
                health.text = (
                    f"next logon in {wait:.0f} s (CME closes the port after five bad logons in 60 s)"
                )

    def _move(self, name: str, state: SessionState, at: dt.datetime, text: str | None = None) -> None:
        with self._status_lock:
            event = self.health[name].move(state, at, text)
        if event is not None:
            self._emit(event)

    def _rejected(self, name: str, payload: dict[str, Any], at: dt.datetime) -> None:
        text = str(payload.get("text") or "")
        spec = self.engine.specs[self.engine.index[name]]
        advice = []
        skew = _skew(payload.get("sending_time"), self.clock_offset)
        if skew is not None and abs(skew) > SKEW_WORTH_SAYING:
            direction = "behind" if skew > 0 else "ahead of"
            advice.append(
                f"this machine's clock is {abs(skew):.0f} s {direction} CME's (SendingTime of its Logout); the "
                "signed Logon carries our SendingTime, so synchronise the clock (NTP) first"
            )
        advice.append(f"check the key {spec.key.access_key_id} for session {name}")
        if self.cli_hints:
            advice.append("then run `dropcopy keys check FILE` and start `dropcopy run` again")
        else:
            advice.append(f"then call client.unlock({name!r})")
        message = (
            f"session {name}: logon refused by CME: {text!r}. The session will not retry (CME closes the port "
            f"after five bad logons in 60 s): {'; '.join(advice)}"
        )
        log.error("%s", message)
        self._on_rejected(name, text)
        self._move(name, SessionState.LOCKED_OUT, at, text)
        next_expected = payload.get("next_expected")
        advice_text = "; ".join(advice)
        self._emit(LogonRejected(self.health[name].group, name, text, at, next_expected, advice_text, skew))

    def _logout_seen(self, name: str, info: dict[str, Any], ns: int) -> None:
        text = info.get("text") or ""
        if text:
            with self._status_lock:
                self.health[name].text = text

    # ------------------------------------------------------------------------------------------ failures
    def _degrade(self, exc: JournalError, count: int) -> None:
        first = self.degraded is None
        self.degraded = exc
        self.dropped_while_degraded += count
        self._retry_delay = 1.0
        self._retry_at = time.monotonic() + self._retry_delay
        if first:
            log.error(
                "journal write failed: %s. Every session is logged out until the journal can be written again "
                "(nothing is acknowledged that is not journaled; CME keeps the messages and they are asked for "
                "again). Free disk space or fix %s",
                exc,
                self.journal.path,
            )
            self.engine.hold(None, "journal write failed")
            self._emit(
                JournalFailed(str(self.journal.path), str(exc), dt.datetime.now(dt.UTC), recovered=False)
            )

    def _while_degraded(self, records: list[tuple[Any, ...]]) -> None:
        """Journal writes fail: business and sequence records are dropped (they will be asked for again)."""
        for rec in records:
            if rec[0] == LOG:
                logging.getLogger(rec[2]).log(rec[1], "%s", rec[3])
            elif rec[0] == NOTICE:
                name = self.names[rec[1]] if rec[1] >= 0 else None
                if rec[2] not in (Notice.EPOCH,):
                    self._notice(name, rec[2], rec[3], rec[4])
            else:
                self.dropped_while_degraded += 1

    def _probe(self) -> None:
        try:
            with self.journal.transaction() as tx:
                for name in self.names:
                    sl = self.ledger.session(name)
                    tx.position(name, self.sessions[name].epoch, sl.position, sl.highest)
        except JournalError as exc:
            self._retry_delay = min(self._retry_delay * 2, 30.0)
            self._retry_at = time.monotonic() + self._retry_delay
            log.warning("journal still not writable (%s); next try in %.0f s", exc, self._retry_delay)
            return
        log.warning(
            "journal writable again; %d records that arrived meanwhile are asked for again from CME",
            self.dropped_while_degraded,
        )
        self.degraded = None
        self.dropped_while_degraded = 0
        for name in self.names:
            position = self.ledger.session(name).position
            self.engine.resync(name, position + 1, "journal writable again")
            self.engine.resume(name, "journal writable again")
        self._emit(
            JournalFailed(str(self.journal.path), "recovered", dt.datetime.now(dt.UTC), recovered=True)
        )


@attrs.define
class _Batch:
    journaled: list[tuple[object, JournalEntry]] = attrs.Factory(list)
    duplicates: list[tuple[str, int, int, int, str]] = attrs.Factory(list)
    keys: set[str] = attrs.Factory(set)
    live: list[object] = attrs.Factory(list)
    lost: list[UnrecoverableGap] = attrs.Factory(list)
    notices: list[tuple[str | None, str, Any, int]] = attrs.Factory(list)
    logouts: list[tuple[str, dict[str, Any], int]] = attrs.Factory(list)
    skips: dict[str, tuple[int, int]] = attrs.Factory(dict)
    touched: set[str] = attrs.Factory(set)
    new_epochs: set[str] = attrs.Factory(set)
    epoch_undo: dict[str, int] = attrs.Factory(dict)
    messages: dict[str, int] = attrs.Factory(dict)
    dup_count: dict[str, int] = attrs.Factory(dict)
    repeats: dict[str, int] = attrs.Factory(dict)
    last_seq: dict[str, int] = attrs.Factory(dict)


def _skew(sending_time: str | None, offset: float = 0.0) -> float | None:
    """Seconds CME's clock is ahead of ours (plus the rehearsal ``offset``), from a SendingTime just received
    (None if unreadable)."""
    if not sending_time:
        return None
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            theirs = dt.datetime.strptime(sending_time, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        return (theirs - dt.datetime.now(dt.UTC)).total_seconds() - offset
    return None


__all__ = ["Ingest", "SessionRuntime", "journal_entry"]
