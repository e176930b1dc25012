"""CME key files, key selection and expiry (spec §1.1, §1.9, §6).

A key file is what CME Customer Center (Drop Copy Groups → Target Session → Manage Keys) lets you
download: a fixed-width text table whose columns are found by their header text, one row per key pair.
This module parses it strictly, picks the key a session signs its Logon with, and refuses expired keys
before any connection.

Secrets are wrapped in :class:`SecretKey` from the moment they are read: no repr, str, format, pickle,
exception or log record made here contains one. Only :meth:`SecretKey.reveal` hands the text out (to the
signer).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import logging
import os
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any, Final, NoReturn, final

import attrs

from dropcopy_client._fsperm import write_private
from dropcopy_client.auth._signing import SigningError, decode_secret
from dropcopy_client.errors import ConfigError, KeyExpiredError, KeyFileError

logger = logging.getLogger("dropcopy_client.auth")

#: A chosen key expiring within this many days (inclusive) logs a WARNING and is reported "expires soon".
EXPIRY_WARNING_DAYS: Final = 28
#: Environment variables holding one key pair (used by :func:`keys_from_env`).
ENV_ACCESS_KEY_ID: Final = "DROPCOPY_ACCESS_KEY_ID"
ENV_SECRET_KEY: Final = "DROPCOPY_SECRET_KEY"

#: Session id of a key that came from environment variables: it serves whichever session asks for it.
_ANY_SESSION: Final = "*"
_ENV_SOURCE: Final = "environment"
_SECRET_BYTES: Final = 32
_ACCESS_KEY_ID_LENGTH: Final = 20
_REDOWNLOAD: Final = "download the key file again from CME Customer Center"
_WHERE_KEYS: Final = "CME Customer Center (Drop Copy Groups → Target Session → Manage Keys)"

_SECRET_RE: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_SESSION_RE: Final = re.compile(r"[A-Za-z0-9]{3}")
_PRINTABLE_RE: Final = re.compile(r"[!-~]+")  # printable ASCII without space
_ENVIRONMENT_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_ECHO_RE: Final = re.compile(r"[0-9./-]{1,20}")  # only such values are quoted back in error messages


@final
class SecretKey:
    """A CME secret key (base64url text). repr, str and format print ``SecretKey('***')``, never the text.

    Compared in constant time; hashable through a digest; refuses to be pickled (a pickle is a file the
    library would have written with the secret in it). ``copy`` and ``deepcopy`` return the same object.
    """

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError("SecretKey wraps the base64url text of the secret key (a str)")
        self._text = text

    def reveal(self) -> str:
        """The secret text. Call it only to sign; never log, print or store the result."""
        return self._text

    def __repr__(self) -> str:
        return "SecretKey('***')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretKey):
            return NotImplemented
        return hmac.compare_digest(self._text.encode(), other._text.encode())

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._text.encode()).digest())

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("SecretKey cannot be pickled: secrets are never written anywhere by dropcopy_client")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SecretKey cannot be pickled: secrets are never written anywhere by dropcopy_client")

    def __copy__(self) -> SecretKey:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretKey:
        return self


@attrs.frozen
class ApiKey:
    """One key pair for one Drop Copy target session (a row of the key file, or the environment variables)."""

    #: Left-most 3 characters of SenderCompID (tag 49); ``"*"`` (any session) for environment variables.
    session_id: str
    #: Sent in tag 355 EncodedText.
    access_key_id: str
    secret: SecretKey
    created: datetime.date | None
    #: Last day the key may be used (inclusive); ``None`` never expires (keys from environment variables).
    expires: datetime.date | None
    #: Upper-cased Environment column (``"NEWRELEASE"``, ``"CERT"``, ...); ``None`` matches any environment.
    environment: str | None
    #: The key file's path, or ``"environment"``.
    source: str
    #: 1-based line in ``source``; ``None`` for environment variables and generated keys.
    line: int | None

    def days_left(self, today: datetime.date) -> int | None:
        """Days until ``expires``: 0 on the expiry date, negative once expired, ``None`` if never."""
        return None if self.expires is None else (self.expires - today).days

    def is_expired(self, today: datetime.date) -> bool:
        """True once ``today`` is after ``expires``: the expiration date itself is still valid."""
        return self.expires is not None and today > self.expires


@attrs.frozen
class KeyFile:
    """A parsed key file: its path and its keys in file order."""

    path: str
    keys: tuple[ApiKey, ...]


@attrs.frozen
class KeySelection:
    """The key :func:`select_key` chose, with how long it has left."""

    key: ApiKey
    days_left: int | None
    #: True when the key expires within :data:`EXPIRY_WARNING_DAYS` days (inclusive).
    expires_soon: bool


# ------------------------------------------------------------------------------------------------------------
# Parsing

_SESSION_ID = "Session ID"
_ACCESS_ID = "Access ID"
_SECRET_KEY = "Secret Key"
_CREATION_DATE = "Creation Date"
_EXPIRATION_DATE = "Expiration Date"
_ENVIRONMENT = "Environment"
_REQUIRED_COLUMNS: Final = (_SESSION_ID, _ACCESS_ID, _SECRET_KEY, _CREATION_DATE, _EXPIRATION_DATE)
_ALL_COLUMNS: Final = (*_REQUIRED_COLUMNS, _ENVIRONMENT)
_IGNORED: Final = ""  # header text naming no known column
#: Column widths CME's download uses (header offsets 0, 21, 52, 103, 124, 145; spec §1.9).
_WIDTHS: Final = {
    _SESSION_ID: 21,
    _ACCESS_ID: 31,
    _SECRET_KEY: 51,
    _CREATION_DATE: 21,
    _EXPIRATION_DATE: 21,
    _ENVIRONMENT: 21,
}


def _header_pattern(name: str) -> re.Pattern[str]:
    # Lenient on the header: any case, any run of spaces/tabs between the words, must stand alone.
    words = r"[ \t]+".join(re.escape(word) for word in name.split())
    return re.compile(rf"(?<!\S){words}(?!\S)", re.IGNORECASE)


_HEADER_PATTERNS: Final = {name: _header_pattern(name) for name in _ALL_COLUMNS}


def _fail(path: str, line: int, column: int, problem: str, todo: str = _REDOWNLOAD) -> NoReturn:
    raise KeyFileError(f"{path}, line {line}, column {column}: {problem}; {todo}")


def _locate_columns(path: str, lineno: int, header: str) -> list[tuple[int, str]]:
    """(offset, column name) for each column of the header line, sorted by offset.

    Header text that names no known column becomes an ignored column (``""``): a later CME download that adds
    a column still parses, and whatever stands under it is skipped.
    """
    found: list[tuple[int, str]] = []
    spans: list[tuple[int, int]] = []
    for name, pattern in _HEADER_PATTERNS.items():
        matches = list(pattern.finditer(header))
        if len(matches) > 1:
            _fail(path, lineno, matches[1].start() + 1, f"the header has column {name!r} twice")
        if matches:
            found.append((matches[0].start(), name))
            spans.append(matches[0].span())
    names = {name for _, name in found}
    missing = [name for name in _REQUIRED_COLUMNS if name not in names]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        _fail(
            path,
            lineno,
            1,
            f"the header line has no column {listed} (a CME key file's header names "
            f"{', '.join(_REQUIRED_COLUMNS)} and optionally {_ENVIRONMENT})",
        )
    rest = "".join(" " if any(start <= i < end for start, end in spans) else c for i, c in enumerate(header))
    for unknown in re.finditer(r"\S+(?:[ \t]\S+)*", rest):  # words one space apart are one column
        found.append((unknown.start(), _IGNORED))
    found.sort()
    return found


def _parse_date(path: str, lineno: int, column: int, name: str, value: str) -> datetime.date:
    parsed: datetime.date | None = None
    if _DATE_RE.fullmatch(value):
        try:
            parsed = datetime.date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:  # raised outside the except block: no exception context is chained
        shown = f" {value!r}" if _DATE_ECHO_RE.fullmatch(value) else ""
        _fail(path, lineno, column, f"{name}{shown} is not a date (yyyy-MM-dd)")
    return parsed


def _secret_problem(value: str) -> str | None:
    """What is wrong with a secret's text, or None. Never includes the text."""
    if not _SECRET_RE.fullmatch(value):
        return "is not base64url text (only A-Z, a-z, 0-9, '-' and '_' are allowed)"
    try:
        size = len(decode_secret(value))
    except SigningError:
        size = -1
    if size == -1:  # decided outside the except block: nothing chained can quote the value
        return "is not valid base64url text"
    if size != _SECRET_BYTES:
        return f"decodes to {size} bytes, expected {_SECRET_BYTES}"
    return None


def _parse_row(path: str, lineno: int, line: str, columns: list[tuple[int, str]]) -> ApiKey:
    values: dict[str, tuple[int, str]] = {}
    covered: list[tuple[int, int]] = []
    for position, (offset, name) in enumerate(columns):
        next_offset = columns[position + 1][0] if position + 1 < len(columns) else None
        column = offset + 1
        if offset >= len(line) or line[offset].isspace():
            if name in (_ENVIRONMENT, _IGNORED):
                continue  # an empty Environment cell matches any environment (documented choice)
            _fail(path, lineno, column, f"{name} is missing (no value starts at this column)")
        if offset > 0 and not line[offset - 1].isspace():
            what = f"the {name} value" if name else "the value of an unknown column"
            _fail(path, lineno, column, f"{what} does not start at its column (text runs into it)")
        end = offset
        while end < len(line) and not line[end].isspace():
            end += 1
        if next_offset is not None and end > next_offset:
            what = f"the {name} value" if name else "the value of an unknown column"
            _fail(path, lineno, column, f"{what} runs into the next column")
        values[name] = (column, line[offset:end])
        covered.append((offset, end))
    for index, char in enumerate(line):
        if not char.isspace() and not any(start <= index < end for start, end in covered):
            # Never quote the stray text: it may be part of a secret that contains a space.
            _fail(path, lineno, index + 1, "unexpected text outside the key file's columns")

    column, session_id = values[_SESSION_ID]
    if not _SESSION_RE.fullmatch(session_id):
        _fail(
            path,
            lineno,
            column,
            f"Session ID must be 3 letters or digits (it has {len(session_id)} characters)",
        )
    column, access_key_id = values[_ACCESS_ID]
    if not _PRINTABLE_RE.fullmatch(access_key_id):
        _fail(path, lineno, column, "Access ID must be printable ASCII text")
    column, secret = values[_SECRET_KEY]
    problem = _secret_problem(secret)
    if problem is not None:
        _fail(path, lineno, column, f"Secret Key {problem}")
    column, text = values[_CREATION_DATE]
    created = _parse_date(path, lineno, column, _CREATION_DATE, text)
    column, text = values[_EXPIRATION_DATE]
    expires = _parse_date(path, lineno, column, _EXPIRATION_DATE, text)
    if expires < created:
        _fail(path, lineno, column, f"Expiration Date {expires} is before Creation Date {created}")
    environment: str | None = None
    if _ENVIRONMENT in values:
        column, text = values[_ENVIRONMENT]
        if not _ENVIRONMENT_RE.fullmatch(text):
            _fail(path, lineno, column, "Environment must be letters, digits, '-' or '_'")
        environment = text.upper()
    return ApiKey(
        session_id=session_id,
        access_key_id=access_key_id,
        secret=SecretKey(secret),
        created=created,
        expires=expires,
        environment=environment,
        source=path,
        line=lineno,
    )


def parse_key_file(text: str, path: str = "<string>") -> KeyFile:
    """Parse the text of a CME key file; ``path`` names the file in error messages and ``ApiKey.source``.

    Raises :class:`KeyFileError` naming the file, 1-based line and column, what is wrong and what to do. A
    file with no header, or a header and no keys, is an error. Messages never contain a secret.
    """
    text = text.removeprefix("\ufeff")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    columns: list[tuple[int, str]] | None = None
    keys: list[ApiKey] = []
    header_line = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if columns is None:
            columns = _locate_columns(path, lineno, line)
            header_line = lineno
            continue
        keys.append(_parse_row(path, lineno, line, columns))
    if columns is None:
        _fail(path, 1, 1, "the key file is empty")
    if not keys:
        _fail(path, header_line, 1, "the key file has a header but no keys")
    return KeyFile(path=path, keys=tuple(keys))


def load_key_file(path: str | os.PathLike[str]) -> KeyFile:
    """Read and parse a key file (UTF-8, with or without BOM; LF or CRLF). See :func:`parse_key_file`."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise KeyFileError(
            f"{name}: cannot read the key file ({reason}); check the path and that you may read it"
        ) from None
    return parse_key_file_bytes(data, name)


def parse_key_file_bytes(data: bytes, path: str = "<bytes>") -> KeyFile:
    """:func:`parse_key_file` for the raw bytes of a key file (BOM and UTF-8 handled as in :func:`load_key_file`)."""
    data = data.removeprefix(b"\xef\xbb\xbf")  # UTF-8 BOM
    bad_offset = -1
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_offset = exc.start
        text = ""
    if bad_offset >= 0:
        lineno = data.count(b"\n", 0, bad_offset) + 1
        before = data[data.rfind(b"\n", 0, bad_offset) + 1 : bad_offset]
        _fail(path, lineno, len(before.decode("utf-8")) + 1, "the key file is not UTF-8 text")
    return parse_key_file(text, path)


def keys_from_env(env: Mapping[str, str] | None = None) -> ApiKey | None:
    """The key pair in ``DROPCOPY_ACCESS_KEY_ID`` / ``DROPCOPY_SECRET_KEY`` (``os.environ`` by default).

    ``None`` when neither is set (an empty value counts as unset); :class:`KeyFileError` when only one is set
    or a value is malformed. The key serves any session and environment and never expires here (CME's copy
    still does).
    """
    source = os.environ if env is None else env
    access_key_id = source.get(ENV_ACCESS_KEY_ID, "").strip()
    secret = source.get(ENV_SECRET_KEY, "").strip()
    if not access_key_id and not secret:
        return None
    if not access_key_id or not secret:
        missing, present = (
            (ENV_ACCESS_KEY_ID, ENV_SECRET_KEY) if not access_key_id else (ENV_SECRET_KEY, ENV_ACCESS_KEY_ID)
        )
        raise KeyFileError(f"{present} is set but {missing} is not; set both variables, or neither")
    if not _PRINTABLE_RE.fullmatch(access_key_id):
        raise KeyFileError(f"{ENV_ACCESS_KEY_ID} must be printable ASCII text without spaces")
    problem = _secret_problem(secret)
    if problem is not None:
        raise KeyFileError(f"{ENV_SECRET_KEY} {problem}; copy the Secret Key column of your CME key file")
    return ApiKey(
        session_id=_ANY_SESSION,
        access_key_id=access_key_id,
        secret=SecretKey(secret),
        created=None,
        expires=None,
        environment=None,
        source=_ENV_SOURCE,
        line=None,
    )


# ------------------------------------------------------------------------------------------------------------
# Selection


def _session_of(sender_comp_id: str) -> str:
    if len(sender_comp_id) < 3:
        raise ConfigError(
            f"SenderCompID {sender_comp_id!r} is too short: its first 3 characters are the CME session id"
        )
    return sender_comp_id[:3]


def _matches(key: ApiKey, session_id: str, environment: str | None) -> bool:
    if key.session_id not in (session_id, _ANY_SESSION):
        return False
    return environment is None or key.environment is None or key.environment == environment.upper()


def _rank(item: tuple[int, ApiKey]) -> tuple[datetime.date, datetime.date, int]:
    index, key = item
    return (key.expires or datetime.date.max, key.created or datetime.date.min, -index)


def _no_key_message(
    all_keys: list[ApiKey], sender_comp_id: str, session_id: str, environment: str | None
) -> str:
    files = sorted({key.source for key in all_keys})
    where = ", ".join(files) if files else "the keys given (there are none)"
    wanted = f"session {session_id}"
    if sender_comp_id != session_id:
        wanted += f" (SenderCompID {sender_comp_id})"
    if environment is not None:
        wanted += f" in environment {environment.upper()}"
    sessions = sorted({key.session_id for key in all_keys})
    has = f"which has keys for sessions: {', '.join(sessions) if sessions else 'none'}"
    own_envs = sorted({key.environment or "" for key in all_keys if key.session_id == session_id})
    if own_envs:
        has += f" ({session_id} only for environment {', '.join(own_envs)})"
    todo = f"generate and download a key for {session_id} in {_WHERE_KEYS}"
    return f"no key for {wanted} in {where}, {has}; {todo}"


def _choose(
    keys: Iterable[ApiKey],
    sender_comp_id: str,
    environment: str | None,
    today: datetime.date,
) -> KeySelection:
    """:func:`select_key` without the log record (the CLI reports expiry itself)."""
    session_id = _session_of(sender_comp_id)
    all_keys = list(keys)
    matching = [(index, key) for index, key in enumerate(all_keys) if _matches(key, session_id, environment)]
    if not matching:
        raise KeyFileError(_no_key_message(all_keys, sender_comp_id, session_id, environment))
    usable = [(index, key) for index, key in matching if not key.is_expired(today)]
    if not usable:
        expired = ", ".join(f"key {key.access_key_id} (valid until {key.expires})" for _, key in matching)
        raise KeyExpiredError(
            f"every key for session {sender_comp_id} has expired: {expired}; today is {today}; "
            f"generate and download a new key in {_WHERE_KEYS}"
        )
    _, chosen = max(usable, key=_rank)
    days_left = chosen.days_left(today)
    return KeySelection(
        key=chosen,
        days_left=days_left,
        expires_soon=days_left is not None and days_left <= EXPIRY_WARNING_DAYS,
    )


def select_key(
    keys: Iterable[ApiKey],
    sender_comp_id: str,
    environment: str | None = None,
    today: datetime.date | None = None,
) -> KeySelection:
    """The key a session signs its Logon with.

    Keys match on the first 3 characters of ``sender_comp_id`` and, when ``environment`` is given, on the
    Environment column (case-insensitive; keys without one match any environment). Among matching keys that
    have not expired, the latest expiry wins, then the latest creation date, then the earlier row. ``today``
    defaults to today's date in UTC.

    Raises :class:`KeyExpiredError` when every matching key has expired, :class:`KeyFileError` when none
    matches. Logs a WARNING on ``dropcopy_client.auth`` when the chosen key expires within
    :data:`EXPIRY_WARNING_DAYS` days.
    """
    if today is None:
        today = datetime.datetime.now(datetime.UTC).date()
    elif isinstance(today, datetime.datetime):
        today = today.date()
    selection = _choose(keys, sender_comp_id, environment, today)
    if selection.expires_soon:
        logger.warning(
            "key %s for session %s expires on %s (%d days left); generate a new key in %s and add it to %s",
            selection.key.access_key_id,
            sender_comp_id,
            selection.key.expires,
            selection.days_left,
            _WHERE_KEYS,
            selection.key.source,
        )
    return selection


# ------------------------------------------------------------------------------------------------------------
# Generating and writing (tests, the simulator, rehearsals)

_ALPHANUMERIC: Final = string.ascii_letters + string.digits


def generate_key(
    session_id: str,
    *,
    created: datetime.date,
    expires: datetime.date,
    environment: str | None = None,
) -> ApiKey:
    """A random key pair shaped like CME's: a 20-character alphanumeric id, 32 random bytes as base64url."""
    if not _SESSION_RE.fullmatch(session_id):
        raise ValueError(f"session_id must be 3 letters or digits, got {session_id!r}")
    if expires < created:
        raise ValueError(f"expires ({expires}) is before created ({created})")
    if environment is not None and not _ENVIRONMENT_RE.fullmatch(environment):
        raise ValueError(f"environment must be letters, digits, '-' or '_', got {environment!r}")
    access_key_id = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(_ACCESS_KEY_ID_LENGTH))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii").rstrip("=")
    return ApiKey(
        session_id=session_id,
        access_key_id=access_key_id,
        secret=SecretKey(secret),
        created=created,
        expires=expires,
        environment=None if environment is None else environment.upper(),
        source="generated",
        line=None,
    )


def _render(keys: list[ApiKey], include_environment: bool) -> str:
    names = _ALL_COLUMNS if include_environment else _REQUIRED_COLUMNS
    rows: list[list[str]] = [list(names)]
    for key in keys:
        if key.created is None or key.expires is None:
            raise ValueError(
                f"key {key.access_key_id} from {key.source} has no creation or expiration date; "
                "a key file needs both"
            )
        row = [key.session_id, key.access_key_id, key.secret.reveal(), str(key.created), str(key.expires)]
        if include_environment:
            row.append(key.environment or "")
        rows.append(row)
    widths = [max(_WIDTHS[name], *(len(row[i]) + 1 for row in rows)) for i, name in enumerate(names)]
    return "".join(
        "".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + "\n" for row in rows
    )


def write_key_file(
    path: str | os.PathLike[str],
    keys: Iterable[ApiKey],
    *,
    include_environment: bool = True,
) -> None:
    """Write ``keys`` in the fixed-width layout CME Customer Center produces, owner-readable only (0o600).

    The file is written atomically (temporary file + fsync + rename) and checked to parse back before it
    replaces ``path``. Meant for tests, the simulator and rehearsals; production key files come from CME.
    """
    key_list = list(keys)
    if not key_list:
        raise ValueError("no keys to write: a key file needs at least one key")
    text = _render(key_list, include_environment)
    name = os.fspath(path)
    parse_key_file(text, name)  # never write a file this module would refuse to read
    write_private(name, text.encode("utf-8"), prefix=".keys-")
