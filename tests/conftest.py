"""Hypothesis profiles for the whole suite.

``ci`` (the default): every property test draws the same examples on every run and every machine
(``derandomize``), so a green suite here is a green suite in CI and a failure reproduces with the same command.
``explore``: fresh random examples each run, with the example database, for hunting new failures; run it with
``HYPOTHESIS_PROFILE=explore make unit`` and keep what it finds as an ``@example`` on the test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
