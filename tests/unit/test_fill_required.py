"""A fill without a field CME always sends is a MessageError naming the tag, never a Fill with None there.

Both decoders (compiled and pure Python) must agree, raw bytes included; ``decode_strict`` raises instead.
"""

from __future__ import annotations

import attrs
import pytest

import dropcopy_client._decode as decoding
from dropcopy_client._messages import ExecutionReport, Fill, MessageError, TradeBust
from dropcopy_client._wire import redact, wrap
from dropcopy_client.errors import DecodeError
from tests.unit._message_fixtures import encode_inner, encode_outer, fixture
from tests.unit.test_decode_implementations import check

#: (tag, FIX name) of every field a Fill may not lack, from the model itself
REQUIRED = sorted(
    (a.metadata["tag"], a.metadata["fix_name"])
    for a in attrs.fields(Fill)
    if a.default is attrs.NOTHING and "tag" in a.metadata
)


def test_the_fields_cme_always_sends_on_a_fill_are_required() -> None:
    tags = {tag for tag, _ in REQUIRED}
    assert {17, 31, 32, 37, 39, 48, 54, 60} <= tags
    hints = {a.name: a.type for a in attrs.fields(Fill)}
    for name in ("last_px", "last_qty", "side", "security_id", "order_id", "transact_time"):
        assert "None" not in str(hints[name]), name
    # ... while on the base class (acks, cancels) they stay optional
    base = {a.name: a for a in attrs.fields(ExecutionReport)}
    assert base["last_px"].default is None and base["side"].default is None


def _without(name: str, tag: int) -> bytes:
    fx = fixture(name)
    assert fx.outer_fields is not None and fx.inner_fields is not None
    inner = [(t, v) for t, v in fx.inner_fields if t != tag]
    assert len(inner) == len(fx.inner_fields) - 1, f"{name} has no {tag}"
    return encode_outer(fx.outer_fields, wrap(encode_inner(inner)))


@pytest.mark.parametrize("name", ["fill_outright", "fill_partial", "fill_spread_leg", "fill_brokertec"])
@pytest.mark.parametrize(("tag", "fix_name"), [(t, n) for t, n in REQUIRED if t not in (17, 39)])
def test_a_fill_missing_a_required_tag_is_a_message_error(name: str, tag: int, fix_name: str) -> None:
    raw = _without(name, tag)
    (event,) = check(raw)  # compiled and pure Python: the same MessageError
    assert isinstance(event, MessageError)
    assert f"without {tag} {fix_name}" in event.reason and "Fill" in event.reason
    assert event.raw == redact(raw) and event.inner and event.delivery is not None
    with pytest.raises(DecodeError, match=f"without {tag} {fix_name}"):
        decoding.python_decode_strict(raw)
    with pytest.raises(DecodeError, match=f"without {tag} {fix_name}"):
        decoding.decode_strict(raw)


def test_a_complete_fill_still_decodes_with_every_required_field_set() -> None:
    (event,) = check(fixture("fill_outright").outer)
    assert isinstance(event, Fill)
    assert event.last_px is not None and event.last_qty == 3 and event.side is not None
    assert event.instrument == "ESM4"


def test_a_bust_without_a_price_is_still_a_bust() -> None:
    """Only Fill requires them: a bust or an ack without 31 decodes as before."""
    raw = _without("trade_bust", 31)
    (event,) = check(raw)
    assert isinstance(event, TradeBust) and event.last_px is None
