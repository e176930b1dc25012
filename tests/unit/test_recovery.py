"""The resend policy: direct scenarios, and a model of QuickFIX 1.16 + CME driven by Hypothesis.

The model (``World``) reproduces the engine behaviour the policy must live with (engine notes §3): the
expected number advances after the callback, too-high messages are queued and drained after every message,
QuickFIX sends its own ``7=expected 16=0`` when its range is closed, the range closes on the first in-sequence
message at or past its end, a Reject or Logout is counted as the next message whatever its number, and a
disconnect drops the queue and the range. CME answers one request at a time with resent business messages and
gap fills of random lengths, or refuses with a Reject or a Logout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropcopy_client._recovery import (
    CME_RESEND_CAP,
    Action,
    DuplicateIgnored,
    GapDetected,
    GapFilled,
    ResendPolicy,
    ResendRequested,
    ResendRewrite,
    RetryAfter,
    RewindTo,
    SendResend,
    SkipTo,
    UnrecoverableGap,
)

T0 = dt.datetime(2026, 1, 6, 14, 30, tzinfo=dt.UTC)
S = "ABCDEFN:G"


def policy(**kwargs: object) -> ResendPolicy:
    return ResendPolicy(S, clock=lambda: T0, **kwargs)  # type: ignore[arg-type]


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


# ============================================================================================ the model
@dataclasses.dataclass
class Msg:
    seq: int
    kind: str  # app | admin | gapfill | reject | logout | logon
    new_seq: int = 0
    poss_dup: bool = False


class World:
    """QuickFIX (initiator) + the adapter's glue + CME, all in one deterministic loop."""

    def __init__(
        self,
        pol: ResendPolicy,
        *,
        cap: int,
        rng: random.Random | None = None,
        admin_p: float = 0.3,
        reject_p: float = 0.0,
        logout_p: float = 0.0,
        split_p: float = 0.0,
        extend_p: float = 0.0,
    ) -> None:
        self.policy = pol
        self.cap = cap
        self.rng = rng or random.Random(0)
        self.admin_p = admin_p
        self.reject_p = reject_p
        self.logout_p = logout_p
        self.split_p = split_p
        self.extend_p = extend_p
        # CME
        self.kinds: list[str] = []  # kind of CME message n is kinds[n - 1]: "app" or "admin"
        self.request: list[object] | None = None  # [next to answer, end, outcome]
        self.refusals = 0  # Rejects owed for requests that arrived while one was in progress
        # engine
        self.expected = 1
        self.queue: dict[int, Msg] = {}
        self.range: tuple[int, int] | None = None
        self.connected = False
        # what happened
        self.requests: list[ResendRewrite] = []
        self.overlaps = 0
        self.consumed: set[int] = set()
        self.delivered_app: set[int] = set()
        self.unrecoverable: list[tuple[int, int]] = []
        self.events: list[object] = []
        self.poke = False
        self.in_flight_max = 0
        self._deferred: list[RewindTo | SkipTo] = []  # corrections asked for inside a SequenceReset callback

    # ---------------------------------------------------------------------------------------- CME side
    @property
    def last(self) -> int:
        return len(self.kinds)

    def new(self, kind: str) -> int:
        self.kinds.append(kind)
        return len(self.kinds)

    def live(self, kind: str | None = None, *, lose: bool = False) -> None:
        if kind is None:
            kind = "admin" if self.rng.random() < self.admin_p else "app"
        seq = self.new(kind)
        if self.connected and not lose:
            self.deliver(Msg(seq, kind))

    def burst(self, n: int) -> None:
        """CME sends ``n`` messages the client never sees (it is disconnected, or they are lost)."""
        for _ in range(n):
            self.new("admin" if self.rng.random() < self.admin_p else "app")

    def cme_step(self) -> bool:
        if not self.connected:
            return False
        if self.refusals:
            self.refusals -= 1
            self.deliver(Msg(self.new("admin"), "reject"))
            return True
        if self.request is None:
            return False
        pos, end, outcome = self.request
        assert isinstance(pos, int) and isinstance(end, int)
        if outcome in ("reject", "logout"):
            self.request = None
            self.deliver(Msg(self.new("admin"), str(outcome)))
            return True
        last = min(end, self.last)
        if self.kinds[pos - 1] == "app":
            piece, following = Msg(pos, "app", poss_dup=True), pos + 1
        else:
            stop = pos
            while stop + 1 <= last and self.kinds[stop] != "app":
                stop += 1
            if stop == last and self.rng.random() < self.extend_p:  # NewSeqNo jumps past the chunk end
                while stop + 1 <= self.last and self.kinds[stop] != "app":
                    stop += 1
            if stop > pos and self.rng.random() < self.split_p:
                stop = self.rng.randint(pos, stop)
            piece, following = Msg(pos, "gapfill", new_seq=stop + 1, poss_dup=True), stop + 1
        if following > last:
            self.request = None  # CME is done with the request once the last piece is on the wire
        else:
            self.request = [following, end, outcome]
        self.deliver(piece)
        return True

    def cme_receive(self, rw: ResendRewrite) -> None:
        assert rw.begin <= rw.end, rw
        assert rw.end - rw.begin + 1 <= self.cap, rw
        assert rw.end != 0
        self.requests.append(rw)
        self.events.append(rw.event)
        if self.request is not None:
            self.overlaps += 1  # CME refuses a second request while one is in progress, and goes on
            self.refusals += 1
            return
        draw = self.rng.random()
        outcome = (
            "reject"
            if draw < self.reject_p
            else "logout"
            if draw < self.reject_p + self.logout_p
            else "answer"
        )
        self.request = [rw.begin, rw.end, outcome]

    # ---------------------------------------------------------------------------------------- engine side
    def apply(self, actions: list[Action], where: str) -> None:
        """The adapter acting on the policy's actions. ``where``: callback (engine adds 1 after), direct."""
        for action in actions:
            if isinstance(action, RewindTo | SkipTo):
                if where == "callback":
                    self.expected = action.seq - 1
                elif where == "gapfill":
                    self._deferred.append(action)
                else:
                    self.expected = action.seq
            elif isinstance(action, SendResend):
                rw = self.policy.on_resend_out(action.begin, action.end, T0)
                assert (rw.begin, rw.end, rw.rewind_to, rw.duplicate) == (
                    action.begin,
                    action.end,
                    None,
                    False,
                )
                self.cme_receive(rw)
            elif isinstance(action, RetryAfter):
                assert action.seconds >= 0
                self.poke = True
            else:
                self.events.append(action)
                if isinstance(action, UnrecoverableGap):
                    self.unrecoverable.append((action.begin, action.end))

    def engine_request(self, trigger: int) -> None:
        begin = self.expected
        rw = self.policy.on_resend_out(begin, 0, T0)
        if rw.rewind_to is not None:
            self.expected = rw.rewind_to
        self.cme_receive(rw)
        self.range = (begin, trigger - 1)

    def deliver(self, msg: Msg) -> None:
        if self.connected:
            self.next_msg(msg, queued=False)
        in_flight = self.policy.snapshot().in_flight
        if in_flight is not None:
            self.in_flight_max = max(self.in_flight_max, in_flight[1] - in_flight[0] + 1)

    def next_msg(self, msg: Msg, *, queued: bool) -> None:
        if msg.kind == "logout":
            if self.policy.snapshot().in_flight is not None:
                self.apply(self.policy.on_resend_rejected(T0, "logout", "resend refused"), "callback")
            if msg.seq == self.expected:
                self.consumed.add(msg.seq)
            self.expected += 1
            self.disconnect()
            return
        if msg.kind == "reject":  # no too-high check (engine notes §3.1)
            if self.range is not None and msg.seq >= self.range[1]:
                self.range = None
            self.apply(self.policy.on_resend_rejected(T0, "reject", "resend in progress"), "callback")
            if msg.seq == self.expected:
                self.consumed.add(msg.seq)
            self.expected += 1
            if not queued:
                self.next_queued()
            return
        if msg.seq > self.expected:
            self.apply(self.policy.on_gap_detected(self.expected, msg.seq, T0), "direct")
            self.queue[msg.seq] = msg
            if self.range is None or msg.seq < self.range[0]:
                self.engine_request(msg.seq)
            if not queued:
                self.next_queued()
            return
        if msg.seq < self.expected:
            assert msg.poss_dup, f"CME never sends {msg.seq} below {self.expected} without 43=Y"
            if not queued:
                self.next_queued()
            return
        if self.range is not None and msg.seq >= self.range[1]:
            self.range = None
        if msg.kind == "gapfill":
            self._deferred = []
            self.apply(self.policy.on_gap_fill(msg.seq, msg.new_seq), "gapfill")
            if msg.new_seq > self.expected:
                self.consumed.update(range(self.expected, msg.new_seq))
                self.expected = msg.new_seq
            for action in self._deferred:
                self.expected = action.seq
        else:
            self.consumed.add(msg.seq)
            if msg.kind == "app":
                self.delivered_app.add(msg.seq)
            self.apply(self.policy.on_message(msg.seq), "callback")
            self.expected += 1
        if not queued:
            self.next_queued()

    def next_queued(self) -> None:
        while self.expected in self.queue:
            msg = self.queue.pop(self.expected)
            if msg.kind == "logon":  # counted only; the adapter sees the "Processing QUEUED message" event
                self.consumed.add(msg.seq)
                self.apply(self.policy.on_message(msg.seq, verified=False), "callback")
                self.expected += 1
            else:
                self.next_msg(msg, queued=True)

    def disconnect(self) -> None:
        if not self.connected:
            return
        self.connected = False
        self.queue.clear()
        self.range = None
        self.request = None
        self.refusals = 0
        self.apply(self.policy.on_disconnect(), "direct")

    def connect(self) -> None:
        if self.connected:
            return
        self.connected = True
        seq = self.new("admin")  # CME's Logon answer
        if seq > self.expected:
            # fromAdmin(35=A) shows the gap, then the engine logs "MsgSeqNum too high": reported twice.
            self.apply(self.policy.on_gap_detected(self.expected, seq, T0), "direct")
            self.apply(self.policy.on_gap_detected(self.expected, seq, T0), "direct")
            self.queue[seq] = Msg(seq, "logon")
            self.engine_request(seq)
        else:
            self.consumed.add(seq)
            self.apply(self.policy.on_message(seq), "callback")
            self.expected += 1
        self.next_queued()

    def poke_step(self) -> None:
        if self.poke and self.connected and self.policy.snapshot().awaiting_request:
            self.live("admin")  # CME's Heartbeat answering our TestRequest
        self.poke = False

    # ---------------------------------------------------------------------------------------- driving
    def settle(self, max_steps: int = 20_000) -> None:
        """No more faults: run until the gap is closed and the engine has everything CME sent."""
        self.reject_p = self.logout_p = 0.0
        for _ in range(max_steps):
            if not self.connected:
                self.connect()
            elif self.request is not None or self.refusals:
                self.cme_step()
            elif self.policy.active or self.expected <= self.last:
                self.live("admin")  # a heartbeat, or the TestRequest answer RetryAfter asks for
            else:
                return
        raise AssertionError(f"no convergence: {self.policy!r} expected={self.expected} last={self.last}")

    def check_complete(self) -> None:
        assert not self.policy.active
        assert self.expected == self.last + 1
        given_up = {n for b, e in self.unrecoverable for n in range(b, e + 1)}
        missing = set(range(1, self.last + 1)) - self.consumed - given_up
        assert not missing, f"silently skipped: {sorted(missing)[:20]}"
        apps = {n for n in range(1, self.last + 1) if self.kinds[n - 1] == "app"}
        lost_apps = apps - self.delivered_app - given_up
        assert not lost_apps, f"business messages lost: {sorted(lost_apps)[:20]}"


def outage(world: World, *, before: int, missed: int) -> None:
    """Logged on, ``before`` live messages, a disconnect during which ``missed`` messages go by, log on."""
    world.connect()
    for _ in range(before):
        world.live()
    world.disconnect()
    world.burst(missed)
    world.connect()


# ============================================================================================ scenarios
def test_hot_path_without_gap_does_nothing() -> None:
    p = policy()
    assert p.active is False
    assert p.on_message(1) == []
    assert p.on_gap_fill(2, 5) == []
    assert p.on_resend_rejected(T0, "reject", "x") == []
    assert p.on_disconnect() == []
    assert p.check_window(T0 - dt.timedelta(days=9), T0) == []
    assert p.on_gap_detected(5, 5, T0) == []
    assert p.snapshot().gap is None


def test_ten_thousand_gap_is_chunked_one_request_at_a_time() -> None:
    world = World(policy(), cap=CME_RESEND_CAP, admin_p=0.2)
    outage(world, before=5, missed=10_000)
    world.settle()
    world.check_complete()
    first = 7  # 1 logon, 5 live, then the outage starting at 7
    sizes = [rw.end - rw.begin + 1 for rw in world.requests]
    assert len(world.requests) >= 4
    assert max(sizes) <= 2500
    assert world.overlaps == 0
    # Every missing number (the outage) is requested exactly once, in order, with no hole between requests.
    covered = [n for rw in world.requests for n in range(rw.begin, rw.end + 1)]
    assert covered == list(range(first, first + 10_000))
    assert [(rw.begin, rw.end) for rw in world.requests][:2] == [(7, 2506), (2507, 5006)]
    assert not any(rw.duplicate for rw in world.requests)
    detected = [e for e in world.events if isinstance(e, GapDetected)]
    filled = [e for e in world.events if isinstance(e, GapFilled)]
    assert [(e.begin, e.end) for e in detected] == [(7, 10_006)]
    assert [(e.begin, e.end) for e in filled] == [(7, 10_006)]
    assert p_status(world).requests_sent == len(world.requests)


def p_status(world: World):  # type: ignore[no-untyped-def]
    return world.policy.snapshot()


def test_first_request_is_clamped_and_later_ones_are_follow_ups() -> None:
    p = policy(cap=10)
    assert p.on_gap_detected(1, 31, T0) == [GapDetected(S, 1, 30, T0)]
    rw = p.on_resend_out(1, 0, T0)
    assert (rw.begin, rw.end, rw.rewind_to, rw.duplicate) == (1, 10, None, False)
    assert rw.event == ResendRequested(S, 1, 10, T0)
    for seq in range(1, 10):
        assert p.on_message(seq) == []
    assert p.on_message(10) == [SendResend(11, 20)]
    assert p.snapshot().in_flight == (11, 20)
    assert p.on_resend_out(11, 20, T0).end == 20  # our own follow-up is confirmed as is
    for seq in range(11, 21):
        actions = p.on_message(seq)
    assert actions == [SendResend(21, 30)]
    p.on_resend_out(21, 30, T0)
    for seq in range(21, 30):
        assert p.on_message(seq) == []
    assert p.on_message(30) == [GapFilled(S, 1, 30, T0)]
    assert p.active is False
    assert p.snapshot().requests_sent == 3


def test_gap_fill_jumping_past_the_chunk_end_starts_the_next_chunk_at_new_seq() -> None:
    p = policy(cap=10)
    p.on_gap_detected(1, 41, T0)
    p.on_resend_out(1, 0, T0)
    for seq in range(1, 5):
        p.on_message(seq)
    # quickfixn#309: the next chunk must start at NewSeqNo (15), not at the old chunk end + 1 (11)
    assert p.on_gap_fill(5, 15) == [SendResend(15, 24)]
    p.on_resend_out(15, 24, T0)
    for seq in range(15, 24):
        assert p.on_message(seq) == []
    assert p.on_message(24) == [SendResend(25, 34)]


def test_gap_fill_landing_exactly_after_the_chunk_end() -> None:
    p = policy(cap=10)
    p.on_gap_detected(1, 41, T0)
    p.on_resend_out(1, 0, T0)
    assert p.on_gap_fill(1, 11) == [SendResend(11, 20)]
    p.on_resend_out(11, 20, T0)
    assert p.on_gap_fill(11, 15) == []  # inside the chunk: keep waiting
    assert p.snapshot().in_flight == (11, 20)


def test_gap_fill_past_the_target_closes_the_gap() -> None:
    p = policy(cap=10)
    p.on_gap_detected(3, 9, T0)
    p.on_resend_out(3, 0, T0)
    assert p.on_gap_fill(3, 12) == [GapFilled(S, 3, 8, T0)]
    assert p.snapshot().gap is None


def test_new_gap_during_a_resend_extends_the_target_without_a_second_request() -> None:
    p = policy(cap=100)
    p.on_gap_detected(1, 31, T0)
    p.on_resend_out(1, 0, T0)
    assert p.on_gap_detected(1, 32, T0) == []  # live traffic queued behind the gap: nothing new missing
    assert p.on_gap_detected(1, 40, T0) == [GapDetected(S, 33, 39, T0)]
    assert p.snapshot().gap == (1, 39)
    assert p.snapshot().in_flight == (1, 30)  # still one request


def test_numbers_queued_by_the_engine_are_never_requested() -> None:
    """A chunk must end on a missing number: one the engine holds queued would "answer" it before CME does."""
    p = policy(cap=100)
    p.on_gap_detected(8, 11, T0)  # 8..10 missing, 11 (the Logon answer) queued
    p.on_resend_out(8, 0, T0)
    assert p.on_resend_rejected(T0, "reject", "busy") == [RewindTo(8), RetryAfter(1.0)]  # the Reject was 12
    assert p.on_gap_detected(8, 13, T0) == [GapDetected(S, 12, 12, T0)]  # 12 missing, 13 queued
    rw = p.on_resend_out(8, 0, T0)  # QuickFIX asks again; its range now runs to 12
    assert (rw.begin, rw.end) == (8, 10)  # 11 is queued: the chunk stops before it
    p.on_message(8)
    p.on_message(9)
    assert p.on_message(10) == [SendResend(12, 12)]  # not 11..12
    assert p.on_message(11, verified=False) == []  # the engine takes its queued Logon
    assert p.on_message(12) == [GapFilled(S, 8, 12, T0)]


def test_policy_asks_itself_while_quickfix_range_is_still_open() -> None:
    """A gap fill whose NewSeqNo jumps past QuickFIX's range end leaves that range open after the gap."""
    p = policy(cap=10)
    p.on_gap_detected(4, 10, T0)  # QuickFIX's range will be 4..9
    p.on_resend_out(4, 0, T0)
    assert p.on_gap_fill(4, 11) == [GapFilled(S, 4, 9, T0)]  # 34=4 < 9: QuickFIX keeps its range open
    assert p.on_message(10, verified=False) == []  # the queued Logon is only counted: still open
    # 11 was lost; 12 arrives. QuickFIX logs "Already sent ResendRequest ... Not sending another."
    assert p.on_gap_detected(11, 12, T0) == [GapDetected(S, 11, 11, T0), SendResend(11, 11)]
    p.on_resend_out(11, 11, T0)
    assert p.on_message(11) == [GapFilled(S, 11, 11, T0)]


def test_a_verified_message_closes_quickfix_range_after_the_gap() -> None:
    p = policy(cap=10)
    p.on_gap_detected(4, 10, T0)
    p.on_resend_out(4, 0, T0)
    p.on_gap_fill(4, 11)
    assert p.on_message(11) == []  # verified, past the range end: QuickFIX's range is closed now
    assert p.on_gap_detected(12, 14, T0) == [GapDetected(S, 12, 13, T0)]  # QuickFIX asks by itself


def test_reconnect_mid_resend_restarts_at_the_first_missing_number() -> None:
    p = policy(cap=10)
    p.on_gap_detected(1, 31, T0)
    p.on_resend_out(1, 0, T0)
    for seq in range(1, 7):
        p.on_message(seq)
    assert p.on_disconnect() == [RewindTo(7)]
    status = p.snapshot()
    assert status.gap == (7, 30) and status.in_flight is None and not status.awaiting_request
    # the Logon answer is 40; QuickFIX (expected 7) asks from 7
    assert p.on_gap_detected(7, 40, T0) == [GapDetected(S, 31, 39, T0)]  # 31 was queued, now dropped
    rw = p.on_resend_out(7, 0, T0)
    assert (rw.begin, rw.end, rw.rewind_to) == (7, 16, None)


def test_reconnect_mid_resend_in_the_model() -> None:
    world = World(policy(cap=10), cap=10, admin_p=0.3)
    outage(world, before=3, missed=60)
    for _ in range(15):
        world.cme_step()
    world.disconnect()
    world.burst(5)
    world.connect()
    assert world.requests[-1].begin == world.policy.snapshot().gap[0]  # type: ignore[index]
    world.settle()
    world.check_complete()
    assert world.overlaps == 0


def test_reject_rewinds_and_retries_then_gives_up_the_chunk() -> None:
    p = policy(cap=10, max_rejects=3, backoff=(1.0, 2.0))
    p.on_gap_detected(5, 31, T0)
    p.on_resend_out(5, 0, T0)
    assert p.on_resend_rejected(T0, "reject", "busy") == [RewindTo(5), RetryAfter(1.0)]
    assert p.snapshot().awaiting_request
    # QuickFIX counted the Reject as message 5 and now asks from 6: the rewrite moves it back down
    rw = p.on_resend_out(6, 0, T0)
    assert (rw.begin, rw.end, rw.rewind_to) == (5, 14, 5)
    assert p.on_resend_rejected(T0, "reject", "busy") == [RewindTo(5), RetryAfter(2.0)]
    p.on_resend_out(5, 0, T0)
    actions = p.on_resend_rejected(T0, "reject", "busy")
    assert kinds(actions) == [UnrecoverableGap, SkipTo, RetryAfter]
    lost = actions[0]
    assert isinstance(lost, UnrecoverableGap)
    assert (lost.begin, lost.end, lost.session) == (5, 14, S)
    assert "3 times" in lost.reason and "busy" in lost.reason
    assert actions[1] == SkipTo(15)
    assert p.snapshot().gap == (15, 30)
    assert p.snapshot().unrecoverable == 10
    # the rest of the gap gets a fresh budget
    p.on_resend_out(15, 0, T0)
    assert p.on_resend_rejected(T0, "reject", "busy")[:1] == [RewindTo(15)]
    assert p.snapshot().rejects == 1


def test_progress_resets_the_reject_budget() -> None:
    p = policy(cap=10, max_rejects=2)
    p.on_gap_detected(1, 31, T0)
    p.on_resend_out(1, 0, T0)
    p.on_resend_rejected(T0, "reject", "busy")
    p.on_resend_out(1, 0, T0)
    p.on_message(1)
    assert p.snapshot().rejects == 0
    assert kinds(p.on_resend_rejected(T0, "reject", "busy")) == [RewindTo, RetryAfter]


def test_logout_answering_the_request_gives_up_the_last_part_and_closes_the_gap() -> None:
    p = policy(cap=10, max_rejects=1)
    p.on_gap_detected(1, 6, T0)
    p.on_resend_out(1, 0, T0)
    p.on_message(1)
    actions = p.on_resend_rejected(T0, "logout", "")
    assert kinds(actions) == [UnrecoverableGap, SkipTo]
    assert actions[1] == SkipTo(6)
    assert p.active is False
    assert p.on_disconnect() == []


def test_rejects_and_logouts_in_the_model_never_skip_silently() -> None:
    world = World(policy(cap=7, max_rejects=2), cap=7, rng=random.Random(3), reject_p=0.3, logout_p=0.15)
    outage(world, before=4, missed=80)
    for _ in range(400):
        if not world.connected:
            world.connect()
        elif not world.cme_step():
            world.live()
    world.settle()
    world.check_complete()
    assert world.overlaps == 0


def test_window_check_gives_up_the_whole_gap() -> None:
    p = policy(cap=10)
    p.on_gap_detected(100, 131, T0)
    p.on_resend_out(100, 0, T0)
    for seq in range(100, 104):
        p.on_message(seq)
    assert p.check_window(None, T0) == []
    assert p.check_window(T0 - dt.timedelta(hours=47), T0) == []
    actions = p.check_window(T0 - dt.timedelta(hours=49), T0)
    assert kinds(actions) == [UnrecoverableGap, SkipTo]
    lost = actions[0]
    assert isinstance(lost, UnrecoverableGap)
    assert (lost.begin, lost.end) == (104, 130)
    assert "48-hour" in lost.reason
    assert actions[1] == SkipTo(131)
    assert p.active is False


def test_engine_stepping_over_a_number_is_undone() -> None:
    p = policy(cap=10)
    p.on_gap_detected(1, 11, T0)
    p.on_resend_out(1, 0, T0)
    p.on_message(1)
    assert p.on_message(3) == [RewindTo(2)]  # 2 never arrived
    assert p.on_message(1) == []  # a repeat is ignored
    assert p.snapshot().gap == (2, 10)


def test_unreported_gap_is_still_clamped() -> None:
    p = policy(cap=10)
    rw = p.on_resend_out(50, 0, T0)
    assert (rw.begin, rw.end) == (50, 59)
    assert p.active


def test_quickfix_request_while_ours_is_in_flight_goes_out_as_a_copy() -> None:
    p = policy(cap=10)
    p.on_gap_detected(1, 31, T0)
    p.on_resend_out(1, 0, T0)
    p.on_gap_detected(1, 40, T0)  # QuickFIX's range had closed and a too-high message arrived
    copy = p.on_resend_out(1, 0, T0)
    assert (copy.begin, copy.end, copy.duplicate) == (1, 10, True)
    # CME refuses the copy: only the skipped number is restored, ours keeps going
    assert p.on_resend_rejected(T0, "reject", "in progress") == [RewindTo(1)]
    assert p.snapshot().in_flight == (1, 10)
    assert p.snapshot().rejects == 0


def test_follow_up_that_never_went_out_is_carried_by_quickfix_request() -> None:
    p = policy(cap=10)
    p.on_gap_detected(1, 31, T0)
    p.on_resend_out(1, 0, T0)
    assert p.on_gap_fill(1, 11) == [SendResend(11, 20)]  # the adapter failed to send it
    rw = p.on_resend_out(11, 0, T0)
    assert (rw.begin, rw.end, rw.duplicate) == (11, 20, False)


def test_events_are_frozen_and_carry_session_and_time() -> None:
    for event in (
        GapDetected(S, 1, 2, T0),
        ResendRequested(S, 1, 2, T0),
        GapFilled(S, 1, 2, T0),
        UnrecoverableGap(S, 1, 2, "why", T0),
        DuplicateIgnored(S, 7, "E:123", "123", T0),
    ):
        assert event.session == S and event.at == T0
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.session = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [{"cap": 0}, {"max_rejects": 0}, {"backoff": ()}, {"backoff": (1.0, -1.0)}],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        policy(**kwargs)


# ============================================================================================ properties
STEPS = ["answer", "answer", "answer", "live", "disconnect", "connect", "poke", "burst"]
LOSSY_STEPS = ["answer", "answer", "live", "lose", "disconnect", "connect"]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cap=st.integers(1, 8),
    max_rejects=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    missed=st.integers(1, 60),
    admin_p=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    reject_p=st.sampled_from([0.0, 0.1, 0.3]),
    logout_p=st.sampled_from([0.0, 0.05, 0.2]),
    split_p=st.sampled_from([0.0, 0.5]),
    extend_p=st.sampled_from([0.0, 0.5, 1.0]),
    steps=st.lists(st.sampled_from(STEPS), min_size=10, max_size=300),
    extra=st.integers(0, 300),
)
def test_recovery_is_complete_capped_and_serial(
    cap: int,
    max_rejects: int,
    seed: int,
    missed: int,
    admin_p: float,
    reject_p: float,
    logout_p: float,
    split_p: float,
    extend_p: float,
    steps: list[str],
    extra: int,
) -> None:
    """Random gaps, answers (messages and gap fills of random lengths), refusals and disconnects.

    Requests never exceed the cap, never overlap (CME never sees a second one in flight), and every number
    CME sent is either processed or explicitly reported unrecoverable -- nothing is skipped silently.
    """
    rng = random.Random(seed)
    world = World(
        policy(cap=cap, max_rejects=max_rejects, backoff=(0.0,)),
        cap=cap,
        rng=rng,
        admin_p=admin_p,
        reject_p=reject_p,
        logout_p=logout_p,
        split_p=split_p,
        extend_p=extend_p,
    )
    outage(world, before=rng.randint(0, 3), missed=missed)
    for step in steps + [rng.choice(STEPS) for _ in range(extra)]:
        if step == "answer":
            world.cme_step()
        elif step == "live":
            world.live()
        elif step == "disconnect":
            world.disconnect()
        elif step == "connect":
            world.connect()
        elif step == "poke":
            world.poke_step()
        elif step == "burst":
            connected = world.connected
            world.disconnect()
            world.burst(rng.randint(1, 3 * cap))
            if connected:
                world.connect()
    world.settle()
    world.check_complete()
    assert world.overlaps == 0
    assert not any(rw.duplicate for rw in world.requests)
    assert all(rw.end - rw.begin + 1 <= cap for rw in world.requests)
    assert world.in_flight_max <= cap


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cap=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    steps=st.lists(st.sampled_from(LOSSY_STEPS), min_size=10, max_size=300),
    extra=st.integers(0, 300),
)
def test_recovery_survives_numbers_lost_inside_a_connection(
    cap: int, seed: int, steps: list[str], extra: int
) -> None:
    """CME never drops a live message inside a TCP connection, but if something did, nothing is lost."""
    rng = random.Random(seed)
    world = World(policy(cap=cap, max_rejects=2, backoff=(0.0,)), cap=cap, rng=rng, reject_p=0.1, split_p=0.5)
    outage(world, before=2, missed=rng.randint(1, 30))
    for step in steps + [rng.choice(LOSSY_STEPS) for _ in range(extra)]:
        if step == "answer":
            world.cme_step()
        elif step in ("live", "lose"):
            world.live(lose=step == "lose")
        elif step == "disconnect":
            world.disconnect()
        else:
            world.connect()
    world.settle()
    world.check_complete()
    assert all(rw.end - rw.begin + 1 <= cap for rw in world.requests)
