"""PostgresSink's fast row builder gives exactly what the columns' own getters give (no server needed)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from dropcopy_client import ExecutionReport, decode
from dropcopy_client.sinks.postgres import ER_COLUMNS, _rows, report_row
from dropcopy_client.testing import JournalStream, demo_script
from tests.unit._message_fixtures import all_fixtures


def plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(value.obj if isinstance(value, Jsonb) else value for value in row)


def test_the_fast_row_is_the_reference_row_for_every_kind_of_report() -> None:
    reports = [e for e in JournalStream().events(demo_script()) if isinstance(e, ExecutionReport)]
    for fixture in all_fixtures():
        reports += [e for e in decode(fixture.outer, journal_id=1) if isinstance(e, ExecutionReport)]
    assert any(r.order_events for r in reports)  # a BrokerTec fill with its group is among them
    assert [plain(report_row(r)) for r in reports] == [plain(row) for row in _rows(ER_COLUMNS, reports)]
    assert all(len(report_row(r)) == len(ER_COLUMNS) for r in reports)
