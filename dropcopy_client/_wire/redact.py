"""Redaction of secrets in raw FIX text before it reaches a log, an event, an exception or a file.

Secret-bearing tags: 1402 EncryptedPassword (the logon HMAC signature), 96 RawData (legacy password),
554 Password and 925 NewPassword. 355 EncodedText holds the *access key id*, which CME and this library
treat as an identifier, not a secret, so it is kept for diagnostics.
"""

from __future__ import annotations

import re

SECRET_TAGS = (1402, 96, 554, 925)
MASK = b"***"

_PATTERN = re.compile(rb"(^|\x01)(" + b"|".join(str(t).encode() for t in SECRET_TAGS) + rb")=[^\x01]*")
_PATTERN_STR = re.compile(r"(^|\x01|\|)(" + "|".join(str(t) for t in SECRET_TAGS) + r")=[^\x01|]*")


def redact(raw: bytes) -> bytes:
    """``raw`` with the value of every secret tag replaced by ``***``."""
    return _PATTERN.sub(rb"\1\2=" + MASK, raw)


def redact_text(text: str) -> str:
    """Same as :func:`redact` for text, where SOH may already be shown as ``|``."""
    return _PATTERN_STR.sub(r"\1\2=***", text)
