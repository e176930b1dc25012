"""Types of the compiled decoder (``_cdecode.pyx``, built by Cython); mypy reads this, not the .pyx."""

import datetime as dt
from typing import Any

from dropcopy_client._messages import BusinessEvent, Event

def configure(**tables: Any) -> None: ...
def decode(
    raw: bytes | str,
    *,
    group: str = "",
    session: str | None = None,
    received_at: dt.datetime | None = None,
    uncertain: bool = False,
    journal_id: int | None = None,
    replayed: bool = False,
) -> list[Event]: ...
def decode_strict(
    raw: bytes | str,
    *,
    group: str = "",
    session: str | None = None,
    received_at: dt.datetime | None = None,
    uncertain: bool = False,
) -> list[BusinessEvent]: ...
def decode_fast(
    data: bytes,
    group: str = "",
    session: str | None = None,
    received_at: dt.datetime | None = None,
    uncertain: bool = False,
    journal_id: int | None = None,
    replayed: bool = False,
) -> BusinessEvent | None: ...
