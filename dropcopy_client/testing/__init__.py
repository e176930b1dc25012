"""Testing tools: a CME-like Drop Copy 4.0 simulator on loopback TCP and scripted payload builders.

Usable by this project's tests, by ``dropcopy demo`` and by users' own test suites::

    from dropcopy_client.testing import Simulator, SimSession, ScriptedSession, ESZ6, BUY

    session = SimSession("ABCDEFN")
    with Simulator({"AKID...": "secret..."}, sessions=[session]) as sim:
        host, port = sim.endpoint(session)
        ...  # point the client at host:port, then
        src = ScriptedSession()
        order = src.order(ESZ6, account="ACCT1", side=BUY, qty=2, price="4500.25")
        sim.send_many(session, [order.ack(), order.fill()])

A whole drop copy group (a CGW target and MSGW segments, each with primary and backup) in one call::

    sim, config = group_layout(key_file=tmp_path / "keys.txt")   # started; config points at it
    with sim:
        client = DropCopyClient(config)

Events as a sink receives them, without a simulator (see docs/guides/sinks.md)::

    stream = JournalStream()
    batch, = batches(stream.events([order.ack(), order.fill()]), 512)

See docs/guides/simulator.md.
"""

from dropcopy_client.testing._builders import (
    BUY,
    DEMO_NET_POSITIONS,
    ESH7,
    ESZ6,
    ESZ6_ESH7,
    SELL,
    ZNH7,
    AffectedOrder,
    FillRecord,
    InnerHeader,
    Instrument,
    Order,
    OrderEventEntry,
    OrderFlow,
    ScriptedSession,
    SpreadFlow,
    cancel_ack,
    demo_script,
    elimination,
    exec_ref_id,
    execution_report,
    fill,
    modify_ack,
    new_order_ack,
    order_mass_action_report,
    order_reject,
    pending_cancel,
    pending_replace,
    trade_bust,
    trade_correction,
)
from dropcopy_client.testing._clock import ManualClock, format_ts, parse_ts
from dropcopy_client.testing._demo import DEMO_COMP_ID, DEMO_SESSION, demo_client, demo_config, demo_key
from dropcopy_client.testing._group import DEFAULT_MSGW, MSGW_FO_SEGMENTS, config_toml, group_layout
from dropcopy_client.testing._logon import LogonCheck, LogonRequest, SimKey, validate_logon
from dropcopy_client.testing._simulator import Simulator, SimulatorError
from dropcopy_client.testing._state import Rejection, SimSession, WireFrame
from dropcopy_client.testing._stream import JournalStream, batches
from dropcopy_client.testing._texts import Texts

__all__ = [
    "BUY",
    "DEFAULT_MSGW",
    "DEMO_COMP_ID",
    "DEMO_NET_POSITIONS",
    "DEMO_SESSION",
    "ESH7",
    "ESZ6",
    "ESZ6_ESH7",
    "MSGW_FO_SEGMENTS",
    "SELL",
    "ZNH7",
    "AffectedOrder",
    "FillRecord",
    "InnerHeader",
    "Instrument",
    "JournalStream",
    "LogonCheck",
    "LogonRequest",
    "ManualClock",
    "Order",
    "OrderEventEntry",
    "OrderFlow",
    "Rejection",
    "ScriptedSession",
    "SimKey",
    "SimSession",
    "Simulator",
    "SimulatorError",
    "SpreadFlow",
    "Texts",
    "WireFrame",
    "batches",
    "cancel_ack",
    "config_toml",
    "demo_client",
    "demo_config",
    "demo_key",
    "demo_script",
    "elimination",
    "exec_ref_id",
    "execution_report",
    "fill",
    "format_ts",
    "group_layout",
    "modify_ack",
    "new_order_ack",
    "order_mass_action_report",
    "order_reject",
    "parse_ts",
    "pending_cancel",
    "pending_replace",
    "trade_bust",
    "trade_correction",
    "validate_logon",
]
