"""A subprocess whose stdout and stderr lines are collected by threads, for tests that signal or pipe it."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest


class Proc:
    """``argv`` started with unbuffered Python output; :meth:`wait_line` waits for a line, :meth:`stop` signals
    and waits, :meth:`kill` (call it in ``finally``) makes sure nothing outlives the test."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.err_lines: list[str] = []
        self._new: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines, self._new), daemon=True),
            threading.Thread(
                target=self._pump, args=(self.proc.stderr, self.err_lines, self._new), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream: Any, into: list[str], new: queue.SimpleQueue[str | None]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            new.put(line)

    @property
    def stderr(self) -> str:
        return "\n".join(self.err_lines)

    def wait_line(
        self, predicate: Callable[[str], bool], timeout: float = 20.0, *, stderr: bool = False
    ) -> str:
        """The first collected line (of stdout, or of stderr) matching ``predicate``; fails on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.err_lines if stderr else self.lines):
                if predicate(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self._new.empty()):
                pytest.fail(f"no matching line in {timeout} s; stdout={self.lines!r} stderr={self.stderr!r}")
            with contextlib.suppress(queue.Empty):
                self._new.get(timeout=min(left, 0.2))

    def stop(self, sig: signal.Signals, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit code (fails if it takes longer than ``timeout``)."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
