"""PostgreSQL sink (psycopg 3): execution reports, other business events, positions and the cursor, one
transaction per batch, so the effect is exactly once (``pip install 'dropcopy-client[postgres]'``).

Tables (names configurable; layouts in docs/guides/sinks.md):

* ``dropcopy_execution_reports``: one row per execution report (acks, fills, busts, corrections, spread
  summaries and legs, eliminations, ...), primary key ``idempotency_key`` (``"E:" + ExecID``); a column per
  scalar field of :class:`~dropcopy_client.ExecutionReport`, the delivery and source envelopes, and the inner
  FIX message as ``bytea``.
* ``dropcopy_events``: every other durable event (order mass action reports, order cancel rejects, business
  message rejects, unknown inner messages, ``MessageError``, and ``UnrecoverableGap``: numbers declared lost,
  so a risk database sees them too): envelope columns, the whole event as ``jsonb`` (``payload``, the form of
  :func:`~dropcopy_client._serialize.event_to_dict`) and the FIX message (a lost number's offending frame).
* ``dropcopy_positions``: ``batch.positions`` upserted by (account, security_id, trade_date).
* ``dropcopy_cursors``: ``(name, last_id, updated_at)``: the journal id of the last batch committed.
* ``dropcopy_schema``: which of these tables this library created, and at which layout version.

Objects without an ``idempotency_key`` (anything that is not a journaled event) have no table: they are
skipped and the cursor still moves past them. A batch at or below the stored cursor was committed already (the
acknowledgement of its commit was lost): it is not written again.
"""

from __future__ import annotations

import enum
import logging
import operator
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import attrs

try:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.types.json import Jsonb
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the PostgreSQL sink needs psycopg 3: pip install 'dropcopy-client[postgres]'") from exc

from dropcopy_client._messages import ExecutionReport, Group, Wire
from dropcopy_client._serialize import event_to_dict, fix_message_of, plain
from dropcopy_client.errors import SinkError
from dropcopy_client.positions import Position
from dropcopy_client.sinks._base import Batch
from dropcopy_client.sinks._dsn import redact_dsn, scrub

__all__ = ["SCHEMA_VERSION", "PostgresSink", "execution_report_columns"]

log = logging.getLogger(__name__)

#: layout version of the tables, recorded in ``dropcopy_schema``; bumped by an incompatible change
SCHEMA_VERSION = 1
VERSION_TABLE = "dropcopy_schema"
Method = Literal["copy", "executemany"]


@attrs.frozen
class Column:
    """A table column: its name, SQL type (with constraints) and how to get its value from an event."""

    name: str
    type: str
    get: Callable[[Any], Any]


def _enum_name(value: enum.Enum | None) -> str | None:
    return None if value is None else value.name


def _json(value: Any) -> Jsonb:
    return Jsonb(plain(value))


def _attr(name: str) -> Callable[[Any], Any]:
    def get(event: Any) -> Any:
        return getattr(event, name)

    get.__name__ = f"get_{name}"
    return get


def _nested(outer: str, name: str) -> Callable[[Any], Any]:
    def get(event: Any) -> Any:
        return getattr(getattr(event, outer), name)

    return get


def _converted(get: Callable[[Any], Any], convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda event: convert(get(event))


_WIRE_TYPES = {
    Wire.STRING: "text",
    Wire.INT: "bigint",
    Wire.PRICE: "numeric",
    Wire.BOOLEAN: "boolean",
    Wire.UTC_TIMESTAMP: "timestamptz",
    Wire.LOCAL_MKT_DATE: "date",
}
_ENVELOPE_FIELDS = frozenset({"delivery", "source", "raw", "inner", "warnings"})


def _payload_columns() -> list[Column]:
    """A column per payload field of ExecutionReport, typed from its FIX wire type (the attrs metadata)."""
    columns = []
    for field in attrs.fields(ExecutionReport):
        if field.name in _ENVELOPE_FIELDS:
            continue
        wire = field.metadata.get("wire")
        get = _attr(field.name)
        required = " NOT NULL" if field.default is attrs.NOTHING else ""
        if "ns_of" in field.metadata:
            columns.append(Column(field.name, "bigint", get))
        elif isinstance(wire, Wire):
            columns.append(Column(field.name, _WIRE_TYPES[wire] + required, get))
        elif isinstance(wire, Group):
            columns.append(Column(field.name, "jsonb NOT NULL DEFAULT '[]'", _converted(get, _json)))
        elif isinstance(wire, type) and issubclass(wire, enum.Enum):
            columns.append(Column(field.name, "text" + required, _converted(get, _enum_name)))
        else:  # pragma: no cover - a new kind of field: fail at import, not at the first fill
            raise TypeError(f"ExecutionReport.{field.name}: no PostgreSQL type for {wire!r}")
    return columns


def _delivery_columns() -> list[Column]:
    d = "delivery"
    return [
        Column("group_name", "text NOT NULL", _nested(d, "group")),
        Column("session", "text NOT NULL", _nested(d, "session")),
        Column("target", "text NOT NULL", _nested(d, "target")),
        Column("segment", "text NOT NULL", _nested(d, "segment")),
        Column("seq_num", "bigint NOT NULL", _nested(d, "seq_num")),
        Column("poss_dup", "boolean NOT NULL", _nested(d, "poss_dup")),
        Column("poss_resend", "boolean NOT NULL", _nested(d, "poss_resend")),
        Column("orig_sending_time", "timestamptz", _nested(d, "orig_sending_time")),
        Column("sending_time", "timestamptz NOT NULL", _nested(d, "sending_time")),
        Column("received_at", "timestamptz NOT NULL", _nested(d, "received_at")),
        Column("uncertain", "boolean NOT NULL", _nested(d, "uncertain")),
    ]


def _source_columns() -> list[Column]:
    s = "source"
    return [
        Column("source_sender_comp_id", "text NOT NULL", _nested(s, "sender_comp_id")),
        Column("source_operator", "text", _nested(s, "operator")),
        Column("source_segment", "text", _nested(s, "segment")),
        Column("source_seq_num", "bigint", _nested(s, "seq_num")),
        Column("source_sending_time", "timestamptz", _nested(s, "sending_time")),
        Column("source_location", "text", _nested(s, "location")),
    ]


def _type_name(event: object) -> str:
    return type(event).__name__


def _key_columns() -> list[Column]:
    return [
        Column("idempotency_key", "text PRIMARY KEY", _attr("idempotency_key")),
        Column("journal_id", "bigint NOT NULL", _attr("journal_id")),
        Column("event_type", "text NOT NULL", _type_name),
    ]


def execution_report_columns() -> list[Column]:
    """The columns of the execution report table, in table order (``written_at`` is left to its default)."""
    return [
        *_key_columns(),
        *_delivery_columns(),
        *_source_columns(),
        *_payload_columns(),
        Column("warnings", "text[] NOT NULL DEFAULT '{}'", _converted(_attr("warnings"), list)),
        Column("inner_message", "bytea NOT NULL", _attr("inner")),
    ]


def _maybe(outer: str, name: str) -> Callable[[Any], Any]:
    def get(event: Any) -> Any:
        return getattr(getattr(event, outer, None), name, None)

    return get


def _event_columns() -> list[Column]:
    return [
        *_key_columns(),
        Column("group_name", "text", _maybe("delivery", "group")),
        Column("session", "text", lambda e: _maybe("delivery", "session")(e) or getattr(e, "session", None)),
        Column("seq_num", "bigint", _maybe("delivery", "seq_num")),
        Column("poss_dup", "boolean", _maybe("delivery", "poss_dup")),
        Column("poss_resend", "boolean", _maybe("delivery", "poss_resend")),
        Column("sending_time", "timestamptz", _maybe("delivery", "sending_time")),
        Column("received_at", "timestamptz", _maybe("delivery", "received_at")),
        Column("transact_time", "timestamptz", lambda e: getattr(e, "transact_time", None)),
        Column("payload", "jsonb NOT NULL", lambda e: Jsonb(event_to_dict(e))),
        Column("fix_message", "bytea", fix_message_of),
    ]


def _position_columns() -> list[Column]:
    return [
        Column("account", "text NOT NULL", _attr("account")),
        Column("security_id", "text NOT NULL", _attr("security_id")),
        Column("trade_date", "date", _attr("trade_date")),
        Column("symbol", "text", _attr("symbol")),
        Column("security_desc", "text", _attr("security_desc")),
        Column("bought_qty", "bigint NOT NULL", _attr("bought_qty")),
        Column("sold_qty", "bigint NOT NULL", _attr("sold_qty")),
        Column("net_qty", "bigint NOT NULL", _attr("net_qty")),
        Column("avg_open_px", "numeric", _attr("avg_open_px")),
        Column("realized_pnl", "numeric NOT NULL", _attr("realized_pnl")),
        Column("buy_notional", "numeric NOT NULL", _attr("buy_notional")),
        Column("sell_notional", "numeric NOT NULL", _attr("sell_notional")),
        Column("fill_count", "bigint NOT NULL", _attr("fill_count")),
        Column("busts", "bigint NOT NULL", _attr("busts")),
        Column("corrections", "bigint NOT NULL", _attr("corrections")),
        Column("last_fill_time", "timestamptz", _attr("last_fill_time")),
        Column("multiplier", "numeric", _attr("multiplier")),
        Column("uncertain", "boolean NOT NULL", _attr("uncertain")),
    ]


ER_COLUMNS = execution_report_columns()
EVENT_COLUMNS = _event_columns()
POSITION_COLUMNS = _position_columns()
_WRITTEN_AT = "written_at timestamptz NOT NULL DEFAULT now()"
#: positions are unique per (account, security_id, trade date); a book not split by date has NULL dates
_POSITION_KEY = "account, security_id, (COALESCE(trade_date, 'infinity'::date))"


def _rows(columns: Sequence[Column], events: Iterable[object]) -> list[tuple[Any, ...]]:
    """Rows by the columns' getters: the reference for every table (and the only way for events)."""
    getters = [column.get for column in columns]
    return [tuple(get(event) for get in getters) for event in events]


_EMPTY_GROUP = Jsonb([])


def _report_row_maker() -> Callable[[Any], tuple[Any, ...]]:
    """A faster equivalent of ``_rows(ER_COLUMNS, ...)`` for one report (a batch's hot loop): C-level
    attrgetters per envelope, then only the enum and group columns converted. tests/unit checks the two agree."""
    delivery_names = ["group", "session", "target", "segment", "seq_num", "poss_dup", "poss_resend"]
    delivery_names += ["orig_sending_time", "sending_time", "received_at", "uncertain"]
    source_names = ["sender_comp_id", "operator", "segment", "seq_num", "sending_time", "location"]
    payload = _payload_columns()
    fields = {f.name: f for f in attrs.fields(ExecutionReport)}
    enums = [
        i
        for i, c in enumerate(payload)
        if isinstance(fields[c.name].metadata.get("wire"), type)
        and issubclass(fields[c.name].metadata["wire"], enum.Enum)
    ]
    groups = [i for i, c in enumerate(payload) if isinstance(fields[c.name].metadata.get("wire"), Group)]
    get_delivery = operator.attrgetter(*delivery_names)
    get_source = operator.attrgetter(*source_names)
    get_payload = operator.attrgetter(*(c.name for c in payload))

    def row(event: Any) -> tuple[Any, ...]:
        delivery = event.delivery
        values = list(get_payload(event))
        for i in enums:
            value = values[i]
            if value is not None:
                values[i] = value.name
        for i in groups:
            value = values[i]
            values[i] = Jsonb(plain(value)) if value else _EMPTY_GROUP
        return (
            event.idempotency_key,
            delivery.journal_id,
            type(event).__name__,
            *get_delivery(delivery),
            *get_source(event.source),
            *values,
            list(event.warnings),
            event.inner,
        )

    return row


report_row = _report_row_maker()


class PostgresSink:
    """A :class:`~dropcopy_client.sinks.TransactionalSink` writing to PostgreSQL through psycopg 3.

    ``dsn`` is a libpq connection string (``postgresql://user:password@host:5432/db`` or ``host=... ...``);
    it is never logged or shown with its password. ``schema`` qualifies every table (created if missing);
    ``None`` uses the connection's ``search_path``. ``create=True`` creates missing tables and adds missing
    columns (idempotent, safe with several processes starting at once); ``create=False`` only checks they
    exist. ``method`` is how rows go in: ``"copy"`` (COPY into a temporary table, then ``INSERT ... ON
    CONFLICT DO NOTHING``) or ``"executemany"`` (pipelined ``INSERT ... ON CONFLICT DO NOTHING``); see
    docs/performance.md for the measurements behind the default.

    The connection is opened in the constructor (errors show at start-up, not at the first fill) and opened
    again by the next ``write`` after it broke.
    """

    def __init__(
        self,
        dsn: str,
        *,
        name: str = "postgres",
        table: str = "dropcopy_execution_reports",
        events_table: str = "dropcopy_events",
        positions_table: str = "dropcopy_positions",
        cursor_table: str = "dropcopy_cursors",
        schema: str | None = None,
        create: bool = True,
        method: Method = "copy",
        connect_timeout: int = 10,
    ) -> None:
        if not name:
            raise ValueError("a sink needs a name (it names the sink's cursor)")
        if method not in ("copy", "executemany"):
            raise ValueError(f"method {method!r}: expected 'copy' or 'executemany'")
        tables = {"table": table, "events_table": events_table, "positions_table": positions_table}
        tables["cursor_table"] = cursor_table
        for key, value in tables.items():
            if not value or not isinstance(value, str):
                raise ValueError(f"{key} {value!r}: a table name is required")
        if len(set(tables.values())) != len(tables) or VERSION_TABLE in tables.values():
            raise ValueError(f"table names must differ from each other and from {VERSION_TABLE!r}: {tables}")
        self.name = name
        self.table = table
        self.events_table = events_table
        self.positions_table = positions_table
        self.cursor_table = cursor_table
        self.schema = schema
        self.method: Method = method
        self._dsn = dsn
        self._where = redact_dsn(dsn)
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._stage_ready: set[str] = set()
        self._sql = _Statements(self)
        conn = self._connection()
        try:
            if create:
                self._create(conn)
            else:
                self._check(conn)
        except psycopg.Error as exc:
            self._drop_connection()
            raise self._error("setting up the tables", exc, self.table) from exc
        except SinkError:
            self._drop_connection()
            raise

    def __repr__(self) -> str:
        where = f", schema={self.schema!r}" if self.schema else ""
        return f"PostgresSink(name={self.name!r}, dsn={self._where!r}, table={self.table!r}{where})"

    # ------------------------------------------------------------------------------------------ the contract
    def write(self, batch: Batch) -> None:
        """Rows, positions and the cursor (``batch.last_id``) in one transaction; raises SinkError if not."""
        reports: list[object] = []
        others: list[object] = []
        for event in batch.events:
            if getattr(event, "idempotency_key", None) is None:
                log.debug("PostgreSQL sink %r: no table for %s; skipped", self.name, type(event).__name__)
                continue
            if getattr(event, "journal_id", None) is None:
                raise SinkError(
                    f"PostgreSQL sink {self.name!r}: a {type(event).__name__} without a journal id cannot be "
                    "written: sinks take journaled events (dropcopy_client.testing.JournalStream makes them)"
                )
            (reports if isinstance(event, ExecutionReport) else others).append(event)
        positions = {(p.account, p.security_id, p.trade_date): p for p in batch.positions}
        with self._lock:
            if self._closed:
                raise SinkError(f"PostgreSQL sink {self.name!r} is closed")
            conn = self._connection()
            table = self.cursor_table  # what the error names: the table of the statement that failed
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(self._sql.lock_cursor, (self.name,))
                    row = cur.fetchone()
                    if row is not None and row[0] >= batch.last_id:
                        log.debug(
                            "PostgreSQL sink %r: batch up to %d already committed (cursor %d)",
                            self.name,
                            batch.last_id,
                            row[0],
                        )
                        return
                    table = self.table
                    if reports:
                        self._insert(cur, "reports", ER_COLUMNS, reports)
                    table = self.events_table
                    if others:
                        self._insert(cur, "events", EVENT_COLUMNS, others)
                    table = self.positions_table
                    if positions:
                        cur.executemany(self._sql.upsert_position, _position_rows(positions.values(), batch))
                    table = self.cursor_table
                    cur.execute(self._sql.set_cursor, (self.name, batch.last_id))
            except psycopg.Error as exc:
                self._stage_ready.clear()  # a rolled-back transaction took the stage tables it created
                if conn.broken or conn.closed:
                    self._drop_connection()
                raise self._error(
                    f"writing journal ids {batch.first_id}..{batch.last_id}", exc, table, retried=True
                ) from exc

    def cursor(self) -> int | None:
        """The ``last_id`` of the last batch committed under this sink's name (None: never written)."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(self._sql.get_cursor, (self.name,))
                    row = cur.fetchone()
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    self._drop_connection()
                raise self._error("reading the cursor", exc, self.cursor_table) from exc
        return None if row is None else int(row[0])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._closed = True
            self._drop_connection()

    # ------------------------------------------------------------------------------------------ rows
    def _insert(
        self, cur: psycopg.Cursor[Any], kind: str, columns: Sequence[Column], events: list[object]
    ) -> None:
        rows = [report_row(e) for e in events] if kind == "reports" else _rows(columns, events)
        if self.method == "executemany":
            cur.executemany(self._sql.insert[kind], rows)
            return
        if kind not in self._stage_ready:
            cur.execute(self._sql.create_stage[kind])
            self._stage_ready.add(kind)
        with cur.copy(self._sql.copy_stage[kind]) as copy:
            copy.set_types(self._sql.copy_types[kind])
            for row in rows:
                copy.write_row(row)
        cur.execute(self._sql.from_stage[kind])

    # ------------------------------------------------------------------------------------------ connection
    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self._drop_connection()
        options: dict[str, Any] = {"autocommit": True}
        try:
            params = conninfo_to_dict(self._dsn)
        except psycopg.Error as exc:
            raise SinkError(
                f"PostgreSQL sink {self.name!r}: the connection string {self._where!r} is not valid "
                f"({scrub(str(exc), self._dsn)}); write it as postgresql://user:password@host:port/dbname"
            ) from None
        if "connect_timeout" not in params:
            options["connect_timeout"] = self._connect_timeout
        if "application_name" not in params:
            options["application_name"] = f"dropcopy_client:{self.name}"[:63]
        try:
            conn = psycopg.connect(self._dsn, **options)
        except psycopg.Error as exc:
            raise SinkError(
                f"PostgreSQL sink {self.name!r}: cannot connect to {self._where} "
                f"({scrub(str(exc), self._dsn).strip()}); check that the server is up, the address and "
                "credentials are right, and pg_hba.conf lets this host in"
            ) from None
        self._conn = conn
        self._stage_ready = set()
        log.info("PostgreSQL sink %r connected to %s", self.name, self._where)
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._stage_ready = set()
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:  # pragma: no cover - closing a broken connection
                log.debug("PostgreSQL sink %r: close failed", self.name, exc_info=True)

    def _error(self, doing: str, exc: psycopg.Error, table: str, *, retried: bool = False) -> SinkError:
        qualified = f"{self.schema}.{table}" if self.schema else table
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            hint = (
                f"grant the sink's user SELECT, INSERT and UPDATE on {qualified} (and CREATE for create=True)"
            )
        elif isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
            hint = "the table or a column is missing: start the sink once with create=True to add it"
        elif isinstance(exc, psycopg.OperationalError):
            hint = "the connection failed: check that the server is up and reachable"
        else:
            hint = "see the PostgreSQL message"
        then = "; the batch will be offered again" if retried else ""
        message = scrub(str(exc).strip(), self._dsn)
        return SinkError(
            f"PostgreSQL sink {self.name!r}: {doing} on {qualified} at {self._where} failed: "
            f"{type(exc).__name__}: {message} ({hint}){then}"
        )

    # ------------------------------------------------------------------------------------------ schema
    def _tables(self) -> list[tuple[str, str, list[str], list[sql.Composed]]]:
        """(kind, table, column definitions, extra statements) of every table this sink writes."""
        s = self._sql
        er = [f"{c.name} {c.type}" for c in ER_COLUMNS] + [_WRITTEN_AT]
        ev = [f"{c.name} {c.type}" for c in EVENT_COLUMNS] + [_WRITTEN_AT]
        pos = [f"{c.name} {c.type}" for c in POSITION_COLUMNS]
        pos += ["journal_id bigint NOT NULL", "updated_at timestamptz NOT NULL DEFAULT now()"]
        cur = [
            "name text PRIMARY KEY",
            "last_id bigint NOT NULL",
            "updated_at timestamptz NOT NULL DEFAULT now()",
        ]
        return [
            ("execution_reports", self.table, er, [s.index(self.table, "journal_id", "journal_id")]),
            ("events", self.events_table, ev, [s.index(self.events_table, "journal_id", "journal_id")]),
            (
                "positions",
                self.positions_table,
                pos,
                [s.index(self.positions_table, "key", _POSITION_KEY, True)],
            ),
            ("cursors", self.cursor_table, cur, []),
        ]

    def _create(self, conn: psycopg.Connection[Any]) -> None:
        s = self._sql
        with conn.transaction(), conn.cursor() as cur:
            # one creator at a time per database: CREATE ... IF NOT EXISTS races with itself otherwise
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('dropcopy_client schema'))")
            if self.schema:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            cur.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, kind text NOT NULL, "
                    "version integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
                ).format(s.ident(VERSION_TABLE))
            )
            for kind, table, definitions, extra in self._tables():
                exists = self._exists(cur, table)
                version = self._version(cur, table, kind, exists)
                if not exists:
                    cur.execute(
                        sql.SQL("CREATE TABLE {} ({})").format(
                            s.ident(table), sql.SQL(", ").join(sql.SQL(d) for d in definitions)
                        )
                    )
                    log.info("PostgreSQL sink %r: created table %s", self.name, s.qualified(table))
                else:
                    self._add_missing_columns(cur, table, definitions)
                for statement in extra:
                    cur.execute(statement)
                if version is None:
                    cur.execute(
                        sql.SQL(
                            "INSERT INTO {} (table_name, kind, version) VALUES (%s, %s, %s) "
                            "ON CONFLICT (table_name) DO NOTHING"
                        ).format(s.ident(VERSION_TABLE)),
                        (table, kind, SCHEMA_VERSION),
                    )

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction(), conn.cursor() as cur:
            has_versions = self._exists(cur, VERSION_TABLE)
            for kind, table, _, _ in self._tables():
                if not self._exists(cur, table):
                    raise SinkError(
                        f"PostgreSQL sink {self.name!r}: table {self._sql.qualified(table)} does not exist at "
                        f"{self._where}; start the sink with create=True (or create it as docs/guides/sinks.md shows)"
                    )
                if has_versions:
                    self._version(cur, table, kind, True, created_here=False)

    def _exists(self, cur: psycopg.Cursor[Any], table: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (self._sql.regclass(table),))
        row = cur.fetchone()
        return bool(row and row[0])

    def _version(
        self, cur: psycopg.Cursor[Any], table: str, kind: str, exists: bool, *, created_here: bool = True
    ) -> int | None:
        cur.execute(
            sql.SQL("SELECT kind, version FROM {} WHERE table_name = %s").format(
                self._sql.ident(VERSION_TABLE)
            ),
            (table,),
        )
        row = cur.fetchone()
        where = f"{self._sql.qualified(table)} at {self._where}"
        if row is None:
            if exists and created_here:
                raise SinkError(
                    f"PostgreSQL sink {self.name!r}: table {where} exists but was not created by "
                    f"dropcopy_client (no row in {VERSION_TABLE}); choose another table name or schema"
                )
            return None
        found_kind, version = str(row[0]), int(row[1])
        if found_kind != kind:
            raise SinkError(
                f"PostgreSQL sink {self.name!r}: table {where} holds {found_kind}, not {kind}; "
                "give each table its own name"
            )
        if version > SCHEMA_VERSION:
            raise SinkError(
                f"PostgreSQL sink {self.name!r}: table {where} has layout version {version}, newer than this "
                f"dropcopy_client knows ({SCHEMA_VERSION}); upgrade dropcopy-client or use another table"
            )
        return version

    def _add_missing_columns(self, cur: psycopg.Cursor[Any], table: str, definitions: list[str]) -> None:
        """Additive migration: a column a newer release added is added to an existing table (nullable)."""
        cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped",
            (self._sql.regclass(table),),
        )
        present = {str(row[0]) for row in cur.fetchall()}
        for definition in definitions:
            column, _, kind = definition.partition(" ")
            if column in present:
                continue
            kind = kind.replace(" PRIMARY KEY", "").replace(" NOT NULL", "")
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                    self._sql.ident(table), sql.Identifier(column), sql.SQL(kind)
                )
            )
            log.info(
                "PostgreSQL sink %r: added column %s to %s", self.name, column, self._sql.qualified(table)
            )


def _position_rows(positions: Iterable[Position], batch: Batch) -> list[tuple[Any, ...]]:
    getters = [column.get for column in POSITION_COLUMNS]
    return [(*(get(p) for get in getters), batch.last_id) for p in positions]


class _Statements:
    """Every SQL statement of one sink, composed once with its (schema-qualified) table names."""

    def __init__(self, sink: PostgresSink) -> None:
        self.schema = sink.schema
        tables = {"reports": sink.table, "events": sink.events_table}
        columns = {"reports": ER_COLUMNS, "events": EVENT_COLUMNS}
        self.insert: dict[str, sql.Composed] = {}
        self.create_stage: dict[str, sql.Composed] = {}
        self.copy_stage: dict[str, sql.Composed] = {}
        self.from_stage: dict[str, sql.Composed] = {}
        self.copy_types: dict[str, list[str]] = {}
        for kind, table in tables.items():
            names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns[kind])
            stage = sql.Identifier("pg_temp", f"dropcopy_stage_{kind}")
            placeholders = sql.SQL(", ").join(sql.Placeholder() * len(columns[kind]))
            self.insert[kind] = sql.SQL(
                "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (idempotency_key) DO NOTHING"
            ).format(self.ident(table), names, placeholders)
            self.create_stage[kind] = sql.SQL(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(sql.Identifier(f"dropcopy_stage_{kind}"), self.ident(table))
            # binary COPY: measured a quarter faster than text COPY here (docs/performance.md, "Sinks")
            self.copy_stage[kind] = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, names)
            self.copy_types[kind] = [c.type.split()[0] for c in columns[kind]]
            self.from_stage[kind] = sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (idempotency_key) DO NOTHING"
            ).format(self.ident(table), names, names, stage)
        position_names = [c.name for c in POSITION_COLUMNS] + ["journal_id"]
        updates = [n for n in position_names if n not in ("account", "security_id", "trade_date")]
        self.upsert_position = sql.SQL(
            "INSERT INTO {} ({}, updated_at) VALUES ({}, now()) ON CONFLICT ({}) DO UPDATE SET {}, updated_at = now()"
        ).format(
            self.ident(sink.positions_table),
            sql.SQL(", ").join(sql.Identifier(n) for n in position_names),
            sql.SQL(", ").join(sql.Placeholder() * len(position_names)),
            sql.SQL(_POSITION_KEY),
            sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in updates
            ),
        )
        cursors = self.ident(sink.cursor_table)
        self.lock_cursor = sql.SQL("SELECT last_id FROM {} WHERE name = %s FOR UPDATE").format(cursors)
        self.get_cursor = sql.SQL("SELECT last_id FROM {} WHERE name = %s").format(cursors)
        self.set_cursor = sql.SQL(
            "INSERT INTO {} (name, last_id, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (name) DO UPDATE SET last_id = EXCLUDED.last_id, updated_at = now()"
        ).format(cursors)

    def ident(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table) if self.schema else sql.Identifier(table)

    def qualified(self, table: str) -> str:
        """``schema.table`` as people read it (messages, logs)."""
        return f"{self.schema}.{table}" if self.schema else table

    def regclass(self, table: str) -> str:
        """The name as to_regclass() takes it (quoted, so any name works)."""
        quoted = '"' + table.replace('"', '""') + '"'
        if self.schema:
            return '"' + self.schema.replace('"', '""') + '".' + quoted
        return quoted

    def index(self, table: str, suffix: str, expression: str, unique: bool = False) -> sql.Composed:
        name = f"{table}_{suffix}"[:63]
        return sql.SQL("CREATE {}INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.SQL("UNIQUE " if unique else ""), sql.Identifier(name), self.ident(table), sql.SQL(expression)
        )
