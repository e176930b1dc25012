"""Local experiments: candidate hot-path changes applied as patches inside the SDK receiver process only.

Nothing here changes the library. Each patch reproduces one proposed change so its gain can be measured
against the unpatched SDK on the same machine, in the same run (``python -m bench --only experiments``).
The proposals themselves are described in docs/performance.md.
"""

from __future__ import annotations

import queue
import tempfile
import time
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------------------------ patches


def _patch_sid_cache(client: Any) -> None:
    """fromApp without ``session_id.toString()``: every SWIG call releases and retakes the GIL, and under
    load retaking it means waiting for the dispatcher. The SessionID passed to callbacks is the Session's
    own member (engine notes §4.2-3), so its address names the session for the engine's lifetime."""
    from dropcopy_client._engine import _app

    def from_app(self: Any, message: Any, session_id: Any) -> None:
        try:
            names = self.__dict__.setdefault("_bench_names", {})
            key = int(session_id.this)
            name = names.get(key)
            if name is None:
                name = names[key] = self._by_qfid[session_id.toString()].name
            self._put((_app.APP, name, message.toString(), time.time_ns()))
            recovery = self.recovery[name]
            if recovery.watching:
                recovery.on_message(int(message.getHeader().getField(34)))
        except BaseException:
            _app.log.exception("fromApp failed")

    _app.EngineApplication.fromApp = from_app  # type: ignore[method-assign]


class _CoalescingQueue:
    """The dispatcher's queue, but a wake-up that finds fewer than ``least`` items waits ``delay`` once
    (without the GIL) so the engine thread can deliver more: bigger batches, fewer GIL hand-offs.

    ``adaptive``: only when the wake-up found something already waiting behind the first item, i.e. when
    messages arrive faster than one per wake-up; an isolated message is never delayed.
    """

    def __init__(self, least: int, delay: float, adaptive: bool) -> None:
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.put = self._q.put
        self.get_nowait = self._q.get_nowait
        self.qsize = self._q.qsize
        self.empty = self._q.empty
        self._least = least
        self._delay = delay
        self._adaptive = adaptive

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        item = self._q.get(block, timeout)
        waiting = self._q.qsize()
        if waiting < self._least and (waiting > 0 or not self._adaptive):
            time.sleep(self._delay)
        return item


def _coalesce(least: int, delay_us: int, adaptive: bool) -> Any:
    def patch(client: Any) -> None:
        # before start(): the engine binds put and the dispatcher binds get from this object
        client._queue = _CoalescingQueue(least, delay_us / 1e6, adaptive)

    return patch


def _patch_gc(client: Any) -> None:
    """Not a library change: what an application can do (gen0 threshold 700 -> 50,000)."""
    import gc

    gc.set_threshold(50_000, 20, 20)


def _wal(pages: int, background: bool) -> Any:
    """The journal's WAL checkpoint: every ``pages`` pages on the dispatcher (the SDK uses 10,000), or
    (``background``) never on the dispatcher but every 50 ms from a thread with its own connection."""

    def patch(client: Any) -> None:
        start = client.start

        def start_then_tune(*args: Any, **kwargs: Any) -> None:
            start(*args, **kwargs)
            journal = client.journal
            if journal is None:
                return
            journal._conn.execute(f"PRAGMA wal_autocheckpoint = {0 if background else pages}")
            if background:
                import sqlite3
                import threading

                path = journal.path

                def checkpoint() -> None:
                    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                    while client.journal is not None:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        time.sleep(0.05)
                    conn.close()

                threading.Thread(target=checkpoint, name="bench-checkpoint", daemon=True).start()

        client.start = start_then_tune

    return patch


PATCHES = {
    "sid-cache": _patch_sid_cache,
    "coalesce": _coalesce(32, 200, adaptive=False),
    "coalesce-adaptive": _coalesce(64, 500, adaptive=True),
    "coalesce-adaptive-1ms": _coalesce(128, 1000, adaptive=True),
    "gc-threshold": _patch_gc,
    "wal-1000": _wal(1000, background=False),
    "wal-background": _wal(0, background=True),
}


def apply(names: list[str], client: Any) -> None:
    for name in names:
        PATCHES[name](client)


# ------------------------------------------------------------------------------------------------ runner
VARIANTS: dict[str, list[str]] = {
    "sdk": [],
    "coalesce-1ms": ["coalesce-adaptive-1ms"],
    "wal-background": ["wal-background"],
    "coalesce-1ms+wal-background": ["coalesce-adaptive-1ms", "wal-background"],
}
#: run only when named: measured at +1.5% / -3% (noise) in earlier A/B runs
EXTRA_VARIANTS: dict[str, list[str]] = {"sid-cache": ["sid-cache"], "gc-threshold": ["gc-threshold"]}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    """Each variant, interleaved ``repeats`` times: blast throughput, p99/p99.9 at 1,000 and 5,000 msg/s, and
    (once) the time to recover a gap through the simulator."""
    from bench import recovery
    from bench.latency import measure
    from bench.throughput import run_pair

    count = overrides.get("count") or (20_000 if quick else 60_000)
    repeats = overrides.get("repeats") or (1 if quick else 2)
    seconds = overrides.get("seconds") or (3.0 if quick else 8.0)
    gap = overrides.get("gap") or (20_000 if quick else 100_000)
    variants = overrides.get("variants") or list(VARIANTS)
    out: dict[str, Any] = {"count": count, "repeats": repeats, "latency_seconds": seconds, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="bench-exp-") as tmp:
        for _ in range(repeats):
            for name in variants:
                patches = {**VARIANTS, **EXTRA_VARIANTS}[name]
                row = out["variants"].setdefault(name, {"patches": patches, "throughput": []})
                result = run_pair(
                    "sdk",
                    {"mode": "blast", "count": count},
                    {"count": count, "data_dir": tempfile.mkdtemp(dir=tmp), "patches": patches},
                )
                row["throughput"].append(round(result["messages_per_second"]))
                row.setdefault("journal_wal_mb", []).append(
                    round(result["receiver_result"].get("journal_wal_bytes", 0) / 1e6)
                )
                for rate in (1_000, 5_000):
                    lat = measure("sdk", rate, seconds, Path(tempfile.mkdtemp(dir=tmp)), patches=patches)
                    pct = lat["latency"]
                    for key in ("p50_us", "p99_us", "p999_us"):
                        row.setdefault(f"{key[:-3]}@{rate}", []).append(round(pct[key]))
        for name in variants:
            rec = recovery.run(quick, gap=gap, patches={**VARIANTS, **EXTRA_VARIANTS}[name])
            out["variants"][name]["recovery_seconds"] = round(rec["seconds_gap_seen_to_last_handled"], 2)
    base = None
    for name, row in out["variants"].items():
        row["throughput_median"] = _median(row["throughput"])
        for key in [k for k in row if "@" in k]:
            row[f"{key}_median_us"] = _median(row[key])
        if name == "sdk":
            base = row["throughput_median"]
    if base:
        for row in out["variants"].values():
            row["throughput_gain"] = round(row["throughput_median"] / base - 1, 3)
    return out
