"""Sans-IO FIX layer shared by the client, the decoder and the simulator. Never imports quickfix."""

from dropcopy_client._wire.codec import (
    DATA_TAGS,
    SOH,
    FrameError,
    FrameReader,
    checksum,
    data_field,
    encode,
    first,
    parse_fields,
    parse_frame,
    to_display,
)
from dropcopy_client._wire.redact import redact, redact_text
from dropcopy_client._wire.rtrf import unwrap, wrap

__all__ = [
    "DATA_TAGS",
    "SOH",
    "FrameError",
    "FrameReader",
    "checksum",
    "data_field",
    "encode",
    "first",
    "parse_fields",
    "parse_frame",
    "redact",
    "redact_text",
    "to_display",
    "unwrap",
    "wrap",
]
