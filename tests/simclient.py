"""A minimal raw-socket FIX 4.2 client for simulator tests: builds and signs a CME Logon, sends anything, and
reads frames with the library's own codec. No QuickFIX, no session logic: tests drive every byte."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from dropcopy_client._wire import FrameReader, data_field, encode, first, parse_frame, redact, to_display
from dropcopy_client._wire.codec import Field
from dropcopy_client.auth import SIGNATURE_METHOD, canonical_logon, sign

# Public test vector of spec §1.5 (EPAM's open-source tests), not a real credential.
KEY_ID = "oNDxM33uE81ohWuVRtWT"
SECRET = "2HlZ7exg8jTKltXnURjKvm3GS5iF5n4ClzHiEm_ocv4"

Value = str | bytes | int


def fmt_ts(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y%m%d-%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


class Msg:
    """One received message: ``type``, ``get(tag)`` (str), ``num(tag)`` (int), ``raw``."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.fields: list[Field] = parse_frame(raw)

    @property
    def type(self) -> str:
        return self.fields[2][1].decode()

    def get(self, tag: int) -> str | None:
        value = first(self.fields, tag)
        return None if value is None else value.decode("ascii", "replace")

    def num(self, tag: int) -> int:
        value = self.get(tag)
        assert value is not None, f"tag {tag} missing in {self}"
        return int(value)

    def tags(self) -> list[int]:
        return [tag for tag, _ in self.fields]

    def __repr__(self) -> str:
        return to_display(redact(self.raw))


class SimClient:
    """Connects to ``endpoint``; ``seq`` is the next 34 this client sends."""

    def __init__(
        self,
        endpoint: tuple[str, int],
        *,
        sender_comp_id: str = "ABCDEFN",
        sender_sub_id: str = "OPER1",
        target_sub_id: str = "G",
        location: str = "US,IL",
        key_id: str = KEY_ID,
        secret: str = SECRET,
        clock: Callable[[], datetime] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.endpoint = endpoint
        self.sender_comp_id = sender_comp_id
        self.sender_sub_id = sender_sub_id
        self.target_sub_id = target_sub_id
        self.location = location
        self.key_id = key_id
        self.secret = secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.timeout = timeout
        self.seq = 1
        self.sent: list[bytes] = []
        self._reader = FrameReader()
        self._eof = False
        self.sock = socket.create_connection(endpoint, timeout=timeout)

    def __enter__(self) -> SimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # -- sending -------------------------------------------------------------------------------------------

    def _take_seq(self, seq: int | None) -> int:
        """``seq`` or the next number; an explicit number at or above the counter moves the counter on."""
        if seq is None:
            seq = self.seq
        self.seq = max(self.seq, seq + 1)
        return seq

    def header(self, seq: int, sending_time: str) -> list[tuple[int, Value]]:
        return [
            (34, seq),
            (49, self.sender_comp_id),
            (50, self.sender_sub_id),
            (52, sending_time),
            (56, "CME"),
            (57, self.target_sub_id),
            (142, self.location),
            (369, 0),
        ]

    def logon_bytes(
        self,
        *,
        seq: int | None = None,
        heartbeat: int = 30,
        sending_time: datetime | str | None = None,
        reset: str = "N",
        last_processed: int = 0,
        overrides: Mapping[int, Value | None] | None = None,
        extra: Sequence[tuple[int, Value]] = (),
        signature: str | None = None,
        secret: str | None = None,
    ) -> bytes:
        """A signed Logon. ``overrides`` replaces (or with None removes) fields before signing; ``extra``
        fields are appended before the signature fields; ``signature`` forces tag 1402."""
        stamp = sending_time if isinstance(sending_time, str) else fmt_ts(sending_time or self.clock())
        fields: list[tuple[int, Value]] = self.header(self._take_seq(seq), stamp)
        fields[-1] = (369, last_processed)
        fields += [(108, heartbeat), (141, reset), (1603, "SIMTEST"), (1604, "1.0"), (1605, "ACME")]
        fields += list(extra)
        fields += [(354, len(self.key_id)), (355, self.key_id), (1400, SIGNATURE_METHOD)]
        for tag, value in (overrides or {}).items():
            idx = next((i for i, (t, _) in enumerate(fields) if t == tag), None)
            if idx is None and value is not None:
                fields.insert(len(fields) - 3, (tag, value))
            elif idx is not None and value is None:
                del fields[idx]
            elif idx is not None and value is not None:
                fields[idx] = (tag, value)
        values = {tag: _text(value) for tag, value in fields}
        sig = signature if signature is not None else sign(secret or self.secret, canonical_logon(values))
        return encode("A", [*fields, *data_field(1402, sig)])

    def logon(self, **kwargs: object) -> bytes:
        raw = self.logon_bytes(**kwargs)  # type: ignore[arg-type]
        self.send_raw(raw)
        return raw

    def send(
        self,
        msg_type: str,
        body: Iterable[tuple[int, Value]] = (),
        *,
        seq: int | None = None,
        poss_dup: bool = False,
    ) -> bytes:
        head = self.header(self._take_seq(seq), fmt_ts(self.clock()))
        if poss_dup:
            head.insert(1, (43, "Y"))
            head.insert(5, (122, fmt_ts(self.clock())))
        raw = encode(msg_type, [*head, *body])
        self.send_raw(raw)
        return raw

    def send_raw(self, data: bytes) -> None:
        self.sent.append(data)
        self.sock.sendall(data)

    # -- receiving -----------------------------------------------------------------------------------------

    def next(self, timeout: float | None = None) -> Msg | None:
        """The next message, or None once the simulator has closed the connection. Raises on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            raw = self._reader.next_message()
            if raw is not None:
                return Msg(raw)
            if self._eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the simulator")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                raise TimeoutError("no message from the simulator") from None
            except ConnectionResetError:
                data = b""
            if not data:
                self._eof = True
            self._reader.feed(data)

    def expect(self, msg_type: str, timeout: float | None = None, skip: Iterable[str] = ()) -> Msg:
        """The next message not of a type in ``skip``; asserts its 35."""
        skipped = set(skip)
        while True:
            msg = self.next(timeout)
            assert msg is not None, f"connection closed while waiting for 35={msg_type}"
            if msg.type in skipped:
                continue
            assert msg.type == msg_type, f"expected 35={msg_type}, got {msg}"
            return msg

    def read_all(self, count: int, timeout: float | None = None) -> list[Msg]:
        out: list[Msg] = []
        for _ in range(count):
            msg = self.next(timeout)
            assert msg is not None, f"closed after {len(out)} of {count} messages"
            out.append(msg)
        return out

    def expect_closed(self, timeout: float | None = None) -> list[Msg]:
        """Read until the simulator closes the connection; returns what arrived meanwhile."""
        out: list[Msg] = []
        while (msg := self.next(timeout)) is not None:
            out.append(msg)
        return out


def _text(value: Value) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii")
    return str(value)
