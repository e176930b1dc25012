"""The sink contract: what a consumer that writes events somewhere else implements.

A sink is a consumer of the journal's stream (see docs/guides/delivery.md). The client hands it batches in
journal order and moves the sink's cursor past a batch only after ``write`` returned. If ``write`` raises,
the same batch (or a batch starting at the same event) is offered again after a back-off, so every event
reaches the sink at least once; the events' ``idempotency_key`` makes that exactly once in effect.

A *transactional* sink stores its own cursor (``batch.last_id``) in the same transaction as the rows it
writes, and reports it from :meth:`TransactionalSink.cursor`: the client then resumes from the sink's cursor,
not its own, so the effect is exactly once even for rows without a natural key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from dropcopy_client.positions import Position

__all__ = ["Batch", "Sink", "TransactionalSink"]


@attrs.frozen
class Batch:
    """Consecutive events of the journal's stream, for one :meth:`Sink.write`.

    ``events`` are in journal order; each carries ``journal_id`` (``event.journal_id``) and
    ``idempotency_key``. ``last_id`` is the cursor once the batch is written (events the sink does not take,
    e.g. filtered out, still count: ``last_id`` may be beyond the last event's id). ``positions`` are the
    client's current positions for every (account, instrument[, trade date]) the batch's events touched:
    current as of the live book, which may already include later fills, so write them as upserts.
    """

    events: tuple[object, ...]
    first_id: int
    last_id: int
    positions: tuple[Position, ...] = ()
    #: every event of the batch was journaled before this process started (re-fed after a restart)
    replayed: bool = False

    def __len__(self) -> int:
        return len(self.events)


@runtime_checkable
class Sink(Protocol):
    """Anything with ``write(batch)`` and ``close()``; ``name`` names its cursor in the journal."""

    name: str

    def write(self, batch: Batch) -> None:
        """Store the batch durably before returning; raise to have it offered again."""

    def close(self) -> None:
        """Release connections and files (called once, when the client stops)."""


@runtime_checkable
class TransactionalSink(Sink, Protocol):
    """A sink that commits ``batch.last_id`` with the batch's rows and can say where it stands."""

    def cursor(self) -> int | None:
        """The ``last_id`` of the last batch committed, or None if the sink has never been written."""
