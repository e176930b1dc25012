"""``dropcopy audit``: every inbound number of the week accounted for, from the journal alone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropcopy_client import DropCopyClient, Fill
from dropcopy_client._recovery import UnrecoverableGap
from dropcopy_client.cli import main
from dropcopy_client.testing import ScriptedSession, config_toml, group_layout
from tests.integration.conftest import Collector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_audit_accounts_for_every_number_names_the_lost_ones_and_fails_on_a_hole(tmp_path: Path) -> None:
    sim, config = group_layout(
        cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt", data_dir=tmp_path / "data"
    )
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    (session,) = sim.sessions
    with sim:
        client = DropCopyClient(config)
        seen = Collector(client)
        try:
            client.start(wait=20)
            src = ScriptedSession()
            sim.send_many(session, [src.order(qty=1).fill(1) for _ in range(5)])
            reset_at = sim.reset_sequence(session, sim.next_outbound_seq(session) + 4)
            sim.send_many(session, [src.order(qty=1).fill(1) for _ in range(3)])
            seen.wait_count(Fill, 8)
            seen.wait_count(UnrecoverableGap, 1)
        finally:
            client.stop()

    result = CliRunner().invoke(main, ["audit", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "ABCDEFN:G" in result.output and "yes" in result.output
    assert f"{reset_at + 1}-{reset_at + 3} lost" in result.output and "SequenceReset-Reset" in result.output

    report = json.loads(CliRunner().invoke(main, ["audit", "--config", str(path), "--json"]).output)
    (entry,) = report["sessions"]
    assert report["ok"] and entry["ok"] and entry["counts"]["journaled"] == 8
    assert entry["counts"]["lost"] == 3 and entry["counts"]["unaccounted"] == 0
    assert entry["counts"]["admin"] >= 2  # the Logon answer and the Reset itself (plus heartbeats)
    total = sum(entry["counts"].values())
    assert total == entry["highest"]  # every number from 1 to the highest, exactly once

    # A hole (a number nothing accounts for) fails the audit and is named.
    conn = sqlite3.connect(tmp_path / "data" / "journal.sqlite")
    (begin,) = conn.execute(
        "SELECT begin FROM ledger WHERE state = 'journaled' ORDER BY begin LIMIT 1"
    ).fetchone()
    conn.execute("UPDATE ledger SET begin = begin + 1 WHERE begin = ? AND state = 'journaled'", (begin,))
    conn.commit()
    conn.close()
    broken = CliRunner().invoke(main, ["audit", "--config", str(path)])
    assert broken.exit_code == 1, broken.output
    assert f"{begin} UNACCOUNTED" in broken.output


def test_audit_without_a_journal_says_how_to_get_one(tmp_path: Path) -> None:
    sim, config = group_layout(
        cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt", data_dir=tmp_path / "data"
    )
    sim.stop()
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    result = CliRunner().invoke(main, ["audit", "--config", str(path)])
    assert result.exit_code == 1
    assert "no journal" in result.output and "dropcopy run --config" in result.output
    unknown = CliRunner().invoke(main, ["audit", "--config", str(path), "--session", "NOPE:G"])
    assert unknown.exit_code == 2 and "unknown session" in unknown.output
