"""One JSON-ready form of every event, shared by the CLI (``dropcopy run --json``) and the sinks.

:func:`event_to_dict` turns an event into plain ``dict``/``list``/``str``/``int``/``bool``/``None`` values:

* ``Decimal`` -> its exact string (``"4500.25"``, never a float);
* ``datetime`` -> ISO-8601 (events carry tz-aware UTC datetimes: ``"2026-12-01T14:30:00.123456+00:00"``);
  ``date`` -> ``"YYYY-MM-DD"``;
* enums -> their name (``"BUY"``, ``"FILLED"``);
* ``bytes`` -> ASCII text, anything else escaped as ``\\xNN``;
* nested attrs objects (``Delivery``, ``Source``, group entries) -> nested dicts; tuples -> lists.

Every event has it as a method too: ``event.to_dict()`` (the :class:`ToDict` base).

The first key is ``type`` (the class name); a durable event also gets ``journal_id``, ``idempotency_key``
and ``replayed`` at the top level, so a reader never has to know where each class keeps them. The wire
copies (``raw`` tags and the ``inner`` message) are left out unless ``fix_message=True``, which adds the
FIX message as ``fix_message``: the inner message of a business event, or the (redacted) outer message of a
``MessageError``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

__all__ = ["ToDict", "event_to_dict", "fix_message_of", "plain"]

#: top-level keys event_to_dict adds to a durable event (when the event has them)
STREAM_KEYS = ("journal_id", "idempotency_key", "replayed")
_WIRE_FIELDS = frozenset({"raw", "inner"})
_FIELDS: dict[type[Any], tuple[str, ...]] = {}
_EVENT_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(f.name for f in attrs.fields(cls) if f.repr is not False)
        _FIELDS[cls] = names
    return names


def _event_field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _EVENT_FIELDS.get(cls)
    if names is None:
        names = tuple(name for name in _field_names(cls) if name not in _WIRE_FIELDS)
        _EVENT_FIELDS[cls] = names
    return names


def _text(value: bytes) -> str:
    return value.decode("ascii", "backslashreplace")


_SCALARS: dict[type[Any], Callable[[Any], Any]] = {
    str: lambda v: v,
    int: lambda v: v,
    bool: lambda v: v,
    float: lambda v: v,
    type(None): lambda v: v,
    Decimal: str,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    bytes: _text,
}


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docstring); unknown objects are returned as they are."""
    convert = _SCALARS.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if attrs.has(type(value)):
        return _fields(value, _field_names(type(value)))
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetime subclasses and dates
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return _text(bytes(value))
    return value


def _fields(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name)
        kind = type(value)
        # most fields are already plain: skip the call (this loop is a JSON Lines sink's hot path)
        data[name] = value if value is None or kind is str or kind is int or kind is bool else plain(value)
    return data


def event_to_dict(event: object, *, fix_message: bool = False) -> dict[str, Any]:
    """A JSON-ready dict of ``event``: ``type``, its fields, and ``journal_id``/``idempotency_key``/``replayed``.

    Works for any object: an attrs event (business events, ``MessageError``, ``UnrecoverableGap``, session
    events, positions) gives its fields; anything else ``{"type": ..., "value": repr(event)}``.
    """
    cls = type(event)
    data: dict[str, Any] = {"type": cls.__name__}
    if attrs.has(cls):
        data.update(_fields(event, _event_field_names(cls)))
    else:
        data["value"] = repr(event)
    for key in STREAM_KEYS:
        if key not in data:
            value = getattr(event, key, _MISSING)
            if value is _MISSING or (key == "idempotency_key" and str(value) == "J:None"):
                # a "J:" key names a journal row: an event not journaled yet has none
                continue
            data[key] = value
    if fix_message:
        message = fix_message_of(event)
        if message is not None:
            data["fix_message"] = _text(message)
    return data


def fix_message_of(event: object) -> bytes | None:
    """The FIX message an event came from: a business event's inner message, a MessageError's whole (redacted)
    outer message, the frame an UnrecoverableGap gave up on (when one frame was the cause); else None."""
    from dropcopy_client._messages import MessageError
    from dropcopy_client._recovery import UnrecoverableGap

    whole = isinstance(event, MessageError | UnrecoverableGap)
    message = getattr(event, "raw" if whole else "inner", None)
    return message if isinstance(message, bytes) and message else None


_MISSING: Any = object()


class ToDict:
    """Gives every event ``to_dict()``: :func:`event_to_dict`, the form ``dropcopy run --json`` prints.

    A base of the event classes (business events, ``MessageError``, recovery, session and client events).
    This module imports no event module at import time, so they can all depend on it.
    """

    __slots__ = ()

    def to_dict(self, *, fix_message: bool = False) -> dict[str, Any]:
        """This event as JSON-ready data: ``type``, its fields, ``journal_id``/``idempotency_key``/``replayed``
        (for a journaled event); Decimals as exact strings, datetimes ISO-8601, enums by name. With
        ``fix_message=True`` also the FIX message it came from (secrets redacted)."""
        return event_to_dict(self, fix_message=fix_message)
