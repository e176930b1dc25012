"""Sinks from the configuration and the command line, and `dropcopy export` (backfill, resume, refusals)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from dropcopy_client import DropCopyClient, Fill, HandlerFailed
from dropcopy_client._export import ExportError, export_journal
from dropcopy_client.cli import main
from dropcopy_client.config import ClientConfig, SinkConfig, load_config
from dropcopy_client.sinks import open_sink
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

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SESSION = SimSession("ABCDEFN")


def fills(count: int) -> list[bytes]:
    src = ScriptedSession(exec_id_prefix=552)
    return [
        src.order(ESZ6, account="ACC9", side=BUY if i % 2 else SELL, qty=1 + i % 3, price="4500").fill()
        for i in range(count)
    ]


def pg_url(schema: PgSchema) -> str:
    schema.run("CREATE SCHEMA {s}")
    return f"{schema.dsn}{'&' if '?' in schema.dsn else '?'}options=-csearch_path%3D{schema.name}"


def jsonl_records(directory: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Simulator, ClientConfig]]:
    sim, config = group_layout(cgw=(SESSION.sender_comp_id,), msgw={}, key_file=tmp_path / "keys.txt")
    with sim:
        yield sim, config


def journal_with(sim: Simulator, config: ClientConfig, count: int) -> list[bytes]:
    """Run a client until ``count`` fills are journaled, then stop it."""
    inners = fills(count)
    client = DropCopyClient(config)
    got: list[Fill] = []
    client.on(Fill, name="count")(got.append)
    client.start(wait=30)
    try:
        sim.send_many(SESSION, inners)
        wait_for(lambda: len(got) >= count, 60, "the fills")
    finally:
        client.stop()
    return inners


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------ [[sink]] / --sink


def test_a_sink_in_the_configuration_gets_every_event(
    layout: tuple[Simulator, ClientConfig], tmp_path: Path, pg_schema: PgSchema
) -> None:
    sim, config = layout
    archive = tmp_path / "archive"
    config = attrs.evolve(
        config,
        sinks=(
            SinkConfig(url=pg_url(pg_schema), name="db", table="fills"),
            SinkConfig(url=f"jsonl://{archive}", name="archive"),
        ),
    )
    inners = journal_with(sim, config, 300)
    rows = pg_schema.query("SELECT count(*), count(DISTINCT exec_id) FROM {s}.fills")
    assert rows == [(300, 300)]
    assert len({r["exec_id"] for r in jsonl_records(archive)}) == len(inners)


def test_a_database_down_at_start_holds_back_its_sink_only_and_catches_up_when_it_answers(
    layout: tuple[Simulator, ClientConfig], tmp_path: Path, pg_schema: PgSchema
) -> None:
    sim, config = layout
    port = closed_port()
    down = f"postgresql://nobody@127.0.0.1:{port}/risk?connect_timeout=2"
    config = attrs.evolve(config, sinks=(SinkConfig(url=down, name="db"),))
    client = DropCopyClient(config)
    failures: list[HandlerFailed] = []
    client.on(HandlerFailed, name="failures")(failures.append)
    got: list[Fill] = []
    client.on(Fill, name="count")(got.append)
    client.start(wait=30)  # the sessions log on although the sink cannot connect
    try:
        sim.send_many(SESSION, fills(50))
        wait_for(lambda: len(got) == 50, 30, "the fills reach the other consumer")
        wait_for(lambda: any(f.event_type == "opening the sink" for f in failures), 30, "the failure")
        (db,) = [c for c in client.consumers() if c.name == "db"]
        assert db.state == "retrying" and db.lag_messages >= 50 and db.last_error
        assert "nobody" in db.last_error or "127.0.0.1" in db.last_error
    finally:
        client.stop(timeout=2)
    # the same sink, reachable now: a restart backfills it from its stored cursor (the beginning)
    config = attrs.evolve(config, sinks=(SinkConfig(url=pg_url(pg_schema), name="db"),))
    client = DropCopyClient(config)
    client.start(wait=30)
    try:
        wait_for(
            lambda: pg_schema.query("SELECT count(*) FROM {s}.dropcopy_execution_reports") == [(50,)],
            60,
            "the backfill",
        )
    finally:
        client.stop()


def test_dropcopy_run_sink_adds_a_sink_and_refuses_a_clashing_name(
    layout: tuple[Simulator, ClientConfig], tmp_path: Path
) -> None:
    _, config = layout
    archive = tmp_path / "cli-archive"
    config = attrs.evolve(config, sinks=(SinkConfig(url=f"jsonl://{tmp_path / 'a'}", name="jsonl"),))
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--sink", f"jsonl:{archive}"])
    assert result.exit_code == 2
    assert "two sinks are named 'jsonl'" in result.output and "--sink-name" in result.output
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--sink", "kafka://broker:9092"])
    assert result.exit_code == 2 and "unknown scheme" in result.output
    from dropcopy_client.cli.run import with_sinks

    added = with_sinks(load_config(path), (f"jsonl:{archive}",), ("cli",))
    assert [(s.name, s.kind) for s in added.sinks] == [("jsonl", "jsonl"), ("cli", "jsonl")]
    assert added.sinks[1].url.endswith(str(archive))


# ------------------------------------------------------------------------------------------ dropcopy export


def test_export_to_postgresql_backfills_resumes_and_refuses_to_leave_a_hole(
    layout: tuple[Simulator, ClientConfig], tmp_path: Path, pg_schema: PgSchema
) -> None:
    sim, config = layout
    inners = journal_with(sim, config, 700)
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    url = pg_url(pg_schema)
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--config", str(path), "--sink", url, "--name", "backfill"])
    assert result.exit_code == 0, result.output
    assert "exported 700 events" in result.output
    assert pg_schema.query("SELECT count(*) FROM {s}.dropcopy_execution_reports") == [(len(inners),)]
    expected = sum((1 + i % 3) * (1 if i % 2 else -1) for i in range(len(inners)))
    assert pg_schema.query("SELECT net_qty FROM {s}.dropcopy_positions WHERE account = 'ACC9'") == [
        (expected,)
    ]
    # again: its cursor says it is up to date
    again = runner.invoke(main, ["export", "--config", str(path), "--sink", url, "--name", "backfill"])
    assert again.exit_code == 0 and "up to date" in again.output
    # a start past its cursor would leave a hole: refused, with what to do instead
    hole = runner.invoke(
        main, ["export", "--config", str(path), "--sink", url, "--name", "backfill", "--from", "2020-01-01"]
    )
    assert hole.exit_code == 2 and "another sink name" in hole.output
    # more journaled later: the export continues from the cursor, nothing doubled
    more = fills(1000)[700:760]
    client = DropCopyClient(config)
    client.start(wait=30)
    try:
        sim.send_many(SESSION, more)
        wait_for(lambda: client.journal is not None and client.journal.count() >= 760, 30, "more fills")
    finally:
        client.stop()
    result = runner.invoke(main, ["export", "--config", str(path), "--sink", url, "--name", "backfill"])
    assert result.exit_code == 0 and "exported 60 events" in result.output
    assert pg_schema.query(
        "SELECT count(*), count(DISTINCT exec_id) FROM {s}.dropcopy_execution_reports"
    ) == [(760, 760)]


def test_export_to_json_lines_from_an_id_and_from_a_date(
    layout: tuple[Simulator, ClientConfig], tmp_path: Path
) -> None:
    sim, config = layout
    journal_with(sim, config, 120)
    journal = Path(config.data_dir) / "journal.sqlite"
    out = tmp_path / "out"
    sink = open_sink(f"jsonl://{out}", name="files")
    result = export_journal(journal, sink, after_id=100)
    sink.close()
    assert (result.events, result.started_after) == (result.last_id - 100, 100)
    assert [r["journal_id"] for r in jsonl_records(out)] == list(range(101, result.last_id + 1))
    assert all(r["replayed"] for r in jsonl_records(out))
    # a date after everything: nothing written, the journal is still read to its end
    later = tmp_path / "later"
    runner = CliRunner()
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    done = runner.invoke(
        main, ["export", "--config", str(path), "--sink", f"jsonl:{later}", "--from", "2999-01-01"]
    )
    assert done.exit_code == 0, done.output
    assert jsonl_records(later) == []


def test_export_errors_people_can_act_on(tmp_path: Path, layout: tuple[Simulator, ClientConfig]) -> None:
    _, config = layout
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    runner = CliRunner()
    missing = runner.invoke(main, ["export", "--config", str(path), "--sink", f"jsonl:{tmp_path / 'x'}"])
    assert missing.exit_code == 1 and "dropcopy run --config" in missing.output
    bad = runner.invoke(main, ["export", "--config", str(path), "--sink", "ftp://x"])
    assert bad.exit_code == 2 and "unknown scheme" in bad.output


def test_export_refusal_in_the_api(tmp_path: Path, layout: tuple[Simulator, ClientConfig]) -> None:
    class Behind:
        name = "held"

        def write(self, batch: object) -> None:
            raise AssertionError("nothing may be written")

        def close(self) -> None:
            pass

        def cursor(self) -> int:
            return 5

    sim, config = layout
    journal_with(sim, config, 10)
    with pytest.raises(ExportError, match=r"held.*up to 5"):
        export_journal(Path(config.data_dir) / "journal.sqlite", Behind(), after_id=9)
