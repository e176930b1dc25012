"""CME-side session state (sans-IO): sequence numbers, the outbound store, frame building, resend answers.

One :class:`SessionState` per :class:`SimSession`, shared by its primary and backup endpoints and kept across
client reconnects, as CME keeps a target session's sequence for the whole week.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import attrs

from dropcopy_client._wire import FrameReader, data_field, encode, redact, wrap
from dropcopy_client.testing._clock import format_ts

if TYPE_CHECKING:
    from dropcopy_client.testing._simulator import _Connection

FieldValue = str | bytes | int
Fields = Sequence[tuple[int, FieldValue]]

_SEGMENT = re.compile(r"^(G|\d{1,3})$")


def _check_comp_id(_: object, __: attrs.Attribute[str], value: str) -> None:
    if len(value) != 7 or not value.isalnum():
        raise ValueError(f"sender_comp_id must be 7 alphanumeric characters, got {value!r}")


def _check_segment(_: object, __: attrs.Attribute[str], value: str) -> None:
    if not _SEGMENT.match(value):
        raise ValueError(f"segment must be 'G' (CGW) or a 1-3 digit market segment id, got {value!r}")


@attrs.frozen
class SimSession:
    """One CME-side drop copy target session: the client's 49 and the 57 it must send.

    ``segment`` is ``"G"`` for a Convenience Gateway target, or a market segment id (``"92"``) for one
    MSGW segment session (the client opens one session per segment, same 49, different 57).
    """

    sender_comp_id: str = attrs.field(validator=_check_comp_id)
    segment: str = attrs.field(default="G", validator=_check_segment)

    @property
    def name(self) -> str:
        """``SENDERCOMP:segment``, the name the client gives the same session (``client.status()``, events)."""
        return f"{self.sender_comp_id}:{self.segment}"


@attrs.frozen
class Rejection:
    """One refused logon or forced logout: the tag 58 ``text`` sent and the log-only ``detail``."""

    text: str
    detail: str
    counted: bool


@attrs.frozen
class WireFrame:
    """One frame on a session's wire, as the simulator received it (``"in"``: client -> CME) or wrote it
    (``"out"``: CME -> client), with secret tags already redacted (``dropcopy_client._wire.redact``).

    ``at`` is the real UTC time of the receipt, or of the moment the write starts (not the simulator's clock).
    """

    at: datetime
    direction: Literal["in", "out"]
    raw: bytes

    @property
    def msg_type(self) -> str:
        """Tag 35 ("" when the frame has none)."""
        return _tag(self.raw, b"35") or ""

    @property
    def seq(self) -> int | None:
        """Tag 34 of the outer message (None when absent or not a number)."""
        text = _tag(self.raw, b"34")
        return int(text) if text is not None and text.isdigit() else None


def _tag(raw: bytes, tag: bytes) -> str | None:
    """The first value of an outer header tag, searched before any 213 payload (whose inner header repeats
    34 and 35)."""
    end = raw.find(b"\x01213=")
    head = raw if end < 0 else raw[: end + 1]
    start = head.find(b"\x01" + tag + b"=")
    if start < 0:
        return None
    start += len(tag) + 2
    stop = head.find(b"\x01", start)
    return head[start : stop if stop >= 0 else len(head)].decode("ascii", "replace")


def split_frames(data: bytes) -> list[bytes]:
    """``data`` cut into FIX frames; bytes that do not delimit cleanly (a deliberately broken frame) stay one
    chunk, so nothing written is left out of a transcript."""
    reader = FrameReader()
    reader.feed(data)
    frames: list[bytes] = []
    while (frame := reader.next_message()) is not None:
        frames.append(frame)
    if sum(map(len, frames)) != len(data):
        return [data]
    return frames


@attrs.frozen
class ClientInfo:
    """What a logged-on client told us on its Logon; echoed in every outer header."""

    sender_comp_id: str
    sender_sub_id: str
    location: str


@attrs.frozen
class Stored:
    """One outbound message as stored for resends: its header-independent body and original SendingTime."""

    seq: int
    msg_type: str
    sent_at: datetime
    sent_text: str
    body: tuple[tuple[int, FieldValue], ...]
    business: bool
    poss_resend: bool = False
    #: how the frame is broken every time it is written (a "poison" frame): see ``Simulator.send_poison``
    corrupt: str | None = None


class SessionState:
    """Sequence numbers, store and counters of one :class:`SimSession`. Guard every use with ``lock``."""

    def __init__(self, session: SimSession, *, record_wire: bool = False) -> None:
        self.session = session
        self.lock = threading.RLock()
        #: every frame in and out (redacted) when the simulator records the wire; None when it does not
        self.wire: list[WireFrame] | None = [] if record_wire else None
        self._wire_lock = threading.Lock()  # its own lock: the writer thread takes it outside the lock order
        self.next_out = 1
        self.next_in = 1
        self.store: dict[int, Stored] = {}
        self.received: list[bytes] = []
        self.rejections: list[Rejection] = []
        self.bad_logons = 0
        self.bad_logon_times: deque[float] = deque()
        self.locked_out = False
        self.live: _Connection | None = None
        self.primary_role = "primary"
        self.drop_pending = 0
        #: answers queued for the next ResendRequests: (how, text), consumed one per request
        self.resend_answers: deque[tuple[str, str]] = deque()
        self.inbound_gap_target: int | None = None
        self.inbound_highest = 0
        self.logons = 0

    # -- wire transcript -----------------------------------------------------------------------------------

    def note_wire(self, direction: Literal["in", "out"], data: bytes) -> None:
        """Record ``data`` (one received message, or a written chunk of frames) when recording is on."""
        if self.wire is None:
            return
        at = datetime.now(UTC)
        frames = [data] if direction == "in" else split_frames(data)
        with self._wire_lock:
            self.wire.extend(WireFrame(at, direction, redact(frame)) for frame in frames)

    def wire_frames(self) -> list[WireFrame]:
        with self._wire_lock:
            return list(self.wire or ())

    # -- outbound ------------------------------------------------------------------------------------------

    def header(
        self,
        seq: int,
        client: ClientInfo,
        sending_time: str,
        *,
        poss_dup: bool = False,
        poss_resend: bool = False,
        orig_sending_time: str | None = None,
    ) -> list[tuple[int, FieldValue]]:
        """Outer CME->client header (spec §3.2), in the order of CME's examples."""
        out: list[tuple[int, FieldValue]] = [(34, seq)]
        if poss_dup:
            out.append((43, "Y"))
        if poss_resend:
            out.append((97, "Y"))
        out.append((369, self.next_in - 1))
        out.append((52, sending_time))
        if orig_sending_time is not None:
            out.append((122, orig_sending_time))
        out += [(49, "CME"), (50, self.session.segment), (56, client.sender_comp_id or "UNKNOWN")]
        if client.sender_sub_id:
            out.append((57, client.sender_sub_id))
        if client.location:
            out.append((143, client.location))
        return out

    def record(
        self,
        msg_type: str,
        body: Fields,
        now: datetime,
        *,
        business: bool,
        poss_resend: bool = False,
        corrupt: str | None = None,
    ) -> Stored:
        """Consume the next outbound sequence number and store the message."""
        seq = self.next_out
        self.next_out += 1
        item = Stored(seq, msg_type, now, format_ts(now), tuple(body), business, poss_resend, corrupt)
        self.store[seq] = item
        return item

    def frame(self, item: Stored, client: ClientInfo) -> bytes:
        """The live (first-time) frame of a stored message."""
        head = self.header(item.seq, client, item.sent_text, poss_resend=item.poss_resend)
        return corrupt(encode(item.msg_type, [*head, *item.body]), item.corrupt)

    def business_body(self, inner: bytes) -> list[tuple[int, FieldValue]]:
        return data_field(213, wrap(inner))

    def jump(self, n: int) -> None:
        self.next_out += n

    def reset(self) -> None:
        """Beginning of week / in-session reset: both sequences back to 1, prior messages unrecoverable."""
        self.next_out = 1
        self.next_in = 1
        self.store.clear()
        self.inbound_gap_target = None
        self.inbound_highest = 0

    # -- resend --------------------------------------------------------------------------------------------

    def has_stale(self, begin: int, end: int, cutoff: datetime) -> bool:
        return any((m := self.store.get(s)) is not None and m.sent_at < cutoff for s in range(begin, end + 1))

    def resend_frames(
        self, begin: int, end: int, client: ClientInfo, now: datetime, stale_before: datetime | None = None
    ) -> tuple[bytes, int]:
        """Answer ``begin..end``: business messages again with 43=Y and 122, everything else (admin messages,
        numbers never stored, and with ``stale_before`` business messages older than it) as coalesced
        SequenceReset-GapFill. Returns the bytes and the number of frames."""
        now_text = format_ts(now)
        frames: list[bytes] = []
        gap_start: int | None = None
        gap_orig: str | None = None

        def flush(upto: int) -> None:
            nonlocal gap_start, gap_orig
            if gap_start is None:
                return
            head = self.header(
                gap_start, client, now_text, poss_dup=True, orig_sending_time=gap_orig or now_text
            )
            frames.append(encode("4", [*head, (123, "Y"), (36, upto)]))
            gap_start = gap_orig = None

        for seq in range(begin, end + 1):
            item = self.store.get(seq)
            resend = (
                item is not None and item.business and (stale_before is None or item.sent_at >= stale_before)
            )
            if item is not None and resend:
                flush(seq)
                head = self.header(
                    seq,
                    client,
                    now_text,
                    poss_dup=True,
                    poss_resend=item.poss_resend,
                    orig_sending_time=item.sent_text,
                )
                frames.append(corrupt(encode(item.msg_type, [*head, *item.body]), item.corrupt))
            elif gap_start is None:
                gap_start = seq
                gap_orig = item.sent_text if item is not None else None
        flush(end + 1)
        return b"".join(frames), len(frames)

    def last_business(self, n: int) -> list[Stored]:
        """The last ``n`` stored business messages, oldest first."""
        out: list[Stored] = []
        for seq in sorted(self.store, reverse=True):
            item = self.store[seq]
            if item.business:
                out.append(item)
                if len(out) == n:
                    break
        out.reverse()
        return out


def business_bodies(inners: Iterable[bytes]) -> Iterable[list[tuple[int, FieldValue]]]:
    for inner in inners:
        yield data_field(213, wrap(inner))


#: ways a poison frame can be broken (each one QuickFIX refuses to parse, identically on every resend)
CORRUPTIONS = ("xmldatalen", "checksum", "bodylength")


def corrupt(frame: bytes, how: str | None) -> bytes:
    """``frame`` broken as ``how`` says, its other fields intact (None: unchanged).

    * ``"xmldatalen"``: 212 announces five bytes more than 213 holds (QuickFIX reads past 213's end);
    * ``"checksum"``: a wrong 10;
    * ``"bodylength"``: a 9 thirty bytes short (QuickFIX cuts the frame early).
    """
    if how is None:
        return frame
    if how == "xmldatalen":
        start = frame.index(b"\x01212=") + 5
        end = frame.index(b"\x01", start)
        length = int(frame[start:end]) + 5
        frame = frame[:start] + str(length).encode() + frame[end:]
        return _refit(frame)
    if how == "checksum":
        good = frame[-4:-1]
        bad = b"%03d" % ((int(good) + 1) % 256)
        return frame[:-4] + bad + b"\x01"
    if how == "bodylength":
        start = frame.index(b"\x019=") + 3
        end = frame.index(b"\x01", start)
        return frame[:start] + str(int(frame[start:end]) - 30).encode() + frame[end:]
    raise ValueError(f"unknown corruption {how!r}; expected one of {', '.join(CORRUPTIONS)}")


def _refit(frame: bytes) -> bytes:
    """Recompute 9 and 10 after an edit, so only the intended defect remains."""
    from dropcopy_client._wire import checksum

    start = frame.index(b"\x019=") + 3
    end = frame.index(b"\x01", start) + 1
    body_end = frame.rindex(b"\x0110=") + 1
    body = frame[end:body_end]
    head = frame[:start] + str(len(body)).encode() + b"\x01"
    out = head + body
    return out + b"10=%03d\x01" % checksum(out)
