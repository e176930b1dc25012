"""Reads QuickFIX's ScreenLog output (quickfix-free, so it is unit-tested without the engine).

The engine process logs through QuickFIX's own C++ ``ScreenLog`` with events on, outgoing messages always off
(the signed Logon must never be written anywhere) and incoming messages off, except for a session being
captured (a frame it cannot parse is being chased, see ``_session``). A Python ``Log`` would cost a
GIL-taking call per message in and out: about a third of the engine's capacity (docs/performance.md).
ScreenLog writes to the process's standard output, which the engine process points at a pipe it reads.

Each record is two lines::

    <20261201-22:11:10.329415000, FIX.4.2:ABCDEFN->CME:G, event>
      (MsgSeqNum too high, expecting 3 but received 4)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_HEADER = re.compile(rb"^<[0-9:.\-]+, (.+), (event|incoming|outgoing)>$")


class ScreenLogParser:
    """Feed it bytes as they come; it yields ``(session id, kind, text)`` for each complete record."""

    def __init__(self) -> None:
        self._tail = b""
        self._pending: tuple[str, str] | None = None

    def feed(self, data: bytes) -> Iterator[tuple[str, str, str]]:
        buf = self._tail + data
        lines = buf.split(b"\n")
        self._tail = lines.pop()  # an incomplete last line (or b"")
        for line in lines:
            header = _HEADER.match(line)
            if header is not None:
                self._pending = (header.group(1).decode("ascii", "replace"), header.group(2).decode("ascii"))
                continue
            pending = self._pending
            if pending is None or not line.startswith(b"  ("):
                continue  # a stray line (a multi-line value): nothing we act on
            self._pending = None
            body = line[3:-1] if line.endswith(b")") else line[3:]
            yield pending[0], pending[1], body.decode("utf-8", "surrogateescape")
