"""The port-closure guard: never a fifth unsuccessful logon inside 60 seconds, whatever restarts happen.

CME closes a session's ports after the fifth invalid logon within 60 seconds, and only a phone call to the
Global Command Center reopens them (spec §1.7, §9). The guard keeps every logon attempt per target (the
SenderCompID: CME does not say whether MSGW segments are counted apart, so they are counted together) in a
small file in ``data_dir``, written and fsynced *before* the Logon goes out. A later process -- a restart
loop, a second run after a crash -- reads it back, so no sequence of restarts can exceed the budget.

An attempt is *pending* until it ends: ``ok`` (logged on), ``refused`` (answered by a Logout, counted) or
``not-counted`` (a refusal CME does not count, such as "Backup session not allowed"). A pending attempt of a
previous process is counted as refused: its outcome is unknown. An attempt of this process still pending is
counted too while it waits, so concurrent MSGW segments never overrun the budget together.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import attrs

log = logging.getLogger("dropcopy_client.engine")

#: CME closes the port on the fifth invalid logon inside this window (spec §1.7)
WINDOW = 60.0
#: attempts that may be unsuccessful inside the window: the fifth never happens
BUDGET = 4
FILE_NAME = "logon-attempts.jsonl"
_KEEP = 3600.0  # entries older than this are dropped when the file is rewritten


@attrs.define
class _Attempt:
    target: str
    at: float
    outcome: str  # pending | ok | refused | not-counted
    pid: int
    n: int = 0  # numbers the attempts of one process (their times may be equal)


class LogonBudget:
    """Decides when a target may send its next Logon; one per engine process (one process per data_dir)."""

    def __init__(
        self, data_dir: Path, *, clock: Callable[[], float] = time.time, window: float = WINDOW
    ) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._clock = clock
        self._window = window
        self._pid = os.getpid()
        self._n = 0
        self._attempts: list[_Attempt] = []
        self._load()

    def _load(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning(
                "%s: cannot read the logon history (%s); assuming the worst for a minute", self.path, exc
            )
            self._attempts.append(_Attempt("*", self._clock(), "refused", 0))
            return
        by_key: dict[tuple[str, float, int, int], _Attempt] = {}
        for line in lines:
            try:
                item = json.loads(line)
                target, at = str(item["target"]), float(item["at"])
                outcome = str(item["outcome"])
                pid, n = int(item.get("pid", 0)), int(item.get("n", 0))
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line after a crash
            by_key[(target, at, pid, n)] = _Attempt(target, at, outcome, pid, n)
        for attempt in by_key.values():
            if attempt.outcome == "pending":
                attempt.outcome = "refused"  # an earlier process never learnt how it ended
            self._attempts.append(attempt)
        self._rewrite()

    def _rewrite(self) -> None:
        now = self._clock()
        self._attempts = [a for a in self._attempts if now - a.at < _KEEP]
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for a in self._attempts:
                    f.write(json.dumps(attrs.asdict(a)) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("%s: cannot write the logon history: %s", self.path, exc)

    def _append(self, attempt: _Attempt) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(json.dumps(attrs.asdict(attempt)) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            log.warning("%s: cannot record a logon attempt: %s", self.path, exc)

    # ------------------------------------------------------------------------------------------ decisions
    def _refused(self, target: str, now: float) -> list[float]:
        return sorted(
            a.at
            for a in self._attempts
            if a.target in (target, "*") and now - a.at < self._window and a.outcome == "refused"
        )

    def counted(self, target: str) -> int:
        """Unsuccessful attempts of ``target`` inside the window (pending ones of an earlier process included)."""
        return len(self._refused(target, self._clock()))

    def wait(self, target: str, in_flight: int = 0) -> float:
        """Seconds until ``target`` may send one more Logon (0 = now), with ``in_flight`` of its logons still
        unanswered: each of those may still turn out refused, so it takes a place in the budget too."""
        now = self._clock()
        refused = self._refused(target, now)
        if len(refused) + in_flight < BUDGET:
            return 0.0
        if len(refused) < BUDGET:
            return 0.5  # the logons in flight will end one way or the other: look again soon
        # the oldest counted attempt must leave the window first (plus a second of margin for clock skew)
        return max(refused[len(refused) - BUDGET] + self._window - now + 1.0, 0.0)

    def begin(self, target: str) -> int:
        """Record a Logon about to go out (durably, before it is sent); returns its id."""
        self._n += 1
        attempt = _Attempt(target, self._clock(), "pending", self._pid, self._n)
        self._attempts.append(attempt)
        self._append(attempt)
        return self._n

    def end(self, target: str, attempt_id: int, outcome: str) -> None:
        """The attempt ``attempt_id`` of ``target`` ended: ``ok``, ``refused`` or ``not-counted``."""
        for attempt in reversed(self._attempts):
            if attempt.target == target and attempt.pid == self._pid and attempt.n == attempt_id:
                if attempt.outcome != "pending":
                    return
                attempt.outcome = outcome
                self._append(attempt)
                return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._rewrite()
