"""Bounds on what a person can write to the store, and on times the store may already hold.

Checked at every face that writes (CLI arguments, TUI dialogs) and again by the store itself, so a
typo cannot silence an alert for ten thousand years or put a megabyte note in everyone's timeline.
"""

from __future__ import annotations

import math
from typing import Any

MAX_ID = 2**63 - 1
"""SQLite's largest INTEGER: alert ids (and `--limit`) beyond it cannot exist."""

MAX_SILENCE_SECONDS = 30 * 86400.0
"""The longest silence: 30 days. Anything longer is a rule to disable, not an alert to silence."""

MAX_TEXT = 1000
"""Characters in a note, a reason or an actor name (`--note`, `--reason`, `--by`)."""

# 0001-01-02T00:00:00Z and 9999-12-30T23:59:59Z: the range of four-digit years (ISO 8601, `datetime`),
# less a day at each end so that local time never falls off it either.
EARLIEST_EPOCH = -62135510400.0
LATEST_EPOCH = 253402214399.0


def check_id(value: int, what: str = "alert id") -> int:
    if not 1 <= value <= MAX_ID:
        digits = str(value)
        shown = digits if len(digits) <= 30 else f"a {len(digits)}-digit number"
        raise ValueError(f"{what} must be between 1 and {MAX_ID}, got {shown}")
    return value


def check_silence(seconds: float) -> float:
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("a silence must last a positive time")
    if seconds > MAX_SILENCE_SECONDS:
        raise ValueError("a silence lasts at most 30d")
    return seconds


def check_text(value: str | None, what: str) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise ValueError(f"{what} is too long ({len(value)} characters; at most {MAX_TEXT})")
    return value


def displayable_epoch(at: float) -> float:
    """`at` clamped into the range calendars can show (rows written before limits existed may hold
    a silence ending in the year 2.7 billion, or infinity); NaN counts as the latest time."""
    if math.isnan(at):
        return LATEST_EPOCH
    return min(max(at, EARLIEST_EPOCH), LATEST_EPOCH)


def json_safe(value: Any) -> Any:
    """`value` with non-finite numbers (in old rows) as null: JSON has no Infinity or NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
