"""Log output for the command line: text for people, or one JSON object per line for log shippers.

The library only logs (stdlib ``logging``, loggers under ``dropcopy_client``) and never prints or configures
handlers; ``dropcopy --log-format json`` and an application that wants the same lines use
:func:`configure_logging` or put :class:`JsonFormatter` on a handler of their own.

A JSON line has ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger`` and ``message``, then the
structured fields a record carries -- ``session``, ``seq``, ``event`` and the others in :data:`FIELDS`, given
with ``extra=`` where the library logs them -- and ``exception`` (the formatted traceback) when there is one.
Records without ``extra=`` whose message begins ``session NAME:`` (the library's convention) get ``session``
from it, so a log shipper can filter every line of one session.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import IO, Any, Final, Literal

#: structured fields copied from a record (``log.warning(..., extra={"session": name, "event": "..."})``)
FIELDS: Final = ("session", "group", "seq", "event", "key_id", "endpoint", "consumer", "path", "url")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SESSION_PREFIX = re.compile(r"^session (\S+?):\s")

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for field in FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                data[field] = value if isinstance(value, int | float | bool) else str(value)
        if "session" not in data:
            found = _SESSION_PREFIX.match(message)
            if found is not None:
                data["session"] = found.group(1)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (as ``logging.lastResort`` does)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def configure_logging(level: int, fmt: LogFormat = "text", *, stream: IO[str] | None = None) -> bool:
    """The root logger writes ``level`` and above to ``stream`` (default: stderr) as text or JSON lines.

    Like ``logging.basicConfig``, it leaves a root logger that already has handlers (an application's, a test
    runner's) alone and returns False; calling it again replaces only what it installed itself."""
    root = logging.getLogger()
    if any(not getattr(h, "_dropcopy", False) for h in root.handlers):
        return False
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler._dropcopy = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return True
