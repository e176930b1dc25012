"""A CME-like Drop Copy 4.0 acceptor on real loopback TCP.

Threads and blocking sockets: one accept thread per listening endpoint, and per connection a reader thread
(inbound messages, timers) and a writer thread (one FIFO of outbound bytes). Every outbound message gets its
sequence number and is queued while its session's lock is held, so the wire order is the sequence order;
a resend answer is queued as one job, so live messages generated while it is answered go out after it.

Lock order: ``Simulator._lock`` -> ``SessionState.lock`` -> ``_Connection._cv``. Never the reverse.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Self

import attrs

from dropcopy_client._wire import FrameError, FrameReader, first, parse_frame, redact, to_display
from dropcopy_client._wire.codec import Field
from dropcopy_client.auth import ApiKey, keys_from_env, load_key_file
from dropcopy_client.config import ClientConfig, Endpoint, SessionEndpoints, load_config
from dropcopy_client.errors import KeyFileError
from dropcopy_client.errors import SimulatorError as SimulatorError  # re-exported by dropcopy_client.testing
from dropcopy_client.testing._clock import Clock, format_ts, utc_now
from dropcopy_client.testing._logon import LogonRequest, SimKey, validate_logon
from dropcopy_client.testing._state import (
    ClientInfo,
    FieldValue,
    Rejection,
    SessionState,
    SimSession,
    Stored,
    WireFrame,
    business_bodies,
)
from dropcopy_client.testing._texts import Texts

log = logging.getLogger("dropcopy_client.testing")

Role = Literal["primary", "backup"]
_ROLES: tuple[Role, Role] = ("primary", "backup")
_CHUNK = 1 << 20
_TICK = 0.05
_LINGER = 1.0


def _show(raw: bytes) -> str:
    return to_display(redact(raw))


class _ResendJob:
    __slots__ = ("count", "data", "delay")

    def __init__(self, data: bytes, count: int, delay: float) -> None:
        self.data = data
        self.count = count
        self.delay = delay


_CLOSE = object()
_OutItem = bytes | _ResendJob | object


class _Endpoint:
    """One listening socket (a gateway). ``state`` is None on a wildcard simulator."""

    def __init__(self, sim: Simulator, role: Role, state: SessionState | None) -> None:
        self.sim = sim
        self.role = role
        self.state = state
        #: None: the simulator's ``host`` (``Simulator.from_config`` sets the configured one)
        self.host: str | None = None
        #: 0 until the first open, where the OS chooses; then kept, so ``revive`` listens on the same port
        self.port = 0
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.conns: set[_Connection] = set()

    @property
    def alive(self) -> bool:
        return self.sock is not None

    @property
    def address_host(self) -> str:
        return self.host if self.host is not None else self.sim.host

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.address_host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(16)
        sock.settimeout(_TICK * 4)
        self.port = sock.getsockname()[1]
        self.sock = sock
        self.thread = threading.Thread(target=self._accept_loop, args=(sock,), daemon=True, name=self._name())
        self.thread.start()

    def _name(self) -> str:
        who = self.state.session.sender_comp_id if self.state else "*"
        return f"sim-accept-{who}-{self.role}"

    def close(self) -> None:
        """Stop listening; :meth:`join` waits for the accept thread."""
        sock, self.sock = self.sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() on Linux
            sock.close()

    def join(self, timeout: float = 2.0) -> None:
        thread, self.thread = self.thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _accept_loop(self, sock: socket.socket) -> None:
        while self.sock is sock and not self.sim._stopping:
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            if self.sock is not sock or self.sim._stopping:
                conn.close()
                break
            self.sim._accepted(self, conn, addr)


class _Connection:
    """One accepted TCP connection: logon handshake, then the FIX session until either side closes."""

    def __init__(
        self, sim: Simulator, endpoint: _Endpoint, sock: socket.socket, addr: tuple[str, int]
    ) -> None:
        self.sim = sim
        self.endpoint = endpoint
        self.sock = sock
        self.addr = addr
        self.state: SessionState | None = endpoint.state
        self.client: ClientInfo | None = None
        self.logged_on = False
        self.heartbeat = 30
        self.resend_in_flight = False
        self._reader = FrameReader()
        self._out: deque[_OutItem] = deque()
        self._cv = threading.Condition()
        self._dead = False
        self._closing = False
        self._closing_at = 0.0
        self._shut_at: float | None = None
        now = time.monotonic()
        self._connected_at = now
        self._last_recv = now
        self._last_queued = now
        self._test_request_at: float | None = None
        self._test_requests = 0
        sock.settimeout(sim.write_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        label = f"{addr[0]}:{addr[1]}"
        self._threads = [
            threading.Thread(target=self._read_loop, daemon=True, name=f"sim-read-{label}"),
            threading.Thread(target=self._write_loop, daemon=True, name=f"sim-write-{label}"),
        ]

    def start(self) -> None:
        state = self.state
        if state is not None and state.locked_out:
            self._reject(state, (), Texts.PORT_CLOSURE, "session is locked out", counted=False)
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    # -- output --------------------------------------------------------------------------------------------

    def enqueue(self, item: _OutItem) -> None:
        with self._cv:
            if self._dead:
                return
            self._out.append(item)
            self._last_queued = time.monotonic()
            self._cv.notify()

    def close_after_flush(self) -> None:
        """Write what is queued, then half-close and wait (briefly) for the client to close."""
        if not self._closing:
            self._closing = True
            self._closing_at = time.monotonic()
        self.enqueue(_CLOSE)

    def abort(self) -> None:
        """Close at once with a TCP reset, as a crashed gateway would."""
        with self._cv:
            self._dead = True
            self._cv.notify()
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.sock.close()

    def _write_loop(self) -> None:
        try:
            while True:
                with self._cv:
                    while not self._out and not self._dead:
                        self._cv.wait(0.5)
                    if self._dead:
                        return
                    item = self._out.popleft()
                    if isinstance(item, bytes):
                        parts = [item]
                        size = len(item)
                        while self._out and isinstance(self._out[0], bytes) and size < _CHUNK:
                            nxt = self._out.popleft()
                            assert isinstance(nxt, bytes)
                            parts.append(nxt)
                            size += len(nxt)
                        item = b"".join(parts) if len(parts) > 1 else item
                if isinstance(item, bytes):
                    # recorded before the write: what the client sends in reaction always comes after it
                    self._note_out(item)
                    self._sendall(item)
                elif isinstance(item, _ResendJob):
                    if item.delay > 0:
                        with self._cv:
                            self._cv.wait_for(lambda: self._dead, item.delay)
                    # CME's request is over once its last message is on its way: clear the flag before that
                    # message is written, or a client that asks again as soon as it has read the answer can
                    # race this thread and be told a resend is "already being processed"
                    last = item.data.rfind(b"8=FIX")
                    self._note_out(item.data)
                    self._sendall(item.data[: max(last, 0)])
                    self.resend_in_flight = False
                    self._sendall(item.data[max(last, 0) :])
                    log.debug("resend answer of %d messages written to %s", item.count, self.addr)
                elif item is _CLOSE:
                    with contextlib.suppress(OSError):
                        self.sock.shutdown(socket.SHUT_WR)
                    self._shut_at = time.monotonic()
                    return
        except OSError as exc:
            log.debug("write to %s failed: %s", self.addr, exc)
            with self._cv:
                self._dead = True

    def _note_out(self, data: bytes) -> None:
        state = self.state
        if state is not None:
            state.note_wire("out", data)

    def _sendall(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), _CHUNK):
            if self._dead:
                raise OSError("connection closed")
            self.sock.sendall(view[start : start + _CHUNK])
        if log.isEnabledFor(logging.DEBUG) and len(data) < 4096:
            log.debug("-> %s", _show(data))

    def _send_admin(self, state: SessionState, msg_type: str, body: list[tuple[int, FieldValue]]) -> int:
        assert self.client is not None
        with state.lock:
            item = state.record(msg_type, body, self.sim._now(), business=False)
            self.enqueue(state.frame(item, self.client))
            return item.seq

    # -- input ---------------------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            while not self._dead and not self.sim._stopping:
                if self._closing:
                    now = time.monotonic()
                    if self._shut_at is not None and now - self._shut_at > _LINGER:
                        break
                    if now - self._closing_at > _LINGER + self.sim.write_timeout + self.sim.resend_delay:
                        break
                try:
                    readable, _, _ = select.select([self.sock], [], [], _TICK)
                except (OSError, ValueError):
                    break
                if readable:
                    try:
                        data = self.sock.recv(65536)
                    except (OSError, ValueError):
                        break
                    if not data:
                        break
                    if self._closing:
                        continue
                    self._last_recv = time.monotonic()
                    self._test_request_at = None
                    self._reader.feed(data)
                    while not self._closing and (raw := self._reader.next_message()) is not None:
                        self._on_message(raw)
                if not self._closing:
                    self._on_tick()
        except Exception:
            log.exception("simulator connection %s failed", self.addr)
        finally:
            self._finish()

    def _finish(self) -> None:
        with self._cv:
            self._dead = True
            self._cv.notify()
        with contextlib.suppress(OSError):
            self.sock.close()
        state = self.state
        if state is not None:
            with state.lock:
                if state.live is self:
                    state.live = None
                    log.info("%s logged off (%s)", state.session.sender_comp_id, self.endpoint.role)
        self.sim._closed(self)

    def _on_tick(self) -> None:
        now = time.monotonic()
        if not self.logged_on:
            if now - self._connected_at > self.sim.logon_timeout:
                log.warning("no Logon within %.1f s from %s; closing", self.sim.logon_timeout, self.addr)
                self._closing = True
                self.abort()
            return
        state = self.state
        assert state is not None
        if now - self._last_queued >= self.heartbeat:
            self._send_admin(state, "0", [])
        silence = now - self._last_recv
        if self._test_request_at is None:
            if silence >= (self.sim.test_request_delay or self.heartbeat):
                self._test_requests += 1
                self._send_admin(state, "1", [(112, f"TEST{self._test_requests}")])
                self._test_request_at = now
        elif now - self._test_request_at >= self.heartbeat:
            log.warning("%s did not answer a TestRequest; closing", state.session.sender_comp_id)
            self._closing = True
            self.abort()

    def _on_message(self, raw: bytes) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("<- %s", _show(raw))
        if self.logged_on:
            self._on_session_message(raw)
        else:
            self._on_logon(raw)

    # -- logon ---------------------------------------------------------------------------------------------

    def _on_logon(self, raw: bytes) -> None:
        sim = self.sim
        state = self.state
        check = validate_logon(
            raw,
            keys=sim._keys_view(),
            now=sim._now(),
            expected_sender=state.session.sender_comp_id if state else None,
            expected_segment=state.session.segment if state else None,
            tolerance=sim.sending_time_tolerance,
            heartbeat_range=sim.heartbeat_range,
        )
        if state is None and check.sender_comp_id is not None and check.target_sub_id is not None:
            state = sim._wildcard_state(check.sender_comp_id, check.target_sub_id)
            self.state = state
        if state is not None:
            with state.lock:
                state.received.append(raw)
            state.note_wire("in", raw)
        sim._notify()
        request = check.request
        if state is not None and state.locked_out:
            self._reject(state, check.fields, Texts.PORT_CLOSURE, "session is locked out", counted=False)
            return
        if request is None:
            self._reject(state, check.fields, check.text, check.detail, counted=True)
            return
        assert state is not None
        with state.lock:
            if self.endpoint.role != state.primary_role:
                self._reject(
                    state, check.fields, Texts.BACKUP_NOT_ALLOWED, "logon on the backup", counted=False
                )
                return
            if state.live is not None:
                self._reject(state, check.fields, Texts.DUPLICATE_LOGON, "already logged on", counted=False)
                return
            if request.reset:
                if request.seq != 1:
                    self._reject(state, check.fields, Texts.IN_SESSION_SEQ, "141=Y with 34!=1", counted=True)
                    return
                if not sim.allow_reset_on_logon:
                    text = Texts.BAD_RESET_FLAG.format(value="Y")
                    self._reject(state, check.fields, text, "141=Y outside a session", counted=True)
                    return
                state.reset()
            if request.seq < state.next_in:
                text = Texts.SEQ_TOO_LOW.format(expected=state.next_in, received=request.seq)
                self._reject(state, check.fields, text, text, counted=True)
                return
            self._accept(state, request)

    def _accept(self, state: SessionState, request: LogonRequest) -> None:
        """Logged on: ack (spec §1.6) and, when the client is ahead of us, ask for the gap (CME behaviour)."""
        sim = self.sim
        self.client = ClientInfo(request.sender_comp_id, request.sender_sub_id, request.location)
        self.heartbeat = request.heartbeat
        gap = request.seq > state.next_in
        if gap and sim.inbound_gap == "resend":
            state.inbound_gap_target = request.seq
            state.inbound_highest = request.seq
        else:
            state.next_in = request.seq + 1
        state.live = self
        state.logons += 1
        self.logged_on = True
        body: list[tuple[int, FieldValue]] = [(108, request.heartbeat), (141, "Y" if request.reset else "N")]
        body += request.echo
        if sim.split_msg is not None:
            body.append((9553, sim.split_msg))
        ack = self._send_admin(state, "A", body)
        log.info(
            "%s logged on at %s (%s): client seq %d, ack seq %d",
            request.sender_comp_id,
            self.endpoint.role,
            state.session.segment,
            request.seq,
            ack,
        )
        if gap and sim.inbound_gap == "resend":
            self._send_admin(state, "2", [(7, state.next_in), (16, 0)])
        sim._notify()

    def _reject(
        self,
        state: SessionState | None,
        fields: Iterable[Field],
        text: str,
        detail: str,
        *,
        counted: bool,
    ) -> None:
        """Logout with ``text`` (and 789 when the session is known), then close. Counts bad logons."""
        sim = self.sim
        if state is None:
            state = SessionState(SimSession("UNKNOWN", "G"))
            scratch = True
        else:
            scratch = False
        with state.lock:
            if counted and not scratch:
                now = time.monotonic()
                state.bad_logons += 1
                times = state.bad_logon_times
                times.append(now)
                while times and now - times[0] > sim.lockout_window:
                    times.popleft()
                if len(times) >= sim.lockout_threshold and not state.locked_out:
                    state.locked_out = True
                    text = Texts.PORT_CLOSURE
                    log.warning("%s locked out after %d bad logons", state.session.sender_comp_id, len(times))
            if not scratch:
                state.rejections.append(Rejection(text, detail, counted))
            why = "" if detail == text else f" ({detail})"
            log.warning("%s from %s: logout %r%s", state.session.sender_comp_id, self.addr, text, why)
            got = dict(fields)
            client = self.client or ClientInfo(
                (got.get(49) or state.session.sender_comp_id.encode()).decode("ascii", "backslashreplace"),
                (got.get(50) or b"").decode("ascii", "backslashreplace"),
                (got.get(142) or b"").decode("ascii", "backslashreplace"),
            )
            body: list[tuple[int, FieldValue]] = [(58, text)]
            if not scratch:
                body.append((789, state.next_in))
            if sim.refusal_numbering == "next" and not scratch and not self.logged_on:
                at = sim._now()
                item = Stored(state.next_out, "5", at, format_ts(at), tuple(body), False)
            else:
                item = state.record("5", body, sim._now(), business=False)
            self.enqueue(state.frame(item, client))
            self.close_after_flush()
            if state.live is self:
                state.live = None
                self.logged_on = False
        sim._notify()

    # -- logged on -----------------------------------------------------------------------------------------

    def _on_session_message(self, raw: bytes) -> None:
        state = self.state
        assert state is not None and self.client is not None
        try:
            fields = parse_frame(raw)
        except FrameError as exc:
            log.warning("garbled message from %s ignored: %s", state.session.sender_comp_id, exc)
            return
        with state.lock:
            state.received.append(raw)
        state.note_wire("in", raw)
        self.sim._notify()
        msg_type = fields[2][1].decode("ascii", "replace")
        seq_text = first(fields, 34) or b""
        if not seq_text.isdigit():
            log.warning("message without a valid 34 from %s ignored", state.session.sender_comp_id)
            return
        seq = int(seq_text)
        poss_dup = first(fields, 43) == b"Y"
        if msg_type == "A":
            self._on_in_session_logon(state, raw, seq)
            return
        if msg_type == "4":
            self._on_sequence_reset(state, fields, seq, poss_dup)
            return
        with state.lock:
            if seq < state.next_in:
                if poss_dup:
                    return
                text = Texts.SEQ_TOO_LOW.format(expected=state.next_in, received=seq)
                self._reject(state, fields, text, text, counted=False)
                return
            if seq == state.next_in or self.sim.inbound_gap == "adopt":
                state.next_in = seq + 1
                self._close_inbound_gap(state)
            else:
                state.inbound_highest = max(state.inbound_highest, seq)
                if state.inbound_gap_target is None:
                    state.inbound_gap_target = seq
                    self._send_admin(state, "2", [(7, state.next_in), (16, 0)])
        if msg_type == "1":
            self._send_admin(state, "0", [(112, first(fields, 112) or b"")])
        elif msg_type == "2":
            self._on_resend_request(state, fields, seq)
        elif msg_type == "5":
            with state.lock:
                self._send_admin(state, "5", [(789, state.next_in)])
                self.close_after_flush()
                if state.live is self:
                    state.live = None
                    self.logged_on = False
            log.info("%s logged out", state.session.sender_comp_id)
            self.sim._notify()
        elif msg_type == "3":
            log.warning("%s rejected our message: %s", state.session.sender_comp_id, _show(raw))
        elif msg_type != "0":
            log.info("ignoring 35=%s from %s", msg_type, state.session.sender_comp_id)

    @staticmethod
    def _close_inbound_gap(state: SessionState) -> None:
        target = state.inbound_gap_target
        if target is not None and state.next_in > target:
            state.next_in = max(state.next_in, state.inbound_highest + 1)
            state.inbound_gap_target = None

    def _on_sequence_reset(self, state: SessionState, fields: list[Field], seq: int, poss_dup: bool) -> None:
        new_text = first(fields, 36) or b""
        if not new_text.isdigit():
            log.warning("SequenceReset without a valid 36 ignored")
            return
        new = int(new_text)
        gap_fill = first(fields, 123) == b"Y"
        with state.lock:
            if gap_fill and seq < state.next_in and poss_dup:
                return
            if new < state.next_in:
                if gap_fill:
                    return
                text = Texts.NEW_SEQ_TOO_LOW.format(expected=state.next_in, received=new)
                self._reject(state, fields, text, text, counted=False)
                return
            state.next_in = new
            self._close_inbound_gap(state)

    def _on_in_session_logon(self, state: SessionState, raw: bytes, seq: int) -> None:
        """141=Y with 34=1 while logged on resets both sequences (spec §2.1); other Logons are ignored."""
        sim = self.sim
        check = validate_logon(
            raw,
            keys=sim._keys_view(),
            now=sim._now(),
            expected_sender=state.session.sender_comp_id,
            expected_segment=state.session.segment,
            tolerance=sim.sending_time_tolerance,
            heartbeat_range=sim.heartbeat_range,
        )
        request = check.request
        if request is None:
            self._reject(state, check.fields, check.text, check.detail, counted=True)
            return
        if not request.reset:
            log.warning("second Logon without 141=Y from %s ignored", state.session.sender_comp_id)
            return
        if seq != 1:
            self._reject(
                state, check.fields, Texts.IN_SESSION_SEQ, "in-session reset with 34!=1", counted=True
            )
            return
        with state.lock:
            state.reset()
            state.live = None
            self.logged_on = False
            log.info("%s in-session sequence reset", state.session.sender_comp_id)
            self._accept(state, request)

    def _on_resend_request(self, state: SessionState, fields: list[Field], seq: int) -> None:
        sim = self.sim
        assert self.client is not None
        begin_text, end_text = first(fields, 7) or b"", first(fields, 16) or b""
        if not begin_text.isdigit() or not end_text.isdigit():
            text = Texts.RESEND_INVALID.format(
                begin=begin_text.decode("ascii", "backslashreplace"),
                end=end_text.decode("ascii", "backslashreplace"),
            )
            self._session_reject(state, seq, text)
            return
        begin, end = int(begin_text), int(end_text)
        with state.lock:
            forced = state.resend_answers.popleft() if state.resend_answers else None
            if forced is not None:
                how, text = forced
                if how == "logout":
                    self._reject(state, fields, text, "reject_next_resend", counted=False)
                else:
                    self._session_reject(state, seq, text)
                return
            if self.resend_in_flight:
                if sim.concurrent_resend == "reject":
                    self._session_reject(state, seq, Texts.RESEND_IN_PROGRESS)
                else:
                    log.info("ignoring a second resend request while one is answered")
                return
            if begin < 1 or (end != 0 and end < begin):
                self._session_reject(state, seq, Texts.RESEND_INVALID.format(begin=begin, end=end))
                return
            last = state.next_out - 1
            if begin > last:
                log.info(
                    "resend request %d-%d is beyond the last sent message %d; nothing to do", begin, end, last
                )
                return
            requested = (end if end else last) - begin + 1
            if requested > sim.resend_cap and end != 0 and sim.oversize_resend == "reject":
                self._session_reject(
                    state, seq, Texts.RESEND_TOO_LARGE.format(count=requested, cap=sim.resend_cap)
                )
                return
            stop = min(last, end if end else last, begin + sim.resend_cap - 1)
            now = sim._now()
            cutoff = now - sim.resend_window
            stale_before: datetime | None = None
            if state.has_stale(begin, stop, cutoff):
                hours = f"{sim.resend_window.total_seconds() / 3600:g}"
                if sim.stale_resend == "reject":
                    self._session_reject(state, seq, Texts.RESEND_STALE.format(hours=hours))
                    return
                if sim.stale_resend == "logout":
                    self._reject(
                        state, fields, Texts.RESEND_STALE.format(hours=hours), "stale", counted=False
                    )
                    return
                stale_before = cutoff
            data, count = state.resend_frames(begin, stop, self.client, now, stale_before)
            log.info(
                "%s resend %d-%d (asked %d-%d): %d messages",
                state.session.sender_comp_id,
                begin,
                stop,
                begin,
                end,
                count,
            )
            self.resend_in_flight = True
            self.enqueue(_ResendJob(data, count, sim.resend_delay))

    def _session_reject(self, state: SessionState, ref_seq: int, text: str) -> None:
        log.warning("session reject to %s: %s", state.session.sender_comp_id, text)
        self._send_admin(state, "3", [(45, ref_seq), (372, "2"), (58, text)])


class Simulator:
    """CME-like Drop Copy 4.0 acceptor for tests, demos and certification rehearsals.

    ``keys``: :class:`~dropcopy_client.auth.ApiKey` objects, or a mapping access key id -> secret text
    (such a key is not tied to a session). ``sessions``: the target sessions served, each on its own primary
    and backup port; ``None`` serves any well-formed 49 on one shared primary/backup pair.
    See docs/guides/simulator.md.
    """

    def __init__(
        self,
        keys: Iterable[ApiKey] | Mapping[str, str],
        *,
        sessions: Iterable[SimSession] | None = None,
        host: str = "127.0.0.1",
        sending_time_tolerance: float = 30.0,
        heartbeat_range: tuple[int, int] = (5, 60),
        logon_timeout: float = 60.0,
        lockout_threshold: int = 5,
        lockout_window: float = 60.0,
        clock: Clock | None = None,
        resend_cap: int = 2500,
        resend_window: timedelta = timedelta(hours=48),
        oversize_resend: Literal["truncate", "reject"] = "truncate",
        stale_resend: Literal["reject", "logout", "gapfill"] = "reject",
        concurrent_resend: Literal["reject", "ignore"] = "reject",
        inbound_gap: Literal["resend", "adopt"] = "resend",
        allow_reset_on_logon: bool = False,
        test_request_delay: float | None = None,
        resend_delay: float = 0.0,
        split_msg: int | None = None,
        write_timeout: float = 10.0,
        refusal_numbering: Literal["stream", "next"] = "stream",
        record_wire: bool = False,
    ) -> None:
        _choice("oversize_resend", oversize_resend, ("truncate", "reject"))
        _choice("refusal_numbering", refusal_numbering, ("stream", "next"))
        _choice("stale_resend", stale_resend, ("reject", "logout", "gapfill"))
        _choice("concurrent_resend", concurrent_resend, ("reject", "ignore"))
        _choice("inbound_gap", inbound_gap, ("resend", "adopt"))
        if resend_cap < 1 or lockout_threshold < 1:
            raise ValueError("resend_cap and lockout_threshold must be >= 1")
        self.host = host
        self.sending_time_tolerance = sending_time_tolerance
        self.heartbeat_range = heartbeat_range
        self.logon_timeout = logon_timeout
        self.lockout_threshold = lockout_threshold
        self.lockout_window = lockout_window
        self.resend_cap = resend_cap
        self.resend_window = resend_window
        self.oversize_resend = oversize_resend
        self.stale_resend = stale_resend
        self.concurrent_resend = concurrent_resend
        self.inbound_gap = inbound_gap
        self.allow_reset_on_logon = allow_reset_on_logon
        self.test_request_delay = test_request_delay
        self.resend_delay = resend_delay
        self.split_msg = split_msg
        self.write_timeout = write_timeout
        #: how a Logout refusing a logon is numbered: "stream" -- the session's next number, which it
        #: consumes (a resend answers it with a GapFill); "next" -- the session's next number *without*
        #: consuming it, as a gateway that does not share the session's stream would (CME does not say
        #: which it does, spec §8; "next" is the case where a client that counts the refusal loses a fill)
        self.refusal_numbering = refusal_numbering
        #: keep every frame received and written per session (redacted) for :meth:`transcript`
        self.record_wire = record_wire
        self._clock: Clock = clock or utc_now
        self._lock = threading.RLock()
        self._changed = threading.Condition()
        self._keys: dict[str, SimKey] = {}
        for key in _normalise_keys(keys):
            self._keys[key.access_key_id] = key
        self._wildcard = sessions is None
        self._states: dict[SimSession, SessionState] = {}
        self._endpoints: dict[tuple[SimSession | None, Role], _Endpoint] = {}
        self._conns: set[_Connection] = set()
        self._started = False
        self._stopping = False
        for session in sessions or ():
            self._add(session)
        if self._wildcard:
            for role in _ROLES:
                self._endpoints[(None, role)] = _Endpoint(self, role, None)

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Simulator:
        """A simulator accepting every key of a CME key file; other arguments as for the constructor."""
        return cls(load_key_file(path).keys, **kwargs)

    @classmethod
    def from_config(
        cls,
        config: ClientConfig | str | os.PathLike[str],
        keys: Iterable[ApiKey] | Mapping[str, str] | None = None,
        **options: Any,
    ) -> Simulator:
        """Stand in for every gateway a client configuration names: one :class:`SimSession` per CGW target
        (segment ``"G"``) and per MSGW segment, listening on the primary and backup addresses the configuration
        gives (a session without a backup gets one on an OS-chosen port).

        Every address must be loopback (127.x.x.x or localhost): a test must never listen on, or lead a client
        to, any other address, and a production configuration passed by mistake fails here. Port 0 lets the OS
        choose; :meth:`bound_config` then gives the configuration with the real ports. ``keys`` default to what
        the client would use: each group's key file, or the DROPCOPY_* variables for ``key_env`` groups.
        Other arguments as for the constructor. The simulator is not started.
        """
        if not isinstance(config, ClientConfig):
            config = load_config(config)
        addresses = _config_addresses(config)
        sim = cls(_config_keys(config) if keys is None else keys, sessions=list(addresses), **options)
        for session, pair in addresses.items():
            for role in _ROLES:
                host, port = pair.get(role, (pair["primary"][0], 0))
                endpoint = sim._endpoints[(session, role)]
                endpoint.host, endpoint.port = host, port
        return sim

    def bound_config(self, config: ClientConfig) -> ClientConfig:
        """``config`` with the endpoints of every session this simulator serves replaced by the addresses it
        listens on (port 0 becomes the port the OS chose). A session configured without a backup keeps none."""
        if not self._started:
            raise SimulatorError("the simulator is not started")
        groups = []
        for group in config.groups:
            targets = []
            for target in group.targets:
                segments: dict[str, SessionEndpoints] = {}
                for segment, endpoints in target.segments.items():
                    session = SimSession(target.sender_comp_id, segment)
                    if session not in self._states:
                        segments[segment] = endpoints
                        continue
                    primary = Endpoint(*self.endpoint(session, "primary"))
                    backup = Endpoint(*self.endpoint(session, "backup")) if endpoints.backup else None
                    segments[segment] = SessionEndpoints(primary, backup)
                targets.append(attrs.evolve(target, segments=segments))
            groups.append(attrs.evolve(group, targets=tuple(targets)))
        return attrs.evolve(config, groups=tuple(groups))

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind every endpoint (ports chosen by the OS) and start serving."""
        with self._lock:
            if self._started:
                return self
            self._stopping = False
            self._started = True
            try:
                for endpoint in self._endpoints.values():
                    endpoint.open()
            except BaseException:
                self.stop()
                raise
        log.info(
            "simulator started: %s", ", ".join(f"{k[0]}/{k[1]}:{v.port}" for k, v in self._endpoints.items())
        )
        return self

    def stop(self) -> None:
        """Close every listener and connection and join all threads (within about two seconds)."""
        with self._lock:
            self._stopping = True
            endpoints = list(self._endpoints.values())
            conns = list(self._conns)
            self._started = False
        for endpoint in endpoints:
            endpoint.close()
        for conn in conns:
            conn.abort()
        deadline = time.monotonic() + 2.0
        for endpoint in endpoints:
            endpoint.join(max(0.05, deadline - time.monotonic()))
        for conn in conns:
            conn.join(max(0.05, deadline - time.monotonic()))
        with self._lock:
            self._conns.clear()
            for state in self._states.values():
                state.live = None
        self._notify()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- sessions, keys, endpoints -------------------------------------------------------------------------

    @property
    def sessions(self) -> tuple[SimSession, ...]:
        """Every session known so far (configured, or seen on a wildcard endpoint)."""
        with self._lock:
            return tuple(self._states)

    def add_session(self, session: SimSession) -> None:
        """Serve one more target session (on its own ports); allowed while running."""
        if self._wildcard:
            raise SimulatorError("a simulator created with sessions=None serves every session already")
        with self._lock:
            if session in self._states:
                return
            self._add(session)
            if self._started:
                for role in _ROLES:
                    self._endpoints[(session, role)].open()

    def _add(self, session: SimSession) -> None:
        if not isinstance(session, SimSession):
            raise TypeError(f"expected SimSession, got {session!r}")
        state = SessionState(session, record_wire=self.record_wire)
        self._states[session] = state
        for role in _ROLES:
            self._endpoints[(session, role)] = _Endpoint(self, role, state)

    def add_key(self, key: ApiKey | tuple[str, str]) -> None:
        """Accept one more key: an ApiKey or ``(access_key_id, secret)`` (e.g. for key-rotation tests)."""
        for item in _normalise_keys([key] if isinstance(key, ApiKey) else dict([key])):
            with self._lock:
                self._keys[item.access_key_id] = item

    def remove_key(self, access_key_id: str) -> None:
        """Stop accepting a key (a revoked or rotated-out key)."""
        with self._lock:
            self._keys.pop(access_key_id, None)

    def _keys_view(self) -> dict[str, SimKey]:
        with self._lock:
            return dict(self._keys)

    def endpoint(self, session: SimSession, role: Role = "primary") -> tuple[str, int]:
        """``(host, port)`` of the session's primary or backup gateway (the same pair for every session when
        the simulator was created with ``sessions=None``)."""
        endpoint = self._endpoint(session, role)
        if not self._started:
            raise SimulatorError("the simulator is not started")
        return endpoint.address_host, endpoint.port

    def _endpoint(self, session: SimSession, role: Role) -> _Endpoint:
        _choice("role", role, _ROLES)
        with self._lock:
            if self._wildcard:
                return self._endpoints[(None, role)]
            self._state(session)
            return self._endpoints[(session, role)]

    def _state(self, session: SimSession) -> SessionState:
        with self._lock:
            state = self._states.get(session)
            if state is None:
                if not self._wildcard:
                    raise SimulatorError(f"unknown session {session}")
                state = self._states[session] = SessionState(session, record_wire=self.record_wire)
            return state

    def _wildcard_state(self, sender_comp_id: str, segment: str) -> SessionState | None:
        try:
            session = SimSession(sender_comp_id, segment)
        except ValueError:
            return None
        return self._state(session)

    def _accepted(self, endpoint: _Endpoint, sock: socket.socket, addr: tuple[str, int]) -> None:
        conn = _Connection(self, endpoint, sock, addr)
        with self._lock:
            if self._stopping:
                sock.close()
                return
            self._conns.add(conn)
            endpoint.conns.add(conn)
        log.debug("connection from %s on %s", addr, endpoint.role)
        conn.start()

    def _closed(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
            conn.endpoint.conns.discard(conn)
        self._notify()

    def _now(self) -> datetime:
        return self._clock()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- business messages ---------------------------------------------------------------------------------

    def send(self, session: SimSession, inner: bytes, *, poss_resend: bool = False) -> int:
        """Wrap ``inner`` in 35=n, give it the next sequence number, store it, and write it if the client is
        logged on (otherwise the client gets it by resend). Returns its sequence number."""
        return self.send_many(session, [inner], poss_resend=poss_resend).start

    def send_many(self, session: SimSession, inners: Iterable[bytes], *, poss_resend: bool = False) -> range:
        """:meth:`send` for a burst, written with few large writes. Returns the sequence numbers used."""
        state = self._state(session)
        with state.lock:
            first_seq = state.next_out
            now = self._now()
            items = [
                state.record("n", body, now, business=True, poss_resend=poss_resend)
                for body in business_bodies(inners)
            ]
            self._deliver(state, items)
            return range(first_seq, state.next_out)

    def send_same_seq(
        self,
        sessions: Iterable[SimSession],
        inner_by_session: Mapping[SimSession, bytes] | bytes,
        *,
        poss_resend: bool = False,
    ) -> int:
        """Send one business message on each session, all with the same 34; returns that number.

        MSGW sessions are sequenced per market segment, so the same 34 on two segments is normal and the client
        must process both (spec §3.4; AutoCert+ "Receive Message Stream"). ``inner_by_session`` maps each
        session to its inner message, or is one inner message for all. Sessions whose next number is lower
        than the others' first jump to the highest one (a connected client sees a gap, which a resend answers
        with a GapFill); to avoid that, give the sessions equal numbers with :meth:`set_sequences` before the
        client logs on.
        """
        chosen = list(dict.fromkeys(sessions))
        if not chosen:
            raise ValueError("send_same_seq needs at least one session")
        inners: dict[SimSession, bytes] = {}
        for session in chosen:
            if isinstance(inner_by_session, bytes | bytearray):
                inners[session] = bytes(inner_by_session)
            elif session in inner_by_session:
                inners[session] = inner_by_session[session]
            else:
                raise SimulatorError(f"no inner message for {session.name} in inner_by_session")
        states = sorted((self._state(s) for s in chosen), key=lambda st: attrs.astuple(st.session))
        with contextlib.ExitStack() as held:
            for state in states:  # one global order (sorted), so two callers cannot deadlock
                held.enter_context(state.lock)
            seq = max(state.next_out for state in states)
            now = self._now()
            for state in states:
                state.jump(seq - state.next_out)
                (body,) = business_bodies([inners[state.session]])
                item = state.record("n", body, now, business=True, poss_resend=poss_resend)
                self._deliver(state, [item])
        return seq

    def _deliver(self, state: SessionState, items: list[Stored]) -> None:
        conn = state.live
        frames: list[bytes] = []
        for item in items:
            if state.drop_pending > 0:
                state.drop_pending -= 1
                log.info("%s: seq %d stored, not written (drop_next)", state.session.sender_comp_id, item.seq)
                continue
            if conn is not None and conn.client is not None:
                frames.append(state.frame(item, conn.client))
        if conn is not None and frames:
            conn.enqueue(b"".join(frames))

    def send_raw(self, session: SimSession, data: bytes) -> None:
        """Write ``data`` as is on the live connection (no sequence number, not stored): malformed frames."""
        conn = self._live(session)
        conn.enqueue(bytes(data))

    def _live(self, session: SimSession) -> _Connection:
        state = self._state(session)
        with state.lock:
            conn = state.live
        if conn is None:
            raise SimulatorError(f"{session} is not logged on")
        return conn

    # -- sequence and failure controls ---------------------------------------------------------------------

    def next_outbound_seq(self, session: SimSession) -> int:
        """The 34 of the next message CME sends to the client."""
        state = self._state(session)
        with state.lock:
            return state.next_out

    def expected_inbound_seq(self, session: SimSession) -> int:
        """The 34 CME expects next from the client (what a Logout's 789 carries)."""
        state = self._state(session)
        with state.lock:
            return state.next_in

    def set_sequences(
        self, session: SimSession, *, next_outbound: int | None = None, expected_inbound: int | None = None
    ) -> None:
        """Start mid-week: set the next outbound and/or expected inbound sequence number."""
        state = self._state(session)
        with state.lock:
            if next_outbound is not None:
                if next_outbound < state.next_out:
                    raise ValueError("next_outbound cannot go backwards (use reset_week)")
                state.next_out = next_outbound
            if expected_inbound is not None:
                state.next_in = expected_inbound

    def reset_week(self, session: SimSession) -> None:
        """Beginning of week: both sequences back to 1 and the store emptied."""
        state = self._state(session)
        with state.lock:
            state.reset()

    def drop_next(self, session: SimSession, n: int = 1) -> None:
        """The next ``n`` business messages are numbered and stored but not written: the client sees a gap."""
        state = self._state(session)
        with state.lock:
            state.drop_pending += n

    def jump_sequence(self, session: SimSession, n: int) -> None:
        """Skip ``n`` outbound sequence numbers (never stored; a resend answers them with a GapFill)."""
        state = self._state(session)
        with state.lock:
            state.jump(n)

    def kill(self, session: SimSession, role: Role = "primary") -> None:
        """Close the endpoint's listener and its connections abruptly (TCP reset), as a crashed gateway."""
        endpoint = self._endpoint(session, role)
        with self._lock:
            conns = list(endpoint.conns)
            endpoint.close()
        endpoint.join()
        for conn in conns:
            conn.abort()
        log.info("%s %s killed", session.sender_comp_id, role)

    def revive(self, session: SimSession, role: Role = "primary") -> None:
        """Listen again on the same port after :meth:`kill`."""
        endpoint = self._endpoint(session, role)
        with self._lock:
            if self._started and not endpoint.alive:
                endpoint.open()

    def drop_connection(self, session: SimSession) -> None:
        """Reset the live connection without closing the listener (a network blip)."""
        self._live(session).abort()

    def logout(self, session: SimSession, text: str = "") -> None:
        """CME-initiated Logout (58 ``text`` when given, 789), then close."""
        conn = self._live(session)
        state = self._state(session)
        with state.lock:
            body: list[tuple[int, FieldValue]] = [(58, text)] if text else []
            conn._send_admin(state, "5", [*body, (789, state.next_in)])
            conn.close_after_flush()
            if state.live is conn:
                state.live = None
                conn.logged_on = False
        self._notify()

    def promote_backup(self, session: SimSession, jump: int = 4000, *, replay_last: int = 0) -> None:
        """Fail over: the current primary dies (its listener too, unless shared), the other endpoint becomes
        the primary, the outbound sequence jumps by ``jump`` and the last ``replay_last`` business messages
        are sent again on new numbers with 97=Y (spec §5.1)."""
        state = self._state(session)
        with state.lock:
            old: Role = "primary" if state.primary_role == "primary" else "backup"
            new: Role = "backup" if old == "primary" else "primary"
            conn = state.live
        if self._wildcard:
            if conn is not None:
                conn.abort()
        else:
            self.kill(session, old)
        with state.lock:
            if state.live is conn:
                state.live = None
            state.primary_role = new
            state.jump(jump)
            if replay_last:
                now = self._now()
                replays = [
                    state.record("n", item.body, now, business=True, poss_resend=True)
                    for item in state.last_business(replay_last)
                ]
                self._deliver(state, replays)
        log.info("%s failed over to %s, outbound seq now %d", session.sender_comp_id, new, state.next_out)
        self._notify()

    def reject_next_resend(
        self,
        session: SimSession,
        how: Literal["reject", "logout"] = "reject",
        text: str = Texts.RESEND_REJECTED,
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` ResendRequests with a Session Reject (35=3) or a Logout (58 ``text``;
        an empty text is a Logout that refuses nothing in particular, as in a logout storm) instead of the
        messages."""
        _choice("how", how, ("reject", "logout"))
        state = self._state(session)
        with state.lock:
            state.resend_answers.extend([(how, text)] * times)

    def reset_sequence(self, session: SimSession, new_seq: int) -> int:
        """SequenceReset-Reset (35=4 without 123=Y, spec §2.5): the next number becomes ``new_seq`` and the
        numbers skipped are never sent, not even on a resend. Returns the Reset's own 34."""
        state = self._state(session)
        with state.lock:
            if new_seq <= state.next_out:
                raise ValueError(f"new_seq must be above the next outbound number {state.next_out}")
            item = state.record("4", [(36, new_seq)], self._now(), business=False)
            state.next_out = new_seq
            self._deliver(state, [item])
            return item.seq

    def send_poison(self, session: SimSession, inner: bytes, how: str = "xmldatalen") -> int:
        """Send a business message whose frame is broken (``how``: "xmldatalen", "checksum" or
        "bodylength"), identically every time it is written, resends included. Returns its 34."""
        state = self._state(session)
        with state.lock:
            (body,) = business_bodies([inner])
            item = state.record("n", body, self._now(), business=True, corrupt=how)
            self._deliver(state, [item])
            return item.seq

    def reopen(self, session: SimSession) -> None:
        """Lift an automated port closure (what the Global Command Center does) and clear the count."""
        state = self._state(session)
        with state.lock:
            state.locked_out = False
            state.bad_logons = 0
            state.bad_logon_times.clear()

    # -- observation ---------------------------------------------------------------------------------------

    def bad_logons(self, session: SimSession) -> int:
        """Bad logons counted towards the port closure since start or the last :meth:`reopen`."""
        state = self._state(session)
        with state.lock:
            return state.bad_logons

    def is_locked_out(self, session: SimSession) -> bool:
        state = self._state(session)
        with state.lock:
            return state.locked_out

    def rejections(self, session: SimSession) -> list[Rejection]:
        """Every Logout the simulator forced on the session, with the log-only reason."""
        state = self._state(session)
        with state.lock:
            return list(state.rejections)

    def received(self, session: SimSession, msg_type: str | None = None) -> list[bytes]:
        """Every raw message received for the session (bad logons included), optionally of one 35 type."""
        state = self._state(session)
        with state.lock:
            raws = list(state.received)
        if msg_type is None:
            return raws
        return [raw for raw in raws if _msg_type(raw) == msg_type]

    def transcript(self, session: SimSession) -> list[WireFrame]:
        """Every frame received from and written to the session's client, in order, secrets redacted.

        Needs ``record_wire=True``: recording costs a copy of every frame, so it is off by default. A frame
        received is recorded when it arrives (bad logons included), a frame written just before it is written
        (a resend answer after its ``resend_delay``): whatever the client sent in reaction to a frame is always
        listed after it, and a frame the client has read is always in the list already. A frame whose write
        fails (the connection died) is listed too. The simulator's behaviour does not change with recording.
        """
        if not self.record_wire:
            raise SimulatorError("transcript() needs a simulator created with record_wire=True")
        return self._state(session).wire_frames()

    def is_logged_on(self, session: SimSession) -> bool:
        state = self._state(session)
        with state.lock:
            return state.live is not None

    def sessions_logged_on(self) -> list[SimSession]:
        with self._lock:
            states = list(self._states.values())
        return [s.session for s in states if s.live is not None]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Poll ``predicate`` (woken by simulator events) until true or ``timeout`` seconds; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                self._changed.wait(min(left, _TICK))

    def wait_logged_on(self, session: SimSession, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda: self.is_logged_on(session), timeout)

    def wait_logged_off(self, session: SimSession, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda: not self.is_logged_on(session), timeout)

    def __repr__(self) -> str:
        state = "running" if self._started else "stopped"
        return f"<Simulator {state} sessions={len(self._states)} keys={len(self._keys)}>"


def _msg_type(raw: bytes) -> str:
    start = raw.find(b"\x0135=") + 4
    end = raw.find(b"\x01", start)
    return raw[start:end].decode("ascii", "replace") if start >= 4 and end > 0 else ""


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _config_addresses(config: ClientConfig) -> dict[SimSession, dict[Role, tuple[str, int]]]:
    """Every session of ``config`` with its loopback ``(host, port)`` per configured role."""
    addresses: dict[SimSession, dict[Role, tuple[str, int]]] = {}
    taken: dict[tuple[str, int], str] = {}
    for group in config.groups:
        for target in group.targets:
            for segment, endpoints in target.segments.items():
                session = SimSession(target.sender_comp_id, segment)
                if session in addresses:
                    raise SimulatorError(f"group {group.name!r}: session {session.name} is configured twice")
                pair: dict[Role, tuple[str, int]] = {}
                for role in _ROLES:
                    address = endpoints.primary if role == "primary" else endpoints.backup
                    if address is None:
                        continue
                    label = f"{session.name} {role}"
                    where = f"group {group.name!r} session {label}"
                    host = _loopback(address.host, where)
                    if address.port:
                        other = taken.setdefault((host, address.port), label)
                        if other != label:
                            raise SimulatorError(
                                f"{where}: {host}:{address.port} is also {other}; the simulator gives every "
                                "session and role its own listener (use distinct ports, or port 0)"
                            )
                    pair[role] = (host, address.port)
                addresses[session] = pair
    return addresses


def _loopback(host: str, where: str) -> str:
    """``host`` as an IPv4 literal, refusing anything that is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise SimulatorError(
            f"{where}: host {host!r} is not a loopback address; the simulator only listens on 127.x.x.x "
            "(localhost), so that tests never touch another machine -- point the configuration at 127.0.0.1"
        )
    return str(address)


def _config_keys(config: ClientConfig) -> list[ApiKey]:
    """The keys a client with ``config`` would sign with: key files, and DROPCOPY_* for key_env groups."""
    keys: dict[str, ApiKey] = {}
    for group in config.groups:
        if group.key_env:
            key = keys_from_env()
            if key is None:
                raise KeyFileError(
                    f"group {group.name!r}: key_env = true but DROPCOPY_ACCESS_KEY_ID and DROPCOPY_SECRET_KEY "
                    "are not set (or pass keys= to Simulator.from_config)"
                )
            found: tuple[ApiKey, ...] = (key,)
        else:
            assert group.key_file is not None
            found = load_key_file(group.key_file).keys
        for item in found:
            keys.setdefault(item.access_key_id, item)
    return list(keys.values())


def _normalise_keys(keys: Iterable[ApiKey] | Mapping[str, str]) -> list[SimKey]:
    if isinstance(keys, Mapping):
        return [SimKey(str(k), str(v), None, None) for k, v in keys.items()]
    out = []
    for key in keys:
        if not isinstance(key, ApiKey):
            raise TypeError(
                f"keys must be ApiKey objects or a mapping of access key id to secret, got {key!r}"
            )
        out.append(SimKey.from_api_key(key))
    return out
