"""The seeded fuzz budget of ``make test``: 14,000 generated cases through the fuzz harness invariants.

The same invariants as ``make fuzz`` (fuzz/harness.py), on inputs from a FIX-aware mutator (fuzz/mutate.py)
seeded with a fixed number, so every run and every machine checks exactly the same cases. A failure names the
target, the case number and the input; save the input under tests/fixtures/fuzz/<target>/ (see the README
there) so it is replayed forever by test_fuzz_regressions.py.
"""

from __future__ import annotations

import collections
import functools
import hashlib

import pytest

from dropcopy_client._decode import decode
from dropcopy_client._messages import MessageError
from fuzz.corpus import seeds
from fuzz.harness import TARGETS
from fuzz.mutate import Mutator

SEED = 20240311
#: cases per target: 14,000 in all, ~4 s on the project's 2-core machines
BUDGET = {"codec": 4000, "unwrap": 2000, "decode": 8000}
CHUNKS = 4


@functools.cache
def cases(target: str) -> tuple[bytes, ...]:
    return tuple(Mutator(seeds(target), SEED).cases(BUDGET[target]))


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("target", sorted(BUDGET))
def test_generated_cases_keep_every_invariant(target: str, chunk: int) -> None:
    check = TARGETS[target]
    all_cases = cases(target)
    size = -(-len(all_cases) // CHUNKS)
    for index in range(chunk * size, min(len(all_cases), (chunk + 1) * size)):
        data = all_cases[index]
        try:
            check(data)
        except Exception as exc:
            pytest.fail(
                f"{target} case {index} (seed {SEED}) broke {type(exc).__name__}: {exc}\n"
                f"input: {data!r}\n"
                f"keep it: write these bytes to tests/fixtures/fuzz/{target}/<what-broke>.bin",
                pytrace=False,
            )


def test_budget_is_at_least_ten_thousand_cases() -> None:
    assert sum(BUDGET.values()) >= 10_000
    assert all(len(cases(target)) == count for target, count in BUDGET.items())


def test_cases_are_reproducible() -> None:
    def digest(target: str) -> str:
        return hashlib.sha256(b"".join(Mutator(seeds(target), SEED).cases(500))).hexdigest()

    assert digest("decode") == digest("decode")
    assert tuple(Mutator(seeds("decode"), SEED + 1).cases(500)) != cases("decode")[:500]


def test_generated_cases_reach_past_the_checksums() -> None:
    """Guards the mutator: blind noise would only ever test the outer framing checks."""
    outcomes: collections.Counter[str] = collections.Counter()
    for data in cases("decode"):
        events = decode(data)
        if not events:
            outcomes["admin"] += 1
        elif isinstance(events[0], MessageError):
            outcomes["inner" if events[0].reason.startswith("inner") else "outer"] += 1
        else:
            outcomes["event"] += 1
    total = len(cases("decode"))
    assert outcomes["event"] > total * 0.08, outcomes
    assert outcomes["inner"] > total * 0.05, outcomes
    assert outcomes["outer"] > total * 0.3, outcomes
