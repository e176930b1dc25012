"""Throughput, side by side: bare QuickFIX baseline vs the full SDK path, against the same blasting sender.

Each receiver runs in a fresh process; the sender in another. The sender pre-encodes N messages, the receiver
logs on, the orchestrator says go, the sender writes 1 MiB chunks back to back. Rate = N / (time the Nth
message reached the counting point - time of the sender's first write), both read from CLOCK_REALTIME in
different processes on one host. The sender's own rate is measured the same way against a sink that reads
and discards.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import receivers, sender
from bench._common import Child

SIZES = {"quick": 20_000, "full": 150_000}


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):  # exited, not reaped yet
                    return
        except OSError:
            return  # gone
        time.sleep(0.02)


def run_pair(
    receiver: str,
    sender_spec: dict[str, Any],
    receiver_spec: dict[str, Any],
    *,
    timeout: float = 600,
    clean_stop: bool = False,
) -> dict[str, Any]:
    """One sender process + one receiver process (``baseline`` or ``sdk``); returns both sides' results.

    Without ``clean_stop`` the receiver process is terminated once it has reported: QuickFIX's logout
    handshake in ``stop()`` costs 2-3 s per run and measures nothing here (start-up reports stop times).
    """
    tx = Child(sender.serve, sender_spec, name=f"sender-{sender_spec['mode']}")
    rx: Child | None = None
    ready: Any = {}
    try:
        port = tx.expect("port", 600)
        target = receivers.baseline if receiver == "baseline" else receivers.sdk
        rx = Child(target, port, receiver_spec, name=f"receiver-{receiver}")
        ready = rx.expect("ready", 60)
        tx.expect("logged_on", 10)
        tx.send("go")
        sent = tx.expect("sent", timeout)
        done = rx.expect("done", timeout)
        stopped: dict[str, Any] = {}
        if clean_stop:
            rx.send("stop")
            stopped = rx.expect("stopped", 60)
        else:
            rx.terminate()
        tx.send("stop")
        tx_stop = tx.expect("closed", 20)
    finally:
        if rx is not None:
            rx.finish()
            # a receiver stopped without its clean stop leaves its engine process to die on its own: wait, so
            # that removing the data_dir (the engine's store files) does not race with it
            engine_pid = ready.get("engine_pid") if isinstance(ready, dict) else None
            if engine_pid:
                _wait_gone(engine_pid, 15.0)
        tx.finish()
    count = done["count"]
    elapsed = (done["last_ns"] - sent["first_write_ns"]) / 1e9 if done["last_ns"] else float("nan")
    return {
        "receiver": receiver,
        "messages": count,
        "complete": count >= receiver_spec["count"],
        "seconds": elapsed,
        "messages_per_second": count / elapsed if elapsed > 0 else 0.0,
        "sender": sent,
        "receiver_result": done,
        "ready": {k: v for k, v in ready.items() if k != "settings"},
        "stopped": stopped,
        "client_sent": tx_stop,
    }


def sender_alone(count: int, mode: str = "blast") -> dict[str, Any]:
    """The sender writing ``count`` messages to a sink that only reads: its ceiling."""
    from bench._stream import Stream

    expected = sum(len(frame) for frame in Stream().frames(0, count))
    tx = Child(sender.serve, {"mode": mode, "count": count}, name=f"sender-{mode}-sink")
    sink: Child | None = None
    try:
        port = tx.expect("port", 600)
        sink = Child(sender.sink, port, expected, name="sink")
        sink.expect("ready", 30)
        tx.expect("logged_on", 10)
        tx.send("go")
        sent = tx.expect("sent", 600)
        got = sink.expect("done", 600)
        sink.send("stop")
        tx.send("stop")
        tx.expect("closed", 20)
    finally:
        if sink is not None:
            sink.finish()
        tx.finish()
    seconds = (got["last_read_ns"] - sent["first_write_ns"]) / 1e9
    return {
        "mode": mode,
        "messages": count,
        "bytes": got["bytes"],
        "seconds": seconds,
        "messages_per_second": count / seconds,
        "megabytes_per_second": got["bytes"] / seconds / 1e6,
    }


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    n = overrides.get("count") or SIZES["quick" if quick else "full"]
    out: dict[str, Any] = {"messages": n}
    out["sender_alone"] = sender_alone(n)
    out["sender_generating_alone"] = sender_alone(min(n, 100_000), mode="generate")
    with tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp:
        out["baseline"] = run_pair(
            "baseline",
            {"mode": "blast", "count": n},
            {"count": n, "data_dir": str(Path(tmp) / "baseline")},
        )
        out["sdk"] = run_pair(
            "sdk",
            {"mode": "blast", "count": n},
            {"count": n, "data_dir": str(Path(tmp) / "sdk"), "journal": True, "inspect": True},
        )
    base = out["baseline"]["messages_per_second"]
    out["ratio_sdk_to_baseline"] = out["sdk"]["messages_per_second"] / base if base else 0.0
    out["sender_headroom_vs_baseline"] = out["sender_alone"]["messages_per_second"] / base if base else 0.0
    return out
