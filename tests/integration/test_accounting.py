"""Every inbound sequence number accounted for, on the paths where QuickFIX moves it without delivering.

Each test is one class of CME behaviour, against the simulator with the real engine process, and ends with the
audit: every number from 1 to the highest is journaled, duplicate, admin, gap-filled or declared lost.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropcopy_client import DropCopyClient, Fill, LogonRejected, Position
from dropcopy_client._audit import SessionAudit, audit_journal
from dropcopy_client._events import JournalFailed
from dropcopy_client._journal import Journal
from dropcopy_client._recovery import UnrecoverableGap
from dropcopy_client._wire import parse_frame
from dropcopy_client.auth import ApiKey, generate_key, write_key_file
from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target
from dropcopy_client.testing import BUY, ESZ6, SELL, ScriptedSession, Simulator, Texts
from tests.integration.conftest import COMP_ID, SESSION, Collector

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NAME = SESSION.name


def fills(count: int, src: ScriptedSession | None = None) -> list[bytes]:
    src = src or ScriptedSession()
    return [
        src.order(ESZ6, account="ACCT1", side=BUY if i % 2 else SELL, qty=1, price="4500").fill(1)
        for i in range(count)
    ]


def exec_ids(inners: list[bytes]) -> list[str]:
    return [dict(parse_frame(inner))[17].decode() for inner in inners]


def config(sim: Simulator, key_file: Path, data_dir: Path, *, backup: bool = False) -> ClientConfig:
    host, port = sim.endpoint(SESSION)
    backup_address = "{}:{}".format(*sim.endpoint(SESSION, "backup")) if backup else None
    return ClientConfig(
        groups=(
            GroupConfig(
                name="clearing",
                operator="OPS1",
                targets=(cgw_target(COMP_ID, f"{host}:{port}", backup_address),),
                key_file=key_file,
            ),
        ),
        data_dir=data_dir,
        reconnect_interval=1,
        heartbeat=5,
    )


def audit(data_dir: Path) -> SessionAudit:
    """The current epoch's audit of the one session (read-only, beside the running client)."""
    (result,) = [
        a for a in audit_journal(data_dir / "journal.sqlite", schedule=_schedule()) if a.session == NAME
    ][-1:]
    return result


def _schedule():  # type: ignore[no-untyped-def]
    from dropcopy_client._week import WeeklySchedule

    return WeeklySchedule.parse(ClientConfig(groups=()).weekly_reset)


@pytest.fixture
def clients() -> Iterator[list[DropCopyClient]]:
    made: list[DropCopyClient] = []
    yield made
    for client in made:
        client.stop()


def start(
    clients: list[DropCopyClient], cfg: ClientConfig, **kwargs: object
) -> tuple[DropCopyClient, Collector]:
    client = DropCopyClient(cfg, **kwargs)  # type: ignore[arg-type]
    clients.append(client)
    seen = Collector(client)
    client.start(wait=20)
    return client, seen


def wait_fills(seen: Collector, count: int, timeout: float = 60) -> list[Fill]:
    got: list[Fill] = seen.wait_count(Fill, count, timeout=timeout)
    assert len(got) >= count, f"{len(got)} of {count} fills"
    return got


# ---------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("numbering", ["next", "stream"])
def test_a_backup_refusal_after_a_drop_never_swallows_a_fill(
    numbering: str, key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    """The link drops with fills in flight; the reconnect lands on the backup, which refuses with a Logout.
    QuickFIX would count that Logout as the next inbound number and one fill would vanish."""
    with Simulator([key], sessions=[SESSION], refusal_numbering=numbering) as sim:  # type: ignore[arg-type]
        client, seen = start(clients, config(sim, key_file, tmp_path / "data", backup=True))
        first = fills(3)
        sim.send_many(SESSION, first)
        wait_fills(seen, 3)
        in_flight = fills(4, ScriptedSession(exec_id_prefix=7001))
        sim.drop_next(SESSION, 4)
        sim.send_many(SESSION, in_flight)  # numbered and stored, never written
        sim.kill(SESSION, "primary")  # the connection drops; the next attempt goes to the backup
        assert sim.wait_for(lambda: bool(sim.rejections(SESSION)), 20)
        assert sim.rejections(SESSION)[0].text == Texts.BACKUP_NOT_ALLOWED
        sim.revive(SESSION, "primary")
        got = wait_fills(seen, 7)
        assert [f.exec_id for f in got] == exec_ids(first) + exec_ids(in_flight)  # none lost, none doubled
        assert not seen.of(UnrecoverableGap)
        assert sim.bad_logons(SESSION) == 0  # a backup refusal is not a bad logon
        assert seen.wait(lambda _: audit(tmp_path / "data").ok and not client.is_uncertain(NAME), 10)


def test_a_mid_week_logout_with_789_is_answered_by_a_logon_with_exactly_that_number(
    key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    with Simulator([key], sessions=[SESSION]) as sim:
        sim.set_sequences(SESSION, expected_inbound=57, next_outbound=30)
        _client, seen = start(clients, config(sim, key_file, tmp_path / "data"))
        logons = [dict(parse_frame(raw)) for raw in sim.received(SESSION, "A")]
        assert [int(f[34]) for f in logons] == [1, 57]  # the re-logon carries 789 itself, not 789 + 1
        # nothing but Logons went out before the valid logon (CME counts such traffic against the port)
        before = sim.received(SESSION)[
            : [r for r in sim.received(SESSION)].index(sim.received(SESSION, "A")[1])
        ]
        assert {dict(parse_frame(raw))[35] for raw in before} == {b"A"}
        src = fills(2)
        sim.send_many(SESSION, src)
        got = wait_fills(seen, 2)
        assert [f.exec_id for f in got] == exec_ids(src)
        assert seen.wait(lambda _: audit(tmp_path / "data").ok, 10)


# ---------------------------------------------------------------------------------------------- reset mode
def test_a_sequence_reset_reset_reports_what_it_skipped_and_keeps_positions_uncertain(
    key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    with Simulator([key], sessions=[SESSION]) as sim:
        client, seen = start(clients, config(sim, key_file, tmp_path / "data"))
        client.on_position(lambda _: None)  # position events wanted
        src = ScriptedSession()
        before = fills(2, src)
        sim.send_many(SESSION, before)
        wait_fills(seen, 2)
        reset_at = sim.reset_sequence(SESSION, sim.next_outbound_seq(SESSION) + 10)
        after = fills(2, src)
        sim.send_many(SESSION, after)
        got = wait_fills(seen, 4)
        assert [f.exec_id for f in got] == exec_ids(before) + exec_ids(after)
        (gap,) = seen.wait_count(UnrecoverableGap, 1)
        assert (gap.begin, gap.end) == (reset_at + 1, reset_at + 9)
        assert "SequenceReset-Reset" in gap.reason and gap.journal_id is not None
        assert client.is_uncertain(NAME)
        positions = seen.wait_count(Position, 4)
        assert positions[-1].uncertain  # after the skip, nothing says the book is complete
        result = audit(tmp_path / "data")
        assert result.ok and result.counts["lost"] == 9
        (lost,) = [r for r in result.exceptions if r.state == "lost"]
        assert "SequenceReset-Reset" in (lost.cause or "")


# ---------------------------------------------------------------------------------------------- resend refusals
def test_a_logout_storm_while_resending_gives_up_nothing_cme_still_holds(
    key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    """Logouts that merely end the connection while a resend is out are not refusals of the request."""
    with Simulator([key], sessions=[SESSION]) as sim:
        _client, seen = start(
            clients, config(sim, key_file, tmp_path / "data"), engine_options={"backoff_cap": 2.0}
        )
        missing = fills(20)
        sim.drop_next(SESSION, 20)
        sim.send_many(SESSION, missing)
        sim.reject_next_resend(SESSION, "logout", "", times=5)  # five Logouts in a row, no reason given
        live = fills(1, ScriptedSession(exec_id_prefix=5001))
        sim.send_many(SESSION, live)
        got = wait_fills(seen, 21, timeout=90)
        assert [f.exec_id for f in got] == exec_ids(missing) + exec_ids(live)
        assert not seen.of(UnrecoverableGap)
        assert seen.wait(lambda _: audit(tmp_path / "data").ok, 10)


def test_a_logout_whose_text_refuses_the_resend_counts_and_is_given_up_after_the_limit(
    key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    with Simulator([key], sessions=[SESSION]) as sim:
        _client, seen = start(
            clients, config(sim, key_file, tmp_path / "data"), engine_options={"backoff_cap": 2.0}
        )
        missing = fills(5)
        sim.drop_next(SESSION, 5)
        gap = sim.send_many(SESSION, missing)
        sim.reject_next_resend(SESSION, "logout", Texts.RESEND_REJECTED, times=3)
        live = fills(1, ScriptedSession(exec_id_prefix=5001))
        sim.send_many(SESSION, live)
        (lost,) = seen.wait_count(UnrecoverableGap, 1, timeout=90)
        assert (lost.begin, lost.end) == (gap.start, gap.stop - 1)
        assert "refused" in lost.reason and "3 times" in lost.reason
        got = wait_fills(seen, 1)
        assert [f.exec_id for f in got] == exec_ids(live)
        assert seen.wait(lambda _: audit(tmp_path / "data").ok, 10)


# ---------------------------------------------------------------------------------------------- poison frames
@pytest.mark.parametrize("how", ["xmldatalen", "checksum"])
def test_a_frame_quickfix_can_never_parse_is_declared_lost_with_its_bytes_and_the_session_moves_on(
    how: str, key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    with Simulator([key], sessions=[SESSION]) as sim:
        _client, seen = start(clients, config(sim, key_file, tmp_path / "data"))
        src = ScriptedSession()
        before = fills(2, src)
        sim.send_many(SESSION, before)
        poison = fills(1, src)[0]
        bad = sim.send_poison(SESSION, poison, how)
        after = fills(3, src)
        sim.send_many(SESSION, after)
        (lost,) = seen.wait_count(UnrecoverableGap, 1, timeout=90)
        assert (lost.begin, lost.end) == (bad, bad)
        assert "QuickFIX cannot parse the frame" in lost.reason
        assert lost.raw is not None and b"\x0134=%d\x01" % bad in lost.raw  # the bytes kept, for the record
        got = wait_fills(seen, 5)
        assert [f.exec_id for f in got] == exec_ids(before) + exec_ids(after)
        # the session may still be logging on again after the give-up: a number it has seen but not yet
        # accounted for is the gap being recovered, not a hole; it must close (a hole that stays fails here)
        sim.wait_for(lambda: audit(tmp_path / "data").ok, 30)
        result = audit(tmp_path / "data")
        assert result.ok, result
        assert result.counts["lost"] == 1


# ---------------------------------------------------------------------------------------------- journal failure
def test_a_full_journal_holds_the_session_and_recovers_every_fill_once_space_is_back(
    key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    with Simulator([key], sessions=[SESSION]) as sim:
        client, seen = start(clients, config(sim, key_file, tmp_path / "data"))
        got_by_handler: list[str] = []
        client.on(Fill, name="store")(lambda f: got_by_handler.append(f.exec_id))
        src = ScriptedSession()
        first = fills(50, src)
        sim.send_many(SESSION, first)
        wait_fills(seen, 50)
        journal = client.journal
        assert journal is not None
        journal.set_max_pages(journal.page_count())  # the disk is full from now on (SQLITE_FULL)
        rest = fills(500, src)
        sender = sim.send_many(SESSION, rest[:250])
        (failed,) = seen.wait_count(JournalFailed, 1, timeout=30)
        assert not failed.recovered and "full" in failed.error
        assert sim.wait_logged_off(SESSION, 15)  # held: nothing is acknowledged that is not journaled
        sim.send_many(SESSION, rest[250:])  # CME keeps sending meanwhile (it stores for resends)
        journal.set_max_pages(2**30)  # space is back
        assert seen.wait(lambda evs: any(isinstance(e, JournalFailed) and e.recovered for e in evs), 60)
        got = wait_fills(seen, 550, timeout=90)
        assert sorted(f.exec_id for f in got) == sorted(exec_ids(first + rest))
        assert len({f.exec_id for f in got}) == 550  # each exactly once
        assert seen.wait(lambda _: len(got_by_handler) == 550, 30)
        assert got_by_handler == exec_ids(first + rest)
        assert sender.start > 0
        assert seen.wait(lambda _: audit(tmp_path / "data").ok, 10)


# ---------------------------------------------------------------------------------------------- port closure
def test_restarts_never_make_a_fifth_bad_logon_inside_sixty_seconds(
    key: ApiKey, tmp_path: Path, today: dt.date
) -> None:
    wrong = generate_key(
        COMP_ID[:3], created=today - dt.timedelta(days=1), expires=today + dt.timedelta(days=90)
    )
    wrong_file = tmp_path / "wrong.txt"
    write_key_file(wrong_file, [wrong])
    with Simulator([key], sessions=[SESSION]) as sim:
        cfg = config(sim, wrong_file, tmp_path / "data")
        started = time.monotonic()
        for attempt in range(6):  # each a new client and a new engine process, as restarts would be
            client = DropCopyClient(cfg)
            seen = Collector(client)
            try:
                client.start()
                if attempt < 4:
                    seen.wait_count(LogonRejected, 1, timeout=20)
                else:
                    time.sleep(3)  # the guard holds the logon back
            finally:
                client.stop()
        assert time.monotonic() - started < 60
        assert sim.bad_logons(SESSION) == 4
        assert not sim.is_locked_out(SESSION)
        history = (tmp_path / "data" / "logon-attempts.jsonl").read_text()
        assert history.count('"refused"') >= 4


# ---------------------------------------------------------------------------------------------- two clients
def test_two_clients_on_one_data_dir_refuse_clearly_and_a_stopped_one_can_be_replaced(
    key: ApiKey, key_file: Path, tmp_path: Path, clients: list[DropCopyClient]
) -> None:
    from dropcopy_client.errors import DataDirInUse

    with Simulator([key], sessions=[SESSION]) as sim:
        cfg = config(sim, key_file, tmp_path / "data")
        first, _ = start(clients, cfg)
        second = DropCopyClient(cfg)
        with pytest.raises(DataDirInUse, match=r"in use by another dropcopy client \(pid \d+\)"):
            second.start()
        first.stop()
        _third, seen = start(clients, cfg)  # the same process, a new client: works
        sim.send_many(SESSION, fills(1))
        wait_fills(seen, 1)
        other = tmp_path / "other"
        fourth = DropCopyClient(config(sim, key_file, other))  # another data_dir in the same process: fine
        clients.append(fourth)
        fourth.start()  # (no logon expected: the simulator has one session, already logged on)
        fourth.stop()


def _journal_rows(data_dir: Path) -> int:
    with Journal.open_readonly(data_dir / "journal.sqlite") as journal:
        return journal.count()
