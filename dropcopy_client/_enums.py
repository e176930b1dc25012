"""FIX enumerations used by the drop copy event model.

Unknown values are kept, never a crash. CME adds values over time (iLink 3 brought ``59=4`` FOK, BrokerTec and
EBS brought their own), and a drop copy client that rejects a fill because of a new enumeration value loses a
trade. So every enum here is a :class:`FixEnum`, a :class:`enum.StrEnum` whose ``_missing_`` hook turns an
unlisted wire value into a *pseudo-member* of the same class:

>>> Side("1") is Side.BUY
True
>>> odd = Side("7")
>>> odd.name, odd.value, odd.is_known, isinstance(odd, Side)
('UNKNOWN', '7', False, True)

Why a pseudo-member rather than ``Side | str``: a field typed ``Side`` stays ``Side`` for mypy and for
``match``/``is`` comparisons against real members, handlers need no ``isinstance(x, str)`` branch, and the raw
value survives (``.value``, ``str(x)``) so the message can be re-encoded byte for byte. Pseudo-members compare
equal by value (``Side("7") == "7"``), are interned (``Side("7") is Side("7")``, up to a bound), never appear
when iterating the class, and pickle by value. Only the empty string is refused: FIX forbids empty values.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

#: pseudo-members interned per class; beyond this a new object is returned each time (still equal by value)
_INTERN_LIMIT = 256


class FixEnum(StrEnum):
    """Base of every FIX enumeration: unknown wire values become ``UNKNOWN`` pseudo-members (module doc)."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str) or not value:
            return None  # Enum raises ValueError
        pseudo = str.__new__(cls, value)
        pseudo._name_ = "UNKNOWN"
        pseudo._value_ = value
        if len(cls._value2member_map_) >= len(cls._member_names_) + _INTERN_LIMIT:
            return pseudo
        return cls._value2member_map_.setdefault(value, pseudo)  # type: ignore[return-value]

    @property
    def is_known(self) -> bool:
        """False for a value this version of the library does not list (a pseudo-member)."""
        return self._name_ in type(self)._member_map_


class Side(FixEnum):
    """54 Side. CME order entry uses only buy and sell."""

    BUY = "1"
    SELL = "2"


class OrdStatus(FixEnum):
    """39 OrdStatus: with 20 ExecTransType, the discriminator of the ExecutionReport variants (spec §4.2)."""

    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    STOPPED = "7"
    REJECTED = "8"
    SUSPENDED = "9"
    PENDING_NEW = "A"
    CALCULATED = "B"
    #: CME: order elimination (expiry, end of session, risk-driven cancel)
    EXPIRED = "C"
    ACCEPTED_FOR_BIDDING = "D"
    PENDING_REPLACE = "E"
    #: CME: trade cancel (bust), sent with 20=1
    TRADE_CANCEL = "H"
    #: CME: trade correction, sent with 20=2
    TRADE_CORRECTION = "G"


class ExecType(FixEnum):
    """150 ExecType. Cross-checked against 39 OrdStatus; a mismatch becomes a warning on the event."""

    NEW = "0"
    PARTIAL_FILL = "1"
    FILL = "2"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    STOPPED = "7"
    REJECTED = "8"
    SUSPENDED = "9"
    PENDING_NEW = "A"
    CALCULATED = "B"
    EXPIRED = "C"
    RESTATED = "D"
    PENDING_REPLACE = "E"
    #: FIX 4.4+ / iLink 3 "Trade"; accepted on fills without a warning
    TRADE = "F"
    TRADE_CORRECT = "G"
    TRADE_CANCEL = "H"


class ExecTransType(FixEnum):
    """20 ExecTransType: new, or a cancel (bust) / correction of an earlier execution."""

    NEW = "0"
    CANCEL = "1"
    CORRECT = "2"
    STATUS = "3"


class OrdType(FixEnum):
    """40 OrdType as CME uses it (market and stop orders are protected)."""

    MARKET = "1"
    LIMIT = "2"
    STOP = "3"
    STOP_LIMIT = "4"
    MARKET_LIMIT = "K"


class TimeInForce(FixEnum):
    """59 TimeInForce. ``FAK`` is FIX's immediate-or-cancel (3); ``FOK`` (4) exists only on iLink 3."""

    DAY = "0"
    GTC = "1"
    FAK = "3"
    FOK = "4"
    GTD = "6"


class MultiLegReportingType(FixEnum):
    """442 MultiLegReportingType (FIX values; CME's own enumeration text was not found, spec §8).

    Positions count single-security fills and spread legs, never the spread summary (spec §4.4).
    """

    SINGLE_SECURITY = "1"
    INDIVIDUAL_LEG_OF_MULTI_LEG = "2"
    MULTI_LEG_SECURITY = "3"


class MassActionType(FixEnum):
    """1373 MassActionType of an Order Mass Action Report."""

    SUSPEND = "1"
    RELEASE = "2"
    CANCEL = "3"


class MassActionScope(FixEnum):
    """1374 MassActionScope: what the mass action applied to (CME uses instrument, segment and group)."""

    INSTRUMENT = "1"
    UNDERLYING = "2"
    PRODUCT = "3"
    CFI_CODE = "4"
    SECURITY_TYPE = "5"
    TRADING_SESSION = "6"
    ALL_ORDERS = "7"
    MARKET = "8"
    MARKET_SEGMENT = "9"
    SECURITY_GROUP = "10"


class MassActionResponse(FixEnum):
    """1375 MassActionResponse."""

    REJECTED = "0"
    ACCEPTED = "1"


class CxlRejResponseTo(FixEnum):
    """434 CxlRejResponseTo of an OrderCancelReject: which request was refused."""

    CANCEL = "1"
    REPLACE = "2"
