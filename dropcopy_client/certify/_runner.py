"""Runs scenarios one after the other, each in a fresh world, and returns what happened as data.

Used by ``dropcopy certify`` and by the test suite alike: ``tests/integration/test_certify.py`` calls
:func:`run_scenario` for each scenario, so a scenario that passes in the suite passes on the command line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import platform
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from dropcopy_client._wire import redact_text
from dropcopy_client.certify._harness import Failed, Handler, Rehearsal
from dropcopy_client.certify._model import CertificationResult, Check, ScenarioResult
from dropcopy_client.certify._profile import Profile, example_profile
from dropcopy_client.certify._scenarios import SCENARIOS, Scenario, get_scenario

#: seconds a scenario waits for any one thing (a logon, a message, an answer) before it fails
DEFAULT_WAIT = 30.0
SECRET_CHECK = "no key secret or logon signature appears in the evidence"


@attrs.frozen
class ScenarioStarted:
    """Progress: scenario ``index`` (1-based) of ``total`` starts."""

    index: int
    total: int
    scenario: Scenario


@attrs.frozen
class ScenarioFinished:
    """Progress: scenario ``index`` of ``total`` ended with ``result``."""

    index: int
    total: int
    result: ScenarioResult


Progress = Callable[[ScenarioStarted | ScenarioFinished], None]


def run_scenario(
    scenario: Scenario | str,
    *,
    profile: Profile | None = None,
    handler: Handler | None = None,
    handler_name: str = "",
    work_dir: Path | None = None,
    wait: float = DEFAULT_WAIT,
) -> ScenarioResult:
    """Rehearse one scenario against a fresh simulator and return its result (it never raises for a failing
    scenario: the failure and its evidence are in the result).

    ``work_dir``: where the scenario's rehearsal key file and data_dir go (``<work_dir>/<name>``, kept);
    default a temporary directory removed afterwards.
    """
    chosen = get_scenario(scenario) if isinstance(scenario, str) else scenario
    who = profile or example_profile()
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            base = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix=f"dropcopy-certify-{chosen.name}-"))
            )
        else:
            base = Path(work_dir) / chosen.name
            if base.exists() and any(base.iterdir()):
                raise ValueError(
                    f"{base} is not empty: every rehearsal of a scenario needs a fresh directory"
                )
        r = Rehearsal(who, base, handler=handler, handler_name=handler_name, wait=wait)
        reason = ""
        error: str | None = None
        try:
            chosen.run(r)
        except Failed as stop:
            reason = str(stop)
        except Exception as exc:
            error = redact_text(traceback.format_exc())
            reason = f"unexpected error: {type(exc).__name__}: {redact_text(str(exc))}"
        finally:
            try:
                sessions, needles = r.finish()
            except Exception as exc:
                sessions, needles = [], set()
                error = (error or "") + redact_text(traceback.format_exc())
                reason = reason or f"the rehearsal could not be closed: {type(exc).__name__}: {exc}"
    if r.probe is not None:
        errors = r.probe.report().errors
        r.check(
            f"your handler {r.probe.target} raised no exception",
            not errors,
            f"{len(errors)} exceptions (tracebacks below)" if errors else f"{r.probe.calls} calls",
        )
    result = ScenarioResult(
        name=chosen.name,
        title=chosen.title,
        suite=chosen.suite,
        source=chosen.source,
        purpose=chosen.purpose,
        autocert_steps=chosen.autocert_steps,
        passed=False,
        reason=reason,
        started_at=started,
        seconds=time.monotonic() - clock,
        steps=tuple(r.steps),
        checks=tuple(r.checks),
        reports=tuple(r.reports),
        sessions=tuple(sessions),
        handler=r.probe.report() if r.probe is not None else None,
        notes=tuple(r.notes),
        error=error,
    )
    result = _without_secrets(result, needles)
    failed = [c for c in result.checks if not c.passed]
    passed = not result.reason and result.error is None and bool(result.checks) and not failed
    if not passed and not result.reason:
        first = failed[0] if failed else None
        reason = (
            f"{first.name} ({first.detail})"
            if first and first.detail
            else (first.name if first else "no check ran")
        )
        result = attrs.evolve(result, reason=reason)
    return attrs.evolve(result, passed=passed)


def run_certification(
    scenarios: Iterable[str] | None = None,
    *,
    profile: Profile | None = None,
    handler: Handler | None = None,
    handler_name: str = "",
    work_dir: Path | None = None,
    wait: float = DEFAULT_WAIT,
    progress: Progress | None = None,
) -> CertificationResult:
    """Rehearse ``scenarios`` (names; default every one, in AutoCert+ order) and return the whole result.

    ``progress`` is called with :class:`ScenarioStarted` and :class:`ScenarioFinished` (the CLI prints them).
    Unknown names raise ``KeyError`` before anything runs.
    """
    chosen = [get_scenario(name) for name in scenarios] if scenarios else list(SCENARIOS)
    who = profile or example_profile()
    started = dt.datetime.now(dt.UTC)
    results: list[ScenarioResult] = []
    for index, scenario in enumerate(chosen, 1):
        if progress is not None:
            progress(ScenarioStarted(index, len(chosen), scenario))
        result = run_scenario(
            scenario, profile=who, handler=handler, handler_name=handler_name, work_dir=work_dir, wait=wait
        )
        results.append(result)
        if progress is not None:
            progress(ScenarioFinished(index, len(chosen), result))
    return CertificationResult(
        started_at=started,
        finished_at=dt.datetime.now(dt.UTC),
        profile=who.to_dict() | ({"handler": handler_name} if handler is not None else {}),
        scenarios=tuple(results),
        versions=versions(),
    )


def versions() -> dict[str, str]:
    """The software the rehearsal ran: this SDK, QuickFIX, Python and the platform."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("dropcopy-client", "quickfix"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _without_secrets(result: ScenarioResult, needles: set[str]) -> ScenarioResult:
    """Add the evidence check: no secret text the scenario used appears in its result. Should one ever appear,
    it is removed from the result and the scenario fails (a leak is a defect of this SDK: please report it)."""
    text = json.dumps(result.to_dict())
    found = [n for n in needles if n and n in text]
    checks = list(result.checks)
    if found:
        result = _scrub(result, found)
        checks = list(result.checks)
    checks.append(
        Check(
            SECRET_CHECK,
            not found,
            f"{len(found)} secret value(s) found and removed from this report" if found else "none found",
        )
    )
    return attrs.evolve(result, checks=tuple(checks))


def _scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            value = value.replace(needle, "***")
        return value
    if isinstance(value, tuple):
        return tuple(_scrub(v, needles) for v in value)
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, needles) for k, v in value.items()}
    if attrs.has(type(value)):
        return attrs.evolve(
            value,
            **{a.name: _scrub(getattr(value, a.name), needles) for a in attrs.fields(type(value)) if a.init},
        )
    return value
