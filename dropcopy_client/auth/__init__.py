"""CME secure logon: key files, key selection and expiry, the canonical logon string and its signature."""

from dropcopy_client.auth._keyfile import (
    ENV_ACCESS_KEY_ID,
    ENV_SECRET_KEY,
    EXPIRY_WARNING_DAYS,
    ApiKey,
    KeyFile,
    KeySelection,
    SecretKey,
    generate_key,
    keys_from_env,
    load_key_file,
    parse_key_file,
    select_key,
    write_key_file,
)
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
    "ENV_ACCESS_KEY_ID",
    "ENV_SECRET_KEY",
    "EXPIRY_WARNING_DAYS",
    "SIGNATURE_METHOD",
    "ApiKey",
    "KeyFile",
    "KeySelection",
    "SecretKey",
    "SigningError",
    "canonical_logon",
    "decode_secret",
    "generate_key",
    "keys_from_env",
    "load_key_file",
    "parse_key_file",
    "select_key",
    "sign",
    "write_key_file",
]
