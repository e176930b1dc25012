"""CME secure logon: key files, key selection and expiry, the canonical logon string and its signature."""

from dropcopy_client.auth._signing import (
    CANONICAL_TAGS,
    SIGNATURE_METHOD,
    SigningError,
    canonical_logon,
    decode_secret,
    sign,
)

__all__ = [
    "CANONICAL_TAGS",
    "SIGNATURE_METHOD",
    "SigningError",
    "canonical_logon",
    "decode_secret",
    "sign",
]
