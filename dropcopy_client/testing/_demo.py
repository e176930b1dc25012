"""A ready client and simulator pair on 127.0.0.1: for the demo, docs, notebooks and your own tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropcopy_client.auth import ApiKey, generate_key, write_key_file
from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target
from dropcopy_client.testing._simulator import Simulator
from dropcopy_client.testing._state import SimSession

if TYPE_CHECKING:
    from dropcopy_client._client import DropCopyClient

#: the SenderCompID of the demo's one CGW target session
DEMO_COMP_ID = "DMOFIRN"
#: the demo's session, as the simulator knows it (``sim.send_many(DEMO_SESSION, ...)``)
DEMO_SESSION = SimSession(DEMO_COMP_ID)


def demo_key() -> ApiKey:
    """A fresh key for the demo's session id, valid for about a year."""
    today = dt.datetime.now(dt.UTC).date()
    return generate_key(
        DEMO_COMP_ID[:3], created=today - dt.timedelta(days=30), expires=today + dt.timedelta(days=335)
    )


def demo_config(sim: Simulator, directory: str | os.PathLike[str], key: ApiKey) -> ClientConfig:
    """A one-session configuration pointing at ``sim``, with its key file and data_dir in ``directory``."""
    base = Path(directory)
    base.mkdir(parents=True, exist_ok=True)
    key_path = base / "demo-keys.txt"
    write_key_file(key_path, [key])
    host, port = sim.endpoint(DEMO_SESSION)
    return ClientConfig(
        groups=(
            GroupConfig(
                name="demo",
                operator="DEMO01",
                targets=(cgw_target(DEMO_COMP_ID, f"{host}:{port}"),),
                key_file=key_path,
            ),
        ),
        data_dir=base / "data",
        app_name="dropcopy-demo",
        app_version="1.0",
        app_vendor="dropcopy",
        reconnect_interval=1,
        source="demo",
    )


@contextlib.contextmanager
def demo_client(
    directory: str | os.PathLike[str] | None = None, **client_options: Any
) -> Iterator[tuple[DropCopyClient, Simulator]]:
    """``(client, simulator)``: a started simulator serving :data:`DEMO_SESSION` and a client for it, not
    started yet (register handlers, then ``client.start(wait=10)``). No credentials, no network beyond
    127.0.0.1. The key file and data_dir live in ``directory`` (default: a temporary one, removed after).
    On exit the client is stopped and the simulator closed."""
    from dropcopy_client import _client  # not at import: the client is above the testing tools

    with contextlib.ExitStack() as stack:
        base = directory if directory is not None else stack.enter_context(tempfile.TemporaryDirectory())
        key = demo_key()
        sim = stack.enter_context(Simulator([key], sessions=[DEMO_SESSION]))
        client = _client.DropCopyClient(demo_config(sim, base, key), **client_options)
        stack.callback(client.stop)
        yield client, sim
