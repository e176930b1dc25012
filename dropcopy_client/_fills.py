"""The fills a client has journaled, read back from the journal: ``client.fills()`` and ``fills_dataframe()``.

Read through a read-only connection (SQLite WAL), so it works while the client runs, after it stopped and after
a restart: the journal, not memory, is the record. The journal's ``account`` and ``trade_date`` columns select
rows before anything is decoded; only 35=8 rows are decoded, and only those that decode to a :class:`Fill` are
returned (busts and corrections are separate events: see the position book for their effect).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dropcopy_client._decode import decode
from dropcopy_client._journal import Journal
from dropcopy_client._messages import Fill, utc_from_ns

__all__ = ["FILL_COLUMNS", "fills_dataframe", "read_fills"]

#: the columns of ``fills_dataframe()``, in order
FILL_COLUMNS = (
    "journal_id",
    "transact_time",
    "trade_date",
    "account",
    "side",
    "last_qty",
    "last_px",
    "instrument",
    "security_id",
    "symbol",
    "security_desc",
    "exec_id",
    "order_id",
    "cl_ord_id",
    "multi_leg_reporting_type",
    "aggressor",
    "session",
    "group",
)


def read_fills(
    path: Path,
    groups: dict[str, str],
    *,
    account: str | Iterable[str] | None = None,
    trade_date: dt.date | None = None,
) -> list[Fill]:
    """Every journaled fill in ``path`` (arrival order), of ``account`` (one or several) and ``trade_date``."""
    if not path.exists():
        return []
    accounts = None if account is None else {account} if isinstance(account, str) else set(account)
    day = None if trade_date is None else trade_date.strftime("%Y%m%d")
    out: list[Fill] = []
    journal = Journal.open_readonly(path)
    try:
        for row in journal.iter_messages(trade_date=day):
            if row.msg_type != "8" or (accounts is not None and row.account not in accounts):
                continue
            for event in decode(
                row.raw,
                group=groups.get(row.session, ""),
                session=row.session,
                received_at=utc_from_ns(row.received_ns),
                journal_id=row.row_id,
            ):
                if isinstance(event, Fill):
                    out.append(event)
    finally:
        journal.close()
    return out


def fills_dataframe(fills: Iterable[Fill], *, as_float: bool = False) -> Any:
    """Fills as a pandas DataFrame, one row each, columns :data:`FILL_COLUMNS` (even when there is none).

    Prices stay exact ``Decimal`` unless ``as_float``; enums are their names (``"BUY"``). Needs the pandas
    extra: ``pip install 'dropcopy-client[pandas]'``.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("fills_dataframe() needs pandas: pip install 'dropcopy-client[pandas]'") from exc
    rows = []
    for fill in fills:
        row: dict[str, Any] = {
            "journal_id": fill.journal_id,
            "transact_time": fill.transact_time,
            "trade_date": fill.trade_date,
            "account": fill.account,
            "side": fill.side.name,
            "last_qty": fill.last_qty,
            "last_px": float(fill.last_px) if as_float else fill.last_px,
            "instrument": fill.instrument,
            "security_id": fill.security_id,
            "symbol": fill.symbol,
            "security_desc": fill.security_desc,
            "exec_id": fill.exec_id,
            "order_id": fill.order_id,
            "cl_ord_id": fill.cl_ord_id,
            "multi_leg_reporting_type": (
                fill.multi_leg_reporting_type.name if fill.multi_leg_reporting_type is not None else None
            ),
            "aggressor": fill.aggressor,
            "session": fill.delivery.session,
            "group": fill.delivery.group,
        }
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(FILL_COLUMNS))
    if not as_float:
        frame["last_px"] = frame["last_px"].astype(object)
    return frame
