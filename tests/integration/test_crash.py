"""Exactly-once effect across crashes: kill -9 a real client process mid-burst, restart it, compare journals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dropcopy_client._journal import Journal
from dropcopy_client._wire import parse_frame
from dropcopy_client.config import ClientConfig
from dropcopy_client.positions import SqliteFillHistory, replay_journal
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

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

SESSION = SimSession("ABCDEFN")
NAME = "ABCDEFN:G"
BURST = 50_000


def burst() -> list[bytes]:
    src = ScriptedSession()
    return [
        src.order(ESZ6, account="ACCT1", side=BUY if i % 2 else SELL, qty=1, price="4500").fill(1)
        for i in range(BURST)
    ]


def journaled(data_dir: Path) -> tuple[list[str], int]:
    """(ExecIDs in sequence order, position) of the journal; asserts nothing above the position is unaccounted."""
    path = data_dir / "journal.sqlite"
    if not path.exists():
        return [], 0
    with Journal.open_readonly(path) as journal:
        rows = sorted((row.seq, row.exec_id or "") for row in journal.iter_messages(session=NAME))
        position = journal.sessions()[NAME]
        assert position.highest_seen == position.last_seq  # every number up to the highest is accounted for
        return [exec_id for _, exec_id in rows], position.last_seq


def count(data_dir: Path) -> int:
    path = data_dir / "journal.sqlite"
    if not path.exists():
        return 0
    try:
        with Journal.open_readonly(path) as journal:
            return journal.count()
    except Exception:  # the writer may be creating the schema right now
        return 0


class ClientProcess:
    def __init__(self, config_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_client", str(config_path)],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_logged_on(self, timeout: float = 30) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("LOGGED ON"):
                return
            if not line and self.proc.poll() is not None:
                break
        self.kill()
        raise AssertionError(f"client did not log on: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def run(sim: Simulator, config: ClientConfig, tmp: Path, inners: list[bytes], kill_at: list[int]) -> Path:
    """Stream ``inners`` to one client process, killing it with SIGKILL each time the journal reaches a mark."""
    config_path = tmp / "dropcopy.toml"
    config_path.write_text(config_toml(config), encoding="utf-8")
    data_dir = Path(config.data_dir)
    client = ClientProcess(config_path)
    try:
        client.wait_logged_on()
        sender = threading.Thread(target=sim.send_many, args=(SESSION, inners), daemon=True)
        sender.start()
        for mark in kill_at:
            deadline = time.monotonic() + 120
            while count(data_dir) < mark:
                assert client.proc.poll() is None, client.proc.stderr.read() if client.proc.stderr else ""
                assert time.monotonic() < deadline, f"journal stuck at {count(data_dir)} before {mark}"
                time.sleep(0.02)
            client.kill()
            client = ClientProcess(config_path)
            client.wait_logged_on()
        deadline = time.monotonic() + 180
        while count(data_dir) < len(inners):
            assert client.proc.poll() is None, client.proc.stderr.read() if client.proc.stderr else ""
            assert time.monotonic() < deadline, f"journal stuck at {count(data_dir)} of {len(inners)}"
            time.sleep(0.1)
        sender.join(timeout=60)
        assert client.stop() == 0
    finally:
        client.kill()
    return data_dir


def test_kill_9_mid_burst_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    inners = burst()
    sent = [dict(parse_frame(inner))[17].decode() for inner in inners]

    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    sim, config = group_layout(cgw=(SESSION.sender_comp_id,), msgw={}, key_file=reference_dir / "keys.txt")
    with sim:
        run(sim, config, reference_dir, inners, kill_at=[])
    reference, _ = journaled(Path(config.data_dir))

    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    sim, config = group_layout(cgw=(SESSION.sender_comp_id,), msgw={}, key_file=crash_dir / "keys.txt")
    with sim:
        run(sim, config, crash_dir, inners, kill_at=[3_000, 17_000, 31_000, 44_000])
        resends = len(sim.received(SESSION, "2"))
    crashed, position = journaled(Path(config.data_dir))

    assert reference == sent
    assert crashed == sent  # zero lost, zero doubled, in sequence order
    assert position >= BURST + 1  # the logon ack is 1, the burst 2..BURST+1, then logon acks and heartbeats
    assert resends >= 4  # every restart had to ask for what reached QuickFIX but not the journal
    # the book's own rows survived the kills too: rebuilt from them it is the book decoded from the journal
    path = Path(config.data_dir) / "journal.sqlite"
    fast, slow = replay_journal(path), replay_journal(path, fast=False)
    assert isinstance(fast.history, SqliteFillHistory) and fast.history.count() >= BURST
    assert [p.to_dict() for p in fast.snapshot()] == [p.to_dict() for p in slow.snapshot()]
    assert fast.snapshot()[0].fill_count == BURST
