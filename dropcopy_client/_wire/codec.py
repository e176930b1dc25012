"""Sans-IO FIX 4.2 codec: framing, BodyLength/CheckSum, length-prefixed data fields.

Nothing here touches a socket or QuickFIX. The simulator, the decoder and the engine adapter all share it,
so a frame the simulator writes is read back by exactly the code the client uses.

A FIX message is a run of ``tag=value<SOH>`` fields. Most values cannot contain SOH, but *data* fields can:
they are preceded by a length field (212 XMLDataLen before 213 XMLData, 1401 before 1402, ...) and must be
read by length, not by delimiter. CME Drop Copy 4.0 depends on this: every business message arrives as
35=n with a complete inner FIX message, SOH bytes included, inside 213.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

SOH = b"\x01"
BEGIN_STRING = "FIX.4.2"

#: data tag -> its length tag (FIX 4.2 plus the CME logon fields)
DATA_TAGS: dict[int, int] = {
    89: 93,  # Signature <- SignatureLength
    91: 90,  # SecureData <- SecureDataLen
    96: 95,  # RawData <- RawDataLength
    213: 212,  # XMLData <- XMLDataLen
    349: 348,  # EncodedIssuer
    351: 350,  # EncodedSecurityDesc
    353: 352,  # EncodedListExecInst
    355: 354,  # EncodedText <- EncodedTextLen (CME: the access key id)
    357: 356,  # EncodedSubject
    359: 358,  # EncodedHeadline
    361: 360,  # EncodedAllocText
    363: 362,  # EncodedUnderlyingIssuer
    365: 364,  # EncodedUnderlyingSecurityDesc
    1402: 1401,  # EncryptedPassword <- EncryptedPasswordLen (CME: the HMAC signature)
}
#: length tag -> the data tag it announces
LENGTH_TAGS: dict[int, int] = {v: k for k, v in DATA_TAGS.items()}

Field = tuple[int, bytes]


class FrameError(ValueError):
    """A FIX frame that cannot be parsed; ``offset`` is the byte position where parsing stopped."""

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{reason}{where}")


def checksum(data: bytes) -> int:
    """FIX CheckSum (tag 10): the byte sum modulo 256.

    Computed with zlib's Adler-32 over 256-byte chunks: its low half is ``1 + byte sum`` modulo 65521, which
    is exact while a chunk's sum stays below 65521 (256 * 255 = 65280). Several times faster than ``sum()``.
    """
    total = 0
    for start in range(0, len(data), 256):
        total += (zlib.adler32(data[start : start + 256]) & 0xFFFF) - 1
    return total % 256


def _as_bytes(value: str | bytes | int) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        return str(value).encode("ascii")
    return value.encode("ascii")


def encode(
    msg_type: str,
    fields: Iterable[tuple[int, str | bytes | int]],
    begin_string: str = BEGIN_STRING,
) -> bytes:
    """Encode one message. ``fields`` excludes 8, 9, 35 and 10, which are computed here.

    Fields are written in the order given. A data field (e.g. 213) must be preceded by its length field;
    use :func:`data_field` to get both with a correct length.
    """
    parts = [b"35=" + msg_type.encode("ascii")]
    for tag, value in fields:
        parts.append(b"%d=%s" % (tag, _as_bytes(value)))
    body = SOH.join(parts) + SOH
    head = b"8=%s\x019=%d\x01" % (begin_string.encode("ascii"), len(body))
    frame = head + body
    return frame + b"10=%03d\x01" % checksum(frame)


def data_field(tag: int, value: bytes | str) -> list[tuple[int, str | bytes | int]]:
    """The length field and the data field for a data tag, e.g. ``data_field(213, payload)``."""
    raw = _as_bytes(value)
    return [(DATA_TAGS[tag], len(raw)), (tag, raw)]


def parse_fields(raw: bytes) -> list[Field]:
    """Split ``raw`` into ``(tag, value)`` pairs in wire order, reading data fields by their length.

    Does not check BodyLength or CheckSum (see :func:`parse_frame`). Raises :class:`FrameError` on a field
    without ``=``, a non-numeric tag, a data field that overruns the message, or a missing final SOH.

    Hot path (every drop copy message is parsed twice: outer and inner): runs of ordinary fields are split
    and checked with C-level bulk operations; a data field is located by a regex on its length tag and
    sliced by length. Anything irregular goes to the field-by-field reference parser, which raises the
    precise error.
    """
    if not raw.endswith(SOH):
        raise FrameError("message does not end with SOH (truncated?)", len(raw))
    out = _parse_fast(raw)
    return out if out is not None else _parse_fields_reference(raw)


_DELIMITERS_ONLY = bytes(b for b in range(256) if b not in b"=\x01")  # translate() deletes these


class _TagInts(dict[bytes, int]):
    """Tag bytes -> int, validated once: C-speed lookups on the hot path instead of ``int()`` per field."""

    _LIMIT = 10_000  # distinct tags remembered; a flood of odd tags cannot grow memory without bound

    def __missing__(self, tag: bytes) -> int:
        if not tag.isdigit() or tag[0] == 48:  # empty, non-digit or leading zero: the reference decides
            raise KeyError(tag)
        value = int(tag)
        if len(self) < self._LIMIT:
            self[tag] = value
        return value


_TAG_INTS = _TagInts()
_LENGTH_FIELD = re.compile(rb"\x01(" + b"|".join(b"%d" % t for t in sorted(LENGTH_TAGS)) + rb")=")
_LENGTH_TAG_BYTES = frozenset(b"%d" % t for t in LENGTH_TAGS)
_DATA_PREFIX = {length: b"%d=" % data for length, data in LENGTH_TAGS.items()}


def _parse_fast(raw: bytes) -> list[Field] | None:
    """:func:`parse_fields` for well-formed input; None whenever the reference parser must decide."""
    if raw[: raw.find(b"=")] in _LENGTH_TAG_BYTES:
        return None
    out: list[Field] = []
    size = len(raw)
    start = 0  # first byte of the current run of ordinary fields
    search_from = 0
    while (match := _LENGTH_FIELD.search(raw, search_from)) is not None:
        if match.start() + 1 > start and not _parse_run(raw[start : match.start() + 1], out):
            return None
        length_tag = int(match.group(1))
        value_end = raw.find(SOH, match.end())
        length_value = raw[match.end() : value_end]
        if not length_value.isdigit():
            return None
        prefix = _DATA_PREFIX[length_tag]
        data_start = value_end + 1 + len(prefix)
        data_end = data_start + int(length_value)
        if raw[value_end + 1 : data_start] != prefix or data_end >= size or raw[data_end] != 1:
            return None
        out.append((length_tag, length_value))
        out.append((LENGTH_TAGS[length_tag], raw[data_start:data_end]))
        start = data_end + 1
        search_from = data_end
    if start < size and not _parse_run(raw[start:], out):
        return None
    return out


def _parse_run(run: bytes, out: list[Field]) -> bool:
    """Append the fields of ``run`` (ordinary fields, ending in SOH); False if any is irregular.

    When the delimiters strictly alternate ``= SOH = SOH ...`` (no ``=`` inside a value, no empty piece),
    replacing SOH by ``=`` and splitting once yields tag, value, tag, value, ... in C.
    """
    if run.count(SOH) == 1:  # a single field, typically the trailer after a data field
        tag, eq, value = run[:-1].partition(b"=")
        if not eq:
            return False
        try:
            out.append((_TAG_INTS[tag], value))
        except KeyError:
            return False
        return True
    delimiters = run.translate(None, _DELIMITERS_ONLY)
    if delimiters.count(b"=\x01") * 2 != len(delimiters):
        return False
    tokens = run.replace(SOH, b"=").split(b"=")
    try:
        out.extend(zip(map(_TAG_INTS.__getitem__, tokens[0:-1:2]), tokens[1::2], strict=True))
    except KeyError:
        return False
    return True


def _parse_fields_reference(raw: bytes) -> list[Field]:
    """Field by field: the definition of :func:`parse_fields`, and the source of its error messages.

    The fast path in :func:`parse_fields` hands every input it does not fully understand to this function, so
    both always agree (a unit test checks it on generated input).
    """
    if not raw.endswith(SOH):
        raise FrameError("message does not end with SOH (truncated?)", len(raw))
    pieces = raw.split(SOH)
    pieces.pop()  # empty string after the final SOH
    out: list[Field] = []
    append = out.append
    length_tags = LENGTH_TAGS
    i = 0
    n = len(pieces)
    offset = 0
    while i < n:
        piece = pieces[i]
        tag_bytes, eq, value = piece.partition(b"=")
        if not eq:
            raise FrameError("field without '='", offset)
        try:
            tag = int(tag_bytes)
        except ValueError:
            raise FrameError(f"tag {tag_bytes[:20]!r} is not a number", offset) from None
        if tag <= 0 or not tag_bytes.isdigit():
            raise FrameError(f"tag {tag_bytes[:20]!r} is not a number", offset)
        append((tag, value))
        offset += len(piece) + 1
        i += 1
        data_tag = length_tags.get(tag)
        if data_tag is None:
            continue
        if not value.isdigit():
            raise FrameError(
                f"length field {tag} has a non-numeric value {value[:20]!r}", offset - len(piece)
            )
        want = int(value)
        if i >= n:
            raise FrameError(f"length field {tag} is not followed by its data field {data_tag}", offset)
        prefix = b"%d=" % data_tag
        if not pieces[i].startswith(prefix):
            raise FrameError(f"data field {data_tag} does not follow its length field {tag}", offset)
        data = pieces[i][len(prefix) :]
        j = i + 1
        while len(data) < want and j < n:
            data = data + SOH + pieces[j]
            j += 1
        if len(data) != want:
            raise FrameError(
                f"data field {data_tag} is not {want} bytes long as its length field {tag} says", offset
            )
        append((data_tag, data))
        offset += len(prefix) + want + 1
        i = j
    return out


def parse_frame(raw: bytes) -> list[Field]:
    """Parse one complete message and verify its framing: 8 first, 9 second and right, 10 last and right."""
    fields = parse_fields(raw)
    if len(fields) < 4 or fields[0][0] != 8 or fields[1][0] != 9 or fields[2][0] != 35:
        raise FrameError("message must start with 8=, 9=, 35=", 0)
    if fields[-1][0] != 10:
        raise FrameError("message does not end with CheckSum (10)", len(raw))
    body_start = raw.index(SOH, raw.index(SOH) + 1) + 1
    trailer_start = len(raw) - len(fields[-1][1]) - 4
    declared = fields[1][1]
    if not declared.isdigit() or int(declared) != trailer_start - body_start:
        body = trailer_start - body_start
        raise FrameError(
            f"BodyLength (9) says {declared.decode('ascii', 'replace')}, body is {body} bytes", body_start
        )
    sent = fields[-1][1]
    actual = checksum(raw[:trailer_start])
    if len(sent) != 3 or not sent.isdigit() or int(sent) != actual:
        raise FrameError(
            f"CheckSum (10) says {sent.decode('ascii', 'replace')}, computed {actual:03d}", trailer_start
        )
    return fields


def first(fields: Sequence[Field], tag: int) -> bytes | None:
    """Value of the first occurrence of ``tag``, or None."""
    for t, v in fields:
        if t == tag:
            return v
    return None


class FrameReader:
    """Splits a byte stream into FIX messages (sans-IO).

    ``feed()`` bytes as they arrive, then call ``next_message()`` until it returns None. Frames are cut by
    BodyLength, so SOH bytes inside data fields are harmless. Bytes before a ``8=FIX`` start are garbage and
    are reported through ``discarded`` rather than silently dropped.
    """

    _START = b"8=FIX"

    def __init__(self, max_body: int = 1_000_000) -> None:
        self._buf = bytearray()
        self._max_body = max_body
        self.discarded = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> bytes | None:
        buf = self._buf
        while True:
            start = buf.find(self._START)
            if start < 0:
                keep = len(self._START) - 1
                if len(buf) > keep:
                    self.discarded += len(buf) - keep
                    del buf[: len(buf) - keep]
                return None
            if start > 0:
                self.discarded += start
                del buf[:start]
            first_soh = buf.find(SOH)
            if first_soh < 0:
                return None
            if buf[first_soh + 1 : first_soh + 3] != b"9=" and len(buf) >= first_soh + 3:
                self._skip_one()
                continue
            second_soh = buf.find(SOH, first_soh + 1)
            if second_soh < 0:
                if len(buf) - first_soh > 20:
                    self._skip_one()
                    continue
                return None
            length_bytes = bytes(buf[first_soh + 3 : second_soh])
            if not length_bytes.isdigit() or int(length_bytes) > self._max_body:
                self._skip_one()
                continue
            total = second_soh + 1 + int(length_bytes) + 7  # "10=nnn\x01"
            if len(buf) < total:
                return None
            if buf[total - 7 : total - 4] != b"10=" or buf[total - 1 : total] != SOH:
                self._skip_one()
                continue
            frame = bytes(buf[:total])
            del buf[:total]
            return frame

    def _skip_one(self) -> None:
        """Drop the current bogus start so the search moves on to the next one."""
        self.discarded += 1
        del self._buf[:1]

    @property
    def buffered(self) -> int:
        return len(self._buf)


def to_display(raw: bytes) -> str:
    """Readable form of a raw message: SOH shown as ``|``, non-ASCII bytes escaped."""
    return raw.replace(SOH, b"|").decode("ascii", "backslashreplace")
