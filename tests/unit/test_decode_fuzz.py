"""Corrupted input: ``decode`` never raises, and a detectable corruption always becomes a MessageError.

The precise property: a *single defect* (one byte changed, a truncation, a wrong 9 or 212, an injected SOH or
non-ASCII byte, a deleted ``</RTRF>``) without re-fixing lengths and checksums changes either the byte sum or
a declared length, so it must always be a MessageError -- never a normal event built from corrupted bytes.
When the corruption is re-framed on purpose (checksums fixed), the result may be a normal event, and then only
if the copied message itself is intact or was re-framed too.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dropcopy_client._decode import decode
from dropcopy_client._messages import MessageError
from dropcopy_client._wire import data_field, encode, parse_fields, wrap
from tests.unit._message_fixtures import all_fixtures, inner_of, refix

VALID = [fx.outer for fx in all_fixtures()]
valid_messages = st.sampled_from(VALID)


def _check_events(events: Any) -> None:
    """What every decode result must look like, whatever the input."""
    assert isinstance(events, list)
    for event in events:
        if isinstance(event, MessageError):
            assert event.reason and not event.reason.startswith("internal"), event.reason
            assert isinstance(event.raw, bytes)


# ------------------------------------------------------------------------------------------------ corruptions


@st.composite
def single_defects(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(valid message, the same message with exactly one detectable defect)."""
    raw = draw(valid_messages)
    kind = draw(st.sampled_from(["flip", "byte", "truncate", "len9", "len212", "soh", "non_ascii", "close"]))
    if kind == "flip":
        at, bit = draw(st.integers(0, len(raw) - 1)), draw(st.integers(0, 7))
        bad = raw[:at] + bytes([raw[at] ^ (1 << bit)]) + raw[at + 1 :]
    elif kind == "byte":
        at = draw(st.integers(0, len(raw) - 1))
        value = draw(st.integers(0, 255).filter(lambda b: b != raw[at]))
        bad = raw[:at] + bytes([value]) + raw[at + 1 :]
    elif kind == "truncate":
        bad = raw[: draw(st.integers(0, len(raw) - 1))]
    elif kind == "len9":
        declared = int(raw.split(b"\x01")[1][2:])
        bad = raw.replace(
            b"\x019=%d\x01" % declared,
            b"\x019=%d\x01" % draw(st.integers(0, 99999).filter(lambda n: n != declared)),
            1,
        )
    elif kind == "len212":
        declared = int(raw.split(b"\x01212=")[1].split(b"\x01")[0])
        new = draw(st.integers(0, 9999).filter(lambda n: n != declared))
        bad = raw.replace(b"\x01212=%d\x01" % declared, b"\x01212=%d\x01" % new, 1)
    elif kind == "soh":
        at = draw(st.integers(0, len(raw)))
        bad = raw[:at] + b"\x01" + raw[at:]
    elif kind == "non_ascii":
        at = draw(st.integers(0, len(raw)))
        bad = raw[:at] + bytes([draw(st.integers(128, 255))]) + raw[at:]
    else:
        bad = raw.replace(b"</RTRF>", b"", 1)
    return raw, bad


@settings(max_examples=600, deadline=None)
@given(single_defects())
@example((VALID[0], VALID[0][:-1]))
def test_single_defect_without_reframing_is_always_a_message_error(case: tuple[bytes, bytes]) -> None:
    raw, bad = case
    assert bad != raw
    events = decode(bad)
    _check_events(events)
    assert len(events) == 1 and isinstance(events[0], MessageError), events
    assert b"\x01".join(events[0].raw.split(b"\x01")) == events[0].raw  # redaction keeps the framing


def _reframe_outer(original: bytes, xml: bytes) -> bytes:
    """``original``'s outer header around a new 213 value, with 212, 9 and 10 recomputed."""
    header = [(t, v) for t, v in parse_fields(original) if t not in (8, 9, 35, 212, 213, 10)]
    return encode("n", [*header, *data_field(213, xml)])


@st.composite
def inner_defects(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """One byte of the *inner* message changed or inserted; the outer re-framed so it verifies."""
    raw = draw(valid_messages)
    inner = inner_of(raw)
    at = draw(st.integers(0, len(inner) - 1))
    if draw(st.booleans()):
        bad_inner = (
            inner[:at] + bytes([draw(st.integers(0, 255).filter(lambda b: b != inner[at]))]) + inner[at + 1 :]
        )
    else:
        bad_inner = inner[:at] + bytes([draw(st.integers(0, 255))]) + inner[at:]
    return raw, _reframe_outer(raw, wrap(bad_inner))


def test_nul_in_begin_string_escapes_9_and_10_but_not_the_decoder() -> None:
    # 8's value is outside the body (9) and a NUL adds 0 to the byte sum (10): only BeginString itself tells
    raw = VALID[0]
    outer_nul = raw.replace(b"8=FIX", b"8=\x00FIX", 1)
    inner = inner_of(raw)
    inner_nul = _reframe_outer(raw, wrap(inner.replace(b"8=FIX", b"8=\x00FIX", 1)))
    for bad in (outer_nul, inner_nul):
        (event,) = decode(bad)
        assert isinstance(event, MessageError) and "BeginString (8)" in event.reason


@settings(max_examples=400, deadline=None)
@given(inner_defects())
@example((VALID[0], _reframe_outer(VALID[0], wrap(inner_of(VALID[0]).replace(b"8=FIX", b"8=\x00FIX", 1)))))
def test_inner_defect_behind_a_valid_outer_frame_is_always_a_message_error(case: tuple[bytes, bytes]) -> None:
    _, bad = case
    events = decode(bad)
    _check_events(events)
    assert len(events) == 1 and isinstance(events[0], MessageError), events
    assert events[0].delivery is not None  # the outer verified: its sequence number is usable


@st.composite
def reframed_defects(draw: st.DrawFn) -> tuple[bytes, bytes, bool]:
    """One byte of the outer header or of a field value changed, then everything re-framed on purpose."""
    raw = draw(valid_messages)
    inner = inner_of(raw)
    if draw(st.booleans()):  # in the inner message, inner 9/10 and the outer re-framed
        at = draw(st.integers(inner.index(b"\x0135=") + 1, len(inner) - 8))
        new = bytes([draw(st.integers(0, 255).filter(lambda b: b != inner[at]))])
        return raw, _reframe_outer(raw, wrap(refix(inner[:at] + new + inner[at + 1 :]))), True
    start = raw.index(b"\x0135=") + 1
    at = draw(st.integers(start, raw.index(b"\x01212=")))
    new = bytes([draw(st.integers(0, 255).filter(lambda b: b != raw[at]))])
    return raw, refix(raw[:at] + new + raw[at + 1 :]), False


@settings(max_examples=400, deadline=None)
@given(reframed_defects())
def test_reframed_corruption_is_an_error_or_an_event_from_the_bytes_received(
    case: tuple[bytes, bytes, bool],
) -> None:
    raw, bad, inner_changed = case
    events = decode(bad)
    _check_events(events)
    assert len(events) <= 1
    if not events or isinstance(events[0], MessageError):
        return  # e.g. the header now says 35=0 (admin), or a value no longer parses
    event = events[0]
    if inner_changed:
        assert event.inner == inner_of(bad) and event.inner != inner_of(raw)
        assert event.inner.isascii()  # a non-ASCII byte can never reach an event
    else:  # the copied message, untouched -- or, when 35 itself changed, the outer taken as the payload
        assert event.inner in (inner_of(raw), bad)


@st.composite
def garbage(draw: st.DrawFn) -> bytes:
    """Several random edits at once: no promise about the outcome except that nothing is raised."""
    raw = bytearray(draw(valid_messages))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "set"]))
        at = draw(st.integers(0, len(raw)))
        end = min(len(raw), at + draw(st.integers(0, 40)))
        if op == "delete":
            del raw[at:end]
        elif op == "duplicate":
            raw[at:at] = raw[at:end]
        elif op == "insert":
            raw[at:at] = draw(
                st.sampled_from([b"\x01", b"=", b"\xff", b"<RTRF>", b"</RTRF>", b"212=5\x01", b"10=000\x01"])
            )
        elif at < len(raw):
            raw[at] = draw(st.integers(0, 255))
    return bytes(raw)


@settings(max_examples=400, deadline=None)
@given(garbage() | st.binary(max_size=300))
@example(b"")
@example(b"8=FIX.4.2\x019=5\x0135=n\x0110=000\x01")
@example(b"\x80" * 10)
def test_decode_never_raises(data: bytes) -> None:
    _check_events(decode(data))
    _check_events(decode(data.decode("latin-1")))
