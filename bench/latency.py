"""Wire-to-handler latency at fixed offered rates, baseline and SDK, with the same paced sender.

The sender stamps inner 5979 RequestTime with ``time.time_ns()`` when it writes each frame (frames due at one
wake-up are written together with one stamp). The SDK's handler reads ``event.request_time_ns``; the
baseline's ``fromApp`` reads the clock first, then 5979 out of 213. Both clocks are CLOCK_REALTIME on one host.
The first ``WARMUP`` seconds of each run are discarded (decode plans, caches, TCP slow start). The 20,000 msg/s
runs last half as long: the SDK cannot keep up with that rate, and a shorter window shows the growing backlog
just as well.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.throughput import run_pair

RATES = (1_000, 5_000, 20_000)
SECONDS = {"quick": 2.0, "full": 10.0}
WARMUP = 0.5


def measure(receiver: str, rate: int, seconds: float, data_dir: Path, **extra: Any) -> dict[str, Any]:
    count = int(rate * seconds)
    result = run_pair(
        receiver,
        {"mode": "paced", "count": count, "rate": rate},
        {
            "count": count,
            "latency": True,
            "warmup": int(rate * WARMUP),
            "data_dir": str(data_dir),
            "journal": True,
            **extra,
        },
        timeout=max(120.0, seconds * 20),
    )
    sent = result["sender"]
    done = result["receiver_result"]
    return {
        "receiver": receiver,
        "offered_rate": rate,
        "achieved_send_rate": sent.get("achieved_rate"),
        "messages_per_write": sent.get("messages_per_write"),
        "sender_max_schedule_lag_ms": sent.get("max_schedule_lag_ms"),
        "messages": done["count"],
        "complete": result["complete"],
        "drain_seconds_after_last_write": (done["last_ns"] - sent["last_write_ns"]) / 1e9,
        "latency": done["latency"],
        "cpu_seconds": done["cpu_seconds"],
    }


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    seconds = overrides.get("seconds") or SECONDS["quick" if quick else "full"]
    rates = overrides.get("rates") or RATES
    out: dict[str, Any] = {"seconds_per_run": seconds, "warmup_seconds": WARMUP, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-lat-") as tmp:
        for rate in rates:
            # Above the SDK's capacity the backlog only grows: half the window shows that as well.
            window = seconds if rate <= 5_000 else seconds / 2
            for receiver in ("baseline", "sdk"):
                data_dir = Path(tempfile.mkdtemp(prefix=f"{receiver}-{rate}-", dir=tmp))
                out["runs"].append(measure(receiver, rate, window, data_dir))
    return out
