"""A client process written the way the docs show each mode, for the signal tests: nothing here handles signals.

Usage: python -m tests.integration.signal_client MODE CONFIG.toml, MODE one of ``run`` (``client.run()``),
``events`` (``with client:`` + ``for event in client.events()``), ``stream`` (``async for`` over
``client.stream()`` inside ``asyncio.run``) and ``sleep`` (``with client:`` around code that only waits).
Prints ``READY`` once logged on, one line per event, and ``ENDED`` after the loop.
"""

from __future__ import annotations

import asyncio
import sys
import time

from dropcopy_client import DropCopyClient, SessionEvent


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    client = DropCopyClient.from_config(path)
    if mode == "run":

        @client.on_session
        def ready(event: object) -> None:
            if isinstance(event, SessionEvent) and event.state.value == "logged on":
                print("READY", flush=True)

        client.run()
    elif mode == "events":
        with client:
            client.wait_logged_on(30)
            print("READY", flush=True)
            for event in client.events():
                print(type(event).__name__, flush=True)
    elif mode == "stream":

        async def consume() -> None:
            client.start(wait=30)  # inside asyncio.run: its own SIGINT handler is installed by now
            try:
                print("READY", flush=True)
                async for event in client.stream():
                    print(type(event).__name__, flush=True)
            finally:
                client.stop()

        asyncio.run(consume())
    elif mode == "sleep":
        with client:
            client.wait_logged_on(30)
            print("READY", flush=True)
            time.sleep(600)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("ENDED", flush=True)


if __name__ == "__main__":
    main()
