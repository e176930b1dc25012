"""Coverage-guided fuzzing with atheris (libFuzzer): ``python -m fuzz.run TARGET [libFuzzer options] [CORPUS]``.

TARGET is ``codec``, ``unwrap`` or ``decode`` (fuzz/harness.py says what each checks). ``make fuzz`` runs
every target for ``FUZZ_SECONDS`` with a corpus seeded from the fixtures (``python -m fuzz.corpus``). Half of
the mutations are libFuzzer's own, half FIX-aware ones from fuzz/mutate.py that re-frame the message, so
coverage grows past BodyLength and CheckSum. A crash or a broken invariant stops the run and leaves the input
in ``-artifact_prefix``; keep it under tests/fixtures/fuzz/<target>/.
"""

from __future__ import annotations

import sys

try:
    import atheris  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit(
        "atheris is not installed: `make fuzz` installs it into .venv "
        "(a prebuilt wheel exists for CPython 3.11 on manylinux x86_64; elsewhere it needs clang and libFuzzer)"
    )

with atheris.instrument_imports(include=["dropcopy_client"]):
    from fuzz.harness import TARGETS
    from fuzz.mutate import Mutator, refix


def _mutator(data: bytes, max_size: int, seed: int) -> bytes:
    if seed % 2:
        out = atheris.Mutate(data, max_size)
        if seed % 4 == 1:
            out = refix(out)
    else:
        out = Mutator([data or b"8=FIX.4.2\x019=5\x0135=0\x0110=000\x01"], seed).mutate(data)
    return bytes(out[:max_size])


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz.run {{{','.join(TARGETS)}}} [libFuzzer options] [CORPUS_DIR ...]")
    check = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], check, custom_mutator=_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
