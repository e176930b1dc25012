"""Fixtures: a simulator on 127.0.0.1 and clients of the real QuickFIX engine, all stopped in teardown."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dropcopy_client import DropCopyClient
from dropcopy_client.auth import ApiKey, generate_key, write_key_file
from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target
from dropcopy_client.testing import SimSession, Simulator

COMP_ID = "ABCDEFN"
SESSION = SimSession(COMP_ID)


class Collector:
    """Collects every event a client emits; tests wait on conditions over the list."""

    def __init__(self, client: DropCopyClient) -> None:
        self.events: list[Any] = []
        self._cond = threading.Condition()
        client.on_event(self._add)

    def _add(self, event: object) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, kind: type) -> list[Any]:
        with self._cond:
            return [e for e in self.events if isinstance(e, kind)]

    def wait(self, predicate: Callable[[list[Any]], bool], timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.events), timeout)

    def wait_count(self, kind: type, count: int, timeout: float = 20.0) -> list[Any]:
        self.wait(lambda evs: sum(isinstance(e, kind) for e in evs) >= count, timeout)
        return self.of(kind)


@pytest.fixture
def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
def key(today: dt.date) -> ApiKey:
    return generate_key(
        COMP_ID[:3], created=today - dt.timedelta(days=10), expires=today + dt.timedelta(days=300)
    )


@pytest.fixture
def key_file(tmp_path: Path, key: ApiKey) -> Path:
    path = tmp_path / "keys.txt"
    write_key_file(path, [key])
    return path


@pytest.fixture
def sim(key: ApiKey) -> Iterator[Simulator]:
    with Simulator([key], sessions=[SESSION]) as simulator:
        yield simulator


def config_for(sim: Simulator, key_file: Path, data_dir: Path, **client: Any) -> ClientConfig:
    host, port = sim.endpoint(SESSION)
    return ClientConfig(
        groups=(
            GroupConfig(
                name="clearing",
                operator="OPS1",
                targets=(cgw_target(COMP_ID, f"{host}:{port}"),),
                key_file=key_file,
            ),
        ),
        data_dir=data_dir,
        app_name="RiskHub",
        app_version="1.0",
        app_vendor="Acme",
        location="US,IL",
        reconnect_interval=client.pop("reconnect_interval", 1),
        **client,
    )


@pytest.fixture
def make_client(tmp_path: Path, sim: Simulator, key_file: Path) -> Iterator[Callable[..., DropCopyClient]]:
    clients: list[DropCopyClient] = []

    def make(*, keys: Path | None = None, **kwargs: Any) -> DropCopyClient:
        client = DropCopyClient(config_for(sim, keys or key_file, tmp_path / "data"), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()
