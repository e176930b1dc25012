"""Recovery of a 100,000-message gap through the real ``dropcopy_client.testing.Simulator``.

The simulator runs in its own process with CME's 2,500-message cap enforced (``resend_cap=2500``,
``oversize_resend="reject"``: a request for more than 2,500 would be refused, not truncated). Once the SDK
client is logged on, the simulator numbers and stores 100,000 messages without writing them
(``drop_next``), then writes one live message. The client sees the gap on that message, asks for it in
chunks, and the clock stops when the last of the 100,001 messages reaches the user handler.

The same 100,001 messages are also sent live by the same simulator to a fresh client (``live`` run): the
target is recovery in at most 1.5x that time (``ratio_recovery_to_live``). Both runs go through the Python
simulator, so its own speed bounds both; the ratio is what the SDK's recovery path costs over its live path.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench import receivers
from bench._common import Child, report_errors

GAP = {"quick": 20_000, "full": 100_000}


def _simulator(conn: Connection, key_file: str, gap: int, live: bool = False) -> None:
    report_errors(conn, lambda: _simulate(conn, key_file, gap, live))


def _simulate(conn: Connection, key_file: str, gap: int, live: bool) -> None:
    import logging

    from bench._stream import Stream
    from dropcopy_client._wire import first, parse_fields
    from dropcopy_client.testing import SimSession, Simulator

    logging.basicConfig(level=logging.WARNING)
    session = SimSession(receivers.SENDER_COMP_ID)
    stream = Stream()
    inners = [stream.inner(i) for i in range(gap + 1)]
    sim = Simulator.from_key_file(key_file, sessions=[session], resend_cap=2500, oversize_resend="reject")
    sim.start()
    try:
        conn.send(("port", sim.endpoint(session)[1]))
        if conn.recv() != "go":
            return
        if not sim.wait_logged_on(session, 10):
            raise TimeoutError("the client is not logged on to the simulator")
        if live:  # the same messages, written as they are numbered: the live path
            live_ns = time.time_ns()
            sim.send_many(session, inners[:gap])
            live_seq = sim.send(session, inners[gap])
            conn.send(("sent", {"live_ns": live_ns, "live_seq": live_seq, "store_seconds": 0.0}))
            conn.recv()  # "stop"
            conn.send(("closed", {"resend_requests": [], "rejections": len(sim.rejections(session))}))
            return
        started = time.perf_counter()
        sim.drop_next(session, gap)
        sim.send_many(session, inners[:gap])
        stored_s = time.perf_counter() - started
        live_ns = time.time_ns()
        live_seq = sim.send(session, inners[gap])
        conn.send(("sent", {"live_ns": live_ns, "live_seq": live_seq, "store_seconds": stored_s}))
        conn.recv()  # "stop"
        requests = []
        for raw in sim.received(session, "2"):
            fields = parse_fields(raw)
            requests.append((int(first(fields, 7) or 0), int(first(fields, 16) or 0)))
        conn.send(("closed", {"resend_requests": requests, "rejections": len(sim.rejections(session))}))
    finally:
        sim.stop()


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    gap = overrides.get("gap") or GAP["quick" if quick else "full"]
    live = _run(gap, overrides, live=True)
    result = _run(gap, overrides, live=False)
    live_seconds = live["seconds_live_sent_to_last_handled"]
    result["live"] = {
        "seconds_first_sent_to_last_handled": live_seconds,
        "messages_per_second": (gap + 1) / live_seconds if live_seconds > 0 else 0.0,
        "complete": live["complete"],
    }
    recovery_seconds = result["seconds_gap_seen_to_last_handled"]
    result["ratio_recovery_to_live"] = recovery_seconds / live_seconds if live_seconds > 0 else None
    return result


def _run(gap: int, overrides: dict[str, Any], *, live: bool) -> dict[str, Any]:
    from dropcopy_client.auth import generate_key, write_key_file

    today = dt.datetime.now(dt.UTC).date()
    with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
        key_file = Path(tmp) / "keys.txt"
        write_key_file(
            key_file,
            [
                generate_key(
                    "ABC", created=today - dt.timedelta(days=10), expires=today + dt.timedelta(days=300)
                )
            ],
        )
        sim = Child(_simulator, str(key_file), gap, live, name="simulator")
        rx: Child | None = None
        try:
            port = sim.expect("port", 120)
            spec = {
                "count": gap + 1,
                "data_dir": str(Path(tmp) / "client"),
                "key_file": str(key_file),
                "recovery": True,
                "timeout": 300,
            }
            rx = Child(receivers.sdk, port, spec, name="receiver-sdk")
            rx.expect("ready", 60)
            sim.send("go")
            sent = sim.expect("sent", 120)
            done = rx.expect("done", 330)
            rx.terminate()  # the client's logout handshake measures nothing here
            sim.send("stop")
            closed = sim.expect("closed", 30)
        finally:
            if rx is not None:
                rx.finish()
            sim.finish()
    events = done.get("recovery_events", [])
    detected = [e for e in events if e[0] == "GapDetected"]
    filled = [e for e in events if e[0] == "GapFilled"]
    seen_ns = detected[0][3] if detected else sent["live_ns"]
    requests = closed["resend_requests"]
    sizes = [(end - begin + 1) if end else None for begin, end in requests]
    return {
        "gap": gap,
        "delivered": done["count"],
        "complete": done["count"] >= gap + 1,
        "seconds_gap_seen_to_last_handled": (done["last_ns"] - seen_ns) / 1e9,
        "seconds_live_sent_to_last_handled": (done["last_ns"] - sent["live_ns"]) / 1e9,
        "seconds_live_sent_to_gap_seen": (seen_ns - sent["live_ns"]) / 1e9,
        "messages_per_second": gap / ((done["last_ns"] - seen_ns) / 1e9) if done["last_ns"] else 0.0,
        "resend_requests": len(requests),
        "largest_request": max((s for s in sizes if s is not None), default=None),
        "open_ended_requests": sum(1 for s in sizes if s is None),
        "sdk_resend_requested_events": sum(1 for e in events if e[0] == "ResendRequested"),
        "gap_filled_events": len(filled),
        "simulator_rejections": closed["rejections"],
        "cpu_seconds": done["cpu_seconds"],
        "simulator_store_seconds": sent["store_seconds"],
    }
