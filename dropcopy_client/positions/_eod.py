"""The end-of-day report data: per account and instrument for one trade date, plus the exception list.

What a risk or operations desk reconciles against the clearing firm's statement (what-users-expect.md,
convention 8): bought and sold quantities, busts, corrections, net, buy and sell VWAP, and every event the
book could not apply. Field names are :class:`~dropcopy_client.positions.Position`'s (``bought_qty``,
``net_qty``, ``fill_count``, ...). :class:`EodReport` renders as CSV and JSON for machines (``dropcopy eod`` adds the
text for people). CSV has one header; a ``record`` column says whether a row is a ``position`` or an
``exception``, so ``csv.DictReader`` and pandas read the whole file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Collection
from decimal import Decimal
from typing import Any

import attrs

from dropcopy_client.positions._book import Position, PositionBook, PositionException

__all__ = ["EodLine", "EodReport", "eod_report"]


@attrs.frozen
class EodLine:
    """One account and instrument on one trade date.

    Fields are named as on :class:`~dropcopy_client.positions.Position` wherever they mean the same thing
    (``bought_qty``, ``net_qty``, ``fill_count``, ``realized_pnl``, ...), so one loop reads either.
    """

    trade_date: dt.date
    account: str
    security_id: str
    instrument: str
    symbol: str | None
    security_desc: str | None
    bought_qty: int
    sold_qty: int
    net_qty: int
    buy_vwap: Decimal | None
    sell_vwap: Decimal | None
    fill_count: int
    busts: int
    corrections: int
    realized_pnl: Decimal
    #: the product's contract multiplier, when one is configured (``[positions] multipliers``)
    multiplier: Decimal | None = None
    #: ``realized_pnl`` in money (times the multiplier), when one is configured
    realized_value: Decimal | None = None

    @classmethod
    def of(cls, position: Position, trade_date: dt.date) -> EodLine:
        return cls(
            trade_date=trade_date,
            account=position.account,
            security_id=position.security_id,
            instrument=position.instrument,
            symbol=position.symbol,
            security_desc=position.security_desc,
            bought_qty=position.bought_qty,
            sold_qty=position.sold_qty,
            net_qty=position.net_qty,
            buy_vwap=position.buy_vwap,
            sell_vwap=position.sell_vwap,
            fill_count=position.fill_count,
            busts=position.busts,
            corrections=position.corrections,
            realized_pnl=position.realized_pnl,
            multiplier=position.multiplier,
            realized_value=position.realized_value,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (Decimals as exact strings), with ``Position.to_dict``'s names."""
        return {
            "trade_date": self.trade_date.isoformat(),
            "account": self.account,
            "security_id": self.security_id,
            "instrument": self.instrument,
            "symbol": self.symbol,
            "security_desc": self.security_desc,
            "bought_qty": self.bought_qty,
            "sold_qty": self.sold_qty,
            "net_qty": self.net_qty,
            "buy_vwap": _exact(self.buy_vwap),
            "sell_vwap": _exact(self.sell_vwap),
            "fill_count": self.fill_count,
            "busts": self.busts,
            "corrections": self.corrections,
            "realized_pnl": _exact(self.realized_pnl),
            "multiplier": _exact(self.multiplier),
            "realized_value": _exact(self.realized_value),
        }


_CSV_COLUMNS = (
    "record",
    "trade_date",
    "account",
    "security_id",
    "instrument",
    "symbol",
    "security_desc",
    "bought_qty",
    "sold_qty",
    "net_qty",
    "buy_vwap",
    "sell_vwap",
    "fill_count",
    "busts",
    "corrections",
    "realized_pnl",
    "multiplier",
    "realized_value",
    "kind",
    "reason",
    "exec_id",
    "exec_ref_id",
)


@attrs.frozen
class EodReport:
    """The end-of-day report of one trade date."""

    trade_date: dt.date
    lines: tuple[EodLine, ...]
    exceptions: tuple[PositionException, ...]
    spread_summaries: int = 0

    @property
    def busts(self) -> int:
        return sum(line.busts for line in self.lines)

    @property
    def corrections(self) -> int:
        return sum(line.corrections for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trade_date": self.trade_date.isoformat(),
            "positions": [line.to_dict() for line in self.lines],
            "busts": self.busts,
            "corrections": self.corrections,
            "spread_summaries": self.spread_summaries,
            "exceptions": [e.to_dict() for e in self.exceptions],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for line in self.lines:
            writer.writerow({"record": "position", **_blank(line.to_dict())})
        for exc in self.exceptions:
            writer.writerow({"record": "exception", **_blank(exc.to_dict())})
        return out.getvalue()


def eod_report(
    book: PositionBook, trade_date: dt.date, *, accounts: Collection[str] | None = None
) -> EodReport:
    """The report of ``trade_date`` from a book split by trade date (``replay_journal(..., trade_date=)``
    gives the right one: busts and corrections of other dates' fills are not this date's exceptions).

    ``accounts`` (when given and not empty) keeps only those accounts' lines and exceptions; an exception
    that names no account (an undecodable message) is kept, since it may be anyone's.
    """
    if not book.by_trade_date:
        raise ValueError("an end-of-day report needs a book split by trade date (by_trade_date=True)")
    if book.trade_date is not None and book.trade_date != trade_date:
        raise ValueError(f"this book holds trade date {book.trade_date}, not {trade_date}")
    wanted = set(accounts) if accounts else None
    lines = tuple(
        EodLine.of(p, trade_date)
        for p in book.snapshot()
        if p.trade_date == trade_date and (wanted is None or p.account in wanted)
    )
    exceptions = tuple(
        e
        for e in book.exceptions
        if e.trade_date in (None, trade_date) and (wanted is None or e.account is None or e.account in wanted)
    )
    return EodReport(trade_date, lines, exceptions, book.spread_summaries_on(trade_date))


def _exact(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _blank(row: dict[str, Any]) -> dict[str, Any]:
    return {k: "" if v is None else v for k, v in row.items()}
