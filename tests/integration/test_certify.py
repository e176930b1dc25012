"""``dropcopy certify``: every AutoCert+ scenario through the same runner as the command, the user's handler and
configuration, the command end to end, and the report's promise that no secret and no signature is in it.

Real QuickFIX over loopback against the simulator; each scenario starts and stops its own simulator and clients.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from dropcopy_client._wire import parse_frame, to_display
from dropcopy_client.auth import CANONICAL_TAGS, ApiKey, canonical_logon, decode_secret, load_key_file, sign
from dropcopy_client.certify import (
    CertificationResult,
    example_profile,
    load_handler,
    run_certification,
    run_scenario,
    scenario_names,
    write_report,
)
from dropcopy_client.certify._harness import REHEARSAL_KEYS, Rehearsal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------- secrets


def rehearsal_keys(work_dir: Path) -> list[ApiKey]:
    """Every key pair the rehearsal's scenarios generated (rotated-out ones included)."""
    paths = sorted(work_dir.glob(f"*/{REHEARSAL_KEYS}"))
    assert paths, f"no {REHEARSAL_KEYS} under {work_dir}"
    return [key for path in paths for key in load_key_file(path).keys]


def logon_signatures(report: dict[str, Any], keys: Iterable[ApiKey]) -> list[str]:
    """The 1402 of every Logon the report shows, recomputed from its (redacted) fields and the rehearsal key
    named by its 355: what the report must not contain, although it never saw it."""
    by_id = {key.access_key_id: key for key in keys}
    out = []
    for scenario in report["scenarios"]:
        for session in scenario["sessions"]:
            for message in session["messages"]:
                if message["direction"] != "client->CME" or message["msg_type"] != "A":
                    continue
                fields = dict(part.split("=", 1) for part in message["text"].split("|") if "=" in part)
                assert fields["1402"] == "***"
                values = {tag: fields[str(tag)] for tag in CANONICAL_TAGS}
                out.append(sign(by_id[fields["355"]].secret.reveal(), canonical_logon(values)))
    return out


def assert_no_secrets(files: Iterable[Path], keys: list[ApiKey], signatures: list[str]) -> None:
    assert keys and signatures, "the scan must have something to look for"
    needles: list[bytes] = []
    for key in keys:
        text = key.secret.reveal()
        raw = decode_secret(text)
        needles += [
            text.encode(),
            raw,
            raw.hex().encode(),
            raw.hex().upper().encode(),
            base64.b64encode(raw),
            base64.b64encode(raw).rstrip(b"="),
        ]
    needles += [s.encode() for s in signatures]
    for path in files:
        data = path.read_bytes()
        found = [n for n in needles if n in data]
        assert not found, f"{path.name} contains {len(found)} secret value(s)"


def explain(result: Any) -> str:
    failed = [f"  {c.name}: {c.detail}" for c in result.checks if not c.passed]
    return "\n".join([f"{result.name}: {result.reason}", *failed, result.error or ""])


# ---------------------------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("name", scenario_names())
def test_each_autocert_scenario_passes_and_its_report_holds_no_secret(name: str, tmp_path: Path) -> None:
    result = run_certification([name], work_dir=tmp_path / "work")
    (scenario,) = result.scenarios
    assert scenario.passed, explain(scenario)
    assert result.passed
    assert all(c.passed for c in scenario.checks) and len(scenario.checks) >= 3
    assert scenario.sessions and all(log.messages for log in scenario.sessions)
    directions = {m.direction for log in scenario.sessions for m in log.messages}
    assert directions == {"in", "out"}, "both directions of the wire are in the evidence"
    files = write_report(result, tmp_path / "report")
    report = json.loads(files[1].read_text(encoding="utf-8"))
    keys = rehearsal_keys(tmp_path / "work")
    assert_no_secrets(files, keys, logon_signatures(report, keys))


def test_the_mid_week_rehearsal_shows_the_789_logout_and_the_logon_that_answers_it(tmp_path: Path) -> None:
    result = run_scenario("mid-week-logon", work_dir=tmp_path)
    assert result.passed, explain(result)
    (log,) = result.sessions
    logons = [m for m in log.messages if m.direction == "in" and m.msg_type == "A"]
    logout = next(m for m in log.messages if m.direction == "out" and m.msg_type == "5")
    assert "789=57" in logout.text
    assert [m.seq for m in logons] == [1, 57]
    assert log.messages.index(logout) < log.messages.index(logons[1])
    reported = {f.name: f.value for report in result.reports for f in report.fields}
    assert reported["CME's Logout NextExpectedMsgSeqNum"] == "57" and reported["second Logon"] == "57"


# ---------------------------------------------------------------------------------------------- the handler

VENDOR_HANDLER = """
import os

seen = []


def on_event(event):
    seen.append(type(event).__name__)
    path = os.environ.get("VENDOR_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(type(event).__name__ + "\\n")
    if type(event).__name__ == "{fail_on}":
        raise RuntimeError("vendor code cannot handle a {fail_on}")
"""


def test_an_exception_in_the_users_handler_fails_the_scenario_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vendor_failing.py").write_text(VENDOR_HANDLER.format(fail_on="TradeBust"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    handler = load_handler("vendor_failing:on_event")
    result = run_scenario(
        "trade-bust-correction",
        handler=handler,
        handler_name="vendor_failing:on_event",
        work_dir=tmp_path / "w",
    )
    assert not result.passed
    assert "vendor_failing:on_event raised" in result.reason
    assert result.handler is not None and result.handler.business_events == 6
    (traceback,) = result.handler.errors
    assert "Traceback" in traceback and "vendor code cannot handle a TradeBust" in traceback
    page = write_report(
        CertificationResult(result.started_at, result.started_at, example_profile().to_dict(), (result,), {}),
        tmp_path / "r",
    )[0].read_text(encoding="utf-8")
    assert "vendor code cannot handle a TradeBust" in page and "Traceback" in page
    # everything else the scenario checks still passed: the failure is the handler's alone
    assert [c.name for c in result.checks if not c.passed] == [
        "your handler vendor_failing:on_event raised no exception"
    ]


USER_CONFIG = """
[client]
data_dir = "never-used"
app_name = "VendorX"
app_version = "2.3"
app_vendor = "VX"
location = "GB"
heartbeat = 20

[[group]]
name = "vendor"
operator = "ALICE1"
key_file = "no-such-keys.txt"
environment = "cert"

[[group.target]]
kind = "cgw"
sender_comp_id = "QRSTUVN"
primary = "10.9.9.9:9999"
backup = "10.9.9.10:9999"

[[group.target]]
kind = "msgw"
sender_comp_id = "LMNOPQN"
[group.target.segments]
"95" = { primary = "10.9.9.95:9999", backup = "10.9.8.95:9999" }
"96" = { primary = "10.9.9.96:9999" }
"""


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> Any:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dropcopy_client.cli", "certify", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_certify_rehearses_the_configured_identity_and_the_users_handler(tmp_path: Path) -> None:
    (tmp_path / "dropcopy.toml").write_text(USER_CONFIG, encoding="utf-8")
    (tmp_path / "vendor_ok.py").write_text(VENDOR_HANDLER.format(fail_on="-"), encoding="utf-8")
    log = tmp_path / "vendor.log"
    done = run_cli(
        "--config",
        "dropcopy.toml",
        "--scenario",
        "logon-msgw",
        "--scenario",
        "trade-bust-correction",
        "--handler",
        "vendor_ok:on_event",
        "--report",
        "evidence",
        "--json",
        cwd=tmp_path,
        env={"VENDOR_LOG": str(log)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] and [s["name"] for s in report["scenarios"]] == [
        "logon-msgw",
        "trade-bust-correction",
    ]
    assert report["profile"]["cgw"]["sender_comp_id"] == "QRSTUVN"
    assert report["profile"]["msgw"]["segments"] == ["95", "96"]
    assert report["profile"]["handler"] == "vendor_ok:on_event"
    msgw, busts = report["scenarios"]
    assert sorted(s["session"] for s in msgw["sessions"]) == ["LMNOPQN:95", "LMNOPQN:96"]
    (cgw,) = busts["sessions"]
    logon = next(
        m["text"] for m in cgw["messages"] if m["msg_type"] == "A" and m["direction"] == "client->CME"
    )
    for field in (
        "49=QRSTUVN",
        "50=ALICE1",
        "57=G",
        "142=GB",
        "108=20",
        "1603=VendorX",
        "1604=2.3",
        "1605=VX",
    ):
        assert f"|{field}|" in logon
    assert busts["handler"]["business_events"] == 6 and not busts["handler"]["errors"]
    assert "TradeBust" in log.read_text(encoding="utf-8").split()
    assert "10.9.9" not in done.stdout  # the configured gateways are never used
    assert not (tmp_path / "never-used").exists()  # nor its data_dir
    assert "Rehearsing 2 AutoCert+ scenario(s)" in done.stderr and "2 of 2 scenarios passed" in done.stderr


def test_dropcopy_certify_report_json_end_to_end(tmp_path: Path) -> None:
    """The acceptance command: every scenario passes on a fresh checkout, exit 0, an HTML page and the same
    report as JSON, and neither holds a key secret or a logon signature."""
    done = run_cli(
        "--report", str(tmp_path / "report"), "--json", "--keep", str(tmp_path / "keep"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-5000:]
    report = json.loads(done.stdout)
    assert report["passed"] and report["summary"] == {"scenarios": 14, "passed": 14, "failed": 0}
    assert [s["name"] for s in report["scenarios"]] == list(scenario_names())
    pages = sorted((tmp_path / "report").glob("dropcopy-certify-*.html"))
    files = sorted((tmp_path / "report").glob("dropcopy-certify-*.json"))
    assert len(pages) == 1 and len(files) == 1
    assert json.loads(files[0].read_text(encoding="utf-8")) == report  # --json prints the report it wrote
    page = pages[0].read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained
    for name in scenario_names():
        assert f'id="{name}"' in page
    for line in (f"[{i:>2}/14]" for i in range(1, 15)):
        assert line in done.stderr  # a progress line per scenario
    keys = rehearsal_keys(tmp_path / "keep")
    signatures = logon_signatures(report, keys)
    assert len(signatures) >= 14
    assert_no_secrets([*pages, *files], keys, signatures)
    assert_no_secrets_in_text(done.stdout + done.stderr, keys, signatures)


def assert_no_secrets_in_text(text: str, keys: list[ApiKey], signatures: list[str]) -> None:
    for key in keys:
        assert key.secret.reveal() not in text
    for signature in signatures:
        assert signature not in text


def test_the_secret_scan_recomputes_the_real_signature_and_catches_a_planted_secret(tmp_path: Path) -> None:
    """Guards the scans above against passing because they look for the wrong thing."""
    rehearsal = Rehearsal(example_profile(), tmp_path / "w")
    session = rehearsal.cgw
    sim = rehearsal.simulator([session])
    try:
        client = rehearsal.client(sim, [session])
        rehearsal.start(client)
        client.stop()
        on_the_wire = dict(parse_frame(sim.received(session, "A")[0]))[1402].decode()
        shown = to_display(sim.transcript(session)[0].raw)
    finally:
        rehearsal.finish()
    message = {"direction": "client->CME", "msg_type": "A", "text": shown}
    report = {"scenarios": [{"sessions": [{"messages": [message]}]}]}
    keys = rehearsal_keys(tmp_path)
    assert logon_signatures(report, keys) == [on_the_wire]
    planted = tmp_path / "planted.txt"
    for leak in (on_the_wire.encode(), decode_secret(keys[0].secret.reveal()).hex().encode()):
        planted.write_bytes(b"evidence " + leak + b" more")
        with pytest.raises(AssertionError, match="secret value"):
            assert_no_secrets([planted], keys, [on_the_wire])
