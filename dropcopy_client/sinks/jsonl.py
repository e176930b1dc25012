"""JSON Lines sink: one JSON object per event, appended to a file per trading date, fsynced per batch.

At-least-once, not transactional: a batch whose ``write`` did not return (a crash, a full disk) is offered
again, so its first lines may appear twice in a file. Readers de-duplicate on ``idempotency_key`` (every line
has it). A crash in the middle of a line leaves a torn last line; the next time this sink opens that file it
cuts the torn line off (logged as a warning), and the events it held come again with the re-offered batch.

Which file an event goes to (``<prefix>-YYYY-MM-DD.jsonl``):

1. its 75 TradeDate, when it has one (fills, busts, corrections);
2. else the UTC date it was received (``delivery.received_at``): acknowledgements, mass action reports,
   ``MessageError`` with a readable header;
3. else the UTC date of its ``at`` (notices such as ``UnrecoverableGap``);
4. else the UTC date at the time of writing.

So an acknowledgement received on Tuesday evening (US Central time: Wednesday's CME trading date) is in
Tuesday's file, while the fills of that order, which carry trade date Wednesday, are in Wednesday's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import IO

from dropcopy_client._serialize import event_to_dict
from dropcopy_client.errors import SinkError
from dropcopy_client.sinks._base import Batch

__all__ = ["JsonLinesSink", "file_date"]

log = logging.getLogger(__name__)

#: files kept open between batches (a replay over many trading dates closes the least recently used)
_OPEN_FILES = 4
_FILE_MODE = 0o600
_DIR_MODE = 0o700


def file_date(event: object) -> dt.date:
    """The date whose file ``event`` is appended to (the rule in the module docstring)."""
    trade_date = getattr(event, "trade_date", None)
    if isinstance(trade_date, dt.date):
        return trade_date
    delivery = getattr(event, "delivery", None)
    received = getattr(delivery, "received_at", None)
    if isinstance(received, dt.datetime):
        return received.astimezone(dt.UTC).date()
    at = getattr(event, "at", None)
    if isinstance(at, dt.datetime):
        return at.astimezone(dt.UTC).date()
    return dt.datetime.now(dt.UTC).date()


class JsonLinesSink:
    """Appends ``event_to_dict(event)`` as one line per event to ``<directory>/<prefix>-YYYY-MM-DD.jsonl``.

    Files are created with mode 0600 (the directory, if this creates it, 0700): they hold accounts and
    trades. ``fix_message=True`` adds each event's FIX message (``fix_message`` key) for audit trails.
    One thread writes (the client's delivery thread); ``close()`` closes the files.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        name: str = "jsonl",
        prefix: str = "dropcopy",
        fix_message: bool = False,
    ) -> None:
        if not name:
            raise ValueError("a sink needs a name (it names the sink's cursor in the journal)")
        if not prefix or "/" in prefix or "\\" in prefix or prefix.startswith("."):
            raise ValueError(f"prefix {prefix!r} must be a plain file name part, e.g. 'dropcopy'")
        self.name = name
        self.directory = Path(directory)
        self.prefix = prefix
        self.fix_message = fix_message
        self._files: OrderedDict[Path, IO[bytes]] = OrderedDict()
        self._closed = False
        try:
            self.directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(
                f"JSON Lines sink {name!r}: cannot create directory {self.directory} ({exc.strerror}); "
                "create it or choose another directory"
            ) from None

    def __repr__(self) -> str:
        return f"JsonLinesSink(name={self.name!r}, directory={str(self.directory)!r}, prefix={self.prefix!r})"

    def path_for(self, day: dt.date) -> Path:
        """The file of trading date ``day``."""
        return self.directory / f"{self.prefix}-{day.isoformat()}.jsonl"

    def write(self, batch: Batch) -> None:
        """Append every event of the batch, then fsync each file it touched; returns once they are on disk."""
        if self._closed:
            raise SinkError(f"JSON Lines sink {self.name!r} is closed")
        lines: dict[Path, list[bytes]] = {}
        fix_message = self.fix_message
        for event in batch.events:
            data = event_to_dict(event, fix_message=fix_message)
            line = json.dumps(data, separators=(",", ":")).encode("ascii") + b"\n"
            lines.setdefault(self.path_for(file_date(event)), []).append(line)
        for path, chunk in lines.items():
            try:
                handle = self._open(path)
                handle.write(b"".join(chunk))
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                self._drop(path)
                raise SinkError(
                    f"JSON Lines sink {self.name!r}: cannot append to {path} ({exc.strerror}); the batch "
                    "will be offered again: free disk space or fix the permissions"
                ) from exc

    def close(self) -> None:
        """Close every open file (idempotent)."""
        self._closed = True
        while self._files:
            _, handle = self._files.popitem()
            try:
                handle.close()
            except OSError:  # already fsynced: nothing of ours is lost by a failing close
                log.warning("JSON Lines sink %r: closing a file failed", self.name, exc_info=True)

    def _drop(self, path: Path) -> None:
        handle = self._files.pop(path, None)
        if handle is not None:
            with contextlib.suppress(OSError):  # the batch fails anyway; the next open cuts a torn line
                handle.close()

    def _open(self, path: Path) -> IO[bytes]:
        handle = self._files.get(path)
        if handle is not None:
            self._files.move_to_end(path)
            return handle
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, _FILE_MODE)
        try:
            if not created:
                _cut_torn_line(fd, path, self.name)
            handle = os.fdopen(fd, "ab")
        except BaseException:
            os.close(fd)
            raise
        if created:
            _fsync_directory(path.parent)
        self._files[path] = handle
        while len(self._files) > _OPEN_FILES:
            _, oldest = self._files.popitem(last=False)
            oldest.close()
        return handle


def _cut_torn_line(fd: int, path: Path, name: str) -> None:
    """Truncate a last line that has no newline (a write cut short by a crash), so every line parses."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    keep = 0
    block = 64 * 1024
    while end > 0:
        start = max(0, end - block)
        data = os.pread(fd, end - start, start)
        newline = data.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    os.ftruncate(fd, keep)
    os.fsync(fd)
    log.warning(
        "JSON Lines sink %r: %s ended in an incomplete line (a write cut short); removed its %d bytes, "
        "its events are written again when their batch is re-offered",
        name,
        path,
        size - keep,
    )


def _fsync_directory(directory: Path) -> None:
    """Make a new file's directory entry durable (a file fsynced in a directory never synced can vanish)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
            os.fsync(fd)
    finally:
        os.close(fd)
