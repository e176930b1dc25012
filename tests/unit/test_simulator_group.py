"""A whole drop copy group in the simulator (Simulator.from_config, group_layout), driven by a raw FIX client.

Loopback sockets but no QuickFIX: tests/simclient.py writes every byte, so these run in the unit suite.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from dropcopy_client.auth import ApiKey, generate_key, load_key_file, write_key_file
from dropcopy_client.config import (
    ClientConfig,
    Endpoint,
    GroupConfig,
    SessionEndpoints,
    cgw_target,
    load_config,
    msgw_target,
)
from dropcopy_client.errors import KeyFileError
from dropcopy_client.testing import (
    ESZ6,
    MSGW_FO_SEGMENTS,
    ScriptedSession,
    SimSession,
    Simulator,
    SimulatorError,
    Texts,
    config_toml,
    group_layout,
)
from tests.simclient import SimClient

CGW = SimSession("ABCDEFN")
S84, S92, S98 = (SimSession("XYZDEFN", seg) for seg in ("84", "92", "98"))


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[tuple[Simulator, ClientConfig]]:
    sim, config = group_layout(key_file=tmp_path / "keys.txt")
    with sim:
        yield sim, config


def keys_of(config: ClientConfig) -> dict[str, ApiKey]:
    key_file = config.groups[0].key_file
    assert key_file is not None
    return {key.session_id: key for key in load_key_file(key_file).keys}


def client_for(
    sim: Simulator, config: ClientConfig, session: SimSession, role: str = "primary", *, seq: int = 1
) -> SimClient:
    key = keys_of(config)[session.sender_comp_id[:3]]
    client = SimClient(
        sim.endpoint(session, role),  # type: ignore[arg-type]
        sender_comp_id=session.sender_comp_id,
        target_sub_id=session.segment,
        sender_sub_id=config.groups[0].operator,
        key_id=key.access_key_id,
        secret=key.secret.reveal(),
    )
    client.seq = seq
    return client


def inner(n: int) -> bytes:
    src = ScriptedSession()
    return src.order(ESZ6, account=f"ACCT{n}", qty=n, price="4500.25").ack()


# -- construction ----------------------------------------------------------------------------------------------


def test_group_layout_serves_one_cgw_and_three_msgw_segments(layout: tuple[Simulator, ClientConfig]) -> None:
    sim, config = layout
    assert set(sim.sessions) == {CGW, S84, S92, S98}
    (group,) = config.groups
    assert (group.name, group.operator, group.key_env) == ("clearing", "OPS1", False)
    assert [(t.kind, t.sender_comp_id, list(t.segments)) for t in group.targets] == [
        ("cgw", "ABCDEFN", ["G"]),
        ("msgw", "XYZDEFN", ["84", "92", "98"]),
    ]
    ports = set()
    for target in group.targets:
        for segment, endpoints in target.segments.items():
            session = SimSession(target.sender_comp_id, segment)
            assert endpoints.backup is not None
            assert (endpoints.primary.host, endpoints.primary.port) == sim.endpoint(session, "primary")
            assert (endpoints.backup.host, endpoints.backup.port) == sim.endpoint(session, "backup")
            assert endpoints.primary.host == endpoints.backup.host == "127.0.0.1"
            ports |= {endpoints.primary.port, endpoints.backup.port}
    assert len(ports) == 8 and 0 not in ports
    assert config.reconnect_interval == 1
    assert config.data_dir == group.key_file.parent / "data"  # type: ignore[union-attr]
    assert set(keys_of(config)) == {"ABC", "XYZ"}


def test_group_layout_reuses_an_existing_key_file_and_takes_client_options(tmp_path: Path) -> None:
    today = dt.date.today()
    key = generate_key("QRS", created=today, expires=today + dt.timedelta(days=30))
    write_key_file(tmp_path / "mine.txt", [key])
    sim, config = group_layout(
        ("QRSTUVN",),
        {},
        key_file=tmp_path / "mine.txt",
        operator="DESK9",
        name="risk",
        data_dir=tmp_path / "d",
        heartbeat=10,
        simulator={"resend_cap": 100},
    )
    with sim:
        assert sim.sessions == (SimSession("QRSTUVN"),)
        assert sim.resend_cap == 100
        assert (config.heartbeat, config.data_dir, config.groups[0].name) == (10, tmp_path / "d", "risk")
        assert load_key_file(tmp_path / "mine.txt").keys[0].access_key_id == key.access_key_id
        with client_for(sim, config, SimSession("QRSTUVN")) as client:
            client.logon()
            assert client.expect("A").get(50) == "G"


def test_full_19_segment_layout(tmp_path: Path) -> None:
    sim, config = group_layout(msgw={"XYZDEFN": MSGW_FO_SEGMENTS}, key_file=tmp_path / "keys.txt")
    with sim:
        assert len(MSGW_FO_SEGMENTS) == len(set(MSGW_FO_SEGMENTS)) == 19
        assert len(sim.sessions) == 20
        addresses = {sim.endpoint(s, role) for s in sim.sessions for role in ("primary", "backup")}
        assert len(addresses) == 40
        last = SimSession("XYZDEFN", MSGW_FO_SEGMENTS[-1])
        with client_for(sim, config, last) as client:
            client.logon()
            assert client.expect("A").get(50) == MSGW_FO_SEGMENTS[-1]
        assert sim.wait_for(lambda: not sim.is_logged_on(last), 5)


def test_config_toml_round_trips(layout: tuple[Simulator, ClientConfig], tmp_path: Path) -> None:
    _, config = layout
    path = tmp_path / "sub" / "dropcopy.toml"
    path.parent.mkdir()
    path.write_text(config_toml(config), encoding="utf-8")
    loaded = load_config(path)
    assert loaded == attrs.evolve(config, source=str(path))


def test_config_toml_writes_key_env_and_environment(tmp_path: Path) -> None:
    config = ClientConfig(
        groups=(
            GroupConfig(
                name='with "quotes"',
                operator="OPS1",
                targets=(cgw_target("ABCDEFN", "127.0.0.1:9000"),),
                key_env=True,
                environment="cert",
            ),
        ),
        data_dir=tmp_path,
    )
    path = tmp_path / "c.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    assert load_config(path) == attrs.evolve(config, source=str(path))


def test_sim_session_name_matches_the_client_session_name() -> None:
    assert CGW.name == "ABCDEFN:G" and S92.name == "XYZDEFN:92"


# -- from_config -----------------------------------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def test_from_config_file_listens_where_the_file_says_and_loads_its_keys(tmp_path: Path) -> None:
    today = dt.date.today()
    keys = [generate_key(sid, created=today, expires=today + dt.timedelta(days=9)) for sid in ("ABC", "XYZ")]
    (tmp_path / "keys").mkdir()
    write_key_file(tmp_path / "keys" / "k.txt", keys)
    p1, b1, p84, b84 = _free_ports(4)
    (tmp_path / "dropcopy.toml").write_text(
        f"""
[client]
data_dir = "data"

[[group]]
name = "clearing"
key_file = "keys/k.txt"
operator = "OPS1"

[[group.target]]
kind = "cgw"
sender_comp_id = "ABCDEFN"
primary = "127.0.0.1:{p1}"
backup = "localhost:{b1}"

[[group.target]]
kind = "msgw"
sender_comp_id = "XYZDEFN"
segments = {{ "84" = {{ primary = "127.0.0.1:{p84}", backup = "127.0.0.1:{b84}" }} }}
""",
        encoding="utf-8",
    )
    with Simulator.from_config(tmp_path / "dropcopy.toml") as sim:
        assert set(sim.sessions) == {CGW, S84}
        assert sim.endpoint(CGW) == ("127.0.0.1", p1)
        assert sim.endpoint(CGW, "backup") == ("127.0.0.1", b1)
        assert sim.endpoint(S84, "backup") == ("127.0.0.1", b84)
        config = load_config(tmp_path / "dropcopy.toml")
        assert sim.bound_config(config) == config
        for session in (CGW, S84):
            with client_for(sim, config, session) as client:
                client.logon()
                assert client.expect("A").get(50) == session.segment
                client.send("5")
                client.expect("5")


def test_from_config_binds_port_0_and_serves_a_backup_anyway(tmp_path: Path) -> None:
    today = dt.date.today()
    key = generate_key("ABC", created=today, expires=today + dt.timedelta(days=9))
    config = ClientConfig(
        groups=(
            GroupConfig(
                name="g",
                operator="OPS1",
                targets=(cgw_target("ABCDEFN", Endpoint("127.0.0.1", 0)),),
                key_env=True,
            ),
        ),
    )
    with Simulator.from_config(config, [key]) as sim:
        primary, backup = sim.endpoint(CGW), sim.endpoint(CGW, "backup")
        assert primary[1] and backup[1] and primary != backup
        # The simulator always has a backup listener; the client config keeps "no backup" as configured.
        bound = sim.bound_config(config)
        endpoints = bound.groups[0].targets[0].segments["G"]
        assert endpoints == SessionEndpoints(Endpoint(*primary), None)
        # kill/revive keep the OS-chosen port
        sim.kill(CGW)
        sim.revive(CGW)
        assert sim.endpoint(CGW) == primary


def test_from_config_reads_environment_keys_for_key_env_groups(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    today = dt.date.today()
    key = generate_key("ABC", created=today, expires=today + dt.timedelta(days=9))
    monkeypatch.setenv("DROPCOPY_ACCESS_KEY_ID", key.access_key_id)
    monkeypatch.setenv("DROPCOPY_SECRET_KEY", key.secret.reveal())
    config = ClientConfig(
        groups=(
            GroupConfig(
                name="g",
                operator="OPS1",
                targets=(cgw_target("ABCDEFN", Endpoint("127.0.0.1", 0)),),
                key_env=True,
            ),
        ),
    )
    with (
        Simulator.from_config(config) as sim,
        SimClient(sim.endpoint(CGW), key_id=key.access_key_id, secret=key.secret.reveal()) as client,
    ):
        client.logon()
        client.expect("A")
    monkeypatch.delenv("DROPCOPY_SECRET_KEY")
    monkeypatch.delenv("DROPCOPY_ACCESS_KEY_ID")
    with pytest.raises(KeyFileError, match="key_env = true"):
        Simulator.from_config(config)


@pytest.mark.parametrize("host", ["10.1.1.1", "0.0.0.0", "192.168.0.1", "8.8.8.8"])
def test_from_config_refuses_addresses_that_are_not_loopback(host: str) -> None:
    config = ClientConfig(
        groups=(
            GroupConfig(
                name="prod",
                operator="OPS1",
                targets=(cgw_target("ABCDEFN", "127.0.0.1:11000", f"{host}:11000"),),
                key_env=True,
            ),
        ),
    )
    with pytest.raises(SimulatorError, match=rf"ABCDEFN:G backup: host '{host}' is not a loopback address"):
        Simulator.from_config(config, {"k": "s"})


def test_from_config_accepts_the_whole_127_network() -> None:
    config = ClientConfig(
        groups=(
            GroupConfig(
                name="g",
                operator="OPS1",
                targets=(cgw_target("ABCDEFN", Endpoint("127.0.0.2", 0), Endpoint("localhost", 0)),),
                key_env=True,
            ),
        ),
    )
    with Simulator.from_config(config, {"k": "s"}) as sim:
        assert sim.endpoint(CGW)[0] == "127.0.0.2"
        assert sim.endpoint(CGW, "backup")[0] == "127.0.0.1"


def test_from_config_refuses_two_sessions_on_one_address() -> None:
    config = ClientConfig(
        groups=(
            GroupConfig(
                name="g",
                operator="OPS1",
                targets=(
                    msgw_target("XYZDEFN", {"84": ("127.0.0.1:9000", None), "92": ("127.0.0.1:9000", None)}),
                ),
                key_env=True,
            ),
        ),
    )
    with pytest.raises(
        SimulatorError, match=r"XYZDEFN:92 primary: 127.0.0.1:9000 is also XYZDEFN:84 primary"
    ):
        Simulator.from_config(config, {"k": "s"})


# -- controls per session and role ------------------------------------------------------------------------------


def test_backup_refuses_logon_while_the_primary_is_up(layout: tuple[Simulator, ClientConfig]) -> None:
    sim, config = layout
    with client_for(sim, config, S92, "backup", seq=7) as client:
        client.logon()
        logout = client.expect("5")
        assert logout.get(58) == Texts.BACKUP_NOT_ALLOWED == "Backup session not allowed. Logout forced."
        assert logout.num(789) == 1
        assert client.expect_closed() == []
    assert not sim.is_logged_on(S92)
    assert sim.bad_logons(S92) == 0
    assert [r.text for r in sim.rejections(S92)] == [Texts.BACKUP_NOT_ALLOWED]
    assert sim.rejections(S84) == []


def test_kill_and_promote_backup_touch_only_their_session(layout: tuple[Simulator, ClientConfig]) -> None:
    sim, config = layout
    c84 = client_for(sim, config, S84)
    c92 = client_for(sim, config, S92)
    try:
        for client in (c84, c92):
            client.logon()
            assert client.expect("A").num(34) == 1
        sent = sim.send_many(S92, [inner(1), inner(2), inner(3)])
        assert list(sent) == [2, 3, 4]
        assert [m.num(34) for m in c92.read_all(3)] == [2, 3, 4]

        sim.promote_backup(S92, jump=4000, replay_last=2)
        assert c92.expect_closed() == []  # the old primary died with a reset
        assert sim.next_outbound_seq(S92) == 5 + 4000 + 2
        with pytest.raises(OSError):
            socket.create_connection(sim.endpoint(S92, "primary"), timeout=2).close()

        # The other segment did not notice.
        assert sim.is_logged_on(S84)
        assert sim.send(S84, inner(4)) == 2
        assert c84.expect("n").num(34) == 2

        # The promoted backup accepts the logon; CME's outbound sequence has jumped by 4,000.
        with client_for(sim, config, S92, "backup", seq=c92.seq) as again:
            again.logon()
            ack = again.expect("A")
            assert ack.num(34) == 4007
            # The replayed messages carry 97=Y (CME may resend after a failover, spec §5.1).
            again.send("2", [(7, 4005), (16, 0)])
            answer = again.read_all(3)
            assert [(m.type, m.num(34)) for m in answer] == [("n", 4005), ("n", 4006), ("4", 4007)]
            assert [m.get(97) for m in answer[:2]] == ["Y", "Y"]
            assert b"ACCT2" in answer[0].raw and b"ACCT3" in answer[1].raw
    finally:
        c84.close()
        c92.close()


def test_kill_one_role_of_one_session(layout: tuple[Simulator, ClientConfig]) -> None:
    sim, config = layout
    sim.kill(S84, "backup")
    with pytest.raises(OSError):
        socket.create_connection(sim.endpoint(S84, "backup"), timeout=2).close()
    for session in (S84, S92, CGW):
        with client_for(sim, config, session) as client:
            client.logon()
            client.expect("A")
    sim.revive(S84, "backup")
    socket.create_connection(sim.endpoint(S84, "backup"), timeout=2).close()


def test_same_sequence_numbers_on_two_segments(layout: tuple[Simulator, ClientConfig]) -> None:
    sim, config = layout
    with client_for(sim, config, S84) as c84, client_for(sim, config, S92) as c92:
        for client in (c84, c92):
            client.logon()
            client.expect("A")
        seq = sim.send_same_seq([S84, S92], {S84: inner(1), S92: inner(2)})
        assert seq == 2
        m84, m92 = c84.expect("n"), c92.expect("n")
        assert (m84.num(34), m92.num(34)) == (2, 2)
        assert (m84.get(50), m92.get(50)) == ("84", "92")
        assert b"ACCT1" in m84.raw and b"ACCT2" in m92.raw

        # Unequal numbers: the session behind jumps (its client sees a gap, gap-filled on request).
        sim.send_many(S84, [inner(3), inner(4)])
        assert [m.num(34) for m in c84.read_all(2)] == [3, 4]
        assert sim.send_same_seq([S92, S84], inner(5)) == 5
        assert c84.expect("n").num(34) == 5
        assert c92.expect("n").num(34) == 5
        c92.send("2", [(7, 3), (16, 0)])
        fill = c92.expect("4")
        assert (fill.num(34), fill.num(36), fill.get(123)) == (3, 5, "Y")


def test_send_same_seq_argument_errors(layout: tuple[Simulator, ClientConfig]) -> None:
    sim, _ = layout
    with pytest.raises(ValueError, match="at least one session"):
        sim.send_same_seq([], b"")
    with pytest.raises(SimulatorError, match="no inner message for XYZDEFN:92"):
        sim.send_same_seq([S84, S92], {S84: inner(1)})
    with pytest.raises(SimulatorError, match="unknown session"):
        sim.send_same_seq([SimSession("QQQQQQN")], inner(1))
    assert sim.next_outbound_seq(S84) == 1  # nothing was numbered
