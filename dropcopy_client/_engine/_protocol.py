"""The pipe between the engine process and the user's process (no quickfix here: both sides import it).

One ``AF_UNIX`` stream socket. Every frame is a 4-byte little-endian length and a pickle (protocol 5) of one
tuple. Both ends are this library's own code in processes it started, so pickle is safe here; nothing from
the network is ever unpickled (CME's bytes travel as ``str`` inside the tuples).

Engine -> client: ``("hello", pid)``, then ``("batch", records)`` with records in the order the engine
processed them, across all sessions. A record is a tuple whose first item is its kind:

* ``(APP, session, seq, received_ns, raw)`` -- a business message QuickFIX processed in sequence;
* ``(ADMIN, session, seq, received_ns, msg_type, early, info)`` -- a session message; ``early`` when QuickFIX
  passed it to us before its number came up (a Logon answer it queued, a Reject or Logout whose number
  it does not check); ``info`` holds what the client needs from it (58, 789, 52) or None;
* ``(GAPFILL, session, seq, new_seq, received_ns)`` -- SequenceReset-GapFill: ``seq .. new_seq-1``;
* ``(RESET, session, seq, new_seq, received_ns)`` -- SequenceReset-Reset: numbers below ``new_seq`` will
  never come;
* ``(LOST, session, begin, end, at_ns, reason, raw)`` -- numbers the engine gave up (refused resends, a
  frame that can never be parsed), ``raw`` the offending frame (redacted) when there was one;
* ``(NOTICE, session, code, payload, at_ns)`` -- state and recovery news (see :class:`Notice`);
* ``(LOG, levelno, logger, message)`` -- a log record of the engine process.

Client -> engine: ``("config", dict)`` first (secrets included: they never travel any other way), then
commands: ``("hold", session | None, reason)``, ``("resume", session | None)``,
``("resync", session, next_expected, reason)``, ``("unlock", session)``, ``("reset", session)``,
``("new_week", session)``, ``("key", session, access_key_id, secret)``, ``("stop", timeout)``.
Sessions are numbered in the order of the configuration.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any, Final

APP: Final = 0
ADMIN: Final = 1
GAPFILL: Final = 2
RESET: Final = 3
LOST: Final = 4
NOTICE: Final = 5
LOG: Final = 6

_HEADER = struct.Struct("<I")
#: largest frame either side accepts (a batch of ~4,000 messages is well under this)
MAX_FRAME = 256 * 1024 * 1024


class ProtocolError(RuntimeError):
    """The other end sent something that is not a frame of this protocol."""


class Notice:
    """Codes of NOTICE records (payload in brackets)."""

    CONNECTING: Final = "connecting"  #: [endpoint "host:port"]
    LOGON_SENT: Final = "logon-sent"  #: [{"seq", "key_id"}]
    LOGGED_ON: Final = "logged-on"  #: [{"key_id"}]
    LOGGED_OUT: Final = "logged-out"  #: [{"after_seconds"}] disconnected (after a logon or an attempt)
    REJECTED: Final = "rejected"  #: [{"text", "next_expected", "sending_time", "locked"}] logon refused
    ADOPTED: Final = "adopted"  #: [{"seq", "text"}] mid-week logon: CME's 789 becomes our next 34
    BACKUP_REFUSED: Final = "backup-refused"  #: [text]
    THROTTLED: Final = "throttled"  #: [{"wait", "failures", "why"}] the next logon is held back
    RECOVERY: Final = "recovery"  #: [GapDetected | ResendRequested | GapFilled]
    HELD: Final = "held"  #: [reason] logged out on purpose, not reconnecting until resumed
    RESUMED: Final = "resumed"  #: [reason]
    RESYNC: Final = "resync"  #: [{"next_expected", "reason"}] logging out to ask again from a number
    BUFFER: Final = "buffer"  #: [{"bytes", "held"}] the hand-off buffer crossed a mark
    STRIKE: Final = "strike"  #: [{"seq", "strikes", "text"}] a number failed to arrive again
    ENGINE: Final = "engine"  #: [text] an engine event worth a log line
    BAD_FRAME: Final = "bad-frame"  #: [{"text", "expected"}] QuickFIX dropped bytes it cannot parse
    EPOCH: Final = "epoch"  #: [{"why"}] the session's numbers restart at 1 from here (weekly reset)
    STOPPED: Final = "stopped"  #: [None] the engine process is about to exit


def send_frame(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=5)
    sock.sendall(_HEADER.pack(len(data)) + data)


class FrameReader:
    """Incremental reader of frames from a stream socket."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data

    def frames(self) -> list[Any]:
        """The frames complete so far, in order (unpickled straight from the buffer, without a copy)."""
        buf = self._buf
        start = 0
        size = len(buf)
        out: list[Any] = []
        with memoryview(buf) as view:
            while size - start >= 4:
                (length,) = _HEADER.unpack_from(buf, start)
                if length > MAX_FRAME:
                    raise ProtocolError(f"frame of {length} bytes announced (limit {MAX_FRAME})")
                if size - start - 4 < length:
                    break
                out.append(pickle.loads(view[start + 4 : start + 4 + length]))
                start += 4 + length
        if start:
            del buf[:start]
        return out


def recv_frames(sock: socket.socket, reader: FrameReader, bufsize: int = 1 << 20) -> list[Any] | None:
    """Block for data; the frames it completed (maybe none), or None at end of stream."""
    data = sock.recv(bufsize)
    if not data:
        return None
    reader.feed(data)
    return reader.frames()
