"""Position keeping from drop copy fills: the PositionBook, its fill history, offline replay and the EOD report.

See docs/guides/positions.md for the conventions and CME's bust, correction and spread rules.
"""

from dropcopy_client.positions._book import Position, PositionBook, PositionException, WorkingOrder
from dropcopy_client.positions._eod import EodLine, EodReport, eod_report
from dropcopy_client.positions._history import (
    FillHistory,
    FillHistoryError,
    MemoryFillHistory,
    SqliteFillHistory,
)
from dropcopy_client.positions._replay import (
    ProgressCallback,
    is_journal,
    iter_log_messages,
    replay_journal,
    replay_log,
)

__all__ = [
    "EodLine",
    "EodReport",
    "FillHistory",
    "FillHistoryError",
    "MemoryFillHistory",
    "Position",
    "PositionBook",
    "PositionException",
    "ProgressCallback",
    "SqliteFillHistory",
    "WorkingOrder",
    "eod_report",
    "is_journal",
    "iter_log_messages",
    "replay_journal",
    "replay_log",
]
