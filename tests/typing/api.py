"""Read by mypy only (``make typecheck``), never run: the typed public API, as a user writes it.

Each line marked ``# type: ignore[...]`` must be an error: with ``warn_unused_ignores`` (mypy --strict) an
ignore that is no longer needed is itself an error, so this file fails the moment the API stops rejecting a
handler for the wrong event. The other lines must type-check as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import assert_type

import dropcopy_client as dc

client = dc.DropCopyClient.from_config("dropcopy.toml")


# ---------------------------------------------------------------------------------------- decorators
@client.on_fill
def on_fill(fill: dc.Fill) -> None:
    # fields CME always sends on a fill are not Optional
    assert_type(fill.last_px, Decimal)
    assert_type(fill.last_qty, int)
    assert_type(fill.side, dc.Side)
    assert_type(fill.security_id, str)
    assert_type(fill.order_id, str)
    assert_type(fill.transact_time, dt.datetime)
    assert_type(fill.exec_id, str)
    assert_type(fill.instrument, str)
    notional: Decimal = fill.last_px * fill.last_qty  # no None check needed
    print(notional, fill.side.name)


@client.on_fill
def on_fill_wide(report: dc.ExecutionReport) -> None:  # a wider parameter is fine
    pass


@client.on_fill  # type: ignore[type-var]
def on_fill_for_busts(bust: dc.TradeBust) -> None:
    pass


@client.on_order_ack
def on_ack(ack: dc.OrderAck) -> None:
    assert_type(ack.last_px, Decimal | None)  # optional on an acknowledgement


@client.on_order_ack  # type: ignore[type-var]
def on_ack_for_fills(fill: dc.Fill) -> None:
    pass


@client.on_execution
def on_execution(report: dc.ExecutionReport) -> None:
    pass


@client.on_execution  # type: ignore[type-var]
def on_execution_fills_only(fill: dc.Fill) -> None:  # would be handed acks and busts too
    pass


@client.on_position
def on_position(position: dc.Position) -> None:
    assert_type(position.net_qty, int)


@client.on_position  # type: ignore[type-var]
def on_position_as_fill(fill: dc.Fill) -> None:
    pass


@client.on_error
def on_error(event: dc.ErrorEvent) -> None:
    if isinstance(event, dc.MessageError):
        assert_type(event.raw, bytes)


@client.on_error
def on_error_object(event: object) -> None:
    pass


@client.on_error  # type: ignore[type-var]
def on_error_message_errors_only(event: dc.MessageError) -> None:  # would be handed gaps and refusals too
    pass


@client.on_session
def on_session(event: dc.SessionLevelEvent) -> None:
    pass


@client.on_session  # type: ignore[type-var]
def on_session_state_only(event: dc.SessionEvent) -> None:
    pass


@client.on_event
def on_event(event: object) -> None:
    pass


@client.on_event  # type: ignore[type-var]
def on_event_fills(fill: dc.Fill) -> None:  # on_event is handed every event
    pass


@client.on_mass_action
def on_mass_action(report: dc.OrderMassActionReport) -> None:
    pass


# ---------------------------------------------------------------------------------------- on(*types)
@client.on(dc.Fill, name="store", on_error="dead_letter", max_attempts=3)
def store(fill: dc.Fill) -> None:
    pass


store(None)  # type: ignore[arg-type]  # still callable, typed by its event


@client.on(dc.Fill)  # type: ignore[arg-type]
def store_busts(bust: dc.TradeBust) -> None:
    pass


@client.on(dc.Fill, dc.TradeBust)
def fills_and_busts(event: dc.Fill | dc.TradeBust) -> None:
    pass


@client.on(dc.Fill, dc.TradeBust)
def fills_and_busts_wide(event: dc.ExecutionReport) -> None:
    pass


@client.on(dc.Fill, dc.TradeBust)  # type: ignore[arg-type]
def only_fills(event: dc.Fill) -> None:  # would be handed busts too
    pass


@client.on(dc.Fill, dc.Position, dc.SessionEvent)
def three(event: dc.Fill | dc.Position | dc.SessionEvent) -> None:
    pass


@client.on()
def everything(event: object) -> None:
    pass


client.on(dc.Fill, start="sometime")  # type: ignore[call-overload]


client.on(dc.Fill)(lambda fill: print(fill.last_px + 1))  # a lambda's parameter is inferred as Fill

# ---------------------------------------------------------------------------------------- iterators
assert_type(client.events(timeout=1), Iterator[object])
assert_type(client.events(timeout=1, types=dc.Fill), Iterator[dc.Fill])
assert_type(client.events(types=(dc.Fill,)), Iterator[dc.Fill])
assert_type(client.events(types=(dc.Fill, dc.TradeBust)), Iterator[dc.Fill | dc.TradeBust])
assert_type(
    client.events(types=(dc.Fill, dc.TradeBust, dc.Position)), Iterator[dc.Fill | dc.TradeBust | dc.Position]
)

for fill in client.events(timeout=1, types=dc.Fill):
    assert_type(fill.last_qty, int)

for event in client.events(types=(dc.Fill, dc.TradeBust)):
    print(event.last_qty + 1)  # type: ignore[operator]  # a bust's 32 may be absent


assert_type(client.stream(), AsyncIterator[object])
assert_type(client.stream(types=dc.Fill), AsyncIterator[dc.Fill])
assert_type(client.stream(types=(dc.Fill, dc.OrderAck)), AsyncIterator[dc.Fill | dc.OrderAck])


async def consume() -> None:
    async with client:
        async for fill in client.stream(types=dc.Fill):
            assert_type(fill, dc.Fill)


with client as same:
    assert_type(same, dc.DropCopyClient)

# ---------------------------------------------------------------------------------------- errors
try:
    client.wait_logged_on(10)
except dc.LogonTimeout as timeout:
    assert_type(timeout.session, str)
    t: TimeoutError = timeout
    e: dc.DropCopyError = timeout
