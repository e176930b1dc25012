"""Position keeping from drop copy fills: the PositionBook, offline replay and the end-of-day report.

See docs/guides/positions.md for the conventions and CME's bust, correction and spread rules.
"""

from dropcopy_client.positions._book import Position, PositionBook, PositionException, WorkingOrder
from dropcopy_client.positions._eod import EodLine, EodReport, eod_report
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
    "Position",
    "PositionBook",
    "PositionException",
    "ProgressCallback",
    "WorkingOrder",
    "eod_report",
    "is_journal",
    "iter_log_messages",
    "replay_journal",
    "replay_log",
]
