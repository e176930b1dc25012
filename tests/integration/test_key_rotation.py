"""Mid-week key rotation without a restart: a new key in the same file signs the next logon."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dropcopy_client import DropCopyClient, Fill, KeyReloadFailed, KeyRotated
from dropcopy_client._wire import parse_frame
from dropcopy_client.auth import ApiKey, generate_key, write_key_file
from dropcopy_client.testing import Simulator
from tests.integration.conftest import COMP_ID, SESSION, Collector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def logon_key_ids(sim: Simulator) -> list[str]:
    return [dict(parse_frame(logon))[355].decode() for logon in sim.received(SESSION, "A")]


def test_a_rotated_key_signs_the_next_logon_and_a_broken_file_keeps_the_old_one(
    make_client: Callable[..., DropCopyClient],
    sim: Simulator,
    key: ApiKey,
    key_file: Path,
    today: dt.date,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(key_check_interval=0.1)
    seen = Collector(client)
    client.start(wait=15)
    assert logon_key_ids(sim) == [key.access_key_id]

    # CME's rotation: the user downloads the new key into the same file; the old one still works until
    # the next logon, so the running session is left alone
    new = generate_key(
        COMP_ID[:3], created=today - dt.timedelta(days=1), expires=today + dt.timedelta(days=400)
    )
    sim.add_key(new)
    write_key_file(key_file, [key, new])
    (rotated,) = seen.wait_count(KeyRotated, 1, timeout=10)
    assert (rotated.session, rotated.old_key_id, rotated.new_key_id) == (
        client.sessions[0],
        key.access_key_id,
        new.access_key_id,
    )
    assert sim.is_logged_on(SESSION) and len(logon_key_ids(sim)) == 1  # no reconnect for a rotation

    sim.remove_key(key.access_key_id)  # the old key would be refused now: only the new one can log on
    sim.drop_connection(SESSION)
    assert sim.wait_for(lambda: len(logon_key_ids(sim)) >= 2 and sim.is_logged_on(SESSION), 30)
    assert logon_key_ids(sim)[-1] == new.access_key_id
    assert seen.wait(lambda _: client.status()[0].key_id == new.access_key_id, 10)

    # a half-written or broken file: reported once, naming the file; the current key stays in use
    caplog.set_level(logging.DEBUG)
    key_file.write_text("not a key file\n", encoding="utf-8")
    (failed,) = seen.wait_count(KeyReloadFailed, 1, timeout=10)
    assert failed.source == str(key_file) and str(key_file) in failed.reason
    logons = len(logon_key_ids(sim))
    sim.drop_connection(SESSION)
    assert sim.wait_for(lambda: len(logon_key_ids(sim)) > logons and sim.is_logged_on(SESSION), 30)
    assert logon_key_ids(sim)[-1] == new.access_key_id
    assert len(seen.of(KeyReloadFailed)) == 1  # once per change of the file, not at every check
    for secret in (key.secret.reveal(), new.secret.reveal()):
        assert secret not in caplog.text
        assert all(secret not in repr(e) for e in seen.events)


def test_a_key_file_others_can_read_is_named_with_its_fix_at_start(
    make_client: Callable[..., DropCopyClient], key_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file.chmod(0o644)
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="dropcopy_client"):
        client.start(wait=15)
    (warning,) = [r.getMessage() for r in caplog.records if "chmod" in r.getMessage()]
    assert str(key_file) in warning and "mode 0644" in warning and f"chmod 600 {key_file}" in warning


def test_every_file_the_client_and_quickfix_write_is_the_owners_alone(
    make_client: Callable[..., DropCopyClient], sim: Simulator, tmp_path: Path
) -> None:
    from dropcopy_client.testing import ScriptedSession

    previous = os.umask(0o022)  # a usual umask: files would be world-readable by default
    try:
        client = make_client()
        seen = Collector(client)
        client.start(wait=15)
        src = ScriptedSession()
        sim.send_many(SESSION, [src.order().fill() for _ in range(5)])
        assert len(seen.wait_count(Fill, 5)) == 5
        client.stop()
    finally:
        os.umask(previous)
    data = tmp_path / "data"
    written = [p for p in data.rglob("*")]
    assert any(p.name == "journal.sqlite" for p in written) and any(p.suffix == ".body" for p in written)
    loose = [
        f"{p} {stat.S_IMODE(p.stat().st_mode):04o}" for p in [data, *written] if p.stat().st_mode & 0o077
    ]
    assert loose == []


def test_dropcopy_run_strict_refuses_readable_keys(tmp_path: Path, sim: Simulator, key_file: Path) -> None:
    from click.testing import CliRunner

    from dropcopy_client.cli import main
    from dropcopy_client.testing import config_toml
    from tests.integration.conftest import config_for

    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config_for(sim, key_file, tmp_path / "data")), encoding="utf-8")
    key_file.chmod(0o640)
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--strict"])
    assert result.exit_code == 2
    assert f"chmod 600 {key_file}" in result.output and "--strict" in result.output
    assert sim.received(SESSION, "A") == []  # refused before any connection
