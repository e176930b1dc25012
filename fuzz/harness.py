"""What must hold for any input: one check per fuzz target, shared by atheris (``make fuzz``) and the seeded
budget in ``make test`` (tests/unit/test_fuzz_budget.py).

Each ``check_*`` takes arbitrary bytes and returns normally, or raises: an ``AssertionError`` for a broken
invariant, any other exception for a crash. Documented failures (``FrameError`` from the codec,
``DecodeError`` from ``decode_strict``) are part of the contract and are caught here.

* codec: ``parse_fields`` returns ``(tag > 0, bytes)`` pairs that re-serialise to a message parsing to the
  same pairs, or raises ``FrameError``; its fast path never disagrees with the reference parser;
  ``parse_frame`` accepts only what ``parse_fields`` accepts, with 8/9/35 first, 10 last, BodyLength and
  CheckSum right, and a canonical frame re-encodes byte for byte; ``FrameReader`` cuts the same frames
  whatever the TCP segmentation, and accounts for every byte (frames + discarded + buffered = fed).
* unwrap: returns the inner message with ``wrap(inner) == value`` and no RTRF tag inside, or ``FrameError``.
* decode: ``decode`` never raises; a ``MessageError`` names a reason (never an internal error) and carries
  exactly ``redact(input)``; ``decode_strict`` agrees with it (same events, or ``DecodeError`` with the same
  reason and redacted raw); a decoded business event encodes, wraps and decodes back to the same typed values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs

from dropcopy_client._decode import decode, decode_strict, encode_report, wrap_outer
from dropcopy_client._messages import Group, MessageError, UnknownMessage
from dropcopy_client._wire import FrameError, FrameReader, checksum, encode, parse_fields, parse_frame, redact
from dropcopy_client._wire.codec import SOH, _parse_fast, _parse_fields_reference
from dropcopy_client._wire.rtrf import RTRF_CLOSE, RTRF_OPEN, unwrap, wrap
from dropcopy_client.errors import DecodeError

Check = Callable[[bytes], None]
_RECEIVED = dt.datetime(2024, 3, 11, tzinfo=dt.UTC)


# ------------------------------------------------------------------------------------------------ codec


def _serialise(fields: list[tuple[int, bytes]]) -> bytes:
    return b"".join(b"%d=%s\x01" % (tag, value) for tag, value in fields)


def _reference(data: bytes) -> list[tuple[int, bytes]] | FrameError:
    try:
        return _parse_fields_reference(data)
    except FrameError as exc:
        return exc


def check_parse_fields(data: bytes) -> list[tuple[int, bytes]] | None:
    reference = _reference(data)
    fast = _parse_fast(data) if data.endswith(SOH) else None
    if fast is not None:
        assert fast == reference, f"fast path {fast!r} disagrees with the reference {reference!r}"
    try:
        fields = parse_fields(data)
    except FrameError as exc:
        assert isinstance(exc.reason, str) and exc.reason
        assert exc.offset is None or 0 <= exc.offset <= len(data), exc.offset
        assert isinstance(reference, FrameError), "parse_fields refused what the reference parser accepts"
        return None
    assert fields == reference
    assert all(type(tag) is int and tag > 0 and type(value) is bytes for tag, value in fields)
    again = _serialise(fields)
    assert len(again) <= len(data)  # only leading zeros of tags can go
    assert parse_fields(again) == fields, "re-serialised fields parse differently"
    return fields


def check_parse_frame(data: bytes, fields: list[tuple[int, bytes]] | None) -> None:
    try:
        frame = parse_frame(data)
    except FrameError as exc:
        assert exc.reason
        return
    assert fields is not None and frame == fields, "parse_frame accepted what parse_fields refused"
    assert [tag for tag, _ in frame[:3]] == [8, 9, 35] and frame[-1][0] == 10
    trailer = len(data) - len(frame[-1][1]) - 4
    assert int(frame[-1][1]) == checksum(data[:trailer])
    begin, msg_type = frame[0][1], frame[2][1]
    canonical = _serialise(frame) == data and frame[1][1] == b"%d" % int(frame[1][1])
    if canonical and begin.isascii() and msg_type.isascii():
        rebuilt = encode(msg_type.decode("ascii"), frame[3:-1], begin.decode("ascii"))
        assert rebuilt == data, "a canonical frame does not re-encode to itself"


def _segments(data: bytes) -> list[bytes]:
    """Cut ``data`` at points chosen from its own bytes (deterministic, different for every input)."""
    out, start = [], 0
    for i, byte in enumerate(data):
        if byte % 7 == 0 and i > start:
            out.append(data[start:i])
            start = i
    out.append(data[start:])
    return out


def _read_all(chunks: list[bytes]) -> tuple[list[bytes], FrameReader]:
    reader = FrameReader(max_body=4096)
    frames: list[bytes] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (frame := reader.next_message()) is not None:
            frames.append(frame)
    return frames, reader


def check_frame_reader(data: bytes) -> None:
    whole, reader = _read_all([data])
    assert sum(map(len, whole)) + reader.discarded + reader.buffered == len(data), "bytes lost or invented"
    for frame in whole:
        assert frame.startswith(b"8=FIX") and frame.endswith(SOH) and frame[-7:-4] == b"10="
    pieces, _ = _read_all(_segments(data))
    assert pieces == whole, "frames depend on how the stream was segmented"
    bytewise, _ = _read_all([data[i : i + 1] for i in range(min(len(data), 256))])
    prefix, _ = _read_all([data[:256]])
    assert bytewise == prefix, "frames depend on how the stream was segmented (byte by byte)"


def check_codec(data: bytes) -> None:
    check_parse_frame(data, check_parse_fields(data))
    check_frame_reader(data)


# ------------------------------------------------------------------------------------------------ unwrap


def check_unwrap(data: bytes) -> None:
    try:
        inner = unwrap(data)
    except FrameError as exc:
        assert exc.reason
        return
    assert wrap(inner) == data
    assert RTRF_OPEN not in inner and RTRF_CLOSE not in inner


# ------------------------------------------------------------------------------------------------ decode


def _typed(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in attrs.fields(type(obj)):
        if "tag" not in field.metadata and "ns_of" not in field.metadata:
            continue
        value = getattr(obj, field.name)
        if isinstance(field.metadata.get("wire"), Group):
            value = [_typed(entry) for entry in value]
        out[field.name] = value
    return out


def _round_trip(event: Any) -> None:
    inner = encode_report(event)
    if RTRF_OPEN in inner or RTRF_CLOSE in inner:
        return  # e.g. an unknown outer type taken whole as the payload: it cannot be wrapped again (by design)
    (again,) = decode(wrap_outer(inner, seq_num=1, target="T", segment="G", sending_time=_RECEIVED))
    assert not isinstance(again, MessageError), f"re-encoded event does not decode: {again.reason}"
    assert type(again) is type(event)
    if isinstance(event, UnknownMessage):
        assert again.inner == event.inner
        return
    assert _typed(again) == _typed(event), "typed values changed in the round trip"
    assert again.source == event.source
    assert encode_report(again) == inner


def check_decode(data: bytes) -> None:
    events = decode(data, received_at=_RECEIVED)
    assert isinstance(events, list) and len(events) <= 1
    errors = [e for e in events if isinstance(e, MessageError)]
    for error in errors:
        assert error.reason and not error.reason.startswith("internal"), error.reason
        assert error.raw == redact(data), "MessageError.raw is not the redacted input"
        assert redact(error.raw) == error.raw
        assert error.inner is None or redact(error.inner) == error.inner
    try:
        strict = decode_strict(data, received_at=_RECEIVED)
    except DecodeError as exc:
        assert len(errors) == 1, "decode_strict refused what decode accepted"
        assert exc.reason == errors[0].reason and exc.raw == errors[0].raw
    else:
        assert not errors, "decode_strict accepted what decode refused"
        assert [type(e) for e in strict] == [type(e) for e in events]
    for event in events:
        if not isinstance(event, MessageError):
            assert event.delivery is not None
            _round_trip(event)
    # a str (as a log line or a journal might hold it) must not break decode either
    for text_event in decode(data.decode("latin-1")):
        if isinstance(text_event, MessageError):
            assert not text_event.reason.startswith("internal"), text_event.reason


TARGETS: dict[str, Check] = {"codec": check_codec, "unwrap": check_unwrap, "decode": check_decode}
