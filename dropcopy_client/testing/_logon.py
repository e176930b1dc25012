"""Sans-IO validation of a client Logon, as CME does it (spec §1.2-§1.8, §3.1).

Stateless checks only: framing, header, logon body and signature. Sequence numbers, lockout, backup refusal
and duplicate logons depend on session state and live in the simulator.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import date, datetime

import attrs

from dropcopy_client._wire import FrameError, first, parse_frame
from dropcopy_client._wire.codec import Field
from dropcopy_client.auth import CANONICAL_TAGS, SIGNATURE_METHOD, ApiKey, SigningError, canonical_logon, sign
from dropcopy_client.testing._clock import parse_ts
from dropcopy_client.testing._texts import Texts

_SUB_ID = re.compile(r"^[A-Za-z0-9_\-:@.]*$")
_SEGMENT = re.compile(r"^(G|\d{1,3})$")
_ECHO_TAGS = (1603, 1604, 1605)
_NAMES = {
    34: "MsgSeqNum",
    49: "SenderCompID",
    141: "ResetSeqNumFlag",
    354: "EncodedTextLen",
    355: "EncodedText",
    369: "LastMsgSeqNumProcessed",
    1400: "EncryptedPasswordMethod",
    1401: "EncryptedPasswordLen",
    1402: "EncryptedPassword",
}


class SimKey:
    """One access key the simulator accepts. The secret never appears in ``repr``."""

    __slots__ = ("_secret", "access_key_id", "expires", "session_id")

    def __init__(self, access_key_id: str, secret: str, session_id: str | None, expires: date | None) -> None:
        self.access_key_id = access_key_id
        self._secret = secret
        self.session_id = session_id
        self.expires = expires

    @classmethod
    def from_api_key(cls, key: ApiKey) -> SimKey:
        """From a key-file :class:`~dropcopy_client.auth.ApiKey` (session ``"*"`` matches any session)."""
        session_id = None if key.session_id == "*" else key.session_id
        return cls(key.access_key_id, key.secret.reveal(), session_id, key.expires)

    def signature(self, canonical: str) -> str:
        return sign(self._secret, canonical)

    def __repr__(self) -> str:
        return f"SimKey({self.access_key_id!r}, session_id={self.session_id!r}, expires={self.expires})"


@attrs.frozen
class LogonRequest:
    """The parts of an accepted Logon the session layer needs."""

    seq: int
    sender_comp_id: str
    sender_sub_id: str
    target_sub_id: str
    location: str
    heartbeat: int
    reset: bool
    last_processed: int
    access_key_id: str
    echo: tuple[tuple[int, bytes], ...]


@attrs.frozen
class LogonCheck:
    """Result of :func:`validate_logon`: ``request`` when valid, else the Logout ``text``.

    ``detail`` is a log-only explanation (never contains a secret). ``sender_comp_id``/``target_sub_id`` are
    set when present, so a wildcard simulator can attribute a bad logon to a session.
    """

    request: LogonRequest | None
    text: str = ""
    detail: str = ""
    sender_comp_id: str | None = None
    target_sub_id: str | None = None
    fields: tuple[Field, ...] = ()


def _text(fields: list[Field], tag: int) -> str | None:
    value = first(fields, tag)
    return None if value is None else value.decode("ascii", "backslashreplace")


def validate_logon(
    raw: bytes,
    *,
    keys: Mapping[str, SimKey],
    now: datetime,
    expected_sender: str | None = None,
    expected_segment: str | None = None,
    tolerance: float = 30.0,
    heartbeat_range: tuple[int, int] = (5, 60),
) -> LogonCheck:
    """Check one raw message that arrived as the first message of a connection."""
    try:
        fields = parse_frame(raw)
    except FrameError as exc:
        if b"\x0110=" not in raw:
            return LogonCheck(None, Texts.CHECKSUM_MISSING, str(exc))
        return LogonCheck(None, Texts.MALFORMED.format(reason=exc.reason), str(exc))

    sender = _text(fields, 49)
    target_sub = _text(fields, 57)

    def fail(text: str, detail: str = "") -> LogonCheck:
        return LogonCheck(None, text, detail or text, sender, target_sub, tuple(fields))

    if fields[0][1] != b"FIX.4.2":
        return fail(Texts.BAD_BEGIN_STRING)
    if fields[2][1] != b"A":
        return fail(Texts.NON_LOGON_FIRST, f"first message has 35={fields[2][1]!r}")

    seq_text = _text(fields, 34)
    if seq_text is None or not seq_text.isdigit() or int(seq_text) < 1:
        return fail(Texts.TAG_MISSING.format(name="MsgSeqNum", tag=34))
    if sender is None:
        return fail(Texts.TAG_MISSING.format(name="SenderCompID", tag=49))
    if len(sender) != 7 or not sender.isalnum():
        return fail(Texts.BAD_SENDER_COMP.format(value=sender))
    if sender[-1] != "N":
        return fail(Texts.BAD_FTI.format(value=sender[-1]))
    if expected_sender is not None and sender != expected_sender:
        return fail(Texts.BAD_SENDER_COMP.format(value=sender), f"this port serves {expected_sender}")
    target = _text(fields, 56)
    if target != "CME":
        return fail(Texts.BAD_TARGET_COMP.format(value=target or ""))
    if expected_segment is not None:
        if target_sub != expected_segment:
            return fail(Texts.BAD_TARGET_SUB.format(value=target_sub or "", expected=expected_segment))
    elif target_sub is None or not _SEGMENT.match(target_sub):
        return fail(Texts.BAD_TARGET_SUB.format(value=target_sub or "", expected="G"))

    sub = _text(fields, 50)
    if sub is None:
        return fail(Texts.SENDER_SUB_MISSING)
    if len(sub) < 2:
        return fail(Texts.SENDER_SUB_SHORT.format(length=len(sub)))
    if not _SUB_ID.match(sub):
        return fail(Texts.SENDER_SUB_CHARS)
    location = _text(fields, 142)
    if location is None:
        return fail(Texts.LOCATION_MISSING)
    last_processed = _text(fields, 369)
    if last_processed is None or not last_processed.isdigit():
        return fail(Texts.TAG_MISSING.format(name=_NAMES[369], tag=369))

    sending_time = _text(fields, 52)
    if sending_time is None:
        return fail(Texts.SENDING_TIME_MISSING)
    stamped = parse_ts(sending_time)
    if stamped is None:
        return fail(Texts.SENDING_TIME_FORMAT.format(value=sending_time))
    skew = abs((stamped - now).total_seconds())
    if skew > tolerance:
        return fail(
            Texts.SENDING_TIME_TOLERANCE.format(value=sending_time),
            f"SendingTime is {skew:.3f} s from the simulator clock (tolerance {tolerance} s)",
        )
    if first(fields, 122) is not None:
        return fail(Texts.ORIG_SENDING_TIME_ON_LOGON)
    if first(fields, 98) is not None:
        return fail(Texts.ENCRYPT_METHOD_ON_LOGON)
    if first(fields, 95) is not None or first(fields, 96) is not None:
        return fail(Texts.INVALID_LOGON, "legacy RawData (95/96) present")

    hb_text = _text(fields, 108)
    if hb_text is None or not hb_text.isdigit():
        return fail(Texts.HEARTBEAT_TAG)
    low, high = heartbeat_range
    if not low <= int(hb_text) <= high:
        return fail(Texts.HEARTBEAT_VALUE.format(value=hb_text, low=low, high=high))

    reset_text = _text(fields, 141)
    if reset_text is None:
        return fail(Texts.TAG_MISSING.format(name=_NAMES[141], tag=141))
    if reset_text not in ("N", "Y"):
        return fail(Texts.BAD_RESET_FLAG.format(value=reset_text))

    method = _text(fields, 1400)
    if method is None:
        return fail(Texts.TAG_MISSING.format(name=_NAMES[1400], tag=1400))
    if method != SIGNATURE_METHOD:
        return fail(Texts.BAD_SIGNATURE_METHOD.format(value=method))
    for tag in (354, 355, 1401, 1402):
        if first(fields, tag) is None:
            return fail(Texts.TAG_MISSING.format(name=_NAMES[tag], tag=tag))
    # parse_frame already read 355/1402 by their length fields; this guards against duplicated tags.
    for length_tag, data_tag in ((354, 355), (1401, 1402)):
        declared = _text(fields, length_tag) or ""
        if not declared.isdigit() or int(declared) != len(first(fields, data_tag) or b""):
            return fail(Texts.INVALID_LOGON, f"{length_tag} does not match the length of {data_tag}")

    key_id = _text(fields, 355) or ""
    key = keys.get(key_id)
    if key is None:
        return fail(Texts.INVALID_LOGON, f"unknown access key id {key_id!r}")
    if key.session_id is not None and key.session_id != sender[:3]:
        return fail(
            Texts.INVALID_LOGON,
            f"access key {key_id!r} belongs to session {key.session_id}, not {sender[:3]}",
        )
    if key.expires is not None and now.date() > key.expires:
        return fail(Texts.INVALID_LOGON, f"access key {key_id!r} expired on {key.expires}")
    values = {tag: value for tag in CANONICAL_TAGS if (value := _text(fields, tag)) is not None}
    try:
        expected = key.signature(canonical_logon(values)).encode("ascii")
    except SigningError as exc:
        return fail(Texts.INVALID_LOGON, f"access key {key_id!r} has an unusable secret: {exc}")
    if not hmac.compare_digest(expected, first(fields, 1402) or b""):
        return fail(Texts.INVALID_LOGON, f"signature mismatch for access key {key_id!r}")

    request = LogonRequest(
        seq=int(seq_text),
        sender_comp_id=sender,
        sender_sub_id=sub,
        target_sub_id=target_sub or "",
        location=location,
        heartbeat=int(hb_text),
        reset=reset_text == "Y",
        last_processed=int(last_processed),
        access_key_id=key_id,
        echo=tuple((tag, echo) for tag in _ECHO_TAGS if (echo := first(fields, tag)) is not None),
    )
    return LogonCheck(request, sender_comp_id=sender, target_sub_id=target_sub, fields=tuple(fields))
