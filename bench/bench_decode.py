"""Decode speed: both decoder implementations side by side, single thread, µs per wrapped message.

Times the pure-Python decoder (``_decode.python_decode``) and the compiled one (``_cdecode.decode``, what
``dropcopy_client.decode`` is when the extension was built) over the same messages, alternating them in every
run so that machine noise hits both alike, and prints the median and best of the runs -- once with each
event dropped at once (the decoder alone) and once with the events kept until their batch of 512 is done, as
the dispatcher holds them (allocation and the garbage collector included). By default the messages
are the benchmark stream (``bench._stream.Stream``: the mix every other measurement sends, after one cycle of
warm-up); ``--stream mix`` uses this module's older synthetic mix instead. ``--json PATH`` also writes the
numbers.

    python -m bench.bench_decode                 # 20,000 bench-stream messages, median of 7 runs
    python -m bench.bench_decode -n 50000 --runs 9 --json bench/results/decode.json
    python bench/bench_decode.py --stream mix

The compiled decoder's *fast path* takes regular wrapped business messages and hands anything else to the
Python decoder; the share it took is printed too (100% for both streams).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (python bench/bench_decode.py): make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dropcopy_client import _decode as decoding
from dropcopy_client._decode import encode_report, wrap_outer
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
    """``n`` distinct wrapped messages in the proportions of ``MIX`` (the older synthetic mix)."""
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


def stream_messages(n: int) -> list[bytes]:
    """``n`` frames of the benchmark stream, starting after its first cycle (which is the warm-up)."""
    from bench._stream import Stream

    stream = Stream()
    return list(stream.frames(len(stream), n))


def implementations() -> tuple[dict[str, Callable[..., list[Any]]], str | None]:
    """name -> decode function, and why the compiled one is missing (None when it is there)."""
    impls: dict[str, Callable[..., list[Any]]] = {"python": decoding.python_decode}
    try:
        compiled = decoding.compiled_decoder()
    except ImportError as exc:
        return impls, f"{type(exc).__name__}: {exc}"
    impls["compiled"] = compiled.decode
    return impls, None


BATCH = 512  # the dispatcher's batch (dropcopy_client._pipeline.BATCH)


def _dropped(decode: Callable[..., list[Any]], messages: list[bytes], received: dt.datetime) -> None:
    for raw in messages:
        decode(raw, group="bench", session="ABCDEFN:G", received_at=received)


def _kept(decode: Callable[..., list[Any]], messages: list[bytes], received: dt.datetime) -> None:
    for start in range(0, len(messages), BATCH):
        batch = [
            decode(raw, group="bench", session="ABCDEFN:G", received_at=received)
            for raw in messages[start : start + BATCH]
        ]
    del batch


#: how the events are treated while timing: dropped at once (the decoder alone), or kept until their batch of
#: 512 is done, as the dispatcher holds them (so allocation and the garbage collector are counted too)
MODES: dict[str, Callable[[Callable[..., list[Any]], list[bytes], dt.datetime], None]] = {
    "dropped": _dropped,
    "kept": _kept,
}


def run(messages: list[bytes], runs: int) -> dict[str, Any]:
    received = dt.datetime.now(UTC)
    impls, missing = implementations()
    for decode in impls.values():
        for raw in messages[:2000]:  # warm-up (memos, caches), and a check that nothing fails
            (event,) = decode(raw, received_at=received)
            assert not isinstance(event, MessageError), event.reason
    timings: dict[tuple[str, str], list[float]] = {(i, m): [] for i in impls for m in MODES}
    for _ in range(runs):
        for (name, mode), seconds in timings.items():  # interleaved: noise hits every figure alike
            gc.collect()
            start = time.perf_counter()
            MODES[mode](impls[name], messages, received)
            seconds.append(time.perf_counter() - start)
    results: dict[str, Any] = {name: {} for name in impls}
    for (name, mode), seconds in timings.items():
        median = statistics.median(seconds)
        results[name][mode] = {
            "median_microseconds_per_message": median / len(messages) * 1e6,
            "best_microseconds_per_message": min(seconds) / len(messages) * 1e6,
            "messages_per_second_at_median": len(messages) / median,
            "all_seconds": seconds,
        }
    speedup: dict[str, float] = {}
    if "compiled" in impls:
        fast = decoding.compiled_decoder().decode_fast
        taken = sum(fast(raw, "bench", "ABCDEFN:G", received) is not None for raw in messages)
        results["compiled"]["fast_path_share"] = taken / len(messages)
        for mode in MODES:
            speedup[mode] = (
                results["python"][mode]["median_microseconds_per_message"]
                / results["compiled"][mode]["median_microseconds_per_message"]
            )
    return {
        "benchmark": "decode",
        "messages": len(messages),
        "runs": runs,
        "batch": BATCH,
        "implementations": results,
        "speedup_at_median": speedup,
        "active_implementation": decoding.IMPLEMENTATION,
        "compiled_missing": missing,
        "mean_message_bytes": sum(map(len, messages)) / len(messages),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--stream",
        choices=["bench", "mix"],
        default="bench",
        help="the bench stream (default) or the old mix",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    messages = stream_messages(args.messages) if args.stream == "bench" else build_messages(args.messages)
    result = run(messages, args.runs)
    result["stream"] = args.stream
    print(
        f"decode, {result['messages']:,} {args.stream}-stream messages of {result['mean_message_bytes']:.0f} "
        f"bytes: us/message, median of {args.runs} runs (best)"
    )
    print(f"  {'':<10}{'events dropped':<28}events kept per batch of {BATCH}")
    for name, figures in result["implementations"].items():
        cells = []
        for mode in MODES:
            cell = (
                f"{figures[mode]['median_microseconds_per_message']:6.2f} "
                f"({figures[mode]['best_microseconds_per_message']:.2f})"
            )
            if name == "compiled":
                cell += f" {result['speedup_at_median'][mode]:.1f}x"
            cells.append(f"{cell:<28}")
        print(f"  {name:<10}{''.join(cells).rstrip()}")
    if result["compiled_missing"]:
        print(f"  compiled  not available ({result['compiled_missing']})")
    else:
        print(f"  the compiled fast path took {result['implementations']['compiled']['fast_path_share']:.1%}")
    print(f"dropcopy_client.decode is the {result['active_implementation']} implementation")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
