"""Run the benchmark suite: ``python -m bench`` (full, the published numbers) or ``python -m bench --quick``.

Every measurement starts its own processes (sender, receiver, simulator) on 127.0.0.1, writes
``bench/results/<name>.json``, and the headline table is printed at the end and written to
``bench/results/summary.json``. ``--only`` picks measurements.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import book, breakdown, footprint, latency, recovery, sinks, startup, throughput
from bench._common import RESULTS, OtherLoad, machine, write_json

MEASUREMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "throughput": throughput.run,
    "latency": latency.run,
    "recovery": recovery.run,
    "footprint": footprint.run,
    "startup": startup.run,
    "breakdown": breakdown.run,
    "book": book.run,
    "sinks": sinks.run,
}
DEFAULT = ("startup", "throughput", "latency", "recovery", "breakdown", "footprint", "sinks", "book")
QUICK_DEFAULT = ("startup", "throughput", "latency", "recovery", "footprint", "sinks", "book")

#: the targets of the throughput issue (docs/performance.md); ratios are measured side by side in one run
GOALS = {
    "throughput": "SDK >= 0.5x bare baseline (stretch 0.8x)",
    "latency": "p99 < 1 ms at 5,000 msg/s",
    "recovery": "gap recovered in <= 1.5x its live time",
    "footprint": "RSS growth < 50 MB per 5 million messages, no GC pause > 50 ms",
    "replay": ">= 5x live throughput",
    "startup": "full group logged on < 2 s",
    "book": "book path <= 5 us/message",
    "book_load": "rebuild >= 250,000 rows/s",
    "book_rss": "no per-fill memory (< 10 B/fill)",
}


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)


def _us(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1000:,.1f} ms" if value >= 1000 else f"{value:,.0f} us"


def headline(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(measure, figure, goal, verdict) rows for every measurement that ran."""
    rows: list[tuple[str, str, str, str]] = []
    tp = results.get("throughput")
    if tp:
        base, sdk = tp["baseline"]["messages_per_second"], tp["sdk"]["messages_per_second"]
        ratio = tp["ratio_sdk_to_baseline"]
        rows += [
            ("throughput, bare QuickFIX baseline", f"{_fmt(base)} msg/s", "", ""),
            ("throughput, full SDK path", f"{_fmt(sdk)} msg/s", "", ""),
            ("throughput ratio SDK / baseline", f"{ratio:.2f}x", GOALS["throughput"], _met(ratio >= 0.5)),
            ("sender alone (to a sink)", f"{_fmt(tp['sender_alone']['messages_per_second'])} msg/s", "", ""),
        ]
    lat = results.get("latency")
    if lat:
        for run in lat["runs"]:
            pct = run["latency"]
            figure = f"p50 {_us(pct.get('p50_us'))} / p99 {_us(pct.get('p99_us'))} / p99.9 {_us(pct.get('p999_us'))}"
            goal = verdict = ""
            if run["receiver"] == "sdk" and run["offered_rate"] == 5_000:
                goal, verdict = GOALS["latency"], _met(pct.get("p99_us", 1e12) < 1000)
            rows.append((f"latency {run['receiver']} @ {run['offered_rate']:,} msg/s", figure, goal, verdict))
    rec = results.get("recovery")
    if rec:
        seconds = rec["seconds_gap_seen_to_last_handled"]
        live = rec.get("live", {})
        ratio_rl = rec.get("ratio_recovery_to_live")
        rows += [
            (
                f"recovery of a {rec['gap']:,}-message gap",
                f"{seconds:.1f} s ({_fmt(rec['messages_per_second'])} msg/s)",
                "",
                "",
            ),
            (
                "  the same messages live",
                f"{live.get('seconds_first_sent_to_last_handled', float('nan')):.1f} s "
                f"({_fmt(live.get('messages_per_second'))} msg/s)",
                "",
                "",
            ),
            (
                "  ratio recovery / live",
                "n/a" if ratio_rl is None else f"{ratio_rl:.2f}x",
                GOALS["recovery"],
                "" if ratio_rl is None else _met(ratio_rl <= 1.5),
            ),
            (
                "  ResendRequests (largest)",
                f"{rec['resend_requests']} ({_fmt(rec['largest_request'])} messages)",
                "",
                "",
            ),
        ]
    fp = results.get("footprint")
    if fp:
        per_million = fp["rss_growth_mb_per_million"]
        # the verdict is the slope once the first 10% have warmed the caches (SQLite's page caches, the stream
        # tail, the allocator's arenas): say how much of the total growth that warm-up was, and whether the
        # settled slope is flat over the run
        warm_up = fp.get("rss_warm_up_mb", 0.0)
        # on the goal's own basis (per 5 million messages), so the label and the verdict cannot disagree
        trend = "flat after warm-up" if abs(per_million) * 5 < 10 else "still growing"
        rows += [
            (
                f"RSS growth over {fp['messages']:,} messages",
                f"{fp['rss_growth_mb']:,.0f} MB ({warm_up:,.0f} MB in the first 10%; then "
                f"{per_million:,.1f} MB/million, {trend})",
                GOALS["footprint"],
                _met(per_million * 5 < 50),
            ),
            (
                "  position book per fill (tracemalloc)",
                f"{_fmt(fp['book_cost'].get('bytes_per_fill'))} B/fill, "
                f"{_fmt(fp['book_cost'].get('bytes_per_message'))} B/message",
                "",
                "",
            ),
            ("  largest gen-2 GC pause", f"{fp['gc_gen2'].get('max_seconds', 0) * 1000:,.0f} ms", "", ""),
            ("journal size", f"{fp['journal_mb_per_million']:,.0f} MB per million messages", "", ""),
        ]
        rp = fp.get("replay")
        live_rate = (tp or {}).get("sdk", {}).get("messages_per_second") or fp.get("messages_per_second")
        if rp:
            full = rp["read+decode+apply"]["messages_per_second"]
            rows.append(
                (
                    "replay: read + decode + book",
                    f"{_fmt(full)} msg/s (read only {_fmt(rp['read']['messages_per_second'])}, "
                    f"+decode {_fmt(rp['read+decode']['messages_per_second'])})",
                    "",
                    "",
                )
            )
            bt = rp.get("book_tables")
            if bt:
                fast = bt["messages_per_second"]
                rows.append(
                    (
                        f"replay_journal from the book's rows ({bt['messages']:,} messages)",
                        f"{_fmt(fast)} msg/s ({bt['seconds']:.1f} s"
                        + (f", {fast / live_rate:.1f}x live)" if live_rate else ")"),
                        GOALS["replay"],
                        _met(fast >= 5 * live_rate) if live_rate else "",
                    )
                )
        rows.append(
            ("sustained SDK rate during footprint", f"{_fmt(fp['messages_per_second'])} msg/s", "", "")
        )
    st = results.get("startup")
    if st:
        seconds = st["seconds_to_all_logged_on_median"]
        rows.append(
            (
                f"start-up, {st['sessions']} sessions logged on",
                f"{seconds * 1000:,.0f} ms (median of {st['repeats']})",
                GOALS["startup"],
                _met(seconds < 2),
            )
        )
    bd = results.get("breakdown")
    if bd:
        stages = bd["dispatcher_us_per_message"]
        rows.append(
            (
                "writer alone (decode+account+journal+book)",
                f"{stages['writer: decode + account + journal + book (batches of 512)']:.0f} us/msg "
                f"(decode {next(v for k, v in stages.items() if k.startswith('decode (')):.1f} us)",
                "",
                "",
            )
        )
    sk = results.get("sinks")
    if sk:
        for row in sk["postgres"]:
            if row["method"] != "copy-text":
                rows.append(
                    (
                        f"PostgreSQL sink, {row['method']}, batches of {row['batch_size']:,}",
                        f"{_fmt(row['rows_per_second'])} rows/s",
                        "",
                        "",
                    )
                )
        for row in sk["jsonl"]:
            rows.append(
                (
                    f"JSON Lines sink, batches of {row['batch_size']:,}",
                    f"{_fmt(row['rows_per_second'])} rows/s",
                    "",
                    "",
                )
            )
    bk = results.get("book")
    if bk:
        load = bk["load"]
        rows += [
            (
                f"position book path, SqliteFillHistory ({bk['fills']:,} fills)",
                f"{bk['book_us_per_message_median']:.1f} us/message (apply {bk['apply_us_per_message_median']:.1f}"
                f" + flush {bk['flush_us_per_message_median']:.1f})",
                GOALS["book"],
                _met(bk["book_us_per_message_median"] <= 5),
            ),
            (
                "  book RSS growth per fill (second half)",
                f"{bk['rss_bytes_per_fill_second_half']:.1f} B/fill ({bk['rss_bytes_per_fill']:.1f} overall)",
                GOALS["book_rss"],
                _met(bk["rss_bytes_per_fill_second_half"] < 10),
            ),
            (
                "  PositionBook.load() from the book tables",
                f"{load['rows_per_second']:,.0f} rows/s (same as live: {load['same_as_live']})",
                GOALS["book_load"],
                _met(load["rows_per_second"] >= 250_000 and load["same_as_live"]),
            ),
            ("  largest GC pause while applying", f"{bk['gc_max_pause_ms']:.1f} ms", "", ""),
        ]
    return rows


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(4)] if rows else [0] * 4
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI-like check, ~2 minutes)")
    parser.add_argument(
        "--only",
        help=f"comma-separated measurements (default: {','.join(DEFAULT)}; with --quick without breakdown)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory for the JSON results")
    parser.add_argument("--footprint-messages", type=int, help="messages for the footprint run")
    parser.add_argument("--book-fills", type=int, help="fills for the position book run")
    args = parser.parse_args(argv)
    only = args.only or ",".join(QUICK_DEFAULT if args.quick else DEFAULT)
    chosen = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown measurement(s): {', '.join(unknown)}")
    mode = "quick" if args.quick else "full"
    info = machine()
    print(
        f"bench ({mode}): {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"quickfix {info['quickfix']}; load {info['loadavg_at_start']}"
    )
    for busy in info["busy_processes_at_start"]:
        print(f"  busy at start: {busy}")
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for name in chosen:
        print(f"-- {name} ...", flush=True)
        load = OtherLoad()
        began = time.monotonic()
        overrides: dict[str, Any] = {}
        if name == "footprint" and args.footprint_messages:
            overrides["count"] = args.footprint_messages
        if name == "book" and args.book_fills:
            overrides["fills"] = args.book_fills
        try:
            result = MEASUREMENTS[name](args.quick, **overrides)
        except Exception as exc:  # one failing measurement must not hide the others
            print(f"   {name} FAILED: {type(exc).__name__}: {str(exc)[:2000]}", file=sys.stderr)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["mode"] = mode
        result["wall_seconds"] = round(time.monotonic() - began, 1)
        result["other_load_cores"] = load.cores()
        result["steal_cores"] = load.steal_cores()
        write_json(name, result, args.results)
        if "error" not in result:
            results[name] = result
        print(
            f"   {name}: {result['wall_seconds']} s, other load {result['other_load_cores']} cores "
            f"(of which steal {result['steal_cores']})",
            flush=True,
        )
    rows = headline(results)
    summary = {
        "mode": mode,
        "machine": info,
        "total_seconds": round(time.monotonic() - started, 1),
        "other_load_cores": {name: r.get("other_load_cores") for name, r in results.items()},
        "steal_cores": {name: r.get("steal_cores") for name, r in results.items()},
        "table": [dict(zip(("measure", "figure", "goal", "verdict"), row, strict=True)) for row in rows],
    }
    # A subset run (--only) must not overwrite the table of the last complete run.
    default = set(chosen) == set(QUICK_DEFAULT if args.quick else DEFAULT)
    path = write_json("summary" if default else "summary-" + "-".join(chosen), summary, args.results)
    print()
    print_table([("measure", "figure", "goal", "verdict"), *rows])
    print(f"\ntotal {summary['total_seconds']} s; results in {path.parent}")
    return 0 if len(results) == len(chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
