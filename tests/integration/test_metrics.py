"""Prometheus metrics, scraped over real HTTP on 127.0.0.1 and parsed with prometheus_client's own parser.

In-process (a registry the application owns, as an embedding application mounts it) and through
``dropcopy run --metrics`` (a real subprocess); values are checked to move with what the simulator does.
"""

from __future__ import annotations

import json
import signal
import socket
import stat
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from dropcopy_client import Fill
from dropcopy_client.errors import ConfigError
from dropcopy_client.metrics import METRICS, ClientCollector, parse_address, serve
from dropcopy_client.testing import (
    DEMO_SESSION,
    ESZ6,
    ScriptedSession,
    SimSession,
    Simulator,
    config_toml,
    demo_client,
    demo_script,
    group_layout,
)
from tests.integration._proc import Proc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CGW = SimSession("ABCDEFN")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample ``name`` whose labels include ``labels``."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, f"{name} {labels}: {len(found)} samples in {sorted(n for n, _ in samples)}"
    return found[0]


def wait_metric(url: str, predicate: Callable[[Samples], bool], timeout: float = 20.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if predicate(samples):
            return samples
        assert time.monotonic() < deadline, "metric condition not met in time"
        time.sleep(0.2)


def test_an_application_mounts_the_collector_in_its_own_registry(tmp_path: Path) -> None:
    with demo_client(tmp_path) as (client, sim):
        slow_done = threading.Event()

        @client.on_fill
        def slow(fill: Fill) -> None:  # a slow consumer: its lag shows, then drains
            if not slow_done.is_set():
                time.sleep(0.3)

        registry = CollectorRegistry()
        registry.register(ClientCollector(client, labels={"client": "demo"}))
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            registry.register(ClientCollector(client, labels={"client": "demo"}))  # describe() names them
        with serve(registry, "127.0.0.1:0") as server:
            assert server.url == f"http://127.0.0.1:{server.port}/metrics"
            before = scrape(server.url)
            assert value(before, "dropcopy_client_running", client="demo") == 0
            client.start(wait=15)
            up = scrape(server.url)
            where = {"client": "demo", "group": "demo", "session": DEMO_SESSION.name}
            assert value(up, "dropcopy_client_running") == 1
            assert value(up, "dropcopy_session_up", **where) == 1
            assert value(up, "dropcopy_session_state", **where, state="logged on") == 1
            assert value(up, "dropcopy_session_state", **where, state="disconnected") == 0
            assert value(up, "dropcopy_key_days_left", **where) > 300
            assert value(up, "dropcopy_messages_total", **where) == 0
            assert value(up, "dropcopy_logons_total", **where) == 1

            sim.send_many(DEMO_SESSION, demo_script())
            busy = wait_metric(
                server.url,
                lambda s: (
                    value(s, "dropcopy_consumer_lag_messages", consumer="handler:" + _qualname(slow)) > 0
                ),
            )
            assert value(busy, "dropcopy_consumer_lag_seconds", consumer="handler:" + _qualname(slow)) >= 0
            slow_done.set()
            done = wait_metric(
                server.url,
                lambda s: (
                    value(s, "dropcopy_messages_total", **where) >= 20
                    and value(s, "dropcopy_consumer_lag_messages", consumer="handler:" + _qualname(slow)) == 0
                ),
            )
            assert value(done, "dropcopy_fills_total", client="demo") == 7
            assert value(done, "dropcopy_busts_total", client="demo") == 1
            assert 0 <= value(done, "dropcopy_last_message_age_seconds", **where) < 30
            assert value(done, "dropcopy_journal_write_seconds_count") > 0
            assert value(done, "dropcopy_journal_write_seconds_sum") > 0
            assert value(done, "dropcopy_journal_write_seconds_bucket", le="+Inf") == value(
                done, "dropcopy_journal_write_seconds_count"
            )
            assert value(done, "dropcopy_handoff_depth_records_count") > 0
            assert value(done, "dropcopy_journal_writable") == 1
            assert value(done, "dropcopy_handoff_held") == 0
            families = {n for n, _ in done}
            for name, kind, _, _ in METRICS:  # every documented family is exposed
                suffix = {"counter": "_total", "histogram": "_count"}.get(kind, "")
                if name not in ("dropcopy_last_message_timestamp_seconds",):
                    assert name + suffix in families, name
            client.stop()
            assert value(scrape(server.url), "dropcopy_session_state", **where, state="stopped") == 1


def _qualname(fn: Callable[..., object]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_address(":9464") == ("0.0.0.0", 9464)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ("9464", "host:", "h:99999", "h:x"):
        with pytest.raises(ConfigError, match="expected ADDR:PORT"):
            parse_address(bad)


# -- dropcopy run --metrics ------------------------------------------------------------------------------------


@pytest.fixture
def one_session(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    sim, config = group_layout(cgw=("ABCDEFN",), msgw={}, key_file=tmp_path / "keys.txt")
    path = tmp_path / "dropcopy.toml"
    path.write_text(config_toml(config), encoding="utf-8")
    with sim:
        yield sim, path


def _metrics_url(data_dir: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return str(json.loads((data_dir / "status.json").read_text(encoding="utf-8"))["metrics"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    pytest.fail("status.json never named the metrics URL")


def test_dropcopy_run_serves_metrics_that_follow_gaps_resends_and_losses(
    one_session: tuple[Simulator, Path], tmp_path: Path
) -> None:
    sim, path = one_session
    run = Proc([sys.executable, "-m", "dropcopy_client.cli", "run", "--config", str(path), "--metrics",
                "127.0.0.1:0"], cwd=tmp_path)  # fmt: skip
    where = {"group": "clearing", "session": CGW.name}
    try:
        assert sim.wait_for(lambda: sim.is_logged_on(CGW), 30), run.stderr
        url = _metrics_url(tmp_path / "data")
        assert url.startswith("http://127.0.0.1:")
        wait_metric(url, lambda s: value(s, "dropcopy_session_up", **where) == 1)
        consumers = {
            dict(ls).get("consumer") for n, ls in scrape(url) if n == "dropcopy_consumer_lag_messages"
        }
        assert {"cli:printer", "cli:status"} <= consumers

        src = ScriptedSession()
        orders = [src.order(ESZ6, account="ACCT1", qty=1, price="4500") for _ in range(6)]
        sim.send_many(CGW, [o.ack() for o in orders[:2]])
        wait_metric(url, lambda s: value(s, "dropcopy_messages_total", **where) == 2)

        sim.drop_next(CGW, 2)  # a gap: the client asks for it again, once
        sim.send_many(CGW, [o.ack() for o in orders[2:5]])
        healed = wait_metric(url, lambda s: value(s, "dropcopy_messages_total", **where) == 5)
        assert value(healed, "dropcopy_resend_requests_total", **where) == 1
        assert value(healed, "dropcopy_resend_requested_messages_total", **where) >= 2
        assert value(healed, "dropcopy_gaps_open", **where) == 0
        assert value(healed, "dropcopy_unrecoverable_gaps_total", **where) == 0

        reset_at = sim.next_outbound_seq(CGW)
        sim.reset_sequence(CGW, reset_at + 10)  # CME says the numbers below it will never come
        sim.send(CGW, orders[5].ack())
        lost = wait_metric(url, lambda s: value(s, "dropcopy_unrecoverable_gaps_total", **where) == 1)
        assert value(lost, "dropcopy_lost_messages", **where) >= 9
        assert value(lost, "dropcopy_positions_uncertain") >= 0
        assert run.stop(signal.SIGTERM) == 0, run.stderr
    finally:
        run.kill()
    with pytest.raises(OSError):  # the server is gone with the process
        scrape(url)
    data = tmp_path / "data"
    loose = [p for p in [data, *data.rglob("*")] if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == [], "files readable by others: " + ", ".join(str(p) for p in loose)
    assert (data / "status.json").exists()


def test_a_wrong_or_taken_metrics_address_exits_2_before_connecting(
    one_session: tuple[Simulator, Path], tmp_path: Path
) -> None:
    import subprocess

    sim, path = one_session
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        for address, says in (
            ("9464", "expected ADDR:PORT"),
            (f"127.0.0.1:{taken.getsockname()[1]}", "cannot listen there"),
        ):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "dropcopy_client.cli",
                    "run",
                    "--config",
                    str(path),
                    "--metrics",
                    address,
                ],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 2, done.stderr
            assert says in done.stderr and "--metrics" in done.stderr and "Traceback" not in done.stderr
    finally:
        taken.close()
    assert not sim.received(CGW, "A"), "it connected although it should have refused to start"
