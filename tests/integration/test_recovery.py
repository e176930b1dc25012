"""Gap recovery against the simulator: CME's cap, one request in flight, refusals, the 48-hour window."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dropcopy_client import DropCopyClient, ExecutionReport, Fill
from dropcopy_client._recovery import (
    DuplicateIgnored,
    GapDetected,
    GapFilled,
    ResendRequested,
    UnrecoverableGap,
)
from dropcopy_client._wire import parse_frame
from dropcopy_client.auth import ApiKey
from dropcopy_client.testing import BUY, ESZ6, SELL, ScriptedSession, SimSession, Simulator
from tests.integration.conftest import SESSION, Collector, config_for

pytestmark = pytest.mark.integration


def fills(count: int, src: ScriptedSession | None = None) -> list[bytes]:
    src = src or ScriptedSession()
    return [
        src.order(ESZ6, account="ACCT1", side=BUY if i % 2 else SELL, qty=1, price="4500").fill(1)
        for i in range(count)
    ]


def exec_ids(inners: list[bytes]) -> list[str]:
    return [dict(parse_frame(inner))[17].decode() for inner in inners]


def resend_requests(sim: Simulator, session: SimSession = SESSION) -> list[tuple[int, int]]:
    out = []
    for raw in sim.received(session, "2"):
        fields = dict(parse_frame(raw))
        out.append((int(fields[7]), int(fields[16])))
    return out


def test_a_10000_message_gap_is_recovered_in_capped_serial_requests(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    seen = Collector(client)
    client.start(wait=15)
    missing = fills(10_000)
    live = fills(1, ScriptedSession(sender_comp_id="M2L001N", exec_id_prefix=99001))
    sim.drop_next(SESSION, len(missing))
    gap = sim.send_many(SESSION, missing)
    sim.send_many(SESSION, live)

    got = seen.wait_count(Fill, 10_001, timeout=90)
    assert [f.exec_id for f in got] == exec_ids(missing) + exec_ids(live)
    assert [f.delivery.seq_num for f in got[:-1]] == list(gap)
    assert all(f.delivery.poss_dup for f in got[:-1]) and not got[-1].delivery.poss_dup
    requests = resend_requests(sim)
    assert len(requests) >= 4
    assert all(end - begin + 1 <= 2500 for begin, end in requests)
    assert requests[0][0] == gap.start
    covered = sorted(n for begin, end in requests for n in range(begin, end + 1))
    assert covered == list(gap)  # each missing number asked exactly once: serial, no overlap
    assert not [r for r in sim.rejections(SESSION)]
    assert seen.of(GapDetected) and seen.of(GapFilled)
    assert [(e.begin, e.end) for e in seen.of(ResendRequested)] == requests
    assert client.status()[0].open_gaps == ()
    assert not client.is_uncertain(SESSION.sender_comp_id + ":G")


def test_a_gap_that_opens_during_a_resend_is_recovered_too(
    make_client: Callable[..., DropCopyClient], key: ApiKey, tmp_path: Path
) -> None:
    with Simulator([key], sessions=[SESSION], resend_delay=0.5) as slow:
        client = DropCopyClient(config_for(slow, tmp_path / "keys.txt", tmp_path / "data"))
        try:
            seen = Collector(client)
            client.start(wait=15)
            first = fills(3000)
            slow.drop_next(SESSION, len(first))
            slow.send_many(SESSION, first)
            live = fills(5, ScriptedSession(sender_comp_id="M2L001N", exec_id_prefix=99001))
            slow.send_many(SESSION, live[:1])  # opens the first gap; the resend is slow to answer
            slow.drop_next(SESSION, 2)
            slow.send_many(SESSION, live[1:3])  # a second gap while the first resend is in flight
            slow.send_many(SESSION, live[3:])
            got = seen.wait_count(Fill, 3005, timeout=90)
            assert sorted(f.exec_id for f in got) == sorted(exec_ids(first + live))
            assert len({f.exec_id for f in got}) == 3005
            seqs = [f.delivery.seq_num for f in got]
            assert seqs == sorted(seqs)
            assert all(end - begin + 1 <= 2500 for begin, end in resend_requests(slow))
            assert not [r for r in slow.rejections(SESSION) if "resend" in r.text.lower()]
        finally:
            client.stop()


def test_a_resend_answered_with_gap_fills_only(
    make_client: Callable[..., DropCopyClient], sim: Simulator
) -> None:
    client = make_client()
    seen = Collector(client)
    client.start(wait=15)
    sim.jump_sequence(SESSION, 500)  # numbers never used for business messages: answered by a GapFill
    live = fills(1)
    seq = sim.send_many(SESSION, live).start
    got = seen.wait_count(Fill, 1)
    assert got[0].delivery.seq_num == seq
    filled = seen.wait_count(GapFilled, 1)
    assert filled[0].end == seq - 1
    assert len(resend_requests(sim)) == 1


@pytest.mark.parametrize("how", ["reject", "logout"])
def test_a_refused_resend_is_retried_and_nothing_is_skipped(
    make_client: Callable[..., DropCopyClient], sim: Simulator, how: str
) -> None:
    client = make_client()
    seen = Collector(client)
    client.start(wait=15)
    sim.reject_next_resend(SESSION, how=how)  # type: ignore[arg-type]
    missing = fills(5)
    sim.drop_next(SESSION, 5)
    sim.send_many(SESSION, missing)
    live = fills(1, ScriptedSession(sender_comp_id="M2L001N", exec_id_prefix=99001))
    sim.send_many(SESSION, live)
    got = seen.wait_count(Fill, 6, timeout=40)
    assert [f.exec_id for f in got] == exec_ids(missing) + exec_ids(live)
    assert not seen.of(UnrecoverableGap)
    assert len(resend_requests(sim)) >= 2  # the refused request and its retry


def test_a_request_beyond_the_resend_window_becomes_an_unrecoverable_gap(
    key: ApiKey, key_file: Path, tmp_path: Path
) -> None:
    with Simulator([key], sessions=[SESSION], resend_window=dt.timedelta(seconds=1)) as sim:
        client = DropCopyClient(config_for(sim, key_file, tmp_path / "data"))
        try:
            seen = Collector(client)
            client.start(wait=15)
            old = fills(10)
            sim.drop_next(SESSION, 10)
            lost = sim.send_many(SESSION, old)
            time.sleep(1.5)  # the dropped messages age past the window
            live = fills(2, ScriptedSession(sender_comp_id="M2L001N", exec_id_prefix=99001))
            sim.send_many(SESSION, live)
            gaps = seen.wait_count(UnrecoverableGap, 1, timeout=40)
            assert (gaps[0].begin, gaps[0].end) == (lost.start, lost.stop - 1)
            got = seen.wait_count(Fill, 2, timeout=20)
            assert [f.exec_id for f in got] == exec_ids(live)
            assert client.journal is not None
            # the position passed the range declared lost and the live fills after it
            position = client.journal.last_seq(SESSION.sender_comp_id + ":G")
            assert position is not None and position >= got[-1].delivery.seq_num
        finally:
            client.stop()


def test_the_same_fills_through_two_groups_are_applied_once(
    key: ApiKey, tmp_path: Path, today: dt.date
) -> None:
    from dropcopy_client.auth import generate_key, write_key_file
    from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target

    other = generate_key("XYZ", created=today - dt.timedelta(days=1), expires=today + dt.timedelta(days=100))
    second = SimSession("XYZDEFN")
    keys = tmp_path / "two-keys.txt"
    write_key_file(keys, [key, other])
    with Simulator([key, other], sessions=[SESSION, second]) as sim:
        config = ClientConfig(
            groups=tuple(
                GroupConfig(
                    name=name,
                    operator="OPS1",
                    targets=(cgw_target(s.sender_comp_id, "{}:{}".format(*sim.endpoint(s))),),
                    key_file=keys,
                )
                for name, s in (("clearing", SESSION), ("risk", second))
            ),
            data_dir=tmp_path / "data",
            reconnect_interval=1,
        )
        client = DropCopyClient(config)
        try:
            seen = Collector(client)
            client.start(wait=15)
            src = ScriptedSession()
            order = src.order(ESZ6, account="ACCT1", side=BUY, qty=5, price="4500")
            inners = [order.ack(), order.fill(2), order.fill(3)]
            sim.send_many(SESSION, inners)
            sim.send_many(second, inners)
            dups = seen.wait_count(DuplicateIgnored, 3)
            # Each of the three messages is applied once, from whichever group's copy arrived first (the two
            # sessions interleave freely); the other copy of each is a duplicate, recognised by ExecID.
            applied = {e.exec_id: e.delivery.session for e in seen.of(ExecutionReport)}
            assert len(seen.of(ExecutionReport)) == 3 and len(applied) == 3
            assert len(seen.of(Fill)) == 2
            assert sorted(d.exec_id or "" for d in dups) == sorted(applied)
            assert all(applied[d.exec_id or ""] != d.session for d in dups)
            assert all(d.event is not None and d.dedupe_key.startswith("E:") for d in dups)
            position = client.book.position("ACCT1", str(ESZ6.security_id))
            assert position is not None and position.net_qty == 5 and position.fill_count == 2
            assert sum(s.duplicates for s in client.status()) == 3
        finally:
            client.stop()


def test_stop_waits_for_a_resend_in_flight_to_be_answered_before_it_logs_out(
    key: ApiKey, key_file: Path, tmp_path: Path
) -> None:
    """CME asks clients to wait for an in-flight resend to complete before logging out (spec §2.4): the Logout
    must reach CME only after the last frame of its resend answer was written."""
    with Simulator([key], sessions=[SESSION], resend_delay=2.0, record_wire=True) as slow:
        client = DropCopyClient(config_for(slow, key_file, tmp_path / "data"))
        try:
            seen = Collector(client)
            client.start(wait=15)
            missing = fills(3)
            live = fills(1, ScriptedSession(sender_comp_id="M2L001N", exec_id_prefix=99001))
            slow.drop_next(SESSION, len(missing))
            gap = slow.send_many(SESSION, missing)
            last = slow.send_many(SESSION, live)[
                -1
            ]  # the client sees the gap and asks for it; the answer is slow
            assert slow.wait_for(lambda: bool(resend_requests(slow)), 15)
            client.stop()  # returns once every session is logged out
            wire = slow.transcript(SESSION)
            resent = [i for i, f in enumerate(wire) if f.direction == "out" and f.seq in gap]
            logouts = [i for i, f in enumerate(wire) if f.direction == "in" and f.msg_type == "5"]
            assert len(resent) == len(gap), "the resend answer was written in full"
            assert logouts, "the client logged out"
            assert logouts[0] > max(resent), "the Logout went out while the resend was still being answered"
            # and the client had processed the whole answer when it logged out (369 = last number processed)
            assert int(dict(parse_frame(wire[logouts[0]].raw))[369]) >= last
            request = next(i for i, f in enumerate(wire) if f.direction == "in" and f.msg_type == "2")
            assert all(
                f.msg_type in ("0", "1") for f in wire[request + 1 : min(resent)] if f.direction == "in"
            )
            got = seen.of(Fill)
            assert [f.exec_id for f in got] == exec_ids(missing) + exec_ids(live)  # nothing left behind
        finally:
            client.stop()
