"""Plain-text tables and event lines for the CLI (no dependency: the output is simple and stable)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> str:
    """Columns separated by two spaces, no trailing spaces; columns listed in ``right`` are right-aligned."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    aligned = set(right)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in aligned else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join(line(cells) for cells in (headers, *rows))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return value.name
    if isinstance(value, bytes):
        return value.decode("ascii", "backslashreplace")
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if attrs.has(type(value)):
        return {
            f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value)) if f.repr is not False
        }
    return value


def event_json(event: object) -> str:
    """One JSON line for an event: its type and its (repr-visible) fields, raw tags excluded."""
    data = _plain(event) if attrs.has(type(event)) else {"value": repr(event)}
    if isinstance(data, dict):
        data.pop("raw", None)
        data.pop("inner", None)
    return json.dumps({"type": type(event).__name__, **data}, separators=(",", ":"))


def describe(event: object) -> str:
    """One human-readable line per event (business events by sequence number, session events by state)."""
    from dropcopy_client._events import (
        HandlerFailed,
        KeyExpiryWarning,
        KeyReloadFailed,
        KeyRotated,
        LogonRejected,
        SessionEvent,
    )
    from dropcopy_client._messages import ExecutionReport, MessageError
    from dropcopy_client.positions import Position

    if isinstance(event, ExecutionReport):
        d = event.delivery
        qty = event.last_qty if event.last_qty is not None else event.order_qty
        px = event.last_px if event.last_px is not None else event.price
        side = event.side.name if event.side is not None else "-"
        ref = f" ref={event.exec_ref_id}" if event.exec_ref_id else ""
        instrument = event.security_desc or event.symbol or event.security_id or "-"
        return (
            f"{d.session} #{d.seq_num:<5} {type(event).__name__:<17} {event.account or '-':<6} {side:<4} "
            f"{qty if qty is not None else '':>4} {instrument:<10} "
            f"@ {px if px is not None else '-'}  exec={event.exec_id}{ref}"
        )
    if isinstance(event, MessageError):
        seq = event.delivery.seq_num if event.delivery is not None else "?"
        return f"message #{seq} could not be decoded: {event.reason}"
    if isinstance(event, SessionEvent):
        where = f" via {event.endpoint}" if event.endpoint else ""
        text = f" ({event.text})" if event.text else ""
        return f"{event.session} {event.previous.value} -> {event.state.value}{where}{text}"
    if isinstance(event, LogonRejected):
        return f"{event.session} logon rejected: {event.text}"
    if isinstance(event, KeyExpiryWarning):
        return (
            f"{event.session} key {event.access_key_id} expires {event.expires} ({event.days_left} days left)"
        )
    if isinstance(event, KeyRotated):
        return f"{event.session} next logon signs with key {event.new_key_id} (was {event.old_key_id})"
    if isinstance(event, KeyReloadFailed):
        return f"keys not reloaded, previous keys still in use: {event.reason}"
    if isinstance(event, HandlerFailed):
        return f"handler {event.handler} failed on {event.event_type}: {event.error}"
    if isinstance(event, Position):
        return ""
    delivery = getattr(event, "delivery", None)
    if delivery is not None:
        return f"{delivery.session} #{delivery.seq_num:<5} {type(event).__name__}"
    return type(event).__name__


def position_table(positions: Sequence[Any]) -> str:
    """The position book as a table people can scan: a Trade date column when the book is split by date,
    prices rounded to 8 decimals without trailing zeros (JSON and CSV output carry the exact values)."""

    def price(value: Decimal | None) -> str:
        if value is None:
            return "-"
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -8:
            value = value.quantize(Decimal("1E-8"))
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text

    if not positions:
        return "(no positions)"
    dated = any(p.trade_date is not None for p in positions)
    headers = [
        "Account",
        "Instrument",
        "SecurityID",
        *(["Trade date"] if dated else []),
        "Bought",
        "Sold",
        "Net",
        "Avg open",
        "Realized",
        "Fills",
        "Busts",
        "Corr",
    ]
    rows = [
        [
            p.account,
            p.instrument,
            p.security_id,
            *([p.trade_date.isoformat() if p.trade_date else "-"] if dated else []),
            str(p.bought_qty),
            str(p.sold_qty),
            f"{p.net_qty:+d}",
            price(p.avg_open_px),
            price(p.realized_pnl),
            str(p.fill_count),
            str(p.busts),
            str(p.corrections),
        ]
        for p in positions
    ]
    first_number = 4 if dated else 3
    return format_table(headers, rows, right=range(first_number, len(headers)))
