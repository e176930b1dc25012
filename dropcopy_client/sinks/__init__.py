"""Sinks: consumers that write the journal's stream somewhere else (see docs/guides/delivery.md)."""

from dropcopy_client.sinks._base import Batch, Sink, TransactionalSink

__all__ = ["Batch", "Sink", "TransactionalSink"]
