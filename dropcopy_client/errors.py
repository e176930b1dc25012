"""Exceptions raised by dropcopy_client.

Every exception the library raises about the world outside your code -- a configuration or key file, CME or
the simulator, the journal, a sink -- is a :class:`DropCopyError`, and each also subclasses the builtin it
resembles, so ``except ValueError`` or ``except TimeoutError`` keeps working::

    DropCopyError
    ├── ConfigError(ValueError)          a configuration file or value is wrong: names file, key and value
    ├── KeyFileError(ValueError)         a CME key file is malformed or has no usable key: names file, line, column
    │   ├── KeyExpiredError              the only key for a session has expired: names session, key id, date
    │   └── KeyStoreError                a key store cannot be opened: wrong passphrase, modified, not a store
    ├── SigningError(ValueError)         a secret key is not base64url text (never echoes the secret)
    ├── LogonRejectedError               CME (or the simulator) refused the logon: .session, .text (tag 58)
    ├── LogonTimeout(TimeoutError)       wait_logged_on / start(wait=...) ran out of time: .session, .timeout
    ├── DataDirInUse                     another client holds the data_dir: .path, .holder (its pid)
    ├── SessionError                     a session-level failure: .session
    ├── JournalError                     the journal file cannot be used: not a journal, newer schema, write failed
    ├── SinkError                        a sink cannot store a batch or cannot start: names the sink and the table,
    │                                    file or redacted DSN, and says what to do (never a password)
    ├── ExportError                      dropcopy export / export_journal cannot start as asked
    ├── SimulatorError(RuntimeError)     misuse of dropcopy_client.testing.Simulator (unknown session, not started)
    └── DecodeError(ValueError)          a message cannot be decoded (strict decoding): .raw (redacted), .reason

Synchronous calls raise these. Failures while streaming become events instead, since there is no caller to
raise to: ``MessageError``, ``UnrecoverableGap``, ``HandlerFailed``, ``LogonRejected``. No exception ever
carries a secret key or a signature.

A wrong argument in your own code (a negative size, a function where a sink was expected) is a plain
``TypeError`` or ``ValueError``, as in the standard library: it is a bug to fix, not a condition to handle.

``JournalError`` is defined beside the journal and re-exported here (importing it from here loads the journal
module on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dropcopy_client._journal import JournalError

__all__ = [
    "ConfigError",
    "DataDirInUse",
    "DecodeError",
    "DropCopyError",
    "ExportError",
    "JournalError",
    "KeyExpiredError",
    "KeyFileError",
    "KeyStoreError",
    "LogonRejectedError",
    "LogonTimeout",
    "SessionError",
    "SigningError",
    "SimulatorError",
    "SinkError",
]


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


class SigningError(DropCopyError, ValueError):
    """The secret key cannot be used (not base64url, wrong length). Never carries the secret itself."""


class LogonRejectedError(DropCopyError):
    """The counterparty answered our Logon with a Logout (or closed the connection)."""

    def __init__(self, session: str, text: str) -> None:
        self.session = session
        self.text = text
        super().__init__(f"logon rejected for session {session}: {text!r}")


class LogonTimeout(DropCopyError, TimeoutError):
    """A session did not log on in time (no refusal either: the client keeps trying in the background)."""

    def __init__(self, session: str, timeout: float) -> None:
        self.session = session
        self.timeout = timeout
        super().__init__(
            f"session {session} did not log on within {timeout:.0f} s: check that its primary endpoint is "
            "reachable (dropcopy status shows the state; -v logs every connection attempt)"
        )


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


class ExportError(DropCopyError):
    """The export cannot start as asked (the message says what to do instead)."""


class SimulatorError(DropCopyError, RuntimeError):
    """Misuse of the simulator (unknown session, not started, no live connection, ...)."""


class DecodeError(DropCopyError, ValueError):
    """A received message could not be decoded; ``raw`` is kept, with secrets redacted."""

    def __init__(self, reason: str, raw: bytes) -> None:
        self.reason = reason
        self.raw = raw
        super().__init__(reason)


def __getattr__(name: str) -> Any:
    # JournalError lives beside the journal, which imports this module: re-exported lazily to avoid the cycle
    if name == "JournalError":
        from dropcopy_client._journal import JournalError

        return JournalError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
