"""Sinks: consumers that write the journal's stream somewhere else (see docs/guides/sinks.md).

Shipped: :class:`~dropcopy_client.sinks.postgres.PostgresSink` (transactional: exactly once, needs the
``postgres`` extra) and :class:`JsonLinesSink` (at least once). :func:`open_sink` picks one from a URL::

    open_sink("postgresql://risk@db.internal:5432/risk", table="fills")
    open_sink("jsonl:///var/lib/dropcopy/archive")
"""

from __future__ import annotations

import inspect
import urllib.parse
from typing import TYPE_CHECKING, Any

from dropcopy_client.errors import ConfigError
from dropcopy_client.sinks._base import Batch, Sink, TransactionalSink
from dropcopy_client.sinks._dsn import redact_dsn
from dropcopy_client.sinks.jsonl import JsonLinesSink

if TYPE_CHECKING:
    from dropcopy_client.sinks.postgres import PostgresSink as PostgresSink

__all__ = [
    "POSTGRES_SCHEMES",
    "SCHEMES",
    "Batch",
    "JsonLinesSink",
    "Sink",
    "TransactionalSink",
    "jsonl_directory",
    "open_sink",
    "sink_kind",
]

POSTGRES_SCHEMES = ("postgresql", "postgres")
SCHEMES = (*POSTGRES_SCHEMES, "jsonl")
_FORMS = "postgresql://user@host:5432/dbname, postgres://..., jsonl:///absolute/dir or jsonl:relative/dir"


def __getattr__(name: str) -> Any:
    # ``from dropcopy_client.sinks import PostgresSink`` works, but imports psycopg (an optional extra) only
    # then; that is also why it is not in __all__ (a star import must not need the extra)
    if name == "PostgresSink":
        from dropcopy_client.sinks.postgres import PostgresSink as PostgresSink

        return PostgresSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sink_kind(url: str) -> str:
    """``"postgres"`` or ``"jsonl"`` for a sink URL; ConfigError (URL redacted) for any other."""
    scheme = url.split(":", 1)[0].lower() if isinstance(url, str) and ":" in url else ""
    if scheme in POSTGRES_SCHEMES:
        return "postgres"
    if scheme == "jsonl":
        return "jsonl"
    shown = redact_dsn(url) if isinstance(url, str) else repr(url)
    raise ConfigError(f"sink URL {shown!r}: unknown scheme; accepted: {', '.join(SCHEMES)} ({_FORMS})")


def jsonl_directory(url: str) -> str:
    """The directory of a ``jsonl:`` URL: ``jsonl:///abs/dir`` -> ``/abs/dir``, ``jsonl:rel/dir`` -> ``rel/dir``."""
    parts = urllib.parse.urlsplit(url)
    if parts.netloc:
        raise ConfigError(
            f"sink URL {url!r}: a jsonl URL names a directory, not a host: jsonl:///absolute/dir or jsonl:rel/dir"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"sink URL {url!r}: a jsonl URL takes no ?query or #fragment; pass options instead")
    path = urllib.parse.unquote(parts.path)
    if not path:
        raise ConfigError(
            f"sink URL {url!r}: no directory; write jsonl:///absolute/dir or jsonl:relative/dir"
        )
    return path


def open_sink(url: str, **options: Any) -> Sink:
    """The sink a URL names, built with ``options`` (the keyword arguments of its class).

    ``postgresql://...`` / ``postgres://...`` -> :class:`~dropcopy_client.sinks.postgres.PostgresSink` (the URL
    is its DSN); ``jsonl:///abs/dir`` or ``jsonl:relative/dir`` -> :class:`JsonLinesSink`. A wrong scheme or
    option is a :class:`~dropcopy_client.errors.ConfigError` that names the URL, without its password.
    """
    kind = sink_kind(url)
    cls: type[Any]
    if kind == "postgres":
        try:
            from dropcopy_client.sinks.postgres import PostgresSink as PostgresSink
        except ImportError as exc:
            raise ConfigError(f"sink URL {redact_dsn(url)!r}: {exc}") from None
        cls, args = PostgresSink, (url,)
    else:
        cls, args = JsonLinesSink, (jsonl_directory(url),)
    accepted = [
        p.name for p in inspect.signature(cls).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"sink URL {redact_dsn(url)!r}: unknown option(s) {unknown} for {cls.__name__}; accepted: {accepted}"
        )
    sink: Sink = cls(*args, **options)
    return sink
