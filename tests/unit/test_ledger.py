"""The sequence ledger, the logon budget and the ScreenLog reader (sans-IO pieces of accounting and the engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dropcopy_client._engine._attempts import BUDGET, FILE_NAME, LogonBudget
from dropcopy_client._engine._screenlog import ScreenLogParser
from dropcopy_client._recovery import Ledger, State, audit_rows


def test_position_is_the_accounted_run_from_one_and_never_passes_a_hole() -> None:
    ledger = Ledger(1)
    sl = ledger.open("S:G", 0)
    assert (sl.position, sl.highest, sl.first_hole()) == (0, 0, None)
    sl.account(1, 3, State.JOURNALED, 0)
    sl.account(10, 10, State.ADMIN, 0)  # a Logon answer seen early: 4-9 are missing
    assert (sl.position, sl.highest, sl.first_hole()) == (3, 10, 4)
    assert sl.holes() == [(4, 9)]
    assert sl.skipped(11) == 4 and sl.skipped(4) is None
    sl.account(4, 9, State.GAP_FILLED, 0)
    assert (sl.position, sl.holes()) == (10, [])
    assert sl.account(5, 12, State.JOURNALED, 0) == 2  # only 11 and 12 were new


def test_rows_grow_in_place_and_are_written_once_per_transaction() -> None:
    ledger = Ledger(1)
    sl = ledger.open("S:G", 0)
    for seq in range(1, 6):
        sl.account(seq, seq, State.JOURNALED, seq)
    sl.account(6, 6, State.ADMIN, 6)
    rows = ledger.take_rows()
    assert [(r.id, r.begin, r.end, r.state) for r in rows] == [
        (1, 1, 5, State.JOURNALED),
        (2, 6, 6, State.ADMIN),
    ]
    assert ledger.take_rows() == []
    sl.account(7, 7, State.ADMIN, 7)
    assert [(r.id, r.begin, r.end) for r in ledger.take_rows()] == [(2, 6, 7)]  # the same row, longer


def test_rollback_restores_ranges_rows_and_ids() -> None:
    ledger = Ledger(1)
    sl = ledger.open("S:G", 0)
    sl.account(1, 2, State.JOURNALED, 0)
    ledger.take_rows()
    ledger.begin()
    sl.account(3, 5, State.ADMIN, 0)
    ledger.rollback()
    assert ledger.session("S:G").position == 2 and ledger.take_rows() == []
    ledger.session("S:G").account(3, 3, State.JOURNALED, 0)
    (row,) = ledger.take_rows()
    assert (row.id, row.begin, row.end) == (1, 1, 3)  # continues the committed row


def test_load_rebuilds_from_stored_rows_in_any_order() -> None:
    ledger = Ledger(1)
    sl = ledger.open("S:G", 0)
    sl.account(1, 4, State.JOURNALED, 0)
    sl.account(6, 8, State.LOST, 0, "refused")
    rows = ledger.take_rows()
    again = Ledger(10).open("S:G", 0, reversed(rows))
    assert (again.position, again.holes()) == (4, [(5, 5)])


def test_audit_rows_cover_every_number_and_name_the_holes() -> None:
    ledger = Ledger(1)
    sl = ledger.open("S:G", 0)
    sl.account(1, 2, State.JOURNALED, 0)
    sl.account(4, 4, State.LOST, 5, "reset")
    ranges = audit_rows(ledger.take_rows(), highest_seen=6)
    assert [(r.begin, r.end, r.state, r.cause) for r in ranges] == [
        (1, 2, "journaled", None),
        (3, 3, "unaccounted", None),
        (4, 4, "lost", "reset"),
        (5, 6, "unaccounted", None),
    ]


# ---------------------------------------------------------------------------------------------- budget
class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_never_allows_a_fifth_unsuccessful_logon_inside_the_window(tmp_path: Path) -> None:
    clock = Clock()
    budget = LogonBudget(tmp_path, clock=clock)
    for _ in range(BUDGET):
        assert budget.wait("ABCDEFN") == 0
        at = budget.begin("ABCDEFN")
        budget.end("ABCDEFN", at, "refused")
        clock.now += 1
    assert budget.wait("ABCDEFN") > 50  # the oldest must leave the 60 s window first
    assert budget.wait("XYZDEFN") == 0  # another target has its own budget
    clock.now += 57
    assert budget.wait("ABCDEFN") == 0


def test_logons_in_flight_take_a_place_and_ok_ones_do_not_count(tmp_path: Path) -> None:
    clock = Clock()
    budget = LogonBudget(tmp_path, clock=clock)
    at = budget.begin("ABCDEFN")
    budget.end("ABCDEFN", at, "ok")
    budget.end("ABCDEFN", budget.begin("ABCDEFN"), "not-counted")  # a backup refusal
    assert budget.counted("ABCDEFN") == 0
    assert budget.wait("ABCDEFN", in_flight=BUDGET) > 0  # four logons unanswered: they may all be refused


def test_the_history_survives_restarts_and_a_crash_counts_as_a_refusal(tmp_path: Path) -> None:
    clock = Clock()
    first = LogonBudget(tmp_path, clock=clock)
    for _ in range(3):
        first.end("ABCDEFN", first.begin("ABCDEFN"), "refused")
    first.begin("ABCDEFN")  # the process dies here: the outcome of this Logon is unknown
    with (tmp_path / FILE_NAME).open("a") as f:
        f.write('{"target": "ABCDEFN", "at": 1.0, "outco')  # a torn last line
    again = LogonBudget(tmp_path, clock=clock)
    assert again.counted("ABCDEFN") == 4
    assert again.wait("ABCDEFN") > 0
    lines = [json.loads(line) for line in (tmp_path / FILE_NAME).read_text().splitlines()]
    assert all(line["outcome"] != "pending" for line in lines)
    assert (tmp_path / FILE_NAME).stat().st_mode & 0o077 == 0


def test_an_unreadable_history_assumes_the_worst(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()  # not a file: cannot be read
    budget = LogonBudget(tmp_path, clock=Clock())
    assert budget.counted("ABCDEFN") == 1


# ---------------------------------------------------------------------------------------------- ScreenLog
def test_screenlog_records_are_read_across_chunk_boundaries() -> None:
    text = (
        b"<20261201-22:11:10.329415000, FIX.4.2:ABCDEFN->CME:G, event>\n"
        b"  (MsgSeqNum too high, expecting 3 but received 4)\n"
        b"<20261201-22:11:10.329416000, FIX.4.2:ABCDEFN->CME:G, incoming>\n"
        b"  (8=FIX.4.2|9=5|35=0|34=9|10=000|)\n"
        b"<20261201-22:11:10.329417000, GLOBAL, event>\n"
        b"  (Connection succeeded)\n"
    )
    for cut in (1, 30, 70, 71, 120, len(text) - 1):
        parser = ScreenLogParser()
        got = list(parser.feed(text[:cut])) + list(parser.feed(text[cut:]))
        assert got == [
            ("FIX.4.2:ABCDEFN->CME:G", "event", "MsgSeqNum too high, expecting 3 but received 4"),
            ("FIX.4.2:ABCDEFN->CME:G", "incoming", "8=FIX.4.2|9=5|35=0|34=9|10=000|"),
            ("GLOBAL", "event", "Connection succeeded"),
        ], cut


@pytest.mark.parametrize("junk", [b"\n\n", b"random line\n", b"  (no header)\n"])
def test_screenlog_ignores_stray_lines(junk: bytes) -> None:
    parser = ScreenLogParser()
    ok = b"<20261201-22:11:10.1, S, event>\n  (x)\n"
    assert list(parser.feed(junk + ok)) == [("S", "event", "x")]
