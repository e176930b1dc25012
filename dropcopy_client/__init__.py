"""dropcopy_client: a CME Globex Drop Copy 4.0 client.

The public API is everything in ``__all__``; modules whose names start with ``_`` are private.
"""

from dropcopy_client._client import DropCopyClient
from dropcopy_client._decode import decode, decode_strict
from dropcopy_client._enums import (
    ExecTransType,
    ExecType,
    MultiLegReportingType,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from dropcopy_client._events import HandlerFailed, KeyExpiryWarning, LogonRejected, SessionEvent, SessionState
from dropcopy_client._health import SessionStatus
from dropcopy_client._messages import (
    AffectedOrder,
    BusinessMessageReject,
    CancelAck,
    Delivery,
    ExecutionReport,
    Fill,
    MessageError,
    ModifyAck,
    OrderAck,
    OrderCancelReject,
    OrderElimination,
    OrderEvent,
    OrderMassActionReport,
    OrderRejected,
    PendingCancel,
    PendingReplace,
    Source,
    TradeBust,
    TradeCorrection,
    UnknownMessage,
)
from dropcopy_client.config import (
    ClientConfig,
    GroupConfig,
    TargetConfig,
    cgw_target,
    load_config,
    msgw_target,
)
from dropcopy_client.errors import (
    ConfigError,
    DecodeError,
    DropCopyError,
    KeyExpiredError,
    KeyFileError,
    LogonRejectedError,
    SessionError,
    SinkError,
)
from dropcopy_client.positions import Position, PositionBook, PositionException, WorkingOrder

__version__ = "0.1.0"

__all__ = [
    "AffectedOrder",
    "BusinessMessageReject",
    "CancelAck",
    "ClientConfig",
    "ConfigError",
    "DecodeError",
    "Delivery",
    "DropCopyClient",
    "DropCopyError",
    "ExecTransType",
    "ExecType",
    "ExecutionReport",
    "Fill",
    "GroupConfig",
    "HandlerFailed",
    "KeyExpiredError",
    "KeyExpiryWarning",
    "KeyFileError",
    "LogonRejected",
    "LogonRejectedError",
    "MessageError",
    "ModifyAck",
    "MultiLegReportingType",
    "OrdStatus",
    "OrdType",
    "OrderAck",
    "OrderCancelReject",
    "OrderElimination",
    "OrderEvent",
    "OrderMassActionReport",
    "OrderRejected",
    "PendingCancel",
    "PendingReplace",
    "Position",
    "PositionBook",
    "PositionException",
    "SessionError",
    "SessionEvent",
    "SessionState",
    "SessionStatus",
    "Side",
    "SinkError",
    "Source",
    "TargetConfig",
    "TimeInForce",
    "TradeBust",
    "TradeCorrection",
    "UnknownMessage",
    "WorkingOrder",
    "cgw_target",
    "decode",
    "decode_strict",
    "load_config",
    "msgw_target",
]
