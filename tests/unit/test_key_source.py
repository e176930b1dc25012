"""KeySource: one group's keys from a file, a store or the environment, and their reload for mid-week rotation."""

from __future__ import annotations

import datetime
import os
import threading
from pathlib import Path

import attrs
import pytest

from dropcopy_client import DropCopyClient, KeyReloadFailed, KeyRotated
from dropcopy_client.auth import (
    ApiKey,
    KdfParams,
    KeySource,
    add_to_key_store,
    generate_key,
    write_key_file,
    write_key_store,
)
from dropcopy_client.config import GroupConfig, cgw_target, config_from_dict
from dropcopy_client.errors import ConfigError, KeyExpiredError, KeyFileError, KeyStoreError

D = datetime.date
TODAY = D(2026, 3, 1)
FAST = KdfParams(14, 8, 1)
PASS = "correct horse battery staple"
KEY1 = generate_key("X12", created=D(2026, 1, 1), expires=D(2027, 1, 1))
KEY2 = generate_key("X12", created=D(2026, 2, 20), expires=D(2027, 2, 20))
OTHER = generate_key("U89", created=D(2026, 1, 1), expires=D(2027, 1, 1))


def ids(keys: tuple[ApiKey, ...]) -> list[str]:
    return [k.access_key_id for k in keys]


def group(**kwargs: object) -> GroupConfig:
    return GroupConfig(
        name="clearing", operator="OPS1", targets=(cgw_target("X12004N", "127.0.0.1:1"),), **kwargs
    )  # type: ignore[arg-type]


def bump(path: Path) -> None:
    """Make sure the next change is seen even on a file system with coarse timestamps."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


# ------------------------------------------------------------------------------------------------ building


def test_from_group_picks_the_configured_kind(tmp_path: Path) -> None:
    assert KeySource.from_group(group(key_file=tmp_path / "k.txt")).kind == "file"
    assert KeySource.from_group(group(key_store=tmp_path / "k.dcks")).kind == "store"
    source = KeySource.from_group(group(key_env=True))
    assert (source.kind, source.name) == ("env", "environment")
    with pytest.raises(ConfigError, match="key_file, key_store or key_env"):
        KeySource.from_group(group())


def test_constructor_checks_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        KeySource("ftp", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a path"):
        KeySource("file")
    with pytest.raises(ValueError, match="takes none"):
        KeySource("env", tmp_path)


def test_file_source_loads_and_repr_has_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1, OTHER])
    source = KeySource.file(path)
    assert "not loaded" in repr(source)
    assert ids(source.load()) == ids((KEY1, OTHER))
    assert repr(source) == f"KeySource(file, {str(path)!r}, 2 keys)"
    assert KEY1.secret.reveal() not in repr(source)


def test_store_source_reads_the_passphrase_from_env(tmp_path: Path) -> None:
    path = tmp_path / "keys.dcks"
    write_key_store(path, [KEY1], PASS, kdf=FAST)
    source = KeySource.store(path, env={"DROPCOPY_KEY_PASSPHRASE": PASS})
    assert ids(source.load()) == ids((KEY1,))
    assert source.keys[0].source == str(path)


def test_store_source_without_passphrase_says_what_to_set(tmp_path: Path) -> None:
    path = tmp_path / "keys.dcks"
    write_key_store(path, [KEY1], PASS, kdf=FAST)
    with pytest.raises(KeyStoreError, match=f"{path}: no passphrase.*DROPCOPY_KEY_PASSPHRASE"):
        KeySource.store(path, env={}).load()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeySource.store(path, passphrase="wrong wrong wrong").load()


def test_env_source(tmp_path: Path) -> None:
    env = {"DROPCOPY_ACCESS_KEY_ID": "AbCdEfGhIjKlMnOpQrSt", "DROPCOPY_SECRET_KEY": KEY1.secret.reveal()}
    source = KeySource.environment(env)
    assert ids(source.load()) == ["AbCdEfGhIjKlMnOpQrSt"]
    assert source.reload_if_changed() is None
    with pytest.raises(KeyFileError, match="group 'g': key_env = true but DROPCOPY_ACCESS_KEY_ID"):
        KeySource.environment({}, group="g").load()


def test_missing_file_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the key file"):
        KeySource.file(tmp_path / "nope.txt").load()
    with pytest.raises(KeyStoreError, match="cannot read the key store"):
        KeySource.store(tmp_path / "nope.dcks", passphrase=PASS).load()


# ------------------------------------------------------------------------------------------------ reloading


def test_unchanged_or_touched_file_reloads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    assert source.reload_if_changed() is None
    bump(path)
    assert source.reload_if_changed() is None  # re-read, same keys: nothing to report
    path.chmod(0o600)
    assert source.reload_if_changed() is None


def test_settle_reads_a_change_only_once_the_file_stayed_put(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    path.write_text("Session ID,Access", encoding="utf-8")  # a copy in progress, caught half-way
    bump(path)
    assert source.reload_if_changed(settle=True) is None  # seen once: not read yet
    write_key_file(path, [KEY1, KEY2])  # the copy finishes before the next check
    bump(path)
    assert source.reload_if_changed(settle=True) is None  # changed again: wait once more
    reload = source.reload_if_changed(settle=True)  # unchanged since the last look: read it
    assert reload is not None and reload.ok and reload.added == (KEY2.access_key_id,)
    assert source.reload_if_changed(settle=True) is None


def test_reload_before_load_loads() -> None:
    source = KeySource.file(Path(__file__).parents[1] / "fixtures" / "keys" / "keys.txt")
    assert source.reload_if_changed() is None
    assert len(source.keys) == 5


def test_new_download_replaces_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    write_key_file(path, [KEY1, KEY2])
    at = datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC)
    reload = source.reload_if_changed(at=at)
    assert reload is not None and reload.ok and reload.error is None
    assert (reload.source, reload.at) == (str(path), at)
    assert reload.added == (KEY2.access_key_id,) and reload.removed == ()
    assert ids(reload.previous) == ids((KEY1,)) and ids(source.keys) == ids((KEY1, KEY2))
    assert reload.failure_event() is None
    write_key_file(path, [KEY2])
    reload = source.reload_if_changed()
    assert reload is not None and reload.removed == (KEY1.access_key_id,)


def test_broken_file_keeps_the_previous_keys_and_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    text = path.read_text()
    path.write_text(text.replace("2027-01-01", "2027-13-01"))  # edited in place, badly
    bump(path)
    reload = source.reload_if_changed()
    assert reload is not None and not reload.ok
    assert reload.error is not None and reload.error.startswith(f"{path}, line 2")
    assert KEY1.secret.reveal() not in reload.error
    assert ids(reload.keys) == ids(reload.previous) == ids((KEY1,)) == ids(source.keys)
    assert reload.added == reload.removed == ()
    event = reload.failure_event()
    assert isinstance(event, KeyReloadFailed) and event.source == str(path) and event.reason == reload.error
    assert source.reload_if_changed() is None  # reported once, not at every logon
    write_key_file(path, [KEY1, KEY2])  # fixed
    reload = source.reload_if_changed()
    assert reload is not None and reload.ok and reload.added == (KEY2.access_key_id,)


def test_deleted_file_keeps_the_previous_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    path.unlink()
    reload = source.reload_if_changed()
    assert reload is not None and reload.error is not None and "cannot read the key file" in reload.error
    assert ids(source.keys) == ids((KEY1,))
    assert source.reload_if_changed() is None
    write_key_file(path, [KEY2])
    reload = source.reload_if_changed()
    assert reload is not None and reload.ok and ids(source.keys) == ids((KEY2,))


def test_store_rotation_does_not_ask_for_the_passphrase_again(tmp_path: Path) -> None:
    path = tmp_path / "keys.dcks"
    write_key_store(path, [KEY1], PASS, kdf=FAST)
    asked: list[int] = []

    def passphrase() -> str:
        asked.append(1)
        return PASS

    source = KeySource.store(path, passphrase=passphrase)
    source.load()
    add_to_key_store(path, [KEY2], PASS)
    reload = source.reload_if_changed()
    assert reload is not None and reload.ok and reload.added == (KEY2.access_key_id,)
    assert len(asked) == 1  # the derived key was kept; the salt did not change
    write_key_store(path, [KEY1, KEY2, OTHER], PASS, kdf=FAST)  # re-created: new salt
    reload = source.reload_if_changed()
    assert reload is not None and reload.ok and len(asked) == 2


def test_tampered_or_re_keyed_store_keeps_the_previous_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.dcks"
    write_key_store(path, [KEY1], PASS, kdf=FAST)
    source = KeySource.store(path, passphrase=PASS)
    source.load()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    bump(path)
    reload = source.reload_if_changed()
    assert reload is not None and reload.error is not None
    assert "wrong passphrase or the key store was modified" in reload.error
    assert ids(source.keys) == ids((KEY1,))
    write_key_store(path, [KEY2], "another passphrase entirely", kdf=FAST)
    reload = source.reload_if_changed()
    assert reload is not None and not reload.ok and ids(source.keys) == ids((KEY1,))


def test_concurrent_reloads_report_one_change(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    write_key_file(path, [KEY1, KEY2])
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(source.reload_if_changed())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in results) == 1


# ------------------------------------------------------------------------------------------------ choosing


def test_next_logon_uses_the_newest_key_and_names_old_and_new(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    first = source.next_logon_key("X12004N", None, today=TODAY)
    assert (
        first.key.access_key_id == KEY1.access_key_id and not first.rotated and first.event("g", "s") is None
    )
    write_key_file(path, [KEY1, KEY2])
    source.reload_if_changed()
    choice = source.next_logon_key("X12004N", first.key, today=TODAY)
    assert choice.rotated and (choice.old_key_id, choice.new_key_id) == (
        KEY1.access_key_id,
        KEY2.access_key_id,
    )
    at = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
    assert choice.event("clearing", "X12004N:G", at) == KeyRotated(
        "clearing", "X12004N:G", KEY1.access_key_id, KEY2.access_key_id, at
    )
    same = source.next_logon_key("X12004N", choice.key, today=TODAY)
    assert not same.rotated and same.kept_because is None


def test_file_without_the_sessions_key_keeps_the_current_one(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    write_key_file(path, [OTHER])
    source.reload_if_changed()
    choice = source.next_logon_key("X12004N", KEY1, today=TODAY)
    assert choice.key is KEY1 and not choice.rotated
    assert choice.kept_because is not None and "no key for session X12" in choice.kept_because
    assert f"still signing with key {KEY1.access_key_id}" in choice.kept_because
    with pytest.raises(KeyFileError, match="no key for session X12"):
        source.next_logon_key("X12004N", None, today=TODAY)


def test_expired_current_key_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1])
    source = KeySource.file(path)
    source.load()
    with pytest.raises(KeyExpiredError):
        source.next_logon_key("X12004N", KEY1, today=D(2027, 2, 1))


def test_select_uses_the_keys_in_force(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    write_key_file(path, [KEY1, KEY2])
    selection = KeySource.file(path).select("X12004N", today=TODAY)
    assert selection.key.access_key_id == KEY2.access_key_id


def test_events_are_frozen_and_hold_ids_only() -> None:
    at = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
    rotated = KeyRotated("g", "X12004N:G", "old", "new", at)
    failed = KeyReloadFailed("/k.txt", "why", at)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rotated.new_key_id = "x"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        failed.reason = "x"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------ the client


def test_client_starts_from_a_key_store(tmp_path: Path) -> None:
    store = tmp_path / "keys.dcks"
    write_key_store(store, [KEY1, KEY2], PASS, kdf=FAST)
    config = config_from_dict(
        {
            "client": {"data_dir": "data"},
            "group": [
                {
                    "name": "clearing",
                    "key_store": "keys.dcks",
                    "operator": "OPS1",
                    "target": [{"kind": "cgw", "sender_comp_id": "X12004N", "primary": "127.0.0.1:1"}],
                }
            ],
        },
        base=tmp_path,
    )
    assert config.groups[0].key_store == store
    client = DropCopyClient(config, today=TODAY, env={"DROPCOPY_KEY_PASSPHRASE": PASS})
    assert client._specs["X12004N:G"].key.access_key_id == KEY2.access_key_id
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        DropCopyClient(config, today=TODAY, env={"DROPCOPY_KEY_PASSPHRASE": "not it at all"})


def test_cli_lines_for_the_new_events() -> None:
    from dropcopy_client.cli._format import describe, event_json

    at = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
    rotated = KeyRotated("g", "X12004N:G", "OLDKEY", "NEWKEY", at)
    assert describe(rotated) == "X12004N:G next logon signs with key NEWKEY (was OLDKEY)"
    failed = KeyReloadFailed("/k.txt", "/k.txt, line 2: bad", at)
    assert describe(failed) == "keys not reloaded, previous keys still in use: /k.txt, line 2: bad"
    assert '"type":"KeyRotated"' in event_json(rotated) and '"old_key_id":"OLDKEY"' in event_json(rotated)
