"""What the engine needs to know about one FIX session (engine-agnostic; no quickfix import)."""

from __future__ import annotations

import attrs

from dropcopy_client.auth import ApiKey
from dropcopy_client.config import SessionEndpoints

#: QuickFIX TargetCompID of every drop copy session
CME = "CME"


@attrs.frozen
class SessionSpec:
    """One drop copy FIX session: a CGW target, or one market segment of an MSGW target."""

    group: str
    kind: str  # "cgw" | "msgw"
    sender_comp_id: str
    segment: str  # "G" for CGW, the market segment id for MSGW (our 57 TargetSubID)
    endpoints: SessionEndpoints
    operator: str  # 50 SenderSubID
    location: str  # 142 SenderLocationID
    heartbeat: int
    key: ApiKey = attrs.field(repr=lambda k: f"ApiKey({k.access_key_id})")

    @property
    def name(self) -> str:
        """Public session name, ``SENDERCOMP:segment``; the key of every per-session structure."""
        return f"{self.sender_comp_id}:{self.segment}"

    @property
    def quickfix_id(self) -> str:
        """``SessionID.toString()`` of the QuickFIX session (qualifier = segment)."""
        return f"FIX.4.2:{self.sender_comp_id}->{CME}:{self.segment}"
