"""CME secure logon: the canonical FIX string and its HMAC-SHA256 signature (spec §1.3-§1.5)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes, hmac

from dropcopy_client.errors import SigningError as SigningError  # re-exported: auth raises it

#: Tags whose values form the canonical string, in this order (spec §1.3).
CANONICAL_TAGS: tuple[int, ...] = (34, 49, 50, 52, 57, 108, 142, 369, 1603, 1604, 1605)
#: Value of 1400 EncryptedPasswordMethod.
SIGNATURE_METHOD = "CME-1-SHA-256"


def canonical_logon(fields: Mapping[int, str]) -> str:
    """The 11 values of spec §1.3 joined by ``\\n``; a missing tag contributes an empty line (spec §8)."""
    return "\n".join(fields.get(tag, "") for tag in CANONICAL_TAGS)


def decode_secret(secret_key: str) -> bytes:
    """Decode a base64url secret key (padding optional). Raises :class:`SigningError` without echoing it."""
    text = secret_key.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SigningError("secret key is not valid base64url text") from None
    if not key:
        raise SigningError("secret key is empty")
    return key


def sign(secret_key: str, canonical: str) -> str:
    """HMAC-SHA256 of ``canonical`` under the decoded ``secret_key``: base64url, no padding (43 chars)."""
    mac = hmac.HMAC(decode_secret(secret_key), hashes.SHA256())
    mac.update(canonical.encode("ascii"))
    return base64.urlsafe_b64encode(mac.finalize()).decode("ascii").rstrip("=")
