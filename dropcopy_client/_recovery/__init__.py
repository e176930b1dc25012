"""Gap recovery and sequence accounting, sans-IO: the resend policy that drives QuickFIX (``_policy``) and the
ledger that proves every inbound sequence number is accounted for (``_ledger``)."""

from dropcopy_client._recovery._ledger import Ledger, LedgerRow, SessionLedger, State, audit_rows
from dropcopy_client._recovery._policy import (
    CME_RESEND_CAP,
    Action,
    DuplicateIgnored,
    GapDetected,
    GapFilled,
    RecoveryEvent,
    RecoveryStatus,
    ResendPolicy,
    ResendRequested,
    ResendRewrite,
    RetryAfter,
    RewindTo,
    SendResend,
    SkipTo,
    UnrecoverableGap,
)

__all__ = [
    "CME_RESEND_CAP",
    "Action",
    "DuplicateIgnored",
    "GapDetected",
    "GapFilled",
    "Ledger",
    "LedgerRow",
    "RecoveryEvent",
    "RecoveryStatus",
    "ResendPolicy",
    "ResendRequested",
    "ResendRewrite",
    "RetryAfter",
    "RewindTo",
    "SendResend",
    "SessionLedger",
    "SkipTo",
    "State",
    "UnrecoverableGap",
    "audit_rows",
]
