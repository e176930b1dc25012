"""``dropcopy keys``: inspect CME key files and key stores before a session needs them, and encrypt them.

``dropcopy keys check PATH`` lists every key of a key file or key store (never a secret), marks the one each
session would sign its Logon with, and exits 0 when every session has a usable key, 1 when one has only
expired keys or none, 2 when the file is malformed or the store cannot be opened, 3 when ``--strict`` refuses
a file others can read.

``dropcopy keys import FILE --store PATH`` moves a downloaded key file into an encrypted store (created, or
added to for a rotation), and with ``--remove-source`` deletes the plain file once the store verified.

The passphrase comes from ``DROPCOPY_KEY_PASSPHRASE`` or a hidden prompt: never an argument, never a file.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import Any, Final, NoReturn

import click

from dropcopy_client._fsperm import check_private
from dropcopy_client.auth._keyfile import (
    EXPIRY_WARNING_DAYS,
    ApiKey,
    KeyFile,
    _choose,
    load_key_file,
)
from dropcopy_client.auth._store import (
    ENV_PASSPHRASE,
    add_to_key_store,
    is_key_store,
    passphrase_problem,
    read_key_store,
)
from dropcopy_client.cli._format import format_table
from dropcopy_client.errors import ConfigError, KeyExpiredError, KeyFileError

EXIT_OK: Final = 0
EXIT_UNUSABLE: Final = 1
EXIT_MALFORMED: Final = 2
EXIT_PERMISSIONS: Final = 3

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


def _exit(code: int, message: str | None = None) -> NoReturn:
    if message is not None:
        click.echo(f"error: {message}", err=True)
    click.get_current_context().exit(code)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _passphrase(store: str, *, creating: bool) -> str:
    """``DROPCOPY_KEY_PASSPHRASE``, else a hidden prompt (typed twice for a new store)."""
    value = os.environ.get(ENV_PASSPHRASE)
    if value:
        return value
    if not _interactive():  # getpass would fall back to reading (and echoing) a pipe
        _exit(EXIT_MALFORMED, f"no passphrase for {store}: set {ENV_PASSPHRASE} or run in a terminal")
    what = "new key store" if creating else "key store"
    try:
        typed: str = click.prompt(
            f"Passphrase for {what} {store}",
            hide_input=True,
            confirmation_prompt=creating,
            show_default=False,
            err=True,
        )
    except click.Abort:
        _exit(EXIT_MALFORMED, f"no passphrase for {store}: set {ENV_PASSPHRASE} or run in a terminal")
    return typed


def _load(path: str) -> tuple[KeyFile, bool]:
    """(keys, is a store) for a key file or a key store, detected by the store's magic bytes."""
    try:
        if is_key_store(path):
            return read_key_store(path, _passphrase(path, creating=False)), True
        return load_key_file(path), False
    except KeyFileError as exc:
        _exit(EXIT_MALFORMED, str(exc))


def _check_permissions(path: str, what: str, strict: bool) -> str | None:
    """The permission warning for ``path``; with ``strict``, refuse (exit 3) instead of going on."""
    warning = check_private(path, what)
    if warning is not None and strict:
        _exit(EXIT_PERMISSIONS, f"{warning} (--strict refuses keys that others can read)")
    return warning


@click.group("keys")
def keys() -> None:
    """CME secure-logon key files and encrypted key stores."""


_STRICT = click.option(
    "--strict", is_flag=True, help="Refuse (exit 3) when the file can be read or written by group or others."
)


@keys.command("check")
@click.argument("file", metavar="PATH", type=click.Path(dir_okay=False, path_type=str))
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
@_STRICT
def check(
    file: str,
    session: str | None,
    environment: str | None,
    as_json: bool,
    today: datetime.datetime | None,
    strict: bool,
) -> None:
    """List the keys in PATH (a CME key file or a key store) and which one each session would use.

    A key store is opened with DROPCOPY_KEY_PASSPHRASE, or asks for the passphrase. Exit status: 0 every
    session has a usable key; 1 a session has only expired keys or none; 2 the file is malformed or the store
    cannot be opened; 3 --strict and the file is open to group or others. Secrets are never printed.
    """
    if session is not None and len(session) < 3:
        raise click.BadParameter("needs at least the 3-character session id", param_hint="--session")
    day = today.date() if today is not None else datetime.datetime.now(datetime.UTC).date()
    store = is_key_store(file)
    permission_warning = _check_permissions(file, "key store" if store else "key file", strict)
    key_file, store = _load(file)

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
        click.echo(f"{key_file.path} ({'key store, ' if store else ''}today {day})")
        click.echo(format_table(_HEADERS, rows))
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if permission_warning is not None:
        click.echo(f"warning: {permission_warning}", err=True)
    click.get_current_context().exit(EXIT_UNUSABLE if problems else EXIT_OK)


_IMPORT_HEADERS: Final = ("SESSION", "ACCESS KEY ID", "CREATED", "EXPIRES", "ENVIRONMENT", "STATUS", "IMPORT")


def _scrub(path: str) -> None:
    """Overwrite a plain key file with zeros, flush it to disk, then delete it (best effort: see the guide)."""
    size = os.path.getsize(path)
    with open(path, "r+b", buffering=0) as handle:
        handle.write(b"\0" * size)
        os.fsync(handle.fileno())
    os.unlink(path)


@keys.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--store",
    "store_path",
    required=True,
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=str),
    help="The key store to create, or to add FILE's keys to.",
)
@click.option(
    "--remove-source",
    is_flag=True,
    help="Delete FILE (overwritten with zeros first) once the store has been written and read back.",
)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Pretend today is this date for the STATUS column. Default: today in UTC.",
)
def import_(file: str, store_path: str, remove_source: bool, today: datetime.datetime | None) -> None:
    """Encrypt the keys of a downloaded CME key FILE into a key store.

    Creates the store (mode 0600) or, when it exists, adds FILE's new keys to it: import each new download
    into the same store to rotate keys. The passphrase comes from DROPCOPY_KEY_PASSPHRASE or a hidden prompt
    (typed twice for a new store, at least 12 characters). Exit status: 0 imported; 2 FILE is malformed, the
    store cannot be opened, or a key clashes with one in the store (nothing is written then).
    """
    day = today.date() if today is not None else datetime.datetime.now(datetime.UTC).date()
    if os.path.exists(file) and os.path.exists(store_path) and os.path.samefile(file, store_path):
        _exit(EXIT_MALFORMED, f"{file} is both the key file and the store; give the store another path")
    try:
        key_file = load_key_file(file)
    except KeyFileError as exc:
        _exit(EXIT_MALFORMED, str(exc))
    creating = not os.path.exists(store_path)
    if not creating and not is_key_store(store_path):
        _exit(
            EXIT_MALFORMED,
            f"{store_path} exists and is not a key store; refusing to overwrite it (give a new path)",
        )
    passphrase = _passphrase(store_path, creating=creating)
    if creating and (problem := passphrase_problem(passphrase)) is not None:
        _exit(EXIT_MALFORMED, f"{store_path}: {problem}; nothing was written")
    try:
        update = add_to_key_store(store_path, key_file.keys, passphrase)
    except KeyFileError as exc:
        _exit(EXIT_MALFORMED, str(exc))

    added = {key.access_key_id for key in update.added}
    rows = [
        [
            key.session_id,
            key.access_key_id,
            _text(key.created),
            _text(key.expires),
            _text(key.environment),
            _status(key, day),
            "added" if key.access_key_id in added else "",
        ]
        for key in update.keys
    ]
    verb = "created" if update.created else "updated" if update.added else "unchanged"
    click.echo(
        f"{update.path} ({verb}: {len(update.added)} added, {len(update.unchanged)} already there, "
        f"{len(update.keys)} keys)"
    )
    click.echo(format_table(_IMPORT_HEADERS, rows))
    stored = {key.access_key_id: key for key in update.keys}
    for key in key_file.keys:  # every key of FILE is in the store, as read back from disk
        kept = stored.get(key.access_key_id)
        if kept is None or kept.secret != key.secret:
            _exit(
                EXIT_MALFORMED, f"{update.path}: key {key.access_key_id} did not read back; {file} was kept"
            )
    if remove_source:
        try:
            _scrub(file)
        except OSError as exc:
            _exit(
                EXIT_MALFORMED,
                f"{file}: the store is written, but the key file could not be removed ({exc.strerror})",
            )
        click.echo(f"removed {file}")
    else:
        click.echo(
            f"warning: {file} still holds the keys in plain text; delete it, or import with --remove-source",
            err=True,
        )
    directory_warning = check_private(os.path.dirname(os.path.abspath(update.path)), "the store's directory")
    if directory_warning is not None and "write" in directory_warning:  # others could replace the store
        click.echo(f"warning: {directory_warning}", err=True)
