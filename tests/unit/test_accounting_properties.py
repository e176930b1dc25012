"""The accounting invariant under random interleavings of everything that moves a sequence number.

A model of CME (the stream: business and admin messages, replays, resets) and of the engine (QuickFIX as the
engine notes describe it, its silent steps over a number included) feeds the real journal writer
(:class:`~dropcopy_client._ingest.Ingest`) with a real journal and ledger. Hypothesis picks the order of
drops, reconnects, refusals given up, gap fills, resets, duplicates, silent engine steps and journal
failures. After every step:

* the ledger never calls a number something it is not (journaled = a business message CME sent at that
  number, admin and gap-filled = CME admin numbers, lost = declared with a cause by a reset, the engine's
  policy, or after repeated silent steps over it);
* nothing is journaled twice, and the journal's position is the end of an accounted run (no hole below it).

At the end faults stop, the journal heals, the engine resynchronises from the position and everything CME
holds arrives: every business message is then journaled exactly once unless it was declared lost, and nothing
up to CME's last number is unaccounted for.
"""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from dropcopy_client._decode import wrap_outer
from dropcopy_client._engine import ADMIN, APP, GAPFILL, LOST, NOTICE, RESET, Notice
from dropcopy_client._ingest import Ingest
from dropcopy_client._journal import Journal
from dropcopy_client._recovery import State
from dropcopy_client._recovery._ledger import audit_rows
from dropcopy_client._spec import SessionSpec
from dropcopy_client.auth import generate_key
from dropcopy_client.config import Endpoint, SessionEndpoints
from dropcopy_client.testing import ScriptedSession

NAME = "ABCDEFN:G"
T0 = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
_SRC = ScriptedSession()
_INNERS = [_SRC.order(qty=1, price="100").fill(1) for _ in range(200)]


@attrs.define
class Msg:
    kind: str  # "biz" or "adm"
    exec_index: int | None = None  # which inner message (a replay repeats an earlier one)
    replay: bool = False


class Cme:
    """The stream CME keeps for one session."""

    def __init__(self) -> None:
        self.messages: dict[int, Msg] = {}
        self.next_out = 1
        self.skipped: set[int] = set()  # numbers a SequenceReset-Reset jumped over: never sent
        self._inner = itertools.count()

    def emit(self, kind: str, *, replay_of: int | None = None) -> int:
        seq = self.next_out
        self.next_out += 1
        if kind == "biz":
            index = replay_of if replay_of is not None else next(self._inner) % len(_INNERS)
            self.messages[seq] = Msg("biz", index, replay_of is not None)
        else:
            self.messages[seq] = Msg("adm")
        return seq

    def raw(self, seq: int, *, poss_dup: bool) -> str:
        msg = self.messages[seq]
        assert msg.exec_index is not None
        frame = wrap_outer(
            _INNERS[msg.exec_index],
            seq_num=seq,
            target="ABCDEFN",
            segment="G",
            sending_time=T0,
            poss_dup=poss_dup,
            poss_resend=msg.replay,
            orig_sending_time=T0 if poss_dup else None,
        )
        return frame.decode("ascii")


class Engine:
    """QuickFIX as seen from the user's process: in-sequence delivery, gaps asked for, and its silent steps."""

    def __init__(self, cme: Cme) -> None:
        self.cme = cme
        self.expected = 1
        self.connected = True
        self.held = False
        self.out: list[tuple[Any, ...]] = []
        self.dropped: set[int] = set()  # live messages lost on the wire
        self.stepped: dict[int, int] = {}  # numbers the engine stepped over silently
        self.declared: set[int] = set()  # numbers the engine's policy gave up (LOST records)
        # what the writer asked for (the fake EngineProcess interface below)
        self.specs: list[SessionSpec] = []
        self.index = {NAME: 0}

    # -- the EngineProcess interface the writer calls
    def resync(self, name: str, next_expected: int, reason: str) -> None:
        self.expected = next_expected
        self.reconnect()

    def hold(self, name: str | None, reason: str) -> None:
        self.held = True
        self.connected = False

    def resume(self, name: str | None, reason: str = "") -> None:
        self.held = False
        self.reconnect()

    def new_week(self, name: str) -> None:
        raise AssertionError("no weekly reset in this model")

    # -- the engine's behaviour
    def reconnect(self) -> None:
        """Log on again: CME's Logon answer is a new admin number; the gap up to it is asked for."""
        if self.held:
            return
        self.connected = True
        ack = self.cme.emit("adm")
        if ack == self.expected:
            self._process(ack)
        else:
            self.out.append((ADMIN, 0, ack, time.time_ns(), "A", True, None))
            self._resend(self.expected, ack - 1)
            self.expected = max(self.expected, ack + 1)
        self.out.append((NOTICE, 0, Notice.LOGGED_ON, {"key_id": "K"}, time.time_ns()))

    def arrive(self, seq: int) -> None:
        if not self.connected or seq in self.dropped:
            return
        if seq == self.expected:
            self._process(seq)
        elif seq > self.expected:
            self._resend(self.expected, seq - 1)
            if seq >= self.expected:
                self._process(seq)

    def _process(self, seq: int, *, poss_dup: bool = False) -> None:
        msg = self.cme.messages[seq]
        now = time.time_ns()
        if msg.kind == "biz":
            self.out.append((APP, 0, seq, now, self.cme.raw(seq, poss_dup=poss_dup)))
        else:
            self.out.append((ADMIN, 0, seq, now, "0", False, None))
        self.expected = seq + 1

    def _resend(self, begin: int, end: int) -> None:
        """CME's answer to a ResendRequest: business messages again, admin numbers as GapFills."""
        seq = begin
        while seq <= end:
            msg = self.cme.messages.get(seq)
            if seq in self.cme.skipped or msg is None:
                seq += 1
                continue
            if msg.kind == "biz":
                self._process(seq, poss_dup=True)
                seq += 1
                continue
            stop = seq
            while stop + 1 <= end and (m := self.cme.messages.get(stop + 1)) is not None and m.kind == "adm":
                stop += 1
            self.out.append((GAPFILL, 0, seq, stop + 1, time.time_ns()))
            self.expected = stop + 1
            seq = stop + 1

    def step_over(self) -> None:
        """CME sends a Reject or Logout whose number QuickFIX does not check: it counts it as the next message,
        stepping over the number it expected (and nothing is delivered for either)."""
        seq = self.cme.emit("adm")
        if not self.connected:
            return
        if seq == self.expected:
            self._process(seq)
            return
        self.stepped[self.expected] = self.stepped.get(self.expected, 0) + 1
        self.expected += 1

    def reset(self, jump: int) -> None:
        """CME's SequenceReset-Reset: the numbers it jumps over will never be sent."""
        at = self.cme.emit("adm")
        new = self.cme.next_out + jump
        self.cme.skipped.update(range(self.cme.next_out, new))
        self.cme.next_out = new
        if self.connected:
            self.out.append((RESET, 0, at, new, time.time_ns()))
            self.expected = max(self.expected, new)
            # whatever is still missing below NewSeqNo will never be asked for: lost, with the reset as cause
            self.declared.update(range(1, new))

    def give_up(self, count: int) -> None:
        """The engine's policy gives numbers up (CME refused the request three times)."""
        last = min(self.expected + count - 1, self.cme.next_out - 1)
        if last < self.expected:
            return
        self.declared.update(range(self.expected, last + 1))
        self.out.append((LOST, 0, self.expected, last, time.time_ns(), "refused three times", None))
        self.expected = last + 1

    def take(self) -> list[tuple[Any, ...]]:
        out, self.out = self.out, []
        return out


Step = tuple[str, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("biz"), st.just(0)),
        st.tuples(st.just("adm"), st.just(0)),
        st.tuples(st.just("drop"), st.integers(1, 3)),
        st.tuples(st.just("replay"), st.integers(0, 50)),
        st.tuples(st.just("reconnect"), st.just(0)),
        st.tuples(st.just("step_over"), st.just(0)),
        st.tuples(st.just("drop_step_over"), st.integers(1, 3)),
        st.tuples(st.just("reset"), st.integers(1, 4)),
        st.tuples(st.just("give_up"), st.integers(1, 3)),
        st.tuples(st.just("disk_full"), st.just(0)),
        st.tuples(st.just("disk_back"), st.just(0)),
    ),
    min_size=1,
    max_size=40,
)


class World:
    def __init__(self, tmp: Path) -> None:
        self.cme = Cme()
        self.engine = Engine(self.cme)
        key = generate_key("ABC", created=T0.date(), expires=T0.date() + dt.timedelta(days=300))
        spec = SessionSpec(
            "g", "cgw", "ABCDEFN", "G", SessionEndpoints(Endpoint("127.0.0.1", 1)), "OPS1", "US", 30, key
        )
        self.engine.specs = [spec]
        self.journal = Journal(tmp / "journal.sqlite", checkpoint="inline")
        self.ingest = Ingest.standalone(self.journal, {NAME: "g"}, self.engine)
        self.ledger = self.ingest.ledger
        self.full = False

    def run(self, step: Step) -> None:
        what, n = step
        engine, cme = self.engine, self.cme
        if what in ("biz", "adm"):
            engine.arrive(cme.emit(what))
        elif what == "drop":
            for _ in range(n):
                seq = cme.emit("biz")
                engine.dropped.add(seq)
        elif what == "replay":
            originals = [m.exec_index for m in cme.messages.values() if m.kind == "biz" and not m.replay]
            if originals:
                engine.arrive(cme.emit("biz", replay_of=originals[n % len(originals)]))
        elif what == "reconnect":
            if not engine.held:
                engine.reconnect()
        elif what == "step_over":
            engine.step_over()
        elif what == "drop_step_over":  # a Reject counted as next while the dropped messages are missing
            for _ in range(n):
                engine.dropped.add(cme.emit("biz"))
            engine.step_over()
        elif what == "reset":
            engine.reset(n)
        elif what == "give_up":
            engine.give_up(n)
        elif what == "disk_full" and not self.full:
            self.journal.set_max_pages(self.journal.page_count())
            self.full = True
        elif what == "disk_back" and self.full:
            self.journal.set_max_pages(2**30)
            self.full = False
        self.flush()

    def flush(self) -> None:
        for _ in range(20):  # the writer's commands make the engine produce more records
            records = self.engine.take()
            if self.ingest.degraded is not None and not self.full:
                self.ingest._retry_at = 0.0
                self.ingest._probe()
                records += self.engine.take()
            if not records and not self.ingest._pending_lost:
                return
            self.ingest.process(records)
            if self.ingest.degraded is not None:
                self.engine.take()  # held: what comes meanwhile is dropped by the writer and asked again

    def heal(self) -> None:
        """No more faults: space comes back and CME goes on sending. The engine asks only from its own expected
        number, as QuickFIX does: whatever it stepped over comes back only if the writer asks for it."""
        if self.full:
            self.journal.set_max_pages(2**30)
            self.full = False
        self.flush()
        self.engine.dropped.clear()
        for _ in range(6):
            if self.engine.held or not self.engine.connected:
                self.flush()
            self.engine.arrive(self.cme.emit("adm"))  # a heartbeat: in sequence, so a hole below shows
            self.flush()
            if not self.ledger.session(NAME).holes(self.cme.next_out - 1):
                break

    # ------------------------------------------------------------------------------------------ checks
    def check(self) -> None:
        sl = self.ledger.session(NAME)
        rows = self.journal.ledger_rows(NAME, 0)
        journaled = {r.seq: r.exec_id for r in self.journal.iter_messages(session=NAME)}
        exec_ids = [x for x in journaled.values() if x]
        assert len(exec_ids) == len(set(exec_ids)), "a fill journaled twice"
        allowed_lost = self.cme.skipped | self.engine.declared | set(self.engine.stepped)
        seen_ids: set[str] = set()
        for row in sorted(rows, key=lambda r: r.begin):
            for seq in range(row.begin, row.end + 1):
                msg = self.cme.messages.get(seq)
                if row.state is State.JOURNALED:
                    assert msg is not None and msg.kind == "biz", f"{seq} journaled but CME sent {msg}"
                    assert seq in journaled
                elif row.state is State.DUPLICATE:
                    assert msg is not None and msg.kind == "biz"
                elif row.state in (State.ADMIN, State.GAP_FILLED):
                    assert msg is not None and msg.kind == "adm", f"{seq} {row.state} but CME sent {msg}"
                elif row.state is State.LOST:
                    assert seq in allowed_lost, f"{seq} declared lost without a reason ({row.cause})"
                    assert row.cause
        del seen_ids
        # the position never passes a hole, in memory or on disk
        stored = self.journal.sessions().get(NAME)
        if stored is not None:
            assert stored.last_seq == sl.position
            assert not [h for h in audit_rows(rows) if h.state == "unaccounted" and h.end <= stored.last_seq]

    def check_complete(self) -> None:
        rows = self.journal.ledger_rows(NAME, 0)
        last = self.cme.next_out - 1
        holes = [r for r in audit_rows(rows, highest_seen=last) if r.state == "unaccounted"]
        assert not holes, f"unaccounted after healing: {holes}"
        journaled_ids = {r.exec_id for r in self.journal.iter_messages(session=NAME)}
        allowed_lost = self.cme.skipped | self.engine.declared | set(self.engine.stepped)
        lost = {n for r in rows if r.state is State.LOST for n in range(r.begin, r.end + 1)}
        for seq, msg in self.cme.messages.items():
            if msg.kind != "biz" or seq in lost:
                continue
            assert msg.exec_index is not None
            exec_id = dict(_fields(_INNERS[msg.exec_index]))[17]
            assert exec_id in journaled_ids, f"fill {exec_id} at {seq} never journaled"
        assert lost <= allowed_lost


def _fields(inner: bytes) -> list[tuple[int, str]]:
    from dropcopy_client._wire import parse_frame

    return [(tag, value.decode()) for tag, value in parse_frame(inner)]


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps)
def test_every_number_is_accounted_for_after_every_step_and_nothing_is_lost_in_the_end(
    plan: list[Step],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        try:
            world.engine.reconnect()
            world.flush()
            for step in plan:
                world.run(step)
                world.check()
            world.heal()
            world.check()
            world.check_complete()
        finally:
            world.journal.close()
