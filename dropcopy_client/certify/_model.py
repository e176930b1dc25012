"""What a rehearsal produces: plain frozen records, JSON-ready through ``to_dict()``.

The HTML report, the JSON report and ``dropcopy certify --json`` are all renderings of
:meth:`CertificationResult.to_dict`, so they always say the same thing. Nothing here holds a secret: every
message text was redacted before it got here, and the runner checks each scenario's evidence for the keys and
signatures it used (a scenario whose evidence contains one fails).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")


@attrs.frozen
class Step:
    """One thing the rehearsal did or observed, in order."""

    at: dt.datetime
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "text": self.text}


@attrs.frozen
class Check:
    """One verified expectation: what was expected (``name``), whether it held, and what was seen."""

    name: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@attrs.frozen
class ReportedField:
    """One field value as the client decoded it (or as it went on the wire), for the AutoCert+ form."""

    tag: int | None
    name: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "name": self.name, "value": self.value}


@attrs.frozen
class FieldReport:
    """A table of reported fields about one message or one outcome (``title`` says which)."""

    title: str
    fields: tuple[ReportedField, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "fields": [f.to_dict() for f in self.fields]}


@attrs.frozen
class Message:
    """One frame on the wire, secrets redacted. ``direction`` is ``"in"`` (client -> CME, i.e. sent by the
    client under rehearsal) or ``"out"`` (CME -> client); ``text`` shows SOH as ``|``."""

    at: dt.datetime
    direction: Literal["in", "out"]
    msg_type: str
    seq: int | None
    summary: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "direction": "client->CME" if self.direction == "in" else "CME->client",
            "msg_type": self.msg_type,
            "seq": self.seq,
            "summary": self.summary,
            "text": self.text,
        }


@attrs.frozen
class SessionLog:
    """Every message one FIX session exchanged during a scenario, in wire order."""

    session: str
    messages: tuple[Message, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "messages": [m.to_dict() for m in self.messages]}


@attrs.frozen
class HandlerReport:
    """What the user's handler (``--handler``) did during a scenario."""

    target: str
    calls: int
    business_events: int
    errors: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "calls": self.calls,
            "business_events": self.business_events,
            "errors": list(self.errors),
        }


@attrs.frozen
class ScenarioResult:
    """One scenario's outcome and its evidence."""

    name: str
    title: str
    suite: str
    source: str
    purpose: str
    autocert_steps: tuple[str, ...]
    passed: bool
    #: why it failed (the first failed check, or the error); "" when it passed
    reason: str
    started_at: dt.datetime
    seconds: float
    steps: tuple[Step, ...]
    checks: tuple[Check, ...]
    reports: tuple[FieldReport, ...]
    sessions: tuple[SessionLog, ...]
    handler: HandlerReport | None
    notes: tuple[str, ...] = ()
    #: the traceback of an unexpected error (redacted), or None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "suite": self.suite,
            "source": self.source,
            "purpose": self.purpose,
            "autocert_steps": list(self.autocert_steps),
            "result": "passed" if self.passed else "failed",
            "passed": self.passed,
            "reason": self.reason,
            "started_at": _iso(self.started_at),
            "seconds": round(self.seconds, 3),
            "steps": [s.to_dict() for s in self.steps],
            "checks": [c.to_dict() for c in self.checks],
            "reports": [r.to_dict() for r in self.reports],
            "sessions": [s.to_dict() for s in self.sessions],
            "handler": self.handler.to_dict() if self.handler is not None else None,
            "notes": list(self.notes),
            "error": self.error,
        }


@attrs.frozen
class CertificationResult:
    """A whole rehearsal: the configuration it used, every scenario run, and the software versions."""

    started_at: dt.datetime
    finished_at: dt.datetime
    profile: dict[str, Any]
    scenarios: tuple[ScenarioResult, ...]
    versions: dict[str, str]

    @property
    def passed(self) -> bool:
        """True when at least one scenario ran and every scenario passed."""
        return bool(self.scenarios) and all(s.passed for s in self.scenarios)

    @property
    def failed(self) -> tuple[ScenarioResult, ...]:
        return tuple(s for s in self.scenarios if not s.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "dropcopy certify report",
            "format": 1,
            "passed": self.passed,
            "summary": {
                "scenarios": len(self.scenarios),
                "passed": sum(s.passed for s in self.scenarios),
                "failed": len(self.failed),
            },
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "profile": self.profile,
            "versions": self.versions,
            "scenarios": [s.to_dict() for s in self.scenarios],
        }
