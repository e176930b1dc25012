"""The per-message path on the dispatcher thread: decode -> journal (dedupe) -> position book -> emit.

Messages are taken off the engine queue in batches (whatever has accumulated, up to ``BATCH``): one journal
transaction per batch keeps throughput up, and nothing is handed to the book or the user before the batch
is durable, so the journal's position never names a message the process has not recorded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence

from dropcopy_client._decode import decode
from dropcopy_client._journal import Journal, JournalEntry, dedupe_key_for
from dropcopy_client._messages import (
    BusinessMessageReject,
    Event,
    ExecutionReport,
    MessageError,
    OrderCancelReject,
    OrderMassActionReport,
    UnknownMessage,
)
from dropcopy_client._recovery import DuplicateIgnored
from dropcopy_client._wire import redact

BATCH = 512
_SEQ = re.compile(rb"\x0134=(\d+)\x01")
_MSG_TYPES: dict[type, str] = {
    OrderMassActionReport: "BZ",
    OrderCancelReject: "9",
    BusinessMessageReject: "j",
}


def utc_from_ns(ns: int) -> dt.datetime:
    """Nanoseconds since the epoch as a tz-aware UTC datetime."""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def journal_entry(name: str, ns: int, data: bytes, event: object) -> JournalEntry:
    """The journal row for one decoded (or undecodable) message."""
    if isinstance(event, MessageError):
        if event.delivery is not None:
            seq = event.delivery.seq_num
        else:
            found = _SEQ.search(data)
            seq = int(found.group(1)) if found else 0
        return JournalEntry(name, seq, ns, redact(data), "?", None)
    delivery = event.delivery  # type: ignore[attr-defined]
    source = event.source  # type: ignore[attr-defined]
    exec_id: str | None = None
    account: str | None = None
    security_id: str | None = None
    trade_date: str | None = None
    if isinstance(event, ExecutionReport):
        msg_type, exec_id = "8", event.exec_id
        account, security_id = event.account, event.security_id
        day = event.trade_date
        trade_date = f"{day.year:04d}{day.month:02d}{day.day:02d}" if day is not None else None
    else:
        msg_type = event.msg_type if isinstance(event, UnknownMessage) else _MSG_TYPES.get(type(event), "?")
    # the source header only matters to the dedupe key when there is no ExecID
    sent = source.sending_time.isoformat() if exec_id is None and source.sending_time is not None else None
    return JournalEntry(
        session=name,
        seq=delivery.seq_num,
        received_ns=ns,
        raw=data,
        msg_type=msg_type,
        dedupe_key=dedupe_key_for(exec_id, source.sender_comp_id, source.seq_num, sent, msg_type),
        exec_id=exec_id,
        account=account,
        security_id=security_id,
        trade_date=trade_date,
        poss_dup=delivery.poss_dup,
        poss_resend=delivery.poss_resend,
    )


class Pipeline:
    """Decodes, journals and de-duplicates batches of raw messages; calls ``deliver`` for each new event."""

    def __init__(
        self,
        journal: Journal | None,
        groups: dict[str, str],
        deliver: Callable[[str, object], None],
        duplicate: Callable[[str, DuplicateIgnored, object], None],
        uncertain: dict[str, bool],
    ) -> None:
        self.journal = journal
        self._groups = groups
        self._deliver = deliver
        self._duplicate = duplicate
        self.uncertain = uncertain  #: session -> a gap is open; owned and updated by the client

    def run(self, batch: Sequence[tuple[str, str, int]]) -> None:
        """``batch``: (session name, raw outer message as str, receive time ns), in arrival order."""
        decoded: list[tuple[str, int, Event]] = []
        entries: list[JournalEntry] = []
        journal = self.journal
        for name, raw, ns in batch:
            data = raw.encode("utf-8", "surrogateescape")
            events = decode(
                data,
                group=self._groups[name],
                session=name,
                received_at=utc_from_ns(ns),
                uncertain=self.uncertain[name],
            )
            for event in events:
                decoded.append((name, ns, event))
                if journal is not None:
                    entries.append(journal_entry(name, ns, data, event))
        if journal is None:
            for name, _, event in decoded:
                self._deliver(name, event)
            return
        fresh = journal.record(entries)
        for (name, ns, event), new, entry in zip(decoded, fresh, entries, strict=True):
            if new:
                self._deliver(name, event)
            else:
                key = entry.dedupe_key or ""
                self._duplicate(
                    name, DuplicateIgnored(name, entry.seq, key, entry.exec_id, utc_from_ns(ns)), event
                )
