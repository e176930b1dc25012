"""Where a group's keys come from (a CME key file, a key store or the environment), and reloading them.

:class:`KeySource` is what the client holds per group. :meth:`KeySource.load` reads the keys at start-up and
raises when they cannot be used. :meth:`KeySource.reload_if_changed` is cheap (one ``stat``) and is meant to be
called before every logon: when the file changed since it was last read, it is read again; keys that parse
replace the previous ones, a file that does not parse leaves the previous keys in force and says why. Then
:meth:`KeySource.next_logon_key` tells, per session, which key the logon signs with and whether that is a
rotation (CME's "Mid-Week Key Rotation": log on with key 1, log out, log on with key 2, without a restart).

Thread-safe: sessions may log on from several threads at once.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Mapping
from typing import Final, Literal

import attrs

from dropcopy_client._events import KeyReloadFailed, KeyRotated
from dropcopy_client.auth._keyfile import (
    ENV_ACCESS_KEY_ID,
    ENV_SECRET_KEY,
    EXPIRY_WARNING_DAYS,
    ApiKey,
    KeySelection,
    _choose,
    keys_from_env,
    parse_key_file_bytes,
)
from dropcopy_client.auth._store import ENV_PASSPHRASE, StoreReader
from dropcopy_client.config import GroupConfig
from dropcopy_client.errors import ConfigError, KeyExpiredError, KeyFileError, KeyStoreError

SourceKind = Literal["file", "store", "env"]
#: What a file's identity and content version are judged by: a rename over it changes the inode, an edit in
#: place the size or mtime, a chmod the ctime.
_Signature = tuple[int, int, int, int, int]
_MISSING: Final = (-1, -1, -1, -1, -1)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _signature(st: os.stat_result) -> _Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@attrs.frozen
class KeyReload:
    """The outcome of reading a changed key file or store again.

    ``keys`` are the keys in force from now on: the new ones when ``error`` is None, else the previous ones.
    """

    source: str
    at: dt.datetime
    previous: tuple[ApiKey, ...]
    keys: tuple[ApiKey, ...]
    #: why the changed file could not be used (names the file and what to do), None when it was
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def added(self) -> tuple[str, ...]:
        """Access key ids that were not there before (empty after a failure)."""
        before = {key.access_key_id for key in self.previous}
        return tuple(key.access_key_id for key in self.keys if key.access_key_id not in before)

    @property
    def removed(self) -> tuple[str, ...]:
        """Access key ids that are gone (empty after a failure)."""
        now = {key.access_key_id for key in self.keys}
        return tuple(key.access_key_id for key in self.previous if key.access_key_id not in now)

    def failure_event(self) -> KeyReloadFailed | None:
        """The event to report when the reload failed, else None."""
        return None if self.error is None else KeyReloadFailed(self.source, self.error, self.at)


@attrs.frozen
class LogonKey:
    """The key one session's next logon signs with, compared with the key its last logon used."""

    selection: KeySelection
    #: the access key id the session used so far (None on a first logon)
    old_key_id: str | None
    #: why the keys in force have no usable key for the session, so that its current key was kept
    kept_because: str | None = None

    @property
    def key(self) -> ApiKey:
        return self.selection.key

    @property
    def new_key_id(self) -> str:
        return self.selection.key.access_key_id

    @property
    def rotated(self) -> bool:
        """True when the session signs with another key than before."""
        return self.old_key_id is not None and self.old_key_id != self.new_key_id

    def event(self, group: str, session: str, at: dt.datetime | None = None) -> KeyRotated | None:
        """``KeyRotated(group, session, old, new, at)`` when the key changed, else None."""
        if not self.rotated or self.old_key_id is None:
            return None
        return KeyRotated(group, session, self.old_key_id, self.new_key_id, at or _utc_now())


PassphraseArg = str | Callable[[], str | None] | None


class KeySource:
    """The keys of one group, from a CME key file, an encrypted key store or the DROPCOPY_* variables.

    Build it with :meth:`from_group` (from a ``[[group]]``), :meth:`file`, :meth:`store` or
    :meth:`environment`. A store's passphrase is ``passphrase`` (a string, or a callable returning one) or,
    by default, ``DROPCOPY_KEY_PASSPHRASE`` in ``env`` (``os.environ`` when not given), read only when the
    store must be unlocked: once at :meth:`load`, and again only if the store was re-created with a new
    salt. After unlocking, only the derived AES key is kept, not the passphrase (unless you passed a string).
    """

    def __init__(
        self,
        kind: SourceKind,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        passphrase: PassphraseArg = None,
        group: str | None = None,
    ) -> None:
        if kind not in ("file", "store", "env"):
            raise ValueError(f"kind must be 'file', 'store' or 'env', not {kind!r}")
        if (path is None) != (kind == "env"):
            raise ValueError("a file or store source needs a path; an env source takes none")
        self.kind: SourceKind = kind
        #: the file's path, or "environment"
        self.name = "environment" if path is None else os.fspath(path)
        self._env = env
        self._group = group
        self._reader: StoreReader | None = None
        if kind == "store":
            self._reader = StoreReader(self._passphrase_source(passphrase))
        self._lock = threading.Lock()
        self._keys: tuple[ApiKey, ...] | None = None
        self._signature: _Signature | None = None
        #: a change seen once, not yet read (``settle=True``): read when the next check sees it unchanged
        self._unsettled: _Signature | None = None

    def __repr__(self) -> str:
        loaded = "not loaded" if self._keys is None else f"{len(self._keys)} keys"
        return f"KeySource({self.kind}, {self.name!r}, {loaded})"

    # ------------------------------------------------------------------------------------------ building
    @classmethod
    def from_group(
        cls,
        group: GroupConfig,
        *,
        env: Mapping[str, str] | None = None,
        passphrase: PassphraseArg = None,
    ) -> KeySource:
        """The source a ``[[group]]`` names: ``key_file``, ``key_store`` or ``key_env = true``."""
        if group.key_store is not None:
            return cls.store(group.key_store, env=env, passphrase=passphrase)
        if group.key_file is not None:
            return cls.file(group.key_file)
        if group.key_env:
            return cls.environment(env, group=group.name)
        raise ConfigError(f"group {group.name!r}: set key_file, key_store or key_env = true")

    @classmethod
    def file(cls, path: str | os.PathLike[str]) -> KeySource:
        """A CME key file, as downloaded."""
        return cls("file", path)

    @classmethod
    def store(
        cls,
        path: str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
        passphrase: PassphraseArg = None,
    ) -> KeySource:
        """A key store written by ``dropcopy keys import``."""
        return cls("store", path, env=env, passphrase=passphrase)

    @classmethod
    def environment(cls, env: Mapping[str, str] | None = None, *, group: str | None = None) -> KeySource:
        """The DROPCOPY_ACCESS_KEY_ID / DROPCOPY_SECRET_KEY pair in ``env`` (``os.environ`` by default)."""
        return cls("env", env=env, group=group)

    def _passphrase_source(self, passphrase: PassphraseArg) -> Callable[[], str | None]:
        if callable(passphrase):
            return passphrase
        if passphrase is not None:
            given = passphrase
            return lambda: given
        return lambda: (os.environ if self._env is None else self._env).get(ENV_PASSPHRASE) or None

    # ------------------------------------------------------------------------------------------ reading
    def _read(self) -> tuple[tuple[ApiKey, ...], _Signature]:
        """Parse the source now: (keys, signature of exactly the bytes parsed). Raises KeyFileError."""
        if self.kind == "env":
            key = keys_from_env(self._env)
            if key is None:
                owner = f"group {self._group!r}: " if self._group else ""
                raise KeyFileError(
                    f"{owner}key_env = true but {ENV_ACCESS_KEY_ID} and {ENV_SECRET_KEY} are not set"
                )
            return (key,), _MISSING
        problem = ""
        data = b""
        signature = _MISSING
        what = "key store" if self.kind == "store" else "key file"
        try:
            with open(self.name, "rb") as handle:
                data = handle.read()
                # the signature of the file read, even if another one was renamed over it since
                signature = _signature(os.fstat(handle.fileno()))
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
        if problem:
            error = KeyStoreError if self.kind == "store" else KeyFileError
            raise error(
                f"{self.name}: cannot read the {what} ({problem}); check the path and that you may read it"
            )
        if self._reader is not None:
            return self._reader.read_bytes(self.name, data).keys, signature
        return parse_key_file_bytes(data, self.name).keys, signature

    def load(self) -> tuple[ApiKey, ...]:
        """Read the keys now and make them the keys in force. Raises :class:`KeyFileError` (or its
        subclass ``KeyStoreError``) naming the file: at start-up an unusable key source is an error."""
        with self._lock:
            keys, signature = self._read()
            self._keys, self._signature = keys, signature
            return keys

    @property
    def keys(self) -> tuple[ApiKey, ...]:
        """The keys in force (loaded on first use)."""
        if self._keys is None:
            return self.load()
        return self._keys

    def _current_signature(self) -> _Signature:
        try:
            return _signature(os.stat(self.name))
        except OSError:
            return _MISSING

    def reload_if_changed(self, *, at: dt.datetime | None = None, settle: bool = False) -> KeyReload | None:
        """Read the file again if it changed on disk since it was last read (or last failed to read).

        ``settle=True`` (a periodic watcher) reads a change only once a second call sees the file unchanged
        since the first: a file being copied in place (``cp``, an editor saving) is not read half-written.

        * ``None``: nothing new -- the file is unchanged, or changed without changing a key (``touch``,
          ``chmod``), or the source is the environment (which nothing outside the process changes).
        * ``KeyReload`` with ``ok``: the new keys are in force (``added`` / ``removed`` name key ids).
        * ``KeyReload`` with ``error``: the changed file could not be used (unreadable, deleted, malformed,
          wrong passphrase, modified store); the previous keys stay in force. The same failure is reported
          once: the next call returns None until the file changes again.

        Never raises for a bad file. Before :meth:`load` it loads (and raises) instead.
        """
        if self.kind == "env":
            return None
        if self._keys is None:
            self.load()
            return None
        with self._lock:
            now = self._current_signature()
            if now == self._signature:
                self._unsettled = None
                return None
            if settle and now != self._unsettled:
                self._unsettled = now  # changed since the last look: wait for it to stay put
                return None
            self._unsettled = None
            previous = self._keys
            assert previous is not None
            when = at or _utc_now()
            try:
                keys, signature = self._read()
            except KeyFileError as exc:
                self._signature = now
                return KeyReload(self.name, when, previous, previous, error=str(exc))
            except (
                Exception
            ) as exc:  # never raise for a bad file; the type only (a message might quote bytes)
                self._signature = now
                reason = f"{self.name}: cannot be read ({type(exc).__name__}); the previous keys stay in use"
                return KeyReload(self.name, when, previous, previous, error=reason)
            self._signature = signature
            if keys == previous:
                return None
            self._keys = keys
            return KeyReload(self.name, when, previous, keys)

    # ------------------------------------------------------------------------------------------ choosing
    def select(
        self, sender_comp_id: str, environment: str | None = None, today: dt.date | None = None
    ) -> KeySelection:
        """:func:`~dropcopy_client.auth.select_key` over the keys in force (without its log record)."""
        return _choose(self.keys, sender_comp_id, environment, today or _utc_now().date())

    def next_logon_key(
        self,
        sender_comp_id: str,
        current: ApiKey | None,
        environment: str | None = None,
        today: dt.date | None = None,
    ) -> LogonKey:
        """The key the next logon of a session signs with, given the key it used so far (``current``).

        The newest valid key in force wins (the rule of ``select_key``). When the keys in force have none for
        the session (a new file without its row, or only expired keys) but ``current`` has not expired, the
        session keeps ``current`` and ``kept_because`` says why; with no usable ``current`` either, the
        ``KeyFileError`` / ``KeyExpiredError`` is raised.
        """
        day = today or _utc_now().date()
        try:
            selection = _choose(self.keys, sender_comp_id, environment, day)
        except (KeyExpiredError, KeyFileError) as exc:
            if current is None or current.is_expired(day):
                raise
            days_left = current.days_left(day)
            kept = KeySelection(
                key=current,
                days_left=days_left,
                expires_soon=days_left is not None and days_left <= EXPIRY_WARNING_DAYS,
            )
            reason = f"{exc}; still signing with key {current.access_key_id}"
            return LogonKey(kept, current.access_key_id, kept_because=reason)
        return LogonKey(selection, None if current is None else current.access_key_id)
