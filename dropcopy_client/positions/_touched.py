"""The positions a run of events touched: what a sink's batch carries beside its events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dropcopy_client._messages import ExecutionReport

if TYPE_CHECKING:
    from dropcopy_client.positions._book import Position, PositionBook


def touched_positions(book: PositionBook, events: Iterable[object]) -> tuple[Position, ...]:
    """The book's positions for every (account, instrument, trade date) an execution report in ``events``
    names, once each, in first-seen order (what :class:`~dropcopy_client.sinks.Batch` ``positions`` holds)."""
    keys: dict[tuple[str, str, dt.date | None], None] = {}
    for event in events:
        if isinstance(event, ExecutionReport) and event.account is not None and event.security_id is not None:
            keys[(event.account, event.security_id, event.trade_date)] = None
    out = []
    for account, security_id, trade_date in keys:
        position = book.position(account, security_id, trade_date)
        if position is not None:
            out.append(position)
    return tuple(out)
