"""Plain-text tables and event lines for the CLI (no dependency: the output is simple and stable)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import click

from dropcopy_client._serialize import STREAM_KEYS, event_to_dict


def config_option(
    help: str = "The TOML configuration (or set DROPCOPY_CONFIG).",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The ``--config FILE`` option every command that reads a configuration takes (``config_path``)."""
    return click.option(
        "--config",
        "config_path",
        required=True,
        envvar="DROPCOPY_CONFIG",
        type=click.Path(dir_okay=False, path_type=Path),
        help=help,
    )


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


def event_json(event: object) -> str:
    """One JSON line for an event: its type and its (repr-visible) fields, raw tags excluded.

    The serializer is the sinks' (:func:`dropcopy_client._serialize.event_to_dict`); the keys it adds on top
    of an event's own fields (``journal_id``, ``idempotency_key``, ``replayed`` of business events, which
    their ``delivery`` already shows) are left out so ``dropcopy run --json`` prints what it always printed.
    """
    data = event_to_dict(event)
    cls: Any = type(event)
    own = {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()
    for key in STREAM_KEYS:
        if key not in own:
            data.pop(key, None)
    return json.dumps(data, separators=(",", ":"))


def describe(event: object) -> str:
    """One human-readable line per event (business events by sequence number, session events by state)."""
    from dropcopy_client._events import (
        EngineRestarted,
        FrameDropped,
        HandlerFailed,
        JournalFailed,
        KeyExpiryWarning,
        KeyReloadFailed,
        KeyRotated,
        LogonRejected,
        SessionEvent,
    )
    from dropcopy_client._messages import ExecutionReport, MessageError
    from dropcopy_client._recovery import GapDetected, GapFilled, UnrecoverableGap
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
    if isinstance(event, FrameDropped):
        return f"{event.session} dropped bytes QuickFIX cannot parse (expecting #{event.expected_seq}): {event.reason}"
    if isinstance(event, UnrecoverableGap):
        return f"{event.session} #{event.begin}..{event.end} LOST: {event.reason}"
    if isinstance(event, GapDetected):
        return f"{event.session} gap #{event.begin}..{event.end}: asking CME again"
    if isinstance(event, GapFilled):
        return f"{event.session} gap #{event.begin}..{event.end} filled"
    if isinstance(event, JournalFailed):
        if event.recovered:
            return f"journal {event.path} writable again: sessions resume"
        return f"journal {event.path} cannot be written ({event.error}): sessions held"
    if isinstance(event, EngineRestarted):
        return f"engine process ended (exit code {event.exit_code}); restarted ({event.restarts})"
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


@contextlib.contextmanager
def progress_bar(label: str, threshold: int) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback that opens a ``click.progressbar`` on stderr on its first call
    when ``total`` exceeds ``threshold`` (small inputs finish before a bar would be worth drawing)."""
    state: dict[str, Any] = {"bar": None, "done": 0}
    stack = contextlib.ExitStack()

    def progress(done: int, total: int) -> None:
        if state["bar"] is None:
            if total <= threshold:
                return
            state["bar"] = stack.enter_context(click.progressbar(length=total, label=label, file=sys.stderr))
        state["bar"].update(done - state["done"])
        state["done"] = done

    with stack:
        yield progress
