"""A client process for the consumer tests: one handler forwarding fills to a file, like a risk system's store.

Usage: python -m tests.integration.consumer_client CONFIG.toml OUT_FILE

Each fill the handler receives appends ``<exec_id> <replayed>`` to OUT_FILE (flushed and fsynced, so a kill
-9 loses nothing the handler finished). Environment knobs: ``SLOW_MS`` sleeps that long per fill;
``HANG_AFTER`` blocks forever after that many fills (the handler is mid-work when the test kills the
process); ``DRAIN`` is the stop() drain timeout in seconds. Prints ``LOGGED ON`` once logged on, then runs
until SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from dropcopy_client import DropCopyClient, Fill


def main() -> None:
    config, out_path = sys.argv[1], sys.argv[2]
    slow = float(os.environ.get("SLOW_MS", "0")) / 1000
    hang_after = int(os.environ.get("HANG_AFTER", "0"))
    client = DropCopyClient.from_config(config, drain_timeout=float(os.environ.get("DRAIN", "30")))
    out = open(out_path, "a", encoding="ascii")  # noqa: SIM115  (kept open for the process's life)
    done = 0

    @client.on(Fill, name="store")
    def store(fill: Fill) -> None:
        nonlocal done
        if hang_after and done >= hang_after:
            threading.Event().wait()  # mid-work, forever: the test kills us here
        if slow:
            time.sleep(slow)
        out.write(f"{fill.exec_id} {int(fill.replayed)}\n")
        out.flush()
        os.fsync(out.fileno())
        done += 1

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.start(wait=30)
    print("LOGGED ON", flush=True)
    stop.wait()
    client.stop()
    out.close()


if __name__ == "__main__":
    main()
