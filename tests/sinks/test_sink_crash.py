"""Sinks across kill -9: `dropcopy run` with a PostgreSQL and a JSON Lines sink, killed mid-burst, restarted.

PostgreSQL must end with every execution report exactly once (its cursor commits with the rows); the JSON
Lines files at least once with nothing missing. The kills land at different stages: while the journal is
still filling, while PostgreSQL is behind the journal, and after the journal has everything but the sinks
have not caught up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from dropcopy_client._journal import Journal
from dropcopy_client._wire import parse_frame
from dropcopy_client.config import ClientConfig, SinkConfig
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
from tests.sinks.conftest import PgSchema

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SESSION = SimSession("ABCDEFN")
BURST = 20_000


def burst(count: int) -> list[bytes]:
    src = ScriptedSession(exec_id_prefix=771)
    return [
        src.order(ESZ6, account="ACCT1", side=BUY if i % 3 else SELL, qty=1 + i % 4, price="4500").fill()
        for i in range(count)
    ]


def exec_id(inner: bytes) -> str:
    return dict(parse_frame(inner))[17].decode()


class Runner:
    """``dropcopy run --config F`` in a real process (its event lines go to a file nobody reads)."""

    def __init__(self, sim: Simulator, config: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dropcopy_client.cli", "run", "--config", str(config)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        if not sim.wait_logged_on(SESSION, timeout=60):
            self.kill()
            raise AssertionError(f"dropcopy run did not log on:\n{log.read_text(errors='replace')[-4000:]}")

    def alive(self) -> None:
        assert self.proc.poll() is None, (
            f"dropcopy run exited:\n{self.log.read_text(errors='replace')[-4000:]}"
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


def journal_count(data_dir: Path) -> int:
    path = data_dir / "journal.sqlite"
    if not path.exists():
        return 0
    try:
        with Journal.open_readonly(path) as journal:
            return journal.count()
    except Exception:  # the writer may be creating the schema right now
        return 0


def pg_count(schema: PgSchema) -> int:
    try:
        return int(schema.query("SELECT count(*) FROM {s}.dropcopy_execution_reports")[0][0])  # type: ignore[arg-type]
    except Exception:  # not created yet
        return 0


def jsonl_ids(directory: Path) -> list[str]:
    ids = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("exec_id"):
                    ids.append(record["exec_id"])
    return ids


def wait(predicate: Callable[[], bool], timeout: float, what: str, runner: Runner) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        runner.alive()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def layout(tmp_path: Path, pg_schema: PgSchema) -> Iterator[tuple[Simulator, ClientConfig, Path]]:
    pg_schema.run("CREATE SCHEMA {s}")
    # the schema through libpq's options: the sink is configured by URL alone, as a user would
    url = f"{pg_schema.dsn}{'&' if '?' in pg_schema.dsn else '?'}options=-csearch_path%3D{pg_schema.name}"
    sim, config = group_layout(cgw=(SESSION.sender_comp_id,), msgw={}, key_file=tmp_path / "keys.txt")
    config = attrs.evolve(
        config,
        sinks=(
            SinkConfig(url=url, name="risk-db"),
            SinkConfig(url=f"jsonl://{tmp_path / 'archive'}", name="archive"),
        ),
    )
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    with sim:
        yield sim, config, path


def test_kill_9_at_several_points_pg_exactly_once_and_the_file_sink_at_least_once(
    layout: tuple[Simulator, ClientConfig, Path], pg_schema: PgSchema, tmp_path: Path
) -> None:
    sim, config, path = layout
    data_dir = Path(config.data_dir)
    archive = tmp_path / "archive"
    inners = burst(BURST)
    sent = [exec_id(inner) for inner in inners]
    log = tmp_path / "run.log"
    runner = Runner(sim, path, log)
    sender = threading.Thread(target=sim.send_many, args=(SESSION, inners), daemon=True)
    kills: list[tuple[str, int, int]] = []  # (stage, journal rows, PostgreSQL rows) at each kill
    try:
        sender.start()
        stages: list[tuple[str, Callable[[], bool]]] = [
            ("journal filling", lambda: journal_count(data_dir) >= BURST // 5),
            ("PostgreSQL mid-stream", lambda: pg_count(pg_schema) >= BURST // 2),
            ("journal complete, sinks behind", lambda: journal_count(data_dir) >= BURST),
        ]
        for stage, reached in stages:
            wait(reached, 240, stage, runner)
            kills.append((stage, journal_count(data_dir), pg_count(pg_schema)))
            runner.kill()
            assert sim.wait_logged_off(SESSION, timeout=30)
            runner = Runner(sim, path, log)
        wait(lambda: pg_count(pg_schema) >= BURST, 300, "every report in PostgreSQL", runner)
        wait(
            lambda: set(jsonl_ids(archive)) >= set(sent), 300, "every report in the JSON Lines files", runner
        )
        sender.join(timeout=60)
        assert runner.terminate() == 0, log.read_text(errors="replace")[-4000:]
    finally:
        runner.kill()

    print("kills (stage, journal rows, PostgreSQL rows):", kills)
    # PostgreSQL: exactly once, every one, and its cursor at the journal's end
    rows = [r[0] for r in pg_schema.query("SELECT exec_id FROM {s}.dropcopy_execution_reports")]
    assert len(rows) == BURST, kills
    assert sorted(rows) == sorted(sent)  # type: ignore[type-var]
    with Journal.open_readonly(data_dir / "journal.sqlite") as journal:
        last_id = journal.max_id()
        assert journal.count() == BURST  # nothing doubled in the journal either
    ((cursor,),) = pg_schema.query("SELECT last_id FROM {s}.dropcopy_cursors WHERE name = 'risk-db'")
    assert cursor == last_id
    # positions: the net of every fill, once
    expected = sum((1 + i % 4) * (1 if i % 3 else -1) for i in range(BURST))
    ((net,),) = pg_schema.query("SELECT net_qty FROM {s}.dropcopy_positions WHERE account = 'ACCT1'")
    assert net == expected

    # JSON Lines: at least once, nothing missing, journal order within each run
    ids = jsonl_ids(archive)
    assert set(ids) == set(sent)
    assert len(ids) >= BURST
