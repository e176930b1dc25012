"""The shared sender: a minimal FIX acceptor on 127.0.0.1, in its own process, that blasts or paces 35=n.

It verifies nothing. After the client's Logon (signed or not) it answers a Logon ack with 34=1, 49=CME,
56=<client 49> and the client's 108, waits for ``go`` from the orchestrator, then writes messages 2..N+1:

* ``blast``: every frame pre-encoded before timing, joined into ~1 MiB chunks, ``sendall`` back to back;
* ``paced``: a fixed offered rate; frames pre-encoded, each stamped at write time with ``time.time_ns()`` in
  inner 5979 (both checksums fixed in place); all frames due at a wake-up go out in one write;
* ``generate``: frames made on the fly in batches (the 5-million-message footprint run cannot hold its
  stream in memory); the sink run shows this is still far faster than any receiver.

A reader thread drains whatever the client sends, answers a Logout (and TestRequests) once the stream is
over, so ``client.stop()`` is not left waiting for its logout timeout. ``sink`` is the other end used to
measure the sender alone: it logs on, reads and discards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from bench._stream import Stamper, Stream, self_check
from dropcopy_client._wire import FrameReader, encode, parse_fields

CHUNK = 1 << 20
ACCEPT_TIMEOUT = 60.0


def _now_text() -> str:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%d-%H:%M:%S.") + f"{now.microsecond // 1000:03d}"


class _Session:
    """The accepted connection: logon handshake, a draining reader, and our outbound sequence after the stream."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader()
        self.client = "UNKNOWN"
        self.heartbeat = 30
        self.next_seq = 2
        self.streaming = True
        self.lock = threading.Lock()
        self.received: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    def logon(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        while True:
            raw = self.reader.next_message()
            if raw is not None:
                break
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("client closed before logging on")
            self.reader.feed(data)
        fields = dict(parse_fields(raw))
        if fields.get(35) != b"A":
            raise ConnectionError(f"expected a Logon, got 35={fields.get(35)!r}")
        self.client = fields.get(49, b"UNKNOWN").decode("ascii", "replace")
        self.heartbeat = int(fields.get(108, b"30"))
        ack = encode(
            "A",
            [
                (34, 1),
                (52, _now_text()),
                (49, "CME"),
                (50, fields.get(57, b"G")),
                (56, self.client),
                (108, self.heartbeat),
                (141, "N"),
            ],
        )
        self.sock.settimeout(None)
        self.sock.sendall(ack)
        self._thread = threading.Thread(target=self._drain, name="bench-sender-reader", daemon=True)
        self._thread.start()

    def finished(self, last_seq: int) -> None:
        with self.lock:
            self.next_seq = last_seq + 1
            self.streaming = False

    def _admin(self, msg_type: str, body: list[tuple[int, Any]]) -> None:
        with self.lock:
            if self.streaming:
                return
            seq = self.next_seq
            self.next_seq += 1
            frame = encode(msg_type, [(34, seq), (52, _now_text()), (49, "CME"), (56, self.client), *body])
        with contextlib.suppress(OSError):
            self.sock.sendall(frame)

    def _drain(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                self.reader.feed(data)
                while (raw := self.reader.next_message()) is not None:
                    fields = dict(parse_fields(raw))
                    kind = fields.get(35, b"?").decode("ascii", "replace")
                    self.received[kind] = self.received.get(kind, 0) + 1
                    if kind == "5":
                        self._admin("5", [])
                    elif kind == "1":
                        self._admin("0", [(112, fields.get(112, b""))])
        except OSError:
            return


def _chunks(frames: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    part: list[bytes] = []
    size = 0
    for frame in frames:
        part.append(frame)
        size += len(frame)
        if size >= CHUNK:
            out.append(b"".join(part))
            part, size = [], 0
    if part:
        out.append(b"".join(part))
    return out


def serve(conn: Connection, spec: dict[str, Any]) -> None:
    """Process entry point. ``spec``: mode (blast|paced|generate), count, rate (paced)."""
    mode, count = spec["mode"], int(spec["count"])
    stream = Stream(first_seq=2)
    self_check(stream)  # our framing is wrap_outer's, and ExecIDs never repeat
    prepared: dict[str, Any] = {}
    started = time.perf_counter()
    if mode == "blast":
        frames = stream.encode_all(count)
        prepared["chunks"] = _chunks(frames)
        prepared["bytes"] = sum(map(len, frames))
        del frames
    elif mode == "paced":
        frames = stream.encode_all(count)
        prepared["stamper"] = Stamper(frames)
        prepared["frames"] = [bytearray(f) for f in frames]
        prepared["bytes"] = sum(map(len, frames))
        del frames
    elif mode != "generate":
        raise ValueError(f"unknown mode {mode!r}")
    prepare_s = time.perf_counter() - started

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(ACCEPT_TIMEOUT)
    conn.send(("port", listener.getsockname()[1]))
    sock, _ = listener.accept()
    listener.close()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    session = _Session(sock)
    session.logon(ACCEPT_TIMEOUT)
    conn.send(("logged_on", session.client))

    message = conn.recv()
    if message != "go":
        sock.close()
        return
    result: dict[str, Any] = {"mode": mode, "count": count, "prepare_seconds": prepare_s}
    t0 = time.time_ns()
    if mode == "blast":
        for chunk in prepared["chunks"]:
            sock.sendall(chunk)
        result["bytes"] = prepared["bytes"]
    elif mode == "paced":
        result.update(_paced(sock, prepared["frames"], prepared["stamper"], float(spec["rate"])))
        result["bytes"] = prepared["bytes"]
    else:
        result["bytes"] = _generate(sock, stream, count, rate=spec.get("rate"))
    t1 = time.time_ns()
    session.finished(count + 1)
    result.update(first_write_ns=t0, last_write_ns=t1, write_seconds=(t1 - t0) / 1e9)
    conn.send(("sent", result))
    conn.recv()  # "stop": keep answering the client's Logout until then
    result_received = dict(session.received)
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    conn.send(("closed", result_received))


def _paced(sock: socket.socket, frames: list[bytearray], stamper: Stamper, rate: float) -> dict[str, Any]:
    """Offer ``rate`` msg/s: at each wake-up write every frame due by now, stamped with the write time."""
    total = len(frames)
    interval = 1.0 / rate
    sent = 0
    writes = 0
    late_max = 0.0
    start = time.perf_counter()
    clock_ns = time.time_ns
    stamp = stamper.stamp
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        if due > sent:
            late_max = max(late_max, now - (start + (sent * interval)))
            stamp_ns = clock_ns()
            for index in range(sent, due):
                stamp(index, frames[index], stamp_ns)
            sock.sendall(b"".join(frames[sent:due]))
            writes += 1
            sent = due
        wait = start + sent * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    elapsed = time.perf_counter() - start
    return {
        "offered_rate": rate,
        "achieved_rate": total / elapsed if elapsed else 0.0,
        "writes": writes,
        "messages_per_write": total / writes if writes else 0.0,
        "max_schedule_lag_ms": late_max * 1000,
    }


def _generate(
    sock: socket.socket, stream: Stream, count: int, batch: int = 2000, rate: float | None = None
) -> int:
    """Build and write ``count`` messages in batches; with ``rate``, no faster than that many per second.

    Unpaced, this outruns any Python receiver by far: the engine keeps reading (it must, to answer heartbeats),
    so the excess piles up in its hand-off buffer until it logs the session out (what a real CME session then
    does is resend; this sender cannot). The footprint run paces it at a rate the SDK sustains."""
    written = 0
    started = time.perf_counter()
    for start in range(0, count, batch):
        data = b"".join(stream.frames(start, min(batch, count - start)))
        sock.sendall(data)
        written += len(data)
        if rate:
            wait = started + (start + batch) / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
    return written


def sink(conn: Connection, port: int, expected_bytes: int) -> None:
    """Log on, then read and discard ``expected_bytes`` (the sender's own write rate, with nothing behind)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    logon = encode("A", [(34, 1), (49, "ABCDEFN"), (52, _now_text()), (56, "CME"), (57, "G"), (108, 30)])
    sock.sendall(logon)
    reader = FrameReader()
    while (ack := reader.next_message()) is None:
        reader.feed(sock.recv(65536))
    sock.settimeout(120)
    conn.send(("ready", len(ack)))  # the sender writes nothing more until the orchestrator says go
    got = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while got < expected_bytes:
        n = sock.recv_into(view)
        if not n:
            break
        got += n
    conn.send(("done", {"bytes": got, "last_read_ns": time.time_ns()}))
    conn.recv()
    sock.close()
