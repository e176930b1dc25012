"""Seed inputs for every fuzz target, from tests/fixtures/messages and the payload builders.

``python -m fuzz.corpus DIR`` writes them as ``DIR/<target>/<sha1>`` files (libFuzzer's corpus layout), with
the regression inputs under tests/fixtures/fuzz/ added, so a fuzzing run starts from real messages and from
every input that once broke something.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import sys
from pathlib import Path

from dropcopy_client._decode import wrap_outer
from dropcopy_client._wire import data_field, encode, wrap
from dropcopy_client._wire.rtrf import RTRF_CLOSE, RTRF_OPEN
from dropcopy_client.testing import demo_script
from tests.unit._message_fixtures import all_fixtures, inner_of

ROOT = Path(__file__).resolve().parents[1]
REGRESSIONS = ROOT / "tests" / "fixtures" / "fuzz"
_START = dt.datetime(2024, 3, 11, 14, 30, tzinfo=dt.UTC)


def _admin() -> list[bytes]:
    """Session-level messages: a signed Logon (1401/1402, 354/355 data fields), heartbeat, resend, logout."""
    logon = encode(
        "A",
        [
            (34, 1),
            (49, "ABCDEFN"),
            (50, "OPS1"),
            (52, "20240311-14:30:00.000"),
            (56, "CME"),
            (57, "G"),
            (142, "US,IL"),
            (98, 0),
            (108, 30),
            *data_field(355, "AbCdEfGhIjKlMnOpQrSt"),
            (1400, "HMACSHA256"),
            *data_field(1402, b"\x01\x02=signature\x01bytes"),
            (1603, "dropcopy_client"),
            (1604, "0.1"),
            (1605, "dropcopy"),
        ],
    )
    return [
        logon,
        encode("0", [(34, 2), (49, "CME"), (56, "ABCDEFN"), (52, "20240311-14:30:30.000")]),
        encode("2", [(34, 3), (49, "CME"), (56, "ABCDEFN"), (52, "20240311-14:30:31.000"), (7, 1), (16, 0)]),
        encode("5", [(34, 4), (49, "CME"), (56, "ABCDEFN"), (52, "20240311-14:30:32.000"), (58, "bye")]),
        encode("A", [(34, 1), (96, "legacy-password"), (554, "pw"), (925, "newpw")]),
    ]


@functools.cache
def outer_messages() -> tuple[bytes, ...]:
    """Whole outer messages: every fixture, the demo script wrapped as CME would, and admin messages."""
    out = [fixture.outer for fixture in all_fixtures()]
    for seq, inner in enumerate(demo_script(_START), start=1):
        out.append(wrap_outer(inner, seq_num=seq, target="ABCDEFN", segment="G", sending_time=_START))
    out += _admin()
    return tuple(out)


@functools.cache
def inner_messages() -> tuple[bytes, ...]:
    return tuple(inner_of(raw) for raw in outer_messages() if RTRF_OPEN in raw)


def seeds(target: str) -> list[bytes]:
    """The seed inputs of ``target`` (``codec``, ``unwrap`` or ``decode``)."""
    outer = list(outer_messages())
    if target == "unwrap":
        return [wrap(inner) for inner in inner_messages()] + [RTRF_OPEN + RTRF_CLOSE, RTRF_OPEN]
    if target == "codec":
        # a stream of several frames with garbage between them, for the FrameReader
        stream = b"garbage" + b"".join(outer[:5]) + b"8=FIX.4.2\x019=99999999\x01" + outer[5]
        return [*outer, *inner_messages(), stream]
    if target == "decode":
        return outer
    raise ValueError(f"unknown fuzz target {target!r}")


def regressions(target: str) -> list[Path]:
    """Inputs that once broke ``target``, kept as fixtures (tests/fixtures/fuzz/<target>/*.bin)."""
    return sorted((REGRESSIONS / target).glob("*.bin"))


def write_corpus(directory: Path, targets: list[str]) -> None:
    for target in targets:
        folder = directory / target
        folder.mkdir(parents=True, exist_ok=True)
        inputs = [*seeds(target), *(p.read_bytes() for p in regressions(target))]
        for data in inputs:
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"{folder}: {len(inputs)} seed inputs")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m fuzz.corpus DIR [TARGET ...]")
    write_corpus(Path(sys.argv[1]), sys.argv[2:] or ["codec", "unwrap", "decode"])
