"""AutoCert+ rehearsal: every Drop Copy 4.0 certification scenario CME publishes (spec §5.2), run against the
local CME-like simulator with the user's identity and, optionally, the user's own handler.

``dropcopy certify`` is a thin command over this module, and the test suite runs the same scenarios through
the same :func:`run_scenario`::

    from dropcopy_client.certify import profile_from_config, run_certification, write_report
    from dropcopy_client.config import load_config

    result = run_certification(profile=profile_from_config(load_config("dropcopy.toml")))
    html_path, json_path = write_report(result, "evidence/")
    assert result.passed

Each scenario gets its own simulator (recording the wire), rehearsal keys generated for the configured session
ids, and a temporary data_dir; the configured addresses and key file are never used. See
docs/guides/certification.md.
"""

from dropcopy_client.certify._handler import load_handler
from dropcopy_client.certify._model import (
    CertificationResult,
    Check,
    FieldReport,
    HandlerReport,
    Message,
    ReportedField,
    ScenarioResult,
    SessionLog,
    Step,
)
from dropcopy_client.certify._profile import Profile, TargetIds, example_profile, profile_from_config
from dropcopy_client.certify._report import report_html, report_json, write_report
from dropcopy_client.certify._runner import (
    DEFAULT_WAIT,
    Progress,
    ScenarioFinished,
    ScenarioStarted,
    run_certification,
    run_scenario,
)
from dropcopy_client.certify._scenarios import SCENARIOS, Scenario, get_scenario, scenario_names

__all__ = [
    "DEFAULT_WAIT",
    "SCENARIOS",
    "CertificationResult",
    "Check",
    "FieldReport",
    "HandlerReport",
    "Message",
    "Profile",
    "Progress",
    "ReportedField",
    "Scenario",
    "ScenarioFinished",
    "ScenarioResult",
    "ScenarioStarted",
    "SessionLog",
    "Step",
    "TargetIds",
    "example_profile",
    "get_scenario",
    "load_handler",
    "profile_from_config",
    "report_html",
    "report_json",
    "run_certification",
    "run_scenario",
    "scenario_names",
    "write_report",
]
