"""``dropcopy_client.certify`` without an engine: the identity taken from a configuration, the report's
rendering (escaped, self-contained, JSON = the result), the evidence's secret check, and the command's
refusals before anything runs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from dropcopy_client.certify import (
    SCENARIOS,
    CertificationResult,
    Check,
    FieldReport,
    HandlerReport,
    Message,
    ReportedField,
    ScenarioResult,
    SessionLog,
    Step,
    example_profile,
    get_scenario,
    load_handler,
    profile_from_config,
    report_html,
    report_json,
    scenario_names,
)
from dropcopy_client.certify._harness import summary, tags
from dropcopy_client.certify._runner import SECRET_CHECK, _without_secrets
from dropcopy_client.cli import main
from dropcopy_client.config import load_config
from dropcopy_client.errors import ConfigError
from dropcopy_client.testing import WireFrame

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
T0 = dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC)
LOGON = (
    b"8=FIX.4.2\x019=235\x0135=A\x0134=1\x0149=ABCDEFN\x0150=OPS1\x0152=20261120-14:00:00.000\x0156=CME\x0157=G"
    b"\x01142=US,IL\x01369=0\x01108=30\x01141=N\x01354=20\x01355=oNDxM33uE81ohWuVRtWT\x011400=CME-1-SHA-256"
    b"\x011401=43\x011402=***\x011603=RiskHub\x011604=1.0\x011605=Acme\x0110=092\x01"
)


def scenario(**changes: object) -> ScenarioResult:
    base = ScenarioResult(
        name="logon-cgw",
        title="Logon Message (CGW)",
        suite="Drop Copy 4.0",
        source="AC-LOGONCGW",
        purpose="a <b>purpose</b>",
        autocert_steps=("Logon",),
        passed=True,
        reason="",
        started_at=T0,
        seconds=1.5,
        steps=(Step(T0, "connect & <log on>"),),
        checks=(Check("the Logon is accepted", True, "34=1"),),
        reports=(FieldReport("Logon", (ReportedField(34, "MsgSeqNum", "1"),)),),
        sessions=(
            SessionLog("ABCDEFN:G", (Message(T0, "in", "A", 1, "Logon", "8=FIX.4.2|35=A|1402=***|"),)),
        ),
        handler=HandlerReport("app:on_event", 3, 0, ()),
    )
    return attrs.evolve(base, **changes)


def result(*scenarios: ScenarioResult) -> CertificationResult:
    return CertificationResult(T0, T0, example_profile().to_dict(), scenarios, {"python": "3.11"})


# ---------------------------------------------------------------------------------------------- identity


def test_the_identity_comes_from_the_configuration_and_nothing_else() -> None:
    profile = profile_from_config(load_config(FIXTURES / "example.toml"))
    assert (profile.cgw.sender_comp_id, profile.msgw.sender_comp_id, profile.segments) == (
        "ABCDEFN",
        "XYZDEFN",
        ("84", "92"),
    )
    assert (profile.cgw.operator, profile.location, profile.heartbeat) == ("OPS1", "US,IL", 30)
    assert (profile.app_name, profile.app_version, profile.app_vendor) == ("RiskHub", "1.0", "Acme")
    assert profile.cgw.environment == "production" and not profile.notes
    assert "10.1.1.1" not in json.dumps(profile.to_dict())  # addresses are not part of the identity


def test_what_the_configuration_lacks_is_taken_from_the_example_and_said() -> None:
    profile = profile_from_config(load_config(FIXTURES / "two_groups.toml"))
    assert profile.msgw.sender_comp_id == "XYZDEFN" and profile.msgw.operator == "OPS1"
    assert profile.cgw.group == "risk" and profile.cgw.operator == "risk.desk@acme"
    assert profile.segments == ("84", "92")  # one segment configured: a second one is added
    assert len(profile.notes) == 1 and "one segment (84)" in profile.notes[0]
    assert (profile.location, profile.heartbeat) == ("GB,LDN", 60)


def test_the_scenarios_are_the_autocert_list_in_order() -> None:
    assert scenario_names() == tuple(s.name for s in SCENARIOS)
    assert len(SCENARIOS) == 14 and len(set(scenario_names())) == 14
    assert get_scenario("mid-week-logon").title.startswith("Mid Week Logon")
    with pytest.raises(KeyError, match="known: logon-cgw"):
        get_scenario("no-such")
    assert all(s.autocert_steps and s.purpose and s.source for s in SCENARIOS)


# ---------------------------------------------------------------------------------------------- the record


def test_a_redacted_logon_still_reads_with_its_wire_lengths() -> None:
    fields = tags(LOGON)
    assert (fields[1401], fields[1402], fields[1603], fields[34]) == ("43", "***", "RiskHub", "1")
    frame = WireFrame(T0, "in", LOGON)
    assert (frame.msg_type, frame.seq) == ("A", 1)
    assert summary(frame).startswith("Logon 108=30 141=N 369=0 1603=RiskHub")


def test_a_secret_in_the_evidence_is_removed_and_fails_the_scenario() -> None:
    secret = "2HlZ7exg8jTKltXnURjKvm3GS5iF5n4ClzHiEm_ocv4"
    leaky = scenario(steps=(Step(T0, f"oops {secret}"),), notes=(f"and {secret}",))
    cleaned = _without_secrets(leaky, {secret})
    assert secret not in json.dumps(cleaned.to_dict())
    assert cleaned.steps[0].text == "oops ***"
    (check,) = [c for c in cleaned.checks if c.name == SECRET_CHECK]
    assert not check.passed
    clean = _without_secrets(scenario(), {secret})
    assert [c.passed for c in clean.checks if c.name == SECRET_CHECK] == [True]


# ---------------------------------------------------------------------------------------------- rendering


def test_the_html_report_is_escaped_and_self_contained() -> None:
    failed = scenario(name="mid-week-logon", passed=False, reason="34=58 <not 57>", error="Traceback <x>")
    page = report_html(result(scenario(), failed))
    assert page.startswith("<!doctype html>") and "FAILED" in page
    assert "connect &amp; &lt;log on&gt;" in page and "<log on>" not in page
    assert "a &lt;b&gt;purpose&lt;/b&gt;" in page and "34=58 &lt;not 57&gt;" in page
    assert 'id="logon-cgw"' in page and 'id="mid-week-logon"' in page and 'href="#mid-week-logon"' in page
    assert "<script" not in page and "src=" not in page and "http" not in page
    assert "1 of 2 scenarios passed" in page and "app:on_event" in page


def test_the_json_report_is_the_result() -> None:
    both = result(scenario(), scenario(name="x", passed=False, reason="why"))
    data = json.loads(report_json(both))
    assert data == both.to_dict()
    assert data["passed"] is False and data["summary"] == {"scenarios": 2, "passed": 1, "failed": 1}
    assert data["scenarios"][0]["sessions"][0]["messages"][0]["direction"] == "client->CME"
    assert result().passed is False  # nothing ran: not a pass


# ---------------------------------------------------------------------------------------------- the command


def test_certify_lists_its_scenarios() -> None:
    done = CliRunner().invoke(main, ["certify", "--list"])
    assert done.exit_code == 0
    assert all(name in done.output for name in scenario_names())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "nope"], "unknown scenario(s) nope"),
        (["--config", "/no/such/dropcopy.toml"], "cannot read configuration"),
        (["--handler", "no_colon"], "expected module:function"),
        (["--handler", "no_such_module_here:fn"], "cannot import module 'no_such_module_here'"),
        (["--handler", "json:no_such_function"], "has no 'no_such_function'"),
        (["--handler", "json:decoder"], "not a callable"),
    ],
)
def test_certify_refuses_wrong_input_before_anything_runs(args: list[str], message: str) -> None:
    done = CliRunner().invoke(main, ["certify", *args])
    assert done.exit_code == 2, done.output
    assert message in done.output


def test_certify_will_not_reuse_a_kept_rehearsal(tmp_path: Path) -> None:
    (tmp_path / "logon-cgw").mkdir()
    (tmp_path / "logon-cgw" / "keys.txt").write_text("x")
    done = CliRunner().invoke(main, ["certify", "--scenario", "logon-cgw", "--keep", str(tmp_path)])
    assert done.exit_code == 2 and "already hold a rehearsal" in done.output


def test_load_handler_resolves_dotted_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vendor_dotted.py").write_text(
        "class Risk:\n    @staticmethod\n    def on_event(e):\n        return e\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_handler("vendor_dotted:Risk.on_event")(5) == 5
    with pytest.raises(ConfigError, match="importing 'vendor_broken' failed: ZeroDivisionError"):
        (tmp_path / "vendor_broken.py").write_text("1 / 0\n")
        load_handler("vendor_broken:x")
    sys.modules.pop("vendor_dotted", None)
