"""The audit: proves, from the journal alone, that every inbound sequence number of the week is accounted for.

For every session and every sequence epoch of the trading week (the week's numbering, and the numbering after
each in-session reset), each MsgSeqNum from 1 to the highest the journal accounts for is one of journaled,
duplicate, admin, gap-filled or lost (with its cause and time) -- or it is a hole, which the audit names.
Numbers accounted by a journal written before the ledger existed show as ``legacy``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import attrs

from dropcopy_client._journal import Journal
from dropcopy_client._recovery._ledger import AuditRange, audit_rows
from dropcopy_client._week import WeeklySchedule

__all__ = ["AuditRange", "SessionAudit", "audit_journal"]

STATES = ("journaled", "duplicate", "admin", "gap-filled", "lost", "legacy", "unaccounted")


@attrs.frozen
class SessionAudit:
    """One session and epoch of the week."""

    session: str
    epoch: int
    highest: int
    counts: dict[str, int]
    ranges: tuple[AuditRange, ...]

    @property
    def unaccounted(self) -> int:
        return self.counts.get("unaccounted", 0)

    @property
    def ok(self) -> bool:
        """Nothing unaccounted (numbers declared lost are accounted for: with their cause)."""
        return self.unaccounted == 0

    @property
    def exceptions(self) -> tuple[AuditRange, ...]:
        """What a risk team reads: holes and numbers declared lost."""
        return tuple(r for r in self.ranges if r.state in ("unaccounted", "lost"))


def audit_journal(
    path: Path,
    *,
    schedule: WeeklySchedule,
    sessions: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> list[SessionAudit]:
    """Every epoch of the trading week containing ``now`` (default: now), per session (default: every session
    the journal knows), from a read-only connection (safe beside a running client)."""
    now = now or dt.datetime.now(dt.UTC)
    week = int(schedule.week_id(now).replace("-", "")) * 100
    out: list[SessionAudit] = []
    with Journal.open_readonly(path) as journal:
        known = journal.sessions()
        names = list(sessions) if sessions is not None else sorted(known)
        for name in names:
            epochs = [e for e in journal.epochs(name) if week <= e < week + 100]
            current = known.get(name)
            if current is not None and week <= current.epoch < week + 100 and current.epoch not in epochs:
                epochs.append(current.epoch)
            for epoch in sorted(epochs):
                rows = journal.ledger_rows(name, epoch)
                ranges = audit_rows(rows)
                counts = dict.fromkeys(STATES, 0)
                for r in ranges:
                    counts[r.state] = counts.get(r.state, 0) + r.end - r.begin + 1
                highest = ranges[-1].end if ranges else 0
                out.append(SessionAudit(name, epoch, highest, counts, tuple(ranges)))
    return out
