"""The compiled decoder and the pure-Python decoder give identical results, on everything.

Identical means: the same number of events, the same classes, ``==`` equal, and field by field the same type
and repr (so ``Decimal("1.50")`` vs ``Decimal("1.5")``, a naive datetime or an enum pseudo-member would show),
the same ``raw``, ``inner``, ``warnings``, ``delivery`` and ``source``, and for undecodable input the same
MessageError reason. Inputs: every fixture, a few thousand messages of the benchmark stream, Hypothesis-built
events, corrupted messages, and hand-made cases at every boundary where the compiled fast path hands over to
the Python decoder.

This file never skips: when the compiled extension cannot be imported it fails, saying the build did not
produce it (``make test`` must exercise both implementations).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dropcopy_client._decode as decoding
from bench._stream import Stream
from dropcopy_client._decode import encode_report, wrap_outer
from dropcopy_client._messages import ExecutionReport, Fill, MessageError
from dropcopy_client._wire import encode, wrap
from dropcopy_client.errors import DecodeError
from tests.unit._message_fixtures import all_fixtures, encode_inner, encode_outer, fixture, inner_of, refix
from tests.unit.test_decode_fuzz import garbage, inner_defects, reframed_defects, single_defects
from tests.unit.test_decode_properties import deliveries, events

UTC = dt.UTC
RECEIVED = dt.datetime(2024, 3, 11, 14, 31, 6, 123456, tzinfo=UTC)
FIXTURES = all_fixtures()


def _load_compiled() -> ModuleType:
    try:
        return decoding.compiled_decoder()
    except ImportError as exc:
        pytest.fail(
            "the compiled decoder dropcopy_client._cdecode cannot be imported: the build did not produce it "
            f"({exc}). Reinstall with a C compiler and Python headers (`make clean && make test`, or "
            "`pip install -e '.[dev]'`) and check pip's output for the Cython build of _cdecode.pyx.",
            pytrace=False,
        )


COMPILED: ModuleType | None = None


def compiled() -> ModuleType:
    global COMPILED
    if COMPILED is None:
        COMPILED = _load_compiled()
    return COMPILED


# ------------------------------------------------------------------------------------------------ comparison


def _shape(value: Any) -> Any:
    """A value as (type, repr) all the way down: equal only if built alike, not merely ``==``."""
    if attrs.has(type(value)):
        return (
            type(value),
            tuple((a.name, _shape(getattr(value, a.name))) for a in attrs.fields(type(value))),
        )
    if isinstance(value, tuple):
        return (tuple, tuple(_shape(v) for v in value))
    return (type(value), repr(value))


def assert_same(got: list[Any], want: list[Any]) -> None:
    """``got`` (compiled) is exactly ``want`` (pure Python)."""
    assert len(got) == len(want), (got, want)
    for a, b in zip(got, want, strict=True):
        assert type(a) is type(b), (a, b)
        if isinstance(b, MessageError):
            assert a.reason == b.reason
            assert (a.raw, a.inner, a.delivery) == (b.raw, b.inner, b.delivery)
            assert (a.journal_id, a.replayed) == (b.journal_id, b.replayed)
            assert _shape(a) == _shape(b)
            continue
        assert a == b
        assert a.raw == b.raw and a.inner == b.inner and a.warnings == b.warnings
        assert a.delivery == b.delivery and a.source == b.source
        assert _shape(a) == _shape(b)
        assert vars(a).keys() == vars(b).keys()  # the same attributes set (raw read on both by now)
        assert (a.journal_id, a.replayed, a.idempotency_key) == (b.journal_id, b.replayed, b.idempotency_key)


def check(raw: Any, **kwargs: Any) -> list[Any]:
    """Decode with both implementations, assert identical results, return them (``raw``: bytes, str, or
    anything else ``decode`` accepts at run time, e.g. a bytearray)."""
    kwargs.setdefault("received_at", RECEIVED)
    want = decoding.python_decode(raw, **kwargs)
    got: list[Any] = compiled().decode(raw, **kwargs)
    assert_same(got, want)
    return got


def fast(raw: bytes, **kwargs: Any) -> Any:
    """The compiled fast path's own answer (None: it hands the message to the Python decoder)."""
    kwargs.setdefault("received_at", RECEIVED)
    return compiled().decode_fast(raw, **kwargs)


# ------------------------------------------------------------------------------------------------ the build


def test_the_compiled_decoder_was_built_and_decode_uses_it() -> None:
    compiled()  # fails with a clear message when the extension is missing
    forced = os.environ.get("DROPCOPY_PURE_PYTHON", "").strip() not in ("", "0")
    expected = "python" if forced else "compiled"
    assert expected == decoding.IMPLEMENTATION
    if not forced:
        assert decoding.decode is compiled().decode
        assert decoding.decode_strict is compiled().decode_strict


DECODER_LOGGER = "dropcopy_client._decode DEBUG "


def _decoder_log_in_subprocess(env: dict[str, str], prelude: str = "") -> tuple[str, list[str]]:
    """(IMPLEMENTATION, the decoder's log lines) of a fresh interpreter importing the decoder."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(name)s %(levelname)s %(message)s')\n"
        f"{prelude}\n"
        "import dropcopy_client._decode as d\n"
        "print('IMPLEMENTATION', d.IMPLEMENTATION)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = out.stdout.splitlines()
    assert lines[-1].startswith("IMPLEMENTATION "), lines
    log = [line.removeprefix(DECODER_LOGGER) for line in lines if line.startswith(DECODER_LOGGER)]
    return lines[-1].split()[1], log


def test_environment_variable_forces_the_pure_python_decoder() -> None:
    compiled()
    implementation, log = _decoder_log_in_subprocess({"DROPCOPY_PURE_PYTHON": "1"})
    assert implementation == "python"
    assert log == ["DROPCOPY_PURE_PYTHON is set: using the pure-Python decoder"]
    assert _decoder_log_in_subprocess({"DROPCOPY_PURE_PYTHON": "0"}) == (
        "compiled",
        [],
    )  # silent when all is well


def test_a_missing_extension_falls_back_with_one_debug_line() -> None:
    prelude = (
        "sys.modules['dropcopy_client._cdecode'] = None  # importing it raises ImportError, as if never built"
    )
    implementation, log = _decoder_log_in_subprocess({"DROPCOPY_PURE_PYTHON": ""}, prelude)
    assert implementation == "python"
    assert len(log) == 1 and log[0].startswith("compiled decoder not available ("), log
    assert log[0].endswith("): using the pure-Python decoder")


# ------------------------------------------------------------------------------------------------ fixtures


CALLS: list[dict[str, Any]] = [
    {},
    {"group": "primary", "session": "XYZDEFN:84", "uncertain": True},
    {"journal_id": 41, "replayed": True},
    {"group": "g", "journal_id": 0, "replayed": False, "uncertain": False},
]


@pytest.mark.parametrize("kwargs", CALLS, ids=["defaults", "group-session", "journal", "journal-0"])
@pytest.mark.parametrize("fx", FIXTURES, ids=[fx.name for fx in FIXTURES])
def test_every_fixture_decodes_identically(fx: Any, kwargs: dict[str, Any]) -> None:
    (event,) = check(fx.outer, **kwargs)
    assert not isinstance(event, MessageError), event.reason
    check(fx.outer.decode("ascii"), **kwargs)  # str input (as the engine hands it over)
    check(bytearray(fx.outer), **kwargs)


def test_regular_fixtures_are_taken_by_the_fast_path() -> None:
    """Guards the comparison against passing because everything fell back to the Python decoder."""
    for fx in FIXTURES:
        event = fast(fx.outer, journal_id=3, replayed=True)
        if fx.name in ("fill_brokertec", "mass_action_report"):  # repeating groups: the Python decoder's
            assert event is None
            continue
        if fx.outer_fields is None:  # the verbatim third-party fixture: whatever it holds, it must agree
            continue
        assert event is not None, fx.name
        assert event.delivery.journal_id == 3 and event.delivery.replayed is True
        assert_same(
            [event], decoding.python_decode(fx.outer, received_at=RECEIVED, journal_id=3, replayed=True)
        )


def test_decode_strict_is_identical() -> None:
    for fx in FIXTURES:
        want = decoding.python_decode_strict(fx.outer, group="g", received_at=RECEIVED)
        assert_same(compiled().decode_strict(fx.outer, group="g", received_at=RECEIVED), want)
    bad = fixture("fill_outright").outer[:-2]
    with pytest.raises(DecodeError) as python_error:
        decoding.python_decode_strict(bad)
    with pytest.raises(DecodeError) as compiled_error:
        compiled().decode_strict(bad)
    assert compiled_error.value.reason == python_error.value.reason
    assert compiled_error.value.raw == python_error.value.raw


# ------------------------------------------------------------------------------------------------ bench stream


def test_bench_stream_decodes_identically_and_all_of_it_takes_the_fast_path() -> None:
    stream = Stream()
    frames = [*stream.frames(0, 3000), *stream.frames(7 * len(stream), 500)]
    for index, frame in enumerate(frames):
        kwargs = {"group": "bench", "journal_id": index} if index % 2 else {}
        (event,) = check(frame, **kwargs)
        assert isinstance(event, ExecutionReport), event
        assert fast(frame, **kwargs) is not None, f"frame {index} fell back to the Python decoder"


# ------------------------------------------------------------------------------------------------ hypothesis

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(events(), deliveries(), st.sampled_from(CALLS))
def test_generated_events_decode_identically(
    event: Any, outer: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    raw = wrap_outer(encode_report(event), **outer)
    check(raw, **kwargs)


@_SETTINGS
@given(single_defects())
def test_single_defects_give_identical_errors(case: tuple[bytes, bytes]) -> None:
    check(case[1])


@_SETTINGS
@given(inner_defects())
def test_inner_defects_give_identical_errors(case: tuple[bytes, bytes]) -> None:
    check(case[1], journal_id=9)


@_SETTINGS
@given(reframed_defects())
def test_reframed_corruption_decodes_identically(case: tuple[bytes, bytes, bool]) -> None:
    check(case[1])


@_SETTINGS
@given(garbage() | st.binary(max_size=300))
def test_garbage_decodes_identically(data: bytes) -> None:
    check(data)
    check(data.decode("latin-1"))


# ------------------------------------------------------------------------------------------------ boundaries

BASE = fixture("fill_outright")
assert BASE.outer_fields is not None and BASE.inner_fields is not None
OUTER: list[tuple[int, str]] = BASE.outer_fields
INNER: list[tuple[int, str]] = BASE.inner_fields


def _with(fields: list[tuple[int, str]], tag: int, value: str | None) -> list[tuple[int, str]]:
    """``fields`` with ``tag`` set to ``value`` (appended when absent) or removed (None)."""
    if value is None:
        return [(t, v) for t, v in fields if t != tag]
    if any(t == tag for t, _ in fields):
        return [(t, value if t == tag else v) for t, v in fields]
    return [*fields, (tag, value)]


def inner_case(tag: int, value: str | None) -> bytes:
    return encode_outer(OUTER, wrap(encode_inner(_with(INNER, tag, value))))


def outer_case(tag: int, value: str | None) -> bytes:
    return encode_outer(_with(OUTER, tag, value), wrap(encode_inner(INNER)))


VALUE_CASES: list[tuple[int, str | None]] = [
    # UTCTimestamp: every fraction width, calendar edges, out-of-range fields, the 64-bit ns boundary
    *[
        (60, "20240311-14:30:01" + frac)
        for frac in ("", ".1", ".12", ".123", ".1234", ".123456", ".123456789")
    ],
    (60, "20240311-14:30:01."),
    (60, "20240311-14:30:01.1234567890"),
    (60, "20240311-14:30:01.12a"),
    (60, "20240229-23:59:59.999"),
    (60, "20230229-00:00:00.000"),
    (60, "20240431-00:00:00.000"),
    (60, "20241301-00:00:00.000"),
    (60, "20240311-24:00:00.000"),
    (60, "20240311-23:60:00.000"),
    (60, "20240311-23:59:60.000"),
    (60, "99991231-23:59:59.999999999"),
    (60, "22620411-23:47:16.854775807"),
    (60, "22620411-23:47:16.854775808"),
    (60, "00010101-00:00:00.000000001"),
    (60, "00000101-00:00:00.000"),
    (60, "16000229-12:00:00"),
    (60, "19691231-23:59:59.999"),
    (60, "2024031-114:30:01.000"),
    (60, "20240311T14:30:01.000"),
    (60, ""),
    # int
    *[
        (32, text)
        for text in ("0", "-0", "007", "-5", "", "-", "+5", "5.0", " 5", "1" * 18, "9" * 19, "-" + "9" * 30)
    ],
    (5979, "18446744073709551616"),
    # price
    *[(31, text) for text in ("4501.25", "4501.250", ".5", "5.", "-0.25", "1E+2", "", "-", "0.000000001")],
    # boolean
    *[(1057, text) for text in ("Y", "N", "y", "YES", "")],
    # LocalMktDate
    *[(75, text) for text in ("20240229", "20230229", "2024031", "202403111", "")],
    # enumerations: unknown values are pseudo-members, empty is an error
    *[(54, text) for text in ("1", "7", "")],
    (59, "Z"),
    # the variant rules: 39 + 20 and the 150 cross-check
    (39, "Z"),
    (39, "H"),
    (20, "1"),
    (20, None),
    (150, "F"),
    (150, "4"),
    # required fields absent
    (17, None),
    (39, None),
    (56, None),
    # strings with awkward but legal bytes; '=' inside a value goes to the Python decoder
    (58, "a|b<c>&;"),
    (58, "a=b"),
    (58, "<RTRF>"),
    (58, "x</RTRF>"),
    (58, ""),
    # untyped tags, small and beyond the compiled decoder's dense range
    (9999, "x"),
    (123456, "y"),
    (1795, "0"),
]


@pytest.mark.parametrize(("tag", "value"), VALUE_CASES)
def test_inner_value_boundaries_decode_identically(tag: int, value: str | None) -> None:
    check(inner_case(tag, value), journal_id=5)


OUTER_CASES: list[tuple[int, str | None]] = [
    (43, None),
    (43, "N"),
    (43, "x"),
    (97, "Y"),
    (122, None),
    (122, "20240311-14:30:01"),
    (122, "bad"),
    (50, None),
    (50, ""),
    (52, "20240311-14:31:05.502123"),
    (52, None),
    (34, None),
    (34, "0"),
    (34, "-1"),
    (34, "x"),
    (56, None),
    (56, ""),
    (57, "A=B"),
    (9999, "x"),
]


@pytest.mark.parametrize(("tag", "value"), OUTER_CASES)
def test_outer_value_boundaries_decode_identically(tag: int, value: str | None) -> None:
    for session in (None, "S:1"):
        check(outer_case(tag, value), session=session)


def _frame_cases() -> list[bytes]:
    inner = encode_inner(INNER)
    xml = wrap(inner)
    repeated_inner = encode_inner([*INNER, (55, "NQ")])
    repeated_source = encode_inner([*INNER, (52, "20240311-14:30:01.250")])
    repeated_untyped = encode_inner([*INNER, (9999, "a"), (9999, "b")])
    leading_zero = inner.replace(b"\x0155=ES\x01", b"\x01055=ES\x01")
    nested_data = encode_inner([*INNER, (212, "3"), (213, "abc")])
    # a data field whose value looks like a field: only reading it by its length keeps 58 out of the event
    tricky_data = encode("8", [*INNER[1:], (212, "7"), (213, b"x\x0158=hi")])
    unwrapped = encode(
        "8", [*OUTER, *[(t, v) for t, v in INNER[1:] if t not in (34, 52, 49, 50, 56, 57, 143)]]
    )
    return [
        encode_outer(OUTER, wrap(repeated_inner)),
        encode_outer(OUTER, wrap(repeated_source)),
        encode_outer(OUTER, wrap(repeated_untyped)),
        encode_outer(OUTER, wrap(refix(leading_zero))),
        encode_outer(OUTER, wrap(nested_data)),
        encode_outer(OUTER, wrap(tricky_data)),
        encode_outer(OUTER, wrap(encode_inner([(35, "ZZ"), *INNER[1:]]))),
        encode_outer(OUTER, wrap(encode_inner([(35, "BZ"), *INNER[1:]]))),
        encode_outer(OUTER, wrap(encode_inner([(35, "j"), (45, "7"), *INNER[1:]]))),
        encode_outer(OUTER, wrap(encode_inner([(35, "8"), *INNER[1:]]).replace(b"8=FIX.4.2", b"8=FIX.4.4"))),
        encode_outer([*OUTER, (34, "1203")], xml),  # a repeated outer field (Python: the last one wins)
        encode_outer([*OUTER, (35, "0")], xml),
        encode("n", [*OUTER, (212, f"0{len(xml)}"), (213, xml)]),  # 212 with a leading zero
        encode("n", [*OUTER, (213, xml)]),  # 213 without 212
        encode("n", [*OUTER, (212, str(len(xml))), (213, xml), (9999, "after")]),
        encode("n", [*OUTER, (95, "3"), (96, "a\x01b"), (212, str(len(xml))), (213, xml)]),
        encode("n", [*OUTER, (57, b"caf\xc3\xa9"), (212, str(len(xml))), (213, xml)]),
        encode("n", [*OUTER, (56, b"caf\xc3\xa9"), (212, str(len(xml))), (213, xml)]),
        encode("n", [*OUTER, (212, str(len(xml) + 7)), (213, xml + b"<RTRF>x")]),
        encode("n", OUTER, begin_string="FIX.4.4"),
        encode("0", OUTER),
        encode("A", OUTER),
        unwrapped,
        encode("n", [*OUTER, (212, "2"), (213, b"<>")]),
        encode_outer(OUTER, wrap(inner + b"9=1\x01")),
    ]


@pytest.mark.parametrize("raw", _frame_cases())
def test_framing_boundaries_decode_identically(raw: bytes) -> None:
    check(raw)
    check(raw, journal_id=1, replayed=True, session="X:Y")


def test_every_byte_deleted_or_changed_decodes_identically() -> None:
    raw = BASE.outer
    for at in range(len(raw)):
        check(raw[:at] + raw[at + 1 :])
        check(raw[:at] + bytes([raw[at] ^ 0x20]) + raw[at + 1 :])


def test_ns_beyond_64_bits_is_exact() -> None:
    event = fast(inner_case(60, "99991231-23:59:59.999999999"))
    assert isinstance(event, Fill)
    assert event.transact_time_ns == 253402300799_999999999
    early = fast(inner_case(60, "00010101-00:00:00.000000001"))
    assert early is not None and early.transact_time_ns == -62135596800_000000000 + 1


# ------------------------------------------------------------------------------------------------ safety net


def test_an_exception_in_the_compiled_path_falls_back_to_the_python_decoder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = inner_case(59, "Z")  # an unknown TimeInForce: both decoders ask the enum lookup's __missing__
    assert fast(raw) is not None

    def kaput(self: Any, text: str) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setattr(decoding._EnumLookup, "__missing__", kaput)
    with pytest.raises(RuntimeError):
        fast(raw)  # the fast path reached the broken lookup ...
    (err,) = compiled().decode(raw, journal_id=4)
    # ... and decode() handed the message to the Python decoder, whose safety net reports it as an event
    assert isinstance(err, MessageError) and err.reason == "internal decoder error: RuntimeError: kaput"
    assert err.journal_id == 4
    assert_same([err], decoding.python_decode(raw, journal_id=4))


def test_inner_of_fixture_helper_agrees_with_the_fast_path() -> None:
    event = fast(BASE.outer)
    assert event is not None and event.inner == inner_of(BASE.outer)
