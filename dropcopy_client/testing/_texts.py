"""Tag 58 texts the simulator sends.

Texts marked *CME* are quoted from CME's validation tables (spec §1.7). The others are the simulator's own
choice where CME's wording is not published (spec §8); docs/guides/simulator.md lists them.
"""

from __future__ import annotations

from typing import Final


class Texts:
    """Logout / Session Reject texts. Templates use ``str.format`` placeholders."""

    # CME (spec §1.7, W-DCVAL / W-IL2VAL / W-APC / W-DCFT)
    NON_LOGON_FIRST: Final = "Non logon message received while not logged on."
    INVALID_LOGON: Final = "Invalid logon. Logout forced."
    PORT_CLOSURE: Final = (
        "(1000) CME Administered Port Closure Due to Invalid Number of Login Attempts Being Exceeded"
    )
    BACKUP_NOT_ALLOWED: Final = "Backup session not allowed. Logout forced."
    LOCATION_MISSING: Final = "SenderLocationId (142) tag is not present"
    CHECKSUM_MISSING: Final = "Invalid FIX message. Checksum tag not found."
    IN_SESSION_SEQ: Final = "In session logon message must have 34=1. Logout forced."
    BAD_BEGIN_STRING: Final = "BeginString (8) tag has an incorrect value, should be FIX4.2"
    BAD_TARGET_COMP: Final = "TargetCompId (56) tag has an incorrect value: ({value}) should be CME"
    BAD_TARGET_SUB: Final = "TargetSubId (57) tag has an incorrect value: ({value}), should be {expected}"
    SENDER_SUB_MISSING: Final = "SenderSubId (50) tag is not present"
    SENDER_SUB_SHORT: Final = "Business Reject: Other '50 (SENDER_SUB_ID) length: {length} min: 2'"
    SENDER_SUB_CHARS: Final = "tag SenderSubID (50) can contain only alphanumeric values"
    SENDING_TIME_MISSING: Final = "SendingTime (52) tag is not present"
    SENDING_TIME_FORMAT: Final = "SendingTime (52) tag is not formatted properly ({value})"
    BAD_FTI: Final = "Received invalid fault tolerance indicator = ({value}) Logout forced."
    HEARTBEAT_TAG: Final = "Error during logon. Heartbeat tag invalid."
    HEARTBEAT_VALUE: Final = (
        "Error during logon. Heartbeat value invalid. Received: ({value}), "
        "expected value in range {low}-{high}"
    )

    # Simulator choices (CME wording not published)
    TAG_MISSING: Final = "{name} ({tag}) tag is not present"
    MALFORMED: Final = "Invalid FIX message. {reason}"
    BAD_SENDER_COMP: Final = "SenderCompID (49) tag has an incorrect value ({value}). Logout forced."
    SENDING_TIME_TOLERANCE: Final = (
        "SendingTime (52) tag is not within tolerance of CME time ({value}). Logout forced."
    )
    ORIG_SENDING_TIME_ON_LOGON: Final = "OrigSendingTime (122) tag is not allowed on Logon. Logout forced."
    ENCRYPT_METHOD_ON_LOGON: Final = "EncryptMethod (98) tag is not allowed on Logon. Logout forced."
    BAD_RESET_FLAG: Final = "ResetSeqNumFlag (141) tag has an incorrect value ({value}). Logout forced."
    BAD_SIGNATURE_METHOD: Final = (
        "EncryptedPasswordMethod (1400) tag has an incorrect value ({value}), should be CME-1-SHA-256. "
        "Logout forced."
    )
    SEQ_TOO_LOW: Final = "MsgSeqNum too low, expecting {expected} but received {received}. Logout forced."
    NEW_SEQ_TOO_LOW: Final = (
        "NewSeqNo (36) too low, expecting {expected} but received {received}. Logout forced."
    )
    DUPLICATE_LOGON: Final = "Session is already logged on. Logout forced."
    RESEND_IN_PROGRESS: Final = "Resend request rejected: a resend request is already being processed."
    RESEND_TOO_LARGE: Final = "Resend request rejected: {count} messages requested, maximum is {cap}."
    RESEND_STALE: Final = (
        "Resend request rejected: messages older than the {hours} hour resend window requested."
    )
    RESEND_INVALID: Final = "Resend request rejected: invalid range {begin}-{end}."
    RESEND_REJECTED: Final = "Resend request rejected."
