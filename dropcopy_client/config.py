"""Configuration: attrs objects, loadable from TOML, validated at load with errors that name file, key and value.

Secrets never live here: a group names a CME key file, an encrypted key store (``dropcopy keys import``), or
says ``key_env = true`` to read the ``DROPCOPY_ACCESS_KEY_ID`` / ``DROPCOPY_SECRET_KEY`` environment variables.

Example::

    [client]
    data_dir = "var/dropcopy"
    app_name = "RiskHub"        # 1603
    app_version = "1.0"         # 1604
    app_vendor = "Acme"         # 1605
    location = "US,IL"          # 142
    heartbeat = 30

    [[group]]
    name = "clearing"
    key_file = "keys/dropcopy-keys.txt"
    environment = "production"
    operator = "OPS1"

    [[group.target]]
    kind = "cgw"
    sender_comp_id = "ABCDEFN"
    primary = "10.1.1.1:11000"
    backup = "10.1.2.1:11000"

    [[sink]]                    # optional, any number (docs/guides/sinks.md)
    url = "postgresql://risk@10.3.1.5:5432/risk"   # the password: ~/.pgpass or PGPASSWORD, not here
    table = "fills"

    [positions]                 # optional (docs/guides/positions.md)
    multipliers = { ES = 50, ZN = 1000 }   # 55 Symbol -> contract multiplier: realized_value in money
    accounts = ["ACCT1", "ACCT2"]           # dropcopy positions / eod show only these
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from dropcopy_client._week import WeeklySchedule
from dropcopy_client.errors import ConfigError

if TYPE_CHECKING:
    from dropcopy_client.sinks import Sink

log = logging.getLogger(__name__)

ENVIRONMENTS = ("production", "cert", "newrelease")
_COMP_ID = re.compile(r"^[A-Z0-9]{6}N$")
_OPERATOR = re.compile(r"^[A-Za-z0-9_\-:@.]{2,18}$")
_SEGMENT = re.compile(r"^[0-9]{1,3}$")


@attrs.frozen
class Endpoint:
    """A gateway address. IPv4 literals only: QuickFIX resolves names with a non-reentrant call."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str, *, where: str = "endpoint") -> Endpoint:
        host, sep, port = str(text).rpartition(":")
        if not sep or not host or not (port.isascii() and port.isdigit()):
            raise ConfigError(f'{where}: {text!r} is not host:port (for example "10.1.1.1:11000")')
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if host != "localhost":
                raise ConfigError(
                    f"{where}: host {host!r} is not an IPv4 address; QuickFIX needs IP literals"
                ) from None
            host = "127.0.0.1"
        number = int(port)
        if not 0 < number < 65536:
            raise ConfigError(f"{where}: port {number} is out of range 1-65535")
        return cls(host, number)


@attrs.frozen
class SessionEndpoints:
    """The primary and optional backup gateway of one FIX session."""

    primary: Endpoint
    backup: Endpoint | None = None


@attrs.frozen
class TargetConfig:
    """A drop copy target session: a CGW target (one session, 57=G) or an MSGW target (one session per segment)."""

    kind: Literal["cgw", "msgw"]
    sender_comp_id: str
    #: segment id -> endpoints; a CGW target has exactly one entry, keyed "G"
    segments: Mapping[str, SessionEndpoints]


@attrs.frozen
class GroupConfig:
    """A drop copy group: its credentials, operator id and target sessions."""

    name: str
    operator: str
    targets: tuple[TargetConfig, ...]
    key_file: Path | None = None
    key_env: bool = False
    environment: str | None = None
    #: an encrypted key store written by ``dropcopy keys import`` (passphrase: ``DROPCOPY_KEY_PASSPHRASE``)
    key_store: Path | None = None


SINK_STARTS = ("beginning", "now")
SINK_ON_ERROR = ("retry", "dead_letter")


def _redacted_url(url: str) -> str:
    from dropcopy_client.sinks._dsn import redact_dsn

    return redact_dsn(url)


@attrs.frozen
class SinkConfig:
    """A ``[[sink]]``: where the journal's stream is also written (see docs/guides/sinks.md).

    ``start``: ``"beginning"`` (a new sink backfills the whole journal) or ``"now"`` (it starts at the end
    of the journal). ``on_error``: ``"retry"`` (a failing batch is offered again after a back-off, the sink
    holds back) or ``"dead_letter"`` (after the retries, the batch is set aside and the sink moves on).
    The URL is shown without its password (``repr``, logs, errors).
    """

    url: str = attrs.field(repr=_redacted_url)
    name: str
    #: PostgreSQL only: the execution report table (None: the sink's default, dropcopy_execution_reports)
    table: str | None = None
    start: Literal["beginning", "now"] = "beginning"
    on_error: Literal["retry", "dead_letter"] = "retry"

    @property
    def kind(self) -> str:
        """``"postgres"`` or ``"jsonl"``."""
        from dropcopy_client.sinks import sink_kind

        return sink_kind(self.url)

    def open(self, **options: Any) -> Sink:
        """The sink itself (:func:`dropcopy_client.sinks.open_sink` with ``name`` and ``table``)."""
        from dropcopy_client.sinks import open_sink

        if self.table is not None:
            options.setdefault("table", self.table)
        return open_sink(self.url, name=self.name, **options)


def _decimal_map(values: Mapping[str, Decimal | int | str]) -> dict[str, Decimal]:
    return {symbol: Decimal(value) for symbol, value in values.items()}


@attrs.frozen
class PositionsConfig:
    """The ``[positions]`` table: how positions are valued and which accounts the position views show.

    ``multipliers`` maps a product (55 Symbol, e.g. ``"ES"``) to its contract multiplier: with it a position's
    ``realized_value`` is money, not price points. ``accounts``, when not empty, limits ``dropcopy positions``
    and ``dropcopy eod`` to those accounts (the journal keeps every fill). ``history`` is where the live book
    keeps its fill history: ``"journal"`` (the default: rows in the journal's file, running totals in RAM, so
    memory does not grow with the fills, and a restart rebuilds the book from those rows without decoding)
    or ``"memory"`` (every fill in RAM, rebuilt by decoding the journal at start).
    """

    multipliers: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_decimal_map)
    accounts: tuple[str, ...] = ()
    history: Literal["journal", "memory"] = "journal"


@attrs.frozen
class ClientConfig:
    """Everything a :class:`~dropcopy_client.DropCopyClient` needs."""

    groups: tuple[GroupConfig, ...]
    data_dir: Path = Path("var/dropcopy")
    app_name: str = "dropcopy_client"
    app_version: str = "0.1"
    app_vendor: str = "dropcopy"
    location: str = "US,IL"
    heartbeat: int = 30
    #: seconds between reconnect attempts (QuickFIX ReconnectInterval; initiator-wide)
    reconnect_interval: int = 5
    #: seconds to wait for a Logon answer before the engine disconnects
    logon_timeout: int = 10
    #: when CME's trading week starts and sequence numbers go back to 1 ("<day> <HH:MM> [<time zone>]");
    #: CME does not publish the exact instant, so it is configurable (see docs/reference/configuration.md)
    weekly_reset: str = "sun 16:00 America/Chicago"
    source: str = "<python>"
    #: ``[[sink]]`` tables: where the journal's stream is also written (docs/guides/sinks.md)
    sinks: tuple[SinkConfig, ...] = ()
    #: the ``[positions]`` table: contract multipliers and the accounts the position views show
    positions: PositionsConfig = PositionsConfig()


def cgw_target(
    sender_comp_id: str, primary: str | Endpoint, backup: str | Endpoint | None = None, *, where: str = ""
) -> TargetConfig:
    """Build a CGW target from Python (the TOML loader uses the same validation)."""
    where = where or f"CGW target {sender_comp_id!r}"
    return TargetConfig(
        "cgw",
        _check_comp_id(sender_comp_id, where),
        {"G": _endpoints(primary, backup, where)},
    )


def msgw_target(
    sender_comp_id: str,
    segments: Mapping[str, tuple[str | Endpoint, str | Endpoint | None]],
    *,
    where: str = "",
) -> TargetConfig:
    """Build an MSGW target from Python: ``segments`` maps segment id -> (primary, backup)."""
    where = where or f"MSGW target {sender_comp_id!r}"
    comp = _check_comp_id(sender_comp_id, where)
    built: dict[str, SessionEndpoints] = {}
    for seg, (primary, backup) in segments.items():
        swhere = f"{where} segment {str(seg)!r}"
        _check_segment(str(seg), swhere)
        built[str(seg)] = _endpoints(primary, backup, swhere)
    if not built:
        raise ConfigError(f"{where}: at least one market segment is required")
    return TargetConfig("msgw", comp, built)


def _endpoints(primary: str | Endpoint, backup: str | Endpoint | None, where: str) -> SessionEndpoints:
    if backup is not None and not isinstance(backup, Endpoint) and not str(backup).strip():
        raise ConfigError(f'{where} backup = {backup!r}: give "host:port" or leave the key out (no backup)')
    return SessionEndpoints(
        _endpoint(primary, f"{where} primary"),
        _endpoint(backup, f"{where} backup") if backup is not None else None,
    )


def _endpoint(value: str | Endpoint, where: str) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    if not isinstance(value, str):
        raise ConfigError(f'{where} = {value!r}: must be a string "host:port"')
    return Endpoint.parse(value, where=where)


def _check_comp_id(value: str, where: str) -> str:
    if not isinstance(value, str) or len(value) != 7:
        raise ConfigError(f"{where}: sender_comp_id {value!r} must be 7 characters (session+firm+'N')")
    if value[-1] != "N":
        raise ConfigError(
            f"{where}: sender_comp_id {value!r} must end with the fault tolerance indicator 'N' (Drop Copy 4.0)"
        )
    if not _COMP_ID.match(value):
        raise ConfigError(f"{where}: sender_comp_id {value!r} must be upper-case letters and digits")
    return value


def _check_segment(value: str, where: str) -> None:
    if not _SEGMENT.match(value):
        raise ConfigError(f'{where}: market segment id {value!r} must be 1-3 digits (e.g. "84")')


# ---------------------------------------------------------------------------------------------- TOML loading

_CLIENT_KEYS = {
    "data_dir",
    "app_name",
    "app_version",
    "app_vendor",
    "location",
    "heartbeat",
    "reconnect_interval",
    "logon_timeout",
    "weekly_reset",
}
_GROUP_KEYS = {"name", "key_file", "key_store", "key_env", "environment", "operator", "target"}
_TARGET_KEYS = {"kind", "sender_comp_id", "primary", "backup", "segments"}
_SINK_KEYS = {"url", "name", "table", "start", "on_error"}


def load_config(path: str | os.PathLike[str]) -> ClientConfig:
    """Load and validate a TOML configuration file. Relative paths in it are relative to the file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read configuration ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return config_from_dict(data, source=str(file), base=file.parent)


def config_from_dict(
    data: Mapping[str, Any], *, source: str = "<dict>", base: Path | None = None
) -> ClientConfig:
    """Validate a configuration already parsed from TOML (or built in Python)."""
    base = base or Path.cwd()
    unknown = set(data) - {"client", "group", "sink", "positions"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {sorted(unknown)}; "
            "expected [client] and [[group]] (and optional [[sink]] and [positions] tables)"
        )
    client = data.get("client", {})
    _no_unknown(client, _CLIENT_KEYS, f"{source} [client]")
    where = f"{source} [client]"
    heartbeat = _int(client, "heartbeat", 30, where)
    if not 5 <= heartbeat <= 60:
        raise ConfigError(f"{where} heartbeat = {heartbeat}: CME accepts 5-60 seconds (30 recommended)")
    location = _str(client, "location", "US,IL", where)
    if not location or not location.isascii():
        raise ConfigError(
            f'{where} location = {location!r}: 142 SenderLocationID must be ASCII, e.g. "US,IL"'
        )
    app_fields = {}
    for key, limit, default in (
        ("app_name", 30, "dropcopy_client"),
        ("app_version", 10, "0.1"),
        ("app_vendor", 10, "dropcopy"),
    ):
        value = _str(client, key, default, where)
        if not value or len(value) > limit or not value.isascii():
            raise ConfigError(f"{where} {key} = {value!r}: must be 1-{limit} ASCII characters")
        app_fields[key] = value
    data_dir = Path(_str(client, "data_dir", "var/dropcopy", where))
    weekly_reset = _str(client, "weekly_reset", "sun 16:00 America/Chicago", where)
    try:
        WeeklySchedule.parse(weekly_reset)
    except ValueError as exc:
        raise ConfigError(f"{where} weekly_reset = {weekly_reset!r}: {exc}") from None
    groups_raw = data.get("group", [])
    if not isinstance(groups_raw, list) or not groups_raw:
        raise ConfigError(f"{source}: at least one [[group]] is required")
    groups = tuple(_group(g, i, source, base) for i, g in enumerate(groups_raw))
    seen: dict[tuple[str, str], str] = {}
    names: set[str] = set()
    for group in groups:
        if group.name in names:
            raise ConfigError(f"{source}: group name {group.name!r} is used twice")
        names.add(group.name)
        for target in group.targets:
            for seg in target.segments:
                ident = (target.sender_comp_id, seg)
                if ident in seen:
                    raise ConfigError(
                        f"{source}: session {target.sender_comp_id} segment {seg} appears in groups "
                        f"{seen[ident]!r} and {group.name!r}; each target session belongs to one group"
                    )
                seen[ident] = group.name
    sinks_raw = data.get("sink", [])
    if not isinstance(sinks_raw, list):
        raise ConfigError(f"{source}: sink must be an array of tables: write [[sink]], not [sink]")
    sinks = tuple(_sink(s, i, source, base) for i, s in enumerate(sinks_raw))
    sink_names: set[str] = set()
    for sink in sinks:
        if sink.name in sink_names:
            raise ConfigError(
                f"{source}: sink name {sink.name!r} is used twice; each sink needs its own name (it names "
                'its cursor): add name = "..." to one of them'
            )
        sink_names.add(sink.name)
    positions = positions_from_dict(data.get("positions", {}), f"{source} [positions]")
    return ClientConfig(
        groups=groups,
        sinks=sinks,
        positions=positions,
        data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
        heartbeat=heartbeat,
        location=location,
        reconnect_interval=_positive(client, "reconnect_interval", 5, where),
        logon_timeout=_positive(client, "logon_timeout", 10, where),
        weekly_reset=weekly_reset,
        source=source,
        **app_fields,
    )


_POSITIONS_KEYS = {"multipliers", "accounts", "history"}


def positions_from_dict(raw: Any, where: str = "[positions]") -> PositionsConfig:
    """Validate a ``[positions]`` table: ``multipliers = {"ES" = 50}``, ``accounts = ["ACCT1"]``,
    ``history = "journal"``."""
    _no_unknown(raw, _POSITIONS_KEYS, where)
    multipliers_raw = raw.get("multipliers", {})
    if not isinstance(multipliers_raw, dict):
        raise ConfigError(
            f'{where} multipliers = {multipliers_raw!r}: must be a table of product -> number, e.g. {{"ES" = 50}}'
        )
    multipliers = {
        symbol: parse_multiplier(value, f"{where} multipliers.{symbol}")
        for symbol, value in multipliers_raw.items()
    }
    accounts_raw = raw.get("accounts", [])
    if not isinstance(accounts_raw, list) or not all(isinstance(a, str) and a for a in accounts_raw):
        raise ConfigError(
            f'{where} accounts = {accounts_raw!r}: must be a list of account names (1), e.g. ["ACCT1", "ACCT2"]'
        )
    history = raw.get("history", "journal")
    if history not in ("journal", "memory"):
        raise ConfigError(
            f'{where} history = {history!r}: expected "journal" (fills kept in the journal\'s file, the '
            'default) or "memory" (every fill in RAM)'
        )
    return PositionsConfig(multipliers=multipliers, accounts=tuple(accounts_raw), history=history)


def parse_multiplier(value: object, where: str) -> Decimal:
    """A contract multiplier: a positive number (an integer, a decimal string, or a float written in TOML)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where} = {value!r}: must be a positive number, e.g. 50")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"{where} = {value!r}: must be a positive number, e.g. 50") from None
    if not number.is_finite() or number <= 0:
        raise ConfigError(f"{where} = {value!r}: must be a positive number, e.g. 50")
    return number


def _group(raw: Any, index: int, source: str, base: Path) -> GroupConfig:
    where = f"{source} [[group]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _no_unknown(raw, _GROUP_KEYS, where)
    name = _str(raw, "name", None, where)
    where = f"{source} group {name!r}"
    operator = _str(raw, "operator", None, where)
    if not _OPERATOR.match(operator):
        raise ConfigError(
            f"{where} operator = {operator!r}: 50 SenderSubID must be 2-18 characters of A-Z a-z 0-9 _ - : @ ."
        )
    environment = raw.get("environment")
    if environment is not None and str(environment).lower() not in ENVIRONMENTS:
        raise ConfigError(f"{where} environment = {environment!r}: expected one of {', '.join(ENVIRONMENTS)}")
    key_env = raw.get("key_env", False)
    if not isinstance(key_env, bool):
        raise ConfigError(f"{where} key_env = {key_env!r}: must be true or false")
    key_file = raw.get("key_file")
    if key_file is not None and (not isinstance(key_file, str) or not key_file.strip()):
        raise ConfigError(
            f"{where} key_file = {key_file!r}: must be the path of a CME key file (or use key_env = true)"
        )
    key_store = raw.get("key_store")
    if key_store is not None and (not isinstance(key_store, str) or not key_store.strip()):
        raise ConfigError(
            f"{where} key_store = {key_store!r}: must be the path of a key store written by "
            "`dropcopy keys import FILE --store PATH`"
        )
    given = {"key_file": key_file is not None, "key_store": key_store is not None, "key_env": key_env}
    chosen = [name for name, present in given.items() if present]
    if not chosen:
        raise ConfigError(
            f'{where}: set key_file = "path", key_store = "path" or key_env = true (DROPCOPY_* variables)'
        )
    if len(chosen) > 1:
        raise ConfigError(f"{where}: {' and '.join(chosen)} are exclusive; choose one")
    targets_raw = raw.get("target", [])
    if not isinstance(targets_raw, list) or not targets_raw:
        raise ConfigError(f"{where}: at least one [[group.target]] is required")
    targets = tuple(_target(t, i, where) for i, t in enumerate(targets_raw))
    return GroupConfig(
        name=name,
        operator=operator,
        targets=targets,
        key_file=_path(key_file, base),
        key_env=key_env,
        environment=str(environment).lower() if environment is not None else None,
        key_store=_path(key_store, base),
    )


def _path(value: str | None, base: Path) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else base / path


def _target(raw: Any, index: int, group_where: str) -> TargetConfig:
    where = f"{group_where} target #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _no_unknown(raw, _TARGET_KEYS, where)
    kind = _str(raw, "kind", None, where)
    comp = _str(raw, "sender_comp_id", None, where)
    where = f"{group_where} target {comp!r}"
    if kind == "cgw":
        if "segments" in raw:
            raise ConfigError(f"{where}: a CGW target has primary/backup, not segments")
        if "primary" not in raw:
            raise ConfigError(f'{where}: primary = "host:port" is required')
        return cgw_target(comp, _str(raw, "primary", None, where), raw.get("backup"), where=where)
    if kind == "msgw":
        if "primary" in raw or "backup" in raw:
            raise ConfigError(
                f'{where}: an MSGW target lists segments = {{ "84" = {{ primary = ..., backup = ... }} }}'
            )
        segs = raw.get("segments")
        if not isinstance(segs, dict) or not segs:
            raise ConfigError(f"{where}: segments must be a table of segment id -> {{ primary, backup }}")
        pairs: dict[str, tuple[str, str | None]] = {}
        for seg, value in segs.items():
            swhere = f"{where} segment {seg!r}"
            if not isinstance(value, dict):
                raise ConfigError(f'{swhere}: must be {{ primary = "host:port", backup = "host:port" }}')
            _no_unknown(value, {"primary", "backup"}, swhere)
            pairs[seg] = (_str(value, "primary", None, swhere), value.get("backup"))
        return msgw_target(comp, pairs, where=where)
    raise ConfigError(f'{where} kind = {kind!r}: expected "cgw" or "msgw"')


def sink_from_url(
    url: str,
    *,
    name: str | None = None,
    start: str = "beginning",
    on_error: str = "retry",
    where: str = "--sink",
) -> SinkConfig:
    """A :class:`SinkConfig` from a URL given outside a file (``dropcopy run --sink URL``), checked like a
    ``[[sink]]`` table; a relative ``jsonl:`` directory is relative to the working directory."""
    raw: dict[str, Any] = {"url": url, "start": start, "on_error": on_error}
    if name is not None:
        raw["name"] = name
    return _sink(raw, 0, where, Path.cwd(), where=where)


def _sink(raw: Any, index: int, source: str, base: Path, *, where: str | None = None) -> SinkConfig:
    from dropcopy_client.sinks import jsonl_directory, sink_kind
    from dropcopy_client.sinks._dsn import password_of, redact_dsn

    given = where
    where = where or f"{source} [[sink]] #{index + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _no_unknown(raw, _SINK_KEYS, where)
    url = raw.get("url")
    if not isinstance(url, str) or not url.strip():
        shown = redact_dsn(url) if isinstance(url, str) else url
        raise ConfigError(f'{where}: url = {shown!r}: give the sink\'s URL, e.g. url = "jsonl:archive"')
    url = url.strip()
    try:
        kind = sink_kind(url)
    except ConfigError as exc:
        raise ConfigError(f"{where} url = {redact_dsn(url)!r}: {_after_url(str(exc))}") from None
    name = _str(raw, "name", "postgres" if kind == "postgres" else "jsonl", where)
    if not name.strip():
        raise ConfigError(f"{where} name = {name!r}: must not be empty (it names the sink's cursor)")
    where = given or f"{source} sink {name!r}"
    table = raw.get("table")
    if table is not None:
        if kind != "postgres":
            raise ConfigError(f"{where} table = {table!r}: only a PostgreSQL sink has a table")
        if not isinstance(table, str) or not table.strip():
            raise ConfigError(f'{where} table = {table!r}: must be a table name, e.g. "fills"')
    start = _str(raw, "start", "beginning", where)
    if start not in SINK_STARTS:
        raise ConfigError(
            f'{where} start = {start!r}: expected "beginning" (backfill the journal) or "now" (new events only)'
        )
    on_error = _str(raw, "on_error", "retry", where)
    if on_error not in SINK_ON_ERROR:
        raise ConfigError(
            f'{where} on_error = {on_error!r}: expected "retry" (hold back and retry) or "dead_letter" '
            "(set the batch aside and go on)"
        )
    if kind == "jsonl":
        try:
            directory = Path(jsonl_directory(url))
        except ConfigError as exc:
            raise ConfigError(f"{where} url = {url!r}: {_after_url(str(exc))}") from None
        url = "jsonl://" + urllib.parse.quote(str(directory if directory.is_absolute() else base / directory))
    elif password_of(url):
        log.warning(
            "%s: the sink URL holds a password; keep it out of the file with ~/.pgpass or PGPASSWORD "
            "(libpq reads both)",
            where,
        )
    return SinkConfig(url=url, name=name, table=table, start=start, on_error=on_error)  # type: ignore[arg-type]


def _after_url(message: str) -> str:
    """A sinks error without its own ``sink URL '...':`` prefix (the config error names the URL already)."""
    head, sep, rest = message.partition("': ")
    return rest if sep and head.startswith("sink URL '") else message


def _no_unknown(table: Any, allowed: set[str], where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _str(table: Mapping[str, Any], key: str, default: str | None, where: str) -> str:
    if key not in table:
        if default is None:
            raise ConfigError(f"{where}: {key} is required")
        return default
    value = table[key]
    if not isinstance(value, str):
        raise ConfigError(f"{where} {key} = {value!r}: must be a string")
    return value


def _positive(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = _int(table, key, default, where)
    if value < 1:
        raise ConfigError(f"{where} {key} = {value}: must be at least 1 (seconds)")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where} {key} = {value!r}: must be an integer")
    return value
