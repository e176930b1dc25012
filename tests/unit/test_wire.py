"""The sans-IO FIX codec: framing, BodyLength, CheckSum, data fields, stream splitting, RTRF, redaction."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dropcopy_client._wire import (
    FrameError,
    FrameReader,
    checksum,
    data_field,
    encode,
    first,
    parse_fields,
    parse_frame,
    redact,
    redact_text,
    to_display,
    unwrap,
    wrap,
)
from dropcopy_client._wire.codec import _parse_fields_reference

SOH = b"\x01"


def p(text: str) -> bytes:
    return text.replace("|", "\x01").encode("ascii")


# ------------------------------------------------------------------------------------------------ checksum


def test_checksum_known_value() -> None:
    # the spec's QuickFIX/n inner message: published 10=124
    inner = p(
        "8=FIX.4.2|9=356|35=8|34=36027|369=18623|52=20200701-20:34:33.977|49=CME|50=84|56=M2L000N|57=DUMMY|"
        "143=US,IL|1=00331|6=0|11=ACP1593635673935|14=0|17=84618:1342652|20=0|37=84778833500|38=10|39=0|40=2|"
        "41=0|44=139.203125|48=204527|54=1|55=ZN|59=0|60=20200701-20:34:33.976|107=ZNH1|150=0|151=10|167=FUT|"
        "432=20200701|1028=Y|1031=Y|5979=1593635673976364291|9717=ACP1593635673935|"
    )
    assert checksum(inner) == 124
    assert parse_frame(inner + b"10=124\x01")[-1] == (10, b"124")


@given(st.binary(max_size=2000))
@example(b"\xff" * 256)
@example(b"\xff" * 257)
@example(b"")
def test_checksum_is_the_byte_sum_mod_256(data: bytes) -> None:
    assert checksum(data) == sum(data) % 256


# ------------------------------------------------------------------------------------------------ encode/frame


def test_encode_computes_body_length_and_checksum() -> None:
    msg = encode("0", [(34, 2), (49, "CME"), (56, "ABCDEFN")])
    body = b"35=0\x0134=2\x0149=CME\x0156=ABCDEFN\x01"
    head = b"8=FIX.4.2\x019=28\x01"
    assert len(body) == 28
    assert msg == head + body + b"10=%03d\x01" % (sum(head + body) % 256)
    assert parse_frame(msg) == [
        (8, b"FIX.4.2"),
        (9, b"28"),
        (35, b"0"),
        (34, b"2"),
        (49, b"CME"),
        (56, b"ABCDEFN"),
        (10, msg[-4:-1]),
    ]


def test_first() -> None:
    fields = parse_fields(p("35=8|11=a|11=b|"))
    assert first(fields, 11) == b"a" and first(fields, 12) is None


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda m: m.replace(b"9=28", b"9=29"), "BodyLength (9) says 29, body is 28 bytes"),
        (lambda m: m.replace(b"9=28", b"9=x8"), "BodyLength (9) says x8"),
        (lambda m: m[:-4] + b"%03d\x01" % ((int(m[-4:-1]) + 1) % 256), "CheckSum (10) says"),
        (lambda m: m[:-4] + b"99\x01", "CheckSum (10) says"),
        (lambda m: m[:-7], "message does not end with CheckSum (10)"),
        (lambda m: m[:-1], "message does not end with SOH (truncated?)"),
        (lambda m: m.replace(b"8=FIX.4.2\x01", b""), "message must start with 8=, 9=, 35="),
        (lambda m: m.replace(b"35=0\x01", b""), "message must start with 8=, 9=, 35="),
        (lambda m: m.replace(b"34=2", b"34"), "field without '='"),
        (lambda m: m.replace(b"34=2", b"3x=2"), "tag b'3x' is not a number"),
        (lambda m: m.replace(b"34=2", b"=2"), "tag b'' is not a number"),
    ],
)
def test_parse_frame_errors(mutate: Callable[[bytes], bytes], reason: str) -> None:
    msg = encode("0", [(34, 2), (49, "CME"), (56, "ABCDEFN")])
    with pytest.raises(FrameError) as info:
        parse_frame(mutate(msg))
    assert info.value.reason.startswith(reason)
    assert isinstance(info.value, ValueError)


def test_frame_error_offset_points_at_the_problem() -> None:
    with pytest.raises(FrameError) as info:
        parse_fields(p("8=FIX.4.2|9=5|bad|"))
    assert info.value.offset == len(b"8=FIX.4.2\x019=5\x01")
    assert str(info.value).endswith(f"at byte {info.value.offset}")


# ------------------------------------------------------------------------------------------------ data fields


def test_data_field_may_contain_soh_and_equals() -> None:
    payload = p("8=FIX.4.2|9=5|35=0|10=000|") + b"a=b"
    msg = encode("n", [(34, 1), *data_field(213, payload), (58, "after")])
    fields = parse_frame(msg)
    assert (212, str(len(payload)).encode()) in fields and (213, payload) in fields
    assert fields[-2] == (58, b"after")


def test_data_field_as_last_field_and_empty() -> None:
    assert parse_fields(p("212=0|213=|")) == [(212, b"0"), (213, b"")]
    assert parse_fields(p("35=n|212=3|213=a|b|")) == [(35, b"n"), (212, b"3"), (213, b"a\x01b")]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("35=n|212=9|213=abc|10=000|", "data field 213 is not 9 bytes long as its length field 212 says"),
        ("35=n|212=2|213=abc|10=000|", "data field 213 is not 2 bytes long as its length field 212 says"),
        ("35=n|212=x|213=abc|", "length field 212 has a non-numeric value b'x'"),
        ("35=n|212=3|", "length field 212 is not followed by its data field 213"),
        ("35=n|212=3|58=abc|", "data field 213 does not follow its length field 212"),
    ],
)
def test_data_field_errors(raw: str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_fields(p(raw))
    assert info.value.reason == reason


def test_wrong_212_in_a_whole_message_is_a_frame_error() -> None:
    inner = encode("8", [(17, "x")])
    msg = encode("n", [(34, 1), (212, len(wrap(inner)) + 1), (213, wrap(inner))])
    with pytest.raises(FrameError, match="length field 212"):
        parse_frame(msg)


# Generated field lists: ordinary fields (some with '=' in the value), data fields with SOH inside, and
# occasionally garbage, to check the fast path against the field-by-field reference parser.
_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8).map(str.encode)
_data = st.binary(max_size=12)
_tag = st.sampled_from([1, 8, 9, 10, 35, 44, 58, 212, 213, 93, 89, 1401, 1402, 9999, 7])


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["field", "field", "data", "garbage"]))
        if kind == "data":
            data = draw(_data)
            length, tag = draw(st.sampled_from([(212, 213), (93, 89), (1401, 1402)]))
            declared = max(0, len(data) + draw(st.sampled_from([0, 0, 0, 1, -1, 2, -2, 5])))
            parts.append(b"%d=%d\x01%d=%s\x01" % (length, declared, tag, data))
        elif kind == "garbage":
            parts.append(
                draw(st.sampled_from([b"x\x01", b"=1\x01", b"07=1\x01", b"0=1\x01", b"\x01", b"1==\x01"]))
            )
        else:
            parts.append(b"%d=%s\x01" % (draw(_tag), draw(_value)))
    raw = b"".join(parts)
    if draw(st.booleans()) and raw:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def _outcome(fn: Callable[[bytes], object], raw: bytes) -> object:
    try:
        return fn(raw)
    except FrameError as exc:
        return ("error", exc.reason, exc.offset)


@settings(max_examples=400)
@given(_messages())
@example(b"212=3\x01213=a\x01b\x01")
@example(b"8=1\x01212=0\x01213=\x01212=1\x01213=\x01\x0110=1\x01")
@example(b"1=a=b\x01")
@example(b"212=4\x01213=abc\x0144=1\x01")  # data overruns into the next field
@example(b"212=2\x01213=abc\x0144=1\x01")  # data stops short of its SOH
@example(b"212=3\x01213=abc\x0110=0=1\x01")  # single trailing field with '=' in its value
def test_fast_parser_agrees_with_the_reference(raw: bytes) -> None:
    assert _outcome(parse_fields, raw) == _outcome(_parse_fields_reference, raw)


# ------------------------------------------------------------------------------------------------ FrameReader


def _two_messages() -> tuple[bytes, bytes]:
    inner = encode("8", [(17, "1"), (58, "8=FIX.4.2 inside")])
    a = encode("n", [(34, 1), *data_field(213, wrap(inner))])
    b = encode("0", [(34, 2)])
    return a, b


def test_frame_reader_split_reads_byte_by_byte() -> None:
    a, b = _two_messages()
    reader = FrameReader()
    got = []
    for byte in a + b:
        reader.feed(bytes([byte]))
        while (msg := reader.next_message()) is not None:
            got.append(msg)
    assert got == [a, b] and reader.discarded == 0 and reader.buffered == 0


def test_frame_reader_many_messages_in_one_read_and_garbage_before() -> None:
    a, b = _two_messages()
    reader = FrameReader()
    reader.feed(b"noise" + a + b + a[:10])
    assert reader.next_message() == a
    assert reader.next_message() == b
    assert reader.next_message() is None
    assert reader.discarded == len(b"noise")
    reader.feed(a[10:])
    assert reader.next_message() == a


def test_frame_reader_cuts_by_body_length_so_soh_in_data_is_harmless() -> None:
    a, _ = _two_messages()
    assert a.count(b"8=FIX") == 3  # the inner message (and a text quoting one) are inside 213
    reader = FrameReader()
    reader.feed(a)
    assert reader.next_message() == a


def test_frame_reader_skips_a_bogus_start() -> None:
    _, b = _two_messages()
    reader = FrameReader()
    reader.feed(b"8=FIX.4.2\x019=zz\x01" + b)
    assert reader.next_message() == b
    assert reader.discarded > 0


def test_frame_reader_refuses_oversized_body() -> None:
    reader = FrameReader(max_body=10)
    _, b = _two_messages()
    reader.feed(b"8=FIX.4.2\x019=999999\x01" + b)
    assert reader.next_message() == b


# ------------------------------------------------------------------------------------------------ RTRF


def test_wrap_unwrap() -> None:
    inner = encode("8", [(17, "1")])
    assert unwrap(wrap(inner)) == inner
    assert wrap(inner) == b"<RTRF>" + inner + b"</RTRF>"


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (b"8=FIX</RTRF>", "213 XMLData does not start with <RTRF>"),
        (b"<RTRF>8=FIX", "213 XMLData does not end with </RTRF> (truncated?)"),
        (b"<RTRF>a</RTRF><RTRF>b</RTRF>", "213 XMLData holds more than one <RTRF> block"),
    ],
)
def test_unwrap_errors(xml: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        unwrap(xml)
    assert info.value.reason == reason


# ------------------------------------------------------------------------------------------------ redaction


def test_redact_masks_secret_tags_and_keeps_the_access_key_id() -> None:
    raw = p("8=FIX.4.2|9=9|35=A|354=4|355=AKID|1401=8|1402=c2lnbmF0|96=pw|554=pass|925=new|58=ok|10=000|")
    out = redact(raw)
    for secret in (b"c2lnbmF0", b"pw\x01", b"pass", b"new\x01"):
        assert secret not in out
    assert b"1402=***" in out and b"96=***" in out and b"554=***" in out and b"925=***" in out
    assert b"355=AKID" in out and b"58=ok" in out and b"1401=8" in out


def test_redact_does_not_touch_tags_that_merely_end_in_a_secret_number() -> None:
    raw = p("11402=x|5554=y|1402=z|")
    assert redact(raw) == p("11402=x|5554=y|1402=***|")


def test_redact_text_handles_pipes_and_soh() -> None:
    assert redact_text("35=A|1402=abc|58=x") == "35=A|1402=***|58=x"
    assert redact_text("1402=abc\x0158=x") == "1402=***\x0158=x"


def test_to_display() -> None:
    assert to_display(b"35=0\x0158=\xff\x01") == "35=0|58=\\xff|"
