"""PostgresSink against a real PostgreSQL server (tests/sinks/conftest.py): real SQL, no mocks.

Rows round-trip field by field; the same batch twice gives the rows once; rows, positions and the cursor
commit together, even when a writer process is killed with SIGKILL in the middle of a batch's transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest

from dropcopy_client import ExecutionReport, SinkError
from dropcopy_client._recovery import UnrecoverableGap
from dropcopy_client._serialize import event_to_dict
from dropcopy_client.positions import PositionBook
from dropcopy_client.sinks import Batch, TransactionalSink, open_sink
from dropcopy_client.sinks.postgres import ER_COLUMNS, SCHEMA_VERSION, PostgresSink
from dropcopy_client.testing import (
    BUY,
    ESH7,
    ESZ6,
    ESZ6_ESH7,
    SELL,
    ZNH7,
    JournalStream,
    ScriptedSession,
    batches,
    demo_script,
)
from tests.sinks.conftest import PgSchema, PgServer
from tests.sinks.pg_writer import stream as crash_stream

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
START = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)
METHODS = ["copy", "executemany"]


def mixed_events() -> list[object]:
    """The demo session (acks, fills, modify, cancel, elimination, spread, bust, mass action) plus a
    correction, a spread fill and its bust, and a MessageError: 28 execution reports, 2 other events."""
    stream = JournalStream(start=START)
    events: list[object] = list(stream.events(demo_script(START)))
    src = ScriptedSession(trade_date="20261201", exec_id_prefix=777)
    order = src.order(ZNH7, account="ACCT3", side=SELL, qty=4, price="110.5")
    spread = src.spread_order(
        ESZ6_ESH7, [(ESZ6, BUY, 1), (ESH7, SELL, 1)], account="ACCT3", qty=1, price="15"
    )
    events += stream.events(
        [order.ack(), order.fill(3), order.correct("110.515625"), *spread.fill(1, "15", ["4500", "4485"])]
    )
    events += stream.events(spread.bust())
    events.append(stream.undecodable())
    return events


def positions_after(events: list[object], *, by_trade_date: bool = True) -> tuple[Any, ...]:
    book = PositionBook(by_trade_date=by_trade_date)
    for event in events:
        book.apply(event)
    return tuple(book.snapshot())


def sink_for(schema: PgSchema, **options: Any) -> PostgresSink:
    return PostgresSink(schema.dsn, schema=schema.name, **options)


def count(schema: PgSchema, table: str = "dropcopy_execution_reports") -> int:
    (row,) = schema.query(f"SELECT count(*) FROM {{s}}.{table}")
    return int(row[0])  # type: ignore[call-overload]


# -- round trip ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_every_event_round_trips_and_the_cursor_is_the_last_id(pg_schema: PgSchema, method: str) -> None:
    events = mixed_events()
    sink = sink_for(pg_schema, method=method)
    try:
        assert isinstance(sink, TransactionalSink)
        assert sink.cursor() is None
        for batch in batches(events, 5):
            sink.write(batch)
        assert sink.cursor() == len(events)
    finally:
        sink.close()

    reports = [e for e in events if isinstance(e, ExecutionReport)]
    others = [e for e in events if not isinstance(e, ExecutionReport)]
    names = [c.name for c in ER_COLUMNS]
    rows = pg_schema.query(
        f"SELECT {', '.join(names)} FROM {{s}}.dropcopy_execution_reports ORDER BY journal_id"
    )
    assert len(rows) == len(reports) == 28
    for event, row in zip(reports, rows, strict=True):
        stored = dict(zip(names, row, strict=True))
        expected = {c.name: c.get(event) for c in ER_COLUMNS}
        expected["order_events"] = event_to_dict(event)["order_events"]  # jsonb comes back as Python data
        stored["inner_message"] = bytes(stored["inner_message"])  # type: ignore[arg-type]
        assert stored == expected, event
    (fill,) = pg_schema.query(
        "SELECT last_px, last_qty, side, trade_date, transact_time, transact_time_ns, event_type, "
        "exec_id, idempotency_key FROM {s}.dropcopy_execution_reports WHERE exec_id = %s",
        reports[1].exec_id,
    )
    first_fill = reports[1]
    assert fill == (
        Decimal("4500.25"),
        4,
        "BUY",
        first_fill.trade_date,
        first_fill.transact_time,
        first_fill.transact_time_ns,
        "Fill",
        first_fill.exec_id,
        "E:" + first_fill.exec_id,
    )

    stored_events = pg_schema.query(
        "SELECT event_type, journal_id, idempotency_key, session, payload, fix_message "
        "FROM {s}.dropcopy_events ORDER BY journal_id"
    )
    assert [r[0] for r in stored_events] == ["OrderMassActionReport", "MessageError"]
    for event, (kind, journal_id, key, session, payload, message) in zip(others, stored_events, strict=True):
        assert (kind, journal_id, key) == (type(event).__name__, event.journal_id, event.idempotency_key)  # type: ignore[attr-defined]
        assert session == "XYZDEFN:84"
        assert payload == json.loads(json.dumps(event_to_dict(event)))
        assert message and bytes(message) in (getattr(event, "inner", b""), getattr(event, "raw", b""))  # type: ignore[arg-type]


def test_positions_are_upserted_by_account_instrument_and_trade_date(pg_schema: PgSchema) -> None:
    events = mixed_events()
    sink = sink_for(pg_schema)
    book = PositionBook(by_trade_date=True)
    try:
        for batch in batches(events, 4):
            touched = {}
            for event in batch.events:
                for p in book.apply(event):
                    touched[(p.account, p.security_id, p.trade_date)] = p
            sink.write(attrs.evolve(batch, positions=tuple(touched.values())))
    finally:
        sink.close()
    rows = pg_schema.query(
        "SELECT account, security_id, trade_date, net_qty, bought_qty, sold_qty, avg_open_px, realized_pnl, "
        "fill_count, busts, corrections, last_fill_time, uncertain FROM {s}.dropcopy_positions "
        "ORDER BY account, security_id"
    )
    expected = [
        (
            p.account,
            p.security_id,
            p.trade_date,
            p.net_qty,
            p.bought_qty,
            p.sold_qty,
            p.avg_open_px,
            p.realized_pnl,
            p.fill_count,
            p.busts,
            p.corrections,
            p.last_fill_time,
            p.uncertain,
        )
        for p in sorted(book.snapshot(), key=lambda p: (p.account, p.security_id))
    ]
    assert rows == expected
    assert ("ACCT3", "204527", dt.date(2026, 12, 1), -3) in [r[:4] for r in rows]
    # a row says which batch wrote it last (its last_id): the correction's (21-24) for ZNH7; the spread
    # summary's bust (27, batch 25-28) reversed both legs, and the leg busts after it (28, 29) change nothing
    last = pg_schema.query(
        "SELECT security_id, journal_id FROM {s}.dropcopy_positions WHERE account = 'ACCT3'"
    )
    assert dict(last) == {"204527": 24, "294973": 28, "294974": 28}  # type: ignore[arg-type]


def test_positions_without_a_trade_date_are_one_row_each(pg_schema: PgSchema) -> None:
    events = mixed_events()
    undated = positions_after(events, by_trade_date=False)
    assert all(p.trade_date is None for p in undated)
    sink = sink_for(pg_schema)
    try:
        first, second = batches(events, 15)
        sink.write(attrs.evolve(first, positions=undated))
        sink.write(attrs.evolve(second, positions=undated))  # the same keys again: updated, not added
    finally:
        sink.close()
    assert count(pg_schema, "dropcopy_positions") == len(undated)
    (row,) = pg_schema.query("SELECT count(DISTINCT journal_id), max(journal_id) FROM {s}.dropcopy_positions")
    assert row == (1, second.last_id)


# -- exactly once ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_the_same_batch_twice_gives_the_rows_once(pg_schema: PgSchema, method: str) -> None:
    events = mixed_events()
    sink = sink_for(pg_schema, method=method)
    try:
        parts = batches(events, 8)
        for batch in parts:
            sink.write(batch)
            sink.write(batch)  # its commit acknowledgement was lost: offered again
        sink.write(parts[0])  # far behind the cursor: nothing, and the cursor stays
        assert sink.cursor() == len(events)
        # a batch that starts below the cursor and ends beyond it (a restart with other batch bounds)
        overlap = Batch(tuple(events[-6:]), first_id=len(events) - 5, last_id=len(events) + 3)
        sink.write(overlap)
        assert sink.cursor() == len(events) + 3
    finally:
        sink.close()
    assert count(pg_schema) == 28 and count(pg_schema, "dropcopy_events") == 2


def test_two_sinks_on_the_same_tables_dedupe_by_key_and_keep_their_own_cursors(pg_schema: PgSchema) -> None:
    events = mixed_events()
    first, second = sink_for(pg_schema, name="group-a"), sink_for(pg_schema, name="group-b")
    try:
        for batch in batches(events, 7):
            first.write(batch)
        # a second drop copy group gets copies of the same messages under its own journal ids
        copies = JournalStream(start=START, first_journal_id=1001, group="backup").events(demo_script(START))
        for batch in batches(copies, 7):
            second.write(batch)
        assert (first.cursor(), second.cursor()) == (len(events), 1000 + len(copies))
    finally:
        first.close()
        second.close()
    assert count(pg_schema) == 28
    (groups,) = pg_schema.query("SELECT array_agg(DISTINCT group_name) FROM {s}.dropcopy_execution_reports")
    assert groups[0] == ["clearing"]  # the first writer's row stays
    cursors = pg_schema.query("SELECT name, last_id FROM {s}.dropcopy_cursors ORDER BY name")
    assert cursors == [("group-a", len(events)), ("group-b", 1000 + len(copies))]


def test_a_sinks_cursor_survives_a_new_connection(pg_schema: PgSchema) -> None:
    events = mixed_events()
    sink = sink_for(pg_schema, name="risk")
    sink.write(batches(events, 10)[0])
    sink.close()
    again = sink_for(pg_schema, name="risk")
    try:
        assert again.cursor() == 10
        assert sink_for(pg_schema, name="other").cursor() is None
    finally:
        again.close()


def test_lost_numbers_are_rows_and_empty_batches_move_the_cursor(pg_schema: PgSchema) -> None:
    sink = sink_for(pg_schema)
    try:
        frame = b"8=FIX.4.2\x019=5\x0135=n\x0110=000\x01"
        gap = UnrecoverableGap("XYZDEFN:84", 3, 9, "older than 48 hours", START, raw=frame, journal_id=1)
        sink.write(Batch((gap, object()), first_id=1, last_id=2))  # not an event: skipped
        assert sink.cursor() == 2
        sink.write(Batch((), first_id=3, last_id=40))  # every event filtered out
        assert sink.cursor() == 40
    finally:
        sink.close()
    assert count(pg_schema) == 0
    ((key, session, payload, fix_message),) = pg_schema.query(
        "SELECT idempotency_key, session, payload, fix_message FROM {s}.dropcopy_events"
    )
    assert (key, session, bytes(fix_message)) == ("J:1", "XYZDEFN:84", frame)  # type: ignore[arg-type]
    assert payload["type"] == "UnrecoverableGap" and (payload["begin"], payload["end"]) == (3, 9)  # type: ignore[index]


def test_an_event_without_a_journal_id_is_refused(pg_schema: PgSchema) -> None:
    (event,) = [e for e in mixed_events() if isinstance(e, ExecutionReport)][:1]
    unjournaled = attrs.evolve(event, delivery=attrs.evolve(event.delivery, journal_id=None))
    sink = sink_for(pg_schema)
    try:
        with pytest.raises(SinkError, match="without a journal id"):
            sink.write(Batch((unjournaled,), first_id=1, last_id=1))
        assert sink.cursor() is None
    finally:
        sink.close()


def test_kill_9_in_the_middle_of_a_batch_then_resume_from_the_cursor(pg_schema: PgSchema) -> None:
    """A real writer process, killed with SIGKILL while its batch transaction is open on the server, three
    times; each restart resumes from cursor(). After every kill, rows and cursor agree (nothing of the killed
    batch is there); at the end every execution report is there exactly once and the positions are the
    book's."""
    total, size = 12_000, 300
    application = "dropcopy_client:crash"
    kills = rolled_back = 0
    for attempt in range(6):  # noqa: B007 - reported in the assertion below
        writer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sinks.pg_writer",
                pg_schema.dsn,
                pg_schema.name,
                str(total),
                str(size),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            written: list[int] = []
            if kills < 3 and _wait_for_open_transaction(pg_schema.server, application, writer, written, 2):
                writer.send_signal(signal.SIGKILL)
                out, _ = writer.communicate(timeout=10)
                kills += 1
                _wait_for_no_backend(pg_schema.server, application)
                (cursor,) = pg_schema.query("SELECT last_id FROM {s}.dropcopy_cursors WHERE name = 'crash'")
                (newest,) = pg_schema.query("SELECT max(journal_id) FROM {s}.dropcopy_execution_reports")
                assert cursor[0] == newest[0], "rows beyond the cursor: the batch was not one transaction"
                assert cursor[0] % size == 0 or cursor[0] == total
                written += [int(line.split()[1]) for line in out.splitlines() if line.startswith("WROTE")]
                # the transaction seen open after the last "WROTE" was rolled back, not half-committed
                rolled_back += cursor[0] == written[-1]
                continue
            out, err = writer.communicate(timeout=60)
            assert writer.returncode == 0, err
            assert out.strip().endswith("DONE")
            break
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait(10)
    assert kills == 3, f"only {kills} kills landed inside a transaction ({attempt + 1} runs)"
    assert rolled_back >= 1, "no kill interrupted a batch: the test did not test the crash it is about"

    events = crash_stream(total)
    reports = [e for e in events if isinstance(e, ExecutionReport)]
    (stats,) = pg_schema.query(
        "SELECT count(*), count(DISTINCT idempotency_key), min(journal_id), max(journal_id) "
        "FROM {s}.dropcopy_execution_reports"
    )
    assert stats == (len(reports), len(reports), 1, total)
    keys = {str(r[0]) for r in pg_schema.query("SELECT idempotency_key FROM {s}.dropcopy_execution_reports")}
    assert keys == {e.idempotency_key for e in reports}
    (cursor,) = pg_schema.query("SELECT last_id FROM {s}.dropcopy_cursors WHERE name = 'crash'")
    assert cursor[0] == total
    stored = pg_schema.query(
        "SELECT account, security_id, trade_date, net_qty, realized_pnl FROM {s}.dropcopy_positions"
    )
    book = positions_after(events)
    assert sorted(stored) == sorted(
        (p.account, p.security_id, p.trade_date, p.net_qty, p.realized_pnl) for p in book
    )


def _wait_for_open_transaction(
    server: PgServer, application: str, writer: subprocess.Popen[str], written: list[int], after_writes: int
) -> bool:
    """True once the writer has committed ``after_writes`` more batches (their last ids go to ``written``)
    and has its next transaction open on the server."""
    assert writer.stdout is not None
    while len(written) < after_writes:
        line = writer.stdout.readline()
        if not line or line.startswith("DONE"):
            return False
        if line.startswith("WROTE"):
            written.append(int(line.split()[1]))
    deadline = time.monotonic() + 30
    with server.connect() as conn:
        while time.monotonic() < deadline and writer.poll() is None:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND xact_start IS NOT NULL AND state <> 'idle'",
                (application,),
            ).fetchone()
            if row and row[0]:
                return True
            time.sleep(0.001)
    return False


def _wait_for_no_backend(server: PgServer, application: str) -> None:
    """The server has noticed the dead client and rolled its transaction back."""
    deadline = time.monotonic() + 30
    with server.connect() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
            ).fetchone()
            if row and row[0] == 0:
                return
            time.sleep(0.02)
    raise AssertionError("the killed writer's backend is still there after 30 s")


# -- schema ----------------------------------------------------------------------------------------------------


def test_schema_creation_is_idempotent_concurrent_and_versioned(pg_schema: PgSchema) -> None:
    errors: list[BaseException] = []
    sinks: list[PostgresSink] = []

    def start() -> None:
        try:
            sinks.append(sink_for(pg_schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for sink in sinks:
        sink.close()
    assert errors == [] and len(sinks) == 4
    versions = pg_schema.query("SELECT table_name, kind, version FROM {s}.dropcopy_schema ORDER BY kind")
    assert versions == [
        ("dropcopy_cursors", "cursors", SCHEMA_VERSION),
        ("dropcopy_events", "events", SCHEMA_VERSION),
        ("dropcopy_execution_reports", "execution_reports", SCHEMA_VERSION),
        ("dropcopy_positions", "positions", SCHEMA_VERSION),
    ]
    sink_for(pg_schema).close()  # and once more, sequentially
    assert len(pg_schema.query("SELECT * FROM {s}.dropcopy_schema")) == 4


def test_custom_table_names_and_open_sink(pg_schema: PgSchema) -> None:
    sink = open_sink(
        pg_schema.dsn,
        name="risk",
        table="fills",
        events_table="other_events",
        positions_table="positions",
        cursor_table="cursors",
        schema=pg_schema.name,
    )
    try:
        assert isinstance(sink, PostgresSink)
        for batch in batches(mixed_events(), 50):
            sink.write(batch)
    finally:
        sink.close()
    assert count(pg_schema, "fills") == 28 and count(pg_schema, "other_events") == 2
    assert pg_schema.query("SELECT name FROM {s}.cursors") == [("risk",)]


def test_default_schema_is_the_search_path(pg_server: PgServer) -> None:
    with pg_server.connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS search_path_test")
    dsn = pg_server.dsn + "?options=-csearch_path%3Dsearch_path_test"
    try:
        sink = PostgresSink(dsn, name="sp")
        sink.write(batches(mixed_events(), 3)[0])
        sink.close()
        with pg_server.connect() as conn:
            row = conn.execute("SELECT count(*) FROM search_path_test.dropcopy_execution_reports").fetchone()
        assert row == (3,)
    finally:
        with pg_server.connect() as conn:
            conn.execute("DROP SCHEMA search_path_test CASCADE")


def test_a_column_a_newer_release_added_is_added_to_an_old_table(pg_schema: PgSchema) -> None:
    sink_for(pg_schema).close()
    pg_schema.run("ALTER TABLE {s}.dropcopy_execution_reports DROP COLUMN memo")
    sink = sink_for(pg_schema)
    try:
        sink.write(batches(mixed_events(), 4)[0])
    finally:
        sink.close()
    assert pg_schema.query("SELECT count(*), count(memo) FROM {s}.dropcopy_execution_reports") == [(4, 0)]


def test_create_false_needs_the_tables(pg_schema: PgSchema) -> None:
    with pytest.raises(SinkError) as info:
        sink_for(pg_schema, create=False)
    message = str(info.value)
    assert (
        f"{pg_schema.name}.dropcopy_execution_reports does not exist" in message and "create=True" in message
    )
    sink_for(pg_schema).close()
    sink = sink_for(pg_schema, create=False)
    sink.write(batches(mixed_events(), 2)[0])
    sink.close()


def test_a_table_that_is_not_ours_or_newer_is_refused(pg_schema: PgSchema) -> None:
    pg_schema.run("CREATE SCHEMA {s}", "CREATE TABLE {s}.fills (id int)")
    with pytest.raises(SinkError, match=r"fills .* exists but was not created by dropcopy_client"):
        sink_for(pg_schema, table="fills")
    sink_for(pg_schema).close()
    pg_schema.run("UPDATE {s}.dropcopy_schema SET version = version + 1 WHERE kind = 'positions'")
    with pytest.raises(SinkError, match="newer than this dropcopy_client knows"):
        sink_for(pg_schema)
    with pytest.raises(SinkError, match="holds positions, not cursors"):
        sink_for(pg_schema, cursor_table="dropcopy_positions", positions_table="p2")
    with pytest.raises(ValueError, match="must differ"):
        sink_for(pg_schema, table="same", events_table="same")


# -- errors ----------------------------------------------------------------------------------------------------


def test_a_wrong_password_names_the_server_but_never_the_password(pg_server: PgServer) -> None:
    password = pg_server.password
    wrong = pg_server.dsn_for("dropcopy", "Wr0ngPassw0rd")
    with pytest.raises(SinkError) as info:
        PostgresSink(wrong)
    message = str(info.value)
    assert "cannot connect to postgresql://dropcopy:***@127.0.0.1:" in message
    assert "password authentication failed" in message and "credentials" in message
    assert "Wr0ngPassw0rd" not in message and password not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_server_that_is_not_there_says_so(pg_server: PgServer) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SinkError) as info:
        PostgresSink(f"postgresql://dropcopy:s3cr3t-pw@127.0.0.1:{port}/postgres", connect_timeout=2)
    assert f"127.0.0.1:{port}" in str(info.value) and "server is up" in str(info.value)
    assert "s3cr3t-pw" not in str(info.value)
    with pytest.raises(SinkError, match="not valid") as info:
        PostgresSink("host=127.0.0.1 password=s3cr3t-pw nonsense")
    assert "s3cr3t-pw" not in str(info.value)


def test_repr_and_logs_never_show_the_password(pg_schema: PgSchema, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="dropcopy_client")
    password = pg_schema.server.password
    sink = sink_for(pg_schema)
    try:
        sink.write(batches(mixed_events(), 3)[0])
        assert password not in repr(sink) and "***" in repr(sink)
    finally:
        sink.close()
    assert "connected to postgresql://dropcopy:***@" in caplog.text
    assert password not in caplog.text


def test_missing_privileges_say_what_to_grant(pg_schema: PgSchema) -> None:
    sink_for(pg_schema).close()
    role = f"reader_{pg_schema.name}"
    pg_schema.run(
        f"CREATE ROLE {role} LOGIN PASSWORD 'rpw-12345'",
        f"GRANT USAGE ON SCHEMA {{s}} TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {{s}} TO {role}",
    )
    try:
        dsn = pg_schema.server.dsn_for(role, "rpw-12345")
        sink = PostgresSink(dsn, schema=pg_schema.name, create=False)
        try:
            with pytest.raises(SinkError) as info:
                sink.write(batches(mixed_events(), 3)[0])
            message = str(info.value)
            assert "InsufficientPrivilege" in message and "grant the sink's user" in message
            assert "offered again" in message and "rpw-12345" not in message
            assert sink.cursor() is None
        finally:
            sink.close()
    finally:
        pg_schema.run(f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_a_broken_connection_fails_the_batch_and_the_next_write_reconnects(pg_schema: PgSchema) -> None:
    events = mixed_events()
    first, second = batches(events, 15)
    sink = sink_for(pg_schema, name="flaky")
    try:
        sink.write(first)
        with pg_schema.server.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                ("dropcopy_client:flaky",),
            )
        with pytest.raises(SinkError, match="offered again"):
            sink.write(second)
        sink.write(second)  # offered again: a new connection
        assert sink.cursor() == second.last_id
    finally:
        sink.close()
    (row,) = pg_schema.query("SELECT count(*), max(journal_id) FROM {s}.dropcopy_execution_reports")
    reports = [e for e in events if isinstance(e, ExecutionReport)]
    assert row == (len(reports), reports[-1].journal_id)


def test_a_closed_sink_refuses_to_write(pg_schema: PgSchema) -> None:
    sink = sink_for(pg_schema)
    sink.close()
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.write(Batch((), first_id=1, last_id=1))


def test_psycopg_is_the_real_thing() -> None:
    assert psycopg.pq.__impl__ in ("binary", "c", "python")


def test_a_dropped_table_is_named_and_comes_back_with_create(pg_schema: PgSchema) -> None:
    events = mixed_events()
    first, second = batches(events, 15)
    sink = sink_for(pg_schema)
    try:
        sink.write(first)
        pg_schema.run("DROP TABLE {s}.dropcopy_execution_reports")
        with pytest.raises(SinkError) as info:
            sink.write(second)
        message = str(info.value)
        assert f"{pg_schema.name}.dropcopy_execution_reports" in message and "create=True" in message
        assert sink.cursor() == first.last_id  # nothing of the failed batch, the cursor included
    finally:
        sink.close()
    again = sink_for(pg_schema)  # creates the table again
    try:
        again.write(second)
    finally:
        again.close()
    assert count(pg_schema) == len([e for e in second.events if isinstance(e, ExecutionReport)])
