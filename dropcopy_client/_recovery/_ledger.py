"""The sequence ledger: where the invariant "every inbound sequence number is accounted for" is enforced.

For every session and sequence epoch (a trading week, or the part of it after an in-session reset), each
inbound MsgSeqNum from 1 up is exactly one of:

* ``journaled`` -- a business message, recorded in the journal;
* ``duplicate`` -- a business message whose idempotency key was already journaled (a 97=Y replay on a new
  number, the same source seen through another group);
* ``admin`` -- a session-level message (Logon, Heartbeat, TestRequest, ResendRequest, Reject, Logout);
* ``gap-filled`` -- covered by CME's SequenceReset-GapFill;
* ``lost`` -- declared unrecoverable, with a cause and a time, in an event the user sees;
* ``legacy`` -- accounted by a journal written before the ledger existed (journaled or admin, not told apart).

Anything else below the highest number accounted is a *hole*. The ledger is sans-IO: the journal writer feeds
it what the engine reported, in order, and writes the rows it returns in the same transaction as the
messages. A session's *position* -- what the journal resumes from -- is the end of the run of accounted
numbers starting at 1, so it can never move over a hole. :meth:`SessionLedger.skipped` tells when the engine
has moved past a hole without delivering it (QuickFIX does, in several ways: engine notes §2.1, §3.3): the
writer then has the engine ask for it again, and after repeated failures declares it lost with its cause.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

__all__ = ["Ledger", "LedgerRow", "SessionLedger", "State", "audit_rows"]


class State(enum.Enum):
    """What accounts for a sequence number."""

    JOURNALED = "journaled"
    DUPLICATE = "duplicate"
    ADMIN = "admin"
    GAP_FILLED = "gap-filled"
    LOST = "lost"
    LEGACY = "legacy"


@attrs.frozen
class LedgerRow:
    """One contiguous range of numbers in one state. Rows are upserted by ``id``: a range that grows keeps its
    id (and its session, epoch and begin; only ``end`` moves), so the ledger stays a handful of rows per
    session and week."""

    id: int
    session: str
    epoch: int
    begin: int
    end: int
    state: State
    cause: str | None
    at_ns: int


class SessionLedger:
    """The accounted numbers of one session in one epoch: sorted, disjoint, non-adjacent ``[begin, end]``
    ranges (one range, ``[1, position]``, nearly always)."""

    def __init__(self, session: str, epoch: int, next_id: Callable[[], int]) -> None:
        self.session = session
        self.epoch = epoch
        self._next_id = next_id
        self._starts: list[int] = []
        self._ends: list[int] = []
        # the row written last: [id, begin, end, state, cause, at_ns], extended while it grows
        self._tail: list[Any] | None = None
        self._dirty: dict[int, list[Any]] = {}
        #: how often the engine stepped over each hole (first number) without delivering it
        self.skips: dict[int, int] = {}

    # ------------------------------------------------------------------------------------------ reading
    @property
    def position(self) -> int:
        """The last number of the accounted run that starts at 1 (0 when 1 itself is not accounted)."""
        if self._starts and self._starts[0] == 1:
            return self._ends[0]
        return 0

    @property
    def highest(self) -> int:
        """The highest number accounted."""
        return self._ends[-1] if self._ends else 0

    def is_accounted(self, seq: int) -> bool:
        i = bisect.bisect_right(self._starts, seq) - 1
        return i >= 0 and self._ends[i] >= seq

    def unaccounted(self, begin: int, end: int) -> list[tuple[int, int]]:
        """The sub-ranges of ``[begin, end]`` not accounted yet."""
        out: list[tuple[int, int]] = []
        cursor = begin
        i = max(bisect.bisect_right(self._starts, begin) - 1, 0)
        while cursor <= end and i < len(self._starts):
            start, stop = self._starts[i], self._ends[i]
            if stop < cursor:
                i += 1
                continue
            if start > end:
                break
            if start > cursor:
                out.append((cursor, min(start - 1, end)))
            cursor = max(cursor, stop + 1)
            i += 1
        if cursor <= end:
            out.append((cursor, end))
        return out

    def holes(self, upto: int | None = None) -> list[tuple[int, int]]:
        """Unaccounted ranges below the highest accounted number (or below ``upto`` + 1, if higher)."""
        top = max(self.highest, upto or 0)
        return self.unaccounted(1, top) if top else []

    def first_hole(self) -> int | None:
        """The first unaccounted number below the highest accounted one, if any."""
        if not self._starts:
            return None
        if self._starts[0] != 1:
            return 1
        return self._ends[0] + 1 if len(self._starts) > 1 else None

    def skipped(self, seq: int) -> int | None:
        """The engine processed ``seq`` in sequence: the first number below it that was never accounted.

        In sequence means QuickFIX's expected number was ``seq``, so it considers everything below done: a
        number below it that is not accounted was stepped over, and will not be asked for by the engine.
        """
        first = 1 if not self._starts or self._starts[0] != 1 else self._ends[0] + 1
        return first if first < seq else None

    # ------------------------------------------------------------------------------------------ writing
    def account(self, begin: int, end: int, state: State, at_ns: int, cause: str | None = None) -> int:
        """Account every not yet accounted number of ``[begin, end]`` as ``state``; returns how many were new.

        The rows that changed are collected (:meth:`take_rows`) for the journal transaction.
        """
        if end < begin or begin < 1:
            return 0
        starts, ends = self._starts, self._ends
        if len(starts) == 1 and ends[0] + 1 == begin and starts[0] == 1:
            # the hot path: the next number(s) straight after the position
            ends[0] = end
            self._row(begin, end, state, cause, at_ns)
            if self.skips:
                self._forget_skips()
            return end - begin + 1
        added = 0
        for b, e in self.unaccounted(begin, end):
            self._merge(b, e)
            self._row(b, e, state, cause, at_ns)
            added += e - b + 1
        if self.skips:
            self._forget_skips()
        return added

    def _forget_skips(self) -> None:
        for hole in [h for h in self.skips if self.is_accounted(h)]:
            del self.skips[hole]

    def _merge(self, b: int, e: int) -> None:
        starts, ends = self._starts, self._ends
        if starts and ends[-1] + 1 == b:  # straight after the highest range
            ends[-1] = e
            if len(starts) > 1 and ends[-2] + 1 >= starts[-1]:
                ends[-2] = ends[-1]
                del starts[-1], ends[-1]
            return
        i = bisect.bisect_left(starts, b)
        starts.insert(i, b)
        ends.insert(i, e)
        # join with the neighbours (ranges never overlap: only unaccounted sub-ranges arrive here)
        if i + 1 < len(starts) and ends[i] + 1 >= starts[i + 1]:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        if i > 0 and ends[i - 1] + 1 >= starts[i]:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]

    def _row(self, b: int, e: int, state: State, cause: str | None, at_ns: int) -> None:
        tail = self._tail
        if tail is not None and tail[2] + 1 == b and tail[3] is state and tail[4] == cause:
            tail[2] = e  # the range that grows keeps its row
        else:
            tail = self._tail = [self._next_id(), b, e, state, cause, at_ns]
        self._dirty[tail[0]] = tail

    def take_rows(self) -> list[LedgerRow]:
        """The rows changed since the last call, as they are now (each written once per transaction)."""
        rows = [
            LedgerRow(t[0], self.session, self.epoch, t[1], t[2], t[3], t[4], t[5])
            for t in self._dirty.values()
        ]
        self._dirty.clear()
        return rows

    def load(self, rows: Iterable[LedgerRow]) -> None:
        """Rebuild from stored rows (any order)."""
        latest: LedgerRow | None = None
        for row in rows:
            for nb, ne in self.unaccounted(row.begin, row.end):
                self._merge(nb, ne)
            if latest is None or row.id > latest.id:
                latest = row
        if latest is not None:
            self._tail = [latest.id, latest.begin, latest.end, latest.state, latest.cause, latest.at_ns]

    # ------------------------------------------------------------------------------------------ rollback
    def save(self) -> _Saved:
        tail = list(self._tail) if self._tail is not None else None
        return list(self._starts), list(self._ends), tail, dict(self.skips)

    def restore(self, state: _Saved) -> None:
        self._starts, self._ends, self._tail, self.skips = state[0], state[1], state[2], state[3]
        self._dirty.clear()

    def ranges(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def __repr__(self) -> str:
        shown = ", ".join(f"{b}-{e}" for b, e in self.ranges())
        return f"<SessionLedger {self.session} epoch={self.epoch} [{shown}]>"


_Saved = tuple[list[int], list[int], "list[Any] | None", dict[int, int]]


class Ledger:
    """Every session's ledger, with one id sequence for rows and a transaction-like save/restore."""

    def __init__(self, next_row_id: int = 1) -> None:
        self._next = next_row_id
        self.sessions: dict[str, SessionLedger] = {}
        self._saved: dict[str, tuple[int, _Saved]] = {}
        self._saved_next = next_row_id

    def _take_id(self) -> int:
        value = self._next
        self._next += 1
        return value

    def session(self, name: str) -> SessionLedger:
        return self.sessions[name]

    def open(self, name: str, epoch: int, rows: Iterable[LedgerRow] = ()) -> SessionLedger:
        """Start (or load) ``name``'s ledger for ``epoch``; rows are the stored rows of that epoch."""
        ledger = SessionLedger(name, epoch, self._take_id)
        ledger.load(rows)
        self.sessions[name] = ledger
        return ledger

    def begin(self) -> None:
        """Remember the state, so a failed journal transaction can be undone with :meth:`rollback`."""
        self._saved = {name: (lg.epoch, lg.save()) for name, lg in self.sessions.items()}
        self._saved_next = self._next

    def take_rows(self) -> list[LedgerRow]:
        """Every session's changed rows (see :meth:`SessionLedger.take_rows`)."""
        rows: list[LedgerRow] = []
        for ledger in self.sessions.values():
            if ledger._dirty:
                rows += ledger.take_rows()
        return rows

    def rollback(self) -> None:
        for name, (epoch, state) in self._saved.items():
            ledger = self.sessions[name]
            if ledger.epoch != epoch:
                ledger = self.sessions[name] = SessionLedger(name, epoch, self._take_id)
            ledger.restore(state)
        self._next = self._saved_next


@attrs.frozen
class AuditRange:
    begin: int
    end: int
    state: str
    cause: str | None
    at_ns: int | None


def audit_rows(rows: Iterable[LedgerRow], highest_seen: int = 0) -> list[AuditRange]:
    """Every number from 1 to the highest accounted (or seen) as sorted ranges, holes included as
    ``state="unaccounted"``. Adjacent rows of the same state and cause are joined."""
    ordered = sorted(rows, key=lambda r: r.begin)
    out: list[AuditRange] = []
    cursor = 1
    for row in ordered:
        begin = max(row.begin, cursor)
        if row.end < begin:
            continue
        if begin > cursor:
            out.append(AuditRange(cursor, begin - 1, "unaccounted", None, None))
        last = out[-1] if out else None
        if (
            last is not None
            and last.end + 1 == begin
            and last.state == row.state.value
            and last.cause == row.cause
        ):
            out[-1] = attrs.evolve(last, end=row.end)
        else:
            out.append(AuditRange(begin, row.end, row.state.value, row.cause, row.at_ns))
        cursor = row.end + 1
    if highest_seen >= cursor:
        out.append(AuditRange(cursor, highest_seen, "unaccounted", None, None))
    return out
