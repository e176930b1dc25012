"""Position book: RSS per fill, the book path per message, rebuild speed and index cost, with SqliteFillHistory.

Runs in a fresh process. The bench stream (acks, partial and complete fills, spreads, cancels, modifies over
20 accounts and 8 instruments; unique ExecIDs throughout) is decoded 500 messages at a time, as the client's
dispatcher does, each event stamped with its journal id; only what the book does is timed:
``book.apply(event, snapshots=False)`` for each event, then ``book.flush()`` once per batch. The history
lives in a journal file (``Journal`` opened first, its background checkpointer folding the WAL, the book's
own connection with ``autocheckpoint=False``), as the client will run it.

Reported: the book path per message in CPU time of the applying thread (apply, flush, both; medians of the
per-batch figures: a busy machine disturbs CPU time and medians least; the wall-clock mean too), and the
decode of the same messages as a yardstick of the machine's speed at the time; RSS growth per fill after a
warm-up (the SQLite page cache counts until it reaches its 4 MiB cap); the largest garbage-collector pause
(after ``gc.freeze()``, as the client freezes every 50,000 messages); ``PositionBook.load()`` rows/s from the
tables alone (checked equal to the live book); the insert cost of the lookup indexes (the same rows written
again into tables with and without them); and for comparison the bytes per fill of the default in-memory
history.

``python -m bench.book`` (1,000,000 fills) or ``--quick`` (100,000); ``python -m bench --only book``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._common import Child, report_errors, rss_bytes

FILLS = {"quick": 100_000, "full": 1_000_000}
BATCH = 500
WARMUP = 20_000  # messages before measuring: decode memos, SQLite cache and the book's keys warm
INDEX_ROWS = {"quick": 100_000, "full": 300_000}
MEMORY_MESSAGES = {"quick": 30_000, "full": 100_000}


def _child(conn: Connection, fills: int, index_rows: int, memory_messages: int) -> None:
    report_errors(conn, lambda: conn.send(("done", measure(fills, index_rows, memory_messages))))


def measure(fills: int, index_rows: int, memory_messages: int) -> dict[str, Any]:
    from bench._stream import Stream
    from dropcopy_client._decode import decode
    from dropcopy_client._journal import Journal
    from dropcopy_client._messages import Fill
    from dropcopy_client.positions import PositionBook, SqliteFillHistory

    stream = Stream()
    received = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {"fills_target": fills, "batch": BATCH}
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        path = Path(tmp) / "journal.sqlite"
        journal = Journal(path)  # first: its schema, and its background checkpointer for the shared WAL
        history = SqliteFillHistory(path, autocheckpoint=False)
        book = PositionBook(history)
        pauses: list[tuple[int, float]] = []
        started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append((info["generation"], time.perf_counter() - started[0]))

        frames = stream.frames(0, 1 << 62)
        journal_id = 0
        done_fills = done_messages = 0
        apply_us: list[float] = []
        decode_us: list[float] = []
        flush_us: list[float] = []
        total_apply = total_flush = total_wall = 0.0
        samples: list[tuple[int, int]] = []
        rss_before = 0
        sample_every = max(fills // 40, 1)
        next_sample = 0
        while done_fills < fills:
            events = []
            decoding = time.thread_time()
            for _ in range(BATCH):
                journal_id += 1
                events += decode(
                    next(frames),
                    group="bench",
                    session="ABCDEFN:G",
                    received_at=received,
                    journal_id=journal_id,
                )
            decoding = time.thread_time() - decoding
            measuring = journal_id > WARMUP
            wall = time.perf_counter()
            begin = time.thread_time()
            for event in events:
                book.apply(event, snapshots=False)
            middle = time.thread_time()
            book.flush()
            end = time.thread_time()
            wall = time.perf_counter() - wall
            if not measuring:
                if journal_id + BATCH > WARMUP:  # the last warm-up batch: start the clocks
                    gc.collect()
                    gc.freeze()  # what the client does every 50,000 messages: imports and caches out of the way
                    gc.callbacks.append(on_gc)
                    rss_before = rss_bytes()
                continue
            decode_us.append(decoding / len(events) * 1e6)
            apply_us.append((middle - begin) / len(events) * 1e6)
            flush_us.append((end - middle) / len(events) * 1e6)
            total_apply += middle - begin
            total_flush += end - middle
            total_wall += wall
            done_messages += len(events)
            done_fills += sum(1 for e in events if type(e) is Fill)
            if done_fills >= next_sample:
                samples.append((done_fills, rss_bytes()))
                next_sample += sample_every
        gc.callbacks.remove(on_gc)
        rss_after = rss_bytes()
        samples.append((done_fills, rss_after))
        half = samples[len(samples) // 2]
        out.update(
            {
                "messages": done_messages,
                "fills": done_fills,
                "apply_us_per_message_median": statistics.median(apply_us),
                "flush_us_per_message_median": statistics.median(flush_us),
                "book_us_per_message_median": statistics.median(
                    a + f for a, f in zip(apply_us, flush_us, strict=True)
                ),
                "decode_us_per_message_median": statistics.median(decode_us),
                "book_us_per_message_mean": (total_apply + total_flush) / done_messages * 1e6,
                "book_wall_us_per_message_mean": total_wall / done_messages * 1e6,
                "book_us_per_fill_mean": (total_apply + total_flush) / done_fills * 1e6,
                "rss_before_mb": rss_before / 1e6,
                "rss_after_mb": rss_after / 1e6,
                "rss_bytes_per_fill": (rss_after - rss_before) / done_fills,
                "rss_bytes_per_fill_second_half": (rss_after - half[1]) / max(done_fills - half[0], 1),
                "rss_samples": [(n, round(rss / 1e6, 1)) for n, rss in samples],
                "gc_max_pause_ms": max((p for _, p in pauses), default=0.0) * 1000,
                "gc_max_pause_ms_by_generation": {
                    g: max((p for gen, p in pauses if gen == g), default=0.0) * 1000 for g in (0, 1, 2)
                },
                "gc_gen2_collections": sum(1 for g, _ in pauses if g == 2),
                "ledgers": len(book.snapshot()),
                "working_orders": len(book.working_orders()),
                "history_rows": history.count(),
                "file_bytes_per_row": path.stat().st_size / max(history.count(), 1),
            }
        )
        live = (book.snapshot(), book.working_orders(), book.exceptions)
        history.close()
        journal.close()

        rebuilt_history = SqliteFillHistory(path, autocheckpoint=False)
        rebuilt = PositionBook(rebuilt_history)
        gc.collect()
        begin, cpu = time.perf_counter(), time.thread_time()
        rebuilt.load()
        seconds, cpu = time.perf_counter() - begin, time.thread_time() - cpu
        rows = rebuilt_history.count()
        out["load"] = {
            "rows": rows,
            "seconds": seconds,
            "rows_per_second": rows / seconds,
            "cpu_seconds": cpu,
            "rows_per_cpu_second": rows / cpu,
            "same_as_live": (rebuilt.snapshot(), rebuilt.working_orders(), rebuilt.exceptions) == live,
        }
        sample = []
        for row in rebuilt_history.rows():
            sample.append(row)
            if len(sample) >= index_rows:
                break
        rebuilt_history.close()
        out["index_insert_us_per_row"] = index_cost(Path(tmp), sample)
    out["memory_history"] = memory_history(memory_messages)
    return out


def index_cost(folder: Path, rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """Median flush CPU cost per row of ``rows`` in batches of BATCH, into the book table without and with each
    lookup index (the statements and grouping the history uses)."""
    from dropcopy_client.positions import _history as h

    schema = [s for s in h._TABLES.split(";") if s.strip()]
    table, ref_index, legs_index = schema[0], schema[1], schema[2]
    variants = {
        "no index": [table],
        "ref index": [table, ref_index],
        "both indexes (as shipped)": [table, ref_index, legs_index],
    }
    out: dict[str, float] = {}
    for name, statements in variants.items():
        path = folder / f"index-{len(out)}.sqlite"
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -16384")
        for statement in statements:
            conn.execute(statement)
        per_row = []
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            groups: dict[int, list[tuple[Any, ...]]] = {}
            for row in batch:
                groups.setdefault(h._statement(row), []).append(row)
            begin = time.thread_time()
            conn.execute("BEGIN IMMEDIATE")
            for key, group in groups.items():
                sql, pick = h._STATEMENTS[key]
                conn.executemany(sql, map(pick, group))
            conn.execute("COMMIT")
            per_row.append((time.thread_time() - begin) / len(batch) * 1e6)
        conn.close()
        out[name] = statistics.median(per_row)
    return out


def memory_history(messages: int) -> dict[str, Any]:
    """Bytes per fill the default in-memory history keeps (tracemalloc), for comparison."""
    import tracemalloc

    from bench._stream import Stream
    from dropcopy_client._decode import decode
    from dropcopy_client._messages import Fill
    from dropcopy_client.positions import PositionBook

    stream = Stream()
    received = dt.datetime.now(dt.UTC)
    book = PositionBook()
    frames = stream.frames(0, messages + WARMUP)
    for _ in range(WARMUP):
        for event in decode(next(frames), group="bench", session="ABCDEFN:G", received_at=received):
            book.apply(event, snapshots=False)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fills = 0
    for frame in frames:
        for event in decode(frame, group="bench", session="ABCDEFN:G", received_at=received):
            fills += type(event) is Fill
            book.apply(event, snapshots=False)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {
        "messages": messages,
        "fills": fills,
        "bytes_per_fill": grown / fills,
        "bytes_per_message": grown / messages,
    }


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    mode = "quick" if quick else "full"
    fills = overrides.get("fills") or FILLS[mode]
    child = Child(_child, fills, INDEX_ROWS[mode], MEMORY_MESSAGES[mode], name="book")
    try:
        result: dict[str, Any] = child.expect("done", 3600)
    finally:
        child.finish()
    return result


def summary(result: dict[str, Any]) -> list[str]:
    load = result["load"]
    index = result["index_insert_us_per_row"]
    return [
        f"{result['fills']:,} fills in {result['messages']:,} messages, batches of {result['batch']}",
        f"book path: {result['book_us_per_message_median']:.2f} us/message median "
        f"(apply {result['apply_us_per_message_median']:.2f} + flush {result['flush_us_per_message_median']:.2f}); "
        f"mean {result['book_us_per_message_mean']:.2f} us/message CPU ({result['book_wall_us_per_message_mean']:.2f} "
        f"wall), {result['book_us_per_fill_mean']:.2f} us/fill; decode {result['decode_us_per_message_median']:.1f} "
        "us/message for scale",
        f"RSS: {result['rss_before_mb']:.0f} -> {result['rss_after_mb']:.0f} MB, "
        f"{result['rss_bytes_per_fill']:.1f} B/fill "
        f"({result['rss_bytes_per_fill_second_half']:.1f} in the second half)",
        f"largest GC pause {result['gc_max_pause_ms']:.1f} ms ({result['gc_gen2_collections']} gen-2 collections)",
        f"load: {load['rows']:,} rows in {load['seconds']:.2f} s = {load['rows_per_second']:,.0f} rows/s "
        f"({load['rows_per_cpu_second']:,.0f} per CPU second) "
        f"(same as live: {load['same_as_live']})",
        "flush per row: " + ", ".join(f"{name} {us:.2f} us" for name, us in index.items()),
        f"file: {result['file_bytes_per_row']:.0f} B per row; in-memory history for comparison: "
        f"{result['memory_history']['bytes_per_fill']:.0f} B/fill",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.book", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{FILLS['quick']:,} fills instead of {FILLS['full']:,}"
    )
    parser.add_argument("--fills", type=int, help="fills to apply (overrides --quick)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    result = run(args.quick, fills=args.fills)
    for line in summary(result):
        print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
