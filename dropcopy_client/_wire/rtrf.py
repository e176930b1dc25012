"""CME Drop Copy 4.0 encapsulation: every business message travels as 35=n with ``<RTRF>inner</RTRF>`` in 213."""

from __future__ import annotations

from dropcopy_client._wire.codec import FrameError

RTRF_OPEN = b"<RTRF>"
RTRF_CLOSE = b"</RTRF>"


def wrap(inner: bytes) -> bytes:
    """The 213 value for an inner FIX message: ``<RTRF>`` + message (ending in its SOH) + ``</RTRF>``."""
    return RTRF_OPEN + inner + RTRF_CLOSE


def unwrap(xml_data: bytes) -> bytes:
    """The inner FIX message of a 213 value. Raises :class:`FrameError` when the RTRF tags are missing.

    Exactly one ``<RTRF>`` block is expected (spec §8 lists several blocks as unconfirmed; a value with more
    than one is refused rather than silently truncated).
    """
    if not xml_data.startswith(RTRF_OPEN):
        raise FrameError("213 XMLData does not start with <RTRF>", 0)
    if not xml_data.endswith(RTRF_CLOSE):
        raise FrameError("213 XMLData does not end with </RTRF> (truncated?)", len(xml_data))
    inner = xml_data[len(RTRF_OPEN) : -len(RTRF_CLOSE)]
    if RTRF_OPEN in inner or RTRF_CLOSE in inner:
        raise FrameError(
            "213 XMLData holds more than one <RTRF> block", inner.find(b"<RTRF>") + len(RTRF_OPEN)
        )
    return inner
