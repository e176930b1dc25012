"""``event.to_dict()`` exists on every event class the client delivers and is exactly ``event_to_dict``."""

from __future__ import annotations

import datetime as dt
import json

import attrs
import pytest

import dropcopy_client as dc
from dropcopy_client import _events, _messages, _recovery
from dropcopy_client._decode import decode
from tests.unit._message_fixtures import all_fixtures

NOW = dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)


def _event_classes() -> list[type]:
    """Every attrs class of the three event modules that the client hands to consumers."""
    classes = []
    for module in (_messages, _events, _recovery):
        for name in getattr(module, "__all__", dir(module)):
            value = getattr(module, name)
            if isinstance(value, type) and attrs.has(value) and name in dc.__all__:
                classes.append(value)
    return classes


EVENT_CLASSES = _event_classes()


def test_the_event_classes_are_found() -> None:
    names = {cls.__name__ for cls in EVENT_CLASSES}
    assert {
        "Fill",
        "MessageError",
        "SessionEvent",
        "UnrecoverableGap",
        "GapDetected",
        "FrameDropped",
    } <= names


@pytest.mark.parametrize(
    "cls",
    [c for c in EVENT_CLASSES if c not in (dc.Delivery, dc.Source, dc.OrderEvent, dc.AffectedOrder)],
    ids=lambda c: c.__name__,
)
def test_every_event_class_has_to_dict(cls: type) -> None:
    assert callable(getattr(cls, "to_dict", None)), f"{cls.__name__} has no to_dict()"


@pytest.mark.parametrize("fixture", all_fixtures(), ids=lambda f: f.name)
def test_to_dict_of_a_decoded_event_is_event_to_dict(fixture: object) -> None:
    (event,) = decode(fixture.outer, received_at=NOW, journal_id=7)  # type: ignore[attr-defined]
    data = event.to_dict()
    assert data == dc.event_to_dict(event)
    assert data["type"] == type(event).__name__ and data["journal_id"] == 7
    json.dumps(data)  # JSON-ready
    assert event.to_dict(fix_message=True)["fix_message"]


def test_to_dict_of_live_events() -> None:
    session = _events.SessionEvent(
        "clearing",
        "ABCDEFN:G",
        _events.SessionState.LOGGED_ON,
        _events.SessionState.LOGON_SENT,
        NOW,
        None,
        None,
    )
    gap = _recovery.GapDetected("ABCDEFN:G", 5, 9, NOW)
    for event in (session, gap):
        assert event.to_dict() == dc.event_to_dict(event)
        json.dumps(event.to_dict())
    assert session.to_dict()["state"] == "LOGGED_ON"
    error = dc.MessageError(reason="bad", raw=b"8=FIX.4.2\x01", journal_id=3)
    assert error.to_dict()["idempotency_key"] == "J:3"
