"""Drop copy groups: CGW and MSGW sessions in one client, failover, restart mid-week."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from dropcopy_client import DropCopyClient, ExecutionReport, Fill, SessionEvent, SessionState
from dropcopy_client._recovery import DuplicateIgnored
from dropcopy_client._wire import parse_frame
from dropcopy_client.config import ClientConfig, SessionEndpoints
from dropcopy_client.testing import (
    BUY,
    ESZ6,
    MSGW_FO_SEGMENTS,
    SELL,
    ScriptedSession,
    SimSession,
    Simulator,
    Texts,
    group_layout,
)
from tests.integration.conftest import Collector

pytestmark = pytest.mark.integration

CGW = SimSession("ABCDEFN")
MSGW = [SimSession("XYZDEFN", seg) for seg in ("84", "92", "98")]


def flow(count: int, prefix: int) -> list[bytes]:
    src = ScriptedSession(exec_id_prefix=prefix)
    return [
        src.order(ESZ6, account="ACCT1", side=BUY if i % 2 else SELL, qty=1, price="4500").fill(1)
        for i in range(count)
    ]


def exec_ids(inners: list[bytes]) -> list[str]:
    return [dict(parse_frame(inner))[17].decode() for inner in inners]


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Simulator, ClientConfig]]:
    sim, config = group_layout(
        cgw=(CGW.sender_comp_id,), msgw={"XYZDEFN": ("84", "92", "98")}, key_file=tmp_path / "keys.txt"
    )
    with sim:
        yield sim, config


@pytest.fixture
def clients() -> Iterator[list[DropCopyClient]]:
    made: list[DropCopyClient] = []
    yield made
    for client in made:
        client.stop()


def test_one_cgw_and_three_msgw_segments_stream_concurrently(
    layout: tuple[Simulator, ClientConfig], clients: list[DropCopyClient]
) -> None:
    sim, config = layout
    client = DropCopyClient(config)
    clients.append(client)
    seen = Collector(client)
    client.start(wait=20)
    assert sorted(client.sessions) == ["ABCDEFN:G", "XYZDEFN:84", "XYZDEFN:92", "XYZDEFN:98"]
    sent: dict[str, list[str]] = {}
    for i, session in enumerate([CGW, *MSGW]):
        inners = flow(200, 70000 + i)
        sent[session.name] = exec_ids(inners)
        sim.send_many(session, inners)
    got = seen.wait_count(Fill, 800, timeout=60)
    assert len(got) == 800
    for name, ids in sent.items():
        mine = [f for f in got if f.delivery.session == name]
        assert [f.exec_id for f in mine] == ids  # per-session order preserved
        seqs = [f.delivery.seq_num for f in mine]
        assert seqs == sorted(seqs)
        assert all(f.delivery.group == "clearing" for f in mine)
        assert {f.delivery.segment for f in mine} == {name.split(":")[1]}


def test_the_same_sequence_number_on_two_segments_is_two_messages(
    layout: tuple[Simulator, ClientConfig], clients: list[DropCopyClient]
) -> None:
    sim, config = layout
    client = DropCopyClient(config)
    clients.append(client)
    seen = Collector(client)
    client.start(wait=20)
    a, b = flow(1, 81000), flow(1, 82000)
    seq = sim.send_same_seq(MSGW[:2], {MSGW[0]: a[0], MSGW[1]: b[0]})
    got = seen.wait_count(Fill, 2)
    assert sorted((f.delivery.session, f.delivery.seq_num) for f in got) == [
        ("XYZDEFN:84", seq),
        ("XYZDEFN:92", seq),
    ]
    assert not seen.of(DuplicateIgnored)


def test_a_full_19_segment_layout_logs_on_and_streams(tmp_path: Path, clients: list[DropCopyClient]) -> None:
    sim, config = group_layout(
        cgw=("ABCDEFN",), msgw={"XYZDEFN": MSGW_FO_SEGMENTS}, key_file=tmp_path / "keys.txt"
    )
    with sim:
        client = DropCopyClient(config)
        clients.append(client)
        seen = Collector(client)
        client.start(wait=30)
        assert len(client.sessions) == 20
        assert all(s.state is SessionState.LOGGED_ON for s in client.status())
        for i, segment in enumerate(MSGW_FO_SEGMENTS):
            sim.send_many(SimSession("XYZDEFN", segment), flow(5, 60000 + i))
        got = seen.wait_count(Fill, 5 * len(MSGW_FO_SEGMENTS), timeout=60)
        assert {f.delivery.segment for f in got} == set(MSGW_FO_SEGMENTS)


def test_primary_killed_mid_stream_the_backup_takes_over_and_nothing_is_lost(
    layout: tuple[Simulator, ClientConfig], clients: list[DropCopyClient]
) -> None:
    sim, config = layout
    client = DropCopyClient(config)
    clients.append(client)
    seen = Collector(client)
    client.start(wait=20)
    host, port = sim.endpoint(CGW, "backup")
    before, after = flow(300, 71000), flow(300, 72000)
    sim.send_many(CGW, before)
    seen.wait_count(Fill, 300)
    sim.promote_backup(CGW, jump=4000, replay_last=50)  # CME: seq +4000, last messages again with 97=Y
    sim.send_many(CGW, after)
    got = seen.wait_count(Fill, 600, timeout=60)
    assert [f.exec_id for f in got] == exec_ids(before) + exec_ids(after)  # nothing lost, nothing doubled
    assert len(seen.wait_count(DuplicateIgnored, 50)) == 50  # the 97=Y replays were recognised
    connected = [
        e for e in seen.of(SessionEvent) if e.session == "ABCDEFN:G" and e.state is SessionState.LOGGED_ON
    ]
    assert connected[-1].endpoint == f"{host}:{port}"


def test_a_logon_on_the_backup_while_the_primary_is_up_goes_back_to_the_primary(
    layout: tuple[Simulator, ClientConfig], clients: list[DropCopyClient]
) -> None:
    sim, config = layout
    # Point the client's "primary" at CME's backup gateway: CME refuses it with 789 while its primary is up.
    primary = "{}:{}".format(*sim.endpoint(CGW, "primary"))
    backup = "{}:{}".format(*sim.endpoint(CGW, "backup"))
    group = config.groups[0]
    swapped = tuple(
        attrs.evolve(
            t,
            segments={
                "G": SessionEndpoints(
                    t.segments["G"].backup or t.segments["G"].primary, t.segments["G"].primary
                )
            },
        )
        if t.kind == "cgw"
        else t
        for t in group.targets
    )
    client = DropCopyClient(attrs.evolve(config, groups=(attrs.evolve(group, targets=swapped),)))
    clients.append(client)
    seen = Collector(client)
    client.start(wait=30)
    refusals = [r for r in sim.rejections(CGW) if r.text == Texts.BACKUP_NOT_ALLOWED]
    assert refusals, "the simulator should have refused the logon on its backup"
    # The refusal took CME's number 1 (the simulator numbers it in the stream): the session recovers it (a
    # GapFill) before it counts as logged on rather than recovering.
    assert seen.wait(
        lambda _: {s.session: s for s in client.status()}["ABCDEFN:G"].state is SessionState.LOGGED_ON, 10
    )
    status = {s.session: s for s in client.status()}
    assert status["ABCDEFN:G"].endpoint == primary
    assert sim.bad_logons(CGW) == 0  # a backup refusal is not an invalid logon
    events = [e for e in seen.of(SessionEvent) if e.session == "ABCDEFN:G" and e.endpoint == backup]
    assert events, "the first connection went to the backup address"


def test_a_restart_mid_week_continues_the_sequence(
    layout: tuple[Simulator, ClientConfig], clients: list[DropCopyClient]
) -> None:
    sim, config = layout
    first = DropCopyClient(config)
    seen = Collector(first)
    first.start(wait=20)
    early = flow(20, 73000)
    sim.send_many(CGW, early)
    seen.wait_count(Fill, 20)
    first.stop()
    logons_before = len(sim.received(CGW, "A"))

    second = DropCopyClient(config)
    clients.append(second)
    seen2 = Collector(second)
    second.start(wait=20)
    late = flow(10, 74000)
    sim.send_many(CGW, late)
    got = seen2.wait_count(ExecutionReport, 10)
    assert [f.exec_id for f in got] == exec_ids(late)  # nothing re-delivered, nothing missing
    logon = dict(parse_frame(sim.received(CGW, "A")[logons_before]))
    assert int(logon[34]) > 1 and logon[141] == b"N"  # mid-week logon: the sequence goes on
    assert not [r for r in sim.rejections(CGW) if "too low" in r.text.lower()]
    # the book was rebuilt from the journal: the 20 earlier fills still count
    position = second.book.position("ACCT1", str(ESZ6.security_id))
    assert position is not None and position.fill_count == 30
