"""Delivery: the journal's stream to every consumer (handlers, sinks, iterators), each with its own cursor."""

from dropcopy_client._delivery._consumers import (
    DURABLE,
    Consumer,
    ConsumerStatus,
    DeliveryHub,
    HandlerConsumer,
    IteratorConsumer,
    SinkConsumer,
    default_name,
)
from dropcopy_client._delivery._stream import JournalReader, StreamTail, lost_event

__all__ = [
    "DURABLE",
    "Consumer",
    "ConsumerStatus",
    "DeliveryHub",
    "HandlerConsumer",
    "IteratorConsumer",
    "JournalReader",
    "SinkConsumer",
    "StreamTail",
    "default_name",
    "lost_event",
]
