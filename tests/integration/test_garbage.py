"""Garbage between valid messages, through the real engine: 1,000+ randomized bad frames, seeded.

Two kinds of bad input reach a drop copy client:

* **sequenced garbage**: a well-framed 35=n whose copied message is broken (random bytes, truncated, a
  flipped byte, unknown enum values). It has a sequence number: it must be journaled and handed out as an
  event carrying its raw bytes (``MessageError`` when it cannot be decoded);
* **framing garbage**: bytes on the wire that are not a FIX message at all (noise, frames with a wrong
  BodyLength or CheckSum). They have no trustworthy number; QuickFIX drops them (``FrameDropped``), and a
  real message swallowed with them comes back through a resend.

Either way: every valid fill delivered exactly once, no crash, no wedge, no sequence number unaccounted.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dropcopy_client import (
    DropCopyClient,
    EngineRestarted,
    Fill,
    FrameDropped,
    MessageError,
    UnrecoverableGap,
)
from dropcopy_client._audit import audit_journal
from dropcopy_client._week import WeeklySchedule
from dropcopy_client._wire import parse_frame
from dropcopy_client.config import ClientConfig
from dropcopy_client.testing import ScriptedSession, SimSession, Simulator, group_layout
from tests.integration.conftest import Collector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SEED = 20261201
SESSION = SimSession("ABCDEFN")
VALID = 1_500
SEQUENCED_GARBAGE = 800
FRAMING_GARBAGE = 250


def _checksum(data: bytes) -> bytes:
    return b"%03d" % (sum(data) % 256)


def sequenced_garbage(rng: random.Random, src: ScriptedSession) -> bytes:
    """A copied message that is broken in one of several ways."""
    good = src.order(qty=1, price="100").fill()
    kind = rng.randrange(4)
    if kind == 0:  # random bytes, SOH included
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 1:  # truncated anywhere
        return good[: rng.randrange(1, len(good) - 1)]
    if kind == 2:  # one byte changed: a checksum that no longer matches, or a field that no longer parses
        i = rng.randrange(len(good))
        return good[:i] + bytes([(good[i] + rng.randrange(1, 255)) % 256]) + good[i + 1 :]
    # well formed, but values no enum knows (39, 150, 54) and a tag nobody defined
    fields = [(t, v) for t, v in parse_frame(good) if t not in (9, 10)]
    odd = {39: b"Z", 150: b"Q", 54: b"9"}
    body = b"".join(b"%d=%s\x01" % (t, odd.get(t, v)) for t, v in fields if t != 8)
    body += b"%d=%d\x01" % (rng.randrange(20000, 30000), rng.randrange(10**6))
    head = b"8=FIX.4.2\x019=%d\x01" % len(body)
    return head + body + b"10=" + _checksum(head + body) + b"\x01"


def framing_garbage(rng: random.Random) -> bytes:
    """Bytes that are not a FIX message: noise, or a frame whose BodyLength or CheckSum is wrong.

    Never a frame QuickFIX would accept: the checksum is always off by at least one, and no 34 is in it.
    """
    kind = rng.randrange(4)
    if kind == 0:  # noise with no frame start in it
        return bytes(b for b in (rng.randrange(256) for _ in range(rng.randrange(1, 120))) if b != ord("8"))
    body = b"35=0\x01" + bytes(rng.choice(b"ABCxyz019=\x01") for _ in range(rng.randrange(0, 60)))
    if kind == 1:  # BodyLength too short: the parser finds no checksum where it should be
        head = b"8=FIX.4.2\x019=%d\x01" % max(len(body) - rng.randrange(1, 5), 1)
    elif kind == 2:  # BodyLength too long (bounded): it swallows what follows, then fails
        head = b"8=FIX.4.2\x019=%d\x01" % (len(body) + rng.randrange(1, 300))
    else:  # right length, wrong checksum
        head = b"8=FIX.4.2\x019=%d\x01" % len(body)
    wrong = (int(_checksum(head + body)) + rng.randrange(1, 255)) % 256
    return head + body + b"10=%03d\x01" % wrong


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Simulator, ClientConfig]]:
    sim, config = group_layout(
        cgw=(SESSION.sender_comp_id,), msgw={}, key_file=tmp_path / "keys.txt", heartbeat=5
    )
    with sim:
        yield sim, config


def test_a_thousand_garbage_frames_between_valid_messages_lose_and_double_nothing(
    layout: tuple[Simulator, ClientConfig],
) -> None:
    sim, config = layout
    rng = random.Random(SEED)
    src = ScriptedSession(exec_id_prefix=9090)
    steps: list[tuple[str, bytes]] = [("valid", src.order(qty=1, price="1").fill()) for _ in range(VALID)]
    steps += [("sequenced", sequenced_garbage(rng, src)) for _ in range(SEQUENCED_GARBAGE)]
    steps += [("framing", framing_garbage(rng)) for _ in range(FRAMING_GARBAGE)]
    rng.shuffle(steps)
    steps.append(("valid", src.order(qty=1, price="1").fill()))  # the last word is a valid fill
    valid_ids = [dict(parse_frame(inner))[17].decode() for kind, inner in steps if kind == "valid"]

    client = DropCopyClient(config)
    seen = Collector(client)
    client.start(wait=20)
    sequenced: dict[int, bytes] = {}  # 34 -> the garbage copied message sent under it
    try:

        def send() -> None:
            for kind, data in steps:
                if kind == "framing":
                    sim.send_raw(SESSION, data)
                else:
                    seq = sim.send(SESSION, data)
                    if kind == "sequenced":
                        sequenced[seq] = data

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        sender.join(120)
        assert not sender.is_alive(), "the simulator could not write (the client stopped reading?)"
        last = sim.next_outbound_seq(SESSION) - 1
        assert seen.wait(
            lambda evs: (
                len({e.exec_id for e in evs if isinstance(e, Fill)} & set(valid_ids)) == len(valid_ids)
                and client.status()[0].last_inbound_seq >= last
            ),
            timeout=120,
        ), f"stuck at {client.status()[0]}"
        # numbers CME sent while a resend was answered (its Rejects, the Heartbeats answering our probes)
        # are accounted for as they arrive or asked for again at the next message: wait for the journal to
        # account for every one, as the audit reads it, before stopping
        journal = Path(config.data_dir) / "journal.sqlite"
        schedule = WeeklySchedule.parse(config.weekly_reset)

        def accounted() -> bool:
            (audit,) = audit_journal(journal, schedule=schedule, sessions=[client.sessions[0]])
            return audit.ok and audit.highest >= last

        deadline = time.monotonic() + 60
        while not accounted():
            assert time.monotonic() < deadline, audit_journal(journal, schedule=schedule)
            time.sleep(0.1)
        status = client.status()[0]
    finally:
        client.stop()

    # every valid fill exactly once
    fills = collections.Counter(e.exec_id for e in seen.of(Fill) if e.exec_id in set(valid_ids))
    assert set(fills) == set(valid_ids) and max(fills.values()) == 1
    # every sequenced bad message handed out under its own number, with its bytes
    by_seq: dict[int, list[Any]] = collections.defaultdict(list)
    for event in seen.events:
        delivery = getattr(event, "delivery", None)
        if delivery is not None and getattr(event, "journal_id", None) is not None:
            by_seq[delivery.seq_num].append(event)
    errors = 0
    for seq, garbage in sequenced.items():
        (event,) = by_seq[seq]
        kept = event.raw if isinstance(event, MessageError) else event.inner
        assert isinstance(kept, bytes) and garbage[:40].replace(b"\x01", b"") in kept.replace(b"\x01", b""), (
            seq
        )
        errors += isinstance(event, MessageError)
    assert errors >= SEQUENCED_GARBAGE // 2  # most of it cannot be decoded; the rest decodes with warnings
    # framing garbage: seen and reported, never a number consumed, nothing declared lost
    assert seen.of(FrameDropped), "QuickFIX dropped no frame: the garbage did not reach the parser"
    assert seen.of(UnrecoverableGap) == [] and seen.of(EngineRestarted) == []
    assert status.lost == 0 and status.open_gaps == ()
    (audit,) = audit_journal(journal, schedule=schedule, sessions=[client.sessions[0]])
    assert audit.ok, (audit.counts, audit.exceptions)  # and still after the stop
