"""The two receivers, each run in its own process against the sender:

* ``baseline``: a bare ``quickfix.Application`` whose ``fromApp`` only counts (or, for latency, reads the
  clock and 5979), with the SDK's own data dictionary and exactly the SDK's settings text (built by
  ``dropcopy_client._engine._settings.build_settings`` from the same session spec), a FileStore and a
  ThreadedSocketInitiator, like the SDK;
* ``sdk``: a ``DropCopyClient`` with its journal on (in a temporary data_dir), its position book and one user
  handler that counts ExecutionReports (or reads the clock and ``request_time_ns``).

Protocol with the orchestrator: ``("ready", ...)`` once logged on, ``("done", result)`` when ``count``
messages reached the counting point (or the timeout passed), then on ``"stop"`` the client logs out and
``("stopped", extra)`` follows.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._common import cpu_split, percentiles, report_errors, rss_bytes, thread_cpu

SENDER_COMP_ID = "ABCDEFN"


class Counter:
    """The counting point: a plain counter, plus optional latency samples and RSS samples."""

    def __init__(self, count: int, *, latency: bool, warmup: int, rss_every: int = 0) -> None:
        self.target = count
        self.n = 0
        self.first_ns = 0
        self.last_ns = 0
        self.done = threading.Event()
        self.latency = latency
        self.warmup = warmup
        self.samples: list[int] = []
        self.rss_every = rss_every
        self.rss: list[tuple[int, int, float]] = []  # (messages, rss bytes, seconds since first)

    def hit(self, now: int) -> None:
        n = self.n = self.n + 1
        if n == 1:
            self.first_ns = now
        if self.rss_every and n % self.rss_every == 0:
            self.rss.append((n, rss_bytes(), (now - self.first_ns) / 1e9))
        if n >= self.target:
            self.last_ns = now
            self.done.set()


def _result(counter: Counter, cpu: dict[str, float], wall: float) -> dict[str, Any]:
    out: dict[str, Any] = {
        "count": counter.n,
        "first_ns": counter.first_ns,
        "last_ns": counter.last_ns,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "rss_bytes": rss_bytes(),
    }
    if counter.latency:
        out["latency"] = percentiles(counter.samples[counter.warmup :])
    if counter.rss:
        out["rss_samples"] = counter.rss
    return out


def _session_spec(port: int, key: Any) -> Any:
    from dropcopy_client._spec import SessionSpec
    from dropcopy_client.config import Endpoint, SessionEndpoints

    return SessionSpec(
        group="bench",
        kind="cgw",
        sender_comp_id=SENDER_COMP_ID,
        segment="G",
        endpoints=SessionEndpoints(Endpoint("127.0.0.1", port)),
        operator="OPS1",
        location="US,IL",
        heartbeat=30,
        key=key,
    )


def _key() -> Any:
    from dropcopy_client.auth import generate_key

    today = dt.datetime.now(dt.UTC).date()
    return generate_key("ABC", created=today - dt.timedelta(days=10), expires=today + dt.timedelta(days=300))


# ------------------------------------------------------------------------------------------------ baseline
def baseline(conn: Connection, port: int, spec: dict[str, Any]) -> None:
    report_errors(conn, lambda: _baseline(conn, port, spec))


def _baseline(conn: Connection, port: int, spec: dict[str, Any]) -> None:
    import quickfix as fix

    from dropcopy_client._engine import dictionary_path
    from dropcopy_client._engine._settings import build_settings

    if spec.get("switch_interval"):
        sys.setswitchinterval(spec["switch_interval"])
    counter = Counter(spec["count"], latency=spec.get("latency", False), warmup=spec.get("warmup", 0))
    logged_on = threading.Event()
    clock = time.time_ns
    hit = counter.hit

    class Bare(fix.Application):  # type: ignore[misc]
        def onCreate(self, session_id: Any) -> None:
            pass

        def onLogon(self, session_id: Any) -> None:
            logged_on.set()

        def onLogout(self, session_id: Any) -> None:
            pass

        def toAdmin(self, message: Any, session_id: Any) -> None:
            pass

        def fromAdmin(self, message: Any, session_id: Any) -> None:
            pass

        def toApp(self, message: Any, session_id: Any) -> None:
            pass

        def fromApp(self, message: Any, session_id: Any) -> None:
            hit(clock())

    class BareLatency(Bare):
        def fromApp(self, message: Any, session_id: Any) -> None:
            now = clock()
            xml = message.getHeader().getField(213)
            at = xml.find("\x015979=") + 6
            counter.samples.append(now - int(xml[at : at + 19]))
            hit(now)

    class BareCopy(Bare):
        """The SDK adapter's copy of each message, kept on the engine thread (no hand-off)."""

        def fromApp(self, message: Any, session_id: Any) -> None:
            kept = (session_id.toString(), message.toString(), clock())
            hit(kept[2])

    class BareAdapter(Bare):
        """What the SDK's engine thread does per message, and nothing downstream: toString + one put."""

        def fromApp(self, message: Any, session_id: Any) -> None:
            put((session_id.toString(), message.toString(), clock()))

    names = {threading.get_native_id(): "main"}
    if spec.get("adapter") == "queue":
        import queue

        handoff: queue.SimpleQueue[Any] = queue.SimpleQueue()
        put = handoff.put

        def drain() -> None:
            get, get_nowait = handoff.get, handoff.get_nowait
            while True:
                batch = [get()]
                while len(batch) < 512:
                    try:
                        batch.append(get_nowait())
                    except queue.Empty:
                        break
                for _ in batch:
                    hit(clock())

        drainer = threading.Thread(target=drain, name="bench-drain", daemon=True)
        drainer.start()
        names[drainer.native_id or 0] = "drain"

    data_dir = Path(spec["data_dir"])
    store = data_dir / "store"
    store.mkdir(parents=True, exist_ok=True)
    text = build_settings(
        [_session_spec(port, _key())],
        store_dir=store,
        dictionary=dictionary_path(),
        reconnect_interval=1,
        logon_timeout=10,
    )
    settings = fix.SessionSettings()
    settings.setFromString(text)
    adapter = spec.get("adapter")
    app = {"queue": BareAdapter, "copy": BareCopy}.get(
        adapter or "", BareLatency if counter.latency else Bare
    )()
    store_factory = fix.FileStoreFactory(settings)
    if spec.get("screen_log"):
        # QuickFIX's C++ ScreenLog as the engine process runs it (events on, messages off; the settings text
        # is the SDK's), writing to a standard output that goes nowhere here (a pipe the parent reads there).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        initiator = fix.ThreadedSocketInitiator(app, store_factory, settings, fix.ScreenLogFactory(settings))
    else:
        initiator = fix.ThreadedSocketInitiator(app, store_factory, settings)
    initiator.start()
    if not logged_on.wait(30):
        raise TimeoutError("baseline did not log on")
    conn.send(("ready", {"settings": text}))
    before = thread_cpu()
    started = time.perf_counter()
    counter.done.wait(spec.get("timeout", 600))
    wall = time.perf_counter() - started
    cpu = cpu_split(before, thread_cpu(), names)
    conn.send(("done", _result(counter, cpu, wall)))
    conn.recv()
    stop_started = time.perf_counter()
    initiator.stop()
    conn.send(("stopped", {"stop_seconds": time.perf_counter() - stop_started}))


# ------------------------------------------------------------------------------------------------ SDK
def sdk(conn: Connection, port: int, spec: dict[str, Any]) -> None:
    report_errors(conn, lambda: _sdk(conn, port, spec))


def client_config(port: int, data_dir: Path, key_file: str | None = None) -> Any:
    """A one-session CGW client configuration pointing at ``port``; a fresh key file unless one is given
    (the simulator checks signatures, so it must hold the same key)."""
    from dropcopy_client.auth import write_key_file
    from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target

    data_dir.mkdir(parents=True, exist_ok=True)
    if key_file is None:
        keys = data_dir / "keys.txt"
        write_key_file(keys, [_key()])
    else:
        keys = Path(key_file)
    return ClientConfig(
        groups=(
            GroupConfig(
                name="bench",
                operator="OPS1",
                targets=(cgw_target(SENDER_COMP_ID, f"127.0.0.1:{port}"),),
                key_file=keys,
            ),
        ),
        data_dir=data_dir / "data",
        app_name="bench",
        app_version="1.0",
        app_vendor="dropcopy_client",
        location="US,IL",
        reconnect_interval=1,
    )


def _sdk(conn: Connection, port: int, spec: dict[str, Any]) -> None:
    from dropcopy_client import DropCopyClient
    from dropcopy_client._messages import ExecutionReport

    logging.basicConfig(level=logging.WARNING)
    if spec.get("gc") == "off":
        import gc

        gc.disable()
    if spec.get("switch_interval"):
        sys.setswitchinterval(spec["switch_interval"])
    counter = Counter(
        spec["count"],
        latency=spec.get("latency", False),
        warmup=spec.get("warmup", 0),
        rss_every=spec.get("rss_every", 0),
    )
    data_dir = Path(spec["data_dir"])
    client = DropCopyClient(client_config(port, data_dir, spec.get("key_file")))
    clock = time.time_ns
    hit = counter.hit
    samples = counter.samples

    if counter.latency:

        @client.on(ExecutionReport)
        def measure(event: ExecutionReport) -> None:
            now = clock()
            samples.append(now - (event.request_time_ns or now))
            hit(now)

    else:

        @client.on(ExecutionReport)
        def count(event: ExecutionReport) -> None:
            hit(clock())

    recovery: list[tuple[str, int, int, int]] = []
    if spec.get("recovery"):
        from dropcopy_client._recovery import GapDetected, GapFilled, ResendRequested, UnrecoverableGap

        @client.on(GapDetected, ResendRequested, GapFilled, UnrecoverableGap)
        def note(event: Any) -> None:
            recovery.append((type(event).__name__, event.begin, event.end, clock()))

    gc_pauses: list[float] = []
    if spec.get("gc_pauses"):
        import gc

        started_at: list[float] = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if info.get("generation") != 2:
                return
            if phase == "start":
                started_at[0] = time.perf_counter()
            else:
                gc_pauses.append(time.perf_counter() - started_at[0])

        gc.callbacks.append(on_gc)

    rss_start = rss_bytes()
    client.start(wait=30)
    names = {threading.get_native_id(): "main"}
    for thread in threading.enumerate():
        if thread.name.startswith("dropcopy-") and thread.native_id is not None:
            names[thread.native_id] = thread.name.removeprefix("dropcopy-").split(":")[0]
    rss_logged_on = rss_bytes()
    batches: list[int] = []
    if spec.get("batch_sizes") and client._ingest is not None:
        ingest = client._ingest
        process = ingest.process

        def counted(records: Any) -> None:
            batches.append(len(records))
            process(records)

        ingest.process = counted  # type: ignore[method-assign]
    engine_pid = client._engine.pid if client._engine is not None else None
    conn.send(("ready", {"rss_start": rss_start, "rss_logged_on": rss_logged_on, "engine_pid": engine_pid}))
    before = thread_cpu()
    started = time.perf_counter()
    counter.done.wait(spec.get("timeout", 600))
    wall = time.perf_counter() - started
    cpu = cpu_split(before, thread_cpu(), names)
    result = _result(counter, cpu, wall)
    result["rss_logged_on"] = rss_logged_on
    if client.journal is not None:
        wal = Path(f"{client.journal.path}-wal")
        result["journal_wal_bytes"] = wal.stat().st_size if wal.exists() else 0
    if batches:
        ordered = sorted(batches)
        result["dispatcher_batches"] = {
            "count": len(batches),
            "mean": sum(batches) / len(batches),
            "p50": ordered[len(ordered) // 2],
            "p90": ordered[int(len(ordered) * 0.9)],
            "max": ordered[-1],
        }
    if recovery:
        result["recovery_events"] = recovery
    if gc_pauses:
        result["gc_gen2"] = {
            "count": len(gc_pauses),
            "total_seconds": sum(gc_pauses),
            "max_seconds": max(gc_pauses),
            "last_seconds": gc_pauses[-1],
        }
    if spec.get("inspect"):
        result["inspect"] = inspect(client)
    conn.send(("done", result))
    conn.recv()
    stop_started = time.perf_counter()
    journal = client.journal.path if client.journal is not None else None
    client.stop()
    extra: dict[str, Any] = {"stop_seconds": time.perf_counter() - stop_started}
    if journal is not None:
        extra["journal_path"] = str(journal)
        extra["journal_bytes"] = sum(
            os.path.getsize(p) for p in (journal, Path(f"{journal}-wal")) if os.path.exists(p)
        )
    conn.send(("stopped", extra))


def inspect(client: Any) -> dict[str, Any]:
    """Sizes of the structures that grow with the message count (what an RSS growth is made of).

    Generic on purpose: every container attribute of the position book is listed by name, so the figure
    stays right while the book's internals change.
    """
    from dropcopy_client import _decode

    book = client.book
    sizes: dict[str, Any] = {
        f"book.{name}": len(value)
        for name, value in vars(book).items()
        if isinstance(value, dict | set | list | tuple)
    }
    ledgers = getattr(book, "_ledgers", {})
    sizes["book.fill_records"] = sum(len(getattr(lg, "fills", ())) for lg in ledgers.values())
    sizes["decode._INTS"] = len(_decode._INTS)
    sizes["decode._PRICES"] = len(_decode._PRICES)
    sizes["decode._SECONDS"] = len(_decode._SECONDS)
    return sizes
