"""Loads ``tests/fixtures/messages/*.fix`` (format: tests/fixtures/messages/README.md) into wire bytes.

Also the small wire helpers the decode tests share: building an outer 35=n around any inner bytes, with the
lengths and checksums either right or deliberately left wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dropcopy_client._wire import data_field, encode, wrap

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "messages"
SOH = b"\x01"


@dataclass(frozen=True)
class Fixture:
    name: str
    expect: str  # event class name
    outer: bytes  # the whole outer message, SOH-delimited
    outer_fields: list[tuple[int, str]] | None  # None for verbatim ``message:`` fixtures
    inner_fields: list[tuple[int, str]] | None


def pipes(text: str) -> bytes:
    """``|``-separated text -> SOH-separated bytes."""
    return text.replace("|", "\x01").encode("ascii")


def fields_of(text: str) -> list[tuple[int, str]]:
    out = []
    for item in text.split("|"):
        tag, _, value = item.partition("=")
        out.append((int(tag), value))
    return out


def encode_inner(fields: list[tuple[int, str]]) -> bytes:
    """An inner FIX message from ``35=...`` onwards, with its own 9 and 10."""
    assert fields[0][0] == 35, "inner fields start with 35"
    return encode(fields[0][1], fields[1:])


def encode_outer(outer_fields: list[tuple[int, str]], xml_data: bytes, xml_len: int | None = None) -> bytes:
    """An outer 35=n with ``xml_data`` as 213; 212 is its true length unless ``xml_len`` says otherwise."""
    length_and_data = data_field(213, xml_data)
    if xml_len is not None:
        length_and_data[0] = (212, xml_len)
    return encode("n", [*outer_fields, *length_and_data])


def load(path: Path) -> Fixture:
    expect = ""
    message = outer = inner = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect:"):
            expect = line.split(":", 1)[1].strip()
        elif line.startswith("#") or not line.strip():
            continue
        else:
            key, _, value = line.partition(": ")
            if key == "message":
                message = value
            elif key == "outer":
                outer = value
            elif key == "inner":
                inner = value
            else:
                raise ValueError(f"{path.name}: unknown line {line[:30]!r}")
    assert expect, f"{path.name}: no '# expect:' line"
    if message is not None:
        return Fixture(path.stem, expect, pipes(message), None, None)
    assert outer is not None and inner is not None, f"{path.name}: needs outer: and inner: lines"
    outer_fields, inner_fields = fields_of(outer), fields_of(inner)
    raw = encode_outer(outer_fields, wrap(encode_inner(inner_fields)))
    return Fixture(path.stem, expect, raw, outer_fields, inner_fields)


def all_fixtures() -> list[Fixture]:
    return [load(p) for p in sorted(FIXTURES.glob("*.fix"))]


def fixture(name: str) -> Fixture:
    return load(FIXTURES / f"{name}.fix")


def inner_of(outer: bytes) -> bytes:
    """The inner message of a well-formed outer 35=n (test-side, independent of the decoder)."""
    start = outer.index(b"<RTRF>") + len(b"<RTRF>")
    end = outer.rindex(b"</RTRF>")
    return outer[start:end]


def refix(message: bytes) -> bytes:
    """``message`` with its own 9 and 10 recomputed (fields in between kept byte for byte)."""
    first = message.index(SOH)
    second = message.index(SOH, first + 1)
    trailer = message.rindex(b"10=", 0, len(message) - 1)
    body = message[second + 1 : trailer]
    head = message[:first] + b"\x019=%d\x01" % len(body)
    frame = head + body
    return frame + b"10=%03d\x01" % (sum(frame) % 256)
