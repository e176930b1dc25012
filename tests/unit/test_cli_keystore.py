"""``dropcopy keys import`` and ``dropcopy keys check`` on key stores: passphrases, rotation, --strict."""

from __future__ import annotations

import datetime
import functools
import importlib
import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dropcopy_client.auth import ApiKey, KdfParams, generate_key, read_key_store, write_key_file
from dropcopy_client.auth import _store as store_module
from dropcopy_client.cli.keys import keys

D = datetime.date
# the module, not the click group of the same name that dropcopy_client.cli re-exports
keys_cli = importlib.import_module("dropcopy_client.cli.keys")
PASS = "correct horse battery staple"
TODAY = "2026-03-01"
FAST = KdfParams(14, 8, 1)


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI creates stores with N = 2^17 (0.3 s); 2^14 keeps these tests fast. Same code path."""
    monkeypatch.setattr(
        keys_cli, "add_to_key_store", functools.partial(store_module.add_to_key_store, kdf=FAST)
    )


def download(path: Path, *keys: ApiKey) -> Path:
    write_key_file(path, keys)
    return path


def key(session: str = "X12", year: int = 2026) -> ApiKey:
    return generate_key(session, created=D(year, 1, 1), expires=D(year + 1, 1, 1), environment="CERT")


def invoke(*args: str, passphrase: str | None = PASS, stdin: str | None = None) -> Result:
    # None unsets the variable for this invocation only
    env: dict[str, str | None] = {"DROPCOPY_KEY_PASSPHRASE": passphrase}
    return CliRunner().invoke(keys, list(args), env=env, input=stdin)


def assert_silent_about(result: Result, *keys_: ApiKey, passphrase: str = PASS) -> None:
    for text in (result.stdout, result.stderr):
        assert passphrase not in text
        for k in keys_:
            assert k.secret.reveal() not in text and k.secret.reveal()[:12] not in text


# ------------------------------------------------------------------------------------------------ import


def test_import_creates_an_owner_only_store_and_lists_its_keys(tmp_path: Path) -> None:
    a, b = key(), key("U89")
    plain = download(tmp_path / "keys.txt", a, b)
    store = tmp_path / "keys.dcks"
    result = invoke("import", str(plain), "--store", str(store), "--today", TODAY)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{store} (created: 2 added, 0 already there, 2 keys)"
    assert lines[1].split() == [
        "SESSION",
        "ACCESS",
        "KEY",
        "ID",
        "CREATED",
        "EXPIRES",
        "ENVIRONMENT",
        "STATUS",
        "IMPORT",
    ]
    assert a.access_key_id in lines[2] and lines[2].endswith("added")
    assert "still holds the keys in plain text" in result.stderr
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert plain.exists()
    assert [k.access_key_id for k in read_key_store(store, PASS).keys] == [a.access_key_id, b.access_key_id]
    assert_silent_about(result, a, b)
    assert a.secret.reveal().encode() not in store.read_bytes()


def test_import_remove_source_deletes_the_plain_file_after_verifying(tmp_path: Path) -> None:
    plain = download(tmp_path / "keys.txt", key())
    store = tmp_path / "keys.dcks"
    result = invoke("import", str(plain), "--store", str(store), "--remove-source")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"removed {plain}"
    assert not plain.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["keys.dcks"]
    assert "plain text" not in result.stderr


def test_rotation_adds_the_new_download_to_the_existing_store(tmp_path: Path) -> None:
    old, new = key(year=2026), key(year=2027)
    store = tmp_path / "keys.dcks"
    assert invoke("import", str(download(tmp_path / "a.txt", old)), "--store", str(store)).exit_code == 0
    salt = store.read_bytes()[16:32]
    result = invoke("import", str(download(tmp_path / "b.txt", old, new)), "--store", str(store))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{store} (updated: 1 added, 1 already there, 2 keys)"
    assert store.read_bytes()[16:32] == salt
    again = invoke("import", str(tmp_path / "b.txt"), "--store", str(store))
    assert again.stdout.splitlines()[0] == f"{store} (unchanged: 0 added, 2 already there, 2 keys)"


def test_wrong_passphrase_writes_nothing_and_keeps_the_source(tmp_path: Path) -> None:
    store = tmp_path / "keys.dcks"
    invoke("import", str(download(tmp_path / "a.txt", key())), "--store", str(store))
    before = store.read_bytes()
    plain = download(tmp_path / "b.txt", key(year=2027))
    result = invoke(
        "import", str(plain), "--store", str(store), "--remove-source", passphrase="a wrong passphrase"
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {store}: wrong passphrase or the key store was modified")
    assert "Traceback" not in result.output
    assert store.read_bytes() == before and plain.exists()


def test_short_passphrase_is_refused_and_nothing_written(tmp_path: Path) -> None:
    store = tmp_path / "keys.dcks"
    result = invoke(
        "import", str(download(tmp_path / "a.txt", key())), "--store", str(store), passphrase="short"
    )
    assert result.exit_code == 2 and "at least 12 characters; nothing was written" in result.stderr
    assert not store.exists()


def test_refuses_to_overwrite_something_that_is_not_a_store(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("important")
    result = invoke("import", str(download(tmp_path / "a.txt", key())), "--store", str(other))
    assert result.exit_code == 2 and "is not a key store; refusing to overwrite" in result.stderr
    assert other.read_text() == "important"
    same = tmp_path / "a.txt"
    result = invoke("import", str(same), "--store", str(same))
    assert result.exit_code == 2 and "both the key file and the store" in result.stderr


def test_clashing_key_is_refused(tmp_path: Path) -> None:
    a = key()
    store = tmp_path / "keys.dcks"
    invoke("import", str(download(tmp_path / "a.txt", a)), "--store", str(store))
    clash = ApiKey("X12", a.access_key_id, key().secret, a.created, a.expires, "CERT", "x", 2)
    result = invoke("import", str(download(tmp_path / "b.txt", clash)), "--store", str(store))
    assert result.exit_code == 2 and "different Secret Key; nothing was written" in result.stderr
    assert_silent_about(result, a, clash)


def test_store_in_a_missing_directory_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    plain = download(tmp_path / "a.txt", key())
    result = invoke("import", str(plain), "--store", str(tmp_path / "nodir" / "s.dcks"), "--remove-source")
    assert result.exit_code == 2 and "cannot write the key store (No such file or directory)" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert plain.exists()


def test_malformed_key_file_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("Session ID\nX12\n")
    result = invoke("import", str(bad), "--store", str(tmp_path / "s.dcks"))
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {bad}, line 1")
    assert not (tmp_path / "s.dcks").exists()


def test_without_passphrase_or_terminal_says_what_to_set(tmp_path: Path) -> None:
    result = invoke(
        "import",
        str(download(tmp_path / "a.txt", key())),
        "--store",
        str(tmp_path / "s.dcks"),
        passphrase=None,
    )
    assert result.exit_code == 2
    assert (
        "no passphrase for" in result.stderr
        and "set DROPCOPY_KEY_PASSPHRASE or run in a terminal" in result.stderr
    )


def test_prompt_asks_twice_for_a_new_store_and_once_to_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys_cli, "_interactive", lambda: True)
    store = tmp_path / "keys.dcks"
    plain = download(tmp_path / "a.txt", key())
    result = invoke("import", str(plain), "--store", str(store), passphrase=None, stdin=f"{PASS}\n{PASS}\n")
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.stderr
    assert PASS not in result.output  # hidden input is not echoed
    check = invoke("check", str(store), passphrase=None, stdin=f"{PASS}\n")
    assert check.exit_code == 0 and "Repeat" not in check.stderr
    mismatch = invoke(
        "import",
        str(plain),
        "--store",
        str(tmp_path / "n.dcks"),
        passphrase=None,
        stdin=f"{PASS}\nother one here\n",
    )
    assert mismatch.exit_code == 2 and not (tmp_path / "n.dcks").exists()


# ------------------------------------------------------------------------------------------------ check


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[ApiKey]]:
    ks = [key(year=2025), key(year=2026), key("U89")]
    path = tmp_path / "keys.dcks"
    assert invoke("import", str(download(tmp_path / "k.txt", *ks)), "--store", str(path)).exit_code == 0
    return path, ks


def test_check_reads_a_store_detected_by_its_magic(store: tuple[Path, list[ApiKey]]) -> None:
    path, ks = store
    result = invoke("check", str(path), "--today", TODAY)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path} (key store, today {TODAY})"
    used = [line.split()[1] for line in lines[2:] if line.endswith("<- used")]
    assert used == [ks[1].access_key_id, ks[2].access_key_id]
    assert_silent_about(result, *ks)
    records = json.loads(invoke("check", str(path), "--json", "--today", TODAY).stdout)
    assert {r["source"] for r in records} == {str(path)} and {r["line"] for r in records} == {None}


def test_check_wrong_passphrase_and_corruption_are_exit_2(store: tuple[Path, list[ApiKey]]) -> None:
    path, _ = store
    result = invoke("check", str(path), passphrase="not the passphrase")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"error: {path}: wrong passphrase or the key store was modified; set DROPCOPY_KEY_PASSPHRASE or retype "
        "it (if the passphrase is right, restore the store from a backup or import the CME key file again)\n"
    )
    data = bytearray(path.read_bytes())
    data[60] ^= 1
    path.write_bytes(bytes(data))
    result = invoke("check", str(path))
    assert result.exit_code == 2 and "wrong passphrase or the key store was modified" in result.stderr
    assert result.stdout == ""  # never a partial listing
    path.write_bytes(bytes(data[:30]))
    result = invoke("check", str(path))
    assert result.exit_code == 2 and "truncated" in result.stderr and "Traceback" not in result.output


def test_strict_refuses_a_readable_store_before_asking_for_the_passphrase(
    store: tuple[Path, list[ApiKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = store
    path.chmod(0o640)
    monkeypatch.setattr(keys_cli, "_passphrase", lambda *a, **k: pytest.fail("asked for the passphrase"))
    result = invoke("check", str(path), "--strict")
    assert result.exit_code == 3 and result.stdout == ""
    assert f"key store {path}: mode 0640, group can read it; run: chmod 600 {path}" in result.stderr
    monkeypatch.undo()
    monkeypatch.setattr(
        keys_cli, "add_to_key_store", functools.partial(store_module.add_to_key_store, kdf=FAST)
    )
    result = invoke("check", str(path), "--today", TODAY)
    assert result.exit_code == 0 and f"warning: key store {path}: mode 0640" in result.stderr
    path.chmod(0o600)
    assert invoke("check", str(path), "--strict", "--today", TODAY).exit_code == 0


def test_strict_refuses_a_readable_key_file(tmp_path: Path) -> None:
    plain = download(tmp_path / "k.txt", key())
    plain.chmod(0o644)
    result = invoke("check", str(plain), "--strict")
    assert result.exit_code == 3 and "--strict refuses" in result.stderr
    plain.chmod(0o600)
    assert invoke("check", str(plain), "--strict", "--today", TODAY).exit_code == 0
