"""A session run from an encrypted key store: import with the CLI, log on, and no secret in any file written."""

from __future__ import annotations

import base64
import importlib
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from dropcopy_client import DropCopyClient, Fill, KeyStoreError
from dropcopy_client.auth import ApiKey, KdfParams
from dropcopy_client.auth import _store as store_module
from dropcopy_client.cli.keys import keys
from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target
from dropcopy_client.testing import ESZ6, ScriptedSession, Simulator
from tests.integration.conftest import COMP_ID, SESSION, Collector

pytestmark = pytest.mark.integration
PASS = "correct horse battery staple"


def forms(key: ApiKey) -> list[bytes]:
    """The secret as text, raw bytes, hex, standard base64, UTF-16 and long fragments of each."""
    text = key.secret.reveal()
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    whole = [
        text.encode(),
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        base64.b64encode(raw),
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
    ]
    return [*whole, *(w[:16] for w in whole), *(w[-16:] for w in whole)]


def config(sim: Simulator, store: Path, data_dir: Path) -> ClientConfig:
    host, port = sim.endpoint(SESSION)
    group = GroupConfig("clearing", "OPS1", (cgw_target(COMP_ID, f"{host}:{port}"),), key_store=store)
    return ClientConfig(groups=(group,), data_dir=data_dir, reconnect_interval=1)


def test_session_from_a_key_store_leaves_no_secret_in_any_file(
    tmp_path: Path, key_file: Path, key: ApiKey, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys_cli = importlib.import_module("dropcopy_client.cli.keys")
    real_add = store_module.add_to_key_store
    monkeypatch.setattr(
        keys_cli, "add_to_key_store", lambda *a, **k: real_add(*a, kdf=KdfParams(14, 8, 1), **k)
    )
    store = tmp_path / "keys.dcks"
    result = CliRunner().invoke(
        keys,
        ["import", str(key_file), "--store", str(store), "--remove-source"],
        env={"DROPCOPY_KEY_PASSPHRASE": PASS},
    )
    assert result.exit_code == 0, result.output
    assert not key_file.exists()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600

    data_dir = tmp_path / "data"
    client = DropCopyClient(config(sim, store, data_dir), env={"DROPCOPY_KEY_PASSPHRASE": PASS})
    collector = Collector(client)
    try:
        client.start(wait=15)
        src = ScriptedSession(sender_comp_id="M2L000N")
        order = src.order(ESZ6, account="ACCT1", side="1", qty=2, price="4500.25")
        sim.send_many(SESSION, [order.ack(), order.fill()])
        assert collector.wait_count(Fill, 1)
    finally:
        client.stop()
    assert sim.received(SESSION, "A"), "the simulator saw no logon"

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert store in written and any(p.is_relative_to(data_dir) for p in written)
    secret_forms = forms(key)
    for path in written:
        content = path.read_bytes()
        for form in secret_forms:
            assert form not in content, f"{path} holds the secret ({form[:4]!r}...)"
    assert PASS.encode() not in b"".join(p.read_bytes() for p in written)


def test_client_with_a_wrong_passphrase_fails_before_connecting(
    tmp_path: Path, key: ApiKey, sim: Simulator
) -> None:
    store = tmp_path / "keys.dcks"
    store_module.write_key_store(store, [key], PASS, kdf=KdfParams(14, 8, 1))
    with pytest.raises(KeyStoreError, match="wrong passphrase or the key store was modified"):
        DropCopyClient(
            config(sim, store, tmp_path / "data"), env={"DROPCOPY_KEY_PASSPHRASE": "not it at all!"}
        )
    assert sim.received(SESSION, "A") == []
    assert not os.path.exists(tmp_path / "data")
