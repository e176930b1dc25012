"""examples/deploy: the systemd unit passes `systemd-analyze verify` and agrees with the CLI's exit codes; the
example configuration loads; the Dockerfile runs as a user of its own with data_dir as a volume (built only
where a Docker daemon runs and DROPCOPY_TEST_DOCKER=1: the build compiles QuickFIX and pulls a base image)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dropcopy_client.cli._exit import EXIT_CONFIG, EXIT_LOCKED_OUT
from dropcopy_client.config import load_config

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"


def _unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "dropcopy.service").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_says_what_dropcopy_run_does() -> None:
    unit = _unit()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]  # READY/WATCHDOG/STOPPING
    assert "WatchdogSec" in unit
    # SIGTERM for dropcopy only: the engine process must live on to send the Logouts
    assert unit["KillMode"] == ["mixed"] and unit["KillSignal"] == ["SIGTERM"]
    assert unit["Restart"] == ["on-failure"]
    # never restarted on a configuration error or a lock-out (a restart would spend CME's logon budget)
    assert {int(code) for code in unit["RestartPreventExitStatus"][0].split()} == {
        EXIT_CONFIG,
        EXIT_LOCKED_OUT,
    }
    assert (
        unit["User"] == ["dropcopy"] and unit["StateDirectoryMode"] == ["0700"] and unit["UMask"] == ["0077"]
    )
    assert "--log-format json run" in unit["ExecStart"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # the unit names /opt/dropcopy/venv, which does not exist here: point it at this environment's dropcopy
    dropcopy = Path(sys.executable).with_name("dropcopy")
    assert dropcopy.exists()
    text = (DEPLOY / "dropcopy.service").read_text(encoding="utf-8")
    assert "/opt/dropcopy/venv/bin/dropcopy" in text
    unit = tmp_path / "dropcopy.service"
    unit.write_text(text.replace("/opt/dropcopy/venv/bin/dropcopy", str(dropcopy)), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_example_configuration_loads_and_uses_the_state_directory() -> None:
    config = load_config(DEPLOY / "dropcopy.toml")
    assert str(config.data_dir) == "/var/lib/dropcopy"
    assert [t.sender_comp_id for g in config.groups for t in g.targets] == ["ABCDEFN"]


def test_the_image_runs_as_a_user_of_its_own_with_data_dir_as_a_volume() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM "))] if lines else ""
    assert final.startswith("FROM python:3.11")
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["dropcopy"]
    assert 'VOLUME ["/var/lib/dropcopy"]' in lines
    assert any("install -d -o dropcopy -g dropcopy -m 0700 /var/lib/dropcopy" in line for line in lines)
    assert 'ENTRYPOINT ["dropcopy", "--log-format", "json"]' in lines and "STOPSIGNAL SIGTERM" in lines
    assert (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()[1:3] == [
        ".git",
        ".venv",
    ]


def _docker_daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0


@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    os.environ.get("DROPCOPY_TEST_DOCKER") != "1", reason="set DROPCOPY_TEST_DOCKER=1 to build"
)
def test_the_image_builds_and_runs_the_demo() -> None:
    if not _docker_daemon():
        pytest.skip("no Docker daemon answers `docker info` on this machine")
    wheels = ROOT.parent / "shared" / "wheels"
    context = ["--build-context", f"wheels={wheels}"] if wheels.is_dir() else []
    tag = "dropcopy-client:test"
    subprocess.run(
        ["docker", "build", "-f", str(DEPLOY / "Dockerfile"), *context, "-t", tag, str(ROOT)], check=True
    )
    done = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "dropcopy", tag, "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and "business messages received" in done.stdout, done.stderr
    whoami = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True
    )
    assert whoami.stdout.strip() != "0"
