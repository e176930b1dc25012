"""Signed logon end to end: the real QuickFIX engine against the simulator over 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dropcopy_client import (
    DropCopyClient,
    KeyExpiredError,
    LogonRejected,
    LogonRejectedError,
    SessionEvent,
    SessionState,
)
from dropcopy_client._wire import parse_frame
from dropcopy_client.auth import ApiKey, canonical_logon, generate_key, sign, write_key_file
from dropcopy_client.testing import Simulator, Texts
from tests.integration.conftest import COMP_ID, SESSION, Collector

pytestmark = pytest.mark.integration


def _ms(now: dt.datetime) -> dt.datetime:
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def test_signed_logon_is_accepted_with_exactly_the_cme_field_set(
    make_client: Callable[..., DropCopyClient], sim: Simulator, key: ApiKey
) -> None:
    before = _ms(dt.datetime.now(dt.UTC))
    client = make_client()
    client.start(wait=15)
    after = dt.datetime.now(dt.UTC)

    logon = sim.received(SESSION, "A")[0]
    fields = parse_frame(logon)
    tags = [tag for tag, _ in fields]
    values = {tag: value.decode() for tag, value in fields}
    stamp = values[52]  # stamped by the engine process: millisecond UTC, between our two readings
    sent = dt.datetime.strptime(stamp, "%Y%m%d-%H:%M:%S.%f").replace(tzinfo=dt.UTC)
    assert before <= sent <= after and len(stamp) == 21
    expected = {
        34: "1",
        49: COMP_ID,
        50: "OPS1",
        52: stamp,
        56: "CME",
        57: "G",
        142: "US,IL",
        369: "0",
        108: "30",
        141: "N",
        354: "20",
        355: key.access_key_id,
        1400: "CME-1-SHA-256",
        1401: "43",
        1603: "RiskHub",
        1604: "1.0",
        1605: "Acme",
    }
    # The exact field set, in the order QuickFIX writes it (header sorted, then body sorted).
    assert tags == [
        8,
        9,
        35,
        34,
        49,
        50,
        52,
        56,
        57,
        142,
        369,
        108,
        141,
        354,
        355,
        1400,
        1401,
        1402,
        1603,
        1604,
        1605,
        10,
    ]
    assert {tag: values[tag] for tag in expected} == expected
    # The signature, computed independently from the values we expect on the wire.
    canonical = canonical_logon({tag: expected[tag] for tag in expected if tag != 56})
    assert values[1402] == sign(key.secret.reveal(), canonical)
    for forbidden in (98, 95, 96, 122):
        assert forbidden not in tags


def test_every_outgoing_message_carries_the_cme_header(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    client.start(wait=15)
    client.stop()
    messages = sim.received(SESSION)
    assert {parse_frame(m)[2][1] for m in messages} >= {b"A", b"5"}
    for raw in messages:
        values = dict(parse_frame(raw))
        assert values[50] == b"OPS1" and values[57] == b"G" and values[142] == b"US,IL"
        assert values[369].isdigit()
        assert len(values[52].split(b".")[1]) == 3  # millisecond SendingTime


def test_wrong_secret_is_rejected_once_and_the_session_locks_out(
    make_client: Callable[..., DropCopyClient], sim: Simulator, key: ApiKey, tmp_path: Path, today: dt.date
) -> None:
    wrong = generate_key("ABC", created=key.created or today, expires=key.expires or today)
    forged = ApiKey(
        session_id=key.session_id,
        access_key_id=key.access_key_id,
        secret=wrong.secret,
        created=key.created,
        expires=key.expires,
        environment=key.environment,
        source="test",
        line=None,
    )
    path = tmp_path / "wrong-keys.txt"
    write_key_file(path, [forged])
    client = make_client(keys=path)
    seen = Collector(client)

    with pytest.raises(LogonRejectedError) as info:
        client.start(wait=15)
    assert info.value.text == Texts.INVALID_LOGON
    assert info.value.session == f"{COMP_ID}:G"

    rejected = seen.wait_count(LogonRejected, 1)
    assert rejected[0].text == Texts.INVALID_LOGON
    assert client.status()[0].state is SessionState.LOCKED_OUT
    # No retry storm: with a 1 s reconnect interval, three more seconds bring no second attempt.
    time.sleep(3)
    assert sim.bad_logons(SESSION) == 1
    assert len(sim.received(SESSION, "A")) == 1
    assert not sim.is_locked_out(SESSION)


def test_expired_key_is_refused_before_any_connection(
    make_client: Callable[..., DropCopyClient], sim: Simulator, tmp_path: Path, today: dt.date
) -> None:
    expired = generate_key(
        "ABC", created=today - dt.timedelta(days=400), expires=today - dt.timedelta(days=2)
    )
    path = tmp_path / "expired.txt"
    write_key_file(path, [expired])
    with pytest.raises(KeyExpiredError) as info:
        make_client(keys=path)
    message = str(info.value)
    assert COMP_ID in message or "ABC" in message
    assert expired.access_key_id in message
    assert (today - dt.timedelta(days=2)).isoformat() in message
    assert expired.secret.reveal() not in message
    assert sim.received(SESSION) == []


def test_stale_sending_time_is_rejected(make_client: Callable[..., DropCopyClient], sim: Simulator) -> None:
    client = make_client(clock_offset=-300.0)  # this machine's clock five minutes slow
    seen = Collector(client)
    with pytest.raises(LogonRejectedError) as info:
        client.start(wait=15)
    assert info.value.text.startswith("SendingTime (52) tag is not within tolerance")
    assert sim.bad_logons(SESSION) == 1
    (rejected,) = seen.wait_count(LogonRejected, 1)
    # the refusal says the clock is off, by how much, and what to do (issue: "check the key" was misleading)
    assert rejected.clock_skew is not None and 290 < rejected.clock_skew < 310
    assert "clock is 300 s behind" in rejected.advice or "clock is 299 s behind" in rejected.advice


def test_session_events_trace_the_life_cycle(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    seen = Collector(client)
    client.start(wait=15)
    client.stop()
    states = [e.state for e in seen.of(SessionEvent)]
    assert states[:3] == [SessionState.CONNECTING, SessionState.LOGON_SENT, SessionState.LOGGED_ON]
    assert states[-1] is SessionState.STOPPED
    host, port = sim.endpoint(SESSION)
    assert seen.of(SessionEvent)[0].endpoint == f"{host}:{port}"


def test_secrets_never_reach_logs_or_files(
    make_client: Callable[..., DropCopyClient],
    sim: Simulator,
    key: ApiKey,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client()
    client.start(wait=15)
    client.stop()
    signature = dict(parse_frame(sim.received(SESSION, "A")[0]))[1402].decode()
    secret = key.secret.reveal()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "35=A" in logged  # the engine's message log was captured, so the check below means something
    assert secret not in logged and signature not in logged
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert secret.encode() not in content and signature.encode() not in content, path
    assert secret not in repr(client.config) and secret not in repr(key)


class _SilentGateway:
    """Accepts connections, reads the Logon, closes without answering: every attempt fails."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.logons: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    if b"35=A\x01" in conn.recv(4096):
                        self.logons.append(time.monotonic())
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_failed_logons_back_off_and_never_reach_a_fifth_inside_60_seconds(
    tmp_path: Path, key_file: Path
) -> None:
    from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target

    gateway = _SilentGateway()
    config = ClientConfig(
        groups=(GroupConfig("g", "OPS1", (cgw_target(COMP_ID, gateway.address),), key_file=key_file),),
        data_dir=tmp_path / "data",
        reconnect_interval=1,
        logon_timeout=1,
    )
    client = DropCopyClient(config)
    try:
        client.start()
        time.sleep(20)
    finally:
        client.stop()
        gateway.close()
    times = gateway.logons
    assert 2 <= len(times) <= 4, times  # without the guard: about 20 attempts in 20 s
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == sorted(gaps)  # each pause at least as long as the one before (capped exponential)
