"""A deterministic, FIX-aware mutator: the generated cases of ``make test`` and atheris's custom mutator.

Blind byte edits almost never survive BodyLength (9) and CheckSum (10), so they only exercise the framing
checks. Half of the edits here work on fields instead (drop, duplicate, swap, rewrite a value, lie about a
data length) and then *re-frame* the message -- recompute the inner 9/10, the 212 length and the outer 9/10
-- so the decoder past the checksums sees the corruption too. Everything comes from one ``random.Random``:
the same seed gives the same cases on every machine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence

from dropcopy_client._wire import checksum
from dropcopy_client._wire.codec import _parse_fields_reference
from dropcopy_client._wire.rtrf import RTRF_CLOSE, RTRF_OPEN

SOH = b"\x01"
#: fragments that matter to the parsers: delimiters, framing tags, data-field tags, RTRF, odd bytes
TOKENS: tuple[bytes, ...] = (
    b"\x01",
    b"=",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"8=FIX.4.2\x01",
    b"8=FIX.4.4\x01",
    b"9=",
    b"10=",
    b"10=000\x01",
    b"35=n\x01",
    b"35=8\x01",
    b"35=0\x01",
    b"212=",
    b"213=",
    b"212=5\x01213=",
    b"354=3\x01355=",
    b"1401=1\x011402=",
    b"96=",
    b"<RTRF>",
    b"</RTRF>",
    b"268=2\x01",
    b"555=3\x01",
    b"0",
    b"00",
    b"-1",
    b"99999999999999999999",
    b"1E+9999",
    b"NaN",
    b"20240230-25:61:61.9999999999",
)
_VALUES: tuple[bytes, ...] = (
    b"",
    b"0",
    b"-0",
    b"+1",
    b"1.",
    b".5",
    b"1e3",
    b"Infinity",
    b"sNaN",
    b"4501.250000000000000001",
    b"9" * 40,
    b"Y",
    b"N",
    b"X",
    b"\xe9",
    b"20240311-14:30:01",
    b"20240311-14:30:01.1234567891",
    b"20240311",
    b"2024031",
    b"a=b",
    b"|",
)

Fields = list[tuple[int, bytes]]


def _fields(data: bytes) -> Fields | None:
    try:
        return _parse_fields_reference(data)
    except (ValueError, IndexError):
        return None


def _join(fields: Fields) -> bytes:
    return b"".join(b"%d=%s\x01" % (tag, value) for tag, value in fields)


_XML_LENGTH = re.compile(rb"\x01212=([0-9]*)\x01213=")


def refix(message: bytes) -> bytes:
    """``message`` with a true 212 (the length of its ``<RTRF>`` block) and 9 and 10 recomputed.

    Byte-level, so it also re-frames messages the parser would refuse (a lying length is exactly what an
    edit inside 213 produces). Anything without ``8=...<SOH>9=...<SOH>`` at its start is returned as it is.
    """
    match = _XML_LENGTH.search(message)
    if match is not None:
        close = message.find(RTRF_CLOSE, match.end())
        if close >= 0:
            size = close + len(RTRF_CLOSE) - match.end()
            message = message[: match.start(1)] + b"%d" % size + message[match.end(1) :]
    first = message.find(SOH)
    second = message.find(SOH, first + 1)
    if not message.startswith(b"8=") or second < 0 or message[first + 1 : first + 3] != b"9=":
        return message
    trailer = message.rfind(b"\x0110=")
    body = message[second + 1 : trailer + 1] if trailer > second else message[second + 1 :]
    if body and not body.endswith(SOH):
        body += SOH
    frame = message[:first] + b"\x019=%d\x01" % len(body) + body
    return frame + b"10=%03d\x01" % checksum(frame)


def _inner_span(data: bytes) -> tuple[int, int] | None:
    start = data.find(RTRF_OPEN)
    end = data.rfind(RTRF_CLOSE)
    if start < 0 or end < start:
        return None
    return start + len(RTRF_OPEN), end


class Mutator:
    """Cases derived from ``seeds`` by a seeded random generator."""

    def __init__(self, seeds: Sequence[bytes], seed: int) -> None:
        if not seeds:
            raise ValueError("no seed inputs")
        self.seeds = list(seeds)
        self.random = random.Random(seed)

    # -------------------------------------------------------------------------------------- byte level
    def _bytes(self, data: bytes) -> bytes:
        r = self.random
        buf = bytearray(data)
        for _ in range(r.choice((1, 1, 1, 2, 3, 6))):
            op = r.randrange(8)
            at = r.randrange(len(buf) + 1)
            if op == 0 and buf and at < len(buf):
                buf[at] ^= 1 << r.randrange(8)
            elif op == 1 and at < len(buf):
                buf[at] = r.randrange(256)
            elif op == 2:
                buf[at:at] = r.choice(TOKENS)
            elif op == 3:
                del buf[at : at + r.randrange(1, 40)]
            elif op == 4:
                buf[at:at] = buf[at : at + r.randrange(1, 40)]
            elif op == 5:
                del buf[at:]
            elif op == 6:
                other = r.choice(self.seeds)
                cut = r.randrange(len(other) + 1)
                buf[at:] = other[cut:]
            else:
                buf[at:at] = bytes(r.randrange(256) for _ in range(r.randrange(1, 8)))
        return bytes(buf)

    # -------------------------------------------------------------------------------------- field level
    def _field_edit(self, fields: Fields) -> Fields:
        r = self.random
        out = list(fields)
        if not out:
            return out
        op = r.randrange(7)
        at = r.randrange(len(out))
        tag, value = out[at]
        if op == 0:
            del out[at]
        elif op == 1:
            out.insert(r.randrange(len(out) + 1), out[at])
        elif op == 2:
            other = r.randrange(len(out))
            out[at], out[other] = out[other], out[at]
        elif op == 3:
            out[at] = (tag, r.choice(_VALUES))
        elif op == 4:
            out[at] = (tag, value + r.choice(_VALUES + TOKENS))
        elif op == 5:
            out[at] = (r.choice((1, 9, 10, 35, 212, 213, 268, 354, 555, 1401, 9999, 10**6)), value)
        else:
            out.insert(at, (r.choice((212, 354, 1401, 96, 268, 555, 146)), b"%d" % r.randrange(0, 60)))
        return out

    def _structural(self, data: bytes) -> bytes:
        r = self.random
        span = _inner_span(data)
        if span is not None and r.random() < 0.6:  # the copied message inside 213: edit it, re-frame both
            start, end = span
            inner = data[start:end]
            fields = _fields(inner)
            new_inner = _join(self._field_edit(fields)) if fields else self._bytes(inner)
            if r.random() < 0.75:
                new_inner = refix(new_inner)
            mutated = data[:start] + new_inner + data[end:]
        else:
            fields = _fields(data)
            mutated = _join(self._field_edit(fields)) if fields else self._bytes(data)
        return refix(mutated) if r.random() < 0.85 else mutated

    def mutate(self, data: bytes) -> bytes:
        """One mutation of ``data``: byte-level, field-level with re-framing, or both."""
        r = self.random.random()
        if r < 0.2:
            return self._bytes(data)
        if r < 0.4:  # blind edits, then re-framed: byte noise inside 213 reaches the inner message
            return refix(self._bytes(data))
        if r < 0.9:
            return self._structural(data)
        return self._bytes(self._structural(data))

    def cases(self, count: int) -> Iterator[bytes]:
        """``count`` inputs: every seed once, then mutations of seeds (sometimes of a mutation)."""
        emitted = 0
        for seed in self.seeds[:count]:
            yield seed
            emitted += 1
        while emitted < count:
            data = self.random.choice(self.seeds)
            for _ in range(self.random.choice((1, 1, 2, 3))):
                data = self.mutate(data)
            yield data
            emitted += 1
