"""Start-up: ``client.start()`` until every session of a full group is logged on.

A full group is 1 CGW target and one MSGW target with 19 market segments (20 FIX sessions, each with a
primary and a backup listener), stood up by ``dropcopy_client.testing.group_layout`` in its own process and
handed to the client as the TOML file ``config_toml`` writes, as a user would. Each repetition uses a fresh
simulator and a fresh data_dir (first logon of the week: empty journal and store).
"""

from __future__ import annotations

import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench._common import Child, report_errors

REPEATS = {"quick": 1, "full": 3}


def _group(conn: Connection, tmp: str) -> None:
    report_errors(conn, lambda: _serve_group(conn, Path(tmp)))


def _serve_group(conn: Connection, tmp: Path) -> None:
    import logging

    from dropcopy_client.testing import MSGW_FO_SEGMENTS, config_toml, group_layout

    logging.basicConfig(level=logging.WARNING)
    sim, config = group_layout(
        cgw=("ABCDEFN",),
        msgw={"XYZDEFN": MSGW_FO_SEGMENTS},
        key_file=tmp / "keys.txt",
        data_dir=tmp / "data",
    )
    with sim:
        path = tmp / "client.toml"
        path.write_text(config_toml(config), encoding="utf-8")
        conn.send(("config", (str(path), len(sim.sessions))))
        conn.recv()


def _client(conn: Connection, config: str) -> None:
    report_errors(conn, lambda: _start_client(conn, config))


def _start_client(conn: Connection, config: str) -> None:
    import logging

    from dropcopy_client import DropCopyClient
    from dropcopy_client._events import SessionEvent, SessionState

    logging.basicConfig(level=logging.WARNING)
    client = DropCopyClient.from_config(config)
    logged_on: dict[str, float] = {}
    lock = threading.Lock()

    @client.on(SessionEvent)
    def note(event: SessionEvent) -> None:
        if event.state is SessionState.LOGGED_ON:
            with lock:
                logged_on.setdefault(event.session, time.perf_counter())

    started = time.perf_counter()
    client.start()
    returned = time.perf_counter()
    client.wait_logged_on(30)
    all_on = time.perf_counter()
    stop_started = time.perf_counter()
    client.stop()
    stopped = time.perf_counter()
    times = sorted(t - started for t in logged_on.values())
    conn.send(
        (
            "done",
            {
                "sessions": len(client.sessions),
                "seconds_to_all_logged_on": all_on - started,
                "seconds_in_start_call": returned - started,
                "first_session_logged_on": times[0] if times else None,
                "median_session_logged_on": times[len(times) // 2] if times else None,
                "last_session_event_logged_on": times[-1] if times else None,
                "stop_seconds": stopped - stop_started,
            },
        )
    )


def run(quick: bool, **overrides: Any) -> dict[str, Any]:
    repeats = overrides.get("repeats") or REPEATS["quick" if quick else "full"]
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
            group = Child(_group, tmp, name="group-simulator")
            try:
                config, sessions = group.expect("config", 60)
                client = Child(_client, config, name="client")
                try:
                    result = client.expect("done", 120)
                finally:
                    client.finish()
                result["simulated_sessions"] = sessions
                runs.append(result)
                group.send("stop")
            finally:
                group.finish()
    values = sorted(r["seconds_to_all_logged_on"] for r in runs)
    return {
        "repeats": repeats,
        "sessions": runs[0]["sessions"] if runs else 0,
        "seconds_to_all_logged_on_median": values[len(values) // 2] if values else None,
        "seconds_to_all_logged_on_max": values[-1] if values else None,
        "runs": runs,
    }
