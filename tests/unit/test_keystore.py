"""The encrypted key store: format, wrong passphrases, tampering, rotation imports, and never a secret at rest."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pickle
import re
import stat
import struct
import unicodedata
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dropcopy_client.auth import (
    DEFAULT_KDF,
    STORE_MAGIC,
    ApiKey,
    KdfParams,
    StoreReader,
    add_to_key_store,
    generate_key,
    is_key_store,
    read_key_store,
    write_key_file,
    write_key_store,
)
from dropcopy_client.auth._store import _derive, _Header, _parse_header
from dropcopy_client.errors import KeyFileError, KeyStoreError

D = datetime.date
#: 2^14: 16 MiB and ~40 ms, so the tests stay fast; the default (2^17) is tested once.
FAST = KdfParams(14, 8, 1)
PASS = "correct horse battery staple"


def make_keys(n: int = 2, session: str = "X12", start: int = 2026) -> list[ApiKey]:
    return [
        generate_key(session, created=D(start + i, 1, 1), expires=D(start + i + 1, 1, 1), environment="CERT")
        for i in range(n)
    ]


def secret_forms(key: ApiKey) -> list[bytes]:
    """Every encoding of a secret someone scanning a file might look for."""
    text = key.secret.reveal()
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    forms = [
        text.encode(),
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
        text[:16].encode(),
        text[-16:].encode(),
    ]
    return forms


def assert_no_secret_in(data: bytes, keys: list[ApiKey]) -> None:
    for key in keys:
        for form in secret_forms(key):
            assert form not in data


def assert_clean_error(exc: BaseException, *, keys: list[ApiKey], passphrase: str = PASS) -> None:
    text = f"{exc} {exc!r} {exc.args}"
    assert passphrase not in text
    for key in keys:
        assert key.secret.reveal() not in text
        assert key.secret.reveal()[:12] not in text
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[ApiKey]]:
    keys = make_keys()
    path = tmp_path / "keys.dcks"
    write_key_store(path, keys, PASS, kdf=FAST)
    return path, keys


# ------------------------------------------------------------------------------------------------ round trip


def test_write_then_read_round_trip(store: tuple[Path, list[ApiKey]]) -> None:
    path, keys = store
    loaded = read_key_store(path, PASS)
    assert loaded.path == str(path)
    assert [k.access_key_id for k in loaded.keys] == [k.access_key_id for k in keys]
    for got, want in zip(loaded.keys, keys, strict=True):
        assert (got.session_id, got.secret, got.created, got.expires, got.environment) == (
            want.session_id,
            want.secret,
            want.created,
            want.expires,
            want.environment,
        )
        assert got.source == str(path) and got.line is None


def test_store_is_owner_only_and_written_atomically(tmp_path: Path) -> None:
    old = os.umask(0)  # even with the most permissive umask
    try:
        path = tmp_path / "keys.dcks"
        write_key_store(path, make_keys(1), PASS, kdf=FAST)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.dcks"]  # no temporary file left behind


def test_write_replaces_a_loose_file_with_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "keys.dcks"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_key_store(path, make_keys(1), PASS, kdf=FAST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_header_layout_matches_the_documented_format(store: tuple[Path, list[ApiKey]]) -> None:
    path, _ = store
    data = path.read_bytes()
    magic, version, kdf, log2_n, r, p, reserved = struct.unpack_from(">8sBBBBB3s", data)
    assert (magic, version, kdf, log2_n, r, p, reserved) == (STORE_MAGIC, 1, 1, 14, 8, 1, b"\0\0\0")
    assert STORE_MAGIC == b"\x89DCKEYS\n"
    assert is_key_store(path)


def test_plaintext_is_the_documented_canonical_json(store: tuple[Path, list[ApiKey]]) -> None:
    path, keys = store
    data = path.read_bytes()
    header = _parse_header(str(path), data)
    key = _derive(PASS, header)
    plaintext = AESGCM(key.reveal()).decrypt(header.nonce, data[44:], data[:44])
    document = json.loads(plaintext)
    assert plaintext == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    assert document["format"] == "dropcopy-keystore" and document["version"] == 1
    assert document["keys"][0] == {
        "access_key_id": keys[0].access_key_id,
        "created": keys[0].created.isoformat() if keys[0].created else None,
        "environment": "CERT",
        "expires": keys[0].expires.isoformat() if keys[0].expires else None,
        "secret": keys[0].secret.reveal(),
        "session_id": "X12",
    }


def test_store_never_holds_a_secret_in_any_encoding(store: tuple[Path, list[ApiKey]]) -> None:
    path, keys = store
    assert_no_secret_in(path.read_bytes(), keys)


def test_two_writes_of_the_same_keys_differ_entirely(tmp_path: Path) -> None:
    keys = make_keys(1)
    a, b = tmp_path / "a.dcks", tmp_path / "b.dcks"
    write_key_store(a, keys, PASS, kdf=FAST)
    write_key_store(b, keys, PASS, kdf=FAST)
    assert a.read_bytes()[16:44] != b.read_bytes()[16:44]  # new salt and nonce
    assert a.read_bytes()[44:] != b.read_bytes()[44:]


def test_default_parameters_unlock_well_under_a_second(tmp_path: Path) -> None:
    import time

    assert KdfParams(17, 8, 1) == DEFAULT_KDF
    path = tmp_path / "keys.dcks"
    write_key_store(path, make_keys(1), PASS)
    start = time.perf_counter()
    read_key_store(path, PASS)
    assert time.perf_counter() - start < 2.0  # ~0.3 s measured; generous for a loaded CI machine


def test_passphrase_is_unicode_normalised(tmp_path: Path) -> None:
    composed = "Zürich-passphrase-é"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    path = tmp_path / "keys.dcks"
    write_key_store(path, make_keys(1), composed, kdf=FAST)
    assert read_key_store(path, decomposed).keys


# ------------------------------------------------------------------------------------------------ refusals


def test_short_passphrase_is_refused_when_creating(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 12 characters"):
        write_key_store(tmp_path / "k.dcks", make_keys(1), "short", kdf=FAST)
    assert not (tmp_path / "k.dcks").exists()


@pytest.mark.parametrize(
    ("kdf", "problem"),
    [
        (KdfParams(10, 8, 1), "outside 2^14..2^20"),
        (KdfParams(21, 8, 1), "outside 2^14..2^20"),
        (KdfParams(14, 0, 1), "r = 0"),
        (KdfParams(14, 8, 5), "p = 5"),
        (KdfParams(20, 8, 1), "512 MiB"),
    ],
)
def test_unusable_scrypt_parameters_are_refused(tmp_path: Path, kdf: KdfParams, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        write_key_store(tmp_path / "k.dcks", make_keys(1), PASS, kdf=kdf)


def test_no_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one key"):
        write_key_store(tmp_path / "k.dcks", [], PASS, kdf=FAST)


def test_wrong_passphrase_names_the_file_and_what_to_do(store: tuple[Path, list[ApiKey]]) -> None:
    path, keys = store
    with pytest.raises(KeyStoreError) as info:
        read_key_store(path, "not the passphrase at all")
    message = str(info.value)
    assert message.startswith(f"{path}: wrong passphrase or the key store was modified")
    assert "DROPCOPY_KEY_PASSPHRASE" in message
    assert isinstance(info.value, KeyFileError) and isinstance(info.value, ValueError)
    assert_clean_error(info.value, keys=keys, passphrase="not the passphrase at all")


def test_empty_passphrase_says_how_to_give_one(store: tuple[Path, list[ApiKey]]) -> None:
    path, _ = store
    with pytest.raises(
        KeyStoreError, match="no passphrase to open the key store: set DROPCOPY_KEY_PASSPHRASE"
    ):
        read_key_store(path, "")


def test_every_single_byte_change_is_refused(store: tuple[Path, list[ApiKey]], tmp_path: Path) -> None:
    """No byte of a store can change without the whole read failing (AEAD + header as associated data)."""
    path, keys = store
    data = path.read_bytes()
    reader = StoreReader(lambda: PASS)  # caches the derived key: only salt/parameter changes re-derive
    reader.read_bytes(str(path), data)
    for at in range(len(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[at] ^= 1 << bit
            with pytest.raises(KeyStoreError) as info:
                reader.read_bytes(str(path), bytes(bad))
            assert str(info.value).startswith(f"{path}: "), at
            assert_clean_error(info.value, keys=keys)


def test_truncations_and_extensions_are_refused(store: tuple[Path, list[ApiKey]]) -> None:
    path, keys = store
    data = path.read_bytes()
    reader = StoreReader(lambda: PASS)
    for size in (0, 1, 7, 8, 20, 43, 44, 59, 60, len(data) - 16, len(data) - 1):
        with pytest.raises(KeyStoreError) as info:
            reader.read_bytes(str(path), data[:size])
        assert_clean_error(info.value, keys=keys)
    with pytest.raises(KeyStoreError, match="wrong passphrase or the key store was modified"):
        reader.read_bytes(str(path), data + b"\0")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: b"Session ID  Access ID\n", "is not a dropcopy key store"),
        (lambda d: d[:8] + b"\x02" + d[9:], "format version 2 is not supported"),
        (lambda d: d[:9] + b"\x07" + d[10:], "unknown key derivation 7"),
        (lambda d: d[:10] + b"\x1e" + d[11:], "scrypt N = 2^30 is outside"),
        (lambda d: d[:50], "truncated"),
        (lambda d: d + b"\0" * (1 << 20), "is larger than"),
    ],
)
def test_header_problems_have_their_own_message(
    store: tuple[Path, list[ApiKey]], tmp_path: Path, change: object, message: str
) -> None:
    path, _ = store
    bad = tmp_path / "bad.dcks"
    bad.write_bytes(change(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(KeyStoreError, match=re.escape(message)) as info:
        read_key_store(bad, PASS)
    assert str(info.value).startswith(f"{bad}: ")


def test_missing_store_is_a_key_store_error(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="cannot read the key store"):
        read_key_store(tmp_path / "nope.dcks", PASS)


def _sealed(tmp_path: Path, document: object) -> Path:
    """A store whose encrypted content is ``document`` (valid tag, wrong content)."""
    header = _Header(1, FAST, os.urandom(16), os.urandom(12))
    key = _derive(PASS, header)
    aad = header.pack()
    path = tmp_path / "odd.dcks"
    path.write_bytes(aad + AESGCM(key.reveal()).encrypt(header.nonce, json.dumps(document).encode(), aad))
    return path


def _document(**record: object) -> dict[str, object]:
    base: dict[str, object] = {
        "access_key_id": "AbCdEfGhIjKlMnOpQrSt",
        "created": "2026-01-01",
        "environment": None,
        "expires": "2027-01-01",
        "secret": "A" * 43,
        "session_id": "X12",
    }
    base.update(record)
    return {"format": "dropcopy-keystore", "keys": [base], "version": 1}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "not the JSON document"),
        ({"format": "dropcopy-keystore", "keys": [], "version": 1}, "holds no keys"),
        ({"format": "dropcopy-keystore", "keys": [], "version": 2}, "unexpected version"),
        (_document(secret="not base64!" + "x" * 32), "secret key is not base64url"),
        (_document(secret="QUJD"), "secret key decodes to 3 bytes"),
        (_document(session_id="TOOLONG"), "session id"),
        (_document(created="2026-13-01"), "creation date is not a date"),
        (_document(expires="2025-01-01"), "expiration date is before"),
        (_document(environment="bad env"), "environment must be"),
    ],
)
def test_content_problems_name_the_file_and_never_the_secret(
    tmp_path: Path, document: object, problem: str
) -> None:
    path = _sealed(tmp_path, document)
    with pytest.raises(KeyStoreError, match=problem) as info:
        read_key_store(path, PASS)
    assert "decrypted but its content is invalid" in str(info.value)
    assert "not base64!" not in str(info.value)
    assert "A" * 20 not in str(info.value)


def test_reader_and_derived_key_hide_themselves(store: tuple[Path, list[ApiKey]]) -> None:
    path, _ = store
    reader = StoreReader(lambda: PASS)
    reader.read(path)
    assert repr(reader) == "StoreReader(unlocked)"
    with pytest.raises(TypeError):
        pickle.dumps(reader)
    header = _parse_header(str(path), path.read_bytes())
    derived = _derive(PASS, header)
    assert "***" in repr(derived) and derived.reveal().hex() not in repr(derived)
    with pytest.raises(TypeError):
        pickle.dumps(derived)


# ------------------------------------------------------------------------------------------------ adding keys


def test_add_creates_the_store_when_missing(tmp_path: Path) -> None:
    keys = make_keys(1)
    update = add_to_key_store(tmp_path / "new.dcks", keys, PASS, kdf=FAST)
    assert update.created and len(update.added) == 1 and update.unchanged == ()
    assert stat.S_IMODE((tmp_path / "new.dcks").stat().st_mode) == 0o600


def test_add_new_keys_keeps_salt_and_parameters_and_changes_the_nonce(
    store: tuple[Path, list[ApiKey]],
) -> None:
    path, keys = store
    before = path.read_bytes()
    newer = make_keys(1, start=2030)
    update = add_to_key_store(path, [*keys, *newer], PASS, kdf=DEFAULT_KDF)  # kdf only applies when creating
    after = path.read_bytes()
    assert not update.created
    assert [k.access_key_id for k in update.added] == [newer[0].access_key_id]
    assert [k.access_key_id for k in update.unchanged] == [k.access_key_id for k in keys]
    assert [k.access_key_id for k in update.keys] == [k.access_key_id for k in [*keys, *newer]]
    assert after[:32] == before[:32]  # magic, version, parameters, salt
    assert after[32:44] != before[32:44]  # nonce
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_key_store(path, PASS).keys) == 3


def test_re_importing_the_same_keys_writes_nothing(store: tuple[Path, list[ApiKey]]) -> None:
    path, keys = store
    before = path.read_bytes()
    update = add_to_key_store(path, keys, PASS)
    assert update.added == () and len(update.unchanged) == 2
    assert path.read_bytes() == before


def test_same_access_id_with_another_secret_is_refused(
    store: tuple[Path, list[ApiKey]], tmp_path: Path
) -> None:
    path, keys = store
    before = path.read_bytes()
    other = generate_key("X12", created=D(2026, 1, 1), expires=D(2027, 1, 1), environment="CERT")
    clash = ApiKey(
        session_id="X12",
        access_key_id=keys[0].access_key_id,
        secret=other.secret,
        created=keys[0].created,
        expires=D(2027, 6, 1),
        environment="CERT",
        source=str(tmp_path / "download.txt"),
        line=2,
    )
    with pytest.raises(
        KeyStoreError, match="different Secret Key, Expiration Date; nothing was written"
    ) as info:
        add_to_key_store(path, [clash], PASS)
    assert_clean_error(info.value, keys=[*keys, other])
    assert path.read_bytes() == before


def test_add_with_wrong_passphrase_changes_nothing(store: tuple[Path, list[ApiKey]]) -> None:
    path, _ = store
    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        add_to_key_store(path, make_keys(1, start=2031), "a wrong passphrase here")
    assert path.read_bytes() == before


def test_keys_from_a_key_file_import_with_their_dates(tmp_path: Path) -> None:
    from dropcopy_client.auth import load_key_file

    keys = make_keys(2)
    plain = tmp_path / "keys.txt"
    write_key_file(plain, keys)
    update = add_to_key_store(tmp_path / "s.dcks", load_key_file(plain).keys, PASS, kdf=FAST)
    assert [(k.access_key_id, k.expires) for k in update.keys] == [(k.access_key_id, k.expires) for k in keys]


def test_keys_without_dates_cannot_be_stored(tmp_path: Path) -> None:
    from dropcopy_client.auth import keys_from_env

    key = keys_from_env({"DROPCOPY_ACCESS_KEY_ID": "AbCdEfGhIjKlMnOpQrSt", "DROPCOPY_SECRET_KEY": "A" * 43})
    assert key is not None
    with pytest.raises(ValueError, match="no creation or expiration date"):
        write_key_store(tmp_path / "s.dcks", [key], PASS, kdf=FAST)
