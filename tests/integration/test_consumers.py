"""Consumers behind the journal: at-least-once across kill -9, retries, slow consumers, clean restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dropcopy_client import DropCopyClient, Fill, HandlerFailed
from dropcopy_client._recovery import GapDetected
from dropcopy_client._wire import parse_frame
from dropcopy_client.config import ClientConfig
from dropcopy_client.testing import ScriptedSession, Simulator, config_toml, group_layout
from tests.integration.conftest import SESSION, Collector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


def fills(count: int, prefix: int = 84618) -> list[bytes]:
    src = ScriptedSession(exec_id_prefix=prefix)
    return [src.order(qty=1, price="100").fill(1) for _ in range(count)]


def exec_ids(inners: list[bytes]) -> list[str]:
    return [dict(parse_frame(inner))[17].decode() for inner in inners]


class Proc:
    """``tests.integration.consumer_client`` in a real process."""

    def __init__(self, config: Path, out: Path, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.consumer_client", str(config), str(out)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("LOGGED ON"):
            self.kill()
            raise AssertionError(
                f"client did not log on: {self.proc.stderr.read() if self.proc.stderr else ''}"
            )

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def lines(out: Path) -> list[tuple[str, bool]]:
    if not out.exists():
        return []
    return [(x, r == "1") for x, r in (line.split() for line in out.read_text(encoding="ascii").splitlines())]


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Simulator, ClientConfig, Path]]:
    sim, config = group_layout(cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt", heartbeat=5)
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    with sim:
        yield sim, config, path


def test_a_handler_killed_mid_stream_gets_every_fill_it_had_not_finished_after_a_restart(
    layout: tuple[Simulator, ClientConfig, Path], tmp_path: Path
) -> None:
    sim, _, path = layout
    (session,) = sim.sessions
    out = tmp_path / "store.txt"
    burst = fills(8)
    client = Proc(path, out, HANG_AFTER="3")
    try:
        sim.send_many(session, burst)
        wait(lambda: len(lines(out)) == 3, 30, "three fills in the store")
        time.sleep(0.5)  # the journal holds all eight by now; the handler hangs on the fourth
    finally:
        client.kill()
    assert [x for x, _ in lines(out)] == exec_ids(burst)[:3]
    again = Proc(path, out)
    try:
        wait(lambda: len(lines(out)) >= 8, 30, "the other five fills after the restart")
    finally:
        assert again.terminate() == 0
    got = lines(out)
    assert [x for x, _ in got] == exec_ids(burst)  # nothing missing, in order
    assert all(replayed for _, replayed in got[3:])  # re-fed from the journal after the crash


def test_a_slow_handler_costs_neither_the_session_nor_memory_and_gets_everything_after_a_restart(
    layout: tuple[Simulator, ClientConfig, Path], tmp_path: Path
) -> None:
    sim, _, path = layout
    (session,) = sim.sessions
    out = tmp_path / "store.txt"
    burst = fills(20_000)
    client = Proc(path, out, SLOW_MS="50", DRAIN="2")
    try:
        sim.send_many(session, burst[:5_000])
        wait(lambda: journaled(tmp_path) >= 5_000, 60, "5,000 journaled")
        rss_behind_5k = client.rss()
        sim.send_many(session, burst[5_000:])
        wait(lambda: journaled(tmp_path) >= 20_000, 120, "20,000 journaled while the handler lags")
        rss_behind_20k = client.rss()
        time.sleep(12)  # more than two heartbeat intervals: the engine keeps the session alive meanwhile
        assert sim.is_logged_on(session)
        behind = len(lines(out))
        assert behind < 5_000  # the handler is far behind the journal
        assert rss_behind_20k - rss_behind_5k < 40 * 1024 * 1024, (rss_behind_5k, rss_behind_20k)
    finally:
        assert client.terminate() == 0  # stop() gives up waiting after DRAIN and leaves the cursor there
    assert len(lines(out)) < 20_000
    again = Proc(path, out)
    try:
        wait(lambda: len(lines(out)) >= 20_000, 120, "everything after the restart")
    finally:
        assert again.terminate() == 0
    got = [x for x, _ in lines(out)]
    assert list(dict.fromkeys(got)) == exec_ids(burst)  # every fill, in order (a few twice: at-least-once)
    assert len(got) - len(set(got)) <= 1  # at most the one in the handler's hands when it was stopped


def journaled(tmp_path: Path) -> int:
    from dropcopy_client._journal import Journal

    path = tmp_path / "data" / "journal.sqlite"
    if not path.exists():
        return 0
    with Journal.open_readonly(path) as journal:
        return journal.count()


def test_a_handler_that_raises_for_its_first_calls_receives_every_event_in_order(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    seen = Collector(client)
    got: list[str] = []
    calls = 0

    @client.on(Fill, name="flaky")
    def flaky(fill: Fill) -> None:
        nonlocal calls
        calls += 1
        if calls <= 4:
            raise ConnectionError("store not reachable yet")
        got.append(fill.exec_id)

    client.start(wait=15)
    burst = fills(6)
    sim.send_many(SESSION, burst)
    assert seen.wait(lambda _: len(got) == 6, 30)
    assert got == exec_ids(burst)
    failures = [e for e in seen.of(HandlerFailed) if e.handler == "flaky"]
    assert len(failures) == 4 and all(f.event.exec_id == exec_ids(burst)[0] for f in failures)
    assert [f.attempt for f in failures] == [1, 2, 3, 4]
    assert all(f.retry_in is not None for f in failures)


def test_a_clean_restart_does_not_see_a_gap_for_what_the_last_run_journaled(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    first = make_client()
    seen = Collector(first)
    first.start(wait=15)
    sim.send_many(SESSION, fills(5))
    seen.wait_count(Fill, 5)
    first.stop()
    second = make_client()
    seen_again = Collector(second)
    second.start(wait=15)
    sim.send_many(SESSION, fills(2, prefix=7001))
    seen_again.wait_count(Fill, 2)
    assert not seen_again.of(GapDetected)
    assert not seen.of(GapDetected)


def test_a_named_iterator_resumes_where_its_reader_left_it(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    events = client.events(timeout=10, name="reader", types=(Fill,))
    client.start(wait=15)
    burst = fills(4)
    sim.send_many(SESSION, burst)
    taken = [next(events), next(events)]  # the second is handed out, but not asked past
    client.stop()
    again = make_client()
    resumed = again.events(timeout=10, name="reader", types=(Fill,))
    again.start(wait=15)
    rest = [next(resumed) for _ in range(3)]
    assert [e.exec_id for e in taken] == exec_ids(burst)[:2]  # type: ignore[attr-defined]
    # the second one again (it may not have been finished), flagged replayed, then the others
    assert [e.exec_id for e in rest] == exec_ids(burst)[1:]  # type: ignore[attr-defined]
    assert all(e.replayed for e in rest)  # type: ignore[attr-defined]
