"""``dropcopy audit``: prove from the journal that every inbound sequence number of the week is accounted for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dropcopy_client._audit import STATES, SessionAudit, audit_journal
from dropcopy_client._journal import JournalError
from dropcopy_client._week import WeeklySchedule
from dropcopy_client.cli._exit import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from dropcopy_client.cli._format import config_option, format_table
from dropcopy_client.config import load_config
from dropcopy_client.errors import ConfigError


@click.command()
@config_option()
@click.option(
    "--session", "sessions", multiple=True, help="Only this session (SENDERCOMP:segment); repeatable."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
def audit(config_path: Path, sessions: tuple[str, ...], as_json: bool) -> None:
    """Account for every inbound sequence number of the current trading week, from the journal alone.

    Each number from 1 to the highest received is journaled, a duplicate, an admin message, gap-filled by CME,
    or declared lost (with its cause and time). Exits 0 only when nothing is unaccounted for; 1 names the holes.
    Safe while `dropcopy run` is running.
    """
    ctx = click.get_current_context()
    try:
        config = load_config(config_path)
        schedule = WeeklySchedule.parse(config.weekly_reset)
    except ConfigError as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    path = Path(config.data_dir) / "journal.sqlite"
    configured = [f"{t.sender_comp_id}:{seg}" for g in config.groups for t in g.targets for seg in t.segments]
    unknown = [s for s in sessions if s not in configured]
    if unknown:
        click.echo(
            f"dropcopy: unknown session(s) {', '.join(unknown)}; configured: {', '.join(configured)}",
            err=True,
        )
        ctx.exit(EXIT_CONFIG)
    if not path.exists():
        click.echo(
            f"dropcopy: no journal at {path}: run `dropcopy run --config {config_path}` first", err=True
        )
        ctx.exit(EXIT_FAILED)
    try:
        audits = audit_journal(path, schedule=schedule, sessions=list(sessions) or configured)
    except JournalError as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_FAILED)
    ok = all(a.ok for a in audits)
    if as_json:
        click.echo(
            json.dumps({"ok": ok, "week": schedule.week_id(_now()), "sessions": [_json(a) for a in audits]})
        )
    else:
        _show(audits, schedule)
    ctx.exit(EXIT_OK if ok else EXIT_FAILED)


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def _json(a: SessionAudit) -> dict[str, Any]:
    return {
        "session": a.session,
        "epoch": a.epoch,
        "highest": a.highest,
        "ok": a.ok,
        "counts": a.counts,
        "exceptions": [
            {
                "begin": r.begin,
                "end": r.end,
                "state": r.state,
                "cause": r.cause,
                "at": None if r.at_ns is None else _iso(r.at_ns),
            }
            for r in a.exceptions
        ],
    }


def _iso(ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


def _show(audits: list[SessionAudit], schedule: WeeklySchedule) -> None:
    click.echo(f"trading week {schedule.week_id(_now())} ({schedule})")
    if not audits:
        click.echo("no session has traffic in this trading week yet")
        return
    headers = ["SESSION", "EPOCH", "HIGHEST", *[s.upper() for s in STATES], "OK"]
    rows = [
        [
            a.session,
            str(a.epoch),
            str(a.highest),
            *[str(a.counts.get(s, 0)) for s in STATES],
            "yes" if a.ok else "NO",
        ]
        for a in audits
    ]
    click.echo(format_table(headers, rows, right=tuple(range(1, 3 + len(STATES)))))
    for a in audits:
        for r in a.exceptions:
            what = "UNACCOUNTED" if r.state == "unaccounted" else "lost"
            span = f"{r.begin}" if r.begin == r.end else f"{r.begin}-{r.end}"
            when = f" at {_iso(r.at_ns)}" if r.at_ns is not None else ""
            cause = f": {r.cause}" if r.cause else ""
            click.echo(f"{a.session} epoch {a.epoch}: {span} {what}{when}{cause}")
