"""The encrypted key store: CME key pairs at rest under a passphrase (scrypt + AES-256-GCM).

A downloaded CME key file is plain text; a copied backup or a loose home directory hands the firm's logon to
whoever reads it. ``dropcopy keys import`` moves its keys into a store instead, and the client reads the store.

Format, version 1 (all integers unsigned, one byte; documented in docs/guides/authentication.md)::

    offset  size  field
    0       8     magic  89 'D' 'C' 'K' 'E' 'Y' 'S' 0A   (PNG-style: catches text-mode copies and truncation)
    8       1     format version (1)
    9       1     KDF (1 = scrypt)
    10      1     log2(N), scrypt cost
    11      1     r, scrypt block size
    12      1     p, scrypt parallelism
    13      3     reserved, zero
    16      16    salt (random, per store; kept when keys are added so a running client can re-read it)
    32      12    nonce (random, new on every write)
    44      ...   AES-256-GCM(key, nonce, plaintext, associated data = bytes 0-43) = ciphertext + 16-byte tag

    key       = scrypt(NFC(passphrase) as UTF-8, salt, N, r, p, length 32)
    plaintext = canonical JSON (sorted keys, no spaces, ASCII):
                {"format":"dropcopy-keystore","keys":[{"access_key_id":..,"created":"yyyy-mm-dd",
                 "environment":..|null,"expires":"yyyy-mm-dd","secret":..,"session_id":..},..],"version":1}

The whole header is the associated data, so changing any parameter, the salt or the version fails the tag
exactly like a wrong passphrase does: both give one :class:`KeyStoreError` naming the file. Nothing is
returned until every key has decrypted and validated (no partial read). No exception, repr or log record
made here contains a secret or the passphrase.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import struct
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Final, NoReturn, final

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from dropcopy_client._fsperm import write_private
from dropcopy_client.auth._keyfile import (
    _DATE_RE,
    _ENVIRONMENT_RE,
    _PRINTABLE_RE,
    _SESSION_RE,
    ApiKey,
    KeyFile,
    SecretKey,
    _secret_problem,
)
from dropcopy_client.errors import KeyStoreError

#: First 8 bytes of every key store.
STORE_MAGIC: Final = b"\x89DCKEYS\n"
STORE_VERSION: Final = 1
#: Environment variable the CLI and the client read the passphrase from (never an argument, never a file).
ENV_PASSPHRASE: Final = "DROPCOPY_KEY_PASSPHRASE"
#: Shortest passphrase accepted when a store is created.
MIN_PASSPHRASE_LENGTH: Final = 12

_KDF_SCRYPT: Final = 1
_HEADER: Final = struct.Struct(">8sBBBBB3s16s12s")  # 44 bytes
_HEADER_SIZE: Final = _HEADER.size
_TAG_SIZE: Final = 16
_MAX_STORE_BYTES: Final = 1 << 20  # a store of 100 keys is ~20 KB; refuse to slurp anything huge
_FORMAT_NAME: Final = "dropcopy-keystore"
_RESTORE: Final = "restore the store from a backup or import the CME key file again"


@attrs.frozen
class KdfParams:
    """scrypt parameters of a store: N = 2**log2_n, r, p. Memory is 128 * N * r bytes."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    def problem(self) -> str | None:
        """Why these parameters are refused (too weak to protect a key, or too costly to open), or None."""
        if not 14 <= self.log2_n <= 20:
            return f"scrypt N = 2^{self.log2_n} is outside 2^14..2^20"
        if not 1 <= self.r <= 16:
            return f"scrypt r = {self.r} is outside 1..16"
        if not 1 <= self.p <= 4:
            return f"scrypt p = {self.p} is outside 1..4"
        if 128 * (1 << self.log2_n) * self.r > 512 << 20:
            return f"scrypt N = 2^{self.log2_n}, r = {self.r} needs more than 512 MiB"
        return None


#: N = 2^17, r = 8, p = 1: 128 MiB and about 0.3 s per unlock on the project's 2-core machines (measured;
#: docs/guides/authentication.md). OWASP's minimum for scrypt; a store is opened once per start and reload.
DEFAULT_KDF: Final = KdfParams()


@attrs.frozen
class StoreUpdate:
    """What :func:`add_to_key_store` did: the keys it added, those already there, and the store's keys now."""

    path: str
    added: tuple[ApiKey, ...]
    unchanged: tuple[ApiKey, ...]
    keys: tuple[ApiKey, ...]
    created: bool


@final
class _DerivedKey:
    """The 32-byte AES key derived from a passphrase: never shown, never pickled."""

    __slots__ = ("_bytes",)

    def __init__(self, data: bytes) -> None:
        self._bytes = data

    def reveal(self) -> bytes:
        return self._bytes

    def __repr__(self) -> str:
        return "_DerivedKey('***')"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a derived key store key cannot be pickled")


@attrs.frozen
class _Header:
    version: int
    kdf: KdfParams
    salt: bytes = attrs.field(repr=False)
    nonce: bytes = attrs.field(repr=False)

    def pack(self) -> bytes:
        return _HEADER.pack(
            STORE_MAGIC,
            self.version,
            _KDF_SCRYPT,
            self.kdf.log2_n,
            self.kdf.r,
            self.kdf.p,
            b"\0\0\0",
            self.salt,
            self.nonce,
        )

    @property
    def unlock_id(self) -> tuple[int, int, int, bytes]:
        """What the derived key depends on besides the passphrase."""
        return (self.kdf.log2_n, self.kdf.r, self.kdf.p, self.salt)


def _fail(path: str, problem: str) -> NoReturn:
    raise KeyStoreError(f"{path}: {problem}")


def _normalise(passphrase: str) -> bytes:
    # NFC: the same passphrase typed on two keyboards (composed or decomposed accents) opens the same store
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def _derive(passphrase: str, header: _Header) -> _DerivedKey:
    kdf = header.kdf
    return _DerivedKey(
        Scrypt(salt=header.salt, length=32, n=1 << kdf.log2_n, r=kdf.r, p=kdf.p).derive(
            _normalise(passphrase)
        )
    )


def is_key_store(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` starts with the key store's magic bytes (False for a CME key file, or unreadable)."""
    try:
        with open(os.fspath(path), "rb") as handle:
            return handle.read(len(STORE_MAGIC)) == STORE_MAGIC
    except OSError:
        return False


def _read_bytes(name: str) -> bytes:
    problem = ""
    data = b""
    try:
        with open(name, "rb") as handle:
            data = handle.read(_MAX_STORE_BYTES + 1)
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
    if problem:
        _fail(name, f"cannot read the key store ({problem}); check the path and that you may read it")
    return data


def _parse_header(name: str, data: bytes) -> _Header:
    if len(data) > _MAX_STORE_BYTES:
        _fail(name, f"is larger than {_MAX_STORE_BYTES} bytes: not a key store written by dropcopy_client")
    if not data.startswith(STORE_MAGIC):
        _fail(
            name,
            "is not a dropcopy key store (it does not start with the store's magic bytes); create one with "
            "`dropcopy keys import FILE --store PATH`, or configure a plain CME key file as key_file",
        )
    if len(data) < _HEADER_SIZE + _TAG_SIZE:
        _fail(name, f"the key store is truncated ({len(data)} bytes); {_RESTORE}")
    _, version, kdf_id, log2_n, r, p, reserved, salt, nonce = _HEADER.unpack_from(data)
    if version != STORE_VERSION:
        _fail(
            name,
            f"key store format version {version} is not supported (this dropcopy_client reads version "
            f"{STORE_VERSION}); upgrade dropcopy-client, or {_RESTORE}",
        )
    if kdf_id != _KDF_SCRYPT or reserved != b"\0\0\0":
        _fail(name, f"the key store header is damaged (unknown key derivation {kdf_id}); {_RESTORE}")
    kdf = KdfParams(log2_n, r, p)
    problem = kdf.problem()
    if problem is not None:
        _fail(name, f"the key store header is damaged or was modified ({problem}); {_RESTORE}")
    return _Header(version, kdf, salt, nonce)


def _wrong_passphrase(name: str) -> NoReturn:
    _fail(
        name,
        f"wrong passphrase or the key store was modified; set {ENV_PASSPHRASE} or retype it "
        f"(if the passphrase is right, {_RESTORE})",
    )


def _decrypt(name: str, data: bytes, header: _Header, key: _DerivedKey) -> bytes:
    plaintext: bytes | None = None
    try:
        plaintext = AESGCM(key.reveal()).decrypt(header.nonce, data[_HEADER_SIZE:], data[:_HEADER_SIZE])
    except InvalidTag:
        plaintext = None
    if plaintext is None:  # raised outside the except block: nothing chained
        _wrong_passphrase(name)
    return plaintext


# ------------------------------------------------------------------------------------------------ content


def _key_record(key: ApiKey) -> dict[str, Any]:
    if key.created is None or key.expires is None:
        raise ValueError(
            f"key {key.access_key_id} from {key.source} has no creation or expiration date; a key store "
            "holds keys from CME key files, which have both"
        )
    return {
        "access_key_id": key.access_key_id,
        "created": key.created.isoformat(),
        "environment": key.environment,
        "expires": key.expires.isoformat(),
        "secret": key.secret.reveal(),
        "session_id": key.session_id,
    }


def _serialise(keys: Iterable[ApiKey]) -> bytes:
    document = {"format": _FORMAT_NAME, "keys": [_key_record(k) for k in keys], "version": STORE_VERSION}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _content_error(name: str, problem: str) -> NoReturn:
    _fail(name, f"the key store decrypted but its content is invalid ({problem}); {_RESTORE}")


def _date(name: str, where: str, value: object) -> datetime.date:
    parsed: datetime.date | None = None
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            parsed = datetime.date.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        _content_error(name, f"{where} is not a date")
    return parsed


def _key_from_record(name: str, index: int, record: object) -> ApiKey:
    where = f"key {index}"
    if not isinstance(record, dict) or set(record) != {
        "access_key_id",
        "created",
        "environment",
        "expires",
        "secret",
        "session_id",
    }:
        _content_error(name, f"{where} does not have the fields of a key")
    session_id, access_key_id, secret = record["session_id"], record["access_key_id"], record["secret"]
    environment = record["environment"]
    if not isinstance(session_id, str) or not _SESSION_RE.fullmatch(session_id):
        _content_error(name, f"{where}: session id is not 3 letters or digits")
    if not isinstance(access_key_id, str) or not _PRINTABLE_RE.fullmatch(access_key_id):
        _content_error(name, f"{where}: access key id is not printable ASCII")
    if not isinstance(secret, str):
        _content_error(name, f"{where}: secret key is not text")
    problem = _secret_problem(secret)
    if problem is not None:
        _content_error(name, f"{where}: secret key {problem}")
    if environment is not None and (
        not isinstance(environment, str) or not _ENVIRONMENT_RE.fullmatch(environment)
    ):
        _content_error(name, f"{where}: environment must be letters, digits, '-' or '_'")
    created = _date(name, f"{where} creation date", record["created"])
    expires = _date(name, f"{where} expiration date", record["expires"])
    if expires < created:
        _content_error(name, f"{where} ({access_key_id}): expiration date is before creation date")
    return ApiKey(
        session_id=session_id,
        access_key_id=access_key_id,
        secret=SecretKey(secret),
        created=created,
        expires=expires,
        environment=None if environment is None else environment.upper(),
        source=name,
        line=None,
    )


def _parse_content(name: str, plaintext: bytes) -> tuple[ApiKey, ...]:
    document: object = None
    try:
        document = json.loads(plaintext.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict) or document.get("format") != _FORMAT_NAME:
        _content_error(name, "not the JSON document of a key store")
    if document.get("version") != STORE_VERSION or set(document) != {"format", "keys", "version"}:
        _content_error(name, "unexpected version or fields")
    records = document["keys"]
    if not isinstance(records, list) or not records:
        _content_error(name, "it holds no keys")
    keys = tuple(_key_from_record(name, i, record) for i, record in enumerate(records, start=1))
    ids = [key.access_key_id for key in keys]
    if len(set(ids)) != len(ids):
        _content_error(name, "an access key id appears twice")
    return keys


# ------------------------------------------------------------------------------------------------ reading


PassphraseSource = Callable[[], str | None]


@final
class StoreReader:
    """Opens key stores, deriving the AES key once per (salt, scrypt parameters) and keeping only that.

    ``passphrase`` is called the first time a store is opened and again only if the store was re-created
    (new salt or parameters): adding keys to a store keeps its salt, so a long-running client re-reads a
    rotated store without asking again. It returns the passphrase, or None when there is none to give.
    """

    __slots__ = ("_key", "_passphrase", "_unlock_id")

    def __init__(self, passphrase: PassphraseSource) -> None:
        self._passphrase = passphrase
        self._key: _DerivedKey | None = None
        self._unlock_id: tuple[int, int, int, bytes] | None = None

    def __repr__(self) -> str:
        return "StoreReader(unlocked)" if self._key is not None else "StoreReader(locked)"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a StoreReader holds a derived key and cannot be pickled")

    @classmethod
    def _unlocked(cls, key: _DerivedKey, header: _Header) -> StoreReader:
        reader = cls(lambda: None)
        reader._key, reader._unlock_id = key, header.unlock_id
        return reader

    def _key_for(self, name: str, header: _Header) -> _DerivedKey:
        if self._key is not None and self._unlock_id == header.unlock_id:
            return self._key
        passphrase = self._passphrase()
        if not passphrase:
            _fail(name, f"no passphrase to open the key store: set {ENV_PASSPHRASE} (or type it when asked)")
        return _derive(passphrase, header)

    def read(self, path: str | os.PathLike[str]) -> KeyFile:
        """Every key of the store at ``path``, or :class:`KeyStoreError`; never some of them."""
        name = os.fspath(path)
        return self.read_bytes(name, _read_bytes(name))

    def read_bytes(self, name: str, data: bytes) -> KeyFile:
        """:meth:`read` for the bytes of a store already read from ``name`` (for stat-consistent reloads)."""
        header = _parse_header(name, data)
        key = self._key_for(name, header)
        plaintext = _decrypt(name, data, header, key)
        keys = _parse_content(name, plaintext)
        self._key, self._unlock_id = key, header.unlock_id  # only a key that opened the store is kept
        return KeyFile(path=name, keys=keys)


def read_key_store(path: str | os.PathLike[str], passphrase: str) -> KeyFile:
    """The keys of the key store at ``path`` (a :class:`KeyFile` whose keys name the store as ``source``).

    Raises :class:`KeyStoreError` naming the file: unreadable, not a store, damaged header, unsupported
    version, or "wrong passphrase or the key store was modified".
    """
    return StoreReader(lambda: passphrase).read(path)


# ------------------------------------------------------------------------------------------------ writing


def passphrase_problem(passphrase: str) -> str | None:
    """Why ``passphrase`` is refused for a new store (too short), or None."""
    if len(unicodedata.normalize("NFC", passphrase)) < MIN_PASSPHRASE_LENGTH:
        return f"the passphrase must be at least {MIN_PASSPHRASE_LENGTH} characters"
    return None


def _seal(name: str, keys: tuple[ApiKey, ...], header: _Header, key: _DerivedKey) -> bytes:
    if not keys:
        raise ValueError("no keys to write: a key store needs at least one key")
    ids = [k.access_key_id for k in keys]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: an access key id appears twice in the keys to write")
    aad = header.pack()
    return aad + AESGCM(key.reveal()).encrypt(header.nonce, _serialise(keys), aad)


def _write_verified(
    name: str, keys: tuple[ApiKey, ...], header: _Header, key: _DerivedKey
) -> tuple[ApiKey, ...]:
    data = _seal(name, keys, header, key)
    # read the sealed bytes back before they replace anything: a store this module cannot open is never written
    check = _parse_content(name, _decrypt(name, data, _parse_header(name, data), key))
    if [_key_record(k) for k in check] != [_key_record(k) for k in keys]:
        raise AssertionError(f"{name}: the key store did not read back as written")
    problem = ""
    try:
        write_private(name, data, prefix=".keystore-")
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
    if problem:
        _fail(
            name,
            f"cannot write the key store ({problem}); check that its directory exists and you may write there",
        )
    return StoreReader._unlocked(key, header).read(name).keys  # and read the file itself, as the client will


def write_key_store(
    path: str | os.PathLike[str],
    keys: Iterable[ApiKey],
    passphrase: str,
    *,
    kdf: KdfParams = DEFAULT_KDF,
) -> tuple[ApiKey, ...]:
    """Write a new key store holding ``keys`` (mode 0600, atomically; replaces ``path``). New salt.

    Returns the keys as read back from the written file (``source`` is the store). Raises ``ValueError`` for
    a passphrase shorter than :data:`MIN_PASSPHRASE_LENGTH`, unusable scrypt parameters or no keys.
    """
    name = os.fspath(path)
    problem = passphrase_problem(passphrase) or kdf.problem()
    if problem is not None:
        raise ValueError(f"{name}: {problem}")
    header = _Header(STORE_VERSION, kdf, secrets.token_bytes(16), secrets.token_bytes(12))
    return _write_verified(name, tuple(keys), header, _derive(passphrase, header))


def _differences(old: ApiKey, new: ApiKey) -> list[str]:
    fields = []
    if old.session_id != new.session_id:
        fields.append("Session ID")
    if old.secret != new.secret:
        fields.append("Secret Key")
    if old.created != new.created:
        fields.append("Creation Date")
    if old.expires != new.expires:
        fields.append("Expiration Date")
    if (old.environment or None) != (new.environment or None):
        fields.append("Environment")
    return fields


def add_to_key_store(
    path: str | os.PathLike[str],
    keys: Iterable[ApiKey],
    passphrase: str,
    *,
    kdf: KdfParams = DEFAULT_KDF,
) -> StoreUpdate:
    """Add ``keys`` to the store at ``path``, creating it when it does not exist (rotation: import each new
    download into the same store).

    A key whose Access ID is already in the store must be identical to it (a re-import changes nothing);
    a key with the same Access ID but another secret, session or dates is refused with
    :class:`KeyStoreError` naming the fields that differ. An existing store keeps its salt and scrypt
    parameters (running clients re-read it without the passphrase) and gets a fresh nonce.
    """
    name = os.fspath(path)
    new_keys = tuple(keys)
    if not os.path.exists(name):
        written = write_key_store(name, new_keys, passphrase, kdf=kdf)
        return StoreUpdate(name, added=written, unchanged=(), keys=written, created=True)
    data = _read_bytes(name)
    header = _parse_header(name, data)
    if not passphrase:
        _fail(name, f"no passphrase to open the key store: set {ENV_PASSPHRASE} (or type it when asked)")
    key = _derive(passphrase, header)
    existing = _parse_content(name, _decrypt(name, data, header, key))
    by_id = {k.access_key_id: k for k in existing}
    added: list[ApiKey] = []
    unchanged_ids: list[str] = []
    for new in new_keys:
        old = by_id.get(new.access_key_id)
        if old is None:
            if new.access_key_id in {k.access_key_id for k in added}:
                raise KeyStoreError(f"{new.source}: access key id {new.access_key_id} appears twice")
            added.append(new)
            continue
        differ = _differences(old, new)
        if differ:
            raise KeyStoreError(
                f"{name}: key {new.access_key_id} from {new.source} has the Access ID of a key already in the "
                f"store but a different {', '.join(differ)}; nothing was written. Check which download is "
                "right in CME Customer Center; to start over, import the right file into a new store"
            )
        unchanged_ids.append(new.access_key_id)
    if not added:
        unchanged = tuple(by_id[i] for i in unchanged_ids)
        return StoreUpdate(name, added=(), unchanged=unchanged, keys=existing, created=False)
    fresh = _Header(header.version, header.kdf, header.salt, secrets.token_bytes(12))
    written = _write_verified(name, (*existing, *added), fresh, key)
    by_written = {k.access_key_id: k for k in written}
    return StoreUpdate(
        name,
        added=tuple(by_written[k.access_key_id] for k in added),
        unchanged=tuple(by_written[i] for i in unchanged_ids),
        keys=written,
        created=False,
    )
