"""Decode throughput: how many wrapped drop copy messages per second one thread turns into typed events.

Builds N realistic outer 35=n messages (outright fills, new-order acks, spread summaries and legs, with distinct
ids, prices and nanosecond timestamps, as a busy session would deliver them), then times ``decode()`` over all
of them. Prints the best of several runs; ``--json PATH`` also writes the numbers.

    python bench/bench_decode.py              # 20,000 messages, best of 5
    python bench/bench_decode.py -n 50000 --runs 7 --json bench/results/decode.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from dropcopy_client._decode import decode, encode_report, wrap_outer
from dropcopy_client._enums import (
    ExecTransType,
    ExecType,
    MultiLegReportingType,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from dropcopy_client._messages import Delivery, ExecutionReport, Fill, MessageError, OrderAck, Source

UTC = dt.UTC
START_NS = 1_710_167_400_000_000_000  # 2024-03-11 14:30 UTC
PRODUCTS = [
    ("ES", "ESM4", "118", Decimal("4501.25"), Decimal("0.25")),
    ("ZN", "ZNM4", "204527", Decimal("110.15625"), Decimal("0.015625")),
    ("CL", "CLK4", "3011", Decimal("78.41"), Decimal("0.01")),
]
MIX = [("fill", 0.55), ("ack", 0.30), ("spread_summary", 0.05), ("spread_leg", 0.10)]


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns % 10**9 // 1000)


def build_messages(n: int, seed: int = 7) -> list[bytes]:
    """``n`` distinct wrapped messages in the proportions of ``MIX``."""
    rng = random.Random(seed)
    placeholder = Delivery(
        group="", session="", target="", seq_num=0, sending_time=_utc(START_NS), received_at=_utc(START_NS)
    )
    kinds = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX], k=n)
    out = []
    for i, kind in enumerate(kinds):
        ns = START_NS + i * 1_250_000 + rng.randrange(1_000_000)
        symbol, desc, security_id, base, tick = rng.choice(PRODUCTS)
        px = base + tick * rng.randrange(-40, 40)
        qty = rng.randrange(1, 50)
        source = Source(
            sender_comp_id="ABC123N",
            operator="TRADER1",
            segment="G",
            seq_num=5000 + i,
            sending_time=_utc(ns + 1_000_000),
            location="US,IL",
        )
        common: dict[str, Any] = {
            "delivery": placeholder,
            "source": source,
            "account": f"ACCT{i % 17:02d}",
            "avg_px": Decimal(0),
            "cl_ord_id": f"ORD-{i:08d}",
            "exec_id": f"64201:{9_000_000 + i}",
            "exec_trans_type": ExecTransType.NEW,
            "order_id": str(7_012_000_000 + i),
            "order_qty": qty,
            "ord_type": OrdType.LIMIT,
            "orig_cl_ord_id": "0",
            "price": px,
            "security_id": security_id,
            "side": rng.choice([Side.BUY, Side.SELL]),
            "symbol": symbol,
            "time_in_force": TimeInForce.DAY,
            "transact_time": _utc(ns),
            "transact_time_ns": ns,
            "security_desc": desc,
            "security_type": "FUT",
            "manual_order_indicator": False,
            "cust_order_handling_inst": "Y",
            "request_time_ns": ns - rng.randrange(10_000, 90_000),
            "correlation_cl_ord_id": f"ORD-{i:08d}",
        }
        event: ExecutionReport
        if kind == "ack":
            event = OrderAck(
                **common, ord_status=OrdStatus.NEW, exec_type=ExecType.NEW, cum_qty=0, leaves_qty=qty
            )
        else:
            fill: dict[str, Any] = {
                "ord_status": OrdStatus.FILLED,
                "exec_type": ExecType.FILL,
                "cum_qty": qty,
                "leaves_qty": 0,
                "last_px": px,
                "last_qty": qty,
                "trade_date": _utc(ns).date(),
                "secondary_exec_id": str(710_000_000 + i // 3),
            }
            if kind == "fill":
                fill |= {
                    "multi_leg_reporting_type": MultiLegReportingType.SINGLE_SECURITY,
                    "aggressor": rng.random() < 0.5,
                    "md_trade_entry_id": str(112_000 + i),
                    "contra_trader": "TRADE",
                    "contra_broker": "CME000A",
                }
            elif kind == "spread_summary":
                fill |= {
                    "multi_leg_reporting_type": MultiLegReportingType.MULTI_LEG_SECURITY,
                    "total_num_securities": 2,
                    "aggressor": True,
                    "md_trade_entry_id": str(112_000 + i),
                }
            else:
                fill |= {"multi_leg_reporting_type": MultiLegReportingType.INDIVIDUAL_LEG_OF_MULTI_LEG}
            event = Fill(**common, **fill)
        out.append(
            wrap_outer(
                encode_report(event),
                seq_num=1000 + i,
                target="ABCDEFN",
                segment="G",
                sending_time=_utc(ns + 2_000_000),
                operator="TRADE_CAPTURE",
                location="US,IL",
            )
        )
    return out


def run(messages: list[bytes], runs: int) -> dict[str, Any]:
    received = dt.datetime.now(UTC)
    for raw in messages[:1000]:  # warm-up, and a sanity check that nothing fails
        (event,) = decode(raw, received_at=received)
        assert not isinstance(event, MessageError), event.reason
    timings = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        for raw in messages:
            decode(raw, received_at=received)
        timings.append(time.perf_counter() - start)
    best = min(timings)
    return {
        "benchmark": "decode",
        "messages": len(messages),
        "runs": runs,
        "best_seconds": best,
        "messages_per_second": len(messages) / best,
        "microseconds_per_message": best / len(messages) * 1e6,
        "all_seconds": timings,
        "mean_message_bytes": sum(map(len, messages)) / len(messages),
        "mix": dict(MIX),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    messages = build_messages(args.messages)
    result = run(messages, args.runs)
    print(
        f"decode: {result['messages_per_second']:,.0f} messages/s "
        f"({result['microseconds_per_message']:.2f} us/message, best of {args.runs} runs over "
        f"{result['messages']:,} messages of {result['mean_message_bytes']:.0f} bytes)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
