"""SIGTERM and SIGINT end every way of running a client with a clean logout, exit code 0 and no traceback;
``dropcopy run | head`` ends when the pipe closes, even on a quiet session.

Real subprocesses (tests/integration/signal_client.py is written the way the docs show each mode, with no
signal handling of its own) against the simulator on 127.0.0.1; each is killed in ``finally``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropcopy_client.testing import ESZ6, ScriptedSession, SimSession, Simulator, config_toml, group_layout
from tests.integration._proc import Proc

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CGW = SimSession("ABCDEFN")


@pytest.fixture
def one_session(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    sim, config = group_layout(cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt")
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    with sim:
        yield sim, path


def script_for(mode: str, config: Path) -> Proc:
    """``python -m tests.integration.signal_client MODE CONFIG``."""
    return Proc(
        [sys.executable, "-m", "tests.integration.signal_client", mode, str(config)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("mode", ["run", "events", "stream"])
def test_a_signal_logs_out_cleanly_and_exits_0(
    one_session: tuple[Simulator, Path], mode: str, sig: signal.Signals
) -> None:
    sim, path = one_session
    script = script_for(mode, path)
    try:
        script.wait_line(lambda line: line == "READY", timeout=40)
        assert sim.wait_for(lambda: sim.is_logged_on(CGW), 10)
        if mode != "run":  # the iterator is live: events arrive, then the signal ends it
            order = ScriptedSession().order(ESZ6, account="ACCT1", qty=1, price="4500")
            sim.send_many(CGW, [order.ack(), order.fill()])
            script.wait_line(lambda line: line == "Fill")
        code = script.stop(sig, timeout=30)
    finally:
        script.kill()
    assert code == 0, script.stderr
    assert "Traceback" not in script.stderr and "KeyboardInterrupt" not in script.stderr, script.stderr
    assert sim.received(CGW, "5"), "the simulator saw no Logout"
    assert script.lines[-1] == "ENDED", script.lines  # the code after the loop ran: a stop, not a crash


@pytest.mark.timeout(90)
def test_sigterm_inside_a_with_block_that_only_waits_still_logs_out(
    one_session: tuple[Simulator, Path],
) -> None:
    sim, path = one_session
    script = script_for("sleep", path)
    try:
        script.wait_line(lambda line: line == "READY", timeout=40)
        code = script.stop(signal.SIGTERM, timeout=30)
    finally:
        script.kill()
    assert code == 0, script.stderr
    assert "Traceback" not in script.stderr, script.stderr
    assert sim.received(CGW, "5"), "the simulator saw no Logout"


@pytest.mark.timeout(90)
def test_run_piped_into_head_exits_when_the_pipe_closes_on_a_quiet_session(
    one_session: tuple[Simulator, Path], tmp_path: Path
) -> None:
    sim, path = one_session
    # `head -n 3` reads the three state changes of the logon; the session then sends nothing at all
    command = f"{sys.executable} -m dropcopy_client.cli run --config {path} | head -n 3"
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr  # pipefail: dropcopy's own exit code, head's is 0
    assert len(done.stdout.splitlines()) == 3 and "-> logged on" in done.stdout.splitlines()[-1]
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert sim.received(CGW, "5"), "the simulator saw no Logout"
    assert took < 30, f"took {took:.1f} s"
