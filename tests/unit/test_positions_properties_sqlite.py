"""The PositionBook property tests again, unchanged, with the fill history in SQLite.

``test_positions_properties`` builds every book through its ``PositionBook`` name; this module points that
name at books on a :class:`SqliteFillHistory` for its own run, twice: once committing every row as it is
recorded (so every lookup goes through SQL), once never flushing (so every lookup goes through the rows kept
since the last flush).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dropcopy_client.positions import PositionBook, SqliteFillHistory
from dropcopy_client.positions._history import Row
from tests.unit import test_positions_properties as props
from tests.unit.test_positions_properties import (
    test_a_busted_spread_nets_to_zero_whatever_the_order_of_its_reports,
    test_a_correction_reprices_without_changing_any_quantity,
    test_a_fill_and_its_bust_leave_the_book_as_if_never_filled,
    test_any_permutation_of_distinct_fills_gives_the_same_net_and_totals,
    test_fills_and_busts_in_any_order_give_the_same_net,
    test_replaying_any_prefix_again_changes_nothing,
)

__all__ = [  # the imported tests run here too (with the fixture below)
    "test_a_busted_spread_nets_to_zero_whatever_the_order_of_its_reports",
    "test_a_correction_reprices_without_changing_any_quantity",
    "test_a_fill_and_its_bust_leave_the_book_as_if_never_filled",
    "test_any_permutation_of_distinct_fills_gives_the_same_net_and_totals",
    "test_fills_and_busts_in_any_order_give_the_same_net",
    "test_replaying_any_prefix_again_changes_nothing",
]

#: histories kept open at a time (each example builds a few books; older ones are closed and deleted)
OPEN = 16


class FlushingHistory(SqliteFillHistory):
    """Commits each row as it is recorded: lookups then find it in SQL, not among the unflushed rows."""

    def record(self, row: Row) -> None:
        super().record(row)
        self.flush(0)


@pytest.fixture(scope="module", params=["flushed", "unflushed"], autouse=True)
def sqlite_books(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    folder = tmp_path_factory.mktemp("books")
    numbers = itertools.count()
    history_class = FlushingHistory if request.param == "flushed" else SqliteFillHistory
    opened: list[tuple[SqliteFillHistory, Path]] = []

    def sqlite_book(*args: Any, **kwargs: Any) -> PositionBook:
        if len(opened) >= OPEN:
            old, path = opened.pop(0)
            old.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        path = folder / f"{next(numbers)}.sqlite"
        history = history_class(path)
        opened.append((history, path))
        return PositionBook(history, *args, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(props, "PositionBook", sqlite_book)
    try:
        yield
    finally:
        patch.undo()
        for history, _ in opened:
            history.close()


def test_the_books_above_are_on_sqlite() -> None:
    assert isinstance(props.book_of([]).history, SqliteFillHistory)
