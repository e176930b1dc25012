"""Delivery: typed events on each consumer's own thread, complete and in order, robust to failing handlers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from dropcopy_client import DropCopyClient, ExecutionReport, Fill, HandlerFailed, MessageError, OrderAck
from dropcopy_client._journal import Journal
from dropcopy_client.testing import BUY, ESZ6, SELL, ZNH7, ScriptedSession, Simulator
from tests.integration.conftest import SESSION, Collector

pytestmark = pytest.mark.integration


def _fills(count: int) -> list[bytes]:
    src = ScriptedSession()
    out: list[bytes] = []
    while len(out) < count:
        order = src.order(
            ESZ6 if len(out) % 2 else ZNH7,
            account="ACCT1",
            side=BUY if len(out) % 3 else SELL,
            qty=1,
            price="100",
        )
        out.append(order.fill(1))
    return out


def test_a_thousand_reports_arrive_complete_and_in_order(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    seen = Collector(client)
    engine_threads: set[str] = set()
    client.on_fill(lambda _: engine_threads.add(threading.current_thread().name))
    client.start(wait=15)
    inners = _fills(1000)
    seqs = sim.send_many(SESSION, inners)

    fills = seen.wait_count(Fill, 1000, timeout=60)
    assert len(fills) == 1000
    assert [f.delivery.seq_num for f in fills] == list(seqs)
    sent_ids = [dict(_fields(inner))[17] for inner in inners]
    assert [f.exec_id for f in fills] == sent_ids
    (name,) = engine_threads  # one thread per consumer, never the engine's or the writer's
    assert name.startswith("dropcopy-handler:") and name.endswith("<lambda>")
    assert not seen.of(MessageError)
    assert client.status()[0].messages == 1000


def _fields(inner: bytes) -> list[tuple[int, str]]:
    from dropcopy_client._wire import parse_frame

    return [(tag, value.decode()) for tag, value in parse_frame(inner)]


def test_a_failing_handler_is_reported_with_its_event_and_never_holds_up_the_others(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    seen = Collector(client)
    calls: list[str] = []

    @client.on(ExecutionReport, on_error="dead_letter", max_attempts=2)
    def explode(event: ExecutionReport) -> None:
        calls.append(event.exec_id)
        raise ValueError("handler bug")

    client.start(wait=15)
    src = ScriptedSession()
    order = src.order(ESZ6, account="ACCT1", side=BUY, qty=2, price="4500.25")
    sim.send_many(SESSION, [order.ack(), order.fill(1), order.fill(1)])
    failures = seen.wait_count(HandlerFailed, 6)
    assert len(seen.of(ExecutionReport)) == 3  # the other consumer had every event at once
    assert len(failures) == 6 and len(calls) == 6  # each event tried twice, then dead-lettered
    assert failures[0].handler.endswith("explode") and "handler bug" in failures[0].error
    assert failures[0].event.exec_id == calls[0] and failures[0].retry_in is not None
    assert failures[1].retry_in is None  # given up
    assert isinstance(seen.of(ExecutionReport)[0], OrderAck)
    assert client.status()[0].state.value == "logged on"
    assert client.journal is not None
    path = client.journal.path
    client.stop()
    with Journal.open_readonly(path) as journal:
        dead = journal.dead_letters()
    assert [(d.consumer, d.event_type) for d in dead] == [(failures[0].handler, "OrderAck")] + [
        (failures[0].handler, "Fill")
    ] * 2


def test_blocking_iterator_sees_the_same_ordered_stream(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    client.start(wait=15)
    stream = client.events(timeout=10)
    src = ScriptedSession()
    order = src.order(ESZ6, account="ACCT1", side=BUY, qty=3, price="4500.25")
    sim.send_many(SESSION, [order.ack(), order.fill(1), order.fill(2)])
    got: list[ExecutionReport] = []
    for event in stream:
        if isinstance(event, ExecutionReport):
            got.append(event)
        if len(got) == 3:
            break
    assert [type(e).__name__ for e in got] == ["OrderAck", "Fill", "Fill"]
    assert [e.cum_qty for e in got] == [0, 1, 3]


def test_async_stream_yields_events_and_ends_when_the_client_stops(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    client.start(wait=15)

    async def consume() -> list[object]:
        out: list[object] = []
        stream = client.stream()
        src = ScriptedSession()
        order = src.order(ESZ6, account="ACCT1", side=BUY, qty=1, price="1")
        sim.send_many(SESSION, [order.ack(), order.fill(1)])
        async for event in stream:
            out.append(event)
            if isinstance(event, Fill):
                await asyncio.get_running_loop().run_in_executor(None, client.stop)
        return out

    events = asyncio.run(asyncio.wait_for(consume(), 30))
    assert any(isinstance(e, OrderAck) for e in events) and any(isinstance(e, Fill) for e in events)


def test_a_malformed_inner_message_becomes_an_error_event_and_the_session_continues(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    seen = Collector(client)
    client.start(wait=15)
    src = ScriptedSession()
    order = src.order(ESZ6, account="ACCT1", side=BUY, qty=1, price="1")
    good = order.ack()
    corrupt = good.replace(b"\x0110=", b"\x0110=9", 1)[:-1] + b"\x01"  # wrong inner checksum
    seqs = sim.send_many(SESSION, [corrupt, order.fill(1)])
    seen.wait_count(Fill, 1)
    errors = seen.of(MessageError)
    assert len(errors) == 1 and errors[0].delivery is not None
    assert errors[0].delivery.seq_num == seqs[0]
    assert "checksum" in errors[0].reason.lower()
    assert client.status()[0].errors == 1


def test_the_dispatcher_freezes_long_lived_objects_out_of_the_collectors_way(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    import gc

    gc.unfreeze()
    client = make_client(gc_freeze_every=100)
    seen = Collector(client)
    client.start(wait=15)
    try:
        sim.send_many(SESSION, _fills(150))
        seen.wait_count(Fill, 150)
        # the writer freezes after the batch it published: the handler may see it first
        assert sim.wait_for(lambda: gc.get_freeze_count() > 0, 10)  # full collections skip the caches
    finally:
        gc.unfreeze()
