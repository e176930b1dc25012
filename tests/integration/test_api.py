"""The public API's promises, against the simulator over 127.0.0.1 with the real engine.

* nothing is missed: ``events()`` and ``stream()`` subscribed before ``start()`` see the very first state change;
* ``types=`` filters what an iterator yields; ``on_order_ack`` and the typed decorators deliver what they say;
* ``with client:`` and ``async with client:`` start and stop it (``async with`` without blocking the loop);
* ``wait_logged_on`` raises ``LogonTimeout``, which is a ``DropCopyError`` and a ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import dropcopy_client as dc
from dropcopy_client.testing import BUY, ESZ6, ScriptedSession, Simulator
from tests.integration.conftest import SESSION, config_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _script(fills: int = 2) -> list[bytes]:
    src = ScriptedSession()
    order = src.order(ESZ6, account="ACCT1", side=BUY, qty=fills, price="4500.25")
    return [order.ack(), *(order.fill(1) for _ in range(fills))]


def test_events_subscribed_before_start_see_the_first_state_change(
    make_client: Callable[..., dc.DropCopyClient],
) -> None:
    client = make_client()
    handled: list[dc.SessionLevelEvent] = []
    client.on_session(handled.append)
    events = client.events(timeout=20, types=dc.SessionEvent)  # before start()
    client.start(wait=20)
    first = next(events)
    assert isinstance(first, dc.SessionEvent)
    assert first.previous is dc.SessionState.DISCONNECTED  # nothing came before it
    seen = [first]
    for event in events:
        seen.append(event)
        if event.state is dc.SessionState.LOGGED_ON:
            break
    assert [e.state for e in seen][-1] is dc.SessionState.LOGGED_ON
    session_events = [e for e in handled if isinstance(e, dc.SessionEvent)]
    assert session_events[0] == first  # the handler registered before start saw the same first event


def test_stream_created_before_start_sees_the_first_state_change(
    make_client: Callable[..., dc.DropCopyClient],
) -> None:
    client = make_client()

    async def main() -> list[dc.SessionEvent]:
        stream = client.stream(types=dc.SessionEvent)  # created, not iterated yet
        await asyncio.get_running_loop().run_in_executor(None, lambda: client.start(wait=20))
        await asyncio.sleep(0.5)  # the first state changes happen before the first async-for step
        seen: list[dc.SessionEvent] = []
        async for event in stream:
            seen.append(event)
            if event.state is dc.SessionState.LOGGED_ON:
                break
        return seen

    seen = asyncio.run(asyncio.wait_for(main(), 40))
    assert seen[0].previous is dc.SessionState.DISCONNECTED
    assert seen[-1].state is dc.SessionState.LOGGED_ON


def test_events_yield_only_the_types_asked_for(
    make_client: Callable[..., dc.DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    acks: list[dc.OrderAck] = []
    client.on_order_ack(acks.append)
    fills = client.events(timeout=20, types=dc.Fill)
    both = client.events(timeout=20, types=(dc.Fill, dc.OrderAck))
    with client:
        client.wait_logged_on(20)
        sim.send_many(SESSION, _script(2))
        got = [next(fills), next(fills)]
        mixed = [next(both) for _ in range(3)]
    assert [type(e) for e in got] == [dc.Fill, dc.Fill]
    assert [type(e).__name__ for e in mixed] == ["OrderAck", "Fill", "Fill"]
    assert [type(e) for e in acks] == [dc.OrderAck]
    assert got[0].instrument == ESZ6.security_desc and got[0].last_qty == 1


def test_async_with_starts_and_stops_the_client_off_the_event_loop(
    make_client: Callable[..., dc.DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    ticks = 0

    async def heartbeat() -> None:  # runs while start() and stop() work in a thread
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> list[dc.Fill]:
        beat = asyncio.create_task(heartbeat())
        got: list[dc.Fill] = []
        async with client:
            assert client.status()[0].state is not dc.SessionState.STOPPED
            await asyncio.get_running_loop().run_in_executor(None, client.wait_logged_on, 20)
            stream = client.stream(types=dc.Fill)
            sim.send_many(SESSION, _script(3))
            async for fill in stream:
                got.append(fill)
                if len(got) == 3:
                    break
        beat.cancel()
        return got

    started = time.monotonic()
    got = asyncio.run(asyncio.wait_for(main(), 60))
    assert [f.last_qty for f in got] == [1, 1, 1]
    assert client.status()[0].state is dc.SessionState.STOPPED
    assert ticks >= (time.monotonic() - started) / 0.01 * 0.2  # the loop kept turning


def test_wait_logged_on_raises_logon_timeout(tmp_path: Path, sim: Simulator, key_file: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = config_for(sim, key_file, tmp_path / "data")
    group = config.groups[0]
    target = dc.cgw_target(group.targets[0].sender_comp_id, f"127.0.0.1:{port}")
    config = dc.ClientConfig(
        groups=(dc.GroupConfig(group.name, group.operator, (target,), key_file=key_file),),
        data_dir=tmp_path / "data",
    )
    client = dc.DropCopyClient(config)
    try:
        client.start()
        with pytest.raises(dc.LogonTimeout) as caught:
            client.wait_logged_on(1.5)
        assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, dc.DropCopyError)
        assert caught.value.session == client.sessions[0]
    finally:
        stopper = threading.Thread(target=client.stop)
        stopper.start()
        stopper.join(60)


def test_fills_are_read_back_from_the_journal(tmp_path: Path) -> None:
    from dropcopy_client.testing import DEMO_SESSION, demo_client, demo_script

    with demo_client(tmp_path) as (client, sim):
        seen: list[dc.Fill] = []
        client.on_fill(seen.append)
        assert client.fills() == []  # no journal yet
        client.start(wait=20)
        script = demo_script()
        sim.send_many(DEMO_SESSION, script)
        expected = sum(1 for m in script if b"\x0139=1\x01" in m or b"\x0139=2\x01" in m)  # the demo's 8
        deadline = time.monotonic() + 30
        while len(client.fills()) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        running = client.fills()  # while the client runs
        client.stop()
        stopped = client.fills()  # and after it stopped: the journal is the record
    assert len(stopped) == expected
    assert [f.exec_id for f in running] == [f.exec_id for f in seen] == [f.exec_id for f in stopped]
    assert all(isinstance(f, dc.Fill) and f.journal_id for f in stopped)
    assert [f.journal_id for f in stopped] == sorted(f.journal_id for f in stopped)
    accounts = {f.account for f in stopped}
    assert accounts == {"ACCT1", "ACCT2"}
    acct1 = client.fills(account="ACCT1")
    assert acct1 and {f.account for f in acct1} == {"ACCT1"}
    assert len(client.fills(account=["ACCT1", "ACCT2"])) == len(stopped)
    day = stopped[0].trade_date
    assert day is not None and client.fills(trade_date=day) == [f for f in stopped if f.trade_date == day]
    assert client.fills(trade_date=day.replace(year=day.year - 1)) == []

    frame = client.fills_dataframe(account="ACCT2")
    assert list(frame.columns)[:3] == ["journal_id", "transact_time", "trade_date"]
    assert len(frame) == len(client.fills(account="ACCT2")) and set(frame["account"]) == {"ACCT2"}
    assert set(frame["side"]) <= {"BUY", "SELL"}
    assert all(type(px).__name__ == "Decimal" for px in frame["last_px"])
    assert client.fills_dataframe(as_float=True)["last_px"].dtype == float
    assert list(client.fills_dataframe(account="NOBODY").columns) == list(frame.columns)
