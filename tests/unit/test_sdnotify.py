"""systemd's notify protocol over a real AF_UNIX datagram socket, as systemd itself listens for it."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropcopy_client._events import SessionState
from dropcopy_client._health import SessionStatus
from dropcopy_client._sdnotify import Notifier, notify, watchdog_interval

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    try:
        yield sock, path
    finally:
        sock.close()


def _receive(sock: socket.socket, until: str, timeout: float = 10.0) -> list[str]:
    """Datagrams until one contains ``until`` (each one is the text of one sd_notify call)."""
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode("utf-8"))
        except TimeoutError:
            break
        if until in got[-1]:
            return got
    pytest.fail(f"no datagram with {until!r}; got {got!r}")


def _status(name: str, state: SessionState) -> SessionStatus:
    return SessionStatus("g", name, state, None, None, None, None, (), 0, 0, 0)


def test_notify_sends_one_datagram_to_the_socket_path(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert notify("READY=1\nSTATUS=up", env={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"dropcopy-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify("WATCHDOG=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_a_socket_nothing_is_sent_and_nothing_raises(tmp_path: Path) -> None:
    assert not notify("READY=1", env={})
    assert not notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})


def test_watchdog_interval_is_half_the_period_for_this_process_only() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_ready_once_every_session_is_logged_on_then_watchdog_pings_then_stopping(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    sessions = [_status("A:G", SessionState.LOGGED_ON), _status("B:84", SessionState.CONNECTING)]
    healthy = [True]
    notifier = Notifier(
        lambda: list(sessions), lambda: healthy[0], env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    )
    assert notifier.watchdog == 0.2
    notifier.start()
    try:
        first = _receive(sock, "STATUS=")
        assert "READY=1" not in "".join(first)  # one session is still connecting
        assert "1 of 2 sessions logged on (waiting for B:84)" in first[-1]
        sessions[1] = _status("B:84", SessionState.RECOVERING)
        ready = _receive(sock, "READY=1")
        assert ready[-1] == "READY=1\nSTATUS=2 of 2 sessions logged on"
        assert "WATCHDOG=1" in _receive(sock, "WATCHDOG=1")
        healthy[0] = False  # a wedged writer: the pings stop, so systemd restarts the service
        time.sleep(0.3)
        sock.settimeout(0.6)
        with pytest.raises(TimeoutError):
            while True:
                assert sock.recv(4096) != b"WATCHDOG=1"
    finally:
        sock.settimeout(5)
        notifier.stopping()
    assert _receive(sock, "STOPPING=1")[-1] == "STOPPING=1\nSTATUS=logging out"


def test_ready_after_the_timeout_even_when_a_gateway_is_down(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier(
        lambda: [_status("A:G", SessionState.DISCONNECTED)],
        lambda: True,
        ready_timeout=0.3,
        env={"NOTIFY_SOCKET": path},
    )
    started = dt.datetime.now()
    notifier.start()
    try:
        ready = _receive(sock, "READY=1")
    finally:
        notifier.stopping()
    assert ready[-1] == "READY=1\nSTATUS=0 of 1 sessions logged on (waiting for A:G)"
    assert (dt.datetime.now() - started).total_seconds() >= 0.3
