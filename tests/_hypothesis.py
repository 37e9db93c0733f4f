"""Hypothesis profiles for the property tests, chosen with `HYPOTHESIS_PROFILE` (default `ci`).

- `ci`: enough examples to find ordering bugs, few enough to run in seconds on a loaded machine; no
  deadline (a slow example under load is not a failure); derandomized, so a run judges the code the
  same way every time (the hunt for new cases is `thorough`'s job).
- `mutation`: fewer examples, derandomized, so a mutant is judged the same way on every run.
- `thorough`: for a local hunt, `HYPOTHESIS_PROFILE=thorough pytest tests/test_alert_book_properties.py`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow], "print_blob": True}

settings.register_profile("ci", max_examples=60, derandomize=True, database=None, **_COMMON)
settings.register_profile("mutation", max_examples=10, derandomize=True, database=None, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
