"""Sinks: rows per second into PostgreSQL (COPY vs executemany, by batch size) and into JSON Lines files.

``python -m bench.sinks`` (or ``python -m bench --only sinks``) starts a local PostgreSQL server with
``scripts/pg-test-server`` (durable settings: fsync and synchronous_commit on, as in production), or uses
``--dsn``. The events are real decoded fills (``JournalStream``), each batch with the positions its fills
changed, as the delivery layer hands them over; building them is not timed. Every (method, batch size) run
writes the same events into a fresh schema through ``PostgresSink.write``: one transaction per batch with
the cursor, so the figure includes one WAL flush per batch.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pg-test-server"
BATCH_SIZES = (64, 512, 2048)
#: "copy" is what PostgresSink ships (binary COPY); "copy-text" the same through text COPY, for comparison
METHODS = ("copy", "copy-text", "executemany")
SIZES = {"quick": 4_096, "full": 61_440}
REPEATS = {"quick": 1, "full": 3}


def make_events(count: int) -> list[Any]:
    """``count`` fills over 3 instruments and 7 accounts, decoded and journaled as a sink receives them."""
    from dropcopy_client.testing import BUY, ESH7, ESZ6, SELL, ZNH7, JournalStream, ScriptedSession

    src = ScriptedSession(trade_date="20261201")
    stream = JournalStream(start=dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC))
    instruments = (ESZ6, ESH7, ZNH7)
    inners = [
        src.order(
            instruments[i % 3],
            account=f"ACCT{i % 7}",
            side=BUY if i % 2 else SELL,
            qty=1 + i % 5,
            price="4500.25",
        ).fill()
        for i in range(count)
    ]
    return list(stream.events(inners))


def make_batches(events: list[Any], size: int) -> list[Any]:
    """``events`` in batches of ``size``, each with the positions its fills changed."""
    from dropcopy_client.positions import PositionBook
    from dropcopy_client.testing import batches

    book = PositionBook(by_trade_date=True)
    out = []
    for batch in batches(events, size):
        touched = {}
        for event in batch.events:
            for position in book.apply(event):
                touched[(position.account, position.security_id, position.trade_date)] = position
        out.append(attrs.evolve(batch, positions=tuple(touched.values())))
    return out


@contextlib.contextmanager
def server(dsn: str | None) -> Iterator[str]:
    """``dsn``, or a fresh local server (durable settings) stopped afterwards."""
    if dsn:
        yield dsn
        return
    done = subprocess.run(
        [str(SCRIPT), "start", "--owner", str(os.getpid())],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/pg-test-server start failed: {done.stderr.strip()}")
    values = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    try:
        yield values["PGTEST_DSN"]
    finally:
        subprocess.run([str(SCRIPT), "stop", values["PGTEST_DIR"]], timeout=120, check=False)


def _postgres_run(dsn: str, method: str, batches: list[Any], schema: str) -> dict[str, Any]:
    from dropcopy_client.sinks.postgres import PostgresSink

    sink = PostgresSink(
        dsn,
        name=f"bench-{schema}",
        schema=schema,
        method="executemany" if method == "executemany" else "copy",
    )
    if method == "copy-text":  # the shipped statements with binary taken out (benchmark-only surgery)
        from psycopg import sql

        for kind, statement in sink._sql.copy_stage.items():
            text = statement.as_string(None).replace(" (FORMAT BINARY)", "")
            sink._sql.copy_stage[kind] = sql.SQL(text)  # type: ignore[assignment]
    try:
        per_batch = []
        started = time.perf_counter()
        for batch in batches:
            began = time.perf_counter()
            sink.write(batch)
            per_batch.append(time.perf_counter() - began)
        seconds = time.perf_counter() - started
        assert sink.cursor() == batches[-1].last_id
    finally:
        sink.close()
    rows = sum(len(b) for b in batches)
    return {
        "method": method,
        "batch_size": len(batches[0]),
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "batch_ms_median": round(statistics.median(per_batch) * 1000, 2),
        "batch_ms_max": round(max(per_batch) * 1000, 2),
    }


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _best(function: Any, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _cpu_alone(events: list[Any]) -> dict[str, Any]:
    """The Python side alone (best of 3): what every method pays before any I/O."""
    from dropcopy_client._serialize import event_to_dict
    from dropcopy_client.sinks.postgres import report_row

    def json_lines() -> None:
        for event in events:
            json.dumps(event_to_dict(event), separators=(",", ":"))

    rows = _best(lambda: [report_row(e) for e in events])
    lines = _best(json_lines)
    return {
        "rows": len(events),
        "postgres_row_tuples_per_second": round(len(events) / rows),
        "json_lines_per_second": round(len(events) / lines),
    }


def _jsonl_run(batches: list[Any]) -> dict[str, Any]:
    from dropcopy_client.sinks.jsonl import JsonLinesSink

    with tempfile.TemporaryDirectory(prefix="bench-jsonl-") as directory:
        sink = JsonLinesSink(directory)
        started = time.perf_counter()
        for batch in batches:
            sink.write(batch)
        seconds = time.perf_counter() - started
        sink.close()
        size = sum(p.stat().st_size for p in Path(directory).iterdir())
    rows = sum(len(b) for b in batches)
    return {
        "batch_size": len(batches[0]),
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds),
        "bytes_per_row": round(size / rows),
    }


def _server_facts(dsn: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        facts = {}
        for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "shared_buffers"):
            row = conn.execute(f"SHOW {name}").fetchone()
            facts[name] = row[0] if row else None
    return facts


def _best_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(runs, key=lambda r: r["rows_per_second"])
    return {**best, "rows_per_second_all": [r["rows_per_second"] for r in runs]}


def run(quick: bool, dsn: str | None = None) -> dict[str, Any]:
    """Every (method, batch size) into PostgreSQL, then JSON Lines; the result dict for bench/results.

    Each figure is the best of ``REPEATS`` runs (all runs are kept in ``rows_per_second_all``): the machine
    is shared, and the best run is the one least disturbed by other work.
    """
    mode = "quick" if quick else "full"
    count, repeats = SIZES[mode], REPEATS[mode]
    events = make_events(count)
    prepared = {size: make_batches(events, size) for size in BATCH_SIZES}
    result: dict[str, Any] = {"fills": count, "repeats": repeats, "batch_sizes": list(BATCH_SIZES)}
    result["cpu_alone"] = _cpu_alone(events)
    result["postgres"], result["jsonl"] = [], []
    with server(dsn) as url:
        result["server"] = _server_facts(url)
        for method in METHODS:
            for size in BATCH_SIZES:
                runs = []
                for attempt in range(repeats):
                    schema = f"bench_{method.replace('-', '_')}_{size}_{attempt}"
                    _drop_schema(url, schema)
                    try:
                        runs.append(_postgres_run(url, method, prepared[size], schema))
                    finally:
                        _drop_schema(url, schema)
                result["postgres"].append(_best_run(runs))
    for size in BATCH_SIZES:
        result["jsonl"].append(_best_run([_jsonl_run(prepared[size]) for _ in range(repeats)]))
    return result


def table(result: dict[str, Any]) -> list[str]:
    server = result["server"]
    lines = [
        f"sinks: {result['fills']:,} fills, best of {result['repeats']}; PostgreSQL {server.get('server_version')} "
        f"(fsync {server.get('fsync')}, synchronous_commit {server.get('synchronous_commit')})"
    ]
    cpu = result["cpu_alone"]
    lines.append(
        f"  CPU alone: {cpu['postgres_row_tuples_per_second']:,} row tuples/s, "
        f"{cpu['json_lines_per_second']:,} JSON lines/s"
    )
    for row in result["postgres"]:
        lines.append(
            f"  postgres {row['method']:<11} batch {row['batch_size']:>5}: {row['rows_per_second']:>8,} rows/s"
            f"  (batch median {row['batch_ms_median']} ms)"
        )
    for row in result["jsonl"]:
        lines.append(
            f"  jsonl                batch {row['batch_size']:>5}: {row['rows_per_second']:>8,} rows/s"
            f"  ({row['bytes_per_row']} bytes/row)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sinks", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{SIZES['quick']:,} fills instead of {SIZES['full']:,}"
    )
    parser.add_argument("--dsn", help="an existing PostgreSQL server to measure (default: start a local one)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.quick, dsn=args.dsn)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(table(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
