"""``dropcopy run`` and ``dropcopy status``: run every session of a configuration, and look at it from elsewhere.

``run`` prints one line per event and publishes the client's health to ``<data_dir>/status.json`` every second
(written atomically, so a reader never sees half a file); with ``--metrics`` it also serves Prometheus metrics,
and under systemd it speaks the notify protocol (ready, watchdog, stopping). ``status`` shows that file while
its writer is alive and current; otherwise the runner is gone, and the only truth left is QuickFIX's store: the
next sequence numbers of each session, which are what the next logon will use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import select
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import click

from dropcopy_client._client import DropCopyClient
from dropcopy_client._delivery import ConsumerStatus
from dropcopy_client._events import KeyExpiryWarning, SessionEvent, SessionState
from dropcopy_client._fsperm import permission_warnings
from dropcopy_client._health import SessionStatus
from dropcopy_client._sdnotify import Notifier
from dropcopy_client._spec import CME
from dropcopy_client.cli._exit import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_LOCKED_OUT,
    EXIT_LOST,
    EXIT_NOT_RUNNING,
    EXIT_OK,
)
from dropcopy_client.cli._format import config_option, describe, event_json, format_table
from dropcopy_client.config import ClientConfig, load_config, sink_from_url
from dropcopy_client.errors import ConfigError, KeyFileError

log = logging.getLogger("dropcopy_client.cli")

STATUS_FILE: Final = "status.json"
#: status.json older than this means its writer is stuck or gone (it rewrites the file every second)
FRESH_SECONDS: Final = 10.0
PUBLISH_SECONDS: Final = 1.0
_SEQNUMS = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")

_config_option = config_option()


# ---------------------------------------------------------------------------------------------------- run


@click.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of a text line.")
@click.option(
    "--sink",
    "sink_urls",
    multiple=True,
    metavar="URL",
    help="Also write the stream to this sink (postgresql://... or jsonl:DIR), besides the [[sink]] tables; "
    "repeatable. Its cursor is named after its kind (postgres, jsonl) unless --sink-name.",
)
@click.option(
    "--sink-name",
    "sink_names",
    multiple=True,
    metavar="NAME",
    help="Names for the --sink URLs, in order (a sink's name names its cursor: keep it stable).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse to start (exit 2) when a key file, key store or the data_dir can be read by others.",
)
@click.option(
    "--metrics",
    "metrics_address",
    metavar="ADDR:PORT",
    envvar="DROPCOPY_METRICS",
    help="Serve Prometheus metrics on http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464; port 0: any free port, "
    "named in status.json). Needs prometheus-client: pip install prometheus-client (from a checkout: "
    "pip install -e '.[metrics]').",
)
def run(
    config_path: Path,
    as_json: bool,
    sink_urls: tuple[str, ...],
    sink_names: tuple[str, ...],
    strict: bool,
    metrics_address: str | None,
) -> None:
    """Log on every session of the configuration and print every event until Ctrl-C or SIGTERM.

    Stopping logs every session out and delivers what was already received before exiting with 0; so does a
    closed standard output (`dropcopy run | head`). A wrong configuration, key file or --metrics address exits
    with 2 before any connection; a client that cannot start (another one runs on the data_dir) exits with 1.
    Once every session is locked out (CME refused its logon) nothing can make progress: the reason is printed
    and the exit code is 3.
    """
    ctx = click.get_current_context()
    metrics = None
    try:
        config = with_sinks(load_config(config_path), sink_urls, sink_names)
        loose = permission_warnings(config) if strict else []
        if loose:
            raise ConfigError("; ".join(loose) + " (--strict refuses files that others can read)")
        client = DropCopyClient(config, cli_hints=True)
        if metrics_address is not None:
            metrics = _serve_metrics(client, metrics_address)
    except (ConfigError, KeyFileError) as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    stop = threading.Event()
    stdout = StdoutWatch(stop)
    client.on(object, name="cli:printer")(_printer(as_json, stdout))
    publisher = StatusPublisher(
        client.status,
        Path(client.config.data_dir) / STATUS_FILE,
        consumers=client.consumers,
        extra={"metrics": metrics.url} if metrics is not None else None,
    )
    client.on(SessionEvent, name="cli:status")(lambda _: publisher.poke())  # a state change is shown at once
    notifier = Notifier(client.status, client._writer_alive)  # systemd Type=notify; a no-op elsewhere
    code = EXIT_OK
    with _stop_signals(stop):
        try:
            client.start()
            publisher.start()
            notifier.start()
            while not stop.wait(0.5):
                if stdout.closed():
                    break
                stuck = _no_progress(client.status())
                if stuck is not None:
                    click.echo(f"dropcopy: {stuck}", err=True)
                    code = EXIT_LOCKED_OUT
                    break
        except Exception as exc:
            log.debug("start failed", exc_info=True)
            click.echo(f"dropcopy: cannot start: {exc}", err=True)
            code = EXIT_FAILED
        finally:
            notifier.stopping()
            client.stop()
            publisher.close()
            if metrics is not None:
                metrics.close()
    ctx.exit(code)


def _serve_metrics(client: DropCopyClient, address: str) -> Any:
    """The metrics server for ``--metrics`` (before any connection: a wrong address exits 2)."""
    try:
        from prometheus_client import CollectorRegistry

        from dropcopy_client.metrics import ClientCollector, parse_address, serve
    except ImportError:
        raise ConfigError(
            "--metrics needs prometheus-client, which is not installed: pip install prometheus-client "
            "(from a checkout: pip install -e '.[metrics]')"
        ) from None
    host, port = parse_address(address)
    registry = CollectorRegistry()
    registry.register(ClientCollector(client))
    try:
        server = serve(registry, (host, port))
    except OSError as exc:
        raise ConfigError(
            f"--metrics {address}: cannot listen there ({exc.strerror or exc}); choose a free port, or an "
            "address of this machine (127.0.0.1 for local scrapes only)"
        ) from None
    log.info("serving metrics on %s", server.url, extra={"event": "metrics_listening", "url": server.url})
    return server


def with_sinks(config: ClientConfig, urls: tuple[str, ...], names: tuple[str, ...]) -> ClientConfig:
    """``config`` with the ``--sink`` URLs added to its ``[[sink]]`` tables (names checked for clashes)."""
    if len(names) > len(urls):
        raise ConfigError(f"--sink-name given {len(names)} times for {len(urls)} --sink URL(s)")
    extra = [
        sink_from_url(url, name=names[i] if i < len(names) else None, where=f"--sink #{i + 1}")
        for i, url in enumerate(urls)
    ]
    taken = {s.name for s in config.sinks}
    for sink in extra:
        if sink.name in taken:
            raise ConfigError(
                f"two sinks are named {sink.name!r} (a sink's name names its cursor): give this --sink its own "
                f"name with --sink-name NAME"
            )
        taken.add(sink.name)
    return attrs.evolve(config, sinks=(*config.sinks, *extra)) if extra else config


def _no_progress(sessions: list[SessionStatus]) -> str | None:
    """Why no session can make progress (all locked out), or None."""
    if sessions and all(s.state is SessionState.LOCKED_OUT for s in sessions):
        reasons = "; ".join(f"{s.session}: {s.text or 'logon refused'}" for s in sessions)
        return (
            f"every session is locked out ({reasons}). CME refused the logons; fix the key (dropcopy keys check "
            "FILE) or the clock, then run `dropcopy run` again"
        )
    return None


def _printer(as_json: bool, stdout: StdoutWatch) -> Callable[[object], None]:
    def show(event: object) -> None:
        if not as_json and isinstance(event, KeyExpiryWarning):
            return  # the client logged it already (once per key, on stderr): a terminal would show it twice
        line = event_json(event) if as_json else describe(event)
        if not line or stdout.gone:
            return
        try:
            click.echo(line)
        except (BrokenPipeError, ValueError):  # `dropcopy run | head`: nobody reads any more
            stdout.close()

    return show


class StdoutWatch:
    """Notices that nobody reads standard output any more, even when nothing is written to it.

    ``dropcopy run | head -n 3`` on a quiet session writes nothing after the third line, so a failed write
    would never tell. ``poll()`` on the write end of a pipe whose reader is gone reports ``POLLERR`` (and a
    closed terminal ``POLLHUP``) without writing, so the main loop asks twice a second. Once it is gone, stdout
    is pointed at /dev/null so that nothing later (the printer, the interpreter's final flush) fails on it,
    and the run stops like Ctrl-C, with exit code 0.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self.gone = False
        try:
            self._fd: int | None = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # replaced by something without a descriptor (tests)
            self._fd = None

    def closed(self) -> bool:
        if not self.gone and self._fd is not None:
            poller = select.poll()
            poller.register(self._fd, 0)  # POLLERR, POLLHUP and POLLNVAL are always reported
            if any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0)):
                self.close()
        return self.gone

    def close(self) -> None:
        if self.gone:
            return
        self.gone = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._fd)
                os.close(devnull)
        log.info("standard output closed: stopping")
        self._stop.set()


@contextlib.contextmanager
def _stop_signals(stop: threading.Event) -> Iterator[None]:
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class StatusPublisher:
    """Writes ``status()`` to a JSON file every second from a background thread, and once more at :meth:`close`.

    The thread only reads the client's status snapshot, so it can never disturb the sessions; the file is
    replaced atomically (temporary file + ``os.replace``). :meth:`poke` asks for a write now (cheap, from any
    thread), so state changes do not wait for the next tick.
    """

    def __init__(
        self,
        status: Callable[[], list[SessionStatus]],
        path: Path,
        *,
        interval: float = PUBLISH_SECONDS,
        pid: int | None = None,
        consumers: Callable[[], list[ConsumerStatus]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = path
        self._extra = dict(extra or {})
        self._status = status
        self._consumers = consumers
        self._interval = interval
        self._pid = os.getpid() if pid is None else pid
        self._done = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.write(running=True)
        self._thread = threading.Thread(target=self._loop, name="dropcopy-status", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._done.is_set():
                return
            self.write(running=True)

    def poke(self) -> None:
        """Write as soon as possible (the handler of a session event calls this)."""
        self._wake.set()

    def close(self) -> None:
        """Stop the thread and write the final snapshot with ``running: false``."""
        self._done.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.write(running=False)

    def write(self, *, running: bool) -> None:
        data = {
            "pid": self._pid,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "running": running,
            "sessions": [session_json(s) for s in self._status()],
            "consumers": [consumer_json(c) for c in (self._consumers() if self._consumers else [])],
            **self._extra,
        }
        tmp = self.path.with_name(f".{self.path.name}.{self._pid}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)


def session_json(status: SessionStatus) -> dict[str, Any]:
    """One ``status.json`` session entry."""
    return {
        "group": status.group,
        "session": status.session,
        "state": status.state.value,
        "endpoint": status.endpoint,
        "last_inbound_seq": status.last_inbound_seq,
        "last_outbound_seq": status.last_outbound_seq,
        "last_message_at": status.last_message_at.isoformat() if status.last_message_at else None,
        "open_gaps": [list(gap) for gap in status.open_gaps],
        "messages": status.messages,
        "errors": status.errors,
        "duplicates": status.duplicates,
        "lost": status.lost,
        "key_id": status.key_id,
        "text": status.text,
    }


def consumer_json(status: ConsumerStatus) -> dict[str, Any]:
    """One ``status.json`` consumer entry: where it stands behind the journal."""
    return {
        "name": status.name,
        "kind": status.kind,
        "cursor": status.cursor,
        "lag_messages": status.lag_messages,
        "lag_seconds": round(status.lag_seconds, 3),
        "failures": status.failures,
        "dead_letters": status.dead_letters,
        "state": status.state,
        "last_error": status.last_error,
    }


# ---------------------------------------------------------------------------------------------------- status


@click.command()
@_config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def status(config_path: Path, as_json: bool) -> None:
    """Show every session: live while `dropcopy run` is running, else the stored sequence numbers.

    The live view comes from <data_dir>/status.json when its process is alive and wrote it within 10 s;
    otherwise each session's next sequence numbers are read from QuickFIX's store, with state "stopped".
    Exit codes: 0 running and healthy, 3 a session is locked out, 4 numbers were declared lost this trading
    week (see `dropcopy audit`), 5 not running (checked in this order: 5, then 3, then 4); 2 the
    configuration is wrong.
    """
    ctx = click.get_current_context()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    report = read_status(config)
    if as_json:
        click.echo(json.dumps(report, separators=(",", ":")))
    else:
        if report["source"] == "live":
            click.echo(f"dropcopy run is running (pid {report['pid']}), updated {report['updated']}")
        else:
            click.echo(f"not running; sequence numbers from the QuickFIX stores in {store_dir(config)}")
        click.echo(status_table(report["sessions"]))
        if report.get("consumers"):
            click.echo("")
            click.echo(consumer_table(report["consumers"]))
    ctx.exit(status_code(report))


def status_code(report: dict[str, Any]) -> int:
    """The exit code of ``dropcopy status`` for a report (see its help)."""
    if report["source"] != "live":
        return EXIT_NOT_RUNNING
    sessions = report["sessions"]
    if any(s.get("state") == "locked out" for s in sessions):
        return EXIT_LOCKED_OUT
    if any(s.get("lost") for s in sessions):
        return EXIT_LOST
    return EXIT_OK


def read_status(config: ClientConfig, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The live ``status.json`` when its writer is alive, running and current; otherwise the stores' view."""
    live = live_status(Path(config.data_dir) / STATUS_FILE, now=now)
    if live is not None:
        return {"source": "live", **live}
    return {
        "source": "store",
        "pid": None,
        "updated": None,
        "running": False,
        "sessions": stored_sessions(config),
    }


def live_status(path: Path, *, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """``path`` parsed, or None when it is missing, unreadable, not running, stale or its process is gone."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid = int(data["pid"])
        updated = dt.datetime.fromisoformat(data["updated"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(data, dict) or data.get("running") is not True or updated.tzinfo is None:
        return None
    age = ((now or dt.datetime.now(dt.UTC)) - updated).total_seconds()
    if abs(age) > FRESH_SECONDS or not pid_alive(pid):
        return None
    return data


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def store_dir(config: ClientConfig) -> Path:
    """Where the engine keeps QuickFIX's file store (``<data_dir>/store``)."""
    return Path(config.data_dir) / "store"


def seqnums_path(config: ClientConfig, sender_comp_id: str, segment: str) -> Path:
    """QuickFIX's sequence number file of one session: ``FIX.4.2-<SENDER>-CME-<qualifier>.seqnums``, where the
    SessionQualifier is the segment (FileStore appends it to the name)."""
    return store_dir(config) / f"FIX.4.2-{sender_comp_id}-{CME}-{segment}.seqnums"


def read_seqnums(path: Path) -> tuple[int, int] | None:
    """``(next outbound, next expected inbound)`` from a ``"<sender> : <target>"`` seqnums file."""
    try:
        match = _SEQNUMS.match(path.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError):
        return None
    return (int(match[1]), int(match[2])) if match else None


def stored_sessions(config: ClientConfig) -> list[dict[str, Any]]:
    """Every configured session as the store left it (state "stopped"; None where no store exists yet)."""
    out: list[dict[str, Any]] = []
    for group in config.groups:
        for target in group.targets:
            for segment in target.segments:
                path = seqnums_path(config, target.sender_comp_id, segment)
                seqs = read_seqnums(path)
                next_out, next_in = seqs if seqs is not None else (None, None)
                out.append(
                    {
                        "group": group.name,
                        "session": f"{target.sender_comp_id}:{segment}",
                        "state": "stopped",
                        "endpoint": None,
                        "last_inbound_seq": next_in - 1 if next_in is not None else None,
                        "last_outbound_seq": next_out - 1 if next_out is not None else None,
                        "next_inbound_seq": next_in,
                        "next_outbound_seq": next_out,
                        "last_message_at": None,
                        "open_gaps": [],
                        "messages": None,
                        "errors": None,
                        "duplicates": None,
                        "store": str(path) if seqs is not None else None,
                    }
                )
    return out


_COLUMNS: Final = (
    ("GROUP", "group"),
    ("SESSION", "session"),
    ("STATE", "state"),
    ("ENDPOINT", "endpoint"),
    ("LAST IN", "last_inbound_seq"),
    ("LAST OUT", "last_outbound_seq"),
    ("LAST MESSAGE", "last_message_at"),
    ("GAPS", "open_gaps"),
    ("MESSAGES", "messages"),
    ("ERRORS", "errors"),
    ("DUPLICATES", "duplicates"),
)


def consumer_table(consumers: list[dict[str, Any]]) -> str:
    """Each consumer's cursor and lag behind the journal."""
    headers = ["CONSUMER", "KIND", "CURSOR", "LAG", "LAG S", "FAILURES", "DEAD", "STATE"]
    rows = [
        [
            c["name"],
            c["kind"],
            "-" if c["cursor"] is None else str(c["cursor"]),
            str(c["lag_messages"]),
            f"{c['lag_seconds']:.1f}",
            str(c["failures"]),
            str(c["dead_letters"]),
            c["state"],
        ]
        for c in consumers
    ]
    return format_table(headers, rows, right=(2, 3, 4, 5, 6))


def status_table(sessions: list[dict[str, Any]]) -> str:
    """The sessions of a status report as a table (``-`` for what is unknown)."""

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        if key == "open_gaps":
            return ",".join(f"{b}-{e}" for b, e in value) or "-"
        return str(value)

    rows = [[cell(key, session.get(key)) for _, key in _COLUMNS] for session in sessions]
    return format_table([title for title, _ in _COLUMNS], rows, right=(4, 5, 8, 9, 10))
