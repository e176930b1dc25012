"""A client process for the crash test: runs until killed, or until SIGTERM (clean stop).

Usage: python -m tests.integration.crash_client CONFIG.toml
"""

from __future__ import annotations

import signal
import sys
import threading

from dropcopy_client import DropCopyClient


def main() -> None:
    client = DropCopyClient.from_config(sys.argv[1])
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    client.start(wait=30)
    print("LOGGED ON", flush=True)
    done.wait()
    client.stop()


if __name__ == "__main__":
    main()
