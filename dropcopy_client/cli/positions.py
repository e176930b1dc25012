"""``dropcopy positions``, ``dropcopy eod`` and ``dropcopy replay``: the position book, rebuilt offline.

All three rebuild a fresh book (never touching a running client): ``positions`` and ``eod`` read
``<data_dir>/journal.sqlite`` through a read-only connection, which SQLite's WAL lets run beside a client that
keeps writing; ``replay`` reads any journal or message log. A journal that holds the book's own tables is
rebuilt from them, decoding only the messages after them (``replay_journal``); others are decoded message by
message.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import click

from dropcopy_client._journal import JournalError
from dropcopy_client.cli._exit import EXIT_CONFIG, EXIT_FAILED
from dropcopy_client.cli._format import config_option, format_table, position_table, progress_bar
from dropcopy_client.config import ClientConfig, PositionsConfig, load_config, parse_multiplier
from dropcopy_client.errors import ConfigError
from dropcopy_client.positions import (
    EodReport,
    FillHistoryError,
    PositionBook,
    PositionException,
    ProgressCallback,
    eod_report,
    is_journal,
    replay_journal,
    replay_log,
)
from dropcopy_client.positions._book import POSITION_COLUMNS

JOURNAL_FILE: Final = "journal.sqlite"
#: inputs longer than this get a progress bar on stderr
PROGRESS_THRESHOLD: Final = 10_000
#: decimal places shown for prices in text output (JSON and CSV carry the exact value)
TEXT_PLACES: Final = 8

_config_option = config_option()
_date_type = click.DateTime(formats=["%Y-%m-%d"])


def _parse_multiplier(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, Decimal]:
    multipliers: dict[str, Decimal] = {}
    for text in values:
        symbol, sep, number = text.partition("=")
        if not sep or not symbol.strip():
            raise click.BadParameter(f"{text!r}: expected SYMBOL=N, e.g. ES=50", ctx, param)
        try:
            multipliers[symbol.strip()] = parse_multiplier(number.strip(), f"--multiplier {symbol.strip()}")
        except ConfigError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return multipliers


def _book_options(fn: Any) -> Any:
    """--account and --multiplier: the command line's [positions] table (they override the configuration)."""
    fn = click.option(
        "--multiplier",
        "multipliers",
        multiple=True,
        metavar="SYMBOL=N",
        callback=_parse_multiplier,
        help="Contract multiplier of a product (55 Symbol), e.g. ES=50: realized P&L in money too. Repeatable; "
        "adds to [positions] multipliers.",
    )(fn)
    return click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="ACCOUNT",
        help="Only this account (1). Repeatable; replaces [positions] accounts.",
    )(fn)


def _format_options(fn: Any) -> Any:
    fn = click.option("--csv", "fmt", flag_value="csv", help="CSV with a header row.")(fn)
    fn = click.option(
        "--json", "fmt", flag_value="json", help="A JSON list of objects (Decimals as strings)."
    )(fn)
    return click.option("--table", "fmt", flag_value="table", default=True, hidden=True)(fn)


# ---------------------------------------------------------------------------------------------- positions


@click.command()
@_config_option
@_format_options
@click.option(
    "--date",
    "trade_date",
    type=_date_type,
    metavar="YYYY-MM-DD",
    help="Only this trade date (75), YYYY-MM-DD.",
)
@_book_options
def positions(
    config_path: Path,
    fmt: str,
    trade_date: dt.datetime | None,
    accounts: tuple[str, ...],
    multipliers: dict[str, Decimal],
) -> None:
    """Print the position book rebuilt from the journal in the configuration's data directory.

    Reads <data_dir>/journal.sqlite read-only, so it works while `dropcopy run` (or your own client) is
    running. The table ends with the exception list: busts and corrections of fills never seen, and anything
    else the book could not apply. The configuration's [positions] table gives multipliers and the accounts
    shown; --multiplier and --account override it.
    """
    journal, settings = _journal_and_settings(config_path, accounts, multipliers)
    book = _run_replay(
        lambda progress: replay_journal(
            journal, trade_date=_date(trade_date), multipliers=settings.multipliers, progress=progress
        )
    )
    click.echo(render_book(book, fmt, accounts=settings.accounts), nl=False)


# ---------------------------------------------------------------------------------------------- eod


@click.command()
@_config_option
@click.option(
    "--date",
    "trade_date",
    type=_date_type,
    metavar="YYYY-MM-DD",
    required=True,
    help="The trade date (75), YYYY-MM-DD.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write here instead of stdout; *.csv gives CSV, *.json JSON, anything else text.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON, whatever --out is called.")
@_book_options
def eod(
    config_path: Path,
    trade_date: dt.datetime,
    out: Path | None,
    as_json: bool,
    accounts: tuple[str, ...],
    multipliers: dict[str, Decimal],
) -> None:
    """Write the end-of-day report of one trade date, per account and instrument.

    Buys, sells, busts, corrections, net, buy and sell VWAP, then the exception list. Fills of other trade
    dates are left out; their busts and corrections are not this date's exceptions. Multipliers and accounts
    as for `dropcopy positions`.
    """
    journal, settings = _journal_and_settings(config_path, accounts, multipliers)
    day = trade_date.date()
    book = _run_replay(
        lambda progress: replay_journal(
            journal, trade_date=day, multipliers=settings.multipliers, progress=progress
        )
    )
    report = eod_report(book, day, accounts=settings.accounts)
    suffix = out.suffix.lower() if out is not None else ""
    if as_json or suffix == ".json":
        text = report.to_json()
    elif suffix == ".csv":
        text = report.to_csv()
    else:
        text = eod_text(report)
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"end-of-day report for {day.isoformat()} written to {out}", err=True)


# ---------------------------------------------------------------------------------------------- replay


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_format_options
@click.option("--by-date", is_flag=True, help="Split every position by trade date (75).")
def replay(file: Path, fmt: str, by_date: bool) -> None:
    """Rebuild the position book from FILE and print it.

    FILE is a journal (journal.sqlite) or a message log: a QuickFIX FileLog, or any text file with one raw FIX
    message per line (SOH or | delimited). Only business messages we received count; admin messages and
    messages we sent are skipped. The same FILE always gives the same output.
    """
    try:
        journal = is_journal(file)
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None
    replayer = replay_journal if journal else replay_log
    book = _run_replay(lambda progress: replayer(file, by_trade_date=by_date, progress=progress))
    click.echo(render_book(book, fmt), nl=False)


# ---------------------------------------------------------------------------------------------- shared


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


def _journal_and_settings(
    config_path: Path, accounts: tuple[str, ...], multipliers: dict[str, Decimal]
) -> tuple[Path, PositionsConfig]:
    """The journal and the [positions] settings, with the command line's --account and --multiplier."""
    path, config = _journal_path(config_path)
    settings = config.positions
    return path, PositionsConfig(
        multipliers={**settings.multipliers, **multipliers}, accounts=accounts or settings.accounts
    )


def _journal_path(config_path: Path) -> tuple[Path, ClientConfig]:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        click.get_current_context().exit(EXIT_CONFIG)
    path = Path(config.data_dir) / JOURNAL_FILE
    if not path.exists():
        click.echo(f"dropcopy: no journal at {path} (has a client run with this configuration?)", err=True)
        click.get_current_context().exit(EXIT_FAILED)
    return path, config


def _run_replay(replayer: Callable[[ProgressCallback], PositionBook]) -> PositionBook:
    """Run ``replayer(progress)``; a progress bar on stderr once the input turns out to be large."""
    try:
        with progress_bar("replaying", PROGRESS_THRESHOLD) as progress:
            book = replayer(progress)
    except (JournalError, FillHistoryError, OSError) as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        click.get_current_context().exit(EXIT_FAILED)
    return book


def render_book(book: PositionBook, fmt: str, *, accounts: Collection[str] = ()) -> str:
    """The book as a table with its exception list (``table``), a JSON list or CSV; ends with a newline.

    ``accounts`` (not empty) shows only those accounts' positions and exceptions (and exceptions that name no
    account, which may be anyone's)."""
    wanted = set(accounts)
    snapshot = [p for p in book.snapshot() if not wanted or p.account in wanted]
    exceptions = [e for e in book.exceptions if not wanted or e.account is None or e.account in wanted]
    rows = [p.to_dict() for p in snapshot]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "csv":
        return _csv(rows, POSITION_COLUMNS)
    return position_table(snapshot) + "\n\n" + exception_text(exceptions) + "\n"


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def eod_text(report: EodReport) -> str:
    """The end-of-day report for people."""
    headers = (
        "Account",
        "Instrument",
        "SecurityID",
        "Buys",
        "Sells",
        "Net",
        "Buy VWAP",
        "Sell VWAP",
        "Fills",
        "Busts",
        "Corrections",
        "Realized",
    )
    rows = [
        (
            line.account,
            line.instrument,
            line.security_id,
            str(line.bought_qty),
            str(line.sold_qty),
            f"{line.net_qty:+d}",
            shown(line.buy_vwap),
            shown(line.sell_vwap),
            str(line.fill_count),
            str(line.busts),
            str(line.corrections),
            shown(line.realized_pnl),
        )
        for line in report.lines
    ]
    parts = [
        f"End-of-day report, trade date {report.trade_date.isoformat()}",
        "",
        format_table(headers, rows, right=range(3, 12)) if rows else "(no positions)",
        "",
        f"{len(report.lines)} positions, {report.busts} busts, {report.corrections} corrections, "
        f"{report.spread_summaries} spread summaries (not in positions)",
        "",
        exception_text(report.exceptions),
    ]
    return "\n".join(parts) + "\n"


def shown(value: Decimal | None) -> str:
    """A price for people: at most TEXT_PLACES decimals, no trailing zeros, never exponent notation."""
    if value is None:
        return "-"
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -TEXT_PLACES:
        value = value.quantize(Decimal(1).scaleb(-TEXT_PLACES))
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def exception_text(exceptions: Sequence[PositionException]) -> str:
    """The exception list: a title line, then one line per exception with the identifiers it names."""
    if not exceptions:
        return "Exceptions: none"
    lines = [f"Exceptions ({len(exceptions)}):"]
    for e in exceptions:
        ids = " ".join(
            f"{name}={value}"
            for name, value in (
                ("account", e.account),
                ("security_id", e.security_id),
                ("exec_id", e.exec_id),
                ("ref", e.exec_ref_id),
            )
            if value
        )
        lines.append(f"  {e.kind}: {e.reason}" + (f" [{ids}]" if ids else ""))
    return "\n".join(lines)
