"""``dropcopy keys``: inspect CME key files before a session needs them.

``dropcopy keys check FILE`` lists every key (never a secret), marks the one each session would sign its
Logon with, and exits 0 when every session has a usable key, 1 when one has only expired keys or none,
2 when the file is malformed.
"""

from __future__ import annotations

import datetime
import json
import os
import stat
from typing import Any, Final

import click

from dropcopy_client.auth._keyfile import (
    EXPIRY_WARNING_DAYS,
    ApiKey,
    KeyFile,
    _choose,
    load_key_file,
)
from dropcopy_client.cli._format import format_table
from dropcopy_client.errors import ConfigError, KeyExpiredError, KeyFileError

EXIT_OK: Final = 0
EXIT_UNUSABLE: Final = 1
EXIT_MALFORMED: Final = 2

_HEADERS: Final = (
    "SESSION",
    "ACCESS KEY ID",
    "CREATED",
    "EXPIRES",
    "ENVIRONMENT",
    "DAYS LEFT",
    "STATUS",
    "USE",
)


def _status(key: ApiKey, today: datetime.date) -> str:
    days_left = key.days_left(today)
    if key.is_expired(today):
        return "expired"
    if days_left is not None and days_left <= EXPIRY_WARNING_DAYS:
        return "expires soon"
    return "ok"


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _sessions(key_file: KeyFile, session: str | None) -> list[str]:
    if session is not None:
        return [session]
    seen: dict[str, None] = {}
    for key in key_file.keys:
        seen.setdefault(key.session_id, None)
    return list(seen)


def _loose_permissions(path: str) -> bool:
    if os.name != "posix":
        return False
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


@click.group("keys")
def keys() -> None:
    """CME secure-logon key files."""


@keys.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--session",
    metavar="ID",
    help="Check only this session: a SenderCompID (e.g. X12004N) or its 3-character session id.",
)
@click.option("--environment", metavar="ENV", help="Match keys of this Environment (e.g. CERT, NEWRELEASE).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of keys instead of a table.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Pretend today is this date (tests, rehearsals). Default: today in UTC.",
)
def check(
    file: str,
    session: str | None,
    environment: str | None,
    as_json: bool,
    today: datetime.datetime | None,
) -> None:
    """List the keys in FILE and which one each session would use.

    Exit status: 0 every session has a usable key; 1 a session has only expired keys or none; 2 the file is
    malformed. Secrets are never printed.
    """
    if session is not None and len(session) < 3:
        raise click.BadParameter("needs at least the 3-character session id", param_hint="--session")
    day = today.date() if today is not None else datetime.datetime.now(datetime.UTC).date()
    try:
        key_file = load_key_file(file)
    except KeyFileError as exc:
        click.echo(f"error: {exc}", err=True)
        click.get_current_context().exit(EXIT_MALFORMED)

    chosen: set[int] = set()  # ids of the ApiKey objects some session would use
    problems: list[str] = []
    warnings: list[str] = []
    for name in _sessions(key_file, session):
        try:
            selection = _choose(key_file.keys, name, environment, day)
        except (KeyExpiredError, KeyFileError, ConfigError) as exc:
            problems.append(str(exc))
            continue
        chosen.add(id(selection.key))
        if selection.expires_soon:
            warnings.append(
                f"key {selection.key.access_key_id} for session {name} expires on {selection.key.expires} "
                f"({selection.days_left} days left); generate a new key in CME Customer Center"
            )

    shown = [key for key in key_file.keys if session is None or key.session_id == session[:3]]
    if as_json:
        records: list[dict[str, Any]] = [
            {
                "session_id": key.session_id,
                "access_key_id": key.access_key_id,
                "created": key.created.isoformat() if key.created else None,
                "expires": key.expires.isoformat() if key.expires else None,
                "environment": key.environment,
                "days_left": key.days_left(day),
                "status": _status(key, day),
                "selected": id(key) in chosen,
                "source": key.source,
                "line": key.line,
            }
            for key in shown
        ]
        click.echo(json.dumps(records, indent=2))
    else:
        rows = [
            [
                key.session_id,
                key.access_key_id,
                _text(key.created),
                _text(key.expires),
                _text(key.environment),
                _text(key.days_left(day)),
                _status(key, day),
                "<- used" if id(key) in chosen else "",
            ]
            for key in shown
        ]
        click.echo(f"{key_file.path} (today {day})")
        click.echo(format_table(_HEADERS, rows))
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if _loose_permissions(key_file.path):
        click.echo(
            f"warning: {key_file.path} can be read by other users; run: chmod 600 {key_file.path}", err=True
        )
    click.get_current_context().exit(EXIT_UNUSABLE if problems else EXIT_OK)
