"""A writer process for the crash test: replays a fixed stream into a PostgresSink from its cursor, in a loop
of batches, until the stream ends (or it is killed). Like the client after a restart, it rebuilds the position
book from the events before the cursor and resumes with the first event after it.

Usage: python -m tests.sinks.pg_writer DSN SCHEMA COUNT BATCH
"""

from __future__ import annotations

import datetime as dt
import sys

import attrs

from dropcopy_client.positions import PositionBook
from dropcopy_client.sinks.postgres import PostgresSink
from dropcopy_client.testing import (
    BUY,
    ESH7,
    ESZ6,
    SELL,
    ZNH7,
    JournalStream,
    ManualClock,
    ScriptedSession,
    batches,
)

START = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)


def stream(count: int) -> list[object]:
    """The same ``count`` events in every process: fills (every 10th is busted), acks and corrections."""
    src = ScriptedSession(
        trade_date="20261201", clock=ManualClock(START, step=dt.timedelta(microseconds=250))
    )
    journal = JournalStream(start=START)
    inners: list[bytes] = []
    instruments = (ESZ6, ESH7, ZNH7)
    i = 0
    while len(inners) < count:
        order = src.order(
            instruments[i % 3], account=f"ACCT{i % 5}", side=BUY if i % 2 else SELL, qty=2, price="4500.25"
        )
        inners += [order.ack(), order.fill(1), order.fill()]
        if i % 10 == 0:
            inners.append(order.bust())
        elif i % 10 == 5:
            inners.append(order.correct("4500.50"))
        i += 1
    return list(journal.events(inners[:count]))


def main() -> None:
    dsn, schema, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    events = stream(count)
    sink = PostgresSink(dsn, name="crash", schema=schema)
    done = sink.cursor() or 0
    book = PositionBook(by_trade_date=True)
    for event in events[:done]:
        book.apply(event, snapshots=False)
    print(f"RESUME {done}", flush=True)
    for batch in batches(events[done:], size):
        touched = {}
        for event in batch.events:
            for position in book.apply(event):
                touched[(position.account, position.security_id, position.trade_date)] = position
        sink.write(attrs.evolve(batch, positions=tuple(touched.values())))
        print(f"WROTE {batch.last_id}", flush=True)
    sink.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
