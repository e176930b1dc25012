"""Raw drop copy messages -> typed events, and back (for simulators, property tests and benchmarks).

One table drives both directions. At import time every model class's attrs metadata (tag, wire type)
becomes a :class:`_Table`: tag -> attribute name and tag -> converter. Decoding a message is then: verify the
outer frame (:func:`~dropcopy_client._wire.parse_frame`), slice 213 and unwrap it, verify the inner frame (its
own 9 and 10), split the inner fields once, pick the class from 35 (and for 35=8 from 39 + 20), convert the
present tags through the table and create the event in one step. There is no per-tag code.

Why it is shaped for speed: every business message of every session goes through here on one dispatcher
thread. The inner fields are split by C-level bulk operations when the message is regular (it nearly always
is); anything unusual -- a repeated tag, a repeating group, ``=`` inside a value, a data field -- takes the
ordered path, which is slower but equally exact. Converted values are memoised where they repeat (prices,
quantities, dates, the second of a timestamp). ``raw`` is computed from ``inner`` on first access.

Two implementations, one result. This module is the pure-Python decoder and the definition of what decoding
gives. ``_cdecode.pyx``, compiled by Cython when the package is installed, is a fast path for the common case (a
regular wrapped business message, ~10x faster): it converts with this module's tables and hands everything
else back to the functions here, so errors and edge cases are decided in one place.
``tests/unit/test_decode_implementations.py`` checks that both give identical events. :data:`IMPLEMENTATION`
says which one :func:`decode` is ("compiled" or "python"); ``DROPCOPY_PURE_PYTHON=1`` in the environment forces
the pure-Python one, and it is used automatically (with one DEBUG log line) when the extension cannot be
imported.

:func:`decode` never raises for bad input: whatever cannot be decoded becomes a
:class:`~dropcopy_client._messages.MessageError` event naming the reason. :func:`decode_strict` raises
:class:`~dropcopy_client.errors.DecodeError` instead. Neither ever carries a secret (raw bytes are redacted).
"""

from __future__ import annotations

import datetime as dt
import logging
import operator
import os
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from types import ModuleType
from typing import Any, Literal, NamedTuple, NoReturn

import attrs

from dropcopy_client._enums import ExecTransType, ExecType, FixEnum, OrdStatus
from dropcopy_client._messages import (
    BusinessEvent,
    BusinessMessageReject,
    CancelAck,
    Delivery,
    Event,
    ExecutionReport,
    Fill,
    Group,
    MessageError,
    ModifyAck,
    OrderAck,
    OrderCancelReject,
    OrderElimination,
    OrderMassActionReport,
    OrderRejected,
    PendingCancel,
    PendingReplace,
    Source,
    TradeBust,
    TradeCorrection,
    UnknownMessage,
    Wire,
)
from dropcopy_client._wire import FrameError, checksum, data_field, encode, parse_frame, redact, unwrap, wrap
from dropcopy_client._wire.codec import LENGTH_TAGS
from dropcopy_client.errors import DecodeError

__all__ = ["IMPLEMENTATION", "decode", "decode_strict", "encode_report", "wrap_outer"]

_log = logging.getLogger(__name__)
_UTC = dt.UTC
_call = operator.call
_ADMIN_TYPES = frozenset({b"0", b"1", b"2", b"3", b"4", b"5", b"A"})
_BEGIN_STRING = b"FIX.4.2"

# ------------------------------------------------------------------------------------------------ converters
# Each takes the wire text and returns the typed value, raising ValueError / LookupError on bad input.


class _Memo(dict[str, Any]):
    """A converter that remembers results: C-speed lookups for values that repeat (prices, qtys, dates)."""

    def __init__(self, parse: Callable[[str], Any], limit: int = 50_000, max_key: int = 32) -> None:
        super().__init__()
        self._parse = parse
        self._limit = limit
        self._max_key = max_key

    def __missing__(self, text: str) -> Any:
        value = self._parse(text)
        if len(self) < self._limit and len(text) <= self._max_key:
            self[text] = value
        return value


def _parse_int(text: str) -> int:
    if text.isascii() and (text.isdigit() or (text[:1] == "-" and text[1:].isdigit())):
        return int(text)
    raise ValueError("expected an integer")


_PRICE = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)", re.ASCII)


def _parse_price(text: str) -> Decimal:
    if _PRICE.fullmatch(text) is None:
        raise ValueError("expected a decimal number")
    return Decimal(text)


def _parse_date(text: str) -> dt.date:
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        raise ValueError("expected a LocalMktDate YYYYMMDD")
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))


_SECONDS: dict[str, tuple[int, int, int, int, int, int, int]] = {}
_SECONDS_LIMIT = 4096
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_TIMESTAMP_HELP = "expected a UTCTimestamp YYYYMMDD-HH:MM:SS[.fraction]"


def _second(text: str) -> tuple[int, int, int, int, int, int, int]:
    """Fields and epoch second of ``YYYYMMDD-HH:MM:SS``; memoised (many messages share a second)."""
    if (
        len(text) != 17
        or text[8] != "-"
        or text[11] != ":"
        or text[14] != ":"
        or not text.isascii()
        or not (text[:8] + text[9:11] + text[12:14] + text[15:]).isdigit()
    ):
        raise ValueError(_TIMESTAMP_HELP)
    parts = (int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]), int(text[12:14]), int(text[15:]))
    epoch = (dt.datetime(*parts, tzinfo=_UTC) - _EPOCH) // dt.timedelta(seconds=1)
    if len(_SECONDS) >= _SECONDS_LIMIT:
        _SECONDS.clear()
    value = _SECONDS[text] = (*parts, epoch)
    return value


def _parse_timestamp_ns(text: str) -> tuple[dt.datetime, int]:
    """UTCTimestamp -> (datetime with microseconds, exact integer nanoseconds since the epoch).

    Callers pass ASCII text (the decoder checks every message first), so ``isdigit`` means 0-9.
    """
    base = _SECONDS.get(text[:17]) or _second(text[:17])
    size = len(text)
    if size == 21 and text[17] == "." and text[18:].isdigit():  # CME's form: milliseconds
        frac = int(text[18:]) * 1_000_000
    elif size == 17:
        frac = 0
    elif 18 < size <= 27 and text[17] == "." and text[18:].isdigit() and text.isascii():
        frac = int(text[18:]) * 10 ** (27 - size)
    else:
        raise ValueError(_TIMESTAMP_HELP)
    year, month, day, hour, minute, second, epoch = base
    moment = dt.datetime(year, month, day, hour, minute, second, frac // 1000, _UTC)
    return moment, epoch * 1_000_000_000 + frac


def _parse_timestamp(text: str) -> dt.datetime:
    return _parse_timestamp_ns(text)[0]


class _EnumLookup(dict[str, Any]):
    """Wire value -> member, unknown values -> pseudo-members (see :mod:`dropcopy_client._enums`)."""

    def __init__(self, enum_cls: type[FixEnum]) -> None:
        super().__init__((m.value, m) for m in enum_cls)
        self._enum = enum_cls

    def __missing__(self, text: str) -> FixEnum:
        return self._enum(text)


_BOOLEANS = {"Y": True, "N": False}
_INTS = _Memo(_parse_int, max_key=9)  # quantities repeat; 19-digit RequestTimes do not
_PRICES = _Memo(_parse_price)
_DATES = _Memo(_parse_date)

_WIRE_HELP = {
    Wire.INT: "expected an integer",
    Wire.PRICE: "expected a decimal number",
    Wire.BOOLEAN: "expected Y or N",
    Wire.UTC_TIMESTAMP: _TIMESTAMP_HELP,
    Wire.LOCAL_MKT_DATE: "expected a LocalMktDate YYYYMMDD",
}


#: integer tags that differ in every message: memoising them would only cost a miss each time
_UNIQUE_INTS = frozenset({34, 45, 5979})


_ENUM_LOOKUPS: dict[type[FixEnum], _EnumLookup] = {}


def _converter(tag: int, wire: Any, with_ns: bool) -> Callable[[str], Any]:
    if isinstance(wire, type) and issubclass(wire, FixEnum):
        lookup = _ENUM_LOOKUPS.get(wire) or _ENUM_LOOKUPS.setdefault(wire, _EnumLookup(wire))
        return lookup.__getitem__
    converters: dict[Wire, Callable[[str], Any]] = {
        Wire.STRING: str,
        Wire.INT: _parse_int if tag in _UNIQUE_INTS else _INTS.__getitem__,
        Wire.PRICE: _PRICES.__getitem__,
        Wire.BOOLEAN: _BOOLEANS.__getitem__,
        Wire.UTC_TIMESTAMP: _parse_timestamp_ns if with_ns else _parse_timestamp,
        Wire.LOCAL_MKT_DATE: _DATES.__getitem__,
    }
    return converters[wire]


# ------------------------------------------------------------------------------------------------ tables


class _Spec(NamedTuple):
    """One tagged attrs field, as the decoder and encoder see it."""

    tag: int
    key: str  # str(tag): inner fields are looked up by their wire text
    name: str
    fix_name: str
    wire: Any  # Wire | type[FixEnum] | Group
    convert: Callable[[str], Any]
    ns_name: str | None  # the companion field holding exact nanoseconds (timestamps)
    required: bool


class _Plan(NamedTuple):
    """How to convert messages of one shape (see :meth:`_Table.convert`)."""

    fetch: Callable[[dict[str, str]], tuple[str, ...]]
    names: tuple[str, ...]
    converters: tuple[Callable[[str], Any], ...]
    absent: _Spec | None  # a required field this shape lacks


_PLAN_LIMIT = 1024  # shapes remembered per table; odd messages beyond that are planned each time


class _GroupSpec(NamedTuple):
    spec: _Spec
    table: _Table
    member_keys: frozenset[str]


class _Table:
    """Everything needed to decode and encode one model class, built once from its attrs metadata."""

    def __init__(self, cls: type[Any], *, lazy_raw: bool = False, entry: bool = False) -> None:
        self.cls = cls
        #: group entries keep their field order on the wire (the first is FIX's delimiter); events sort by tag
        self.entry = entry
        fields = attrs.fields(cls)
        ns_of = {a.metadata["ns_of"]: a.name for a in fields if "ns_of" in a.metadata}
        specs: list[_Spec] = []
        for a in fields:
            if "tag" not in a.metadata:
                continue
            tag, wire = a.metadata["tag"], a.metadata["wire"]
            ns_name = ns_of.get(tag)
            convert = str if isinstance(wire, Group) else _converter(tag, wire, ns_name is not None)
            required = a.default is attrs.NOTHING
            specs.append(
                _Spec(tag, str(tag), a.name, a.metadata["fix_name"], wire, convert, ns_name, required)
            )
        self.specs = tuple(specs)
        self.groups = {
            s.key: _GroupSpec(s, _Table(s.wire.entry, entry=True), _member_keys(s.wire))
            for s in specs
            if isinstance(s.wire, Group)
        }
        scalars = [s for s in specs if not isinstance(s.wire, Group)]
        self.keys = frozenset(s.key for s in scalars)
        self.names = {s.key: s.name for s in scalars}
        self.converters = {s.key: s.convert for s in scalars}
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self.timestamps = tuple((s.name, s.ns_name) for s in scalars if s.ns_name is not None)
        self.required = tuple(s for s in specs if s.required)
        self.by_key = {s.key: s for s in specs}
        skip = {"raw"} if lazy_raw else set()
        self.defaults = {
            a.name: a.default for a in fields if a.default is not attrs.NOTHING and a.name not in skip
        }

    def convert(
        self, values: dict[str, str], where: str, shape: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Typed attribute values for the tags of this class present in ``values``.

        ``shape`` (the tags present, in order) selects a cached plan: which values to fetch, their attribute
        names and converters, and whether a required tag is absent. Messages of one kind share a handful of
        shapes, so the per-message work is one C-level pass: fetch, convert, zip into a dict.
        """
        shape = tuple(values) if shape is None else shape
        plan = self._plans.get(shape) or self._plan(shape)
        if plan.absent is not None:
            raise _Fail(f"{where} has no {plan.absent.tag} {plan.absent.fix_name}")
        try:
            converted = dict(zip(plan.names, map(_call, plan.converters, plan.fetch(values)), strict=True))
        except (ValueError, LookupError, ArithmeticError):
            self._explain(values, where)
        for name, ns_name in self.timestamps:
            if name in converted:
                converted[name], converted[ns_name] = converted[name]
        return converted

    def _plan(self, shape: tuple[str, ...]) -> _Plan:
        keys = tuple(key for key in shape if key in self.keys)
        fetch: Callable[[dict[str, str]], tuple[str, ...]]
        if len(keys) > 1:
            fetch = operator.itemgetter(*keys)
        elif keys:
            only = keys[0]
            fetch = lambda values: (values[only],)  # noqa: E731 -- itemgetter of one key returns no tuple
        else:
            fetch = lambda values: ()  # noqa: E731
        absent = next((spec for spec in self.required if spec.key not in shape), None)
        plan = _Plan(
            fetch, tuple(self.names[key] for key in keys), tuple(self.converters[key] for key in keys), absent
        )
        if len(self._plans) < _PLAN_LIMIT:
            self._plans[shape] = plan
        return plan

    def _explain(self, values: dict[str, str], where: str) -> NoReturn:
        """Re-run the conversion field by field to name the tag and value that failed."""
        for spec in self.specs:
            text = values.get(spec.key)
            if text is None or isinstance(spec.wire, Group):
                continue
            try:
                spec.convert(text)
            except (ValueError, LookupError, ArithmeticError) as exc:
                help_ = _WIRE_HELP.get(spec.wire) or str(exc) or "bad value"
                raise _Fail(
                    f"{where}: {spec.tag} {spec.fix_name} has a bad value {text[:40]!r}: {help_}"
                ) from None
        raise _Fail(f"{where}: a field has a bad value")  # unreachable: the bulk pass failed on one of them

    def build(self, converted: dict[str, Any], **extra: Any) -> Any:
        """An instance without ``__init__``: the values are converted already (see _messages' docstring)."""
        obj = object.__new__(self.cls)
        object.__setattr__(obj, "__dict__", {**self.defaults, **converted, **extra})
        return obj


def _member_keys(group: Group) -> frozenset[str]:
    tags = {a.metadata["tag"] for a in attrs.fields(group.entry) if "tag" in a.metadata} | set(
        group.extra_tags
    )
    return frozenset(str(t) for t in tags)


_DELIVERY = _Table(Delivery)
_SOURCE = _Table(Source)
#: spec §4.2: 39 OrdStatus -> (variant, the 20 ExecTransType it requires, or None for any)
_VARIANTS: dict[OrdStatus, tuple[type[ExecutionReport], ExecTransType | None]] = {
    OrdStatus.NEW: (OrderAck, ExecTransType.NEW),
    OrdStatus.PARTIALLY_FILLED: (Fill, ExecTransType.NEW),
    OrdStatus.FILLED: (Fill, ExecTransType.NEW),
    OrdStatus.CANCELED: (CancelAck, None),
    OrdStatus.REPLACED: (ModifyAck, None),
    OrdStatus.EXPIRED: (OrderElimination, None),
    OrdStatus.REJECTED: (OrderRejected, None),
    OrdStatus.TRADE_CANCEL: (TradeBust, ExecTransType.CANCEL),
    OrdStatus.TRADE_CORRECTION: (TradeCorrection, ExecTransType.CORRECT),
    OrdStatus.PENDING_CANCEL: (PendingCancel, None),
    OrdStatus.PENDING_REPLACE: (PendingReplace, None),
}
#: 150 ExecType values consistent with each 39 OrdStatus (FIX convention; spec §8 leaves H/G unconfirmed)
_EXEC_TYPES: dict[OrdStatus, frozenset[str]] = {status: frozenset({status.value}) for status in OrdStatus} | {
    OrdStatus.PARTIALLY_FILLED: frozenset({"1", ExecType.TRADE.value}),
    OrdStatus.FILLED: frozenset({"2", ExecType.TRADE.value}),
}


_ER_CLASSES: tuple[type[ExecutionReport], ...] = (
    ExecutionReport,
    *dict.fromkeys(cls for cls, _ in _VARIANTS.values()),
)
_TABLES: dict[type[Any], _Table] = {
    cls: _Table(cls, lazy_raw=True)
    for cls in (*_ER_CLASSES, OrderMassActionReport, OrderCancelReject, BusinessMessageReject, UnknownMessage)
}
_BASE_REQUIRED = frozenset(spec.key for spec in _TABLES[ExecutionReport].required)
#: what a variant requires beyond the ExecutionReport base: a Fill's price, quantity, side, instrument, ...
#: (checked once the variant is known; a message without one is a MessageError naming the tag)
_VARIANT_REQUIRED: dict[type[ExecutionReport], tuple[_Spec, ...]] = {
    cls: extra
    for cls in _ER_CLASSES
    if (extra := tuple(spec for spec in _TABLES[cls].required if spec.key not in _BASE_REQUIRED))
}
#: inner 35 -> the table that converts it (every ExecutionReport variant shares the base's fields)
_BY_MSG_TYPE: dict[str, _Table] = {
    "8": _TABLES[ExecutionReport],
    "BZ": _TABLES[OrderMassActionReport],
    "9": _TABLES[OrderCancelReject],
    "j": _TABLES[BusinessMessageReject],
}
_MSG_NAMES = {
    "8": "ExecutionReport (35=8)",
    "BZ": "OrderMassActionReport (35=BZ)",
    "9": "OrderCancelReject (35=9)",
    "j": "BusinessMessageReject (35=j)",
}


def _variant(converted: dict[str, Any]) -> tuple[type[ExecutionReport], list[str]]:
    """The ExecutionReport class by 39 + 20, and warnings for what does not fit (never an error)."""
    status: OrdStatus = converted["ord_status"]
    trans: ExecTransType | None = converted.get("exec_trans_type")
    warnings: list[str] = []
    cls: type[ExecutionReport] = ExecutionReport
    variant = _VARIANTS.get(status)
    if variant is None:
        warnings.append(f"39 OrdStatus {status.value!r} is none of the drop copy variants")
    else:
        cls, wanted = variant
        if wanted is not None and trans is not wanted:
            if trans is None:
                warnings.append(f"20 ExecTransType absent; classified by 39 OrdStatus {status.value!r} alone")
            else:
                warnings.append(
                    f"39 OrdStatus {status.value!r} with 20 ExecTransType {trans.value!r} matches no variant"
                )
                cls = ExecutionReport
    exec_type: ExecType | None = converted.get("exec_type")
    if exec_type is not None and exec_type.value not in _EXEC_TYPES.get(status, (status.value,)):
        warnings.append(f"150 ExecType {exec_type.value!r} does not match 39 OrdStatus {status.value!r}")
    return cls, warnings


# ------------------------------------------------------------------------------------------------ decoding


class _Fail(Exception):
    """Internal: why a message cannot be decoded; becomes a MessageError (or a DecodeError)."""

    def __init__(self, reason: str, delivery: Delivery | None = None, inner: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delivery = delivery
        self.inner = inner


def decode(
    raw: bytes | str,
    *,
    group: str = "",
    session: str | None = None,
    received_at: dt.datetime | None = None,
    uncertain: bool = False,
    journal_id: int | None = None,
    replayed: bool = False,
) -> list[Event]:
    """The events of one raw outer message (SOH-delimited). Never raises for bad input.

    35=n: the copied message inside 213 becomes one event. A business message that arrives unwrapped
    (35=8/9/j/BZ as the outer type) is decoded directly. Admin messages give ``[]``. Anything that cannot be
    decoded gives ``[MessageError(...)]`` with a specific reason. ``session`` defaults to
    ``"<outer 56>:<outer 50>"``; ``received_at`` to now. ``journal_id`` and ``replayed`` are stamped on the
    events' delivery (and on a MessageError) when the message is read back from the journal.
    """
    data = raw if type(raw) is bytes else _as_bytes(raw)
    try:
        return _decode(data, group, session, received_at, uncertain, journal_id, replayed)
    except _Fail as fail:
        return [_error(data, fail.reason, fail.delivery, fail.inner, journal_id, replayed)]
    except Exception as exc:  # a decoder bug must not stop the stream: it is reported as an event instead
        reason = f"internal decoder error: {type(exc).__name__}: {exc}"
        return [_error(data, reason, None, None, journal_id, replayed)]


def decode_strict(
    raw: bytes | str,
    *,
    group: str = "",
    session: str | None = None,
    received_at: dt.datetime | None = None,
    uncertain: bool = False,
) -> list[BusinessEvent]:
    """Like :func:`decode`, but raises :class:`~dropcopy_client.errors.DecodeError` (raw redacted)."""
    data = _as_bytes(raw)
    try:
        return _decode(data, group, session, received_at, uncertain)  # type: ignore[return-value]
    except _Fail as fail:
        raise DecodeError(fail.reason, redact(data)) from None


def _as_bytes(raw: bytes | str) -> bytes:
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return bytes(raw)


def _error(
    data: bytes,
    reason: str,
    delivery: Delivery | None,
    inner: bytes | None,
    journal_id: int | None = None,
    replayed: bool = False,
) -> MessageError:
    return MessageError(
        reason=reason,
        raw=redact(data),
        delivery=delivery,
        inner=None if inner is None else redact(inner),
        journal_id=journal_id,
        replayed=replayed,
    )


def _decode(
    data: bytes,
    group: str,
    session: str | None,
    received_at: dt.datetime | None,
    uncertain: bool = False,
    journal_id: int | None = None,
    replayed: bool = False,
) -> list[Event]:
    try:
        outer = parse_frame(data)
    except FrameError as exc:
        raise _Fail(f"outer message: {exc}") from None
    if outer[0][1] != _BEGIN_STRING:
        raise _Fail(f"outer message: BeginString (8) is {outer[0][1][:20]!r}, not FIX.4.2")
    header = dict(outer)
    msg_type = header[35]
    if msg_type in _ADMIN_TYPES:
        return []
    delivery = _delivery(header, group, session, received_at, uncertain, journal_id, replayed)
    if msg_type != b"n":
        return [_payload(data, delivery, unwrapped=True)]
    xml = header.get(213)
    if xml is None:
        raise _Fail("35=n has no 213 XMLData", delivery)
    try:
        inner = unwrap(xml)
    except FrameError as exc:
        raise _Fail(exc.reason, delivery) from None
    return [_payload(inner, delivery, unwrapped=False)]


def _delivery(
    header: dict[int, bytes],
    group: str,
    session: str | None,
    received_at: dt.datetime | None,
    uncertain: bool = False,
    journal_id: int | None = None,
    replayed: bool = False,
) -> Delivery:
    try:
        values = {key: header[tag].decode("ascii") for tag, key in _DELIVERY_TAGS if tag in header}
    except UnicodeDecodeError:
        raise _Fail("outer message: a header field has a non-ASCII value") from None
    converted = _DELIVERY.convert(values, "outer message")
    converted["group"] = group
    converted["session"] = (
        session if session is not None else f"{converted['target']}:{converted.get('segment', '')}"
    )
    converted["received_at"] = received_at if received_at is not None else dt.datetime.now(_UTC)
    converted["uncertain"] = uncertain
    converted["journal_id"] = journal_id
    converted["replayed"] = replayed
    delivery: Delivery = _DELIVERY.build(converted)
    return delivery


_DELIVERY_TAGS = tuple((int(key), key) for key in sorted(_DELIVERY.keys, key=int))


def _payload(inner: bytes, delivery: Delivery, *, unwrapped: bool) -> BusinessEvent:
    """Decode the copied iLink message (or, ``unwrapped``, an outer business message itself)."""
    where = "message" if unwrapped else "inner message"
    if not inner.startswith(b"8=FIX.4.2\x01"):  # 9 and 10 do not cover 8's value: check it
        begin = inner[2 : inner.find(b"\x01")] if inner.startswith(b"8=") else inner[:20]
        raise _Fail(f"{where}: BeginString (8) is {begin[:20]!r}, not FIX.4.2", delivery, inner)
    if not inner.isascii():
        offset = next(i for i, byte in enumerate(inner) if byte > 127)
        raise _Fail(f"{where} has a non-ASCII byte 0x{inner[offset]:02x} at offset {offset}", delivery, inner)
    try:
        values, shape, ordered = _split(inner)
    except FrameError as exc:
        raise _Fail(f"{where}: {exc}", delivery, inner) from None
    msg_type = values["35"]
    table = _BY_MSG_TYPE.get(msg_type)
    name = _MSG_NAMES.get(msg_type, where)
    groups: dict[str, tuple[Any, ...]] = {}
    warnings: list[str] = []
    try:
        if table is not None and table.groups and not values.keys().isdisjoint(table.groups):
            ordered = ordered or _pairs(inner)
        if ordered is not None:
            values, groups, warnings = _ordered(ordered, table, name)
            shape = tuple(values)
        source = _SOURCE.convert(values, f"{where} header", shape)
        envelope = {"delivery": delivery, "source": _SOURCE.build(source), "inner": inner}
        if table is None:
            return _TABLES[UnknownMessage].build({"msg_type": msg_type}, **envelope)  # type: ignore[no-any-return]
        converted = table.convert(values, name, shape)
        converted.update(groups)
        if table is _BY_MSG_TYPE["8"]:
            cls, more = _variant(converted)
            for spec in _VARIANT_REQUIRED.get(cls, ()):
                if spec.name not in converted:
                    status = converted["ord_status"].value
                    raise _Fail(
                        f"{name}: a {cls.__name__} (39={status}) without {spec.tag} {spec.fix_name}, which "
                        f"every {cls.__name__} carries"
                    )
            warnings += more
            table = _TABLES[cls]
        return table.build(converted, warnings=tuple(warnings), **envelope)  # type: ignore[no-any-return]
    except _Fail as fail:
        raise _Fail(fail.reason, delivery, inner) from None


_DELIMITERS_ONLY = bytes(b for b in range(256) if b not in b"=\x01")  # bytes.translate deletes these
_LENGTH_KEYS = frozenset(str(t) for t in LENGTH_TAGS)


def _split(inner: bytes) -> tuple[dict[str, str], tuple[str, ...], list[tuple[str, str]] | None]:
    """Frame-check a message and split it: (tag -> value, the tags in order, the fields when order matters).

    Fast path for a regular frame: SOH -> ``=`` and one split gives tag, value, tag, value, ... The result is
    exactly what :func:`~dropcopy_client._wire.parse_frame` would give; anything it cannot vouch for (a
    repeated tag, a data field, a tag with a leading zero) is handed to ``parse_frame`` itself, which raises
    the precise FrameError or returns the fields.
    """
    if _regular_frame(inner):
        tokens = inner.decode("ascii").replace("\x01", "=").split("=")
        pairs = iter(tokens)
        values = dict(zip(pairs, pairs, strict=False))  # the odd last token (after the final SOH) is dropped
        shape = tuple(values)
        if len(shape) * 2 + 1 == len(tokens) and (shape in _PLAIN_SHAPES or _plain(shape)):
            return values, shape, None
    fields = parse_frame(inner)
    ordered = [(str(tag), value.decode("ascii")) for tag, value in fields]
    values = dict(ordered)
    return values, tuple(values), ordered


_PLAIN_SHAPES: set[tuple[str, ...]] = set()


def _plain(shape: tuple[str, ...]) -> bool:
    """Every tag a plain FIX tag number (no leading zero) and none a length tag (memoised per shape)."""
    plain = all(key.isdigit() and key[0] != "0" for key in shape) and _LENGTH_KEYS.isdisjoint(shape)
    if plain and len(_PLAIN_SHAPES) < _PLAN_LIMIT:
        _PLAIN_SHAPES.add(shape)
    return plain


def _regular_frame(data: bytes) -> bool:
    """8, 9, 35 first, 10 last, right BodyLength and CheckSum, one ``=`` per field (so no data fields)."""
    if data[-8:-4] != b"\x0110=" or data[-1:] != b"\x01" or data[:2] != b"8=":
        return False
    first = data.find(b"\x01")
    second = data.find(b"\x01", first + 1)
    if data[first + 1 : first + 3] != b"9=" or data[second + 1 : second + 4] != b"35=":
        return False
    length = data[first + 3 : second]
    sent = data[-4:-1]
    if not (length.isdigit() and sent.isdigit()) or int(length) != len(data) - 7 - second - 1:
        return False
    if int(sent) != checksum(data[:-7]):
        return False
    delimiters = data.translate(None, _DELIMITERS_ONLY)
    return delimiters.count(b"=\x01") * 2 == len(delimiters)


def _pairs(data: bytes) -> list[tuple[str, str]]:
    tokens = data.decode("ascii").replace("\x01", "=").split("=")
    pairs = iter(tokens)
    return list(zip(pairs, pairs, strict=False))


def _ordered(
    pairs: list[tuple[str, str]], table: _Table | None, where: str
) -> tuple[dict[str, str], dict[str, tuple[Any, ...]], list[str]]:
    """Top-level values (first occurrence wins), repeating groups, and warnings, walking fields in order."""
    values: dict[str, str] = {}
    groups: dict[str, tuple[Any, ...]] = {}
    warnings: list[str] = []
    typed = table.by_key if table is not None else {}
    i = 0
    while i < len(pairs):
        key, text = pairs[i]
        i += 1
        group = table.groups.get(key) if table is not None else None
        if group is None:
            if key not in values:
                values[key] = text
            elif key in typed:
                warnings.append(f"{key} {typed[key].fix_name} repeated; the first value is used")
            continue
        spec = group.spec
        try:
            count = _parse_int(text)
        except ValueError:
            raise _Fail(
                f"{where}: {spec.tag} {spec.fix_name} has a bad value {text[:40]!r}: expected an integer"
            ) from None
        first_tag = pairs[i][0] if i < len(pairs) else ""
        entries, i, stray = _read_group(pairs, i, group, where)
        if (
            stray
        ):  # FIX: every entry begins with the delimiter; re-encoded, these would merge with the one before
            numbers = ", ".join(str(n) for n in stray)
            warnings.append(
                f"{spec.tag} {spec.fix_name} entry {numbers} does not start with {first_tag}, the group's first field"
            )
        if spec.name in groups:
            warnings.append(f"{spec.tag} {spec.fix_name} repeated; the first group is used")
            continue
        if len(entries) != count:
            warnings.append(f"{spec.tag} {spec.fix_name} says {count} entries, found {len(entries)}")
        groups[spec.name] = tuple(entries)
    return values, groups, warnings


def _read_group(
    pairs: list[tuple[str, str]], i: int, group: _GroupSpec, where: str
) -> tuple[list[Any], int, list[int]]:
    """Entries from ``pairs[i:]`` while tags belong to the group; an entry restarts at its first tag or a
    repeated one. Also the 1-based numbers of entries that restarted at a repeated tag other than the first."""
    entries: list[Any] = []
    current: list[tuple[str, str]] = []
    seen: set[str] = set()
    stray: list[int] = []
    delimiter = None
    while i < len(pairs) and pairs[i][0] in group.member_keys:
        key = pairs[i][0]
        if current and (key == delimiter or key in seen):
            entries.append(_entry(current, group.table, where))
            current, seen = [], set()
            if key != delimiter:
                stray.append(len(entries) + 1)
        delimiter = delimiter or key
        current.append(pairs[i])
        seen.add(key)
        i += 1
    if current:
        entries.append(_entry(current, group.table, where))
    return entries, i, stray


def _entry(fields: list[tuple[str, str]], table: _Table, where: str) -> Any:
    converted = table.convert(dict(fields), where)
    return table.build(converted, raw=tuple((int(key), text) for key, text in fields))


# ------------------------------------------------------------------------------------------------ encoding


def encode_report(event: BusinessEvent) -> bytes:
    """The inner FIX message for ``event``, written from the field metadata (with correct 9 and 10).

    The inverse of decoding for the model: typed fields only, body tags in ascending order (as CME sends
    them), header 34, 52, 49=CME, 50, 56, 57, 143 from ``event.source``. An UnknownMessage is returned as
    received (``inner``).
    """
    if isinstance(event, UnknownMessage):
        if not event.inner:
            raise ValueError("an UnknownMessage without inner bytes cannot be encoded")
        return event.inner
    table = _TABLES.get(type(event))
    msg_type = next((t for t, tbl in _BY_MSG_TYPE.items() if isinstance(event, tbl.cls)), None)
    if table is None or msg_type is None:
        raise TypeError(f"cannot encode {type(event).__name__}")
    header = dict(_encode_fields(event.source, _SOURCE))
    header[49] = "CME"
    fields: list[tuple[int, str | bytes | int]] = [
        (tag, header[tag]) for tag in _HEADER_ORDER if tag in header
    ]
    fields.extend(_encode_fields(event, table))
    return encode(msg_type, fields)


_HEADER_ORDER = (34, 52, 49, 50, 56, 57, 143)  # as in CME's payloads (spec §3.3 example)


def _encode_fields(obj: Any, table: _Table) -> Iterable[tuple[int, str]]:
    for spec in table.specs if table.entry else sorted(table.specs, key=lambda s: s.tag):
        value = getattr(obj, spec.name)
        if value is None:
            continue
        if isinstance(spec.wire, Group):
            if not value:
                continue
            yield spec.tag, str(len(value))
            entry_table = table.groups[spec.key].table
            untyped = spec.wire.extra_tags
            for entry in value:
                yield from _entry_fields(entry, entry_table, untyped)
            continue
        ns = getattr(obj, spec.ns_name) if spec.ns_name is not None else None
        yield spec.tag, _format(spec.wire, value, ns)


def _entry_fields(entry: Any, table: _Table, untyped: frozenset[int]) -> list[tuple[int, str]]:
    """One group entry's fields: in the order they were received (``raw``) when it was decoded, so its first
    field -- FIX's delimiter, which decides where entries start -- is the one it arrived with; typed fields
    not received (an entry built or changed in Python) follow in model order."""
    fields = [*_encode_fields(entry, table), *((tag, text) for tag, text in entry.raw if tag in untyped)]
    position: dict[int, int] = {}
    for index, (tag, _) in enumerate(entry.raw):
        position.setdefault(tag, index)
    return sorted(fields, key=lambda field: position.get(field[0], len(position)))


def _format(wire: Any, value: Any, ns: int | None) -> str:
    if isinstance(value, FixEnum):
        return value.value
    if wire is Wire.BOOLEAN:
        return "Y" if value else "N"
    if wire is Wire.PRICE:
        if not value.is_finite():
            raise ValueError(f"cannot encode price {value}")
        return format(value, "f")
    if wire is Wire.UTC_TIMESTAMP:
        return _format_timestamp(value, ns)
    if wire is Wire.LOCAL_MKT_DATE:
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    return str(value)


def _format_timestamp(value: dt.datetime, ns: int | None) -> str:
    """UTCTimestamp with milliseconds (CME's format), or 6/9 digits when the value needs them."""
    if ns is None:
        if value.tzinfo is None:
            raise ValueError("naive datetime: drop copy timestamps are UTC, pass tzinfo=datetime.UTC")
        value = value.astimezone(_UTC)
        ns = (value.replace(tzinfo=None) - _EPOCH.replace(tzinfo=None)) // dt.timedelta(microseconds=1) * 1000
    seconds, frac = divmod(ns, 1_000_000_000)
    t = _EPOCH + dt.timedelta(seconds=seconds)
    # not strftime("%Y"): glibc writes year 224 as "224", which no UTCTimestamp parser reads back
    base = f"{t.year:04d}{t.month:02d}{t.day:02d}-{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}"
    if frac % 1000 == 0:
        return f"{base}.{frac // 1000:06d}"
    return f"{base}.{frac:09d}"


def wrap_outer(
    inner: bytes,
    *,
    seq_num: int,
    target: str,
    segment: str,
    sending_time: dt.datetime,
    operator: str = "",
    location: str = "",
    poss_dup: bool = False,
    poss_resend: bool = False,
    orig_sending_time: dt.datetime | None = None,
) -> bytes:
    """A CME-style outer 35=n carrying ``inner`` (spec §3.2/§3.3): 49=CME, 212/213 ``<RTRF>``, own 9 and 10.

    ``operator`` and ``location`` echo the client's 50 and 142 as 57 and 143 (omitted when empty).
    """
    fields: list[tuple[int, str | bytes | int]] = [(34, seq_num)]
    if poss_dup:
        fields.append((43, "Y"))
    if poss_resend:
        fields.append((97, "Y"))
    fields.append((52, _format_timestamp(sending_time, None)))
    if orig_sending_time is not None:
        fields.append((122, _format_timestamp(orig_sending_time, None)))
    fields += [(49, "CME"), (50, segment), (56, target)]
    if operator:
        fields.append((57, operator))
    if location:
        fields.append((143, location))
    fields += data_field(213, wrap(inner))
    return encode("n", fields)


# ------------------------------------------------------------------------------------------------ implementation
# decode() and decode_strict() above are the pure-Python decoder: the definition of the results, and the
# fallback. The compiled fast path (_cdecode.pyx, built by Cython at install time) takes the common case --
# a regular wrapped business message -- and hands everything else to them, so both give identical events.

#: the pure-Python decoder, whichever implementation ``decode`` is
python_decode = decode
python_decode_strict = decode_strict

#: field kinds of the compiled decoder's tables (the same numbering as in _cdecode.pyx)
_KINDS: dict[Any, int] = {
    Wire.STRING: 0,
    Wire.INT: 1,
    Wire.PRICE: 2,
    Wire.BOOLEAN: 3,
    Wire.UTC_TIMESTAMP: 4,  # 5 with a nanosecond companion
    Wire.LOCAL_MKT_DATE: 6,
}
_KIND_ENUM, _KIND_GROUP = 7, 8
_MEMOS: dict[Any, _Memo] = {Wire.PRICE: _PRICES, Wire.LOCAL_MKT_DATE: _DATES}


def _describe(table: _Table, *, variants: bool = False) -> dict[str, Any]:
    """One table as the compiled decoder takes it: class, defaults, and per tag (tag, attribute name, kind,
    memo or enum lookup, nanosecond companion, required)."""
    fields = []
    for spec in table.specs:
        wire = spec.wire
        aux: Any = None
        if isinstance(wire, Group):
            kind = _KIND_GROUP
        elif isinstance(wire, type) and issubclass(wire, FixEnum):
            kind, aux = _KIND_ENUM, _ENUM_LOOKUPS[wire]
        else:
            kind = _KINDS[wire] + (spec.ns_name is not None)
            aux = _MEMOS.get(wire)
        fields.append((spec.tag, spec.name, kind, aux, spec.ns_name, spec.required))
    return {"cls": table.cls, "defaults": table.defaults, "variants": variants, "fields": fields}


_CONFIGURED: list[ModuleType] = []


def compiled_decoder() -> ModuleType:
    """The compiled decoder module, configured (once) with this module's tables and fallbacks.

    Raises ImportError when the extension was not built. ``decode`` uses it unless ``DROPCOPY_PURE_PYTHON``
    is set; tests and the benchmark call this directly to compare both implementations in one process.
    """
    if _CONFIGURED:
        return _CONFIGURED[0]
    import dropcopy_client._cdecode as _cdecode

    _cdecode.configure(
        fallback=python_decode,
        fallback_strict=python_decode_strict,
        tables={
            "delivery": _describe(_DELIVERY),
            "source": _describe(_SOURCE),
            "unknown": _describe(_TABLES[UnknownMessage]),
            **{
                msg_type: _describe(table, variants=table is _BY_MSG_TYPE["8"])
                for msg_type, table in _BY_MSG_TYPE.items()
            },
        },
        by_msg_type={msg_type: msg_type for msg_type in _BY_MSG_TYPE},
        delivery="delivery",
        source="source",
        unknown="unknown",
        variant=_variant,
        variant_required={
            cls: tuple(spec.name for spec in specs) for cls, specs in _VARIANT_REQUIRED.items()
        },
        length_tags=tuple(LENGTH_TAGS),
        utc=_UTC,
        now=dt.datetime.now,
    )
    # one text for help(): the Python functions' docstrings are the documentation of both
    _cdecode.decode.__doc__ = python_decode.__doc__
    _cdecode.decode_strict.__doc__ = python_decode_strict.__doc__
    _CONFIGURED.append(_cdecode)
    return _cdecode


def _pure_python_forced() -> bool:
    return os.environ.get("DROPCOPY_PURE_PYTHON", "").strip() not in ("", "0")


#: which decoder ``decode`` is: "compiled" (the Cython extension) or "python" (the pure-Python fallback)
IMPLEMENTATION: Literal["compiled", "python"] = "python"

if _pure_python_forced():
    _log.debug("DROPCOPY_PURE_PYTHON is set: using the pure-Python decoder")
else:
    try:
        _compiled = compiled_decoder()
    except ImportError as exc:
        _log.debug("compiled decoder not available (%s): using the pure-Python decoder", exc)
    else:
        decode = _compiled.decode
        decode_strict = _compiled.decode_strict
        IMPLEMENTATION = "compiled"
