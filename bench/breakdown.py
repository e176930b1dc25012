"""Where the SDK's time goes: the writer's stages alone (one thread, no engine), and the engine thread's
share measured in place by growing the bare baseline step by step towards what the engine process does.

Writer stages (µs/message over the benchmark stream, best of 3): ``decode`` (the compiled decoder, and the
pure-Python one); ``journal_entry`` (the row built from the event); ``Journal.record`` per batch of 1, 8 and
512; ``PositionBook.apply``; the whole writer (decode, sequence accounting, journal, book) in batches of 512.

Engine thread (throughput of the blasting sender, CPU µs/message by thread): the bare baseline; with
QuickFIX's C++ ``ScreenLog`` logging events, as the engine process runs it (the Python ``LogFactory`` of the
in-process design is gone: it cost a director call per message); with ``toString()`` copies kept; with the
copies handed to a second thread through a ``SimpleQueue``; with both.
"""

from __future__ import annotations

import datetime as dt
import gc
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._common import Child, report_errors
from bench.throughput import run_pair

ENGINE_VARIANTS: dict[str, dict[str, Any]] = {
    "bare fromApp": {},
    "+ C++ ScreenLog (events)": {"screen_log": True},
    "+ toString copies": {"adapter": "copy"},
    "+ SimpleQueue hand-off": {"adapter": "queue"},
    "+ hand-off + ScreenLog": {"adapter": "queue", "screen_log": True},
}


def _stages(conn: Connection, count: int) -> None:
    report_errors(conn, lambda: conn.send(("done", stages(count))))


def _best(fn: Callable[[], object], count: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


class _NullEngine:
    """What the writer needs from an engine, doing nothing: the stages run without QuickFIX."""

    def __init__(self) -> None:
        self.specs: list[Any] = []
        self.index = {"ABCDEFN:G": 0}

    def resync(self, *args: object) -> None:
        pass

    def hold(self, *args: object) -> None:
        pass

    def resume(self, *args: object) -> None:
        pass

    def new_week(self, *args: object) -> None:
        pass


def stages(count: int) -> dict[str, float]:
    """µs/message of each stage of the writer (the user's process), single-threaded."""
    from bench._stream import Stream
    from dropcopy_client import _decode
    from dropcopy_client._engine import APP
    from dropcopy_client._ingest import Ingest, journal_entry
    from dropcopy_client._journal import Journal
    from dropcopy_client.positions import PositionBook

    stream = Stream()
    warm = stream.encode_all(len(stream))
    frames = list(stream.frames(len(stream), count))
    received = dt.datetime.now(dt.UTC)
    for frame in warm:
        _decode.decode(frame, group="bench", session="ABCDEFN:G", received_at=received)
    out: dict[str, float] = {}
    events: list[Any] = []

    def run_decode() -> None:
        events[:] = [
            _decode.decode(f, group="bench", session="ABCDEFN:G", received_at=received)[0] for f in frames
        ]

    out[f"decode ({_decode.IMPLEMENTATION})"] = _best(run_decode, count)

    def run_python_decode() -> None:
        for f in frames:
            _decode.python_decode(f, group="bench", session="ABCDEFN:G", received_at=received)

    out["decode (pure Python)"] = _best(run_python_decode, count)
    ns = time.time_ns()
    entries: list[Any] = []

    def run_entries() -> None:
        entries[:] = [journal_entry("ABCDEFN:G", ns, f, e) for f, e in zip(frames, events, strict=True)]

    out["journal_entry"] = _best(run_entries, count)
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        for size in (1, 8, 512):

            def run_record(size: int = size) -> None:
                journal = Journal(Path(tmp) / f"j{size}-{time.monotonic_ns()}.sqlite")
                for i in range(0, count, size):
                    journal.record(entries[i : i + size])
                journal.close()

            out[f"journal.record batch {size}"] = _best(run_record, count, repeats=1)

        def run_book() -> None:
            book = PositionBook()
            for event in events:
                book.apply(event)

        out["book.apply"] = _best(run_book, count)
        records = [(APP, 0, i + 2, ns, f.decode("utf-8", "surrogateescape")) for i, f in enumerate(frames)]

        for size in (1, 512):

            def run_writer(size: int = size) -> None:
                journal = Journal(Path(tmp) / f"w-{time.monotonic_ns()}.sqlite")
                writer = Ingest.standalone(journal, {"ABCDEFN:G": "bench"}, _NullEngine())
                writer.ledger.session("ABCDEFN:G").account(1, 1, _admin(), ns)  # the Logon answer
                for i in range(0, count, size):
                    writer.process(records[i : i + size])
                journal.close()

            # batches of 1: what a message costs at a low rate (a transaction each); 512: under load
            out[f"writer: decode + account + journal + book (batches of {size})"] = _best(
                run_writer, count, repeats=2
            )
    return {k: round(v, 2) for k, v in out.items()}


def _admin() -> Any:
    from dropcopy_client._recovery import State

    return State.ADMIN


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    count = overrides.get("count") or (10_000 if quick else 30_000)
    child = Child(_stages, count, name="stages")
    try:
        dispatcher = child.expect("done", 600)
    finally:
        child.finish()
    engine: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        for label, extra in ENGINE_VARIANTS.items():
            result = run_pair(
                "baseline",
                {"mode": "blast", "count": count},
                {"count": count, "data_dir": tempfile.mkdtemp(dir=tmp), **extra},
            )
            cpu = result["receiver_result"]["cpu_seconds"]
            engine[label] = {
                "messages_per_second": round(result["messages_per_second"]),
                "cpu_us_per_message": {k: round(v / count * 1e6, 1) for k, v in cpu.items() if v},
            }
    return {"messages": count, "dispatcher_us_per_message": dispatcher, "engine_side": engine}
