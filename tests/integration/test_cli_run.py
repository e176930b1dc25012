"""``dropcopy run`` / ``dropcopy status`` as a user runs them: real subprocesses against a simulated group.

Every subprocess has a timeout and is killed in ``finally``; the simulator listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dropcopy_client.auth import generate_key, load_key_file, write_key_file
from dropcopy_client.cli import main
from dropcopy_client.cli.run import StatusPublisher, read_seqnums, read_status
from dropcopy_client.config import load_config
from dropcopy_client.testing import (
    BUY,
    ESZ6,
    SELL,
    ScriptedSession,
    SimSession,
    Simulator,
    config_toml,
    group_layout,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CGW = SimSession("ABCDEFN")
S84 = SimSession("XYZDEFN", "84")
STOP_TIMEOUT = 15.0


class Process:
    """A ``python -m dropcopy_client.cli`` subprocess whose stdout lines are collected by a thread."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dropcopy_client.cli", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines, self._new), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr, None), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: Any, into: list[str], new: queue.SimpleQueue[str | None] | None) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            if new is not None:
                new.put(line)
        if new is not None:
            new.put(None)

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """The first collected line matching ``predicate``; fails with the output so far on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if predicate(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no matching line in {timeout} s; stdout={self.lines!r} stderr={self.stderr!r}")
            with contextlib.suppress(queue.Empty):
                self._new.get(timeout=min(left, 0.2))

    def stop(self, sig: signal.Signals, timeout: float = STOP_TIMEOUT) -> int:
        self.proc.send_signal(sig)
        started = time.monotonic()
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        assert time.monotonic() - started < timeout
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def cli(*args: str, cwd: Path, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropcopy_client.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    sim, config = group_layout(
        cgw=("ABCDEFN",),
        msgw={"XYZDEFN": ("84",)},
        key_file=tmp_path / "keys.txt",
        data_dir=tmp_path / "data",
    )
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    with sim:
        yield sim, path


def test_run_prints_events_publishes_status_and_logs_out_on_sigterm(
    group: tuple[Simulator, Path], tmp_path: Path
) -> None:
    sim, path = group
    run = Process("run", "--config", str(path), cwd=tmp_path)
    try:
        assert sim.wait_for(lambda: sim.is_logged_on(CGW) and sim.is_logged_on(S84), 30), run.stderr
        run.wait_line(lambda line: "ABCDEFN:G" in line and "-> logged on" in line)
        run.wait_line(lambda line: "XYZDEFN:84" in line and "-> logged on" in line)

        src = ScriptedSession()
        buy = src.order(ESZ6, account="ACCT1", side=BUY, qty=2, price="4500.25")
        sell = src.order(ESZ6, account="ACCT2", side=SELL, qty=1, price="4501.00")
        cgw_seqs = sim.send_many(CGW, [buy.ack(), buy.fill()])
        seg_seq = sim.send(S84, sell.ack())
        fill_line = run.wait_line(lambda line: f"ABCDEFN:G #{cgw_seqs[1]} " in line)
        assert "ACCT1" in fill_line and "BUY" in fill_line and "4500.25" in fill_line
        run.wait_line(lambda line: f"ABCDEFN:G #{cgw_seqs[0]} " in line and "ACCT1" in line)
        run.wait_line(lambda line: f"XYZDEFN:84 #{seg_seq} " in line and "ACCT2" in line)

        # While running, `status` reads status.json (rewritten every second and on every state change).
        _wait(
            lambda: _live_messages(tmp_path, "ABCDEFN:G") >= 2 and _live_messages(tmp_path, "XYZDEFN:84") >= 1
        )
        shown = cli("status", "--config", str(path), cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert f"pid {run.proc.pid}" in shown.stdout
        sessions_table, consumers_table = shown.stdout.split("\n\n")
        rows = {line.split()[1]: line for line in sessions_table.splitlines()[2:]}
        assert set(rows) == {"ABCDEFN:G", "XYZDEFN:84"}
        consumers = {line.split()[0]: line.split() for line in consumers_table.splitlines()[1:]}
        assert consumers["cli:printer"][1:4] == ["handler", consumers["cli:printer"][2], "0"]  # not behind
        assert all("logged on" in row for row in rows.values()), shown.stdout
        as_json = cli("status", "--config", str(path), "--json", cwd=tmp_path)
        report = json.loads(as_json.stdout)
        assert (report["source"], report["running"], report["pid"]) == ("live", True, run.proc.pid)
        by_name = {s["session"]: s for s in report["sessions"]}
        assert by_name["ABCDEFN:G"]["state"] == "logged on"
        assert by_name["ABCDEFN:G"]["endpoint"] == "{}:{}".format(*sim.endpoint(CGW))

        assert run.stop(signal.SIGTERM) == 0, run.stderr
    finally:
        run.kill()

    # The client logged out of every session before exiting.
    for session in (CGW, S84):
        assert sim.received(session, "5"), f"no Logout from the client on {session.name}"
    assert "Traceback" not in run.stderr
    final = json.loads((tmp_path / "data" / "status.json").read_text(encoding="utf-8"))
    assert final["running"] is False
    assert {s["state"] for s in final["sessions"]} == {"stopped"}

    # The store names and contents this test relies on: "<next sender seq> : <next target seq>".
    store = tmp_path / "data" / "store"
    for session in (CGW, S84):
        seqnums = store / f"FIX.4.2-{session.sender_comp_id}-CME-{session.segment}.seqnums"
        assert seqnums.exists(), sorted(p.name for p in store.iterdir())
        assert read_seqnums(seqnums) == (sim.expected_inbound_seq(session), sim.next_outbound_seq(session))

    shown = cli("status", "--config", str(path), cwd=tmp_path)
    assert shown.returncode == 5, shown.stderr  # documented: not running
    assert shown.stdout.startswith("not running; sequence numbers from the QuickFIX stores")
    rows = {line.split()[1]: line.split() for line in shown.stdout.splitlines()[2:]}
    for session in (CGW, S84):
        cells = rows[session.name]
        assert cells[2] == "stopped"
        assert cells[4:6] == [
            str(sim.next_outbound_seq(session) - 1),
            str(sim.expected_inbound_seq(session) - 1),
        ]
    report = json.loads(cli("status", "--config", str(path), "--json", cwd=tmp_path).stdout)
    assert (report["source"], report["running"]) == ("store", False)
    by_name = {s["session"]: s for s in report["sessions"]}
    assert by_name["XYZDEFN:84"]["next_inbound_seq"] == sim.next_outbound_seq(S84)
    assert by_name["XYZDEFN:84"]["next_outbound_seq"] == sim.expected_inbound_seq(S84)


def test_run_json_prints_one_object_per_line_and_stops_on_ctrl_c(
    group: tuple[Simulator, Path], tmp_path: Path
) -> None:
    sim, path = group
    run = Process("run", "--config", str(path), "--json", cwd=tmp_path)
    try:
        assert sim.wait_for(lambda: sim.is_logged_on(CGW) and sim.is_logged_on(S84), 30), run.stderr
        order = ScriptedSession().order(ESZ6, account="ACCT9", side=BUY, qty=3, price="4499.75")
        seqs = sim.send_many(CGW, [order.ack(), order.fill()])
        run.wait_line(lambda line: f'"seq_num":{seqs[1]}' in line)
        assert run.stop(signal.SIGINT) == 0, run.stderr
    finally:
        run.kill()
    events = [json.loads(line) for line in run.lines]
    assert all(isinstance(event, dict) and "type" in event for event in events)
    types = [event["type"] for event in events]
    assert "SessionEvent" in types and "Fill" in types and "Position" in types
    fill = next(event for event in events if event["type"] == "Fill")
    assert (fill["account"], fill["last_qty"], fill["last_px"]) == ("ACCT9", 3, "4499.75")
    assert fill["delivery"]["session"] == "ABCDEFN:G"
    assert sim.received(CGW, "5") and sim.received(S84, "5")


def test_run_with_a_bad_config_or_key_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[client]\nheartbeat = 3\n[[group]]\nname = "g"\n', encoding="utf-8")
    done = cli("run", "--config", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert "heartbeat = 3" in done.stderr and "Traceback" not in done.stderr

    sim, config = group_layout(cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt")
    sim.stop()
    no_keys = tmp_path / "no-keys.toml"
    no_keys.write_text(config_toml(config).replace(str(tmp_path / "keys.txt"), str(tmp_path / "gone.txt")))
    done = cli("run", "--config", str(no_keys), cwd=tmp_path)
    assert done.returncode == 2
    assert "gone.txt" in done.stderr and "cannot read the key file" in done.stderr
    assert "Traceback" not in done.stderr

    done = cli("status", "--config", str(bad), cwd=tmp_path)
    assert done.returncode == 2 and "heartbeat = 3" in done.stderr


# -- status without a runner (in-process: no engine involved) ---------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    sim, config = group_layout(key_file=tmp_path / "keys.txt", data_dir=tmp_path / "data")
    sim.stop()
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    return path


def test_status_before_any_run_shows_every_session_as_stopped(offline: Path) -> None:
    result = CliRunner().invoke(main, ["status", "--config", str(offline)])
    assert result.exit_code == 5, result.output  # not running
    lines = result.output.splitlines()
    assert lines[1].split()[:6] == ["GROUP", "SESSION", "STATE", "ENDPOINT", "LAST", "IN"]
    assert [line.split()[1:3] for line in lines[2:]] == [
        ["ABCDEFN:G", "stopped"],
        ["XYZDEFN:84", "stopped"],
        ["XYZDEFN:92", "stopped"],
        ["XYZDEFN:98", "stopped"],
    ]
    report = json.loads(CliRunner().invoke(main, ["status", "--config", str(offline), "--json"]).output)
    assert report["source"] == "store"
    assert {s["next_inbound_seq"] for s in report["sessions"]} == {None}


def test_status_reads_the_store_files(offline: Path) -> None:
    store = offline.parent / "data" / "store"
    store.mkdir(parents=True)
    (store / "FIX.4.2-XYZDEFN-CME-92.seqnums").write_text("0000000012 : 0000004057", encoding="ascii")
    (store / "FIX.4.2-XYZDEFN-CME-84.seqnums").write_text("garbage", encoding="ascii")
    report = read_status(load_config(offline))
    by_name = {s["session"]: s for s in report["sessions"]}
    assert (by_name["XYZDEFN:92"]["next_outbound_seq"], by_name["XYZDEFN:92"]["next_inbound_seq"]) == (
        12,
        4057,
    )
    assert (by_name["XYZDEFN:92"]["last_outbound_seq"], by_name["XYZDEFN:92"]["last_inbound_seq"]) == (
        11,
        4056,
    )
    assert by_name["XYZDEFN:84"]["next_inbound_seq"] is None


def _status_file(path: Path, **overrides: Any) -> None:
    data = {
        "pid": os.getpid(),
        "updated": dt.datetime.now(dt.UTC).isoformat(),
        "running": True,
        "sessions": [{"group": "clearing", "session": "ABCDEFN:G", "state": "logged on"}],
    }
    data.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_status_trusts_status_json_only_while_its_writer_is_alive_running_and_current(offline: Path) -> None:
    config = load_config(offline)
    status_json = Path(config.data_dir) / "status.json"
    _status_file(status_json)
    assert read_status(config)["source"] == "live"
    result = CliRunner().invoke(main, ["status", "--config", str(offline)])
    assert f"running (pid {os.getpid()})" in result.output and "logged on" in result.output

    old = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=11)).isoformat()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    for overrides in (
        {"running": False},
        {"updated": old},
        {"pid": int(dead.stdout)},
        {"updated": "yesterday"},
        {"pid": "x"},
    ):
        _status_file(status_json, **overrides)
        assert read_status(config)["source"] == "store", overrides
    status_json.write_text("{not json", encoding="utf-8")
    assert read_status(config)["source"] == "store"


def test_status_publisher_writes_atomically_and_marks_the_end(tmp_path: Path) -> None:
    path = tmp_path / "d" / "status.json"
    publisher = StatusPublisher(list, path, interval=0.05)
    publisher.start()
    first = json.loads(path.read_text(encoding="utf-8"))
    assert (first["running"], first["pid"], first["sessions"]) == (True, os.getpid(), [])
    _wait(lambda: json.loads(path.read_text(encoding="utf-8"))["updated"] != first["updated"])
    publisher.close()
    assert json.loads(path.read_text(encoding="utf-8"))["running"] is False
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]


def _live_messages(tmp_path: Path, session: str) -> int:
    try:
        data = json.loads((tmp_path / "data" / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return next((s["messages"] for s in data["sessions"] if s["session"] == session), 0)


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_run_exits_3_once_every_session_is_locked_out_and_says_what_to_do(
    tmp_path: Path, today: dt.date
) -> None:
    sim, config = group_layout(cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt")
    wrong = tmp_path / "wrong.txt"
    write_key_file(wrong, [generate_key("ABC", created=today, expires=today + dt.timedelta(days=300))])
    with sim:
        path = tmp_path / "dropcopy.toml"
        path.write_text(config_toml(config).replace(str(tmp_path / "keys.txt"), str(wrong)), encoding="utf-8")
        done = cli("run", "--config", str(path), cwd=tmp_path, timeout=60)
        assert done.returncode == 3, done.stderr
        assert "every session is locked out" in done.stderr and "dropcopy keys check" in done.stderr
        assert "client.unlock" not in done.stderr  # a CLI user gets the CLI's way out
        assert "Traceback" not in done.stderr
        assert sim.bad_logons(CGW) == 1


def test_status_exits_non_zero_while_a_session_is_locked_out(tmp_path: Path, today: dt.date) -> None:
    sim, config = group_layout(cgw=("ABCDEFN",), msgw={"XYZDEFN": ["84"]}, key_file=tmp_path / "keys.txt")
    with sim:
        (abc,) = [k for k in load_key_file(tmp_path / "keys.txt").keys if k.session_id == "ABC"]
        sim.remove_key(abc.access_key_id)  # the CGW target's key is refused; the MSGW target keeps going
        path = tmp_path / "dropcopy.toml"
        path.write_text(config_toml(config), encoding="utf-8")
        run = Process("run", "--config", str(path), cwd=tmp_path)
        try:
            assert sim.wait_for(lambda: sim.is_logged_on(S84), 30), run.stderr
            _wait(lambda: _state(tmp_path, "ABCDEFN:G") == "locked out")
            shown = cli("status", "--config", str(path), cwd=tmp_path)
            assert shown.returncode == 3, shown.stdout + shown.stderr
            assert run.stop(signal.SIGTERM) == 0, run.stderr
        finally:
            run.kill()


def _state(tmp_path: Path, session: str) -> str | None:
    try:
        data = json.loads((tmp_path / "data" / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return next((s["state"] for s in data["sessions"] if s["session"] == session), None)
