"""Types of handlers and event streams, so that a type checker rejects a handler for the wrong events.

``client.on_fill(fn)`` takes a ``Callable[[Fill], object]``: a handler annotated ``(fill: Fill)`` or anything
wider (``ExecutionReport``, ``object``) is accepted, one annotated ``(bust: TradeBust)`` is an error.
``client.on(Fill, TradeBust)`` takes a handler of ``Fill | TradeBust``, and ``client.events(types=Fill)``
yields ``Fill``. ``tests/typing/`` holds the cases a type checker must accept and reject.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeAlias, TypeVar

from dropcopy_client._events import (
    EngineRestarted,
    FrameDropped,
    HandlerFailed,
    JournalFailed,
    KeyExpiryWarning,
    KeyReloadFailed,
    KeyRotated,
    LogonRejected,
    SessionEvent,
)
from dropcopy_client._messages import ExecutionReport, Fill, MessageError, OrderAck, OrderMassActionReport
from dropcopy_client._recovery import UnrecoverableGap
from dropcopy_client.positions import Position

__all__ = ["ErrorEvent", "Register", "SessionLevelEvent"]

#: what ``on_error`` handlers receive: undecodable input, lost numbers, frames QuickFIX dropped, logon
#: refusals, failing consumers, journal failures, key files that changed but cannot be read
ErrorEvent: TypeAlias = (
    MessageError
    | UnrecoverableGap
    | FrameDropped
    | LogonRejected
    | HandlerFailed
    | JournalFailed
    | KeyReloadFailed
)
#: what ``on_session`` handlers receive: state changes, key expiry warnings and rotations, logon refusals,
#: engine restarts
SessionLevelEvent: TypeAlias = (
    SessionEvent | KeyExpiryWarning | LogonRejected | EngineRestarted | KeyRotated | KeyReloadFailed
)

# one type variable per position of client.on(T1, T2, ...) and events(types=(T1, T2, ...))
E1 = TypeVar("E1")
E2 = TypeVar("E2")
E3 = TypeVar("E3")
E4 = TypeVar("E4")
E5 = TypeVar("E5")
E6 = TypeVar("E6")
R = TypeVar("R")
E = TypeVar("E")

# the decorators return the handler unchanged: bound type variables keep its exact type
AnyHandler = TypeVar("AnyHandler", bound=Callable[[object], object])
ExecutionHandler = TypeVar("ExecutionHandler", bound=Callable[[ExecutionReport], object])
FillHandler = TypeVar("FillHandler", bound=Callable[[Fill], object])
OrderAckHandler = TypeVar("OrderAckHandler", bound=Callable[[OrderAck], object])
MassActionHandler = TypeVar("MassActionHandler", bound=Callable[[OrderMassActionReport], object])
ErrorHandler = TypeVar("ErrorHandler", bound=Callable[[ErrorEvent], object])
PositionHandler = TypeVar("PositionHandler", bound=Callable[[Position], object])
SessionHandler = TypeVar("SessionHandler", bound=Callable[[SessionLevelEvent], object])


class Register(Protocol[E]):
    """What ``client.on(T1, T2, ...)`` returns: a decorator taking a handler of ``T1 | T2 | ...`` events.

    It registers the handler and returns it, so the decorated function can still be called directly.
    """

    def __call__(self, fn: Callable[[E], R], /) -> Callable[[E], R]: ...
