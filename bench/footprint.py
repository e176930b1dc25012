"""Footprint: RSS over millions of messages through the full SDK path, journal size, and replay speed.

The sender generates the stream on the fly (unique ExecIDs and orders all the way) at a steady rate the SDK
sustains (``RATE``, below its measured throughput: a blasting sender would only measure the hand-off buffer
filling up until the engine logs the session out). The client's handler samples VmRSS 50 times over the run.
Afterwards the structures that grow are counted (position book, decode memos, engine queue) and gen-2 GC
pauses reported. The journal left behind is then replayed in a fresh process:
``Journal.open_readonly(path).iter_messages()`` alone, with ``decode``, and with ``decode`` +
``PositionBook.apply``; and the whole journal as ``replay_journal`` rebuilds it from the book's own rows (what
``dropcopy positions`` and a restart do). A last fresh process applies decoded fills to a new PositionBook under
``tracemalloc`` to price one fill in the book.
"""

from __future__ import annotations

import datetime as dt
import gc
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._common import Child, report_errors
from bench.throughput import run_pair

MESSAGES = {"quick": 200_000, "full": 5_000_000}
#: offered msg/s: under the SDK's sustained rate on the 2-core benchmark machine, so nothing queues up
RATE = {"quick": 8_000, "full": 15_000}
REPLAY = {"quick": 40_000, "full": 200_000}


def _slope(samples: list[tuple[int, int, float]]) -> float:
    """Least-squares RSS bytes per message over ``samples``."""
    if len(samples) < 2:
        return 0.0
    xs = [s[0] for s in samples]
    ys = [s[1] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _replay(conn: Connection, journal: str, limit: int) -> None:
    report_errors(conn, lambda: conn.send(("done", replay(Path(journal), limit))))


def replay(path: Path, limit: int) -> dict[str, Any]:
    """Messages/s for reading ``limit`` journal rows, + decode, + decode and PositionBook.apply."""
    from dropcopy_client._decode import decode
    from dropcopy_client._journal import Journal
    from dropcopy_client.positions import PositionBook

    def utc(ns: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)

    out: dict[str, Any] = {"rows": limit}
    for stage in ("read", "read+decode", "read+decode+apply"):
        journal = Journal.open_readonly(path)
        book = PositionBook()
        count = 0
        started = time.perf_counter()
        for row in journal.iter_messages():
            if stage != "read":
                events = decode(row.raw, group="bench", session=row.session, received_at=utc(row.received_ns))
                if stage == "read+decode+apply":
                    for event in events:
                        book.apply(event)
            count += 1
            if count >= limit:
                break
        seconds = time.perf_counter() - started
        journal.close()
        out[stage] = {"messages": count, "seconds": seconds, "messages_per_second": count / seconds}
    out["book_tables"] = rebuild(path)
    return out


def rebuild(path: Path) -> dict[str, Any]:
    """What ``dropcopy replay``/``positions`` and a restarting client do with this journal: the book from its own
    rows (``PositionBook.load``), then the journal rows after them decoded. Messages/s over the whole journal."""
    from dropcopy_client._journal import Journal
    from dropcopy_client.positions import replay_journal

    journal = Journal.open_readonly(path)
    try:
        messages = journal.count()
    finally:
        journal.close()
    started = time.perf_counter()
    book = replay_journal(path)
    seconds = time.perf_counter() - started
    rows = book.history.last_row_id
    book.history.close()
    return {
        "messages": messages,
        "book_rows": rows,
        "seconds": seconds,
        "messages_per_second": messages / seconds,
        "positions": len(book.snapshot()),
    }


def _book_cost(conn: Connection, count: int) -> None:
    report_errors(conn, lambda: conn.send(("done", book_cost(count))))


def book_cost(count: int) -> dict[str, Any]:
    """Bytes the position book keeps per message and per outright/leg fill (tracemalloc, after a warm-up)."""
    import tracemalloc

    from bench._stream import Stream
    from dropcopy_client._decode import decode
    from dropcopy_client._messages import Fill
    from dropcopy_client.positions import PositionBook

    stream = Stream()
    received = dt.datetime.now(dt.UTC)
    book = PositionBook()
    warmup = len(stream) * 2  # decode memos and plans filled before measuring
    for frame in stream.frames(0, warmup):
        for event in decode(frame, group="bench", session="ABCDEFN:G", received_at=received):
            book.apply(event)
    gc.collect()
    tracked_before = len(gc.get_objects())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fills = 0
    for frame in stream.frames(warmup, count):
        for event in decode(frame, group="bench", session="ABCDEFN:G", received_at=received):
            if isinstance(event, Fill):
                fills += 1
            book.apply(event)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    grown = after - before
    tracked = len(gc.get_objects()) - tracked_before
    started = time.perf_counter()
    gc.collect()
    full_with_book = time.perf_counter() - started
    del book
    gc.collect()
    started = time.perf_counter()
    gc.collect()
    full_without_book = time.perf_counter() - started
    return {
        "messages": count,
        "fills": fills,
        "bytes": grown,
        "bytes_per_message": grown / count,
        "bytes_per_fill": grown / fills if fills else None,
        "gc_tracked_objects_per_message": tracked / count,
        "gc_full_collection_ms_with_book": full_with_book * 1000,
        "gc_full_collection_ms_without_book": full_without_book * 1000,
        "gc_full_collection_us_per_message_held": (full_with_book - full_without_book) / count * 1e6,
    }


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    count = overrides.get("count") or MESSAGES["quick" if quick else "full"]
    replay_rows = min(count, overrides.get("replay") or REPLAY["quick" if quick else "full"])
    out: dict[str, Any] = {"messages": count}
    with tempfile.TemporaryDirectory(prefix="bench-fp-") as tmp:
        data_dir = Path(tmp) / "sdk"
        result = run_pair(
            "sdk",
            {
                "mode": "generate",
                "count": count,
                "rate": overrides.get("rate") or RATE["quick" if quick else "full"],
            },
            {
                "count": count,
                "data_dir": str(data_dir),
                "journal": True,
                "rss_every": max(1, count // 50),
                "inspect": True,
                "gc_pauses": True,
                "timeout": 3600,
            },
            timeout=3600,
            clean_stop=True,
        )
        done = result["receiver_result"]
        samples: list[tuple[int, int, float]] = done.get("rss_samples", [])
        ready = result["ready"]
        settled = [s for s in samples if s[0] >= count // 10]  # after the first 10%: caches are warm
        half = len(settled) // 2
        out.update(
            {
                "seconds": result["seconds"],
                "messages_per_second": result["messages_per_second"],
                "rss_logged_on_mb": ready["rss_logged_on"] / 1e6,
                "rss_end_mb": done["rss_bytes"] / 1e6,
                "rss_growth_mb": (done["rss_bytes"] - ready["rss_logged_on"]) / 1e6,
                # of that growth, what the first 10% took (caches warming): the slopes below start after it
                "rss_warm_up_mb": (settled[0][1] - ready["rss_logged_on"]) / 1e6 if settled else 0.0,
                "rss_growth_mb_per_million": _slope(settled),  # bytes per message = MB per million
                "rss_growth_mb_per_million_first_half": _slope(settled[: half + 1]),
                "rss_growth_mb_per_million_second_half": _slope(settled[half:]),
                "rss_samples": [(n, round(rss / 1e6, 1), round(t, 1)) for n, rss, t in samples],
                "structures": done.get("inspect", {}),
                "gc_gen2": done.get("gc_gen2", {}),
                "cpu_seconds": done["cpu_seconds"],
                "journal_bytes": result["stopped"].get("journal_bytes"),
            }
        )
        journal_bytes = out["journal_bytes"] or 0
        out["journal_mb_per_million"] = journal_bytes / 1e6 / (count / 1e6)
        journal = result["stopped"].get("journal_path")
        if journal:
            child = Child(_replay, journal, replay_rows, name="replay")
            try:
                out["replay"] = child.expect("done", 900)
            finally:
                child.finish()
    child = Child(_book_cost, 40_000 if quick else 200_000, name="book-cost")
    try:
        out["book_cost"] = child.expect("done", 600)
    finally:
        child.finish()
    fills = out["structures"].get("book.fill_records")
    if fills:
        out["fills_held"] = fills
        out["rss_growth_bytes_per_fill"] = out["rss_growth_mb"] * 1e6 / fills
    return out
