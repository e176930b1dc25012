"""QuickFIX session settings for drop copy initiators (engine notes §2 and §9)."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from pathlib import Path

from dropcopy_client._spec import CME, SessionSpec

# Why each default is what it is (engine notes §2, §3, §9):
#  AllowUnknownMsgFields/ValidateUserDefinedFields: an unknown tag must never make the engine reject
#      (and thereby lose) a message.
#  ValidateFieldsOutOfOrder=N: header tags CME adds after body tags must not cost a message either.
#  CheckLatency=N: queued live messages would otherwise be rejected after a long catch-up (§3.3-D).
#  PersistMessages=N: the signed Logon stays off disk; a consumer only sends admin messages, which are
#      always answered with a GapFill anyway.
#  NonStopSession=Y: QuickFIX has no time zone setting and its default window resets daily; the SDK
#      resets at CME's weekly boundary itself.
#  SendRedundantResendRequests=N: CME processes one resend at a time and rejects extras.
#  ResetOnLogon/Logout/Disconnect=N: CME sequences run for the whole week.
_DEFAULTS = {
    "ConnectionType": "initiator",
    "UseDataDictionary": "Y",
    "AllowUnknownMsgFields": "Y",
    "ValidateUserDefinedFields": "N",
    "ValidateFieldsOutOfOrder": "N",
    "ValidateFieldsHaveValues": "N",
    "CheckLatency": "N",
    "PersistMessages": "N",
    "NonStopSession": "Y",
    "SendRedundantResendRequests": "N",
    "ResetOnLogon": "N",
    "ResetOnLogout": "N",
    "ResetOnDisconnect": "N",
    "RefreshOnLogon": "N",
    "TimestampPrecision": "3",
    "SocketNodelay": "Y",
    "HostSelectionPolicy": "PRIORITY",
    "HostSelectionPolicyPriorityStartOverInterval": "30",
}


def dictionary_path() -> Path:
    """The shipped FIX 4.2 + CME data dictionary."""
    return Path(str(importlib.resources.files("dropcopy_client") / "data" / "FIX42-CME.xml"))


def build_settings(
    specs: Iterable[SessionSpec],
    *,
    store_dir: Path,
    dictionary: Path,
    reconnect_interval: int,
    logon_timeout: int,
    capture_incoming: bool = False,
) -> str:
    """The QuickFIX settings text for every session, one ``[SESSION]`` block each."""
    lines = ["[DEFAULT]"]
    lines += [f"{k}={v}" for k, v in _DEFAULTS.items()]
    lines += [
        f"ReconnectInterval={reconnect_interval}",
        f"LogonTimeout={logon_timeout}",
        f"FileStorePath={store_dir}",
        f"DataDictionary={dictionary}",
        # ScreenLog (C++, to the engine process's stdout pipe): events always; incoming messages only while
        # a frame QuickFIX cannot parse is being captured; outgoing never (the signed Logon is outgoing).
        "ScreenLogShowEvents=Y",
        "ScreenLogShowOutgoing=N",
        f"ScreenLogShowIncoming={'Y' if capture_incoming else 'N'}",
    ]
    for spec in specs:
        ep = spec.endpoints
        lines += [
            "",
            "[SESSION]",
            "BeginString=FIX.4.2",
            f"SenderCompID={spec.sender_comp_id}",
            f"TargetCompID={CME}",
            f"SessionQualifier={spec.segment}",
            f"HeartBtInt={spec.heartbeat}",
            f"SocketConnectHost={ep.primary.host}",
            f"SocketConnectPort={ep.primary.port}",
        ]
        if ep.backup is not None:
            lines += [f"SocketConnectHost1={ep.backup.host}", f"SocketConnectPort1={ep.backup.port}"]
    return "\n".join(lines) + "\n"
