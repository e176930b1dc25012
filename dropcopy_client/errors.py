"""Exceptions raised by dropcopy_client.

::

    DropCopyError
    ├── ConfigError(ValueError)          a configuration file or value is wrong: names file, key and value
    ├── KeyFileError(ValueError)         a CME key file is malformed or has no usable key: names file, line, column
    │   ├── KeyExpiredError              the only key for a session has expired: names session, key id, date
    │   └── KeyStoreError                a key store cannot be opened: wrong passphrase, modified, not a store
    ├── LogonRejectedError               CME (or the simulator) refused the logon: .session, .text (tag 58)
    ├── DataDirInUse                     another client holds the data_dir: .path, .holder (its pid)
    ├── SessionError                     a session-level failure: .session
    ├── SinkError                        a sink cannot store a batch or cannot start: names the sink and the table,
    │                                    file or redacted DSN, and says what to do (never a password)
    └── DecodeError(ValueError)          a message cannot be decoded (strict decoding): .raw (redacted), .reason

Synchronous calls raise these. Failures while streaming become events instead, since there is no caller to
raise to: ``MessageError``, ``UnrecoverableGap``, ``HandlerFailed``, ``LogonRejected``. No exception ever
carries a secret key or a signature.
"""

from __future__ import annotations


class DropCopyError(Exception):
    """Base class of every error raised by dropcopy_client."""


class ConfigError(DropCopyError, ValueError):
    """A configuration value is missing or wrong."""


class KeyFileError(DropCopyError, ValueError):
    """A CME key file (or the DROPCOPY_* variables) cannot be used."""


class KeyExpiredError(KeyFileError):
    """Every key for the session has expired; the session is refused before any connection."""


class KeyStoreError(KeyFileError):
    """An encrypted key store cannot be opened or written: names the file and what to do, never a secret.

    A wrong passphrase and a modified store cannot be told apart (both fail the authentication tag), so one
    message covers both.
    """


class LogonRejectedError(DropCopyError):
    """The counterparty answered our Logon with a Logout (or closed the connection)."""

    def __init__(self, session: str, text: str) -> None:
        self.session = session
        self.text = text
        super().__init__(f"logon rejected for session {session}: {text!r}")


class DataDirInUse(DropCopyError):
    """Another client (in this process or another) already runs on this data_dir."""

    def __init__(self, path: object, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"{path}: this data_dir is in use by another dropcopy client (pid {holder}); stop that one first, "
            "or give this client a data_dir of its own (two clients on one journal would both log on)"
        )


class SessionError(DropCopyError):
    """A session-level failure."""

    def __init__(self, session: str, message: str) -> None:
        self.session = session
        super().__init__(f"{session}: {message}")


class SinkError(DropCopyError):
    """A sink could not store a batch (it is offered again later) or could not be set up."""


class DecodeError(DropCopyError, ValueError):
    """A received message could not be decoded; ``raw`` is kept, with secrets redacted."""

    def __init__(self, reason: str, raw: bytes) -> None:
        self.reason = reason
        self.raw = raw
        super().__init__(reason)
