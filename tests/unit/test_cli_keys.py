"""``dropcopy keys check``: table and JSON output, exit statuses, and never a secret."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from dropcopy_client.auth import generate_key, write_key_file
from dropcopy_client.cli.keys import format_table, keys

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keys"
KEYS = str(FIXTURES / "keys.txt")
EXPIRED = str(FIXTURES / "keys_expired.txt")
NO_ENV = str(FIXTURES / "keys_no_environment.txt")
TODAY = "2025-06-01"


def secrets_of(path: str) -> list[str]:
    """The Secret Key cells of a fixture (from offset 52 to the next space), read without the library."""
    found = []
    for line in Path(path).read_text().splitlines()[1:]:
        if line.strip():
            found.append(line[52:].split()[0])
    assert all(len(secret) == 43 for secret in found)
    return found


def run(*args: str) -> Result:
    return CliRunner().invoke(keys, ["check", *args])


def assert_no_secrets(result: Result, path: str) -> None:
    for secret in secrets_of(path):
        assert secret not in result.stdout
        assert secret not in result.stderr


def test_group_shape() -> None:
    assert isinstance(keys, click.Group)
    assert keys.name == "keys"
    assert "check" in keys.commands


def test_table_lists_every_key_marks_the_used_ones_and_hides_secrets() -> None:
    result = run(KEYS, "--today", TODAY)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{KEYS} (today {TODAY})"
    header = lines[1]
    for title in ("SESSION", "ACCESS KEY ID", "CREATED", "EXPIRES", "ENVIRONMENT", "DAYS LEFT", "STATUS"):
        assert title in header
    rows = {line.split()[1]: line for line in lines[2:]}
    assert set(rows) == {
        "Q1p78EsswN6LLh9mTSeR",
        "DhMG0HnZEEyiT6RSLd2a",
        "XKm2nhULLJXMJGTe6fdM",
        "6yJP0MdxxAvYpSRLKZki",
        "IaTzP8A8aGLRTKMQlXU8",
    }
    # X12: the newer key is used, the older one is listed and expires soon.
    assert rows["DhMG0HnZEEyiT6RSLd2a"].endswith("<- used")
    assert "358" in rows["DhMG0HnZEEyiT6RSLd2a"]
    assert "expires soon" in rows["Q1p78EsswN6LLh9mTSeR"] and "used" not in rows["Q1p78EsswN6LLh9mTSeR"]
    # U89 has one key, 14 days left.
    assert rows["XKm2nhULLJXMJGTe6fdM"].split()[:5] == [
        "U89",
        "XKm2nhULLJXMJGTe6fdM",
        "2024-07-01",
        "2025-06-15",
        "NEWRELEASE",
    ]
    assert "14" in rows["XKm2nhULLJXMJGTe6fdM"] and "expires soon" in rows["XKm2nhULLJXMJGTe6fdM"]
    assert rows["XKm2nhULLJXMJGTe6fdM"].endswith("<- used")
    # One marked key per session.
    assert sum(line.endswith("<- used") for line in lines) == 3
    assert (
        "warning: key XKm2nhULLJXMJGTe6fdM for session U89 expires on 2025-06-15 (14 days left)"
        in result.stderr
    )
    assert "Q1p78EsswN6LLh9mTSeR" not in result.stderr  # not used, so no warning
    # Columns are aligned: every row's access key id starts where the header's column does.
    column = header.index("ACCESS KEY ID")
    assert all(line[column:].startswith(line.split()[1]) for line in lines[2:])
    assert_no_secrets(result, KEYS)


def test_json_output() -> None:
    result = run(KEYS, "--today", TODAY, "--json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert isinstance(records, list) and len(records) == 5
    first = records[0]
    assert first == {
        "session_id": "X12",
        "access_key_id": "Q1p78EsswN6LLh9mTSeR",
        "created": "2024-06-10",
        "expires": "2025-06-20",
        "environment": "NEWRELEASE",
        "days_left": 19,
        "status": "expires soon",
        "selected": False,
        "source": KEYS,
        "line": 3,
    }
    assert [r["access_key_id"] for r in records if r["selected"]] == [
        "DhMG0HnZEEyiT6RSLd2a",
        "XKm2nhULLJXMJGTe6fdM",
        "6yJP0MdxxAvYpSRLKZki",
    ]
    assert all("secret" not in name for record in records for name in record)
    assert_no_secrets(result, KEYS)


def test_expired_session_exits_1_and_says_why() -> None:
    result = run(EXPIRED, "--today", TODAY)
    assert result.exit_code == 1
    rows = {line.split()[1]: line for line in result.stdout.splitlines()[2:]}
    assert "expired" in rows["Y45brzJLMO8lgdZ3S1Y5"] and "-151" in rows["Y45brzJLMO8lgdZ3S1Y5"]
    assert rows["LJ0muvwCCaoi9iMbrJd3"].endswith("<- used")
    assert "every key for session B08 has expired" in result.stderr
    assert "Y45brzJLMO8lgdZ3S1Y5" in result.stderr and "2025-03-01" in result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secrets(result, EXPIRED)


def test_expired_json_still_exits_1() -> None:
    result = run(EXPIRED, "--today", TODAY, "--json")
    assert result.exit_code == 1
    statuses = {r["access_key_id"]: r["status"] for r in json.loads(result.stdout)}
    assert statuses == {
        "LJ0muvwCCaoi9iMbrJd3": "ok",
        "Y45brzJLMO8lgdZ3S1Y5": "expired",
        "pyghnVZEHiShImijPOSY": "expired",
    }
    assert_no_secrets(result, EXPIRED)


@pytest.mark.parametrize(
    ("session", "code"),
    [("X12004N", 0), ("X12", 0), ("B08004N", 1), ("B08", 1), ("ZZZ004N", 1)],
)
def test_session_option(session: str, code: int) -> None:
    result = run(EXPIRED, "--today", TODAY, "--session", session)
    assert result.exit_code == code, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines()[2:]}
    assert listed <= {session[:3]}
    if session.startswith("ZZZ"):
        assert "no key for session ZZZ" in result.stderr
        assert "B08, X12" in result.stderr


def test_session_option_too_short_is_a_usage_error() -> None:
    result = run(KEYS, "--session", "X1")
    assert result.exit_code == 2
    assert "--session" in result.stderr


def test_environment_option() -> None:
    result = run(KEYS, "--today", TODAY, "--environment", "cert")
    assert result.exit_code == 1  # X12 and U89 have no CERT key
    assert "no key for session X12 in environment CERT" in result.stderr
    assert "no key for session U89 in environment CERT" in result.stderr
    used = [line.split()[1] for line in result.stdout.splitlines()[2:] if line.endswith("<- used")]
    assert used == ["6yJP0MdxxAvYpSRLKZki"]
    result = run(KEYS, "--today", TODAY, "--environment", "NEWRELEASE", "--session", "K92004N")
    assert result.exit_code == 0
    used = [line.split()[1] for line in result.stdout.splitlines()[2:] if line.endswith("<- used")]
    assert used == ["IaTzP8A8aGLRTKMQlXU8"]


def test_keys_without_environment_column_serve_any_environment() -> None:
    result = run(NO_ENV, "--today", TODAY, "--environment", "CERT")
    assert result.exit_code == 0, result.stderr
    assert sum(line.endswith("<- used") for line in result.stdout.splitlines()) == 2
    assert_no_secrets(result, NO_ENV)


def test_everything_expired_later() -> None:
    result = run(KEYS, "--today", "2027-01-01")
    assert result.exit_code == 1
    assert result.stderr.count("has expired") == 3


def test_malformed_file_exits_2_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    good = Path(KEYS).read_text().splitlines()
    secret = good[2][52:95]
    bad_row = good[2][:103] + "2019-13-01" + good[2][113:]
    path = tmp_path / "keys.txt"
    path.write_text("\n".join([good[0], good[1], bad_row]) + "\n")
    result = run(str(path), "--today", TODAY)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"error: {path}, line 3, column 104: Creation Date '2019-13-01' is not a date"
    )
    assert "Traceback" not in result.stderr
    assert secret not in result.stderr


def test_bad_secret_exits_2_without_echoing_it(tmp_path: Path) -> None:
    good = Path(KEYS).read_text().splitlines()
    secret = good[2][52:95]
    path = tmp_path / "keys.txt"
    path.write_text(good[0] + "\n" + good[2].replace(secret, secret[:-3] + "+/+") + "\n")
    result = run(str(path), "--json")
    assert result.exit_code == 2
    assert "line 2, column 53: Secret Key is not base64url text" in result.stderr
    assert secret[:-3] not in result.stderr and secret[:-3] not in result.stdout


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = run(str(tmp_path / "none.txt"))
    assert result.exit_code == 2
    assert "cannot read the key file" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_today_and_private_file_gives_no_warning(tmp_path: Path) -> None:
    today = datetime.datetime.now(datetime.UTC).date()
    fresh = generate_key("A1B", created=today, expires=today + datetime.timedelta(days=365))
    path = tmp_path / "keys.txt"
    write_key_file(path, [fresh])
    result = run(str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert f"(today {today})" in result.stdout
    assert fresh.access_key_id in result.stdout
    assert fresh.secret.reveal() not in result.stdout


def test_readable_by_others_warns_but_still_exits_0(tmp_path: Path) -> None:
    today = datetime.datetime.now(datetime.UTC).date()
    path = tmp_path / "keys.txt"
    write_key_file(path, [generate_key("A1B", created=today, expires=today + datetime.timedelta(days=365))])
    path.chmod(0o644)
    result = run(str(path))
    assert result.exit_code == 0
    assert f"chmod 600 {path}" in result.stderr


def test_format_table_aligns_columns() -> None:
    table = format_table(("A", "LONGER"), [["xxxx", "1"], ["y", ""]])
    assert table.splitlines() == ["A     LONGER", "xxxx  1", "y"]
