"""The user's side of the engine process (no quickfix here: the user's process never imports it).

:class:`EngineProcess` starts ``python -m dropcopy_client._engine._child`` with one end of a socket pair,
sends the configuration -- keys included -- over it, and from then on reads record batches from it and
sends commands. The child's argv holds only a file descriptor number, and its environment is the parent's
without any ``DROPCOPY_*`` variable, so no secret reaches either. Its standard error is read here and logged
(a crash's traceback lands in the user's log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dropcopy_client
from dropcopy_client._engine._protocol import FrameReader, ProtocolError, send_frame
from dropcopy_client._spec import SessionSpec
from dropcopy_client.errors import SessionError

log = logging.getLogger("dropcopy_client.engine")

#: bytes the user's process reads from the engine's socket per call (frames larger than this arrive over several)
RECV_BUFFER = 1 << 20

#: Logout texts that refuse a ResendRequest (CME never published its texts: spec §8). A Logout whose text
#: matches none of these, while a request is out, ends the connection without counting as a refusal.
DEFAULT_REFUSAL_PATTERNS: tuple[str, ...] = (r"resend", r"sequence", r"48.?hour", r"too (old|large|many)")


class EngineDied(SessionError):
    """The engine process ended without being asked to."""


class EngineProcess:
    """One engine process for every session of a client."""

    def __init__(
        self,
        specs: Sequence[SessionSpec],
        *,
        data_dir: Path,
        app_fields: tuple[str, str, str],
        reconnect_interval: int,
        logon_timeout: int,
        resend_cap: int,
        starts: dict[str, dict[str, Any]] | None = None,
        clock_offset: float = 0.0,
        refusal_patterns: Sequence[str] = DEFAULT_REFUSAL_PATTERNS,
        poison_strikes: int = 3,
        outbox_high: int = 200_000,
        outbox_low: int = 50_000,
        backoff_cap: float = 30.0,
        quick_end: float = 10.0,
        resend_wait: float = 30.0,
        lock_fd: int | None = None,
    ) -> None:
        self.specs = list(specs)
        #: the data_dir lock: the engine process holds it too, so a new client cannot start while an old
        #: engine (whose client was killed) is still logging out
        self._lock_fd = lock_fd
        self.index = {spec.name: i for i, spec in enumerate(self.specs)}
        self.data_dir = Path(data_dir)
        starts = starts or {}
        sessions = []
        for i, spec in enumerate(self.specs):
            ep = spec.endpoints
            start = starts.get(spec.name, {})
            sessions.append(
                {
                    "index": i,
                    "group": spec.group,
                    "kind": spec.kind,
                    "sender_comp_id": spec.sender_comp_id,
                    "segment": spec.segment,
                    "primary": (ep.primary.host, ep.primary.port),
                    "backup": (ep.backup.host, ep.backup.port) if ep.backup is not None else None,
                    "operator": spec.operator,
                    "location": spec.location,
                    "heartbeat": spec.heartbeat,
                    "key_session": spec.key.session_id,
                    "key_id": spec.key.access_key_id,
                    "secret": spec.key.secret.reveal(),
                    "next_target": start.get("next_target"),
                    "reset_store": bool(start.get("reset_store")),
                }
            )
        self._sessions = sessions
        self._config: dict[str, Any] = {
            "data_dir": str(self.data_dir),
            "app": list(app_fields),
            "reconnect_interval": reconnect_interval,
            "logon_timeout": logon_timeout,
            "resend_cap": resend_cap,
            "clock_offset": clock_offset,
            "log_level": logging.getLogger("dropcopy_client").getEffectiveLevel(),
            "refusal_patterns": list(refusal_patterns),
            "poison_strikes": poison_strikes,
            "outbox_high": outbox_high,
            "outbox_low": outbox_low,
            "backoff_cap": backoff_cap,
            "quick_end": quick_end,
            "resend_wait": resend_wait,
            "sessions": sessions,
        }
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader = FrameReader()
        #: one receive buffer for the life of the process: ``sock.recv(n)`` allocates (and for a large ``n``
        #: maps and unmaps) ``n`` bytes per call, ~40 µs at 4 MiB against ~2 for ``recv_into`` -- paid per
        #: batch, so per message at low rates
        self._rbuf = bytearray(RECV_BUFFER)
        self._rview = memoryview(self._rbuf)
        self._send_lock = threading.Lock()
        self._stderr_thread: threading.Thread | None = None
        self.pid: int | None = None
        self.stopping = False
        self.ended = False

    # ------------------------------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 60.0) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(OSError):
            for sock in (parent, child):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DROPCOPY_")}
        package_root = str(Path(dropcopy_client.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "dropcopy_client._engine._child", str(child.fileno())],
                pass_fds=[child.fileno()] + ([self._lock_fd] if self._lock_fd is not None else []),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C in the terminal is for the user's process to handle
                close_fds=True,
            )
        finally:
            child.close()
        self.pid = self._proc.pid
        self._sock = parent
        self._stderr_thread = threading.Thread(
            target=self._read_stderr, name="dropcopy-engine-stderr", daemon=True
        )
        self._stderr_thread.start()
        send_frame(parent, ("config", self._config))
        for entry in self._sessions:  # the engine process has the secrets now: keep no copy here
            entry["secret"] = ""
        hello = self._await_hello(timeout)
        log.info("engine process %d started (%d sessions)", hello, len(self.specs))

    def _await_hello(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        self.early: list[Any] = []
        while time.monotonic() < deadline:
            frames = self.recv(0.2)
            if frames is None:
                raise EngineDied(
                    "engine", f"the engine process ended while starting (exit code {self.returncode})"
                )
            for frame in frames:
                if frame[0] == "hello":
                    return int(frame[1])
                self.early.append(frame)
        self.kill()
        raise EngineDied("engine", f"the engine process did not start within {timeout:.0f} s")

    def _read_stderr(self) -> None:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return
        for line in proc.stderr:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                log.error("engine process: %s", text)

    def recv(self, timeout: float) -> list[Any] | None:
        """Frames that arrived within ``timeout`` (maybe none); None once the engine process is gone."""
        sock = self._sock
        if sock is None or self.ended:
            return None
        try:
            readable, _, _ = select.select([sock], [], [], timeout)
        except (OSError, ValueError):
            self.ended = True
            return None
        if not readable:
            return []
        try:
            size = sock.recv_into(self._rbuf)
        except OSError:
            size = 0
        if not size:
            self.ended = True
            return None
        self._reader.feed(self._rview[:size])
        try:
            return self._reader.frames()
        except ProtocolError:
            log.exception("engine process sent garbage; stopping it")
            self.kill()
            self.ended = True
            return None

    def command(self, *command: Any) -> None:
        sock = self._sock
        if sock is None or self.ended:
            return
        with self._send_lock:
            try:
                send_frame(sock, command)
            except OSError as exc:
                log.debug("engine command %r not sent: %s", command[0], exc)

    def stop(self, resend_wait: float = 30.0) -> None:
        """Ask the engine to log out (after in-flight resends) and exit; the reader keeps reading until EOF."""
        self.stopping = True
        self.command("stop", resend_wait)

    def wait(self, timeout: float) -> bool:
        proc = self._proc
        if proc is None:
            return True
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self, timeout: float = 15.0) -> None:
        """Wait for the process to exit (killing it after ``timeout``) and release everything."""
        if not self.wait(timeout):
            log.warning("engine process %s did not exit within %.0f s; killing it", self.pid, timeout)
            self.kill()
            self.wait(5)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        if self._stderr_thread is not None:
            self._stderr_thread.join(2)

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    # ------------------------------------------------------------------------------------------ commands
    def hold(self, name: str | None, reason: str) -> None:
        self.command("hold", None if name is None else self.index[name], reason)

    def resume(self, name: str | None, reason: str = "resumed") -> None:
        self.command("resume", None if name is None else self.index[name], reason)

    def resync(self, name: str, next_expected: int, reason: str) -> None:
        self.command("resync", self.index[name], next_expected, reason)

    def unlock(self, name: str) -> None:
        self.command("unlock", self.index[name])

    def reset(self, name: str) -> None:
        self.command("reset", self.index[name])

    def new_week(self, name: str) -> None:
        self.command("new_week", self.index[name])

    def set_key(self, name: str, access_key_id: str, secret: str) -> None:
        self.command("key", self.index[name], access_key_id, secret)
