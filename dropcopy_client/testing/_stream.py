"""Events as the delivery layer hands them to a sink: real decoded events with consecutive journal ids.

For testing a :class:`~dropcopy_client.sinks.Sink` offline, without a simulator or a client::

    from dropcopy_client.sinks import Batch
    from dropcopy_client.testing import BUY, ESZ6, JournalStream, ScriptedSession

    src = ScriptedSession(trade_date="20261201")
    order = src.order(ESZ6, account="ACCT1", side=BUY, qty=2, price="4500.25")
    stream = JournalStream()
    events = stream.events([order.ack(), order.fill()])   # OrderAck (journal id 1), Fill (2)
    sink.write(Batch(tuple(events), first_id=1, last_id=2))

Each inner message (from the builders) is wrapped in a CME-like outer 35=n (spec §3.3) and decoded by the
real decoder, so the events are exactly what the client journals and delivers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from dropcopy_client._decode import decode, wrap_outer
from dropcopy_client._messages import Event, MessageError
from dropcopy_client.sinks._base import Batch

__all__ = ["JournalStream", "batches"]


class JournalStream:
    """A drop copy target session that numbers what it delivers: outer 34 and the journal id both count up.

    ``start`` stamps the outer 52 SendingTime and the events' ``received_at`` (``step`` apart, default
    1 ms); ``replayed`` marks every event as re-fed from the journal after a restart.
    """

    def __init__(
        self,
        *,
        group: str = "clearing",
        target: str = "XYZDEFN",
        segment: str = "84",
        start: dt.datetime | None = None,
        step: dt.timedelta = dt.timedelta(milliseconds=1),
        first_journal_id: int = 1,
        first_seq: int = 1,
        replayed: bool = False,
    ) -> None:
        self.group = group
        self.target = target
        self.segment = segment
        self.next_journal_id = first_journal_id
        self.next_seq = first_seq
        self.replayed = replayed
        self._now = (start or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        self._step = step

    @property
    def session(self) -> str:
        """The delivery session name, ``"<target>:<segment>"``."""
        return f"{self.target}:{self.segment}"

    def _tick(self) -> dt.datetime:
        now = self._now
        self._now += self._step
        return now

    def event(self, inner: bytes, *, poss_dup: bool = False, poss_resend: bool = False) -> Event:
        """One inner message, wrapped and decoded: a business event (or a ``MessageError`` if it is bad)."""
        now = self._tick()
        raw = wrap_outer(
            inner,
            seq_num=self.next_seq,
            target=self.target,
            segment=self.segment,
            sending_time=now,
            poss_dup=poss_dup,
            poss_resend=poss_resend,
            orig_sending_time=now if poss_dup else None,
        )
        (event,) = decode(
            raw,
            group=self.group,
            received_at=now,
            journal_id=self.next_journal_id,
            replayed=self.replayed,
        )
        self.next_seq += 1
        self.next_journal_id += 1
        return event

    def events(self, inners: Iterable[bytes], *, poss_dup: bool = False) -> list[Event]:
        """Each inner message as one event, in order."""
        return [self.event(inner, poss_dup=poss_dup) for inner in inners]

    def undecodable(self, reason: str = "bad checksum") -> MessageError:
        """A ``MessageError``: an outer message that verified, carrying an inner one with a wrong checksum."""
        text = reason.replace("\x01", " ").encode("ascii", "replace")
        inner = b"8=FIX.4.2\x019=%d\x0135=8\x0158=%s\x0110=000\x01" % (len(text) + 9, text)
        event = self.event(inner)
        assert isinstance(event, MessageError), event
        return event


def batches(events: Sequence[object], size: int, *, replayed: bool = False) -> list[Batch]:
    """``events`` (journal order) cut into consecutive :class:`~dropcopy_client.sinks.Batch` es of ``size``.

    Each batch's ``first_id``/``last_id`` are the journal ids of its first and last event.
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    out = []
    for start in range(0, len(events), size):
        part = tuple(events[start : start + size])
        ids = [_journal_id(event) for event in part]
        out.append(Batch(part, first_id=ids[0], last_id=ids[-1], replayed=replayed))
    return out


def _journal_id(event: object) -> int:
    value = getattr(event, "journal_id", None)
    if not isinstance(value, int):
        raise ValueError(f"{type(event).__name__} has no journal id: only journaled events make a batch")
    return value
