"""Helpers shared by the measurements: processes, /proc sampling, percentiles, machine facts, results."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_CTX = mp.get_context("spawn")  # children start clean: no inherited QuickFIX registry, threads or heap
_TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------ processes
class Child:
    """A spawned process with a duplex pipe; stopped by its own handle only."""

    def __init__(self, target: Callable[..., None], *args: Any, name: str) -> None:
        self.conn, child_end = _CTX.Pipe()
        self.process = _CTX.Process(target=target, args=(child_end, *args), name=name, daemon=True)
        self.process.start()
        child_end.close()
        self.name = name

    def expect(self, tag: str, timeout: float) -> Any:
        """The payload of the next message, which must be ``(tag, payload)``."""
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.name}: no {tag!r} within {timeout:.0f} s")
        got = self.conn.recv()
        if not isinstance(got, tuple) or got[0] != tag:
            raise RuntimeError(f"{self.name}: expected {tag!r}, got {got!r}")
        return got[1]

    def send(self, message: Any) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(message)

    def terminate(self) -> None:
        """End the child at once (SIGTERM to this process only) and reap it."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(10)

    def finish(self, timeout: float = 20.0) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        self.conn.close()


def report_errors(conn: Connection, fn: Callable[[], None]) -> None:
    """Run a child's body; any exception goes to the parent as ``("error", text)``."""
    try:
        fn()
    except BaseException as exc:  # the orchestrator must hear about it, not wait for a timeout
        import traceback

        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
        raise


# ------------------------------------------------------------------------------------------------ /proc
def rss_bytes() -> int:
    """Resident set size of this process (VmRSS)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) used so far by each thread of this process, by native thread id."""
    out: dict[int, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def cpu_split(before: dict[int, float], after: dict[int, float], names: dict[int, str]) -> dict[str, float]:
    """CPU seconds per named thread between two :func:`thread_cpu` snapshots; unnamed threads are summed
    under ``engine`` (QuickFIX's native threads are the only ones we do not create)."""
    split: dict[str, float] = {}
    for tid, total in after.items():
        used = total - before.get(tid, 0.0)
        name = names.get(tid, "engine")
        split[name] = round(split.get(name, 0.0) + used, 3)
    return split


# ------------------------------------------------------------------------------------------------ numbers
def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean in microseconds."""
    if not samples_ns:
        return {"count": 0}
    ordered = sorted(samples_ns)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] / 1000

    return {
        "count": n,
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": ordered[-1] / 1000,
        "mean_us": sum(ordered) / n / 1000,
    }


# ------------------------------------------------------------------------------------------------ machine
def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        quickfix = version("quickfix")
    except Exception:
        quickfix = "unknown"
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": sys.version.split()[0],
        "quickfix": quickfix,
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "busy_processes_at_start": busy_processes(),
    }


def busy_processes(threshold: float = 5.0) -> list[str]:
    """Other processes that used more than ``threshold`` % of a core over the last 0.5 s (for noisy runs)."""

    def snapshot() -> dict[int, tuple[str, int]]:
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                    head, tail = f.read().rsplit(")", 1)
                fields = tail.split()
                out[int(pid)] = (head.split("(", 1)[1], int(fields[11]) + int(fields[12]))
            except (OSError, IndexError):
                continue
        return out

    first = snapshot()
    time.sleep(0.5)
    second = snapshot()
    me = os.getpid()
    busy = []
    for pid, (name, ticks) in second.items():
        if pid == me or pid not in first:
            continue
        share = (ticks - first[pid][1]) / _TICK / 0.5 * 100
        if share >= threshold:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\x00", b" ").decode("utf-8", "replace").strip()[:100]
            except OSError:
                cmd = name
            busy.append(f"{share:.0f}% {cmd or name}")
    return busy


def write_json(name: str, payload: dict[str, Any], results: Path = RESULTS) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    payload = {"benchmark": name, "written": dt.datetime.now(dt.UTC).isoformat(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


class OtherLoad:
    """CPU used by everything else on the machine while a measurement ran, in cores (noise indicator).

    System-wide busy time from /proc/stat minus this process and its reaped children (every measurement's
    processes are joined before it ends, so their CPU is counted as ours). It includes the VM's steal time,
    which :meth:`steal_cores` reports on its own.
    """

    def __init__(self) -> None:
        self._busy = self._system_busy()
        self._steal = self._system_steal()
        self._ours = self._our_cpu()
        self._wall = time.monotonic()

    @staticmethod
    def _cpu_fields() -> list[int]:
        with open("/proc/stat", encoding="ascii") as f:
            return [int(x) for x in f.readline().split()[1:]]

    @classmethod
    def _system_busy(cls) -> float:
        fields = cls._cpu_fields()
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / _TICK

    @classmethod
    def _system_steal(cls) -> float:
        """CPU time the hypervisor ran other guests while this VM had work (``steal`` in /proc/stat)."""
        fields = cls._cpu_fields()
        return fields[7] / _TICK if len(fields) > 7 else 0.0

    def steal_cores(self) -> float:
        """Cores' worth of steal since construction: part of :meth:`cores`, shown apart because on a shared VM
        it slows every process of a measurement, not only the bare or the SDK side."""
        wall = time.monotonic() - self._wall
        if wall <= 0:
            return 0.0
        return round(max(self._system_steal() - self._steal, 0.0) / wall, 2)

    @staticmethod
    def _our_cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def cores(self) -> float:
        wall = time.monotonic() - self._wall
        if wall <= 0:
            return 0.0
        other = (self._system_busy() - self._busy) - (self._our_cpu() - self._ours)
        return round(max(other, 0.0) / wall, 2)
