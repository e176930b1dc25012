"""The engine's hand-off buffer: order, immediate wake-up when idle, batching under load, high/low marks;
the frame reader on the other end."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from dropcopy_client._engine._hub import Outbox
from dropcopy_client._engine._protocol import _HEADER, FrameReader, ProtocolError, recv_frames

pytestmark = pytest.mark.timeout(30)


class Receiver:
    """The user's process side of the socket: collects every record with the time it arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.records: list[tuple[object, ...]] = []
        self.frames = 0
        self.arrived: list[int] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        reader = FrameReader()
        while True:
            frames = recv_frames(self.sock, reader)
            if frames is None:
                return
            now = time.monotonic_ns()
            with self._lock:
                for kind, batch in frames:
                    assert kind == "batch"
                    self.frames += 1
                    self.records.extend(batch)
                    self.arrived.extend([now] * len(batch))

    def wait(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.records) >= count:
                    return
            assert time.monotonic() < deadline, f"{len(self.records)} of {count} records arrived"
            time.sleep(0.001)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_records_arrive_in_order_and_an_idle_sender_wakes_for_a_lone_record(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    marks: list[tuple[str, int]] = []
    outbox = Outbox(
        pair[0], high=10**9, low=0, on_high=lambda n: marks.append(("high", n)), on_low=lambda n: None
    )
    receiver = Receiver(pair[1])
    outbox.start()
    try:
        time.sleep(0.2)  # idle long enough for the sender to be asleep on its event
        put_at = time.monotonic_ns()
        outbox.put(("one",))
        receiver.wait(1)
        # woken by the record, not by its IDLE_WAIT timer (50 ms): generous bound for a loaded machine
        assert (receiver.arrived[0] - put_at) / 1e6 < 40
        for i in range(10_000):
            outbox.put(("n", i))
        receiver.wait(10_001)
        assert receiver.records[0] == ("one",)
        assert [r[1] for r in receiver.records[1:]] == list(range(10_000))  # in order, none lost or doubled
        assert receiver.frames < 10_001  # batched under load
        assert marks == []
    finally:
        outbox.close()


def test_the_high_mark_holds_and_the_low_mark_releases(pair: tuple[socket.socket, socket.socket]) -> None:
    marks: list[tuple[str, int]] = []
    outbox = Outbox(
        pair[0],
        high=100,
        low=10,
        on_high=lambda n: marks.append(("high", n)),
        on_low=lambda n: marks.append(("low", n)),
    )
    for i in range(500):  # queued before the sender runs: the user's process was not reading
        outbox.put(("n", i))
    receiver = Receiver(pair[1])
    outbox.start()
    try:
        receiver.wait(500)
        assert [kind for kind, _ in marks][:1] == ["high"] and marks[0][1] >= 100
        outbox.put(("after",))  # the backlog is gone: the next look releases the hold
        receiver.wait(501)
        deadline = time.monotonic() + 5
        while [k for k, _ in marks] != ["high", "low"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [k for k, _ in marks] == ["high", "low"]
        assert not outbox.held
    finally:
        outbox.close()


def test_a_trickle_inside_the_linger_arrives_whole_and_the_sender_then_sleeps_until_woken(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Records put while the sender polls after a frame (the HOT window) are sent without a wake-up; once
    the window has passed the sender sleeps on its event again, and a later record still wakes it."""
    outbox = Outbox(pair[0], high=10**9, low=0, on_high=lambda n: None, on_low=lambda n: None)
    receiver = Receiver(pair[1])
    outbox.start()
    try:
        for i in range(200):  # each put right after the previous record was sent: inside the window
            outbox.put(("t", i))
            receiver.wait(i + 1)
        assert [r[1] for r in receiver.records] == list(range(200))
        deadline = time.monotonic() + 5
        while not outbox._sleeping:  # the window passed with nothing to send: asleep on the event
            assert time.monotonic() < deadline, "the sender never went back to sleep"
            time.sleep(0.001)
        outbox.put(("late",))
        receiver.wait(201)
        assert receiver.records[-1] == ("late",)
    finally:
        outbox.close()


def test_frame_reader_reassembles_frames_cut_anywhere_from_a_reused_receive_buffer() -> None:
    """The user's process reads into one buffer it reuses (``recv_into``): what the reader keeps of a
    partial frame must be a copy, so overwriting the buffer with the next chunk cannot corrupt it."""
    frames = [
        ("batch", [(0, 0, seq, seq * 10, f"35=8\x0134={seq}\x01" * (seq % 7 + 1))]) for seq in range(1, 41)
    ]
    wire = b"".join(_HEADER.pack(len(body)) + body for body in (pickle.dumps(f, protocol=5) for f in frames))
    for chunk in (1, 3, 17, 64, 1000, len(wire)):
        reader = FrameReader()
        buffer = bytearray(chunk)
        view = memoryview(buffer)
        got: list[object] = []
        for start in range(0, len(wire), chunk):
            piece = wire[start : start + chunk]
            buffer[: len(piece)] = piece
            reader.feed(view[: len(piece)])
            got += reader.frames()
            buffer[:] = b"\xff" * chunk  # the next recv_into overwrites it
        assert got == frames, chunk
    reader = FrameReader()
    reader.feed(_HEADER.pack(0xFFFFFFFF) + b"x")
    with pytest.raises(ProtocolError, match="frame of 4294967295 bytes announced"):
        reader.frames()
