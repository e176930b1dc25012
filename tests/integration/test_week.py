"""The trading week: sequences go back to 1 at the weekly boundary, and only then (or when asked)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from dropcopy_client import DropCopyClient, Fill, SessionState
from dropcopy_client._week import WeeklySchedule
from dropcopy_client._wire import parse_frame
from dropcopy_client.auth import ApiKey
from dropcopy_client.testing import BUY, ESZ6, ScriptedSession, Simulator
from tests.integration.conftest import SESSION, Collector, config_for

pytestmark = pytest.mark.integration

NAME = "ABCDEFN:G"


def fills(count: int, prefix: int) -> list[bytes]:
    src = ScriptedSession(exec_id_prefix=prefix)
    return [src.order(ESZ6, account="A", side=BUY, qty=1, price="1").fill(1) for _ in range(count)]


def logons(sim: Simulator) -> list[dict[int, bytes]]:
    return [dict(parse_frame(raw)) for raw in sim.received(SESSION, "A")]


def test_the_weekly_boundary_resets_both_sequences_while_running(
    key: ApiKey, key_file: Path, tmp_path: Path
) -> None:
    boundary = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)).replace(microsecond=0)
    schedule = WeeklySchedule(reset_day=boundary.weekday(), reset_time=boundary.time(), timezone="UTC")
    with Simulator([key], sessions=[SESSION]) as sim:
        client = DropCopyClient(config_for(sim, key_file, tmp_path / "data"), schedule=schedule)
        try:
            seen = Collector(client)
            client.start(wait=15)
            sim.send_many(SESSION, fills(5, 91000))
            seen.wait_count(Fill, 5)
            assert sim.wait_for(lambda: not sim.is_logged_on(SESSION), timeout=15)  # the client logged out
            sim.reset_week(SESSION)  # CME's beginning of week
            assert sim.wait_logged_on(SESSION, timeout=15)
            new_week = logons(sim)[-1]
            assert new_week[34] == b"1" and new_week[141] == b"N"
            later = fills(3, 92000)
            seqs = sim.send_many(SESSION, later)
            got = seen.wait_count(Fill, 8)
            assert [f.delivery.seq_num for f in got[5:]] == list(seqs)
            assert seqs.start == 2
            assert client.journal is not None
            assert client.journal.last_seq(NAME) == seqs.stop - 1
            assert client.journal.sessions()[NAME].epoch == int(boundary.strftime("%Y%m%d")) * 100
        finally:
            client.stop()


def test_an_explicit_in_session_reset_logs_on_with_141_y_and_34_1(
    key: ApiKey, key_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Simulator([key], sessions=[SESSION], allow_reset_on_logon=True) as sim:
        client = DropCopyClient(config_for(sim, key_file, tmp_path / "data"))
        try:
            seen = Collector(client)
            client.start(wait=15)
            sim.send_many(SESSION, fills(4, 93000))
            seen.wait_count(Fill, 4)
            count = len(logons(sim))
            client.reset_sequences(NAME)
            assert sim.wait_for(lambda: len(logons(sim)) > count and sim.is_logged_on(SESSION), timeout=20)
            reset = logons(sim)[-1]
            assert reset[141] == b"Y" and reset[34] == b"1"
            assert "unrecoverable" in caplog.text
            later = fills(2, 94000)
            sim.send_many(SESSION, later)
            got = seen.wait_count(Fill, 6)
            assert [f.exec_id for f in got[4:]] == [dict(parse_frame(i))[17].decode() for i in later]
            deadline = time.monotonic() + 5
            while client.status()[0].state is not SessionState.LOGGED_ON and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.status()[0].state is SessionState.LOGGED_ON
        finally:
            client.stop()
