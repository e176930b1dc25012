"""Every input that once broke a fuzz invariant, replayed through every target (tests/fixtures/fuzz/)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from dropcopy_client._decode import decode, encode_report, wrap_outer
from fuzz.corpus import REGRESSIONS, regressions
from fuzz.harness import TARGETS

ALL = sorted(REGRESSIONS.glob("*/*.bin"))
AT = dt.datetime(2024, 3, 11, tzinfo=dt.UTC)


def test_there_are_regression_inputs() -> None:
    assert regressions("decode"), "the decode regressions went missing"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_regression_input_keeps_every_invariant(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        ("oma-entry-without-delimiter", "534 NoAffectedOrders entry 2 does not start with 41"),
        ("fill-leg-entry-without-delimiter", "1795 NoOrderEvents entry 2 does not start with 1797"),
    ],
)
def test_group_entry_without_its_first_field_is_flagged(name: str, warning: str) -> None:
    # Found by the fuzz budget: a repeating-group entry that starts at a repeated tag instead of the group's
    # first field decoded silently, and re-encoding merged it with the entry before (other typed values).
    (event,) = decode((REGRESSIONS / "decode" / f"{name}.bin").read_bytes())
    assert any(w.startswith(warning) for w in event.warnings), event.warnings
    (again,) = decode(wrap_outer(encode_report(event), seq_num=1, target="T", segment="G", sending_time=AT))
    stray = [w for w in event.warnings if w.startswith(warning)]
    assert [
        w for w in again.warnings if w.startswith(warning)
    ] == stray  # same entries: a warning, not an error


def test_decoded_entries_re_encode_in_the_order_received() -> None:
    # Found by atheris: entries starting with an untyped tag (1796) came back split at the first typed one.
    (event,) = decode((REGRESSIONS / "decode" / "fill-leg-group-starting-with-untyped-tag.bin").read_bytes())
    inner = encode_report(event)
    group = inner[inner.index(b"\x011795=") : inner.index(b"\x015149=")]
    assert group == b"\x011795=2\x011796=4\x011799=99.8515625\x011796=4\x011802=leg one"
    (again,) = decode(wrap_outer(inner, seq_num=1, target="T", segment="G", sending_time=AT))
    assert again.order_events == event.order_events


def test_timestamps_before_year_1000_encode_with_four_digit_years() -> None:
    # Found by atheris: year 224 was written "2240311-..." (strftime does not pad the year on glibc).
    (event,) = decode((REGRESSIONS / "decode" / "timestamp-year-before-1000.bin").read_bytes())
    assert event.source.sending_time.year == 224
    assert b"\x0152=02240311-14:30:04.750\x01" in encode_report(event)
