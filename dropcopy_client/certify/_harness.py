"""One scenario's world: rehearsal keys, a recording simulator, clients with the user's handler, and the
record of steps, checks and reported fields that becomes the scenario's section of the report.

Everything a scenario checks comes from the real thing: the frames the simulator received and wrote (its
wire transcript), the events the client decoded, the client's position book and journal, and what the user's
handler was given. Messages are shown only redacted (``dropcopy_client._wire.redact``); the raw Logons the
simulator received are read only to learn the signatures the report must never contain.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from dropcopy_client._client import DropCopyClient
from dropcopy_client._messages import (
    BusinessMessageReject,
    ExecutionReport,
    OrderCancelReject,
    OrderMassActionReport,
    UnknownMessage,
)
from dropcopy_client._wire import FrameError, parse_fields, redact_text, to_display, unwrap
from dropcopy_client.auth import ApiKey, SigningError, decode_secret, generate_key, write_key_file
from dropcopy_client.certify._model import (
    Check,
    FieldReport,
    HandlerReport,
    Message,
    ReportedField,
    SessionLog,
    Step,
)
from dropcopy_client.certify._profile import Profile, TargetIds
from dropcopy_client.config import ClientConfig, Endpoint, GroupConfig, TargetConfig, cgw_target, msgw_target
from dropcopy_client.errors import DropCopyError
from dropcopy_client.testing import SimSession, Simulator, WireFrame

BUSINESS = (ExecutionReport, OrderMassActionReport, OrderCancelReject, BusinessMessageReject, UnknownMessage)
Handler = Callable[[Any], object]

MSG_TYPES = {
    "A": "Logon",
    "0": "Heartbeat",
    "1": "TestRequest",
    "2": "ResendRequest",
    "3": "Reject",
    "4": "SequenceReset",
    "5": "Logout",
    "n": "XMLnonFIX",
    "8": "ExecutionReport",
    "BZ": "OrderMassActionReport",
    "9": "OrderCancelReject",
    "j": "BusinessMessageReject",
}
#: a redacted data field (1402=***, 96=***) no longer matches its length field: make them agree again
_REDACTED = re.compile(rb"(^|\x01)(1401|95)=\d+\x01(1402|96)=\*\*\*\x01")


#: in a scenario's work directory: every rehearsal key pair it generated (a CME key file)
REHEARSAL_KEYS = "rehearsal-keys.txt"


class Failed(Exception):
    """A required check failed: the scenario cannot go on (its reason is the check)."""


def tags(raw: bytes) -> dict[int, str]:
    """The outer fields of a frame (redacted or not), first occurrence of each tag; 213 stays one value."""
    lengths: dict[int, str] = {}

    def fit(match: re.Match[bytes]) -> bytes:
        lengths.setdefault(int(match[2]), match[0].split(b"\x01")[-3].split(b"=")[1].decode("ascii"))
        return match[1] + match[2] + b"=3\x01" + match[3] + b"=***\x01"

    try:
        fields = parse_fields(_REDACTED.sub(fit, raw))
    except FrameError:
        return {}
    out: dict[int, str] = {}
    for tag, value in fields:
        out.setdefault(tag, value.decode("ascii", "backslashreplace"))
    return out | lengths  # the length fields as they were on the wire


def inner_tags(raw: bytes) -> dict[int, str]:
    """The fields of the message inside a 35=n (empty for anything else)."""
    try:
        fields = parse_fields(raw)
        payload = next((v for t, v in fields if t == 213), None)
        if payload is None:
            return {}
        return {
            tag: value.decode("ascii", "backslashreplace")
            for tag, value in reversed(parse_fields(unwrap(payload)))
        }
    except (FrameError, ValueError):
        return {}


def summary(frame: WireFrame) -> str:
    """A short description of a frame for the report's message tables."""
    t = tags(frame.raw)
    kind = frame.msg_type
    name = MSG_TYPES.get(kind, kind)
    parts: list[str] = []

    def add(*wanted: int) -> None:
        parts.extend(f"{tag}={t[tag]}" for tag in wanted if tag in t)

    if kind == "A":
        add(108, 141, 369, 1603, 1604, 1605, 355)
    elif kind in ("0", "1"):
        add(112)
    elif kind == "2":
        add(7, 16)
    elif kind == "4":
        name = "SequenceReset-GapFill" if t.get(123) == "Y" else "SequenceReset-Reset"
        add(36)
    elif kind == "5":
        add(789, 58)
    elif kind == "3":
        add(45, 372, 58)
    elif kind == "n":
        inner = inner_tags(frame.raw)
        inner_type = inner.get(35, "?")
        parts.append(f"[{MSG_TYPES.get(inner_type, inner_type)}")
        parts.extend(f"{tag}={inner[tag]}" for tag in (39, 150, 17, 1, 107, 32, 31) if tag in inner)
        parts[-1] += "]"
    flags = [f"{tag}={t[tag]}" for tag in (43, 97) if t.get(tag) == "Y"]
    return " ".join([name, *flags, *parts])


class Recorder:
    """Collects every event one scenario's clients emit; scenarios wait on conditions over the list."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()

    def add(self, event: object) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, *kinds: type) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kinds)]

    def business(self) -> list[Any]:
        return self.of(*BUSINESS)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


class HandlerProbe:
    """The user's handler as registered on every client of a scenario: counts what it is given and keeps the
    traceback of every exception it raises (redacted), then lets the stream go on -- so one scenario shows
    every failure, not just the first."""

    def __init__(self, fn: Handler, target: str) -> None:
        self.fn = fn
        self.target = target
        self._lock = threading.Lock()
        self.calls = 0
        self.business_keys: list[str] = []
        self.errors: list[str] = []

    def __call__(self, event: object) -> None:
        with self._lock:
            self.calls += 1
            if isinstance(event, BUSINESS):
                self.business_keys.append(event.idempotency_key)
        try:
            self.fn(event)
        except Exception:
            text = redact_text(traceback.format_exc())
            with self._lock:
                self.errors.append(f"on {type(event).__name__}: {text}")

    def got(self, event: Any) -> bool:
        with self._lock:
            return event.idempotency_key in self.business_keys

    def report(self) -> HandlerReport:
        with self._lock:
            return HandlerReport(self.target, self.calls, len(self.business_keys), tuple(self.errors))


class Rehearsal:
    """The context a scenario function runs in (see :mod:`dropcopy_client.certify._scenarios`)."""

    def __init__(
        self,
        profile: Profile,
        work: Path,
        *,
        handler: Handler | None = None,
        handler_name: str = "",
        wait: float = 30.0,
    ) -> None:
        self.profile = profile
        self.work = work
        self.wait_seconds = wait
        self.data_dir = work / "data"
        self.key_file = work / "keys.txt"
        self.steps: list[Step] = []
        self.checks: list[Check] = []
        self.reports: list[FieldReport] = []
        self.notes: list[str] = []
        self.keys: dict[str, ApiKey] = {}
        self.all_keys: list[ApiKey] = []
        self.recorder = Recorder()
        self.probe = HandlerProbe(handler, handler_name) if handler is not None else None
        self._sims: list[tuple[Simulator, list[SimSession]]] = []
        self._clients: list[DropCopyClient] = []
        work.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------------------ identities
    @property
    def cgw(self) -> SimSession:
        return SimSession(self.profile.cgw.sender_comp_id)

    @property
    def msgw(self) -> list[SimSession]:
        return [SimSession(self.profile.msgw.sender_comp_id, seg) for seg in self.profile.segments]

    # ------------------------------------------------------------------------------------------ keys
    def new_key(self, session_id: str, *, created_days_ago: int = 10, valid_days: int = 300) -> ApiKey:
        """A fresh rehearsal key pair for CME session id ``session_id`` (never one of the user's keys)."""
        today = dt.datetime.now(dt.UTC).date()
        key = generate_key(
            session_id,
            created=today - dt.timedelta(days=created_days_ago),
            expires=today + dt.timedelta(days=valid_days),
        )
        self.all_keys.append(key)
        return key

    def keys_for(self, sessions: Iterable[SimSession]) -> list[ApiKey]:
        """The current key of every session id among ``sessions`` (made on first use), written to the key file."""
        for session in sessions:
            sid = session.sender_comp_id[:3]
            if sid not in self.keys:
                self.keys[sid] = self.new_key(sid)
        write_key_file(self.key_file, list(self.keys.values()))
        return list(self.keys.values())

    # ------------------------------------------------------------------------------------------ simulator
    def simulator(
        self, sessions: Sequence[SimSession], *, keys: Sequence[ApiKey] | None = None, **options: Any
    ) -> Simulator:
        """A started simulator serving ``sessions`` (primary and backup each), recording the wire."""
        accepted = list(keys) if keys is not None else self.keys_for(sessions)
        sim = Simulator(accepted, sessions=list(sessions), record_wire=True, **options)
        sim.start()
        self._sims.append((sim, list(sessions)))
        return sim

    # ------------------------------------------------------------------------------------------ clients
    def config(self, sim: Simulator, sessions: Sequence[SimSession], *, backup: bool = False) -> ClientConfig:
        """The user's identity (profile) with ``sim``'s loopback addresses, this scenario's key file and
        data_dir, and a 1 s reconnect interval (rehearsals do not wait for production back-offs)."""
        by_target: dict[str, list[SimSession]] = {}
        for session in sessions:
            by_target.setdefault(session.sender_comp_id, []).append(session)
        groups: dict[str, tuple[TargetIds, list[TargetConfig]]] = {}
        for comp, members in by_target.items():
            ids = self.profile.cgw if comp == self.profile.cgw.sender_comp_id else self.profile.msgw

            def address(session: SimSession, role: Literal["primary", "backup"]) -> Endpoint:
                return Endpoint(*sim.endpoint(session, role))

            if members[0].segment == "G":
                target = cgw_target(
                    comp, address(members[0], "primary"), address(members[0], "backup") if backup else None
                )
            else:
                target = msgw_target(
                    comp,
                    {
                        s.segment: (address(s, "primary"), address(s, "backup") if backup else None)
                        for s in members
                    },
                )
            groups.setdefault(ids.group, (ids, []))[1].append(target)
        return ClientConfig(
            groups=tuple(
                GroupConfig(
                    name=name,
                    operator=ids.operator,
                    targets=tuple(targets),
                    key_file=self.key_file,
                    environment=ids.environment,
                )
                for name, (ids, targets) in groups.items()
            ),
            data_dir=self.data_dir,
            app_name=self.profile.app_name,
            app_version=self.profile.app_version,
            app_vendor=self.profile.app_vendor,
            location=self.profile.location,
            heartbeat=self.profile.heartbeat,
            reconnect_interval=1,
            source=f"rehearsal of {self.profile.source}",
        )

    def client(
        self, sim: Simulator, sessions: Sequence[SimSession], *, backup: bool = False, **options: Any
    ) -> DropCopyClient:
        """A client for ``sessions`` of ``sim`` (not started) with the recorder and the user's handler on it."""
        client = DropCopyClient(self.config(sim, sessions, backup=backup), **options)
        self._clients.append(client)
        client.on(object, name="certify:recorder")(self.recorder.add)
        if self.probe is not None:
            client.on(object, name="certify:handler")(self.probe)
        return client

    def start(self, client: DropCopyClient) -> None:
        """Start ``client`` and wait until every session is logged on (a refusal or timeout fails the scenario)."""
        try:
            client.start(wait=self.wait_seconds)
        except (TimeoutError, DropCopyError) as exc:
            raise Failed(f"the client did not log on: {exc}") from None

    # ------------------------------------------------------------------------------------------ the record
    def step(self, text: str) -> None:
        self.steps.append(Step(dt.datetime.now(dt.UTC), text))

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def require(self, name: str, ok: bool, detail: str = "") -> None:
        """A check the rest of the scenario depends on: when it fails, the scenario stops here."""
        if not self.check(name, ok, detail):
            raise Failed(name + (f" ({detail})" if detail else ""))

    def report(self, title: str, fields: Iterable[tuple[int | None, str, object]]) -> None:
        self.reports.append(
            FieldReport(title, tuple(ReportedField(tag, name, _text(value)) for tag, name, value in fields))
        )

    def note(self, text: str) -> None:
        self.notes.append(text)

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Poll ``predicate`` until true or ``timeout`` (default: the rehearsal's wait) seconds."""
        deadline = time.monotonic() + (self.wait_seconds if timeout is None else timeout)
        while True:
            if predicate():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def wait_events(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        return self.recorder.wait(predicate, self.wait_seconds if timeout is None else timeout)

    # ------------------------------------------------------------------------------------------ evidence
    @staticmethod
    def frames(
        sim: Simulator,
        session: SimSession,
        direction: Literal["in", "out"] | None = None,
        msg_type: str | None = None,
    ) -> list[WireFrame]:
        return [
            f
            for f in sim.transcript(session)
            if (direction is None or f.direction == direction)
            and (msg_type is None or f.msg_type == msg_type)
        ]

    def finish(self) -> tuple[list[SessionLog], set[str]]:
        """Stop every client and simulator; return each session's messages and every secret text used
        (key secrets in base64url and hex, logon signatures) for the runner's leak check."""
        for client in self._clients:
            try:
                client.stop()
            except Exception as exc:  # a stop failure must not hide the evidence
                self.note(f"stopping a client failed: {exc}")
        logs: list[SessionLog] = []
        needles: set[str] = set()
        for sim, sessions in self._sims:
            for session in sessions:
                for raw in sim.received(session, "A"):
                    signature = tags(raw).get(1402)
                    if signature and signature != "***":
                        needles.add(signature)
                frames = sim.transcript(session)
                logs.append(
                    SessionLog(
                        session.name,
                        tuple(
                            Message(f.at, f.direction, f.msg_type, f.seq, summary(f), to_display(f.raw))
                            for f in frames
                        ),
                    )
                )
            sim.stop()
        if self.all_keys:
            # every pair the scenario generated (its key file may no longer list a rotated-out one): what
            # --keep keeps, and what a test scans the report for
            write_key_file(self.work / REHEARSAL_KEYS, self.all_keys)
        for key in self.all_keys:
            secret = key.secret.reveal()
            needles.add(secret)
            decoded = _decode_secret(secret)
            if decoded is not None:
                needles.update({decoded.hex(), decoded.hex().upper()})
        return logs, needles


def _decode_secret(secret: str) -> bytes | None:
    try:
        return decode_secret(secret)
    except SigningError:
        return None


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "Y" if value else "N"
    if hasattr(value, "value") and hasattr(value, "name"):  # FIX enums: the wire value and its name
        return f"{value.value} ({value.name})"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
