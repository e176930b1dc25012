"""The message stream every measurement sends: realistic drop copy traffic, framed fast, unique forever.

A *cycle* of inner execution reports is built once with the public builders of ``dropcopy_client.testing``
(``ScriptedSession`` / ``OrderFlow`` / ``SpreadFlow``): acks, partial fills, fills, cancels, modifies and
calendar-spread fills with their legs, over 20 accounts and 8 instruments. Each inner message becomes a
*template*: its bytes cut around the identifiers that must never repeat (ExecID 17 counter, OrderID 37,
TradeID 37711, SecondaryExecID 527), all built with fixed-width counters so BodyLength never changes. Message
``i`` of the stream is cycle message ``i % len(cycle)`` with every counter moved on by ``i // len(cycle)``
cycles, so a stream of any length has unique ExecIDs (the journal's dedupe key and the position book's
idempotency key) and unique orders, as a real week would.

The outer 35=n is framed here rather than with :func:`dropcopy_client._decode.wrap_outer` because the
footprint run frames 5 million messages on the fly; :func:`self_check` proves both give identical bytes.

For latency runs :class:`Stamper` overwrites inner 5979 RequestTime (19 digits) with the sender's
``time.time_ns()`` at write time and fixes both checksums in place.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

from dropcopy_client._decode import wrap_outer
from dropcopy_client._wire import checksum, parse_fields
from dropcopy_client.testing import (
    BUY,
    SELL,
    Instrument,
    ManualClock,
    ScriptedSession,
)

UTC = dt.UTC
TARGET = "ABCDEFN"  # the client's SenderCompID (outer 56)
SEGMENT = "G"  # CGW (outer 50)
OPERATOR = "OPS1"  # echo of the client's 50 (outer 57)
LOCATION = "US,IL"  # echo of the client's 142 (outer 143)

# Fixed-width counter domains (disjoint, so a 527 value tells which counter it came from).
EXEC_BASE = 1_000_000_000  # 10 digits, ExecID "<prefix>:<counter>"
TRADE_BASE = 5_000_000_000  # 10 digits, 37711 and spread 527 links
ORDER_BASE = 10_000_000_000  # 11 digits, 37 OrderID
_WIDTH = {"exec": 10, "trade": 10, "order": 11}

INSTRUMENTS = [
    (Instrument("ES", "ESZ6", 294973), "4500.25", "0.25"),
    (Instrument("ES", "ESH7", 294974), "4520.50", "0.25"),
    (Instrument("NQ", "NQZ6", 305112), "15600.00", "0.25"),
    (Instrument("ZN", "ZNH7", 204527), "110.15625", "0.015625"),
    (Instrument("CL", "CLF7", 301101), "78.41", "0.01"),
    (Instrument("GC", "GCG7", 402200), "2045.10", "0.10"),
    (Instrument("6E", "6EZ6", 508877), "1.08525", "0.00005"),
    (Instrument("ZB", "ZBH7", 204530), "118.09375", "0.03125"),
]
SPREAD = Instrument("ES", "ESZ6-ESH7", 294975)
ACCOUNTS = [f"ACCT{i:02d}" for i in range(1, 21)]

_SLOT_TAGS = (b"17", b"37", b"527", b"37711")
_REQUEST_TIME = re.compile(rb"\x015979=(\d{19})\x01")


def _kind(tag: bytes, digits: bytes) -> str | None:
    value = int(digits)
    if tag == b"37":
        return "order" if value >= ORDER_BASE else None
    if EXEC_BASE <= value < EXEC_BASE + 1_000_000_000:
        return "exec"
    if TRADE_BASE <= value < TRADE_BASE + 1_000_000_000:
        return "trade"
    return None


def build_cycle(orders: int = 800, seed: int = 11) -> list[bytes]:
    """Inner messages of ``orders`` order lives, in the mix printed by :func:`describe`."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
    src = ScriptedSession(
        sender_comp_id="M2L000N",
        operator="TRADER1",
        clock=ManualClock(start, step=dt.timedelta(microseconds=750)),
        first_exec_id=EXEC_BASE,
        first_order_id=ORDER_BASE,
        first_trade_id=TRADE_BASE,
        exec_id_prefix=84618,
        trade_date="20260310",
    )
    out: list[bytes] = []
    for _ in range(orders):
        inst, base, tick = rng.choice(INSTRUMENTS)
        price = Decimal(base) + Decimal(tick) * rng.randrange(-40, 41)
        account = rng.choice(ACCOUNTS)
        side = rng.choice((BUY, SELL))
        roll = rng.random()
        if roll < 0.12:  # calendar spread: ack, summary fill (442=3) and two leg fills (442=2)
            qty = rng.randrange(1, 6)
            legs = [(INSTRUMENTS[0][0], BUY, 1), (INSTRUMENTS[1][0], SELL, 1)]
            flow = src.spread_order(SPREAD, legs, account=account, side=side, qty=qty, price="-20.25")
            out.append(flow.ack())
            out += flow.fill(qty, "-20.25", ["4500.25", "4520.50"])
            continue
        qty = rng.randrange(1, 40)
        order = src.order(inst, account=account, side=side, qty=qty, price=price)
        out.append(order.ack())
        if roll < 0.20:  # rests, then cancelled
            out.append(order.cancel())
        elif roll < 0.26:  # modified, then filled
            out.append(order.modify(price=price + Decimal(tick)))
            out.append(order.fill())
        elif roll < 0.76 and qty > 3:  # one to three partial fills, then the rest
            for _ in range(rng.randrange(1, 4)):
                out.append(order.fill(rng.randrange(1, order.order.leaves_qty)))
                if order.order.leaves_qty < 2:
                    break
            out.append(order.fill())
        else:  # filled at once
            out.append(order.fill())
    return out


def describe(inners: list[bytes]) -> dict[str, float]:
    """Share of each kind of message in ``inners`` (by 39 OrdStatus and 442)."""
    kinds: Counter[str] = Counter()
    for inner in inners:
        fields = dict(parse_fields(inner))
        status = fields.get(39, b"?").decode()
        leg = fields.get(442, b"1")
        if status == "0":
            kinds["ack"] += 1
        elif status in ("1", "2"):
            kind = {b"3": "spread summary", b"2": "spread leg"}.get(leg, "outright")
            kinds[f"{'partial fill' if status == '1' else 'fill'} ({kind})"] += 1
        else:
            kinds[{"4": "cancel ack", "5": "modify ack"}.get(status, f"39={status}")] += 1
    total = len(inners)
    return {k: round(v / total, 4) for k, v in sorted(kinds.items())}


class _Template:
    """One inner message cut around its counters: ``parts[0] slot parts[1] slot ... parts[-1]``."""

    __slots__ = ("parts", "slots")

    def __init__(self, inner: bytes) -> None:
        body = inner[: inner.rindex(b"10=")]  # without the trailer: recomputed per message
        parts: list[bytes] = []
        slots: list[tuple[str, int]] = []
        pos = 0
        for match in re.finditer(rb"\x01(\d+)=([^\x01]*)", body):
            tag, value = match.group(1), match.group(2)
            if tag not in _SLOT_TAGS:
                continue
            digits_at = match.start(2)
            digits = value
            if tag == b"17":
                colon = value.rindex(b":")
                digits_at += colon + 1
                digits = value[colon + 1 :]
            kind = _kind(tag, digits)
            if kind is None:
                continue
            if len(digits) != _WIDTH[kind]:
                raise ValueError(f"counter {digits!r} of tag {tag!r} is not {_WIDTH[kind]} digits wide")
            parts.append(body[pos:digits_at])
            slots.append((kind, int(digits)))
            pos = digits_at + len(digits)
        parts.append(body[pos:])
        self.parts = parts
        self.slots = slots

    def render(self, shift: dict[str, int]) -> bytes:
        out = [self.parts[0]]
        for (kind, value), part in zip(self.slots, self.parts[1:], strict=True):
            out.append(b"%0*d" % (_WIDTH[kind], value + shift[kind]))
            out.append(part)
        body = b"".join(out)
        return body + b"10=%03d\x01" % checksum(body)


class Stream:
    """Outer 35=n frames numbered from ``first_seq``: ``frames(start, count)`` is pure and repeatable."""

    def __init__(self, cycle: list[bytes] | None = None, *, first_seq: int = 2) -> None:
        self.cycle = cycle if cycle is not None else build_cycle()
        self.templates = [_Template(inner) for inner in self.cycle]
        counts = Counter(kind for t in self.templates for kind, _ in t.slots)
        # How far each counter moves per cycle: the span of values one cycle used (+1).
        self._stride = {}
        for kind in _WIDTH:
            values = [v for t in self.templates for k, v in t.slots if k == kind]
            self._stride[kind] = (max(values) - min(values) + 1) if values else 0
        self.slot_counts = dict(counts)
        self.first_seq = first_seq
        self.sending_time = b"20260310-14:30:00.000"

    def __len__(self) -> int:
        return len(self.templates)

    def inner(self, index: int) -> bytes:
        """Inner message ``index`` of the endless stream (counters moved on per cycle)."""
        cycle, pos = divmod(index, len(self.templates))
        shift = {kind: cycle * stride for kind, stride in self._stride.items()}
        return self.templates[pos].render(shift)

    def outer(self, inner: bytes, seq: int) -> bytes:
        """The CME outer 35=n for ``inner``: the same bytes as ``wrap_outer`` (see :func:`self_check`)."""
        body = (
            b"35=n\x0134=%d\x0152=%s\x0149=CME\x0150=%s\x0156=%s\x0157=%s\x01143=%s\x01212=%d\x01213=<RTRF>"
            % (
                seq,
                self.sending_time,
                SEGMENT.encode(),
                TARGET.encode(),
                OPERATOR.encode(),
                LOCATION.encode(),
                len(inner) + 13,
            )
        )
        body += inner + b"</RTRF>\x01"
        frame = b"8=FIX.4.2\x019=%d\x01" % len(body) + body
        return frame + b"10=%03d\x01" % checksum(frame)

    def frames(self, start: int, count: int) -> Iterator[bytes]:
        """Frames for stream messages ``start .. start+count-1`` (sequence ``first_seq + index``)."""
        for index in range(start, start + count):
            yield self.outer(self.inner(index), self.first_seq + index)

    def encode_all(self, count: int) -> list[bytes]:
        return list(self.frames(0, count))


def self_check(stream: Stream) -> None:
    """Our framing equals ``wrap_outer``'s, and every counter is unique across two cycles."""
    inner = stream.inner(0)
    expected = wrap_outer(
        inner,
        seq_num=2,
        target=TARGET,
        segment=SEGMENT,
        sending_time=dt.datetime(2026, 3, 10, 14, 30, tzinfo=UTC),
        operator=OPERATOR,
        location=LOCATION,
    )
    got = stream.outer(inner, 2)
    if got != expected:
        raise AssertionError(f"bench framing differs from wrap_outer:\n{got!r}\n{expected!r}")
    exec_ids = [dict(parse_fields(stream.inner(i)))[17] for i in range(2 * len(stream))]
    if len(set(exec_ids)) != len(exec_ids):
        raise AssertionError("ExecIDs repeat across cycles")


class Stamper:
    """Writes the sender's clock into inner 5979 of pre-encoded frames and fixes inner and outer 10.

    Offsets are found once per frame (frames differ in length), so stamping is two slice assignments and
    two checksums over the frame, about 2 us.
    """

    def __init__(self, frames: list[bytes]) -> None:
        self.offsets = [self._offsets(frame) for frame in frames]

    @staticmethod
    def _offsets(frame: bytes) -> tuple[int, int, int, int]:
        match = _REQUEST_TIME.search(frame)
        if match is None:
            raise ValueError("frame has no 19-digit 5979")
        inner_start = frame.index(b"<RTRF>") + 6
        inner_cs = frame.index(b"</RTRF>") - 4  # the inner message ends "10=xxx\x01": digits at -4..-1
        return match.start(1), inner_start, inner_cs, len(frame) - 4

    def stamp(self, index: int, frame: bytearray, now_ns: int) -> None:
        at, inner_start, inner_cs, outer_cs = self.offsets[index]
        frame[at : at + 19] = b"%019d" % now_ns
        frame[inner_cs : inner_cs + 3] = b"%03d" % checksum(bytes(frame[inner_start : inner_cs - 3]))
        frame[outer_cs : outer_cs + 3] = b"%03d" % checksum(bytes(frame[: outer_cs - 3]))
