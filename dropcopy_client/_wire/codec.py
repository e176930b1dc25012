"""Sans-IO FIX 4.2 codec: framing, BodyLength/CheckSum, length-prefixed data fields.

Nothing here touches a socket or QuickFIX. The simulator, the decoder and the engine adapter all share it,
so a frame the simulator writes is read back by exactly the code the client uses.

A FIX message is a run of ``tag=value<SOH>`` fields. Most values cannot contain SOH, but *data* fields can:
they are preceded by a length field (212 XMLDataLen before 213 XMLData, 1401 before 1402, ...) and must be
read by length, not by delimiter. CME Drop Copy 4.0 depends on this: every business message arrives as
35=n with a complete inner FIX message, SOH bytes included, inside 213.
"""

from __future__ import annotations

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
    """FIX CheckSum (tag 10): the byte sum modulo 256."""
    return sum(data) % 256


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

    Hot path: a plain ``split`` on SOH, then re-joining the pieces of a data field that itself contains SOH.
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
            raise FrameError(f"length field {tag} has a non-numeric value {value[:20]!r}", offset - len(piece))
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
    """Parse one complete message and verify its framing: 8 first, 9 second and correct, 10 last and correct."""
    fields = parse_fields(raw)
    if len(fields) < 4 or fields[0][0] != 8 or fields[1][0] != 9 or fields[2][0] != 35:
        raise FrameError("message must start with 8=, 9=, 35=", 0)
    if fields[-1][0] != 10:
        raise FrameError("message does not end with CheckSum (10)", len(raw))
    body_start = raw.index(SOH, raw.index(SOH) + 1) + 1
    trailer_start = len(raw) - len(fields[-1][1]) - 4
    declared = fields[1][1]
    if not declared.isdigit() or int(declared) != trailer_start - body_start:
        raise FrameError(
            f"BodyLength (9) says {declared.decode('ascii', 'replace')}, body is {trailer_start - body_start} bytes",
            body_start,
        )
    sent = fields[-1][1]
    actual = checksum(raw[:trailer_start])
    if len(sent) != 3 or not sent.isdigit() or int(sent) != actual:
        raise FrameError(f"CheckSum (10) says {sent.decode('ascii', 'replace')}, computed {actual:03d}", trailer_start)
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
