"""What an operator sees of `dropcopy run` and `client.run()`: JSON logs, warnings said once, exit codes,
and systemd's notify protocol, each through a real subprocess against the simulator on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropcopy_client.auth import generate_key, write_key_file
from dropcopy_client.testing import ESZ6, ScriptedSession, SimSession, Simulator, config_toml, group_layout
from tests.integration._proc import Proc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
CGW = SimSession("ABCDEFN")
S84 = SimSession("XYZDEFN", "84")
S92 = SimSession("XYZDEFN", "92")


def dropcopy(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Proc:
    return Proc([sys.executable, "-m", "dropcopy_client.cli", *args], cwd=cwd, env=env)


def dropcopy_done(*args: str, cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropcopy_client.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def one_session(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    sim, config = group_layout(cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt")
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    with sim:
        yield sim, path


def _json_lines(text: str) -> list[dict[str, object]]:
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # every stderr line is one JSON object
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record)
        records.append(record)
    return records


def test_json_logs_and_a_key_expiry_warning_said_once_for_all_its_sessions(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    soon = generate_key("XYZ", created=today - dt.timedelta(days=300), expires=today + dt.timedelta(days=9))
    write_key_file(tmp_path / "keys.txt", [soon])
    sim, config = group_layout(cgw=(), msgw={"XYZDEFN": ("84", "92")}, key_file=tmp_path / "keys.txt")
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    with sim:
        run = dropcopy("--log-format", "json", "-v", "run", "--config", str(path), cwd=tmp_path)
        try:
            assert sim.wait_for(lambda: sim.is_logged_on(S84) and sim.is_logged_on(S92), 30), run.stderr
            run.wait_line(lambda line: "XYZDEFN:92" in line and "-> logged on" in line)
            assert run.stop(signal.SIGTERM) == 0, run.stderr
        finally:
            run.kill()
    records = _json_lines(run.stderr)
    expiry = [r for r in records if r.get("event") == "key_expiry"]
    assert len(expiry) == 1, records  # once: not per target, not per segment, not from select_key as well
    assert expiry[0]["level"] == "WARNING" and expiry[0]["key_id"] == soon.access_key_id
    assert "XYZDEFN:84, XYZDEFN:92" in str(expiry[0]["message"]) and "9 days left" in str(
        expiry[0]["message"]
    )
    assert [r for r in records if "expires" in str(r["message"])] == expiry
    assert not [line for line in run.lines if "expires" in line]  # nor printed on stdout in text mode
    # -v: INFO records too; those that name a session carry it as a key
    assert any(r["level"] == "INFO" for r in records)
    assert all(r["session"] in ("XYZDEFN:84", "XYZDEFN:92") for r in records if "session" in r)


def test_a_lost_connection_is_one_warning_per_change_not_one_per_retry(
    one_session: tuple[Simulator, Path], tmp_path: Path
) -> None:
    sim, path = one_session
    run = dropcopy("--log-format", "json", "run", "--config", str(path), cwd=tmp_path)  # no -v
    try:
        # the client's own word, not the simulator's: killed between the simulator's ack and the client reading
        # it, the session was never up, so there would be no session_down to see
        run.wait_line(lambda line: "-> logged on" in line, timeout=30)
        sim.kill(CGW, "primary")
        sim.kill(CGW, "backup")
        run.wait_line(lambda line: '"event":"session_down"' in line, timeout=20, stderr=True)
        time.sleep(14)  # reconnect_interval is 1 s: about a dozen failed retries, and the logon grace passes
        down = _json_lines(run.stderr)
        sim.revive(CGW, "primary")
        sim.revive(CGW, "backup")
        run.wait_line(lambda line: '"event":"session_up"' in line, timeout=30, stderr=True)
        assert run.stop(signal.SIGTERM) == 0, run.stderr
    finally:
        run.kill()
    warnings = [r for r in down if r["level"] == "WARNING"]
    assert [r.get("event") for r in warnings] == ["session_down"], warnings
    assert warnings[0]["session"] == CGW.name and "reconnecting" in str(warnings[0]["message"])
    up = [r for r in _json_lines(run.stderr) if r.get("event") == "session_up"]
    assert len(up) == 1 and "logged on again" in str(up[0]["message"])


def test_a_gateway_unreachable_from_the_start_is_said_once_with_what_to_check(tmp_path: Path) -> None:
    sim, config = group_layout(cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt")
    sim.stop()  # nothing listens on the configured ports
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    run = dropcopy("run", "--config", str(path), cwd=tmp_path)
    try:
        line = run.wait_line(lambda line: "not logged on after" in line, timeout=30, stderr=True)
        time.sleep(4)
        assert run.stop(signal.SIGTERM) == 0, run.stderr
    finally:
        run.kill()
    primary = config.groups[0].targets[0].segments["G"].primary
    assert "WARNING" in line and str(primary) in line and str(path) in line, line
    assert sum("not logged on after" in line for line in run.err_lines) == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_status_exits_4_once_numbers_are_lost_and_run_exits_1_when_the_data_dir_is_taken(
    one_session: tuple[Simulator, Path], tmp_path: Path
) -> None:
    sim, path = one_session
    run = dropcopy("run", "--config", str(path), cwd=tmp_path)
    try:
        assert sim.wait_for(lambda: sim.is_logged_on(CGW), 30), run.stderr
        _wait_status(tmp_path, lambda s: s["state"] == "logged on")
        assert dropcopy_done("status", "--config", str(path), cwd=tmp_path).returncode == 0

        second = dropcopy_done("run", "--config", str(path), cwd=tmp_path)
        assert second.returncode == 1, second.stderr
        assert f"pid {run.proc.pid}" in second.stderr and "stop that one first" in second.stderr
        assert "Traceback" not in second.stderr

        sim.reset_sequence(CGW, sim.next_outbound_seq(CGW) + 5)  # the numbers below it never come
        sim.send(CGW, ScriptedSession().order(ESZ6).ack())
        run.wait_line(lambda line: "LOST" in line)
        _wait_status(tmp_path, lambda s: bool(s["lost"]))
        shown = dropcopy_done("status", "--config", str(path), cwd=tmp_path)
        assert shown.returncode == 4, shown.stdout + shown.stderr
        assert run.stop(signal.SIGTERM) == 0, run.stderr  # a clean stop is 0, losses or not
    finally:
        run.kill()
    assert dropcopy_done("status", "--config", str(path), cwd=tmp_path).returncode == 5  # not running


def _wait_status(tmp_path: Path, predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = json.loads((tmp_path / "data" / "status.json").read_text(encoding="utf-8"))
            if data["sessions"] and all(predicate(s) for s in data["sessions"]):  # type: ignore[operator]
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    pytest.fail("status.json never showed the expected state")


# -- systemd ---------------------------------------------------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(1)
    try:
        yield sock, path
    finally:
        sock.close()


def _datagrams(sock: socket.socket, until: str, timeout: float = 30.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode("utf-8"))
        except TimeoutError:
            continue
        if until in got[-1]:
            return got
    pytest.fail(f"no {until!r} from the process; got {got!r}")


@pytest.mark.parametrize("how", ["dropcopy run", "client.run()"])
def test_the_notify_protocol_ready_watchdog_stopping(
    one_session: tuple[Simulator, Path], tmp_path: Path, notify_socket: tuple[socket.socket, str], how: str
) -> None:
    sim, path = one_session
    sock, address = notify_socket
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000", "PYTHONPATH": str(ROOT)}
    if how == "dropcopy run":
        proc = dropcopy("run", "--config", str(path), cwd=tmp_path, env=env)
    else:
        argv = [sys.executable, "-m", "tests.integration.signal_client", "run", str(path)]
        proc = Proc(argv, cwd=ROOT, env=env)
    try:
        ready = _datagrams(sock, "READY=1")
        assert sim.is_logged_on(CGW)  # READY=1 only once every session is logged on
        assert ready[-1] == "READY=1\nSTATUS=1 of 1 sessions logged on"
        pings = [d for d in _datagrams(sock, "WATCHDOG=1") if d == "WATCHDOG=1"]
        pings += [d for d in _datagrams(sock, "WATCHDOG=1") if d == "WATCHDOG=1"]
        assert len(pings) >= 2  # every half WATCHDOG_USEC
        proc.proc.send_signal(signal.SIGTERM)
        assert _datagrams(sock, "STOPPING=1")[-1] == "STOPPING=1\nSTATUS=logging out"
        assert proc.proc.wait(30) == 0, proc.stderr
    finally:
        proc.kill()
    assert sim.received(CGW, "5")
